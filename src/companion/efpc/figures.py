"""Figures for the EFPC chapter: a prompt shown as text, each word shaded by its keep probability.

The figures are HTML, not images, so the words stay legible at any zoom and in the built book; the
live widget draws the same HTML as the static figure.

Book section: *EFPC* "Explore the compression".
"""

from __future__ import annotations

import html


def compression_widget(compressor, prompt: str, question: str, rate: float = 0.25):
    """Live controls (a live kernel only): edit the prompt and the question, move the rate; the output
    is :func:`highlight_modes` of the current values, redrawn on every change. An input the compressor
    refuses (an empty prompt, say) shows its error message in place of the figure.

    Book section: *EFPC* "Explore the compression".
    """
    import ipywidgets as widgets

    box = widgets.Textarea(value=prompt, description="prompt", layout=widgets.Layout(width="95%", height="7em"))
    ask = widgets.Text(value=question, description="question", layout=widgets.Layout(width="95%"))
    slider = widgets.FloatSlider(value=rate, min=0.05, max=1.0, step=0.05, description="rate", continuous_update=False)
    view = widgets.HTML(layout=widgets.Layout(width="95%"))

    def redraw(_change=None):
        try:
            view.value = highlight_modes(compressor, box.value, ask.value, slider.value)
        except (TypeError, ValueError) as err:  # say what is wrong instead of a traceback
            view.value = f'<p style="color: #b00;">{html.escape(str(err))}</p>'

    for control in (box, ask, slider):
        control.observe(redraw, names="value")
    redraw()
    return widgets.VBox([box, ask, slider, view])


def highlight_modes(compressor, prompt: str, question: str, rate: float, answer: str | None = None) -> str:
    """HTML: ``prompt`` compressed with and without ``question``, each word shaded by p(keep)
    (:func:`companion.viz.highlight_words`; dropped words struck through), then the output text.

    Words are the prompt's own spans, so the text reads as written (paths, URLs, line breaks).

    Book section: *EFPC* "Explore the compression".
    """
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
