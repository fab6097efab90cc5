"""The book as one PDF (`make pdf`): every page of the built book, in _toc.yml order, with its figures.

Needs the built book (`make book`); prints it again when the PDF is missing or older than the pages.
"""

import re
import sys
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

pytestmark = [pytest.mark.browser, pytest.mark.pdf]


def _words(text: str) -> str:
    # NFKC undoes the fonts' ligatures ("Eﬃcient" -> "Efficient") that text extraction returns
    return " ".join(re.findall(r"[a-z0-9]+", unicodedata.normalize("NFKC", text).lower()))


@pytest.fixture(scope="module")
def pdf():
    import book_pdf

    pages = book_pdf.toc_pages()  # fails with "run `make book`" when not built
    out = book_pdf.OUT
    if not out.exists() or out.stat().st_mtime < max(p.stat().st_mtime for p in pages):
        book_pdf.build(out)
    from pypdf import PdfReader

    return PdfReader(out)


def test_pdf_has_every_chapter_with_figures(pdf):
    assert len(pdf.pages) > 10
    text = _words(" ".join(page.extract_text() or "" for page in pdf.pages))
    titles = [next(line[2:] for line in md.read_text().splitlines() if line.startswith("# "))
              for md in sorted((ROOT / "book").glob("[0-9][0-9]_*.md"))]
    assert len(titles) == 10
    missing = [t for t in titles if _words(t) not in text]
    assert not missing, f"chapter titles missing from the PDF: {missing}"
    assert "paper vs this book" in text
    # figures are printed as images, not left out
    images = sum(len(page.images) for page in pdf.pages)
    assert images >= 10, f"only {images} images in the PDF"
    bookmarks = [item.title for item in pdf.outline if not isinstance(item, list)]
    assert len(bookmarks) == len(__import__("book_pdf").toc_pages())
