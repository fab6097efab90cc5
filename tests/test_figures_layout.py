"""Chapter figures: titles, axis labels and legends neither overlap nor leave the figure, legends hide no
data, and alt text is written from the figure's own data (checked with matplotlib's bounding boxes)."""

import json
import types
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from companion import fewshot, viz  # noqa: E402
from companion.effssl import figures as effssl_figures  # noqa: E402
from companion.fewshot import plots as fewshot_plots  # noqa: E402
from companion.fewshot.experiment import FewShotResult  # noqa: E402
from companion.nrs import tabular  # noqa: E402
from companion.ssql import plots as ssql_plots  # noqa: E402
from companion.us3l import figures as us3l_figures  # noqa: E402
from companion.vit2040 import figures as vit_figures  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _close():
    viz.style()
    yield
    plt.close("all")


def _record(chapter):
    return json.loads((ROOT / "results" / f"{chapter}.json").read_text())


def test_layout_checker_finds_overlap_a_covering_legend_and_text_off_the_figure():
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot(np.linspace(0, 1, 50), np.linspace(0, 1, 50), label="a long legend entry")
    ax.legend(loc="center")
    ax.set_title("a title", y=-0.2)  # pushed down onto the x label
    ax.set_xlabel("an x label")
    ax.set_ylabel("y", labelpad=400)  # far outside the figure
    problems = viz.layout_problems(fig)
    assert any("legend covers" in p for p in problems)
    assert any("y label leaves the figure" in p for p in problems)
    assert any("title overlaps axes 0 x label" in p for p in problems)
    clean, bx = plt.subplots(figsize=(4, 3), layout="constrained")
    bx.plot([0, 1], [0, 1], label="line")
    bx.set(title="t", xlabel="x", ylabel="y")
    bx.legend(loc="upper left")
    assert viz.layout_problems(clean) == []


def _fewshot_result():
    cfg = fewshot.config.quick()  # its methods include the fixed-head variant, the longest label
    assert "finetune_fixed_head" in cfg.methods
    rng = np.random.default_rng(0)
    accs = {shot: {m: rng.uniform(20, 95, 100) for m in cfg.methods} for shot in (1, 5)}
    return FewShotResult(config=cfg, metrics={}, accuracies=accs)


@pytest.mark.parametrize("method", list(fewshot_plots.SHORT))
def test_fewshot_tail_figure_has_a_clean_layout_and_readable_labels(method):
    result = _fewshot_result()
    fig = fewshot_plots.draw_episodes(result, 1, fewshot_plots.SHORT[method])
    assert viz.layout_problems(fig) == []
    labels = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert not [lab for lab in labels if "_" in lab], f"code ids as legend labels: {labels}"
    assert fewshot_plots.method_id(fewshot_plots.SHORT[method]) == method


def test_effssl_curves_legend_hides_no_curve():
    rec = _record("effssl")
    fig = effssl_figures.draw_curves([("quick", rec["quick"]["metrics"]["digits"]),
                                      ("study", rec["study"]["metrics"]["digits"])])
    assert viz.layout_problems(fig) == []


@pytest.mark.parametrize("tier", ["quick", "study"])
@pytest.mark.parametrize("measure", ["kNN accuracy", "feature std"])
def test_us3l_width_figure_has_a_clean_layout(tier, measure):
    out = _record("us3l")[tier]["metrics"]
    for width in (0.25, 1.0):
        assert viz.layout_problems(us3l_figures.draw_widths(out, (0.25, 0.5, 0.75, 1.0), width, measure)) == []


def test_nrs_accuracy_figure_layout_and_alt_text_from_its_data():
    per_dataset = _record("nrs")["quick"]["metrics"]["datasets"]
    assert viz.layout_problems(tabular.plot_comparison(per_dataset)) == []
    alt = tabular.comparison_alt(per_dataset)
    noisy = per_dataset["noisy"]
    assert f"noisy: NRS {noisy['nrs']['acc_mean']:.1f}" in alt
    best = max(noisy, key=lambda k: noisy[k]["acc_mean"])
    assert f"(highest: {tabular.LABELS[best]})" in alt
    assert "bar" in alt


def test_ssql_branch_figure_layout_and_alt_text_from_its_data():
    rng = np.random.default_rng(0)
    history = [{"step": i, "loss_fp": 1 - i / 400 + 0.01 * rng.standard_normal(), "loss_q": 1.05 - i / 400,
                "w_bits": int(rng.integers(2, 9))} for i in range(200)]
    result = types.SimpleNamespace(histories={"ssql": history})
    assert viz.layout_problems(ssql_plots.draw_branch_losses(result)) == []
    alt = ssql_plots.branch_losses_alt(result)
    assert "scatter" in alt and "bar chart" not in alt and "200 logged steps" in alt
    for bits, gap in ssql_plots.branch_gap(result).items():
        assert f"{bits} bits {gap:+.3f}" in alt


def test_vit_attention_title_and_colour_bar_stay_inside():
    maps = {"pretrained": torch.rand(2, 6, 2, 6, 6)}
    fig = vit_figures.draw_attention(maps, torch.rand(6, 3, 12, 12), "pretrained", 1, "mean")
    assert viz.layout_problems(fig) == []
    assert fig._suptitle.get_text() == "pretrained: layer 2, head mean"


@pytest.mark.parametrize("measure", ["fine-tuned", "kNN"])
def test_s3l_resolution_figure_has_a_clean_layout(measure):
    from companion import s3l
    from companion.s3l import figures as s3l_figures

    out = _record("s3l")["quick"]["metrics"]
    config = s3l.config.quick()
    sample = s3l.load_data(config)[0][:3]
    assert s3l_figures.resolutions(out) == [8, 16]
    for resolution in s3l_figures.resolutions(out):
        assert viz.layout_problems(s3l_figures.draw_resolution(out, config, sample, resolution, measure)) == []
