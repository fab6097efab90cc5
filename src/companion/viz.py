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


#: Figures are drawn this wide (inches) and shown across the book's content column (~690-730 CSS px).
FIG_WIDTH = 7.2
#: Pixels per inch of explorable frames and figures: 1440 px for ~720 CSS px, 2x for HiDPI screens.
DPI = 200
#: No text in a figure is smaller than this (points): at FIG_WIDTH shown ~720 px wide, 9.5 pt is about
#: 13 CSS px, 80% of the body text (16 px).
MIN_FONT_PT = 9.5
#: Image formats of book figures. WebP (the default) keeps chapter pages light: every page stays under
#: 3 MB with its explorers' frames at 2x.
FORMATS = ("webp", "png", "jpeg")
WEBP_QUALITY = 80


def css_px_per_pt(width_in: float = FIG_WIDTH, shown_px: float = 720) -> float:
    """CSS pixels per point of text in a figure ``width_in`` inches wide shown ``shown_px`` CSS px wide."""
    return shown_px / (width_in * 72)


def style() -> None:
    """The book's matplotlib style: column-wide figures, readable text, no top/right spines.

    In IPython, inline figures are sent as 2x ("retina") PNGs shown at half their pixel size.
    """
    matplotlib.rcParams.update({
        "figure.figsize": (FIG_WIDTH, 3.2), "figure.dpi": DPI / 2, "savefig.dpi": DPI,
        "font.size": 10.5, "axes.titlesize": 11, "axes.labelsize": 10.5, "figure.titlesize": 12,
        "xtick.labelsize": 10, "ytick.labelsize": 10, "legend.fontsize": 10, "legend.title_fontsize": 10,
        "axes.spines.top": False, "axes.spines.right": False, "image.interpolation": "nearest",
    })
    try:
        from IPython import get_ipython

        if get_ipython() is not None:
            from matplotlib_inline.backend_inline import set_matplotlib_formats

            set_matplotlib_formats("retina")
    except ImportError:  # plain Python: nothing to configure
        pass


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
                ax.set_title(titles[i])
    fig.tight_layout()
    return fig


def overlay_heatmap(ax, image, heat, alpha: float = 0.5, cmap: str = "jet"):
    """Draw ``image`` with ``heat`` (any size, upsampled to the image, scaled to [0, 1]) blended over it.

    Returns the heat layer, for :func:`colorbar`.
    """
    img = to_numpy_image(image)
    h = torch.as_tensor(np.asarray(heat, dtype=np.float32))
    h = torch.nn.functional.interpolate(h[None, None], size=img.shape[:2], mode="bilinear", align_corners=False)[0, 0]
    h = (h - h.min()) / (h.max() - h.min() + 1e-8)
    ax.imshow(img, cmap="gray")
    layer = ax.imshow(h.numpy(), cmap=cmap, alpha=alpha, vmin=0, vmax=1)
    ax.axis("off")
    return layer


def colorbar(axes, mappable=None, *, label: str | None = None, cmap: str | None = None,
             vmin: float = 0.0, vmax: float = 1.0, ticks=None, **kwargs):
    """One colour bar beside ``axes`` (an Axes, or a list/array of Axes sharing one colour scale).

    The scale comes from ``mappable`` (e.g. what ``imshow`` or :func:`overlay_heatmap` returned), else
    from ``cmap`` with ``vmin``..``vmax``, else from the last image drawn on the axes. Returns the bar.
    """
    import matplotlib.cm
    import matplotlib.colors

    flat = list(np.ravel(axes)) if isinstance(axes, (list, tuple, np.ndarray)) else [axes]
    if not flat:
        raise ValueError("colorbar needs at least one Axes")
    if mappable is None and cmap is not None:
        mappable = matplotlib.cm.ScalarMappable(matplotlib.colors.Normalize(vmin, vmax), cmap=cmap)
    if mappable is None:
        images = [im for ax in flat for im in ax.images]
        if not images:
            raise ValueError("no image on these axes: pass mappable= or cmap=")
        mappable = images[-1]
    kwargs.setdefault("fraction", 0.046 if len(flat) == 1 else 0.025)
    kwargs.setdefault("pad", 0.03)
    bar = flat[0].figure.colorbar(mappable, ax=flat if len(flat) > 1 else flat[0], ticks=ticks, **kwargs)
    if label:
        bar.set_label(label)
    bar.outline.set_visible(False)
    return bar


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
# layout check: text that overlaps or leaves the figure


def _texts(fig) -> list[tuple[str, object]]:
    """(name, artist) of every title, axis label, legend and suptitle of ``fig`` that shows something."""
    items = []
    if getattr(fig, "_suptitle", None) is not None and fig._suptitle.get_text():
        items.append(("suptitle", fig._suptitle))
    for i, leg in enumerate(fig.legends):
        items.append((f"figure legend {i}", leg))
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible():
            continue
        for where, title in (("title", ax.title), ("left title", ax._left_title), ("right title", ax._right_title)):
            if title.get_text():
                items.append((f"axes {i} {where}", title))
        for which, label in (("x label", ax.xaxis.label), ("y label", ax.yaxis.label)):
            if label.get_text() and label.get_visible():
                items.append((f"axes {i} {which}", label))
        if ax.get_legend() is not None:
            items.append((f"axes {i} legend", ax.get_legend()))
    return items


def _data_points(ax) -> np.ndarray:
    """Display coordinates of the lines' points, scatter points and bar tops drawn in ``ax``."""
    pts = []
    for line in ax.get_lines():
        xy = np.column_stack([np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)])
        if len(xy) and line.get_visible():
            # axvline/axhline: their 2 points span the axes; a legend may sit beside them, not on their ends
            if line.get_transform() is not ax.transData:
                continue
            pts.append(line.get_transform().transform(xy))
    for coll in ax.collections:
        offsets = coll.get_offsets()
        if len(offsets):
            pts.append(coll.get_offset_transform().transform(offsets))
    for patch in ax.patches:
        if hasattr(patch, "get_height") and getattr(patch, "get_height")() not in (0, None):
            x, y, w, h = patch.get_x(), patch.get_y(), patch.get_width(), patch.get_height()
            pts.append(patch.get_transform().transform(np.array([[x + w / 2, y + h]])))
    if not pts:
        return np.zeros((0, 2))
    xy = np.concatenate(pts)
    return xy[np.isfinite(xy).all(1)]


def layout_problems(fig, tolerance: float = 1.0) -> list[str]:
    """What is wrong with ``fig``'s layout, in words (empty when nothing is).

    Checked with the renderer's bounding boxes: every title, axis label, legend and suptitle lies inside
    the figure; no two of them overlap; and no legend inside an axes covers a plotted point (line vertex,
    scatter point, bar top) of that axes.
    """
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    page = fig.bbox
    items = [(name, artist, artist.get_window_extent(renderer)) for name, artist in _texts(fig)]
    problems = []
    for name, _, box in items:
        if (box.x0 < page.x0 - tolerance or box.y0 < page.y0 - tolerance or box.x1 > page.x1 + tolerance
                or box.y1 > page.y1 + tolerance):
            problems.append(f"{name} leaves the figure ({box.x0:.0f}, {box.y0:.0f}, {box.x1:.0f}, {box.y1:.0f} "
                            f"in a {page.width:.0f} x {page.height:.0f} px figure)")
    for i, (a, _, box_a) in enumerate(items):
        for b, _, box_b in items[i + 1:]:
            w = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
            h = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
            if w > tolerance and h > tolerance:
                problems.append(f"{a} overlaps {b}")
    for i, ax in enumerate(fig.axes):
        legend = ax.get_legend()
        if legend is None:
            continue
        box = legend.get_window_extent(renderer)
        if not ax.bbox.overlaps(box):
            continue  # a legend outside its axes covers none of its data
        xy = _data_points(ax)
        inside = (xy[:, 0] > box.x0) & (xy[:, 0] < box.x1) & (xy[:, 1] > box.y0) & (xy[:, 1] < box.y1)
        if inside.any():
            problems.append(f"axes {i} legend covers {int(inside.sum())} plotted points")
    return problems


# ----------------------------------------------------------------------------------------------
# printed source: the lines that compute the method

#: Calls whose only job is to check arguments; a bare call to one is left out of printed source.
_CHECK_PREFIXES = ("check", "_check", "require", "_require", "validate", "_validate")


def _is_check(stmt) -> bool:
    """An argument check: ``if ...: raise ...``, ``assert``, or a bare call to a checking helper."""
    import ast

    if isinstance(stmt, ast.Assert):
        return True
    if isinstance(stmt, ast.If) and not stmt.orelse and all(isinstance(s, ast.Raise) for s in stmt.body):
        return True
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        f = stmt.value.func
        name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
        return name.startswith(_CHECK_PREFIXES)
    return False


def method_source(fn, width: int = 88) -> str:
    """The source of ``fn`` as a reader should see it: no docstring, no argument checks, short lines.

    Argument checks (``if ...: raise``, ``assert``, bare calls to ``check_*`` helpers) at the top level of
    the body are left out with the comment lines right above them; an inline comment that would push a
    line past ``width`` characters moves onto its own line above the code. What remains is the function's
    code, unchanged, so the page shows exactly what runs.
    """
    import ast
    import inspect
    import textwrap

    lines = textwrap.dedent(inspect.getsource(fn)).splitlines()
    node = ast.parse("\n".join(lines)).body[0]
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        raise TypeError(f"method_source takes a function or method, got {type(fn).__name__} {fn!r}")
    drop = set()
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        drop.update(range(body[0].lineno - 1, body[0].end_lineno))
    for stmt in body:
        if _is_check(stmt):
            first = stmt.lineno - 1
            while first - 1 >= 0 and lines[first - 1].strip().startswith("#"):
                first -= 1
            drop.update(range(first, stmt.end_lineno))
    out = []
    for i, line in enumerate(lines):
        if i in drop:
            continue
        code, sep, comment = line.partition("  # ")
        if len(line) > width and sep and code.strip() and "'" not in comment and '"' not in comment:
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}# {comment.strip()}")
            line = code.rstrip()
        if line.lstrip().startswith("#") and len(line) > width:
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(textwrap.wrap(line.lstrip()[1:].strip(), width - len(indent) - 2,
                                     initial_indent=indent + "# ", subsequent_indent=indent + "# "))
        else:
            out.extend(_wrap_code(line, width))
    return "\n".join(out)


def _wrap_code(line: str, width: int) -> list[str]:
    """Break a long line of code after a comma inside brackets, aligned with the bracket (still valid Python)."""
    out = []
    while len(line) > width:
        opens, quote, cut = [], None, None
        for j, ch in enumerate(line):
            if quote:
                quote = None if ch == quote and line[j - 1] != "\\" else quote
            elif ch in "'\"":
                quote = ch
            elif ch == "#":
                break
            elif ch in "([{":
                opens.append(j)
            elif ch in ")]}" and opens:
                opens.pop()
            elif ch == "," and opens and line[opens[-1]] != "[" and j + 1 < width and line[j + 1:j + 2] == " ":
                # the outermost comma that fits: arguments split before their parts do
                if cut is None or cut[2] < 0 or len(opens) <= cut[2]:
                    cut = (j + 1, opens[-1] + 1, len(opens))
            elif ch in "+-*" and opens and j < width and line[j - 1:j] == " " and line[j + 1:j + 2] == " ":
                # no comma to break at: break before a binary operator inside brackets (commas win)
                if cut is None or cut[2] < 0:
                    cut = (j - 1, opens[-1] + 1, -len(opens))
        if cut is None:
            break
        out.append(line[:cut[0]].rstrip())
        line = " " * cut[1] + line[cut[0]:].lstrip()
    return out + [line]


def show_source(fn, width: int = 88):
    """Display :func:`method_source` of ``fn`` as a Python code block (plain text outside IPython)."""
    text = method_source(fn, width)
    try:
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover - IPython ships with the book's dependencies
        print(text)
        return
    display(Markdown(f"```python\n{text}\n```"))


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


def _fit(fig) -> None:
    """Make ``fig`` FIG_WIDTH inches wide (keeping its shape) and lift any text below MIN_FONT_PT."""
    from matplotlib.text import Text

    w, h = fig.get_size_inches()
    if abs(w - FIG_WIDTH) > 1e-3:
        fig.set_size_inches(FIG_WIDTH, h * FIG_WIDTH / w)
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for which, ticks in (("major", axis.get_major_ticks()), ("minor", axis.get_minor_ticks())):
                if ticks and ticks[0].label1.get_fontsize() < MIN_FONT_PT:
                    ax.tick_params(axis=axis.axis_name, which=which, labelsize=MIN_FONT_PT)
    for t in fig.findobj(Text):
        if t.get_text() and t.get_fontsize() < MIN_FONT_PT:
            t.set_fontsize(MIN_FONT_PT)


def _save(fig, fmt: str, dpi: float) -> tuple[bytes, tuple[int, int]]:
    from PIL import Image

    def encode(**pil_kwargs) -> bytes:
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight", pad_inches=0.05,
                    **({"pil_kwargs": pil_kwargs} if pil_kwargs else {}))
        return buf.getvalue()

    if fmt == "webp":
        # lossless is exact and smallest for line art, lossy smallest for photos and heat maps: keep the smaller
        data = min(encode(lossless=True), encode(quality=WEBP_QUALITY), key=len)
    else:
        data = encode(quality=85) if fmt == "jpeg" else encode()
    return data, Image.open(io.BytesIO(data)).size


class Frame(str):
    """A rendered frame: its ``data:`` URI (a str) with its pixel size and the dpi it was drawn at."""

    width: int
    height: int
    dpi: float


def _render(fig, fmt: str = "png", dpi: float | None = None) -> Frame:
    """``fig`` as a column-wide 2x image: at least 0.9 * FIG_WIDTH * DPI pixels wide (~1300-1440)."""
    import matplotlib.pyplot as plt

    dpi = float(dpi or DPI)
    _fit(fig)
    data, (w, h) = _save(fig, fmt, dpi)
    if w < 0.9 * FIG_WIDTH * DPI:  # a tight crop left it narrow: more pixels, so it still fills the column at 2x
        dpi *= FIG_WIDTH * DPI / w
        data, (w, h) = _save(fig, fmt, dpi)
    plt.close(fig)
    frame = Frame(f"data:image/{fmt};base64," + base64.b64encode(data).decode("ascii"))
    frame.width, frame.height, frame.dpi = w, h, dpi
    return frame


class HTMLFrame(str):
    """A frame that is HTML (highlighted text, a table), not a picture: see :func:`explore`."""


def _frame(result, fmt: str, dpi: float | None):
    """What ``draw`` returned, as a frame: a string is HTML; anything else a matplotlib figure."""
    if isinstance(result, str):
        return HTMLFrame(result)
    if hasattr(result, "_repr_html_") and not hasattr(result, "savefig"):
        return HTMLFrame(result._repr_html_())
    return _render(result, fmt, dpi)


def _img(src: str, width: int, height: int, alt: str, key: str | None = None) -> str:
    # shown at half its pixel size (2x for HiDPI), across the column when that is narrower
    w, h = width // 2, height // 2
    frame = f' class="cx-frame" data-frame="{key}"' if key is not None else ' class="cx-image"'
    return (f'<img{frame} src="{src}" alt="{html.escape(alt, quote=True)}" width="{w}" height="{h}" '
            f'style="display: block; width: 100%; max-width: {w}px; height: auto; margin: 0 auto;">')


def _figure(body: str, fig_id: str, caption: str | None, name: str | None, cls: str) -> str:
    """A <figure>; the book's Sphinx extension (book/_ext) numbers it and makes ``name`` a label."""
    attrs = f'class="{cls}" id="{fig_id}" style="margin: 1em 0;"'
    if name:
        attrs += f' data-cx-name="{html.escape(name, quote=True)}"'
    if caption:
        attrs += f' data-cx-caption="{html.escape(caption, quote=True)}"'
        body += ('<!--cx-caption--><figcaption class="cx-caption" style="margin-top: 0.4em; font-size: 0.9em;">'
                 f"{html.escape(caption)}</figcaption><!--/cx-caption-->")
    return f"<figure {attrs}>{body}</figure>"


_SCRIPT = """
(function () {
  var root = document.getElementById("%(id)s");
  var data = JSON.parse(root.querySelector("script.cx-frames").textContent);
  var frames = data.frames, alts = data.alts || {};
  var img = root.querySelector(".cx-frame");  // an image, or a div for frames of HTML (text)
  var controls = root.querySelectorAll("[data-param]");
  function update() {
    var key = [];
    controls.forEach(function (c) {
      key.push(c.value);
      var out = root.querySelector('[data-value-of="' + c.dataset.param + '"]');
      if (out) { out.textContent = JSON.parse(c.dataset.labels)[+c.value]; }
    });
    key = key.join("|");
    if (img.tagName === "IMG") {
      img.src = frames[key];
      if (alts[key]) { img.alt = alts[key]; }
    } else {
      img.innerHTML = frames[key];
      if (alts[key]) { img.setAttribute("aria-label", alts[key]); }
    }
    img.dataset.frame = key;
  }
  controls.forEach(function (c) { c.addEventListener("input", update); c.addEventListener("change", update); });
  update();
})();
"""


def _numeric(values) -> bool:
    return all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in values)


class StaticExplorer:
    """Precomputed frames and the HTML that switches between them; shown as rich HTML output.

    ``caption`` (plain text) is shown under the figure and numbered in the book, ``alt`` describes the
    image for screen readers (``{param}`` fields are filled in per frame), ``name`` is the label that
    prose cites with ``{numref}`name```.
    """

    def __init__(self, params: dict[str, list], frames: dict[str, str], initial: dict[str, int],
                 caption: str | None = None, alt: str | None = None, name: str | None = None):
        self.params, self.frames, self.initial = params, frames, initial
        self.caption, self.alt, self.name = caption, alt, name
        self.id = "cx-" + uuid.uuid4().hex[:10]
        self.alts = {}
        if alt:
            for key in frames:
                setting = {n: params[n][int(i)] for n, i in zip(params, key.split("|"))}
                try:
                    self.alts[key] = alt.format(**setting)
                except (KeyError, IndexError, ValueError):
                    self.alts[key] = alt

    def _repr_html_(self) -> str:
        rows = []
        for name, values in self.params.items():
            labels = json.dumps([str(v) for v in values])
            start = self.initial[name]
            attrs = f'data-param="{html.escape(name)}" data-labels=\'{html.escape(labels)}\' aria-label="{html.escape(name)}"'
            if _numeric(values):
                # a slider shows its value beside it; a menu already shows its choice
                control = (f'<input type="range" min="0" max="{len(values) - 1}" step="1" value="{start}" {attrs} '
                           f'style="width: 10em; vertical-align: middle;"> '
                           f'<span data-value-of="{html.escape(name)}">{html.escape(str(values[start]))}</span>')
            else:
                options = "".join(
                    f'<option value="{i}"{" selected" if i == start else ""}>{html.escape(str(v))}</option>'
                    for i, v in enumerate(values)
                )
                control = f"<select {attrs}>{options}</select>"
            rows.append(f'<label style="white-space: nowrap;"><b>{html.escape(name)}</b> {control}</label>')
        key = "|".join(str(self.initial[n]) for n in self.params)
        src = self.frames[key]
        if isinstance(src, HTMLFrame):  # text stays text: legible at any size, selectable, searchable
            alt = html.escape(self.alts.get(key, self.alt or ""), quote=True)
            # left-aligned: the figure block centres its content, which suits images, not paragraphs
            shown = (f'<div class="cx-frame cx-html" data-frame="{key}" aria-label="{alt}" '
                     f'style="text-align: left;">{src}</div>')
        else:
            width, height = getattr(src, "width", 1440), getattr(src, "height", 720)
            shown = _img(src, width, height, self.alts.get(key, self.alt or ""), key)
        body = (
            '<div class="cx-controls" style="display: flex; flex-wrap: wrap; gap: 0.3em 1.4em; '
            f'margin-bottom: 0.5em;">{"".join(rows)}</div>'
            + shown
            + f'<script type="application/json" class="cx-frames">'
            f'{json.dumps({"frames": self.frames, "alts": self.alts})}</script>'
            f"<script>{_SCRIPT % {'id': self.id}}</script>"
        )
        return _figure(body, self.id, self.caption, self.name, "companion-explore")


class StaticFigure:
    """One matplotlib figure as a column-wide 2x image with a caption and alt text (see :func:`figure`)."""

    def __init__(self, frame: Frame, caption: str | None, alt: str | None, name: str | None):
        self.frame, self.caption, self.alt, self.name = frame, caption, alt, name
        self.id = "cf-" + uuid.uuid4().hex[:10]

    def _repr_html_(self) -> str:
        body = _img(self.frame, self.frame.width, self.frame.height, self.alt or "")
        return _figure(body, self.id, self.caption, self.name, "companion-figure")


def figure(fig, *, caption: str, alt: str, name: str | None = None, fmt: str = "webp") -> StaticFigure:
    """Show a matplotlib figure as a numbered, captioned book figure with alt text (instead of plt.show())."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    return StaticFigure(_render(fig, fmt), caption, alt, name)


def explore(
    draw: Callable[..., object],
    *,
    static: bool | None = None,
    max_frames: int = 48,
    fmt: str = "webp",
    dpi: float | None = None,
    initial: dict | None = None,
    caption: str | None = None,
    alt: str | None = None,
    name: str | None = None,
    **params,
):
    """Explore ``draw(**setting)`` over ``params``' choices. ``draw`` returns a matplotlib figure, or a
    string of HTML (text belongs in HTML, e.g. :func:`highlight_words`, never drawn into a picture).

    Live kernel: ipywidgets controls redraw on every change. Built book (``static=True``, or
    ``COMPANION_STATIC_FIGURES=1``): every setting of the grid is rendered once and a slider or menu
    in the page switches frames without a kernel. The grid must have at most ``max_frames`` settings.

    Every chapter figure passes ``caption`` (plain text, numbered in the book), ``alt`` (what the image
    shows, for screen readers; ``{param}`` fields are filled in per frame) and ``name`` (the label prose
    cites with ``{numref}`name```). Frames are FIG_WIDTH inches wide at ``dpi`` (default DPI).
    """
    if not params:
        raise ValueError("explore needs at least one parameter with choices")
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    choices = {name_: _choices(name_, values) for name_, values in params.items()}
    initial = initial or {}
    start = {}
    for name_, values in choices.items():
        start[name_] = values.index(initial[name_]) if name_ in initial else 0
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
            frame = _frame(draw(**setting), fmt, dpi)
            if not isinstance(frame, HTMLFrame):
                dpi = frame.dpi  # frames of one figure share a layout: reuse the dpi that filled the column
            frames["|".join(map(str, combo))] = frame
        kinds = {isinstance(f, HTMLFrame) for f in frames.values()}
        if len(kinds) > 1:
            raise TypeError("draw returned HTML for some settings and a figure for others: return one kind")
        return StaticExplorer(choices, frames, start, caption=caption, alt=alt, name=name)
    return _live(draw, choices, start, caption)


def _live(draw, choices: dict[str, list], start: dict[str, int], caption: str | None = None):
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import HTML, display

    controls = {}
    wide = {"description_width": "initial"}  # the full parameter name, never cut
    for name, values in choices.items():
        options = [(str(v), v) for v in values]
        if _numeric(values) and len(values) > 1:
            controls[name] = widgets.SelectionSlider(options=options, value=values[start[name]], description=name,
                                                     continuous_update=False, style=wide)
        else:
            controls[name] = widgets.Dropdown(options=options, value=values[start[name]], description=name,
                                              style=wide)
    out = widgets.Output()

    def redraw(**setting):
        with out:
            out.clear_output(wait=True)
            fig = draw(**setting)
            if isinstance(fig, str) or (hasattr(fig, "_repr_html_") and not hasattr(fig, "savefig")):
                display(HTML(fig if isinstance(fig, str) else fig._repr_html_()))
                return
            _fit(fig)
            display(fig)
            plt.close(fig)

    widgets.interactive_output(redraw, controls)
    parts = [widgets.HBox(list(controls.values()), layout=widgets.Layout(flex_flow="row wrap")), out]
    if caption:
        parts.append(widgets.HTML(f"<small>{html.escape(caption)}</small>"))
    return widgets.VBox(parts)
