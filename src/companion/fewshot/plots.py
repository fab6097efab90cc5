"""Figures of the chapter: the distribution of episode accuracies and how the worst case is estimated.

Book section: *Worst case* "Explore: the tail behind the mean".
"""

from __future__ import annotations

import numpy as np

from .. import viz
from .experiment import FewShotResult
from .metrics import running_worst, summarize

SHORT = {"prototypes": "prototypes", "finetune": "fine-tune", "sr": "+SR", "ac_sr": "+SR +AC", "ac_ensr": "+SR +AC +ensemble"}
COLORS = {"prototypes": viz.PALETTE["baseline"], "finetune": "#1f77b4", "sr": viz.PALETTE["other"],
          "ac_sr": viz.PALETTE["truth"], "ac_ensr": viz.PALETTE["method"]}


def draw_episodes(result: FewShotResult, shot: int, method: str):
    """Left: histogram of ``method``'s episode accuracies (plain fine-tuning as a grey outline) with
    its mean, acc10 and acc1 marked. Right: acc10 and acc1 over the first n episodes as n grows,
    for every method (``method`` in bold).

    Book section: *Worst case* "Explore: the tail behind the mean".
    """
    import matplotlib.pyplot as plt

    viz.style()
    accs = result.accuracies[shot]
    if method not in accs:
        raise ValueError(f"{method!r} was not run; choose from {list(accs)}")
    a = accs[method]
    if a.size < 10:
        raise ValueError(f"need at least 10 episodes to mark acc10, got {a.size}")
    s = summarize(a, worst=(1, 10))
    shown = [n for n in result.config.methods if n in accs]
    lo = 5 * np.floor(min(accs[n].min() for n in shown) / 5 - 1)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(8.4, 2.9), gridspec_kw={"width_ratios": [1, 1.15]})
    bins = np.arange(lo, 100.01, 100 / (result.config.q_query * result.config.n_way) * 3)
    if method != "finetune" and "finetune" in accs:
        ax.hist(accs["finetune"], bins=bins, histtype="step", color=viz.PALETTE["baseline"], lw=1.2, label="fine-tune")
    ax.hist(a, bins=bins, color=COLORS.get(method, "black"), alpha=0.6, label=SHORT.get(method, method))
    for value, style, name in ((s["mean"], "-", "mean"), (s["acc10"], "--", "acc10"), (s["acc1"], ":", "acc1")):
        ax.axvline(value, color="black", ls=style, lw=1.2, label=f"{name} {value:.1f}")
    ax.set_xlim(lo, 100)
    ax.set_xlabel(f"episode accuracy (%), {result.config.q_query * result.config.n_way} queries each")
    ax.set_ylabel("episodes")
    ax.set_title(f"5-way {shot}-shot, {a.size} episodes: {SHORT.get(method, method)}")
    ax.legend(fontsize=7, loc="upper left", frameon=False)

    for name in shown:
        bold = name == method
        style = {"color": COLORS.get(name, "black"), "lw": 2.2 if bold else 0.9, "alpha": 1 if bold else 0.55}
        ns, w1 = running_worst(accs[name], 1)
        ns10, w10 = running_worst(accs[name], 10)
        bx.plot(ns, w1, ls=":", **style)
        bx.plot(ns10, w10, label=SHORT.get(name, name), **style)
    bx.set_xlabel("episodes run so far")
    bx.set_ylabel("acc10 (solid), acc1 (dotted)")
    bx.set_title("the estimated worst case keeps falling")
    bx.legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig
