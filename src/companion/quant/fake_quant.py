r"""Uniform fake quantization with a straight-through estimator (STE).

Fake quantization keeps tensors in floating point but snaps them to the grid a ``b``-bit integer
kernel would use, so a full-precision network can be run "as if" it were quantized:

$$\hat x = s\,\big(\mathrm{clamp}(\lfloor x/s \rceil + z,\; q_{\min},\; q_{\max}) - z\big)$$

with scale $s$, zero-point $z$ and integer range $[q_{\min}, q_{\max}]$. Rounding has zero gradient
almost everywhere, so the backward pass uses the straight-through estimator
$\partial\lfloor u\rceil/\partial u := 1$; the clamp still blocks gradients outside the range.

Two conventions are named here (the book's SSQL chapter, "Two ways to draw the grid"):

``"ssql"`` (the SSQL code's uniform PTQ quantizer with MinMax observers)
    weights, symmetric per output channel: $s_c = \max(|w_c^{\min}|, |w_c^{\max}|) / \tfrac{2^b-1}{2}$,
    $z = 0$, $q \in [-2^{b-1},\, 2^{b-1}-1]$. The divisor $(2^b-1)/2$ (127.5 at 8 bits) puts the
    largest magnitude at $\pm(2^{b-1}-\tfrac12)$ steps, a tie: the negative extreme rounds (half to
    even) to $-2^{b-1}$, inside the range, while the positive one rounds to $2^{b-1}$ and is clipped
    to $2^{b-1}-1$, half a step short. (Float rounding can tip an exact tie either way; the clipped
    value is the same.) PyTorch's symmetric ``MinMaxObserver`` uses the same divisor.
    activations, asymmetric per tensor over the observed $[m, M]$: $s = (M-m)/(2^b-1)$,
    $z = -\lfloor m/s \rceil$, $q \in [0, 2^b-1]$.

``"conventional"`` (narrow-range symmetric weights, zero-including activation range)
    weights: $s_c = \max|w_c| / (2^{b-1}-1)$, $q \in [-(2^{b-1}-1),\, 2^{b-1}-1]$: both extremes are
    exact and the grid is symmetric (needs $b \ge 2$).
    activations: the range is first widened to contain 0, $[\min(m,0), \max(M,0)]$, so that zero
    (ReLU's most common output, and padding) is exactly representable; then as above.

Both conventions agree with ``torch.fake_quantize_per_channel_affine`` /
``torch.fake_quantize_per_tensor_affine`` given the same scale, zero-point and range.
"""

from __future__ import annotations

import math
import numbers

import torch

from ..tensors import as_tensor

CONVENTIONS = ("ssql", "conventional")
MIN_BITS, MAX_BITS = 1, 16
#: weights need two bits: at one bit the symmetric grid is {-1, 0} steps of max|w_c| / 0.5, and
#: every weight, the extremes included, rounds to 0
MIN_WEIGHT_BITS = 2


def check_bits(bits, what: str = "bits") -> int:
    """Validate a bit-width: ``0`` or ``None`` means full precision (returned as 0), else an int in [1, 16].

    Book section: *SSQL* "Fake quantization".
    """
    if bits is None:
        return 0
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral):
        raise TypeError(f"{what} must be an integer in [{MIN_BITS}, {MAX_BITS}] (or 0/None for full precision), "
                        f"got {bits!r} of type {type(bits).__name__}")
    bits = int(bits)
    if bits == 0:
        return 0
    if not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(f"{what} must be in [{MIN_BITS}, {MAX_BITS}] (or 0/None for full precision), got {bits}")
    return bits


def check_weight_bits(bits, what: str = "w_bits") -> int:
    r""":func:`check_bits` for weights: 0/``None`` (full precision) or an int in [2, 16].

    One bit is refused: the symmetric per-channel grid then has the two codes {-1, 0} and a step of
    $\max|w_c| / \tfrac12$, so every weight rounds to zero. Book section: *SSQL* "Fake quantization".
    """
    bits = check_bits(bits, what)
    if bits == 1:
        raise ValueError(f"{what} must be in [{MIN_WEIGHT_BITS}, {MAX_BITS}] (or 0/None for full precision), "
                         f"got 1: a 1-bit symmetric weight grid rounds every weight to 0")
    return bits


def check_convention(convention: str) -> str:
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    return convention


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


def clamp_ste(q: torch.Tensor, qmin: float, qmax: float) -> torch.Tensor:
    """``clamp(q, qmin, qmax)`` whose gradient is 1 on the closed range ``[qmin, qmax]`` and 0 outside.

    ``torch.clamp`` passes no gradient at the end points themselves; PyTorch's fake-quant kernels
    (and the STE) count the end points as inside, so values that land exactly on the first or last
    grid point keep their gradient.
    """
    inside = (q >= qmin) & (q <= qmax)
    return torch.where(inside, q, q.detach().clamp(qmin, qmax))


def round_ste(x: torch.Tensor) -> torch.Tensor:
    r"""$\lfloor x \rceil$ forward (round half to even, like PyTorch's kernels), identity gradient backward.

    A custom autograd function rather than ``x + (round(x) - x).detach()``: that trick can leave the
    result a float ulp away from the integer, and a clamp at the range's edge then drops its gradient.
    Book section: *SSQL* "Fake quantization".
    """
    return _RoundSTE.apply(x)


# ----------------------------------------------------------------------------------------------
# weights: symmetric, per output channel (axis 0)


def weight_grid(bits: int, convention: str = "ssql") -> tuple[int, int, float]:
    """``(q_min, q_max, divisor)`` of the symmetric weight grid; the scale is ``max|w_c| / divisor``.

    Book section: *SSQL* "Two ways to draw the grid".
    """
    bits = check_weight_bits(bits, "bits")
    check_convention(convention)
    if bits == 0:
        raise ValueError("weight_grid needs a bit-width >= 2 (0 means full precision: no grid)")
    if convention == "ssql":
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1, (2**bits - 1) / 2
    return -(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1, float(2 ** (bits - 1) - 1)


def weight_scale(weight: torch.Tensor, bits: int, convention: str = "ssql") -> torch.Tensor:
    r"""Per-output-channel scale $s_c = \max(|w_c^{\min}|, |w_c^{\max}|)/\text{divisor}$, shape ``(C_out,)``.

    Not detached: as in the SSQL code, gradients also reach $s_c$ through $\max|w_c|$.
    Book section: *SSQL* "Fake quantization".
    """
    if weight.dim() < 2:
        raise ValueError(f"weights are quantized per output channel and need >= 2 dims (C_out, ...), got shape {tuple(weight.shape)}")
    _, _, divisor = weight_grid(bits, convention)
    return weight.reshape(weight.shape[0], -1).abs().amax(dim=1) / divisor  # (C_out,)


#: per-channel weight scales below this are quantized after an exact power-of-two rescale
_TINY_SCALE = 2.0**-110


def _fake_quant_tiny(weight: torch.Tensor, scale: torch.Tensor, bits: int, convention: str,
                     detach_scale: bool) -> torch.Tensor:
    """:func:`fake_quant_weight` for weights with channels of scale below ``_TINY_SCALE`` (max|w_c| below
    about 1e-30): there ``1/s`` overflows and the fused kernel returned the grid's far end, of the opposite
    sign. Those channels are scaled up by an exact power of two, quantized, and scaled back; the grid is
    scale-invariant, so the values are the ones exact arithmetic gives."""
    tiny = (scale > 0) & (scale < _TINY_SCALE)
    m = weight.detach().reshape(len(scale), -1).abs().amax(1).double()
    exponent = torch.where(tiny, -torch.floor(torch.log2(m.clamp_min(1e-300))), torch.zeros_like(m))
    factor = torch.exp2(exponent.clamp(max=1000)).reshape((-1,) + (1,) * (weight.dim() - 1))
    up = (weight.double() * factor).to(weight.dtype)
    return (fake_quant_weight(up, bits, convention, detach_scale).double() / factor).to(weight.dtype)


def fake_quant_weight(weight: torch.Tensor, bits, convention: str = "ssql", detach_scale: bool = False) -> torch.Tensor:
    r"""Symmetric per-channel fake quantization $\hat w = s_c\,\mathrm{clamp}(\lfloor w/s_c\rceil, q_{\min}, q_{\max})$.

    ``weight``: ``(C_out, ...)`` (conv ``(C_out, C_in, k, k)`` or linear ``(out, in)``).
    ``bits`` 0 or ``None``: returned unchanged; 1 is refused (:func:`check_weight_bits`). A channel
    of zeros (scale 0) stays zero.
    ``detach_scale``: stop gradients into $s_c$ (then $\partial\hat w/\partial w = 1$ inside the range).
    NaN or infinite weights are a ``ValueError`` (see :mod:`companion.tensors`); channels of tiny
    weights keep their sign.
    Book section: *SSQL* "Fake quantization".
    """
    bits = check_weight_bits(bits, "bits")
    weight = as_tensor(weight, "weight", dtype=torch.float64)  # NaN/inf refused: a diverged net must not look finite
    if bits == 0:
        return weight
    qmin, qmax, _ = weight_grid(bits, convention)
    scale = weight_scale(weight, bits, convention)  # (C_out,)
    if bool(((scale > 0) & (scale < _TINY_SCALE)).any()):
        return _fake_quant_tiny(weight, scale, bits, convention, detach_scale)  # 1/s would overflow
    if detach_scale:
        scale = scale.detach()
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # all-zero channel: w/s = 0 stays 0
    if not (torch.is_grad_enabled() and weight.requires_grad):
        # inference: PyTorch's fused kernel, identical values (tested), one pass
        zeros = torch.zeros(len(scale), dtype=torch.int32, device=weight.device)
        return torch.fake_quantize_per_channel_affine(weight, scale.float(), zeros, 0, qmin, qmax).to(weight.dtype)
    shape = (-1,) + (1,) * (weight.dim() - 1)
    s = scale.reshape(shape)
    # x * (1/s), as PyTorch's kernels do, so ties round the same way
    q = clamp_ste(round_ste(weight * (1.0 / s)), qmin, qmax)
    return q * s


# ----------------------------------------------------------------------------------------------
# activations: asymmetric, per tensor


def act_qparams(lo, hi, bits, convention: str = "ssql") -> tuple[torch.Tensor, torch.Tensor]:
    r"""Scale and zero-point of the asymmetric activation grid for an observed range ``[lo, hi]``.

    $s = (M - m)/(2^b - 1)$, $z = -\lfloor m/s \rceil$; the conventional variant first widens
    the range to contain 0. Returns 0-dim float tensors ``(s, z)``; ``s == 0`` means "do not quantize".
    A NaN or infinite ``lo``/``hi`` is an error: NaN would pass ``x`` through unquantized and an
    infinite range would turn every value into NaN.
    Book section: *SSQL* "Fake quantization".
    """
    bits = check_bits(bits)
    check_convention(convention)
    if bits == 0:
        raise ValueError("act_qparams needs a bit-width >= 1 (0 means full precision)")
    lo = torch.as_tensor(lo, dtype=torch.float32)
    hi = torch.as_tensor(hi, dtype=torch.float32)
    if lo.numel() != 1 or hi.numel() != 1:
        raise ValueError("activations are quantized per tensor: lo and hi must be scalars")
    if not (bool(torch.isfinite(lo)) and bool(torch.isfinite(hi))):
        raise ValueError(f"the activation range must be finite, got lo={float(lo)}, hi={float(hi)}: "
                         "calibrate on finite activations")
    if bool(hi - lo > torch.finfo(torch.float32).max):
        raise ValueError(f"the activation range [{float(lo)}, {float(hi)}] is too wide for float32")
    if bool(hi < lo):
        raise ValueError(f"empty range: hi={float(hi)} < lo={float(lo)}")
    if convention == "conventional":
        lo, hi = torch.clamp(lo, max=0.0), torch.clamp(hi, min=0.0)
    scale = (hi - lo) / (2**bits - 1)
    zero = -torch.round(lo / scale) if bool(scale > 0) else torch.zeros_like(lo)
    return scale.reshape(()), zero.reshape(())


def fake_quant_act(x: torch.Tensor, bits, lo, hi, convention: str = "ssql") -> torch.Tensor:
    r"""Asymmetric per-tensor fake quantization $\hat x = s\,(\mathrm{clamp}(\lfloor x/s\rceil + z, 0, 2^b-1) - z)$.

    ``lo``/``hi``: the observed range (from a :class:`MinMaxObserver`; treated as constants).
    ``bits`` 0/``None`` or a zero-width range: ``x`` is returned unchanged (as in the SSQL code).
    Computed in float32 and returned in ``x``'s dtype. Gradient: 1 where ``x`` is inside the range, else 0.
    Book section: *SSQL* "Fake quantization".
    """
    bits = check_bits(bits)
    if bits == 0:
        return x
    if not x.is_floating_point():
        raise TypeError(f"activations must be a floating-point tensor, got {x.dtype}")
    scale, zero = act_qparams(lo, hi, bits, convention)
    if not bool(scale > 0):
        return x
    scale, zero = scale.to(x.device), zero.to(x.device)
    xf = x.float()
    if 0 <= zero <= 2**bits - 1:
        # PyTorch's fused kernel computes exactly what _act_grid does (same rounding, same STE
        # gradient; the tests check both) in one pass; it needs the zero-point inside [0, 2^b - 1]
        out = torch.fake_quantize_per_tensor_affine(xf, scale.reshape(1), zero.reshape(1).int(), 0, 2**bits - 1)
    else:
        out = _act_grid(xf, scale, zero, bits)
    return out.to(x.dtype)


def _act_grid(x: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int) -> torch.Tensor:
    r"""$s\,(\mathrm{clamp}(\lfloor x/s\rceil + z, 0, 2^b-1) - z)$ with the straight-through gradient."""
    q = clamp_ste(round_ste(x * (1.0 / scale)) + zero, 0, 2**bits - 1)
    return (q - zero) * scale


class MinMaxObserver:
    """Running minimum and maximum of everything it has seen (detached): the MinMax observer.

    Book section: *SSQL* "Calibration: where the ranges come from".
    """

    def __init__(self):
        self.min: torch.Tensor | None = None
        self.max: torch.Tensor | None = None
        self.count = 0

    def reset(self) -> None:
        self.min = self.max = None
        self.count = 0

    @property
    def ready(self) -> bool:
        return self.min is not None

    def update(self, x: torch.Tensor) -> None:
        if x.numel() == 0:
            raise ValueError("cannot observe an empty tensor")
        x = x.detach()
        lo, hi = x.amin().float(), x.amax().float()
        if not (torch.isfinite(lo) and torch.isfinite(hi)):
            raise ValueError("observed a non-finite activation (NaN or inf); check the model and its inputs")
        self.min = lo if self.min is None else torch.minimum(self.min, lo)
        self.max = hi if self.max is None else torch.maximum(self.max, hi)
        self.count += 1

    def __repr__(self) -> str:
        if not self.ready:
            return "MinMaxObserver(empty)"
        return f"MinMaxObserver(min={float(self.min):.4g}, max={float(self.max):.4g}, batches={self.count})"


def sqnr_db(reference: torch.Tensor, quantized: torch.Tensor) -> float:
    r"""Signal-to-quantization-noise ratio $10\log_{10}\big(\sum x^2 / \sum (x-\hat x)^2\big)$ in dB.

    About 6 dB per bit for a uniform grid over the data's range; ``inf`` when nothing changed.
    Book section: *SSQL* "What quantization does to a network".
    """
    if reference.shape != quantized.shape:
        raise ValueError(f"shapes differ: {tuple(reference.shape)} vs {tuple(quantized.shape)}")
    if reference.numel() == 0:
        raise ValueError("sqnr_db of an empty tensor")
    signal = reference.detach().double().pow(2).sum()
    noise = (reference.detach().double() - quantized.detach().double()).pow(2).sum()
    if noise == 0:
        return math.inf
    return float(10 * torch.log10(signal / noise))
