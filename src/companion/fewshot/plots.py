"""Figures of the chapter: the distribution of episode accuracies and how the worst case is estimated.

Book section: *Worst case* "Explore: the tail behind the mean".
"""

from __future__ import annotations

import numpy as np

from .. import viz
from .experiment import FewShotResult
from .metrics import running_worst, summarize

#: Readable method names for legends and controls (the code ids stay in the library and the records).
SHORT = {"prototypes": "prototypes", "finetune": "fine-tune", "sr": "fine-tune + SR", "ac_sr": "SR + AC",
         "ac_ensr": "SR + AC + ensemble", "finetune_fixed_head": "fine-tune, fixed-norm head"}
COLORS = {"prototypes": viz.PALETTE["baseline"], "finetune": "#1f77b4", "sr": viz.PALETTE["other"],
          "ac_sr": viz.PALETTE["truth"], "ac_ensr": viz.PALETTE["method"], "finetune_fixed_head": "#9467bd"}


def method_id(method: str) -> str:
    """The code id of ``method``, given as its id or as its readable name in :data:`SHORT`."""
    by_label = {label: key for key, label in SHORT.items()}
    return by_label.get(method, method)


def draw_episodes(result: FewShotResult, shot: int, method: str):
    """Left: histogram of ``method``'s episode accuracies (plain fine-tuning as a grey outline) with
    its mean, acc10 and acc1 marked. Right: acc10 and acc1 over the first n episodes as n grows,
    for every method (``method`` in bold). ``method`` is a code id or its name in :data:`SHORT`.

    Book section: *Worst case* "Explore: the tail behind the mean".
    """
    import matplotlib.pyplot as plt

    viz.style()
    method = method_id(method)
    accs = result.accuracies[shot]
    if method not in accs:
        raise ValueError(f"{method!r} was not run; choose from {list(accs)}")
    a = accs[method]
    if a.size < 10:
        raise ValueError(f"need at least 10 episodes to mark acc10, got {a.size}")
    s = summarize(a, worst=(1, 10))
    shown = [n for n in result.config.methods if n in accs]
    lo = 5 * np.floor(min(accs[n].min() for n in shown) / 5 - 1)
    # constrained layout keeps titles, labels and the legends below the panels inside the figure
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(viz.FIG_WIDTH, 4.8), layout="constrained")
    queries = result.config.q_query * result.config.n_way
    bins = np.arange(lo, 100.01, 100 / queries * 3)
    if method != "finetune" and "finetune" in accs:
        ax.hist(accs["finetune"], bins=bins, histtype="step", color=viz.PALETTE["baseline"], lw=1.2,
                label=SHORT["finetune"])
    ax.hist(a, bins=bins, color=COLORS.get(method, "black"), alpha=0.6, label=SHORT.get(method, method))
    for value, style, name in ((s["mean"], "-", "mean"), (s["acc10"], "--", "acc10"), (s["acc1"], ":", "acc1")):
        ax.axvline(value, color="black", ls=style, lw=1.2, label=f"{name} {value:.1f}")
    ax.set_xlim(lo, 100)
    ax.set_xlabel(f"episode accuracy (%), {queries} queries")
    ax.set_ylabel("episodes")
    ax.set_title(f"{shot}-shot, {a.size} episodes")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1, frameon=False)

    for name in shown:
        bold = name == method
        style = {"color": COLORS.get(name, "black"), "lw": 2.2 if bold else 0.9, "alpha": 1 if bold else 0.55}
        ns, w1 = running_worst(accs[name], 1)
        ns10, w10 = running_worst(accs[name], 10)
        bx.plot(ns, w1, ls=":", **style)
        bx.plot(ns10, w10, label=SHORT.get(name, name), **style)
    bx.set_xlabel("episodes run so far")
    bx.set_ylabel("acc10 (solid), acc1 (dotted)")
    bx.set_title("the worst case keeps falling")
    bx.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1, frameon=False)
    fig.get_layout_engine().set(h_pad=0.1)  # room for the legends' own padding at the bottom edge
    return fig
