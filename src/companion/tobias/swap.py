r"""The Tobias augmentation: keep an image's foreground cells, replace its background with another
image's background.

Cut image :math:`A` into a :math:`g \times g` grid of patches (:math:`g = 4`). A random CNN's map
ranks the cells; the top :math:`g^2/2` are *foreground* :math:`F_A`, the rest background
:math:`B_A`. With probability :math:`p` (0.3 in the paper's scripts), pick another image :math:`B`,
take its background cells :math:`B_B` and a random permutation :math:`\pi` of them, and build

.. math:: \tilde A[c] = \begin{cases} A[c] & c \in F_A \\ B[\pi(c)] & c \in B_A \end{cases}

Only the MoCo *query* view starts from :math:`\tilde A`; the key view is always :math:`A`.

**Cell alignment.** The official code max-pools the 7x7 map of a 224-px image (kernel 2, stride 2,
padding 1) to 4x4: its first cell pools feature row 0 only and the others rows 1-2, 3-4 and 5-6, so a
mask cell does not cover the 56-px image patch it decides about. Here each cell's score is the
*area-weighted mean* of the map over exactly that patch: the map is upsampled by ``g`` with nearest
neighbours (each feature cell becomes a ``g x g`` block) and average-pooled by the map side, so a
feature cell counts in proportion to the part of the patch it covers (:func:`cell_scores`).

Book sections: *Tobias* "Background swap" and "Background swap inside MoCo v2".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["cell_scores", "foreground_cells", "to_patches", "from_patches", "background_swap", "tobias_swap"]


def cell_scores(maps, grid: int = 4) -> torch.Tensor:
    """Area-weighted mean of each ``(h, w)`` map over a ``grid x grid`` partition: ``(N, grid, grid)``.

    Exact for any map size: upsampling by ``grid`` makes ``(h*grid, w*grid)``, which splits into
    ``grid x grid`` blocks of ``h x w`` fine cells each. Book section: *Tobias* "Background swap".
    """
    m = torch.as_tensor(maps, dtype=torch.float32)
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3 or m.shape[0] == 0:
        raise ValueError(f"maps must be a non-empty (N, h, w) batch, got shape {tuple(m.shape)}")
    if not isinstance(grid, int) or grid < 2:
        raise ValueError(f"grid must be an integer >= 2, got {grid!r}")
    h, w = m.shape[-2:]
    fine = F.interpolate(m[:, None], size=(h * grid, w * grid), mode="nearest")  # (N, 1, h*g, w*g)
    return F.avg_pool2d(fine, kernel_size=(h, w))[:, 0]  # (N, g, g)


def foreground_cells(scores, k: int | None = None) -> torch.Tensor:
    """The top-``k`` cells of each score grid (default: half of them) as a bool ``(N, g*g)`` mask.

    Cells are numbered row by row. Ties go to the lower index (a stable sort).
    Book section: *Tobias* "Background swap".
    """
    s = torch.as_tensor(scores, dtype=torch.float32)
    if s.ndim == 2:
        s = s[None]
    if s.ndim != 3 or s.shape[0] == 0:
        raise ValueError(f"scores must be a non-empty (N, g, g) batch, got shape {tuple(s.shape)}")
    flat = s.flatten(1)  # (N, g*g)
    cells = flat.shape[1]
    k = cells // 2 if k is None else k
    if not 0 < k < cells:
        raise ValueError(f"k must be between 1 and {cells - 1} foreground cells, got {k}")
    order = torch.sort(flat, dim=1, descending=True, stable=True).indices[:, :k]  # (N, k)
    return torch.zeros_like(flat, dtype=torch.bool).scatter_(1, order, True)


def _check_batch(x: torch.Tensor, grid: int, name: str) -> None:
    if not torch.is_tensor(x) or x.ndim != 4:
        raise ValueError(f"{name} must be an image batch (N, C, H, W), got {getattr(x, 'shape', type(x))}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch")
    h, w = x.shape[-2:]
    if h % grid or w % grid:
        raise ValueError(f"{name}: a {grid}x{grid} grid needs H and W divisible by {grid}, got {h}x{w}; resize first")


def to_patches(x: torch.Tensor, grid: int = 4) -> torch.Tensor:
    """``(N, C, H, W)`` -> ``(N, g*g, C, H/g, W/g)``, patches numbered row by row."""
    n, c, h, w = x.shape
    ph, pw = h // grid, w // grid
    return x.reshape(n, c, grid, ph, grid, pw).permute(0, 2, 4, 1, 3, 5).reshape(n, grid * grid, c, ph, pw)


def from_patches(p: torch.Tensor, grid: int = 4) -> torch.Tensor:
    """The inverse of :func:`to_patches`."""
    n, _, c, ph, pw = p.shape
    return p.reshape(n, grid, grid, c, ph, pw).permute(0, 3, 1, 4, 2, 5).reshape(n, c, grid * ph, grid * pw)


def background_swap(a: torch.Tensor, b: torch.Tensor, fg_a: torch.Tensor, fg_b: torch.Tensor, grid: int = 4,
                    perm: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Keep ``a``'s foreground patches, fill its background cells with ``b``'s background patches.

    ``a``, ``b``: ``(N, C, H, W)`` (or one ``(C, H, W)`` image each) with H, W divisible by ``grid``;
    ``fg_a``, ``fg_b``: bool ``(N, g*g)`` foreground masks (:func:`foreground_cells`) with the same
    number of background cells. ``perm``: ``(N, n_bg)``, the order in which ``b``'s background patches
    (listed row by row) fill ``a``'s background positions (row by row); random when ``None``.
    Pure indexing: ``a``'s foreground pixels are copied bit for bit. Book section: *Tobias* "Background swap".
    """
    single = torch.is_tensor(a) and a.ndim == 3
    if single:
        a, b = a[None], b[None]
        fg_a, fg_b = torch.as_tensor(fg_a).reshape(1, -1), torch.as_tensor(fg_b).reshape(1, -1)
    _check_batch(a, grid, "a")
    _check_batch(b, grid, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    fg_a, fg_b = torch.as_tensor(fg_a, dtype=torch.bool), torch.as_tensor(fg_b, dtype=torch.bool)
    cells = grid * grid
    if fg_a.shape != (len(a), cells) or fg_b.shape != (len(a), cells):
        raise ValueError(f"fg_a and fg_b must be bool ({len(a)}, {cells}), got {tuple(fg_a.shape)} and {tuple(fg_b.shape)}")
    n_bg = (~fg_a).sum(1)
    if not (n_bg == (~fg_b).sum(1)).all() or not (n_bg == n_bg[0]).all():
        raise ValueError("every image needs the same number of background cells in a and b")
    n_bg = int(n_bg[0])
    pa, pb = to_patches(a, grid), to_patches(b, grid)  # (N, g*g, C, ph, pw)
    if n_bg == 0:
        return a.clone()[0] if single else a.clone()
    # stable sort puts background cells (False) first, in row order
    pos_a = torch.sort(fg_a.to(torch.uint8), dim=1, stable=True).indices[:, :n_bg]  # (N, n_bg)
    pos_b = torch.sort(fg_b.to(torch.uint8), dim=1, stable=True).indices[:, :n_bg]  # (N, n_bg)
    if perm is None:
        perm = torch.argsort(torch.rand(len(a), n_bg, generator=generator), dim=1)
    perm = torch.as_tensor(perm, dtype=torch.long)
    if perm.shape != (len(a), n_bg) or not (perm.sort(1).values == torch.arange(n_bg)).all():
        raise ValueError(f"perm must hold a permutation of range({n_bg}) per image, shape ({len(a)}, {n_bg})")
    src = torch.gather(pos_b, 1, perm).to(a.device)  # (N, n_bg): b's cell that goes to each of a's background cells
    expand = (-1, -1) + tuple(pa.shape[2:])
    out = pa.clone()
    out.scatter_(1, pos_a.to(a.device).view(len(a), n_bg, 1, 1, 1).expand(*expand),
                 torch.gather(pb, 1, src.view(len(a), n_bg, 1, 1, 1).expand(*expand)))
    out = from_patches(out, grid)
    return out[0] if single else out


def tobias_swap(x: torch.Tensor, scores: torch.Tensor, p: float = 0.3, grid: int = 4,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The augmentation on a batch: each image, with probability ``p``, gets the background of another
    image of the same batch (its partner is drawn uniformly among the others).

    ``x``: ``(N, C, H, W)``; ``scores``: ``(N, g, g)`` cell scores (:func:`cell_scores`). Returns
    ``(images, swapped)`` where ``swapped`` is a bool ``(N,)``. With ``p = 0`` the batch comes back
    unchanged. Random draws use ``generator`` (CPU) or the global torch RNG.
    Book section: *Tobias* "Background swap inside MoCo v2".
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1], got {p}")
    _check_batch(x, grid, "x")
    s = torch.as_tensor(scores)
    if s.shape != (len(x), grid, grid):
        raise ValueError(f"scores must be ({len(x)}, {grid}, {grid}) for this batch, got {tuple(s.shape)}")
    n = len(x)
    if p == 0.0:
        return x, torch.zeros(n, dtype=torch.bool)
    if n < 2:
        raise ValueError("the swap needs at least two images in the batch (a partner for each)")
    swapped = torch.rand(n, generator=generator) < p  # (N,)
    partner = (torch.arange(n) + torch.randint(1, n, (n,), generator=generator)) % n  # never itself
    fg = foreground_cells(s.cpu())
    out = background_swap(x, x[partner.to(x.device)], fg, fg[partner], grid, generator=generator)
    return torch.where(swapped.to(x.device).view(n, 1, 1, 1), out, x), swapped
