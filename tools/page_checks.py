"""Checks of a built book page's HTML for defects a reader sees: markup shown as text, Python reprs in
outputs, empty table rows, "(s)" plurals, and page weight.

Used by tests/test_browser.py on `_build/html` and tested on small HTML strings in tests/test_page_checks.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlparse

from bs4 import BeautifulSoup

#: A chapter page, with every image it loads from disk, stays under this many bytes.
MAX_PAGE_BYTES = 3_000_000

# code, rendered math (MathJax reads TeX from these) and scripts are not prose
_NOT_PROSE = ["pre", "code", "script", "style", "kbd", "samp", "textarea", "mjx-container", "math"]
_NOT_PROSE_CLASSES = {"math", "highlight", "MathJax", "MathJax_Preview", "headerlink", "cx-controls"}
_MATH_TEXT = re.compile(r"\$[^$\s][^$]*\$|\$\$|:math:`|:(?:numref|ref|cite|doc|eq)`")
_REPR = re.compile(r"\bnp\.(?:float|int|uint|bool|complex|str)\w*\(")
_PLURAL = re.compile(r"\b\w+\(s\)")


def _main(html: str) -> BeautifulSoup:
    soup = BeautifulSoup(html, "html.parser")
    return soup.find("main") or soup.find("article") or soup


def prose_text(html: str) -> str:
    """The page's reading text: the main content without code, rendered math, scripts and permalinks."""
    main = _main(html)
    for tag in list(main.find_all(True)):
        if tag.decomposed:
            continue
        if tag.name in _NOT_PROSE or set(tag.get("class") or []) & _NOT_PROSE_CLASSES:
            tag.decompose()
    return main.get_text(" ")


def literal_markup(html: str) -> list[str]:
    """Markup shown as text outside code: ``$...$`` or ``$$``, ``:math:`` and other roles, backticks."""
    text = prose_text(html)
    found = [m.group(0)[:60] for m in _MATH_TEXT.finditer(text)]
    found += [text[max(0, i - 30):i + 30].strip() for i in (m.start() for m in re.finditer("`", text))]
    return found


def python_reprs(html: str) -> list[str]:
    """``np.float64(0.35)``-style reprs anywhere on the page, outputs included: a number is printed as a number."""
    text = _main(html).get_text(" ")
    return [text[m.start():m.start() + 40] for m in _REPR.finditer(text)]


def empty_table_rows(html: str) -> list[str]:
    """Body rows of a table with a label and every other cell empty (a row that says nothing)."""
    problems = []
    for row in _main(html).find_all("tr"):
        cells = row.find_all("td")
        if len(cells) < 2:
            continue
        texts = [c.get_text(" ", strip=True) for c in cells]
        if not any(texts[1:]):
            problems.append(" | ".join(texts)[:80] or "(a row of empty cells)")
    return problems


def s_plurals(html: str) -> list[str]:
    """"seed(s)"-style plurals in the reading text: the count is known, so say "1 seed" or "2 seeds"."""
    return _PLURAL.findall(prose_text(html))


def page_weight(page: Path) -> int:
    """Bytes a reader downloads for ``page`` itself: its HTML (data: images included) and the images it
    loads from the build folder (shared scripts, styles and fonts are not counted: they are cached)."""
    page = Path(page)
    total = page.stat().st_size
    soup = BeautifulSoup(page.read_text(errors="replace"), "html.parser")
    seen = set()
    for img in soup.find_all(["img", "source"]):
        src = img.get("src") or ""
        url = urlparse(src)
        if not src or url.scheme in ("data", "http", "https") or src in seen:
            continue
        seen.add(src)
        path = (page.parent / unquote(url.path)).resolve()
        if path.is_file():
            total += path.stat().st_size
    return total
