"""Real deployment on Flower: provisioning of keys, certificates and per-site startup kits.

See docs/deployment.md. ``spec`` reads FEDERATION.yaml, ``pki`` makes the keys and
certificates, ``kits`` writes the coordinator kit and one kit per site, ``command`` is the
``medsilo provision`` CLI entry point.
"""
