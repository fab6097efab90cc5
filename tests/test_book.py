"""The book's structure: chapter pairs in sync, Colab cells, table of contents, environment files."""

import re
import tomllib
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

from companion import runtime

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.md"))


def _cells(nb):
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", []))) for c in nb.cells]


def test_every_toc_entry_exists():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    missing = [f for f in files if not (ROOT / f"{f}.md").exists()]
    assert not missing, f"_toc.yml names files that do not exist: {missing}"
    assert len([f for f in files if re.match(r"book/\d\d_", f)]) == 10


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_md_and_ipynb_pair_in_sync(md):
    ipynb = md.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.name} is missing: run `make sync`"
    source = jupytext.read(md)
    paired = nbformat.read(ipynb, as_version=4)
    assert _cells(source) == _cells(paired), f"{ipynb.name} is out of sync with {md.name}: run `make sync`"
    assert all(not c.get("outputs") for c in paired.cells if c.cell_type == "code"), f"{ipynb.name} has outputs"
    assert paired.metadata.get("accelerator") == "GPU", "Colab must open the chapter with a GPU"
    assert paired.metadata.get("colab", {}).get("gpuType") == "T4"


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_starts_with_the_colab_cell_then_setup(md):
    code = [c for c in jupytext.read(md).cells if c.cell_type == "code"]
    assert code[0].source.strip() == runtime.colab_install_cell(), f"{md.name}: first code cell must be the Colab install cell"
    assert "remove-cell" in code[0].metadata.get("tags", [])
    assert "runtime.setup(" in code[1].source, f"{md.name}: second code cell must call runtime.setup()"


def test_colab_cell_generator_writes_the_cell_every_chapter_starts_with():
    import sys

    sys.path.insert(0, str(ROOT / "tools"))
    import colab_cells

    cell = runtime.colab_install_cell("https://github.com/someone/fork", "dev")
    for md in CHAPTERS:
        text = colab_cells.updated_chapter(md.read_text(), cell)
        code = [c for c in jupytext.reads(text, fmt="myst").cells if c.cell_type == "code"]
        assert code[0].source.strip() == cell and "remove-cell" in code[0].metadata.get("tags", [])
        assert "runtime.setup(" in code[1].source, md.name
    fixed = colab_cells.updated_runtime('REPO_URL = "x"\nREPO_BRANCH = "y"\n', "https://github.com/a/b", "dev")
    assert fixed == 'REPO_URL = "https://github.com/a/b"\nREPO_BRANCH = "dev"\n'


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_figures_have_captions_alt_text_and_references(md):
    text = md.read_text()
    for cell in (c for c in jupytext.read(md).cells if c.cell_type == "code"):
        if re.search(r"\bviz\.(explore|figure)\(", cell.source):
            missing = [k for k in ("caption=", "alt=", "name=") if k not in cell.source]
            assert not missing, f"{md.name}: a viz.explore/viz.figure call lacks {missing} (see book/contributing.md)"
            name = re.search(r"name=[\"']([^\"']+)", cell.source).group(1)
            assert f"{{numref}}`{name}`" in text, f"{md.name}: no prose cites figure {name!r} with {{numref}}"


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_has_the_contract_sections(md):
    text = md.read_text()
    assert "{cite}" in text, f"{md.name} cites nothing"
    assert "show_paper_vs_book(" in text, f"{md.name} has no paper-vs-book table"
    assert "explore(" in text, f"{md.name} has no explorable figure"
    assert re.search(r"^## .*[Ff]ull run", text, re.M), f"{md.name} has no full-run section"
    assert "T4" in text, f"{md.name} does not say how long the full run takes on a Colab T4"


def _names(requirements):
    return {re.split(r"[<>=!~ \[;]", r.strip(), maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _names(project["dependencies"] + project["optional-dependencies"]["book"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = _names([p for p in pip if not p.startswith("-e")]) - {"jupyterlab"}
    assert listed == wanted, f"environment.yml and pyproject.toml differ: {listed ^ wanted}"
    declared = {r.replace(" ", "") for r in project["dependencies"] + project["optional-dependencies"]["book"]}
    bounds = {r.replace(" ", "") for r in pip if not r.startswith("-e") and not r.startswith("jupyterlab")}
    assert bounds == declared, f"environment.yml and pyproject.toml declare other bounds: {sorted(bounds ^ declared)}"


def test_lock_file_pins_every_runtime_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock = (ROOT / "requirements.lock").read_text().lower().replace("_", "-")
    pinned = {line.split("==")[0] for line in lock.splitlines() if "==" in line}
    needed = _names(project["dependencies"] + project["optional-dependencies"]["book"] + project["optional-dependencies"]["test"])
    assert needed <= pinned, f"not pinned in requirements.lock: {needed - pinned}"
    assert "jupyter-book==1." in lock


def test_pyproject_has_lower_bounds_only():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in deps if "==" in d or "<" in d], "runtime dependencies must not cap versions (Colab brings its own)"
