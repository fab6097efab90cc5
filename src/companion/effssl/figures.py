"""The Efficient-SSL chapter's quick-run table and convergence figure, drawn from ``run()``'s output.

Book section: *Efficient SSL* "Quick run" and "Convergence".
"""

from __future__ import annotations

import matplotlib.pyplot as plt

from .. import viz

#: Readable names of the ladder's rungs and of SimSiam.
NAMES = {"untrained": "untrained (floor)", "npid": "NPID", "calibrated": "+ calibration",
         "corrected": "+ corrected update", "sqrtkl": "+ SqrtKL (full)", "simsiam": "SimSiam"}
COLOURS = {"npid": viz.PALETTE["baseline"], "calibrated": viz.PALETTE["pseudo"], "corrected": viz.PALETTE["other"],
           "sqrtkl": viz.PALETTE["method"], "simsiam": viz.PALETTE["truth"]}


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
    """kNN accuracy against encoder passes for every rung (and SimSiam), one panel per ``(title, rows)``.

    SimSiam's steps count twice (two views, two encoder passes). The legend sits below the panels,
    where it hides no curve.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(viz.FIG_WIDTH, 3.8), sharey=True, squeeze=False,
                             layout="constrained")
    for ax, (title, rows) in zip(axes[0], panels):
        floor = rows["untrained"]["knn"]
        for m, c in COLOURS.items():
            if m in rows:
                per_pass = 2 if m == "simsiam" else 1  # two views: two encoder passes
                x = [0] + [per_pass * v for v in rows[m]["curve"]["steps"]]
                ax.plot(x, [floor] + rows[m]["curve"]["knn"], "o-", color=c, label=NAMES[m])
        ax.axhline(floor, color="k", ls=":", lw=1, label="untrained")
        ax.set(xlabel="encoder passes (steps)", title=title)
    axes[0, 0].set_ylabel("kNN accuracy (%)")
    # the legend of the panel with the most lines, below all panels
    handles, labels = max((ax.get_legend_handles_labels() for ax in axes[0]), key=lambda hl: len(hl[0]))
    fig.legend(handles, labels, loc="outside lower center", ncol=3, frameon=False)
    return fig
