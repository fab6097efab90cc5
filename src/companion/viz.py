"""Figures: image grids, heat-map overlays, boxes, highlighted text, and ``explore``.

``explore(draw, **params)`` gives live ipywidgets controls in Jupyter/Colab and, in the built book
(no kernel), precomputed frames switched by a slider in the browser. One call gives both.

Book section: *How to read this book*, "Figures you can explore".
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import json
import os
import uuid
from collections.abc import Callable, Sequence

import matplotlib
import numpy as np
import torch

#: Figures colours for methods, used across chapters so "ours" and baselines look the same everywhere.
PALETTE = {
    "method": "#d62728",
    "baseline": "#7f7f7f",
    "truth": "#2ca02c",
    "pseudo": "#1f77b4",
    "other": "#ff7f0e",
}

STATIC_ENV = "COMPANION_STATIC_FIGURES"


def style() -> None:
    """The book's matplotlib style: small, legible, no top/right spines."""
    matplotlib.rcParams.update({
        "figure.dpi": 80, "savefig.dpi": 80, "font.size": 9, "axes.titlesize": 9,
        "axes.spines.top": False, "axes.spines.right": False, "image.interpolation": "nearest",
    })


def to_numpy_image(image) -> np.ndarray:
    """``(3, H, W)``/``(1, H, W)``/``(H, W)`` tensor or array in [0, 1] -> ``(H, W, 3)`` or ``(H, W)``."""
    a = image.detach().cpu().float().numpy() if isinstance(image, torch.Tensor) else np.asarray(image, dtype=np.float32)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = np.moveaxis(a, 0, -1)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    return np.clip(a, 0, 1)


def image_grid(images, titles: Sequence[str] | None = None, ncols: int = 6, size: float = 1.6, cmap: str = "gray"):
    """A grid of images (a batch tensor or a list); returns the figure."""
    import matplotlib.pyplot as plt

    images = list(images)
    if not images:
        raise ValueError("image_grid needs at least one image")
    ncols = min(ncols, len(images))
    nrows = int(np.ceil(len(images) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.25 if titles else 0)), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            ax.imshow(to_numpy_image(images[i]), cmap=cmap)
            if titles:
                ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    return fig


def overlay_heatmap(ax, image, heat, alpha: float = 0.5, cmap: str = "jet") -> None:
    """Draw ``image`` with ``heat`` (any size, upsampled to the image) blended over it."""
    img = to_numpy_image(image)
    h = torch.as_tensor(np.asarray(heat, dtype=np.float32))
    h = torch.nn.functional.interpolate(h[None, None], size=img.shape[:2], mode="bilinear", align_corners=False)[0, 0]
    h = (h - h.min()) / (h.max() - h.min() + 1e-8)
    ax.imshow(img, cmap="gray")
    ax.imshow(h.numpy(), cmap=cmap, alpha=alpha)
    ax.axis("off")


def draw_boxes(ax, boxes, color: str = PALETTE["method"], label: str | None = None, linewidth: float = 2.0) -> None:
    """Draw ``x1 y1 x2 y2`` pixel boxes (exclusive ends) on an image axis."""
    from matplotlib.patches import Rectangle

    b = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    for i, (x1, y1, x2, y2) in enumerate(b.tolist()):
        ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor=color,
                               linewidth=linewidth, label=label if i == 0 else None))


def highlight_words(words: Sequence[str], scores: Sequence[float], kept: Sequence[bool] | None = None) -> str:
    """HTML: each word shaded by its score in [0, 1]; dropped words struck through and grey."""
    if len(words) != len(scores):
        raise ValueError(f"{len(words)} words but {len(scores)} scores")
    kept = [True] * len(words) if kept is None else list(kept)
    spans = []
    for w, s, k in zip(words, scores, kept):
        s = float(np.clip(s, 0, 1))
        style_ = f"background: rgba(214, 39, 40, {0.1 + 0.6 * s:.2f});" if k else "color: #999; text-decoration: line-through;"
        spans.append(f'<span title="p(keep)={s:.2f}" style="{style_} padding: 0 1px; border-radius: 2px;">{html.escape(w)}</span>')
    return '<div style="line-height: 1.9; font-family: sans-serif;">' + " ".join(spans) + "</div>"


# ----------------------------------------------------------------------------------------------
# explore: live widgets or static frames


def static_figures() -> bool:
    """True while the book is being built (``COMPANION_STATIC_FIGURES=1``): no kernel will be there."""
    return os.environ.get(STATIC_ENV, "") == "1"


def _choices(name: str, values) -> list:
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, range, np.ndarray)):
        raise TypeError(f"parameter {name!r} needs a list or range of choices, got {values!r}")
    values = list(values)
    if not values:
        raise ValueError(f"parameter {name!r} has no choices")
    return values


def _render(fig, fmt: str, dpi: int) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    if fmt == "jpeg":
        fig.savefig(buf, format="jpeg", dpi=dpi, bbox_inches="tight", pil_kwargs={"quality": 80})
    else:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return f"data:image/{fmt};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


_SCRIPT = """
(function () {
  var root = document.getElementById("%(id)s");
  var frames = JSON.parse(root.querySelector("script.cx-frames").textContent);
  var img = root.querySelector("img.cx-frame");
  var controls = root.querySelectorAll("[data-param]");
  function update() {
    var key = [];
    controls.forEach(function (c) {
      key.push(c.value);
      var out = root.querySelector('[data-value-of="' + c.dataset.param + '"]');
      if (out) { out.textContent = JSON.parse(c.dataset.labels)[+c.value]; }
    });
    key = key.join("|");
    img.src = frames[key];
    img.dataset.frame = key;
  }
  controls.forEach(function (c) { c.addEventListener("input", update); c.addEventListener("change", update); });
  update();
})();
"""


class StaticExplorer:
    """Precomputed frames and the HTML that switches between them; shown as rich HTML output."""

    def __init__(self, params: dict[str, list], frames: dict[str, str], initial: dict[str, int]):
        self.params, self.frames, self.initial = params, frames, initial
        self.id = "cx-" + uuid.uuid4().hex[:10]

    def _repr_html_(self) -> str:
        rows = []
        for name, values in self.params.items():
            labels = json.dumps([str(v) for v in values])
            start = self.initial[name]
            if all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in values):
                control = (f'<input type="range" min="0" max="{len(values) - 1}" step="1" value="{start}" '
                           f'data-param="{html.escape(name)}" data-labels=\'{html.escape(labels)}\' style="width: 12em;">')
            else:
                options = "".join(
                    f'<option value="{i}"{" selected" if i == start else ""}>{html.escape(str(v))}</option>'
                    for i, v in enumerate(values)
                )
                control = f'<select data-param="{html.escape(name)}" data-labels=\'{html.escape(labels)}\'>{options}</select>'
            rows.append(
                f'<label style="margin-right: 1.2em; white-space: nowrap;"><b>{html.escape(name)}</b> {control} '
                f'<span data-value-of="{html.escape(name)}">{html.escape(str(values[start]))}</span></label>'
            )
        key = "|".join(str(self.initial[n]) for n in self.params)
        return (
            f'<div class="companion-explore" id="{self.id}">'
            f'<div class="cx-controls" style="margin-bottom: 0.4em;">{"".join(rows)}</div>'
            f'<img class="cx-frame" data-frame="{key}" src="{self.frames[key]}" style="max-width: 100%;" alt="explorable figure">'
            f'<script type="application/json" class="cx-frames">{json.dumps(self.frames)}</script>'
            f"<script>{_SCRIPT % {'id': self.id}}</script></div>"
        )


def explore(
    draw: Callable[..., object],
    *,
    static: bool | None = None,
    max_frames: int = 48,
    fmt: str = "png",
    dpi: int = 72,
    initial: dict | None = None,
    **params,
):
    """Explore ``draw(**setting)`` (which returns a matplotlib figure) over ``params``' choices.

    Live kernel: ipywidgets controls redraw on every change. Built book (``static=True``, or
    ``COMPANION_STATIC_FIGURES=1``): every setting of the grid is rendered once and a slider or menu
    in the page switches frames without a kernel. The grid must have at most ``max_frames`` settings.
    """
    if not params:
        raise ValueError("explore needs at least one parameter with choices")
    if fmt not in ("png", "jpeg"):
        raise ValueError(f"fmt must be 'png' or 'jpeg', got {fmt!r}")
    choices = {name: _choices(name, values) for name, values in params.items()}
    initial = initial or {}
    start = {}
    for name, values in choices.items():
        start[name] = values.index(initial[name]) if name in initial else 0
    if static is None:
        static = static_figures()
    if static:
        total = int(np.prod([len(v) for v in choices.values()]))
        if total > max_frames:
            sizes = " x ".join(f"{n}:{len(v)}" for n, v in choices.items())
            raise ValueError(f"the parameter grid has {total} settings ({sizes}), more than max_frames={max_frames}; "
                             "offer fewer choices or raise max_frames")
        frames = {}
        for combo in itertools.product(*[range(len(v)) for v in choices.values()]):
            setting = {n: choices[n][i] for n, i in zip(choices, combo)}
            frames["|".join(map(str, combo))] = _render(draw(**setting), fmt, dpi)
        return StaticExplorer(choices, frames, start)
    return _live(draw, choices, start)


def _live(draw, choices: dict[str, list], start: dict[str, int]):
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    controls = {}
    for name, values in choices.items():
        numeric = all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in values)
        options = [(str(v), v) for v in values]
        if numeric and len(values) > 1:
            controls[name] = widgets.SelectionSlider(options=options, value=values[start[name]], description=name,
                                                     continuous_update=False)
        else:
            controls[name] = widgets.Dropdown(options=options, value=values[start[name]], description=name)
    out = widgets.Output()

    def redraw(**setting):
        with out:
            out.clear_output(wait=True)
            fig = draw(**setting)
            display(fig)
            plt.close(fig)

    widgets.interactive_output(redraw, controls)
    return widgets.VBox([widgets.HBox(list(controls.values())), out])
