"""Quantization toolkit: uniform fake quantization with a straight-through estimator, MinMax
observers, and running any supported network at ``(w_bits, a_bits)`` with one copy of its weights.

Used by the SSQL chapter; nothing in here is specific to one paper.
Book section: *SSQL* "Fake quantization" and "One set of weights, any bit-width".
"""

from .fake_quant import (
    CONVENTIONS, MAX_BITS, MIN_BITS, MIN_WEIGHT_BITS, MinMaxObserver, act_qparams, check_bits,
    check_weight_bits, fake_quant_act,
    fake_quant_weight, round_ste, sqnr_db, weight_grid, weight_scale,
)
from .model import (
    ACTIVATIONS, SUPPORTED, WEIGHTED, BitSampler, QuantizedModel, activation_sqnr, check_supported, compare_activations,
    layer_sqnr,
)

__all__ = [
    "CONVENTIONS", "MAX_BITS", "MIN_BITS", "MIN_WEIGHT_BITS", "MinMaxObserver", "act_qparams", "check_bits",
    "check_weight_bits", "fake_quant_act",
    "fake_quant_weight", "round_ste", "sqnr_db", "weight_grid", "weight_scale",
    "ACTIVATIONS", "SUPPORTED", "WEIGHTED", "BitSampler", "QuantizedModel", "activation_sqnr", "check_supported",
    "compare_activations", "layer_sqnr",
]
