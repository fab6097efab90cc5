r"""Run a network at ``(w_bits, a_bits)`` with one copy of its weights.

:class:`QuantizedModel` wraps a model without copying or changing it: its forward runs the model
with fake-quantized weights (``torch.func.functional_call`` substitutes $\hat W = Q_w(W)$ for every
conv/linear weight, so gradients flow back to the one set of parameters) and fake-quantizes the
output of every ReLU. That places activation quantizers exactly where the SSQL code puts them in a
ResNet (the code folds BN and ReLU into the conv before its output quantizer):

* after conv-BN-ReLU of a block's first conv(s);
* **not** before the residual add (``conv2``/``conv3`` and the shortcut have no ReLU of their own);
* after the block's add + ReLU (torchvision calls the same ``relu`` module again: each call gets its
  own observer, named ``layer1.0.relu`` and ``layer1.0.relu:1``).

The first conv (and the first ReLU after it) are pinned to 8/8 bits, as in the paper; ``overrides``
pins other layers by name prefix (SSQL keeps the projector's linears at 8-bit weights, no activation
quantization). Bit-width 0 or ``None`` is full precision.

Book section: *SSQL* "One set of weights, any bit-width".
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import torch
from torch import nn
from torch.func import functional_call

from .fake_quant import (MinMaxObserver, check_bits, check_convention, check_weight_bits, fake_quant_act,
                         fake_quant_weight)
from ..tensors import as_model_input, check_count

#: layers whose weights are quantized
WEIGHTED = (nn.Conv2d, nn.Linear)
#: layers whose outputs are quantized
ACTIVATIONS = (nn.ReLU, nn.ReLU6)
#: layers that pass quantized values through without needing a quantizer of their own
PASSIVE = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Identity,
    nn.Flatten, nn.Dropout, nn.Dropout2d,
)
SUPPORTED = WEIGHTED + ACTIVATIONS + PASSIVE


def check_supported(model: nn.Module) -> None:
    """Raise ``TypeError`` naming every layer the quantizer does not know how to handle.

    Leaves must be conv2d/linear, ReLU/ReLU6, or batch-norm/pooling/identity/flatten/dropout; a
    container may not hold parameters of its own (e.g. a ViT's class token). Other layers (attention,
    LayerNorm, GELU, Conv1d...) would silently run in full precision, so they are refused.
    Book section: *SSQL* "One set of weights, any bit-width".
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    bad = []
    for name, module in model.named_modules():
        children = list(module.children())
        if children:
            if any(True for _ in module.parameters(recurse=False)):
                bad.append(f"{name or '<root>'} ({type(module).__name__}: holds parameters outside a supported layer)")
        elif not isinstance(module, SUPPORTED):
            bad.append(f"{name or '<root>'} ({type(module).__name__})")
    if bad:
        raise TypeError(
            "cannot quantize these layers: " + ", ".join(bad) + ". Supported: "
            + ", ".join(sorted({t.__name__ for t in SUPPORTED}))
        )
    if not any(isinstance(m, WEIGHTED) for m in model.modules()):
        raise TypeError(f"{type(model).__name__} has no Conv2d or Linear layer to quantize")


def _prefix_match(name: str, overrides: dict) -> tuple[int, int] | None:
    best = None
    for prefix, bits in overrides.items():
        if name == prefix or name.startswith(prefix + ".") or prefix == "":
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, bits)
    return None if best is None else best[1]


class QuantizedModel(nn.Module):
    r"""``model`` run at ``(w_bits, a_bits)``; the wrapped model itself is never changed.

    ``first``: bits ``(w, a)`` of the first Conv2d and the first ReLU (``None``: not pinned).
    ``overrides``: ``{name_prefix: (w, a)}``, the longest matching prefix wins.
    ``convention``: ``"ssql"`` or ``"conventional"`` (see :mod:`companion.quant.fake_quant`).

    Activation ranges come from observers filled by :meth:`observing` / :meth:`calibrate`
    (full-precision passes). Weight ranges are read from the live weights at every forward.
    Book section: *SSQL* "One set of weights, any bit-width".
    """

    def __init__(self, model: nn.Module, w_bits=0, a_bits=0, *, convention: str = "ssql",
                 first: tuple[int, int] | None = (8, 8), overrides: dict | None = None,
                 detach_weight_scale: bool = False):
        super().__init__()
        check_supported(model)
        self.model = model
        self.convention = check_convention(convention)
        self.detach_weight_scale = detach_weight_scale
        self.weighted = [n for n, m in model.named_modules() if isinstance(m, WEIGHTED)]
        self.act_modules = [n for n, m in model.named_modules() if isinstance(m, ACTIVATIONS)]
        self.first_conv = next((n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)
        self.first_act = self.act_modules[0] if self.act_modules else None
        if first is not None:
            first = (check_weight_bits(first[0], "first w_bits"), check_bits(first[1], "first a_bits"))
        self.first = first
        self.overrides = {}
        names = [n for n, _ in model.named_modules() if n]
        for prefix, bits in (overrides or {}).items():
            if not isinstance(bits, tuple) or len(bits) != 2:
                raise ValueError(f"override for {prefix!r} must be a (w_bits, a_bits) tuple, got {bits!r}")
            if prefix != "" and not any(n == prefix or n.startswith(f"{prefix}.") for n in names):
                # a misspelled prefix would pin nothing and the run go on at the global bits
                top = sorted({n.split(".")[0] for n in names})
                raise ValueError(f"overrides prefix {prefix!r} matches no layer of {type(model).__name__}; "
                                 f"known prefixes are module names such as {top}")
            self.overrides[prefix] = (check_weight_bits(bits[0], f"{prefix} w_bits"),
                                      check_bits(bits[1], f"{prefix} a_bits"))
        self.observers: dict[str, MinMaxObserver] = {}
        self._calls: dict[str, int] = {}
        self.set_bits(w_bits, a_bits)

    # -- bit-widths ---------------------------------------------------------------------------
    def set_bits(self, w_bits, a_bits) -> "QuantizedModel":
        """Set the global bit-widths (0/``None``: full precision; weights need >= 2); returns ``self``."""
        self.w_bits = check_weight_bits(w_bits, "w_bits")
        a_bits = check_bits(a_bits, "a_bits")
        if a_bits and not self.act_modules:
            # activations are quantized at ReLU modules only: without one, a_bits would change nothing
            raise ValueError(f"a_bits={a_bits} would have no effect: {type(self.model).__name__} has no nn.ReLU or "
                             "nn.ReLU6 module, where activations are quantized (functional relu calls are not "
                             "seen); use a_bits=0 for weight-only quantization")
        self.a_bits = a_bits
        return self

    def layer_bits(self, name: str) -> tuple[int, int]:
        """The ``(w, a)`` bits that apply to the layer (or activation point) called ``name``."""
        base = name.split(":")[0]
        if self.first is not None and base in (self.first_conv, self.first_act):
            return self.first
        pinned = _prefix_match(base, self.overrides)
        return pinned if pinned is not None else (self.w_bits, self.a_bits)

    @property
    def feature_dim(self):
        return getattr(self.model, "feature_dim")

    # -- observing activations ----------------------------------------------------------------
    def _point(self, name: str) -> str:
        k = self._calls.get(name, 0)
        self._calls[name] = k + 1
        return name if k == 0 else f"{name}:{k}"

    @contextlib.contextmanager
    def _hooks(self, fn):
        modules = dict(self.model.named_modules())
        handles = [self.model.register_forward_pre_hook(lambda *_: self._calls.clear())]
        for name in self.act_modules:
            handles.append(modules[name].register_forward_hook(lambda m, i, out, name=name: fn(self._point(name), out)))
        try:
            yield
        finally:
            for h in handles:
                h.remove()
            self._calls.clear()

    @contextlib.contextmanager
    def observing(self, reset: bool = True):
        """Within this block, full-precision calls of ``self.model`` record activation ranges.

        ``reset``: forget earlier ranges first (SSQL does this every step).
        Book section: *SSQL* "Calibration: where the ranges come from".
        """
        if reset:
            self.observers.clear()

        def record(point, out):
            self.observers.setdefault(point, MinMaxObserver()).update(out)

        with self._hooks(record):
            yield self

    @torch.no_grad()
    def calibrate(self, batches: Iterable, max_images: int | None = None) -> int:
        """Post-training calibration: observe ranges over ``batches`` (tensors ``(N, C, H, W)``).

        Runs the model as it is (call ``.eval()`` first for PTQ, as the SSQL evaluation does) and
        stops after ``max_images`` images. Returns how many images were seen.
        Book section: *SSQL* "Calibration: where the ranges come from".
        """
        if max_images is not None:
            max_images = check_count(max_images, "max_images")
        seen = 0
        with self.observing(reset=True):
            for batch in batches:
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                x = as_model_input(x, self.model, "calibration images")
                if max_images is not None:
                    x = x[: max_images - seen]
                if len(x) == 0:
                    break
                self.model(x.to(next(self.model.parameters()).device))
                seen += len(x)
                if max_images is not None and seen >= max_images:
                    break
        if seen == 0:
            raise ValueError("calibrate got no images (the calibration images were empty or there were no batches)")
        return seen

    # -- the quantized forward ----------------------------------------------------------------
    def quantized_weights(self) -> dict[str, torch.Tensor]:
        """``{"layer.weight": Q_w(W)}`` for every conv/linear layer with weight bits > 0."""
        modules = dict(self.model.named_modules())
        out = {}
        for name in self.weighted:
            wb = self.layer_bits(name)[0]
            if wb:
                out[f"{name}.weight" if name else "weight"] = fake_quant_weight(
                    modules[name].weight, wb, self.convention, self.detach_weight_scale)
        return out

    def _quantize_output(self, point: str, out: torch.Tensor) -> torch.Tensor:
        ab = self.layer_bits(point)[1]
        if not ab:
            return out
        obs = self.observers.get(point)
        if obs is None or not obs.ready:
            raise RuntimeError(
                f"no activation range for {point!r}: run calibrate(batches) or a full-precision pass inside "
                "observing() before a quantized forward")
        return fake_quant_act(out, ab, obs.min, obs.max, self.convention)

    def forward(self, *args, **kwargs):
        weights = self.quantized_weights()
        with self._hooks(self._quantize_output):
            return functional_call(self.model, weights, args, kwargs, strict=False)

    def map(self, inputs) -> list:
        """``[self(x) for x in inputs]``, quantizing the weights once for all of them (SSQL's two views)."""
        weights = self.quantized_weights()
        with self._hooks(self._quantize_output):
            return [functional_call(self.model, weights, (x,), strict=False) for x in inputs]

    def extra_repr(self) -> str:
        return (f"w_bits={self.w_bits}, a_bits={self.a_bits}, convention={self.convention!r}, "
                f"first={self.first}, overrides={self.overrides}")


@torch.no_grad()
def layer_sqnr(qmodel: QuantizedModel) -> dict[str, float]:
    """SQNR (dB) of every quantized weight tensor at the model's current bit-widths.

    Book section: *SSQL* "What quantization does to a network".
    """
    from .fake_quant import sqnr_db

    params = dict(qmodel.model.named_parameters())
    return {k.removesuffix(".weight"): sqnr_db(params[k], w) for k, w in qmodel.quantized_weights().items()}


@torch.no_grad()
def compare_activations(qmodel: QuantizedModel, x: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{point: (full_precision, quantized)}`` outputs of every activation point on the batch ``x``.

    The quantized pass uses the observers' current ranges (calibrate first).
    Book section: *SSQL* "What quantization does to a network".
    """
    fp: dict[str, torch.Tensor] = {}
    q: dict[str, torch.Tensor] = {}

    def keep_fp(point, out):
        fp[point] = out.detach().clone()

    def keep_q(point, out):
        y = qmodel._quantize_output(point, out)
        q[point] = y.detach().clone()
        return y

    with qmodel._hooks(keep_fp):
        qmodel.model(x)
    weights = qmodel.quantized_weights()
    with qmodel._hooks(keep_q):
        functional_call(qmodel.model, weights, (x,), strict=False)
    return {p: (fp[p], q[p]) for p in fp if p in q}


def activation_sqnr(qmodel: QuantizedModel, x: torch.Tensor) -> dict[str, float]:
    """SQNR (dB) of every activation point's output, quantized model vs full precision, on ``x``.

    Unlike :func:`layer_sqnr` this includes the error carried in from earlier layers, so it shows
    how quantization noise accumulates with depth. Book section: *SSQL* "What quantization does to a network".
    """
    from .fake_quant import sqnr_db

    return {p: sqnr_db(a, b) for p, (a, b) in compare_activations(qmodel, x).items()}


class BitSampler(nn.Module):
    """Draws ``(w_bits, a_bits)`` uniformly from inclusive ranges, from its own generator.

    The generator's state lives in a buffer, so it is saved in checkpoints (exact resume) and, under
    DistributedDataParallel, broadcast from rank 0 (every rank uses the same bits; the SSQL code's
    per-process ``random.choice`` stays in sync only by accident).
    Book section: *SSQL* "The SimSiam loss with a quantized branch".
    """

    def __init__(self, w_range: tuple[int, int] = (2, 8), a_range: tuple[int, int] = (4, 8), seed: int = 0):
        super().__init__()
        for what, (lo, hi), least, check in (("w_range", w_range, 2, check_weight_bits),
                                             ("a_range", a_range, 1, check_bits)):
            check(lo, f"{what} low")
            check(hi, f"{what} high")
            if not least <= lo <= hi:
                raise ValueError(f"{what} must be (low, high) with {least} <= low <= high, got {(lo, hi)}")
        self.w_range, self.a_range = tuple(w_range), tuple(a_range)
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("rng_state", g.get_state())

    def forward(self) -> tuple[int, int]:
        g = torch.Generator()
        g.set_state(self.rng_state.cpu())
        w = int(torch.randint(self.w_range[0], self.w_range[1] + 1, (), generator=g))
        a = int(torch.randint(self.a_range[0], self.a_range[1] + 1, (), generator=g))
        self.rng_state.copy_(g.get_state().to(self.rng_state.device))
        return w, a

    def extra_repr(self) -> str:
        return f"w_range={self.w_range}, a_range={self.a_range}"
