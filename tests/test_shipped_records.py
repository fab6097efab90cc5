"""The installed package, with no checkout around (a reader on Colab): the committed records ship inside
it, the chapters read them, and a reader's own runs are written to a folder of their own, never over them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD_FILES = ("src", "pyproject.toml", "README.md", "setup.py", "MANIFEST.in", "results")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The wheel built from a copy of the checkout's files (the build writes nothing into the checkout),
    unpacked as it would be installed: a folder to put on ``PYTHONPATH``."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *BUILD_FILES],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    if not listed:
        pytest.skip("not a git checkout")
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    for rel in listed:
        if (ROOT / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, src / rel)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "-q", "-w", str(tmp / "dist"), str(src)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = (tmp / "dist").glob("companion-*.whl")
    out = tmp / "site"
    zipfile.ZipFile(wheel).extractall(out)
    return out


def _python(site: Path, cwd: Path, code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("COMPANION_RESULTS", "PYTHONPATH")}
    clean.update(PYTHONPATH=str(site), OMP_NUM_THREADS="1", **env)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=clean, capture_output=True, text=True,
                          timeout=300)


def test_the_wheel_ships_every_committed_record_unchanged(site):
    committed = sorted(p.name for p in (ROOT / "results").glob("*.json"))
    assert len(committed) >= 11
    shipped = site / "companion" / "records"
    assert sorted(p.name for p in shipped.glob("*.json")) == committed
    for name in committed:
        assert (shipped / name).read_bytes() == (ROOT / "results" / name).read_bytes(), name


def test_an_installed_chapter_reads_the_shipped_study_and_records_its_own_runs_elsewhere(site, tmp_path):
    """From an empty folder: the study verdicts are the shipped ones, a quick run is recorded under
    ./companion-results and read back beside them, and the shipped file is byte for byte unchanged."""
    shipped = site / "companion" / "records" / "nrs.json"
    before = shipped.read_bytes()
    code = f"""
import json
from pathlib import Path
import companion, companion.results as r
assert Path(companion.__file__).is_relative_to({str(site)!r}), companion.__file__
assert r.find_project_root() is None
study = r.latest("nrs", "study")
assert study and study["claims"], "no shipped study record"
rows = r.scoreboard_rows()
assert len(rows) >= 10 and all(row["label"] != "not run yet" for row in rows), rows
from companion.nrs.__main__ import main
main(["--preset", "quick"])
own = json.loads((Path.cwd() / "companion-results" / "nrs.json").read_text())
assert set(own) == {{"quick"}}, sorted(own)
merged = r.read("nrs")
assert {{"quick", "study"}} <= set(merged), sorted(merged)
assert merged["quick"] == own["quick"] and merged["study"] == study
print("ok", len(study["claims"]))
"""
    done = _python(site, tmp_path, code)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1].startswith("ok")
    assert shipped.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["companion-results"]


def test_companion_results_overrides_the_own_folder_and_still_falls_back_to_the_shipped(site, tmp_path):
    mine = tmp_path / "mine"
    code = """
import companion.results as r
from pathlib import Path
assert r.results_dir() == Path(%r)
assert r.latest("tobias", "study")["claims"]
assert r.latest("tobias", "full") == {}
print("ok")
""" % str(mine)
    done = _python(site, tmp_path, code, COMPANION_RESULTS=str(mine))
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_a_chapter_notebook_runs_from_an_empty_folder_with_the_installed_package(site, tmp_path):
    """The NRS chapter, copied alone into an empty folder and executed with only the wheel installed,
    runs to its end: its claims cells show the shipped study verdicts."""
    nb = tmp_path / "04_nrs.ipynb"
    shutil.copy2(ROOT / "book" / "04_nrs.ipynb", nb)
    env = {k: v for k, v in os.environ.items() if k not in ("COMPANION_RESULTS", "PYTHONPATH")}
    env.update(PYTHONPATH=str(site), OMP_NUM_THREADS="1", COMPANION_MODE="quick", COMPANION_STATIC_FIGURES="1",
               TQDM_DISABLE="1")
    done = subprocess.run([sys.executable, "-m", "pytest", "--nbmake", "-q", "-p", "no:cacheprovider", nb.name],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:]
    recorded = json.loads((tmp_path / "companion-results" / "nrs.json").read_text())
    assert "quick" in recorded
