"""Every chapter has the one shape written down in book/contributing.md ("The chapter template").

The paired .ipynb being in sync with its .md is checked by tests/test_book.py.
"""

import ast
import re
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.md"))

# The fixed H2 headings, in order (book/contributing.md). "Explore: ..." is a prefix.
QUICK, EXPLORE, CLAIMS = "Quick run", "Explore: ", "Claims, intervals and verdicts"
AFTER_CLAIMS = ["Paper vs this book", "Differences from the official code", "Full run", "Exercises",
                "What to take away"]
OPENING = ("**What you will learn.**", "**What to know first.**")
VERDICTS = {"holds", "does_not_hold", "inconclusive"}


def h2_titles(markdown: str) -> list[str]:
    """The H2 headings of a MyST chapter, outside code fences."""
    titles, fence = [], None
    for line in markdown.splitlines():
        m = re.match(r"^(`{3,}|~{3,})", line)
        if m:
            fence = m.group(1) if fence is None else (None if line.strip() == fence else fence)
        elif fence is None and line.startswith("## "):
            titles.append(line[3:].strip())
    return titles


def shape_errors(titles: list[str]) -> list[str]:
    """What breaks the template in a chapter's H2 headings (empty when it follows it).

    The template: method sections (any names, at least one) -> "Quick run" -> one "Explore: ..." ->
    further experiments (any names) -> "Claims, intervals and verdicts" -> "Paper vs this book" ->
    "Differences from the official code" -> "Full run" -> "Exercises" -> "What to take away".
    """
    errors = []
    for fixed in [QUICK, CLAIMS] + AFTER_CLAIMS:
        if titles.count(fixed) != 1:
            errors.append(f"needs exactly one '## {fixed}', has {titles.count(fixed)}")
    explores = [t for t in titles if t.startswith(EXPLORE)]
    if len(explores) != 1:
        errors.append(f"needs exactly one '## {EXPLORE}...' section, has {len(explores)}")
    if errors:
        return errors
    q, c, e = titles.index(QUICK), titles.index(CLAIMS), titles.index(explores[0])
    if q == 0:
        errors.append("no method section before '## Quick run'")
    if e != q + 1:
        errors.append(f"'## {explores[0]}' must follow '## Quick run' directly")
    if titles[c + 1:] != AFTER_CLAIMS:
        errors.append(f"after '## {CLAIMS}' the sections must be {AFTER_CLAIMS}, got {titles[c + 1:]}")
    if not q < e < c:
        errors.append("order must be Quick run, Explore, Claims")
    return errors


def test_shape_checker_accepts_the_template_and_names_what_is_wrong():
    good = ["The method", QUICK, "Explore: it", "More", CLAIMS] + AFTER_CLAIMS
    assert shape_errors(good) == []
    swapped = ["The method", QUICK, "Explore: it", CLAIMS, "Full run", "Paper vs this book",
               "Differences from the official code", "Exercises", "What to take away"]
    assert any("after '## Claims" in e for e in shape_errors(swapped))
    assert any("must follow '## Quick run'" in e for e in
               shape_errors(["The method", "Explore: it", QUICK, CLAIMS] + AFTER_CLAIMS))
    assert any("What to take away" in e for e in shape_errors(good[:-1]))
    fenced = "## A\n```{code-cell} ipython3\n## not a heading\n```\n## B\n"
    assert h2_titles(fenced) == ["A", "B"]


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_sections_follow_the_template(md):
    errors = shape_errors(h2_titles(md.read_text()))
    assert not errors, f"{md.name} (see 'The chapter template' in book/contributing.md): {errors}"


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_opens_with_what_you_will_learn_and_what_to_know_first(md):
    text = md.read_text()
    before_first_h2 = text[:text.index("\n## ")]
    missing = [o for o in OPENING if o not in before_first_h2]
    assert not missing, f"{md.name}: the opening (before the first section) lacks {missing}"


def _say_calls(source: str):
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "show_say":
            yield node


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_ends_with_a_summary_whose_verdicts_come_from_the_record(md):
    text = md.read_text()
    summary = text[text.index("\n## What to take away"):]
    cells = [c for c in jupytext.reads(summary, fmt="myst").cells if c.cell_type == "code"]
    calls = [call for c in cells for call in _say_calls(c.source)]
    assert calls, f"{md.name}: 'What to take away' states no verdict through results.show_say(...)"
    for call in calls:
        given = {k.arg for k in call.keywords}
        assert VERDICTS <= given, f"{md.name}: a show_say call in the summary lacks {sorted(VERDICTS - given)}"


def test_printed_source_is_the_method_without_docstring_checks_or_long_lines():
    from companion import psol, quant, tobias, viz

    loss = viz.method_source(psol.box_loss)
    assert loss.splitlines()[-1].strip() == "return weight * F.mse_loss(pred.float(), target.float())"
    assert "raise" not in loss and '"""' not in loss and ":math:" not in loss
    boxes = viz.method_source(tobias.boxes_from_maps)
    assert "raise ValueError" not in boxes and "largest_component" in boxes
    for fn in (psol.box_loss, tobias.boxes_from_maps, tobias.cell_scores, quant.fake_quant_weight):
        text = viz.method_source(fn, width=88)
        ast.parse(text)  # still Python: the page shows what runs
        assert max(len(line) for line in text.splitlines()) <= 88, fn.__name__


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_chapters_print_library_code_with_show_source(md):
    assert "inspect.getsource" not in md.read_text(), f"{md.name}: print library code with viz.show_source"


def test_scratch_results_records_in_a_temporary_folder_and_restores_the_book_folder(monkeypatch, tmp_path):
    from companion import results, runtime

    book = tmp_path / "book-results"
    monkeypatch.setenv("COMPANION_RESULTS", str(book))
    with runtime.scratch_results() as folder:
        assert results.results_dir() == folder and folder != book and folder.is_dir()
    assert results.results_dir() == book
    monkeypatch.delenv("COMPANION_RESULTS")
    with runtime.scratch_results(tmp_path / "mine") as folder:
        assert folder == tmp_path / "mine" and folder.is_dir()
    assert "COMPANION_RESULTS" not in __import__("os").environ


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_exercises_never_write_the_books_records(md):
    text = md.read_text()
    exercises = text[text.index("\n## Exercises"):text.index("\n## What to take away")]
    assert "runtime.scratch_results()" in exercises, f"{md.name}: the exercises do not say how to keep results/ intact"
    lines = exercises.splitlines()
    for i, line in enumerate(lines):
        if re.search(r"\.run\(", line):
            around = "\n".join(lines[max(0, i - 3):i + 3])
            assert re.search(r"record=False|write_results=False|scratch_results", around), \
                f"{md.name}: an exercise runs {line.strip()!r} and would overwrite the book's record"


# --- tables and sentences the pages print: no junk (one-sample spreads, empty rows, one-row ladders) ----


def test_us3l_tables_skip_methods_without_values_and_collapse_is_judged_against_the_untrained_network():
    from companion.us3l import figures as us3l_figures

    widths = (0.25, 1.0)
    out = {"mean": {
        "us3l": {"knn@25": 61.5, "knn@100": 87.4, "knn_officialbn@25": 60.6, "std@25": 0.17, "std@100": 0.098},
        "naive": {"knn@25": 67.8, "knn@100": 80.8, "std@25": 0.05, "std@100": 0.105},
        "random init": {"knn@25": 41.8, "knn@100": 80.6, "std@25": 0.18, "std@100": 0.093},
    }}
    table = us3l_figures.width_table(out, widths, "knn_officialbn")
    assert table.splitlines()[2:] == ["| US3L | 60.6 | - |"]  # no rows for methods that did not measure it
    assert "np.float64" not in us3l_figures.width_table(out, widths, "knn")
    ratios = us3l_figures.spread_ratios(out, widths)
    assert ratios["us3l"] == pytest.approx(0.17 / 0.18) and ratios["naive"] == pytest.approx(0.05 / 0.18)
    text = us3l_figures.collapse_text(out, widths)
    assert "naive slimmable" in text and "US3L," not in text and "US3L " not in text.split(":")[1]
    # US3L's spread is below half of 1/sqrt(d) at width 0.25 (d = 8: 0.354 / 2 = 0.177 > 0.17) yet it is
    # no lower than the untrained network's own: not a collapse
    del out["mean"]["naive"]
    assert us3l_figures.collapse_text(out, widths).startswith("No method collapses")


def test_vit_ablation_of_one_recipe_is_a_sentence_not_a_one_row_table():
    from companion.vit2040 import figures as vit_figures

    one = vit_figures.ablation_table({"ablation": {"cutmix": 71.2}})
    assert "|" not in one and "+ CutMix" in one and "71.2" in one
    two = vit_figures.ablation_table({"ablation": {"none": 60.0, "cutmix": 71.2}})
    assert two.splitlines()[2:] == ["| none | 60.0 |", "| + CutMix | 71.2 |"]


def test_tobias_tables_show_no_spread_for_one_seed():
    from companion.tobias import figures as tobias_figures

    one = {"corloc_mean": 29.0, "corloc_std": 0.0, "per_seed": [{}]}
    two = {"corloc_mean": 29.0, "corloc_std": 1.5, "per_seed": [{}, {}]}
    assert tobias_figures._pm(one, "corloc") == "29.0"
    assert tobias_figures._pm(two, "corloc") == "29.0 ± 1.5"
