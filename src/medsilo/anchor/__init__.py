"""Anchoring a federation's rounds on an Ethereum chain (docs/anchoring.md).

A registry contract (``federation_registry.vy``, compiled here from source) records the
institutions of a federation and, per round, the global model's SHA-256 and the head of the
coordinator's audit ledger. The coordinator anchors each round; a site checks the model it
received against the anchored hash. Needs the optional ``anchor`` extra (web3, eth-tester,
py-evm, vyper); nothing here is imported unless a run asks for anchoring.
"""
