"""Synthetic scenes: textured shapes on cluttered backgrounds, with boxes, masks and labels.

Deterministic by seed and any image size, they stand in for photo datasets in quick runs:
localization (Tobias, PSOL), few-shot episodes, and quick self-supervised pretraining.

Book section: *How to read this book*, "The quick data".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from skimage.draw import polygon as draw_polygon

SHAPES = ("circle", "square", "triangle", "star", "cross", "ring", "diamond", "hexagon")
TEXTURES = ("solid", "stripes", "checker", "dots")


@dataclass
class Scenes:
    """A batch of synthetic scenes.

    images: ``(N, 3, H, W)`` float32 in [0, 1]; masks: ``(N, H, W)`` bool, the object's pixels;
    boxes: ``(N, 4)`` float32 ``x1 y1 x2 y2`` (tight around the mask, exclusive ends);
    labels: ``(N,)`` int64 shape class; backgrounds: ``(N,)`` int64 background style.
    """

    images: torch.Tensor
    masks: torch.Tensor
    boxes: torch.Tensor
    labels: torch.Tensor
    backgrounds: torch.Tensor
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index], self.labels[index]

    def subset(self, index) -> "Scenes":
        index = torch.as_tensor(index)
        return Scenes(
            self.images[index], self.masks[index], self.boxes[index], self.labels[index],
            self.backgrounds[index], self.class_names,
        )

    def object_area(self) -> torch.Tensor:
        """Object area as a fraction of the image, per scene."""
        return self.masks.flatten(1).float().mean(1)


def _shape_mask(shape: str, size: int, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    dx, dy = xx - cx, yy - cy
    if shape == "circle":
        return dx**2 + dy**2 <= r**2
    if shape == "ring":
        d2 = dx**2 + dy**2
        return (d2 <= r**2) & (d2 >= (0.55 * r) ** 2)
    if shape == "cross":
        c, s = np.cos(angle), np.sin(angle)
        u, v = c * dx + s * dy, -s * dx + c * dy
        arm = 0.33 * r
        return ((np.abs(u) <= arm) & (np.abs(v) <= r)) | ((np.abs(v) <= arm) & (np.abs(u) <= r))
    corners = {"square": 4, "diamond": 4, "triangle": 3, "hexagon": 6}
    if shape == "star":
        k = np.arange(10)
        radii = np.where(k % 2 == 0, r, 0.45 * r)
        theta = angle + k * np.pi / 5
    else:
        n = corners[shape]
        k = np.arange(n)
        radii = np.full(n, r * (1.25 if shape == "square" else 1.0))
        offset = np.pi / 4 if shape == "square" else 0.0
        theta = angle + offset + 2 * np.pi * k / n
        if shape == "diamond":
            radii = np.where(k % 2 == 0, 1.25 * r, 0.7 * r)
    rows = cy + radii * np.sin(theta)
    cols = cx + radii * np.cos(theta)
    mask = np.zeros((size, size), dtype=bool)
    rr, cc = draw_polygon(rows, cols, shape=(size, size))
    mask[rr, cc] = True
    return mask


def _texture(kind: str, size: int, rng: np.random.Generator, scale: float) -> np.ndarray:
    """A [0, 1] pattern of shape (H, W)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    period = max(2.0, scale * rng.uniform(0.15, 0.35))
    if kind == "solid":
        return np.ones((size, size), dtype=np.float32)
    if kind == "stripes":
        a = rng.uniform(0, np.pi)
        return (np.sin((np.cos(a) * xx + np.sin(a) * yy) * 2 * np.pi / period) > 0).astype(np.float32)
    if kind == "checker":
        return ((np.floor(xx / period) + np.floor(yy / period)) % 2).astype(np.float32)
    # dots
    return ((np.sin(xx * 2 * np.pi / period) * np.sin(yy * 2 * np.pi / period)) > 0.3).astype(np.float32)


def _smooth_noise(size: int, rng: np.random.Generator, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a coarse random grid upsampled bilinearly."""
    coarse = torch.from_numpy(rng.random((1, 3, cells, cells), dtype=np.float32))
    up = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    return up[0].numpy()


def _background(style: int, size: int, rng: np.random.Generator, clutter: int) -> np.ndarray:
    """(3, H, W) background: style 0 smooth noise, 1 grass-like stripes, 2 tiles, 3 blotches.

    ``clutter`` small distractor strokes (thin lines and specks, never object-sized) are added.
    """
    base = 0.25 + 0.35 * _smooth_noise(size, rng, cells=rng.integers(3, 7))
    tint = rng.uniform(0.3, 0.7, size=(3, 1, 1)).astype(np.float32)
    if style == 1:
        base = base * (0.85 + 0.15 * _texture("stripes", size, rng, size)[None])
    elif style == 2:
        base = base * (0.85 + 0.15 * _texture("checker", size, rng, size)[None])
    elif style == 3:
        base = 0.5 * base + 0.3 * _smooth_noise(size, rng, cells=max(4, size // 6))
    img = (0.55 * base + 0.45 * tint * base).astype(np.float32)
    for _ in range(clutter):
        colour = rng.uniform(0.2, 0.8, size=3).astype(np.float32)
        if rng.random() < 0.5:  # a thin straight stroke
            y0, x0 = rng.integers(0, size, 2)
            length, a = rng.uniform(0.1, 0.3) * size, rng.uniform(0, np.pi)
            t = np.linspace(0, 1, int(length) + 2)
            ys = np.clip((y0 + t * length * np.sin(a)).astype(int), 0, size - 1)
            xs = np.clip((x0 + t * length * np.cos(a)).astype(int), 0, size - 1)
            img[:, ys, xs] = 0.5 * img[:, ys, xs] + 0.5 * colour[:, None]
        else:  # a small speck
            s = max(1, int(size * rng.uniform(0.02, 0.05)))
            y0, x0 = rng.integers(0, size - s, 2)
            img[:, y0 : y0 + s, x0 : x0 + s] = 0.5 * img[:, y0 : y0 + s, x0 : x0 + s] + 0.5 * colour[:, None, None]
    return img


def make_scenes(
    n: int,
    size: int = 64,
    classes: tuple[str, ...] | int = 4,
    seed: int = 0,
    scale: tuple[float, float] = (0.2, 0.55),
    clutter: int = 6,
    background_styles: int = 4,
    class_background: float = 0.0,
) -> Scenes:
    """Make ``n`` scenes of ``size x size`` pixels, each with one textured object.

    ``classes``: shape names from :data:`SHAPES`, or how many of them (the first ``k``).
    ``scale``: the object's radius range as a fraction of half the image side, so objects of
    mixed sizes appear. ``class_background`` in [0, 1]: how often the background style is tied to the
    class (0 = backgrounds vary independently of the class; 1 = class and background always agree,
    a shortcut an SSL method can latch on to).
    """
    if not isinstance(n, int) or n <= 0:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels for shapes to be drawn, got {size}")
    names = SHAPES[:classes] if isinstance(classes, int) else tuple(classes)
    unknown = [c for c in names if c not in SHAPES]
    if unknown or not names:
        raise ValueError(f"unknown shape classes {unknown}; choose from {SHAPES}")
    lo, hi = scale
    if not 0 < lo <= hi <= 0.9:
        raise ValueError(f"scale must satisfy 0 < low <= high <= 0.9, got {scale}")
    if not 0.0 <= class_background <= 1.0:
        raise ValueError(f"class_background must be in [0, 1], got {class_background}")

    rng = np.random.default_rng(seed)
    images = np.empty((n, 3, size, size), dtype=np.float32)
    masks = np.empty((n, size, size), dtype=bool)
    labels = rng.integers(0, len(names), size=n)
    backgrounds = np.empty(n, dtype=np.int64)
    for i in range(n):
        tied = rng.random() < class_background
        style = int(labels[i] % background_styles) if tied else int(rng.integers(0, background_styles))
        backgrounds[i] = style
        img = _background(style, size, rng, clutter)
        r = rng.uniform(lo, hi) * size / 2
        margin = r * 1.3
        cx = rng.uniform(min(margin, size / 2), max(size - margin, size / 2))
        cy = rng.uniform(min(margin, size / 2), max(size - margin, size / 2))
        mask = _shape_mask(names[labels[i]], size, cx, cy, r, rng.uniform(0, 2 * np.pi))
        if not mask.any():  # a degenerate draw at a tiny size: fall back to a disc
            mask = _shape_mask("circle", size, cx, cy, max(r, 2.0), 0.0)
        colour = rng.uniform(0.0, 1.0, size=3).astype(np.float32)
        colour[rng.integers(0, 3)] = rng.uniform(0.85, 1.0)  # saturated, so the object stands out
        second = 1.0 - colour
        tex = _texture(TEXTURES[rng.integers(0, len(TEXTURES))], size, rng, 2 * r)
        fill = colour[:, None, None] * (0.6 + 0.4 * tex) + second[:, None, None] * 0.25 * (1 - tex)
        img = np.where(mask[None], np.clip(fill, 0, 1), img)
        images[i], masks[i] = img, mask

    boxes = np.empty((n, 4), dtype=np.float32)
    for i in range(n):
        ys, xs = np.nonzero(masks[i])
        boxes[i] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    return Scenes(
        images=torch.from_numpy(images),
        masks=torch.from_numpy(masks),
        boxes=torch.from_numpy(boxes),
        labels=torch.from_numpy(labels.astype(np.int64)),
        backgrounds=torch.from_numpy(backgrounds),
        class_names=names,
    )
