"""The built-page checks of tests/test_browser.py (tools/page_checks.py), on small HTML strings."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import page_checks as pc  # noqa: E402

# how jupyter-book renders a chapter: prose, math, an input cell, a text output and a Markdown output
PAGE = """<html><body><main><article>
<p>The layer computes <span class="math notranslate nohighlight">\\(h_c = \\mathrm{ReLU}(x)\\)</span>.</p>
<div class="math notranslate nohighlight">\\[ \\sum_i x_i \\]</div>
<div class="cell_input"><div class="highlight"><pre>print(f"{x:.3f}")  # `code` and $x$ are fine here</pre></div></div>
<div class="cell_output"><pre>1/sqrt(d): 0.354, 0.250</pre></div>
<div class="cell_output"><table><thead><tr><th>method</th><th>w = 0.25</th></tr></thead>
<tbody><tr><td>US3L</td><td>61.5</td></tr></tbody></table></div>
<p>Two seeds, <code>record=False</code>.</p>
</article></main></body></html>"""


def test_a_clean_page_passes_every_check():
    assert pc.literal_markup(PAGE) == []
    assert pc.python_reprs(PAGE) == []
    assert pc.empty_table_rows(PAGE) == []
    assert pc.s_plurals(PAGE) == []


def test_markup_shown_as_text_is_found_outside_code_only():
    broken = PAGE.replace("<p>Two seeds", "<p>2. $h_c = ReLU(BN(x))$ and :math:`\\tau` and make book`` ; Two seeds")
    found = pc.literal_markup(broken)
    assert any("$h_c = ReLU(BN(x))$" in f for f in found)
    assert any(":math:`" in f for f in found)
    assert any("make book" in f for f in found)  # the stray backticks
    assert pc.literal_markup(PAGE.replace("(x)\\)</span>", "(x)\\)</span> for $5 of compute")) == []


def test_numpy_reprs_are_found_in_outputs():
    broken = PAGE.replace("0.354, 0.250", "[np.float64(0.354), np.float64(0.25)]")
    found = pc.python_reprs(broken)
    assert len(found) == 2 and found[0].startswith("np.float64(0.354)")


def test_a_row_with_only_a_label_is_found():
    broken = PAGE.replace("</tbody>", "<tr><td>naive</td><td></td></tr></tbody>")
    assert pc.empty_table_rows(broken) == ["naive | "]


def test_s_plurals_are_found_in_prose_not_in_code():
    assert pc.s_plurals(PAGE.replace("Two seeds", "2 seed(s), 1 thread(s)")) == ["seed(s)", "thread(s)"]
    assert pc.s_plurals(PAGE.replace("record=False", "seed(s)")) == []


def test_page_weight_counts_the_html_and_the_images_it_loads(tmp_path):
    (tmp_path / "_images").mkdir()
    (tmp_path / "_images" / "a.png").write_bytes(b"x" * 1000)
    page = tmp_path / "ch.html"
    page.write_text('<img src="_images/a.png"><img src="_images/a.png"><img src="data:image/webp;base64,AAAA">')
    assert pc.page_weight(page) == page.stat().st_size + 1000
