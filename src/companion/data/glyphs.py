"""Glyphs: letters and digits rendered from the fonts that ship with matplotlib, a CPU testbed whose
classes are decided by fine detail (O/Q, C/G, E/F, P/R, 8/B, c/e), so that 8 or 16 px loses
information that 32 px keeps.

Each image draws one character in one of :data:`GLYPH_FONTS` (DejaVu Sans and Serif, STIX, Computer
Modern roman and sans), with a random affine map (rotation, scale, shear, translation), a stroke weight
(the outline grown or shrunk), and a background (level, contrast, linear gradient and pixel noise). The
outline comes from :class:`matplotlib.textpath.TextPath`, is filled on a 4x finer grid and averaged
down, so edges are antialiased. Everything is drawn from one ``numpy`` generator seeded by ``seed``:
the same arguments give the same tensor on every machine.

Book section: *S3L* "The testbed".
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

#: Default classes: pairs that differ only in a small stroke (a tail, a bar, a gap, a closed bowl).
GLYPH_CLASSES = ("O", "Q", "C", "G", "E", "F", "P", "R", "8", "B", "c", "e")
#: Font files from matplotlib's ``mpl-data/fonts/ttf``, by name.
GLYPH_FONTS = {"DejaVu Sans": "DejaVuSans.ttf", "DejaVu Serif": "DejaVuSerif.ttf",
               "STIX": "STIXGeneral.ttf", "cmr10": "cmr10.ttf", "cmss10": "cmss10.ttf"}
#: Variation ranges: rotation (degrees, +-), glyph height (fraction of the side), shear (+-),
#: translation (fraction of the side, +-), stroke growth (fine-grid pixels, +-), background level,
#: glyph contrast, gradient amplitude (+-) and pixel noise (standard deviation).
ROTATION, HEIGHT, SHEAR, SHIFT = 15.0, (0.55, 0.8), 0.2, 0.08
STROKE, BACKGROUND, CONTRAST, GRADIENT, NOISE = 2, (0.0, 0.4), (0.45, 0.9), 0.15, 0.03
SUPERSAMPLE = 4


@dataclass
class Glyphs:
    """``images`` ``(N, 1, size, size)`` float32 in [0, 1], ``labels`` ``(N,)`` int64 indices into
    ``classes`` (the characters), ``fonts`` ``(N,)`` int64 indices into ``font_names``."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple
    fonts: torch.Tensor
    font_names: tuple

    def __len__(self) -> int:
        return len(self.labels)


def _font_path(name: str) -> str:
    import matplotlib

    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / GLYPH_FONTS[name])


@functools.lru_cache(maxsize=None)
def _outline(char: str, font: str):
    """The character's outline as (vertices, codes), centred, glyph height 1 (a cap-height box for
    lower case too, so c and e keep their x-height against O)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    prop = FontProperties(fname=_font_path(font))
    path = TextPath((0, 0), char, size=1.0, prop=prop)
    ref = TextPath((0, 0), "H", size=1.0, prop=prop).get_extents()  # cap height of the font
    v = np.asarray(path.vertices, dtype=np.float64)
    ext = path.get_extents()
    centre = np.array([(ext.x0 + ext.x1) / 2, (ref.y0 + ref.y1) / 2])
    if len(v) == 0 or ext.width <= 0:
        raise ValueError(f"font {font!r} has no outline for {char!r}")
    return (v - centre) / ref.height, np.asarray(path.codes)


def _fill(vertices: np.ndarray, codes: np.ndarray, fine: int) -> np.ndarray:
    """Coverage ``(fine, fine)`` bool of the outline (vertices in fine-grid pixels, y down)."""
    from matplotlib.path import Path as MplPath

    c = np.arange(fine) + 0.5
    gx, gy = np.meshgrid(c, c)
    grid = np.stack([gx.ravel(), gy.ravel()], 1)
    inside = np.zeros(len(grid), dtype=bool)
    for poly in MplPath(vertices, codes).to_polygons(closed_only=True):  # even-odd: holes of O, B, 8, e
        lo, hi = poly.min(0), poly.max(0)
        near = (grid[:, 0] >= lo[0]) & (grid[:, 0] <= hi[0]) & (grid[:, 1] >= lo[1]) & (grid[:, 1] <= hi[1])
        inside[near] ^= MplPath(poly).contains_points(grid[near])
    return inside.reshape(fine, fine)


def _grow(mask: np.ndarray, r: int) -> np.ndarray:
    from scipy import ndimage

    if r == 0:
        return mask
    op = ndimage.binary_dilation if r > 0 else ndimage.binary_erosion
    return op(mask, structure=ndimage.generate_binary_structure(2, 1), iterations=abs(r))


@functools.lru_cache(maxsize=8)
def _render(n: int, size: int, seed: int, classes: tuple, fonts: tuple):
    rng = np.random.default_rng(seed)
    k, fine = len(classes), size * SUPERSAMPLE
    labels = rng.permutation(np.arange(n) % k)
    font_idx = rng.integers(0, len(fonts), n)
    images = np.empty((n, 1, size, size), dtype=np.float32)
    ramp = (np.arange(size) + 0.5) / size - 0.5  # (size,)
    for i in range(n):
        v, codes = _outline(classes[labels[i]], fonts[font_idx[i]])
        angle = np.deg2rad(rng.uniform(-ROTATION, ROTATION))
        height = rng.uniform(*HEIGHT) * fine
        shear = rng.uniform(-SHEAR, SHEAR)
        shift = rng.uniform(-SHIFT, SHIFT, 2) * fine
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        m = height * rot @ np.array([[1.0, shear], [0.0, 1.0]])
        pts = v @ m.T
        pts[:, 1] = -pts[:, 1]  # font y up -> image y down
        mask = _grow(_fill(pts + fine / 2 + shift, codes, fine), int(rng.integers(-STROKE, STROKE + 1)))
        cover = mask.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean((1, 3))  # antialiased coverage
        bg = rng.uniform(*BACKGROUND)
        ink = bg + rng.uniform(*CONTRAST)
        gdir = rng.uniform(0, 2 * np.pi)
        grad = GRADIENT * rng.uniform(-1, 1) * (np.cos(gdir) * ramp[None, :] + np.sin(gdir) * ramp[:, None])
        img = bg + grad + (ink - bg) * cover + rng.normal(0, NOISE, (size, size))
        images[i, 0] = np.clip(img, 0.0, 1.0)
    return images, labels.astype(np.int64), font_idx.astype(np.int64)


def make_glyphs(n: int, size: int = 32, seed: int = 0, classes=GLYPH_CLASSES, fonts=tuple(GLYPH_FONTS)) -> Glyphs:
    """``n`` glyph images of ``size`` px (see the module), classes balanced (``n`` at least the number of
    classes, so each is present), deterministic in ``seed``. About 1 ms an image at 32 px; the last few
    calls are cached (a copy is returned).

    Book section: *S3L* "The testbed".
    """
    for name, value, low in (("n", n, 1), ("size", size, 8), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an integer, got {value!r}")
        if value < low:
            raise ValueError(f"{name} must be at least {low}, got {value}")
    if isinstance(classes, str) or not isinstance(classes, (tuple, list)) or len(classes) < 2:
        raise ValueError(f"classes must be a list of at least 2 characters, got {classes!r}")
    for c in classes:
        if not isinstance(c, str) or len(c) != 1 or c.isspace():
            raise ValueError(f"classes must hold single visible characters, got {c!r} in {classes!r}")
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct, got {classes!r}")
    if isinstance(fonts, str) or not isinstance(fonts, (tuple, list)) or not fonts:
        raise ValueError(f"fonts must be a non-empty list of names from {sorted(GLYPH_FONTS)}, got {fonts!r}")
    for f in fonts:
        if f not in GLYPH_FONTS:
            raise ValueError(f"unknown font {f!r} in fonts: choose from {sorted(GLYPH_FONTS)}")
    if n < len(classes):
        raise ValueError(f"n must be at least the number of classes ({len(classes)}) so each is present, got {n}")
    images, labels, font_idx = _render(int(n), int(size), int(seed), tuple(classes), tuple(fonts))
    return Glyphs(torch.from_numpy(images.copy()), torch.from_numpy(labels.copy()), tuple(classes),
                  torch.from_numpy(font_idx.copy()), tuple(fonts))
