"""Neural Random Subspace (Cao, Wu, Wang, Lasenby, Pattern Recognition 2021).

Book chapter: *NRS* (``book/04_nrs.md``).
"""
from .estimator import MLPBaselineClassifier, NRSClassifier
from .layer import MLPNet, NRSLayer, NRSNet, auto_n_mul, mlp_head, subspace_indices

__all__ = [
    "MLPBaselineClassifier", "NRSClassifier", "MLPNet", "NRSLayer", "NRSNet", "auto_n_mul", "mlp_head",
    "subspace_indices",
]
