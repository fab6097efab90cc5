"""Time each chapter's quick execution and the whole book build; write benchmarks/results/chapters.json.

Targets for the finished book: every chapter's quick run under 60 s on 2 cores, and the whole
`make book` under 10 minutes after the install.

    python benchmarks/chapters.py            # every chapter, then the book build
    python benchmarks/chapters.py --chapters 01_tobias 04_nrs --no-book
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "COMPANION_MODE": "quick", "COMPANION_STATIC_FIGURES": "1", "TQDM_DISABLE": "1",
       "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


# execute one notebook in a fresh kernel with book/ as the working folder, as the book build does
RUN_NOTEBOOK = (
    "import sys, nbformat, nbclient; nb = nbformat.read(sys.argv[1], as_version=4); "
    "nbclient.NotebookClient(nb, timeout=600, resources={'metadata': {'path': 'book'}}).execute()"
)


def timed(cmd: list[str]) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "ok": proc.returncode == 0,
            "tail": "" if proc.returncode == 0 else (proc.stdout + proc.stderr)[-2000:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chapters", nargs="*", help="chapter stems, e.g. 01_tobias (default: all)")
    parser.add_argument("--no-book", action="store_true", help="skip timing the whole book build")
    args = parser.parse_args()
    stems = args.chapters or sorted(p.stem for p in (ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
    python = sys.executable
    report = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
              "target_s": {"chapter": 60, "book": 600}, "chapters": {}}
    for stem in stems:
        r = timed([python, "-c", RUN_NOTEBOOK, f"book/{stem}.ipynb"])
        report["chapters"][stem] = r
        print(f"{stem:28s} wall {r['wall_s']:6.1f} s  cpu {r['cpu_s']:6.1f} s  {'ok' if r['ok'] else 'FAILED'}", flush=True)
    if not args.no_book:
        r = timed(["make", "book"])
        report["book"] = r
        print(f"{'make book':28s} wall {r['wall_s']:6.1f} s  cpu {r['cpu_s']:6.1f} s  {'ok' if r['ok'] else 'FAILED'}")
    out = ROOT / "benchmarks" / "results" / "chapters.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() and args.chapters:  # a partial run updates the chapters it timed
        previous = json.loads(out.read_text())
        previous["chapters"].update(report["chapters"])
        report["chapters"] = previous["chapters"]
        report.setdefault("book", previous.get("book"))
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
