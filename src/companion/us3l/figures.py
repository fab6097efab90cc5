"""The US3L chapter's tables, explorable figure and collapse check, drawn from ``run()``'s output.

Book section: *US3L* "Quick run" and "Explore: width, cost and accuracy".
"""

from __future__ import annotations

import matplotlib.pyplot as plt

from .. import viz
from .experiment import width_key

#: Readable names of the methods ``run()`` reports, in the order the page shows them.
LABELS = {"us3l": "US3L", "us3l_online": "US3L, no momentum teacher", "naive": "naive slimmable (released)",
          "naive_simclr": "naive slimmable, SimCLR per width", "separate": "trained alone, all steps",
          "separate_us3l": "trained alone, US3L's steps", "random init": "untrained"}
COLOURS = {"us3l": viz.PALETTE["method"], "us3l_online": viz.PALETTE["other"], "naive": viz.PALETTE["pseudo"],
           "naive_simclr": viz.PALETTE["pseudo"], "separate": viz.PALETTE["truth"],
           "separate_us3l": viz.PALETTE["truth"], "random init": viz.PALETTE["baseline"]}
STYLES = {"us3l_online": "--", "naive_simclr": "--"}
#: markers of the networks trained alone (a point per width, no line): filled for all steps, open for US3L's
MARKERS = {"separate_us3l": "D"}
#: The untrained network: the reference spread of features that did not collapse.
FLOOR = "random init"


def methods(out: dict) -> list[str]:
    """The methods ``out`` measured, in :data:`LABELS` order."""
    return [m for m in LABELS if m in out["mean"]]


def width_table(out: dict, widths, key: str, digits: int = 1) -> str:
    """Markdown: one row per method that measured ``key`` at some width, one column per width.

    A method with no value at any width (for instance the released-code calibration, measured for
    US3L only) has no row; a width it did not measure shows "-".
    """
    head = f"| {key} | " + " | ".join(f"w = {w}" for w in widths) + " |"
    lines = [head, "|---|" + "---|" * len(widths)]
    for m in methods(out):
        cells = [out["mean"][m].get(f"{key}@{width_key(w)}") for w in widths]
        if all(v is None for v in cells):
            continue
        lines.append(f"| {LABELS[m]} | " + " | ".join("-" if v is None else f"{v:.{digits}f}" for v in cells) + " |")
    return "\n".join(lines)


def spread_ratios(out: dict, widths) -> dict[str, float]:
    """Per method, the lowest ratio of its feature spread to the untrained network's at the same width.

    The untrained network is the reference: its features have not collapsed, and at small widths and
    dimensions its spread already sits below :math:`1/\\sqrt{d}`, so a threshold on :math:`1/\\sqrt{d}`
    alone would call a healthy network collapsed.
    """
    floor = out["mean"][FLOOR]
    ratios = {}
    for m in methods(out):
        row = out["mean"][m]
        rs = [row[f"std@{width_key(w)}"] / floor[f"std@{width_key(w)}"] for w in widths
              if f"std@{width_key(w)}" in row and f"std@{width_key(w)}" in floor]
        if rs and m != FLOOR:
            ratios[m] = float(min(rs))
    return ratios


def collapse_text(out: dict, widths, fraction: float = 0.5) -> str:
    """One sentence: which methods collapse (spread below ``fraction`` of the untrained network's)."""
    ratios = spread_ratios(out, widths)
    collapsed = [LABELS[m] for m, r in ratios.items() if r < fraction]
    if collapsed:
        return (f"In this run these collapse (feature spread below {fraction:g} of the untrained network's at "
                "some width): " + ", ".join(collapsed) + ".")
    return (f"No method collapses in this run: at every width each method's feature spread stays above {fraction:g} "
            f"of the untrained network's (lowest ratio {min(ratios.values()):.2f}), so this run cannot show that "
            "US3L *prevents* collapse, only how the methods compare when none collapses.")


def draw_widths(out: dict, widths, width: float, measure: str):
    """Left: kNN accuracy or feature spread of every method against width; right: each width's cost."""
    key = "knn" if measure == "kNN accuracy" else "std"
    n = len(methods(out))
    # Two legend columns once the labels are many: three would run past the figure's edge.
    ncol = 3 if n <= 3 else 2
    rows = -(-n // ncol)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(viz.FIG_WIDTH, 2.9 + 0.25 * rows), layout="constrained")
    for m in methods(out):
        row = out["mean"][m]
        pts = [(w, row[f"{key}@{width_key(w)}"]) for w in widths if f"{key}@{width_key(w)}" in row]
        xs, ys = zip(*pts)
        marker = ("o" + STYLES.get(m, "-")) if len(xs) > 2 else MARKERS.get(m, "s")
        ax.plot(xs, ys, marker, color=COLOURS[m], label=LABELS[m], mfc="none" if m in MARKERS else None)
    ax.axvline(width, color="k", lw=0.8, ls=":")
    unit = " (%)" if key == "knn" else ""
    ax.set(xlabel="width multiplier", ylabel=measure + unit, xticks=list(widths))
    costs = out["costs"]
    flops = [costs[width_key(w)]["flops"] / 1e6 for w in widths]
    params = [costs[width_key(w)]["params"] / 1e3 for w in widths]
    i = list(widths).index(width)
    bar_colours = ["#cccccc" if w != width else viz.PALETTE["method"] for w in widths]
    bx.bar([str(w) for w in widths], flops, color=bar_colours)
    bx.set(ylabel="MFLOPs per image", xlabel="width multiplier",
           title=f"w={width}: {flops[i]:.2f} MFLOPs, {params[i]:.1f}k params")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=ncol)
    return fig
