import re

import matplotlib.pyplot as plt
import pytest
import torch

from companion import viz


def _draw(a, colour):
    fig, ax = plt.subplots(figsize=(1.5, 1.5))
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
    e = viz.explore(_draw, static=True, a=[1, 2], colour=["red"])
    assert all(len(f) < 60_000 for f in e.frames.values())


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
