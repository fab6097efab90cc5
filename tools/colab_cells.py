"""Write the Colab install cell into every chapter, from ``_config.yml``'s repository section.

    python tools/colab_cells.py          # rewrite book/NN_*.md and runtime.REPO_URL/REPO_BRANCH
    python tools/colab_cells.py --check  # exit 1 (and list the files) if anything is out of date

Then ``make sync`` rewrites the paired .ipynb files (``make colab-cells`` does both).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from companion import runtime  # noqa: E402

# the first code cell, tagged remove-cell: its body is replaced
CELL = re.compile(r"(```\{code-cell\}[^\n]*\n:tags: \[remove-cell\]\n\n)(.*?)(\n```)", re.S)
RUNTIME = ROOT / "src" / "companion" / "runtime.py"


def updated_chapter(text: str, cell: str) -> str:
    first = re.search(r"```\{code-cell\}", text)
    m = CELL.search(text)
    if not m or m.start() != first.start():
        raise ValueError("the first code cell is not tagged remove-cell")
    return text[: m.start(2)] + cell + text[m.end(2):]


def updated_runtime(text: str, url: str, branch: str) -> str:
    text = re.sub(r'^REPO_URL = "[^"]*"', f'REPO_URL = "{url}"', text, count=1, flags=re.M)
    return re.sub(r'^REPO_BRANCH = "[^"]*"', f'REPO_BRANCH = "{branch}"', text, count=1, flags=re.M)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    url, branch = runtime.repository()
    cell = runtime.colab_install_cell(url, branch)
    changes = {}
    for md in sorted((ROOT / "book").glob("[0-9][0-9]_*.md")):
        text = md.read_text()
        new = updated_chapter(text, cell)
        if new != text:
            changes[md] = new
    text = RUNTIME.read_text()
    new = updated_runtime(text, url, branch)
    if new != text:
        changes[RUNTIME] = new
    names = [str(p.relative_to(ROOT)) for p in changes]
    if check:
        if names:
            print("Colab install cells out of date (run `make colab-cells`):", *names, sep="\n  ")
            return 1
        return 0
    for path, new in changes.items():
        path.write_text(new)
    print(f"repository {url} @ {branch}: updated {len(names)} file(s)", *names, sep="\n  ")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
