"""Neural Random Subspace (Cao, Wu, Wang, Lasenby, Pattern Recognition 2021).

The NRS layer and its networks (``layer``), a scikit-learn estimator (``estimator``), the NRS head
for ResNets (``cnn``), the tabular benchmark (``tabular``), the toy-data figure (``figures``), the
presets (``config``) and the experiment (``experiment.run``).

Book chapter: *NRS* (``book/04_nrs.md``).
"""

from . import config
from .cnn import NRSHead, resnet_nrs
from .estimator import MLPBaselineClassifier, NRSClassifier, NRSRegressor
from .estimate import run_hours
from .experiment import run
from .layer import MLPNet, NRSLayer, NRSNet, auto_n_mul, mlp_head, subspace_indices

__all__ = [
    "config", "run", "run_hours", "NRSHead", "resnet_nrs", "MLPBaselineClassifier", "NRSClassifier", "NRSRegressor", "MLPNet", "NRSLayer",
    "NRSNet", "auto_n_mul", "mlp_head", "subspace_indices",
]
