"""The Efficient-SSL chapter's quick-run table, convergence figure and accuracy-against-cost table and
figure, drawn from ``run()``'s output or a record.

Book section: *Efficient SSL* "Quick run", "Convergence" and "Accuracy against cost".
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib import ticker

from .. import viz

#: Readable names of the ladder's rungs and of the two-view baselines.
NAMES = {"untrained": "untrained (floor)", "npid": "NPID", "calibrated": "+ calibration",
         "corrected": "+ corrected update", "sqrtkl": "+ SqrtKL (full)", "simsiam": "SimSiam",
         "moco": "MoCo v2", "byol": "BYOL", "simclr": "SimCLR"}
COLOURS = {"npid": viz.PALETTE["baseline"], "calibrated": viz.PALETTE["pseudo"], "corrected": viz.PALETTE["other"],
           "sqrtkl": viz.PALETTE["method"], "simsiam": viz.PALETTE["truth"], "moco": "#9467bd", "byol": "#8c564b",
           "simclr": "#17becf"}
#: The single-branch rungs (the convergence figure) and the two-view baselines (the cost figure).
LADDER = ("npid", "calibrated", "corrected", "sqrtkl")
TWO_VIEW = ("simsiam", "moco", "byol", "simclr")


def quick_table(out: dict, datasets) -> str:
    """Markdown: kNN (mean and per seed), bank kNN, linear probe and seconds of each method per data set."""
    def cell(row, key):
        return f"{row[key]:.1f}" if key in row else "-"

    lines = ["| data set | method | kNN % | per seed | bank kNN % | linear % | seconds |",
             "|---|---|---|---|---|---|---|"]
    for dataset in datasets:
        for m, r in out[dataset].items():
            seeds = " ".join(f"{v:.1f}" for v in r["knn_per_seed"])
            lines.append(f"| {dataset} | {NAMES.get(m, m)} | {r['knn']:.1f} | {seeds} | {cell(r, 'bank_knn')} "
                         f"| {cell(r, 'linear')} | {cell(r, 'seconds')} |")
    return "\n".join(lines)


def draw_curves(panels: list[tuple[str, dict]]):
    """kNN accuracy against training steps for every rung of the ladder, one panel per ``(title, rows)``
    (the two-view baselines are in :func:`draw_cost`). The legend sits below the panels, where it hides
    no curve.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(viz.FIG_WIDTH, 3.8), sharey=True, squeeze=False,
                             layout="constrained")
    for ax, (title, rows) in zip(axes[0], panels):
        floor = rows["untrained"]["knn"]
        for m in LADDER:
            if m in rows:
                x = [0] + list(rows[m]["curve"]["steps"])
                ax.plot(x, [floor] + rows[m]["curve"]["knn"], "o-", color=COLOURS[m], label=NAMES[m])
        ax.axhline(floor, color="k", ls=":", lw=1, label="untrained")
        ax.set(xlabel="training steps (64 images, one view each)", title=title)
    axes[0, 0].set_ylabel("kNN accuracy (%)")
    # the legend of the panel with the most lines, below all panels
    handles, labels = max((ax.get_legend_handles_labels() for ax in axes[0]), key=lambda hl: len(hl[0]))
    fig.legend(handles, labels, loc="outside lower center", ncol=3, frameon=False)
    return fig


def pass_curve(row: dict) -> list[float]:
    """Encoder passes at each point of a run's kNN curve: the calibration pass (if any), then the
    run's passes per step (``passes`` and ``steps`` of :func:`companion.effssl.experiment.costs`)."""
    cal = row.get("calibration_passes", 0)
    per_step = (row["passes"] - cal) / row["steps"]
    return [cal + per_step * s for s in row["curve"]["steps"]]


def cost_table(rows: dict, seconds: dict, methods=("npid", "sqrtkl", *TWO_VIEW)) -> str:
    """Markdown: final kNN accuracy against training cost for each method of ``rows`` (one data set's
    numbers, :func:`companion.effssl.run` or a record's metrics): steps, images drawn, encoder passes (all,
    and with a backward pass), wall seconds (``seconds``: ``{method: seconds}``, measured in the same run)
    and each cost relative to the full method's."""
    full = rows["sqrtkl"]
    lines = ["| method | kNN % | steps | images | encoder passes (with backward) | seconds "
             "| passes / full | seconds / full |", "|---|---|---|---|---|---|---|---|"]
    lines.append(f"| {NAMES['untrained']} | {rows['untrained']['knn']:.1f} | 0 | 0 | 0 | 0 | 0 | 0 |")
    for m in methods:
        if m not in rows:
            continue
        r = rows[m]
        sec, ref = seconds.get(m), seconds.get("sqrtkl")
        sec_txt = "-" if sec is None else f"{sec:.1f}"
        ratio_txt = "-" if sec is None or ref is None else f"{sec / ref:.1f}"
        lines.append(
            f"| {NAMES[m]} | {r['knn']:.1f} | {r['steps']:.0f} | {r['images']:,.0f} | {r['passes']:,.0f} "
            f"({r['backward_passes']:,.0f}) | {sec_txt} | {r['passes'] / full['passes']:.1f} | {ratio_txt} |")
    return "\n".join(lines)


def _short(value: float, _pos=None) -> str:
    """A tick label: 3, 30, 300, 3k, 30k."""
    return f"{value / 1000:g}k" if value >= 1000 else f"{value:g}"


def draw_cost(rows: dict, seconds_curves: dict, methods=("npid", "sqrtkl", *TWO_VIEW)):
    """Accuracy against training cost: kNN accuracy along each run against encoder passes (left) and
    training wall seconds (right, ``seconds_curves``: ``{method: seconds at each curve point}``), both on
    a log scale; the dotted line is the untrained network. Means over seeds when ``rows`` holds them."""
    fig, axes = plt.subplots(1, 2, figsize=(viz.FIG_WIDTH, 3.6), sharey=True, layout="constrained")
    floor = rows["untrained"]["knn"]
    for m in methods:
        if m not in rows:
            continue
        style = dict(color=COLOURS[m], label=NAMES[m], marker="o", ms=4)
        axes[0].plot(pass_curve(rows[m]), rows[m]["curve"]["knn"], **style)
        if m in seconds_curves:
            axes[1].plot(seconds_curves[m], rows[m]["curve"]["knn"], **style)
    for ax, label in zip(axes, ("encoder passes (log scale)", "training seconds (log scale)")):
        ax.axhline(floor, color="k", ls=":", lw=1, label="untrained")
        ax.set_xscale("log")
        # ticks at 1 and 3 per decade, written out (matplotlib's minor-tick labels overlap here)
        ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 3.0)))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(_short))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel(label)
    axes[0].set_ylabel("kNN accuracy (%)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4, frameon=False)
    return fig
