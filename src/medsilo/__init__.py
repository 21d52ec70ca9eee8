"""medsilo: cross-silo federated learning for hospitals.

Pure algorithm code lives in :mod:`medsilo.algorithms` and :mod:`medsilo.aggregation`;
runtimes (:mod:`medsilo.runtime`) drive it; data, models and reports sit at the edges.
"""

__version__ = "0.1.0"
