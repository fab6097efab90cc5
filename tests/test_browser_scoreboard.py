"""The first page's scoreboard, seen in Chromium at a laptop's 1280x900: one screen, one row per
paper, a coloured badge with its word for every verdict, links to each chapter's claims, and the
forest plot under it. Saves artifacts/screenshots/scoreboard.png."""

import pytest
from test_browser import HTML, SHOTS, _chapters, browser  # noqa: F401  (the shared Chromium fixture)

pytestmark = pytest.mark.browser

PROBE = """() => {
  const t = document.querySelector('table.scoreboard');
  if (!t) return null;
  const r = t.getBoundingClientRect();
  const badges = [...t.querySelectorAll('.verdict-badge')].map(b => b.innerText.trim());
  const links = [...t.querySelectorAll('a')].map(a => a.getAttribute('href'));
  const fig = [...document.querySelectorAll('figure')].find(f => /every paper claim/i.test(f.innerText));
  return {height: r.height, width: r.width, right: r.right, rows: t.querySelectorAll('tbody tr').length,
          badges, links, overflow: document.documentElement.scrollWidth > window.innerWidth,
          forest: !!fig && !!fig.querySelector('img')};
}"""


def test_scoreboard_fits_one_laptop_screen(browser):  # noqa: F811
    page = browser.new_page()
    page.set_viewport_size({"width": 1280, "height": 900})
    try:
        page.goto((HTML / "book" / "intro.html").as_uri())
        page.wait_for_load_state("load")
        found = page.evaluate(PROBE)
        assert found, "no scoreboard table on the first page"
        table = page.locator("table.scoreboard")
        table.scroll_into_view_if_needed()
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "scoreboard.png"))
    finally:
        page.close()
    assert found["rows"] == 10
    assert found["height"] <= 900 - 60, f"the scoreboard is {found['height']:.0f} px tall: more than one screen"
    assert found["right"] <= 1280 and not found["overflow"], "the scoreboard scrolls sideways at 1280 px"
    assert len(found["badges"]) == 20 and all(found["badges"])
    assert all(link and "-claims" in link for link in found["links"]) and len(found["links"]) == 10
    assert found["forest"], "no forest plot under the scoreboard"


CLAIMS_TABLE = """(chapter) => {
  const anchor = document.getElementById(chapter + '-claims');
  if (!anchor) return null;
  const section = anchor.closest('section') || anchor.parentElement;
  const t = section.querySelector('table');
  if (!t) return {table: false};
  const box = t.closest('.output, .cell_output, section') || t.parentElement;
  const rows = [...t.querySelectorAll('tbody tr')];
  return {table: true, width: t.scrollWidth, room: box.clientWidth, rows: rows.length,
          cells: rows.map(r => r.querySelectorAll('td').length), header: [...t.querySelectorAll('thead th')].map(h => h.innerText.trim()),
          overflow: document.documentElement.scrollWidth > window.innerWidth};
}"""


@pytest.mark.parametrize("page", _chapters(), ids=lambda p: p.stem)
def test_claims_table_fits_a_laptop_screen(browser, page):  # noqa: F811
    """Each chapter's claims table: one row per claim, the tiers side by side, no sideways scrolling at 1280 px."""
    from companion.results import CHAPTERS

    chapter = next(c for c, (p, _, _) in CHAPTERS.items() if p == page.stem and c != "ssl_toolkit")
    tab = browser.new_page()
    tab.set_viewport_size({"width": 1280, "height": 900})
    try:
        tab.goto(page.as_uri())
        found = tab.evaluate(CLAIMS_TABLE, chapter)
    finally:
        tab.close()
    assert found and found["table"], f"{page.name}: no table in the claims section"
    assert found["header"][:2] == ["claim", "kind"] and "study" in found["header"], found["header"]
    assert found["rows"] >= 2 and set(found["cells"]) == {len(found["header"])}
    assert found["width"] <= found["room"] + 1 and not found["overflow"], (
        f"{page.name}: the claims table is {found['width']} px wide in {found['room']} px: it scrolls sideways")
