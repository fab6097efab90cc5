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

from ..data import Scenes, make_scenes

__all__ = ["off_centre_scenes"]


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
