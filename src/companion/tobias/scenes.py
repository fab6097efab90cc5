"""Synthetic scenes with the object anywhere in the frame, for the localization claim.

:func:`companion.data.make_scenes` keeps a margin around each object, so large objects always sit at
the image centre and a centred box finds them without looking at the image. Photos are not framed
that way. :func:`off_centre_scenes` draws scenes on a larger canvas and cuts a random window that
contains the whole object (when it fits), so objects land anywhere in the frame.

Book section: *Tobias* "Quick run".
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..data import Scenes, make_scenes

__all__ = ["off_centre_scenes", "digit_scenes"]


def _offset(lo_edge: float, hi_edge: float, canvas: int, size: int, rng: np.random.Generator) -> int:
    """A window start in ``[0, canvas - size]`` that keeps ``[lo_edge, hi_edge)`` inside when possible."""
    lo = max(0, int(np.ceil(hi_edge)) - size)
    hi = min(int(np.floor(lo_edge)), canvas - size)
    if hi >= lo:
        return int(rng.integers(lo, hi + 1))
    # the object is wider than the window: centre the window on it, the object gets cut
    return int(np.clip(round((lo_edge + hi_edge - size) / 2), 0, canvas - size))


def off_centre_scenes(n: int, size: int = 112, canvas: int = 160, seed: int = 0, **scene_kwargs) -> Scenes:
    """``n`` scenes of ``size`` px, cut at random from ``canvas``-px scenes of :func:`make_scenes`.

    ``scene_kwargs`` go to :func:`make_scenes` (``classes``, ``scale`` relative to the canvas,
    ``clutter``, ...). Masks are cut with the images and the boxes recomputed from the visible mask,
    so a cut object's box is what is left of it. Deterministic in ``seed``.
    """
    if not isinstance(size, int) or not isinstance(canvas, int) or size < 16 or canvas < size:
        raise ValueError(f"need integers 16 <= size <= canvas, got size={size!r}, canvas={canvas!r}")
    big = make_scenes(n, size=canvas, seed=seed, **scene_kwargs)
    rng = np.random.default_rng([seed, 7])
    images = torch.empty(n, 3, size, size)
    masks = torch.empty(n, size, size, dtype=torch.bool)
    boxes = torch.empty(n, 4)
    for i in range(n):
        x1, y1, x2, y2 = big.boxes[i].tolist()
        ox = _offset(x1, x2, canvas, size, rng)
        oy = _offset(y1, y2, canvas, size, rng)
        images[i] = big.images[i, :, oy : oy + size, ox : ox + size]
        masks[i] = big.masks[i, oy : oy + size, ox : ox + size]
        ys, xs = torch.nonzero(masks[i], as_tuple=True)
        boxes[i] = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)
    return Scenes(images, masks, boxes, big.labels.clone(), big.backgrounds.clone(), big.class_names)


def digit_scenes(n: int, size: int = 32, split: str = "train", seed: int = 0, digit_size: tuple[int, int] | None = None,
                 background_styles: int = 4, clutter: int = 3, backgrounds_per_style: int | None = 4) -> Scenes:
    r"""``n`` scenes of ``size`` px: one handwritten digit (scikit-learn's 8x8 digits, upsampled) in a
    random colour at a random place on a textured background whose style is drawn independently of
    the digit, for the self-supervised experiment.

    The digit's ink :math:`a \in [0, 1]` (its grey level, bilinearly upsampled to a side drawn from
    ``digit_size``, by default half to 13/16 of ``size``) is blended over the background :math:`b`: :math:`x = (1-a)\,b + a\,c` for a
    saturated colour :math:`c`. ``split``: ``"train"`` draws the digits from the 1,200 training digits
    of the shared SSL benchmark (:func:`companion.ssl.bench.bench_data`), ``"test"`` from its 597
    held-out digits, so no written digit is in both. Labels are the
    digits (10 classes), ``backgrounds`` the style (0-3, as :func:`companion.data.make_scenes`
    draws them), ``masks`` the pixels with ink above 0.5, ``boxes`` their tight box.
    ``backgrounds_per_style``: the backgrounds come from a fixed pool of that many per style (the same
    pool for both splits), so many scenes share one background and it does not single out an image
    for instance discrimination; None draws a new background for every scene.
    Deterministic in ``seed``. Book section: *Tobias* "Background swap inside MoCo v2".
    """
    from ..data.synthetic import _background
    from ..ssl.bench import bench_data

    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if not isinstance(size, int) or size < 16:
        raise ValueError(f"size must be an integer of at least 16 px, got {size!r}")
    lo, hi = digit_size if digit_size is not None else (size // 2, size * 13 // 16)
    if not (isinstance(size, int) and 8 <= lo <= hi <= size):
        raise ValueError(f"need 8 <= digit_size[0] <= digit_size[1] <= size, got digit_size={digit_size}, size={size}")
    bench = bench_data(8)
    digits, labels = (bench.train_x, bench.train_y) if split == "train" else (bench.test_x, bench.test_y)
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    pick = torch.from_numpy(rng.integers(0, len(digits), n))  # (n,) digits (1, 8, 8) in [0, 1]
    images = torch.empty(n, 3, size, size)
    masks = torch.zeros(n, size, size, dtype=torch.bool)
    boxes = torch.empty(n, 4)
    backgrounds = torch.empty(n, dtype=torch.long)
    pool = None
    if backgrounds_per_style is not None:
        prng = np.random.default_rng([seed, 2])
        pool = [torch.from_numpy(_background(k % background_styles, size, prng, clutter))
                for k in range(background_styles * backgrounds_per_style)]  # style of entry k: k % styles
    for i in range(n):
        if pool is None:
            style = int(rng.integers(0, background_styles))
            bg = torch.from_numpy(_background(style, size, rng, clutter))  # (3, size, size)
        else:
            k = int(rng.integers(0, len(pool)))
            style, bg = k % background_styles, pool[k]
        backgrounds[i] = style
        side = int(rng.integers(lo, hi + 1))
        ink = F.interpolate(digits[pick[i]][None], size=(side, side), mode="bilinear", align_corners=False)[0, 0]
        ink = ink.clamp(0, 1)
        x0, y0 = (int(v) for v in rng.integers(0, size - side + 1, 2))
        alpha = torch.zeros(size, size)
        alpha[y0 : y0 + side, x0 : x0 + side] = ink
        colour = rng.uniform(0.0, 1.0, 3).astype(np.float32)
        colour[rng.integers(0, 3)] = rng.uniform(0.85, 1.0)  # saturated, as make_scenes' objects
        images[i] = (1 - alpha) * bg + alpha * torch.from_numpy(colour)[:, None, None]
        masks[i] = alpha > 0.5
        ys, xs = torch.nonzero(masks[i] if masks[i].any() else alpha > 0, as_tuple=True)
        boxes[i] = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)
    names = tuple(str(d) for d in range(10))
    return Scenes(images.clamp(0, 1), masks, boxes, labels[pick].clone(), backgrounds, names)
