"""Figures for the PSOL chapter: DDT projection maps beside the pseudo, regressed and true boxes.

Book section: *PSOL* "Explore: maps, layers and input size".
"""

from __future__ import annotations

import torch

from .. import backbones, viz
from .. import boxes as bx
from .ddt import ddt_boxes, extract_descriptors, fit_ddt_per_class

__all__ = ["DDTExplorer"]


class DDTExplorer:
    """Draws one held-out image with DDT's map and box for a chosen feature source and input size,
    next to the quick run's regressed box and the true box.

    ``run``: the :class:`~companion.psol.experiment.Run` of a quick run. DDT is refitted for each
    (features, input size) on ``fit_per_class`` training images per class, and cached.
    Feature sources: ``"random layer1"``, ``"random layer2"`` (a random CNN of the run's
    architecture), ``"encoder stage 2"``, ``"encoder stage 3"`` (the run's trained small CNN).

    Book section: *PSOL* "Explore: maps, layers and input size".
    """

    SOURCES = ("random layer1", "random layer2", "encoder stage 2", "encoder stage 3")

    def __init__(self, run, fit_per_class: int = 32):
        a = run.artifacts
        if "psol" not in a:
            raise ValueError("DDTExplorer needs the Run of a quick experiment (with its artifacts)")
        self.cfg, self.train, self.test, self.encoder = a["config"], a["train"], a["test"], a["encoder"]
        self.regressed = a["psol"].boxes
        idx = []
        for c in self.train.labels.unique().tolist():
            idx += (self.train.labels == c).nonzero().flatten()[:fit_per_class].tolist()
        self.fit_idx = torch.tensor(sorted(idx))
        self._cache: dict = {}

    def _trunk(self, source: str):
        if source not in self.SOURCES:
            raise ValueError(f"source must be one of {self.SOURCES}, got {source!r}")
        kind, _, which = source.partition(" ")
        if kind == "random":
            return backbones.conv_trunk(self.cfg.ddt_arch, which, init=self.cfg.ddt_init, seed=self.cfg.seed), True
        return self.encoder.trunk(int(which.split()[-1])), False

    def ddt(self, source: str, input_size: int, index: int):
        """``(map (h, w), box (4,))`` of test image ``index`` for this feature source and input size."""
        key = (source, input_size)
        if key not in self._cache:
            trunk, norm = self._trunk(source)
            tr = self.train.subset(self.fit_idx)
            models = fit_ddt_per_class(extract_descriptors(trunk, tr.images, input_size, norm), tr.labels, self.cfg.sign)
            self._cache[key] = (trunk, norm, models)
        trunk, norm, models = self._cache[key]
        d = extract_descriptors(trunk, self.test.images[index : index + 1], input_size, norm)
        boxes, maps, _ = ddt_boxes(d, self.test.labels[index : index + 1], self.cfg.image_size, models=models)
        return maps[0], boxes[0]

    def draw(self, image: int = 0, features: str = "random layer1", input_size: int = 64):
        """The figure: left, the image with true (green), DDT (blue) and regressed (red) boxes;
        right, DDT's projection map (red > 0 = foreground, blue < 0)."""
        import matplotlib.pyplot as plt

        pmap, box = self.ddt(features, input_size, image)
        gt = self.test.boxes[image]
        reg = self.regressed[image]
        iou = lambda b: float(bx.best_iou(b.reshape(1, 4), gt.reshape(1, 4))[0])  # noqa: E731
        fig, (a0, a1) = plt.subplots(1, 2, figsize=(6, 3))
        a0.imshow(viz.to_numpy_image(self.test.images[image]))
        viz.draw_boxes(a0, gt, viz.PALETTE["truth"], "true box")
        viz.draw_boxes(a0, box, viz.PALETTE["pseudo"], f"DDT, IoU {iou(box):.2f}")
        viz.draw_boxes(a0, reg, viz.PALETTE["method"], f"regressor, IoU {iou(reg):.2f}")
        a0.legend(loc="upper center", bbox_to_anchor=(0.5, -0.02), fontsize=7, frameon=False, ncol=1)
        a0.axis("off")
        m = float(pmap.abs().max()) or 1.0
        a1.imshow(pmap.numpy(), cmap="RdBu_r", vmin=-m, vmax=m)
        a1.contour((pmap > 0).float().numpy(), levels=[0.5], colors="k", linewidths=0.8)
        a1.set_title(f"DDT map {tuple(pmap.shape)}, {features}, {input_size} px", fontsize=8)
        a1.axis("off")
        fig.tight_layout()
        return fig
