"""Figures for the EFPC chapter: a prompt drawn word by word, kept words shaded by probability.

Text is laid out in a monospace font so word widths are known without asking the renderer, which
keeps a frame cheap enough to precompute dozens of them for the built book.

Book section: *EFPC* "Explore the compression".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..viz import PALETTE

_MARKS = frozenset(".,;:!?)")


def _lines(words: Sequence[str], width: int) -> list[list[int]]:
    """Greedy line breaking of word indices for ``width`` characters per line."""
    lines, line, used = [], [], 0
    for i, w in enumerate(words):
        cost = len(w) + (0 if not line or w in _MARKS else 1)
        if line and used + cost > width:
            lines.append(line)
            line, used = [], 0
            cost = len(w)
        line.append(i)
        used += cost
    if line:
        lines.append(line)
    return lines


CHAR_WIDTH = 0.6  # width of a monospace character, in units of the font size
LINE_HEIGHT = 1.9  # line pitch, in units of the font size


def chars_per_line(ax, fontsize: float) -> int:
    """How many monospace characters fit across ``ax``."""
    fig = ax.figure
    width_in = ax.get_position().width * fig.get_figwidth()
    return max(8, int(width_in * 72 / (CHAR_WIDTH * fontsize)))


def draw_words(ax, words: Sequence[str], probs: Sequence[float], kept: Sequence[bool], title: str = "",
               fontsize: float = 8.5) -> None:
    """Draw ``words`` on ``ax``: kept words on a red box whose strength is p(keep), dropped ones grey.

    Book section: *EFPC* "Explore the compression".
    """
    if not (len(words) == len(probs) == len(kept)):
        raise ValueError(f"words, probs and kept differ in length: {len(words)}, {len(probs)}, {len(kept)}")
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    width = chars_per_line(ax, fontsize)
    if title:
        ax.set_title(title, fontsize=fontsize + 0.5, loc="left")
    height_in = ax.get_position().height * ax.figure.get_figheight()
    step_x = 1.0 / width
    step_y = LINE_HEIGHT * fontsize / 72 / height_in
    red = PALETTE["method"]
    for row, line in enumerate(_lines(words, width)):
        x = 0.0
        y = 1.0 - (row + 0.5) * step_y
        for j, i in enumerate(line):
            w = words[i]
            if j and w not in _MARKS:
                x += step_x
            p = float(np.clip(probs[i], 0, 1))
            if kept[i]:
                ax.text(x, y, w, family="monospace", fontsize=fontsize, va="center", ha="left", color="black",
                        bbox=dict(boxstyle="square,pad=0.08", facecolor=red, alpha=0.12 + 0.6 * p, edgecolor="none"))
            else:
                ax.text(x, y, w, family="monospace", fontsize=fontsize, va="center", ha="left", color="#9a9a9a")
            x += len(w) * step_x


def draw_side_by_side(words: Sequence[str], panels: Sequence[tuple[str, Sequence[float], Sequence[bool]]],
                      header: str = "", width: float = 8.0, fontsize: float = 8.0):
    """One figure with a panel per ``(title, probs, kept)``, the same prompt in each; returns the Figure.

    The height follows the number of text lines, so short prompts give short figures.

    Book section: *EFPC* "Explore the compression".
    """
    import matplotlib.pyplot as plt

    n = len(panels)
    panel_in = width / n - 0.15
    chars = max(8, int(panel_in * 72 / (CHAR_WIDTH * fontsize)))
    text_in = len(_lines(words, chars)) * LINE_HEIGHT * fontsize / 72 + 0.1
    top_in = 0.35 + (0.3 if header else 0.0)
    fig, axes = plt.subplots(1, n, figsize=(width, text_in + top_in), squeeze=False)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.0, top=text_in / (text_in + top_in), wspace=0.15 * n / width)
    for ax, (title, probs, kept) in zip(axes[0], panels):
        draw_words(ax, words, probs, kept, title, fontsize)
    if header:
        fig.suptitle(header, fontsize=fontsize + 0.5, x=0.01, y=0.99, ha="left", va="top")
    return fig


def compare_modes(compressor, prompt: str, question: str, rate: float, answer: str | None = None,
                  width: float = 8.0):
    """Compress ``prompt`` with and without ``question`` prepended and draw both side by side.

    Each panel says whether ``answer`` (when given) survived. Returns the matplotlib Figure.

    Book section: *EFPC* "Explore the compression".
    """
    from ..compress.metrics import answer_retained

    panels = []
    for title, instruction in (("EFPC, question prepended (task-aware)", question), ("EFPC, no question (task-agnostic)", None)):
        c = compressor.compress(prompt, rate, instruction=instruction)
        if answer:
            title += ": answer " + ("kept" if answer_retained(c.kept_words, answer) else "lost")
        panels.append((title, c.probs, c.kept))
    header = f"Q: {question}   |   rate {rate:g} (about {1 / rate:.2g}x); box strength = p(keep), grey = dropped"
    return draw_side_by_side(c.words, panels, header=header, width=width)


def compression_widget(compressor, prompt: str, question: str, rate: float = 0.25):
    """Live controls (a live kernel only): edit the prompt and the question, move the rate.

    Book section: *EFPC* "Explore the compression".
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    box = widgets.Textarea(value=prompt, description="prompt", layout=widgets.Layout(width="95%", height="7em"))
    ask = widgets.Text(value=question, description="question", layout=widgets.Layout(width="95%"))
    slider = widgets.FloatSlider(value=rate, min=0.05, max=1.0, step=0.05, description="rate", continuous_update=False)
    out = widgets.Output()

    def redraw(prompt, question, rate):
        with out:
            out.clear_output(wait=True)
            try:
                fig = compare_modes(compressor, prompt, question, rate)
            except (TypeError, ValueError) as err:  # an empty box: say so instead of a traceback
                print(err)
                return
            display(fig)
            plt.close(fig)

    widgets.interactive_output(redraw, {"prompt": box, "question": ask, "rate": slider})
    return widgets.VBox([box, ask, slider, out])


def highlight_modes(compressor, prompt: str, question: str, rate: float, answer: str | None = None) -> str:
    """HTML: ``prompt`` compressed with and without ``question``, each word shaded by p(keep)
    (:func:`companion.viz.highlight_words`; dropped words struck through), then the output text.

    Words are the prompt's own spans, so the text reads as written (paths, URLs, line breaks).

    Book section: *EFPC* "Explore the compression".
    """
    import html

    from ..compress.metrics import answer_retained
    from ..viz import highlight_words

    parts = [f"<p><b>Q:</b> {html.escape(question)} &nbsp; <b>rate</b> {rate:g} (about {1 / rate:.2g}x)</p>"]
    for title, instruction in (("EFPC, question prepended (task-aware)", question),
                               ("EFPC, no question (task-agnostic)", None)):
        c = compressor.compress(prompt, rate, instruction=instruction, force_tokens=["\n"])
        if answer:
            title += ": answer " + ("kept" if answer_retained(c.kept_words, answer) else "lost")
        parts.append(f"<p><b>{html.escape(title)}</b></p>" + highlight_words(c.words, c.probs, c.kept))
        parts.append('<pre style="white-space: pre-wrap; font-size: 0.85em;">' + html.escape(c.text) + "</pre>")
    return "\n".join(parts)
