"""One PDF of the built book: Chromium prints every page of ``_build/html`` in ``_toc.yml`` order
(figures, tables and equations as the browser shows them) and pypdf joins them, one bookmark a page.

    python tools/book_pdf.py [OUT]     # default _build/pdf/companion.pdf; needs `make book` first
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
OUT = ROOT / "_build" / "pdf" / "companion.pdf"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Print only the page's content: no sidebars, header, launch buttons or "show source" toggles.
PRINT_CSS = """
.bd-header, .bd-sidebar-primary, .bd-sidebar-secondary, .header-article, .prev-next-area,
.bd-footer, .bd-footer-content, .bd-footer-article, footer, .cell_input details summary, .headerlink,
#pst-back-to-top, .sidebar-toggle, .skip-link { display: none !important; }
.bd-main .bd-content .bd-article-container { max-width: 100% !important; }
details.hide { display: none !important; }
pre { white-space: pre-wrap !important; word-break: break-all; }
"""


def toc_pages() -> list[Path]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc.get("parts", []) for c in part["chapters"]]
    pages = [HTML / f"{f}.html" for f in files]
    missing = [str(p.relative_to(ROOT)) for p in pages if not p.exists()]
    if missing:
        raise SystemExit(f"not built: {missing}; run `make book` first")
    return pages


def build(out: Path = OUT, timeout_ms: int = 60_000) -> Path:
    from playwright.sync_api import sync_playwright
    from pypdf import PdfReader, PdfWriter

    if not Path(CHROMIUM).exists():
        raise SystemExit("Chromium is not installed: run `make browser-deps`")
    pages = toc_pages()
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="companion-pdf-"))
    writer = PdfWriter()
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(str(work / "profile"), executable_path=CHROMIUM,
                                                           args=FLAGS, headless=True)
            context.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:", "about:"))
                          else r.abort())
            tab = context.new_page()
            tab.set_default_timeout(timeout_ms)
            for i, page in enumerate(pages):
                tab.goto(page.as_uri(), wait_until="load")
                tab.add_style_tag(content=PRINT_CSS)
                # MathJax typesets after load: wait for it (bounded), then print
                tab.evaluate("""() => (window.MathJax && MathJax.startup && MathJax.startup.promise)
                                ? Promise.race([MathJax.startup.promise, new Promise(r => setTimeout(r, 15000))])
                                : null""")
                title = tab.evaluate("() => (document.querySelector('main h1') || {}).textContent || document.title")
                part = work / f"{i:02d}.pdf"
                tab.pdf(path=str(part), format="A4", print_background=True,
                        margin={"top": "16mm", "bottom": "16mm", "left": "14mm", "right": "14mm"})
                start = len(writer.pages)
                writer.append(PdfReader(part))
                writer.add_outline_item(title.strip().rstrip("#").strip() or page.stem, start)
            context.close()
        writer.add_metadata({"/Title": "companion"})
        with out.open("wb") as f:
            writer.write(f)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


if __name__ == "__main__":
    path = build(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
    print(f"PDF: {path}")
