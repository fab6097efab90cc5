"""Open every page of the built book in headless Chromium, as a reader would, from disk.

Run by `make test` after `make book`. Each page is visited once (JavaScript probes, then the controls
are moved); the tests below check what was found. Fails on: a JavaScript error, an image that does
not load, a network request (the book must work offline), a traceback in an output; on a chapter: a
"Paper vs this book" section without a real table, Markdown pipes shown as text, a figure without
alt text, caption or HiDPI pixels, a visible code cell that scrolls sideways, an explorable figure
whose frame does not change when a control moves, Colab/Binder links that miss the repository of
_config.yml; in the page's HTML (tools/page_checks.py): $, :math: or backtick markup shown as text,
numpy reprs in outputs, table rows with nothing but a label, "(s)" plurals, a chapter page of 3 MB or
more. Saves screenshots (top, first explorable figure, the table) into artifacts/screenshots/.
"""

import os
import re
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("COMPANION_BOOK_HTML", ROOT / "_build" / "html"))  # another build: tests of the tests
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REPO = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
OWNER_REPO = REPO["url"].rstrip("/").removeprefix("https://github.com/")

pytestmark = pytest.mark.browser


def _pages():
    if not HTML.exists():
        return []
    pages = [HTML / "index.html"] + sorted((HTML / "book").glob("*.html"))
    return [p for p in pages if p.exists()]


def _chapters():
    return [p for p in _pages() if re.match(r"\d\d_", p.stem)]


@pytest.fixture(scope="module")
def browser():
    if not HTML.exists():
        pytest.fail("the book is not built: run `make book` first")
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed: run `make browser-deps`")
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="companion-chromium-")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, args=FLAGS,
                                                       headless=True, viewport={"width": 1440, "height": 900})
        context.set_default_timeout(30_000)
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


# --- JavaScript probes, run in the page --------------------------------------------------------

TABLE = """() => {
  const h = [...document.querySelectorAll('main section > h2')].find(h => /paper vs this book/i.test(h.textContent));
  if (!h) return null;
  const t = h.parentElement.querySelector('table');
  if (!t) return {found: false};
  return {found: true, header: t.querySelectorAll('thead th').length, rows: t.querySelectorAll('tbody tr').length,
          first: (t.querySelector('tbody tr') || {}).innerText || ''};
}"""

PIPES = r"""() => [...document.querySelectorAll('main p')].map(p => p.innerText)
  .filter(t => t.includes('|---|') || t.split('\n').some(l => /^\s*\|.*\|\s*$/.test(l)))
  .map(t => t.slice(0, 120))"""

FIGURES = """() => [...document.querySelectorAll('main article img, main .bd-article img')].map(img => {
  let fig = img.closest('figure');  // the nearest enclosing figure that has its own caption
  while (fig && !fig.querySelector(':scope > figcaption')) { fig = fig.parentElement.closest('figure'); }
  const cap = fig && fig.querySelector(':scope > figcaption');
  const box = img.getBoundingClientRect();
  return {src: img.getAttribute('src').slice(0, 60), alt: (img.getAttribute('alt') || '').trim(),
          caption: cap ? cap.innerText.trim() : '', natural: img.naturalWidth, shown: box.width,
          visible: img.getClientRects().length > 0 && box.width > 0,
          explorable: !!img.closest('.companion-explore, .companion-figure'), id: fig ? fig.id : ''};
})"""

WIDE_CODE = """() => [...document.querySelectorAll('main .cell_input pre')]
  .filter(pre => pre.getClientRects().length > 0 && pre.offsetParent !== null && pre.clientWidth > 0)
  .filter(pre => pre.innerText.trim().length > 0)  // an empty block (nothing shown) cannot overflow
  .filter(pre => pre.scrollWidth > pre.clientWidth + 2)
  .map(pre => { const lines = pre.innerText.split('\\n');
                const longest = lines.reduce((a, b) => b.length > a.length ? b : a, '');
                return `${longest.length} chars: ${longest.trim().slice(0, 70)}`; })"""

_visits = {}


def _visit(browser, page):
    """Open ``page`` once; return what the probes found (cached for the tests of this module)."""
    if page in _visits:
        return _visits[page]
    tab = browser.new_page()
    errors, remote = [], []
    tab.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    # the theme's own notice on a fresh browser profile (no stored light/dark choice) is not an error of the book
    benign = ("Got invalid theme mode",)
    tab.on("console", lambda m: errors.append(f"console: {m.text}")
           if m.type == "error" and not m.text.startswith(benign) else None)
    tab.on("requestfailed", lambda r: errors.append(f"missing: {r.url[:120]}") if r.url.startswith("file:") else None)

    def block_network(route):
        url = route.request.url
        if not url.startswith(("file:", "data:", "about:")):
            remote.append(url)
            return route.abort()
        return route.continue_()

    tab.route("**/*", block_network)
    tab.goto(page.as_uri(), wait_until="load")
    tab.wait_for_timeout(300)
    found = {"errors": errors, "remote": remote}
    found["broken"] = tab.eval_on_selector_all(
        "img", "imgs => imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 80))")
    found["text"] = tab.inner_text("main") if tab.query_selector("main") else tab.inner_text("body")
    found["error_outputs"] = len(tab.query_selector_all(".output.traceback, .output.error"))
    found["table"] = tab.evaluate(TABLE)
    found["pipes"] = tab.evaluate(PIPES)
    found["figures"] = tab.evaluate(FIGURES)
    # explorable figures whose frames are HTML text (no image to measure)
    found["text_explorers"] = tab.evaluate("() => document.querySelectorAll('.companion-explore .cx-html').length")
    found["wide_code"] = tab.evaluate(WIDE_CODE)
    found["colab"] = tab.eval_on_selector_all("a[href*='colab.research.google.com']", "as => as.map(a => a.href)")
    found["binder"] = tab.eval_on_selector_all("a[href*='mybinder.org']", "as => as.map(a => a.href)")
    if re.match(r"\d\d_", page.stem):
        _screenshots(tab, page.stem)
    found["unchanged"] = _move_controls(tab)
    tab.close()
    _visits[page] = found
    return found


def _screenshots(tab, stem):
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SHOTS / f"{stem}.png"), full_page=False)
    fig = tab.query_selector("figure:has(.companion-explore), .companion-explore")
    if fig:
        fig.scroll_into_view_if_needed()
        fig.screenshot(path=str(SHOTS / f"{stem}-figure.png"))
    table = tab.query_selector("section#paper-vs-this-book table, section[id^='paper-vs'] table")
    if table:
        table.scroll_into_view_if_needed()
        table.screenshot(path=str(SHOTS / f"{stem}-table.png"))
    tab.evaluate("window.scrollTo(0, 0)")


def _move_controls(tab):
    """Move every control of every explorable figure to another choice; names of those with no effect."""
    unchanged = []
    for fig in tab.query_selector_all(".companion-explore"):
        img = fig.query_selector(".cx-frame")  # an <img>, or a <div> of HTML text
        shown = "e => e.tagName === 'IMG' ? e.src : e.innerHTML"
        for control in fig.query_selector_all("[data-param]"):
            before = img.evaluate(shown)
            # a different choice than the current one: the last, or the first if already last
            if control.evaluate("c => c.tagName") == "SELECT":
                n = control.evaluate("c => c.options.length")
                if n < 2:
                    continue
                current = control.evaluate("c => c.selectedIndex")
                control.select_option(index=0 if current == n - 1 else n - 1)
            else:
                if control.get_attribute("max") == "0":
                    continue
                control.evaluate("c => { c.value = (+c.value === +c.max) ? c.min : c.max; c.dispatchEvent(new Event('input')); }")
            if img.evaluate(shown) == before:
                unchanged.append(control.get_attribute("data-param"))
    return unchanged


# --- the checks ---------------------------------------------------------------------------------

def test_every_chapter_is_built():
    built = {p.stem for p in (HTML / "book").glob("[0-9][0-9]_*.html")}
    sources = {p.stem for p in (ROOT / "book").glob("[0-9][0-9]_*.md")}
    assert sources and built == sources


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.stem)
def test_page_in_a_real_browser(browser, page):
    found = _visit(browser, page)
    assert not found["remote"], f"{page.name} needs the network (it must work offline): {found['remote'][:5]}"
    assert not found["errors"], f"{page.name}: JavaScript errors: {found['errors'][:5]}"
    assert not found["broken"], f"{page.name}: images that did not load: {found['broken']}"
    assert "Traceback (most recent call last)" not in found["text"], f"{page.name} shows a traceback"
    assert not found["error_outputs"], f"{page.name} shows an error output"
    assert not found["unchanged"], f"{page.name}: moving {found['unchanged']} did not change the figure"


@pytest.mark.parametrize("page", _chapters(), ids=lambda p: p.stem)
def test_paper_vs_book_is_a_rendered_table(browser, page):
    found = _visit(browser, page)
    table = found["table"]
    assert table is not None, f"{page.name} has no 'Paper vs this book' section"
    assert table["found"], f"{page.name}: the 'Paper vs this book' section has no <table>"
    assert table["header"] >= 2 and table["rows"] >= 1, f"{page.name}: the table has no header or no rows: {table}"
    assert found["pipes"] == [], f"{page.name}: Markdown table text shown as a paragraph: {found['pipes'][:3]}"


def _alt_problem(alt: str):
    if len(alt) < 12 or len(alt.split()) < 3:
        return "too short"
    if alt.lower() in ("explorable figure", "figure", "image", "plot"):
        return "generic"
    if re.search(r"\.(png|jpe?g|svg|gif)$", alt, re.I) or "/" in alt and " " not in alt:
        return "a file name"
    return None


@pytest.mark.parametrize("page", _chapters(), ids=lambda p: p.stem)
def test_figures_have_alt_text_captions_and_hidpi_pixels(browser, page):
    figures = _visit(browser, page)["figures"]
    assert any(f["explorable"] for f in figures) or _visit(browser, page)["text_explorers"], \
        f"{page.name} has no explorable figure"
    problems = []
    for f in figures:
        where = f"figure {f['id'] or f['src']!r}"
        if (why := _alt_problem(f["alt"])):
            problems.append(f"{where}: alt text {f['alt']!r} is {why}")
        if not re.match(r"Fig\. ?\d+", f["caption"]):
            problems.append(f"{where}: no numbered caption (got {f['caption'][:40]!r})")
        if f["visible"]:
            if f["natural"] < 1.8 * f["shown"]:
                problems.append(f"{where}: {f['natural']} px shown {f['shown']:.0f} px wide: not 2x (HiDPI)")
            if f["explorable"] and f["shown"] < 600:
                problems.append(f"{where}: shown {f['shown']:.0f} px wide, less than the column (>= 600)")
    assert not problems, f"{page.name}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("page", _chapters(), ids=lambda p: p.stem)
def test_visible_code_cells_do_not_scroll_sideways(browser, page):
    wide = _visit(browser, page)["wide_code"]
    assert not wide, f"{page.name}: visible code cells wider than the column (keep lines <= 88): {wide[:6]}"


@pytest.mark.parametrize("page", _chapters(), ids=lambda p: p.stem)
def test_launch_links_point_at_the_repository(browser, page):
    found = _visit(browser, page)
    assert found["colab"], f"{page.name} has no 'open in Colab' link"
    for href in found["colab"]:
        m = re.search(r"/github/([^/]+/[^/]+)/blob/([^/]+)/(.+)$", urlparse(href).path)
        assert m, f"{page.name}: Colab link is not a GitHub notebook: {href}"
        assert m.group(1) == OWNER_REPO and m.group(2) == REPO["branch"], f"{page.name}: {href} is not {REPO}"
        assert m.group(3).endswith(".ipynb"), f"{page.name}: Colab link is not a notebook: {href}"
        assert (ROOT / m.group(3)).exists(), f"{page.name}: Colab link points at a missing notebook: {m.group(3)}"
    assert found["binder"], f"{page.name} has no Binder link"
    assert all(f"/gh/{OWNER_REPO}/{REPO['branch']}" in h for h in found["binder"]), found["binder"]


# --- the page's own HTML: defects a reader sees without moving anything (tools/page_checks.py) ----------


def _page_checks():
    import sys

    sys.path.insert(0, str(ROOT / "tools"))
    import page_checks

    return page_checks


#: (check in tools/page_checks.py, the pages it reads, what a failure means)
TEXT_CHECKS = [
    ("literal_markup", _chapters(), "$, :math: or backtick markup shown as text outside code"),
    ("python_reprs", _chapters(), "numpy reprs in the outputs (print numbers, e.g. with f-strings)"),
    ("empty_table_rows", _chapters(), "table rows with nothing but a label"),
    ("s_plurals", _pages(), "'(s)' plurals (the count is known: write '1 seed' or '2 seeds')"),
]


@pytest.mark.parametrize("check, page, meaning", [(c, p, m) for c, pages, m in TEXT_CHECKS for p in pages],
                         ids=lambda v: v.stem if isinstance(v, Path) else (v if len(str(v)) < 20 else ""))
def test_page_text_has_no_defects(check, page, meaning):
    found = getattr(_page_checks(), check)(page.read_text())
    assert not found, f"{page.name}: {meaning}: {found[:5]}"


@pytest.mark.parametrize("page", _chapters(), ids=lambda p: p.stem)
def test_chapter_page_weighs_under_3_mb(page):
    checks = _page_checks()
    weight = checks.page_weight(page)
    assert weight < checks.MAX_PAGE_BYTES, (
        f"{page.name} weighs {weight / 1e6:.1f} MB (limit {checks.MAX_PAGE_BYTES / 1e6:.0f} MB): draw explorer "
        "frames as WebP (viz.explore's default) or with fewer settings")
