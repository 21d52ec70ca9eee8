"""Secure aggregation: the coordinator learns the (weighted) sum of the sites' updates only.

Two mechanisms, both usable by any runtime because they are plain state machines and
libraries with no transport of their own:

* :mod:`~medsilo.secure.site` / :mod:`~medsilo.secure.coordinator`: pairwise-masking secure
  aggregation after Bonawitz et al. (CCS 2017), over fixed-point integers mod ``2**k``
  (:mod:`~medsilo.secure.fixed_point`), masks expanded by AES-CTR (:mod:`~medsilo.secure.prg`),
  seeds and mask keys protected by Shamir sharing (:mod:`~medsilo.secure.shamir`) so that
  sites that drop out are recovered up to a threshold; with ``graph: harary`` (SecAgg+,
  Bell et al. CCS 2020) only between neighbours of a sparse random graph
  (:mod:`~medsilo.secure.neighbour_graph`, :mod:`~medsilo.secure.graph_parameters`);
* :mod:`~medsilo.secure.ckks`: additively homomorphic aggregation with TenSEAL's CKKS.

:mod:`~medsilo.secure.exchange` runs the masking protocol for the in-process engine and
:mod:`~medsilo.secure.outcome` turns its result into the round's outcome. The protocol,
threat model and measured costs are in docs/secure-aggregation.md.
"""
