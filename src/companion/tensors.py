"""Input checks shared by every public function that takes arrays: one place, one message per mistake.

The policy, applied at every front door (models' ``forward``, numeric primitives, image pipelines):

* **NumPy arrays** become tensors (``torch.from_numpy``, no copy when contiguous); functions that
  must keep a tensor's identity (e.g. in-place updates) refuse them with
  "expected a torch.Tensor, got numpy.ndarray".
* **float64** is cast to the function's working dtype (float32, or a model's parameter dtype): every
  computation here is float32, so the cast loses nothing a float32 run would keep. float32 input is
  passed through untouched (the same tensor object), so valid calls compute exactly what they did.
  Other floating dtypes (float16, bfloat16, e.g. under autocast) pass unchanged; integer and boolean
  input is refused where floats are expected.
* **meta tensors** (a shape without data) are refused: nothing can be computed from them.
* **NaN and inf** are refused, naming the argument (a NaN in gives a NaN, or a quietly wrong number,
  out).
* **Empty** input and a wrong number of dimensions are refused with the shape that was expected.
* **Images** are floats in [0, 1] (:func:`check_unit_images`): uint8 and 0-255 floats are refused with a
  message saying to divide by 255; nothing is clipped.
* **batch_size** must be an integer >= 1 (:func:`check_batch_size`).
"""

from __future__ import annotations

import numbers

import numpy as np
import torch

__all__ = ["as_tensor", "as_model_input", "as_images", "check_batch_size", "check_finite", "check_unit_images", "check_count"]


def _describe(x) -> str:
    return f"{type(x).__module__}.{type(x).__name__}" if type(x).__module__ not in ("builtins",) else type(x).__name__


def check_finite(x: torch.Tensor, name: str) -> torch.Tensor:
    """Raise ``ValueError`` naming ``name`` if the floating tensor ``x`` holds NaN or inf."""
    if (x.is_floating_point() or x.is_complex()) and x.numel():
        finite = torch.isfinite(x)
        if not bool(finite.all()):
            n_nan = int(torch.isnan(x).sum())
            n_inf = int((~finite).sum()) - n_nan
            raise ValueError(f"{name} contains NaN or infinite values ({n_nan} NaN, {n_inf} inf, of {x.numel()} "
                             "entries); every entry must be a finite number")
    return x


def as_tensor(x, name: str, *, dtype: torch.dtype | None = torch.float32, ndim: int | tuple[int, ...] | None = None,
              allow_numpy: bool = True, finite: bool = True, value_range: tuple[float, float] | None = None,
              nonempty: bool = True, shape_hint: str | None = None) -> torch.Tensor:
    """Check and coerce the argument ``name`` of a public function to a tensor.

    ``dtype``: the floating dtype the function works in; float64 input is cast to it (and only
    float64: float32 comes back as the same object), integer/boolean input raises ``TypeError``.
    ``None`` accepts any dtype and casts nothing (labels, indices). ``ndim``: the allowed number(s)
    of dimensions; ``shape_hint`` (e.g. ``"(N, d)"``) is quoted in the message. ``allow_numpy``:
    convert NumPy arrays, or refuse them. ``finite``: refuse NaN/inf. ``value_range``: refuse values
    outside ``[lo, hi]``. ``nonempty``: refuse a tensor with no elements.
    """
    if isinstance(x, np.ndarray):
        if not allow_numpy:
            raise TypeError(f"{name}: expected a torch.Tensor, got numpy.ndarray; wrap it with torch.from_numpy")
        if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
            raise TypeError(f"{name} must be a numeric array, got a NumPy array of dtype {x.dtype}")
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor{' or numpy.ndarray' if allow_numpy else ''}, "
                        f"got {_describe(x)}")
    if x.is_meta:
        raise ValueError(f"{name} is a 'meta' tensor (a shape {tuple(x.shape)} without data), so nothing can be "
                         "computed from it; pass a tensor with values on the CPU or a GPU")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in allowed:
            want = shape_hint or " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name} must have shape {want}, got a {x.ndim}-D tensor of shape {tuple(x.shape)}")
    if nonempty and x.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)})")
    if dtype is not None:
        if not x.is_floating_point():
            raise TypeError(f"{name} must be a floating point tensor, got dtype {x.dtype}"
                            + ("; for uint8 images use x.float() / 255" if x.dtype == torch.uint8 else ""))
        if x.dtype == torch.float64 and dtype != torch.float64:
            x = x.to(dtype)
    if finite:
        check_finite(x, name)
    if value_range is not None and x.numel():
        lo, hi = value_range
        x_lo, x_hi = float(x.min()), float(x.max())
        if x_lo < lo or x_hi > hi:
            raise ValueError(f"{name} must lie in [{lo:g}, {hi:g}], got values in [{x_lo:g}, {x_hi:g}]")
    return x


def as_model_input(x, module: torch.nn.Module, name: str = "x", *, ndim: int | tuple[int, ...] | None = None,
                   shape_hint: str | None = None) -> torch.Tensor:
    """:func:`as_tensor` for a model's ``forward``: float64 is cast to the model's parameter dtype.

    Empty batches pass (a forward of zero rows is well defined); NumPy arrays are converted; meta,
    NaN/inf and non-float input are refused, as in :func:`as_tensor`.
    """
    p = next(module.parameters(), None)
    dtype = p.dtype if p is not None else torch.float32
    return as_tensor(x, name, dtype=dtype, ndim=ndim, shape_hint=shape_hint, nonempty=False)


def check_unit_images(images: torch.Tensor, name: str = "images") -> torch.Tensor:
    """Raise unless ``images`` are floating point in [0, 1]; the one image-range policy of the library.

    Every model here is trained on [0, 1] inputs, so a uint8 or 0-255 float image gives results that
    mean nothing (and any clamp to [0, 1] would turn it into a blank image): both are refused, with a
    message saying to divide by 255. NaN is refused too. Returns ``images`` unchanged.
    """
    if not images.is_floating_point():
        raise TypeError(f"{name} must be floating point in [0, 1], got {images.dtype}; "
                        "convert with images.float() / 255")
    if images.numel() == 0:
        return images
    check_finite(images, name)
    lo, hi = float(images.min()), float(images.max())
    if not (lo >= 0.0 and hi <= 1.0):
        raise ValueError(f"{name} must lie in [0, 1], got values in [{lo:g}, {hi:g}]"
                         + ("; divide 0-255 images by 255" if hi > 1.0 else ""))
    return images


def as_images(x, name: str = "images", *, channels: int | None = None, allow_numpy: bool = True) -> torch.Tensor:
    """A non-empty ``(N, C, H, W)`` float batch in [0, 1] (``C == channels`` when given); float64 becomes float32.

    uint8 and 0-255 floats are refused (:func:`check_unit_images`), as are NaN, meta and wrong shapes.
    """
    x = as_tensor(x, name, dtype=None, ndim=4, finite=False, allow_numpy=allow_numpy,
                  shape_hint=f"(N, {channels if channels is not None else 'C'}, H, W)")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name} must be a tensor of shape (N, {channels}, H, W), got {tuple(x.shape)} "
                         f"({x.shape[1]} channels); channels-last arrays need .permute first")
    check_unit_images(x, name)
    return x.float() if x.dtype == torch.float64 else x


def check_count(n, name: str, low: int = 1) -> int:
    """Raise unless ``n`` is an integer (not a bool) >= ``low``; returns it as an ``int``."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {low}, got {n!r} ({type(n).__name__})")
    if n < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {n!r}")
    return int(n)


def check_batch_size(n, name: str = "batch_size") -> int:
    """Raise unless ``n`` is an integer >= 1 (``range(0, N, 0)`` would fail obscurely, or loop forever)."""
    return check_count(n, name, 1)
