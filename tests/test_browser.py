"""Open every page of the built book in headless Chromium, as a reader would, from disk.

Run by `make test` after `make book`. Fails on: a JavaScript error, an image that does not load, a
network request (the book must work offline), a cell output showing a traceback, an explorable
figure whose frame does not change when its control moves, a chapter without an "open in Colab"
link to an existing notebook. Saves a screenshot of each chapter into artifacts/screenshots/.
"""

import re
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.browser


def _pages():
    if not HTML.exists():
        return []
    pages = [HTML / "index.html"] + sorted((HTML / "book").glob("*.html"))
    return [p for p in pages if p.exists()]


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
                                                       headless=True, viewport={"width": 1280, "height": 900})
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


def test_every_chapter_is_built():
    built = {p.stem for p in (HTML / "book").glob("[0-9][0-9]_*.html")}
    sources = {p.stem for p in (ROOT / "book").glob("[0-9][0-9]_*.md")}
    assert sources and built == sources


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.stem)
def test_page_in_a_real_browser(browser, page):
    tab = browser.new_page()
    errors, remote = [], []
    tab.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    tab.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
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

    assert not remote, f"{page.name} needs the network (it must work offline): {remote[:5]}"
    assert not errors, f"{page.name}: JavaScript errors: {errors[:5]}"

    broken = tab.eval_on_selector_all("img", "imgs => imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 80))")
    assert not broken, f"{page.name}: images that did not load: {broken}"

    text = tab.inner_text("main") if tab.query_selector("main") else tab.inner_text("body")
    assert "Traceback (most recent call last)" not in text, f"{page.name} shows a traceback"
    assert not tab.query_selector_all(".output.traceback, .output.error"), f"{page.name} shows an error output"

    for fig in tab.query_selector_all(".companion-explore"):
        img = fig.query_selector("img.cx-frame")
        for control in fig.query_selector_all("[data-param]"):
            before = img.get_attribute("src")
            # move to a different choice than the current one: the last, or the first if already last
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
            after = img.get_attribute("src")
            assert after != before, f"{page.name}: moving {control.get_attribute('data-param')!r} did not change the figure"

    if re.match(r"\d\d_", page.stem):
        links = tab.eval_on_selector_all("a[href*='colab.research.google.com']", "as => as.map(a => a.href)")
        assert links, f"{page.name} has no 'open in Colab' link"
        for href in links:
            path = urlparse(href).path
            m = re.search(r"/blob/[^/]+/(.+)$", path)
            assert m and m.group(1).endswith(".ipynb"), f"{page.name}: Colab link is not a notebook: {href}"
            assert (ROOT / m.group(1)).exists(), f"{page.name}: Colab link points at a missing notebook: {m.group(1)}"
        assert tab.query_selector_all("a[href*='mybinder.org']"), f"{page.name} has no Binder link"
        SHOTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(SHOTS / f"{page.stem}.png"), full_page=False)
    tab.close()
