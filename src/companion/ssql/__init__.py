"""SSQL: Synergistic Self-supervised and Quantization Learning (Cao, Sun, Huang, Wu, Zhou, ECCV 2022).

SimSiam whose loss also asks a randomly fake-quantized copy of the same network to predict the
full-precision targets, so that one set of pretrained weights survives post-training quantization
at many bit-widths. The quantizers live in :mod:`companion.quant`; SimSiam, augmentations and probes
in :mod:`companion.ssl`.

Book chapter: *SSQL* (``book/06_ssql.md``).
"""

from . import config, plots
from .config import SSQLConfig
from .evaluate import at_bits, pair_name, ptq_grid, sgd_linear_probe
from .experiment import SSQLResult, build_method, load_data, run, run_hours
from .method import A_RANGE, PROJECTOR_BITS, SSQL, W_RANGE

__all__ = [
    "config", "plots", "SSQLConfig", "at_bits", "pair_name", "ptq_grid", "sgd_linear_probe", "SSQLResult", "build_method", "load_data", "run", "run_hours",
    "A_RANGE", "PROJECTOR_BITS", "SSQL", "W_RANGE",
]
