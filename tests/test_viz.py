import re

import matplotlib
import matplotlib.font_manager
import matplotlib.pyplot as plt
import matplotlib.text
import pytest
import torch

from companion import viz


def _draw(a, colour):
    fig, ax = plt.subplots(figsize=(6, 1.2))
    ax.plot([0, a], [0, a], color=colour)
    return fig


def test_static_explore_renders_every_setting_and_switches_client_side():
    e = viz.explore(_draw, static=True, a=[1, 2, 3], colour=["red", "blue"])
    html = e._repr_html_()
    assert len(e.frames) == 6 and len(set(e.frames.values())) == 6  # every frame differs
    assert html.count("<option") == 2 and 'type="range"' in html and "addEventListener" in html
    assert re.search(r'data-frame="0\|0"', html)


def test_live_explore_builds_widgets():
    import ipywidgets

    w = viz.explore(_draw, static=False, a=[1, 2], colour=["red"])
    assert isinstance(w, ipywidgets.VBox)


def test_static_mode_follows_the_environment(monkeypatch):
    monkeypatch.setenv(viz.STATIC_ENV, "1")
    assert isinstance(viz.explore(_draw, a=[1], colour=["red"]), viz.StaticExplorer)


def test_grid_too_large_is_a_clear_error():
    with pytest.raises(ValueError, match="more than max_frames"):
        viz.explore(_draw, static=True, max_frames=4, a=[1, 2, 3], colour=["r", "g"])
    with pytest.raises(TypeError, match="list or range"):
        viz.explore(_draw, static=True, a=5, colour=["r"])
    with pytest.raises(ValueError, match="no choices"):
        viz.explore(_draw, static=True, a=[], colour=["r"])


def test_frames_are_compact():
    e = viz.explore(_draw, static=True, a=[1, 2], colour=["red"], fmt="jpeg")
    assert all(len(f) < 150_000 for f in e.frames.values())


def _wide(a, colour):
    fig, ax = plt.subplots(figsize=(9, 3))
    ax.plot([0, a], [0, a], color=colour)
    ax.set_title("tiny", fontsize=5)
    ax.tick_params(labelsize=4)
    return fig


def test_frames_fill_the_column_at_2x_with_readable_text():
    # the content column is ~690-730 CSS px: frames are ~1440 px shown at half that (HiDPI)
    e = viz.explore(_wide, static=True, a=[1, 2], colour=["red"])
    for frame in e.frames.values():
        assert 0.9 * viz.FIG_WIDTH * viz.DPI <= frame.width <= 1.05 * viz.FIG_WIDTH * viz.DPI
    html = e._repr_html_()
    shown = int(re.search(r'class="cx-frame"[^>]* width="(\d+)"', html).group(1))
    assert 600 <= shown <= 730 and frame.width / shown >= 1.8
    assert "width: 100%" in html and f"max-width: {shown}px" in html
    # text: every label at least MIN_FONT_PT, which is >= 80% of 16 px body text when shown
    fig = _wide(1, "red")
    viz._fit(fig)
    sizes = [t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_text()]
    assert sizes and min(sizes) >= viz.MIN_FONT_PT
    assert viz.MIN_FONT_PT * viz.css_px_per_pt(viz.FIG_WIDTH, shown) >= 0.8 * 16
    assert fig.get_size_inches()[0] == pytest.approx(viz.FIG_WIDTH)


def test_style_sets_readable_sizes():
    viz.style()
    rc = matplotlib.rcParams
    px = viz.css_px_per_pt()
    for key in ("font.size", "axes.titlesize", "axes.labelsize", "xtick.labelsize", "ytick.labelsize",
                "legend.fontsize"):
        size = matplotlib.font_manager.FontProperties(size=rc[key]).get_size_in_points()
        assert size >= viz.MIN_FONT_PT and size * px >= 13, key
    assert rc["savefig.dpi"] >= 2 * 96 and rc["figure.figsize"][0] == viz.FIG_WIDTH


def test_caption_alt_and_name_reach_the_html():
    e = viz.explore(_draw, static=True, a=[1, 2], colour=["red", "blue"], caption="Lines & slopes",
                    alt="a {colour} line of slope {a}", name="fig-lines")
    html = e._repr_html_()
    assert html.startswith("<figure") and "<figcaption" in html and "Lines &amp; slopes" in html
    assert 'data-cx-name="fig-lines"' in html and 'data-cx-caption="Lines &amp; slopes"' in html
    assert 'alt="a red line of slope 1"' in html
    assert e.alts["1|1"] == "a blue line of slope 2"
    # the old signature still works (no caption or alt)
    assert "<figcaption" not in viz.explore(_draw, static=True, a=[1], colour=["r"])._repr_html_()


def test_menus_do_not_repeat_their_value():
    html = viz.explore(_draw, static=True, a=[1, 2], colour=["red", "blue"])._repr_html_()
    assert 'data-value-of="a"' in html  # a slider shows its value
    assert 'data-value-of="colour"' not in html  # a menu already shows its choice


def test_static_figure_and_colorbar():
    fig, axes = plt.subplots(1, 2, figsize=(4, 2))
    layer = viz.overlay_heatmap(axes[0], torch.rand(3, 16, 16), torch.rand(4, 4))
    axes[1].imshow(torch.rand(8, 8).numpy(), cmap="viridis")
    bar = viz.colorbar(list(axes), layer, label="attention")
    assert bar.ax.get_ylabel() == "attention" and bar.mappable is layer
    assert viz.colorbar(axes[1]).mappable is axes[1].images[-1]
    assert viz.colorbar(axes[0], cmap="magma", vmin=0, vmax=2).norm.vmax == 2
    with pytest.raises(ValueError, match="no image"):
        viz.colorbar(plt.subplots()[1])
    shown = viz.figure(fig, caption="Two maps", alt="A heat map and a random image", name="fig-maps")
    html = shown._repr_html_()
    assert shown.frame.width >= 0.9 * viz.FIG_WIDTH * viz.DPI
    assert 'class="companion-figure"' in html and 'alt="A heat map and a random image"' in html


def test_grid_overlay_boxes_and_text():
    fig = viz.image_grid(torch.rand(5, 3, 8, 8), titles=list("abcde"), ncols=3)
    assert len(fig.axes) == 6
    fig, ax = plt.subplots()
    viz.overlay_heatmap(ax, torch.rand(3, 16, 16), torch.rand(4, 4))
    viz.draw_boxes(ax, [[1, 1, 5, 5], [2, 2, 9, 9]])
    assert len(ax.patches) == 2
    html = viz.highlight_words(["keep", "<drop>"], [0.9, 0.1], [True, False])
    assert "&lt;drop&gt;" in html and "line-through" in html
    with pytest.raises(ValueError, match="scores"):
        viz.highlight_words(["a"], [0.1, 0.2])


def _text(rate, word):
    return viz.highlight_words([word, "kept", "or", "dropped"], [rate, 0.9, 0.1, 0.5])


def test_explore_shows_html_frames_as_text_not_pictures():
    e = viz.explore(_text, static=True, rate=[0.2, 0.8], word=["alpha", "beta"], caption="Words.",
                    alt="highlighted words at rate {rate}")
    page = e._repr_html_()
    assert all(isinstance(f, viz.HTMLFrame) for f in e.frames.values()) and len(set(e.frames.values())) == 4
    assert '<div class="cx-frame cx-html" data-frame="0|0" aria-label="highlighted words at rate 0.2" style="text-align: left;">' in page
    assert "<img" not in page and "alpha" in page and "innerHTML" in page
    live = viz.explore(_text, static=False, rate=[0.2, 0.8], word=["alpha"])
    import ipywidgets

    assert isinstance(live, ipywidgets.VBox)


def test_explore_refuses_a_mix_of_html_and_figures():
    def mixed(a):
        return "<b>text</b>" if a == 1 else _draw(a, "red")

    with pytest.raises(TypeError, match="one kind"):
        viz.explore(mixed, static=True, a=[1, 2])
