"""tools/min_constraints.py: pyproject.toml's lower bounds as the pins `make test-min` installs."""

import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import min_constraints as mc  # noqa: E402


def test_the_real_pyproject_pins_every_dependency_and_test_extra_to_its_lower_bound(capsys):
    assert mc.main(["--pyproject", str(ROOT / "pyproject.toml")]) == 0
    lines = capsys.readouterr().out.splitlines()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert len(lines) == len(project["dependencies"]) + len(project["optional-dependencies"]["test"])
    pins = dict(line.split("==") for line in lines)
    assert "torch" in pins and "pytest" in pins and "jupyter-book" not in pins
    # each pin is the version the requirement names after >=
    for req in project["dependencies"]:
        name, _, version = req.partition(">=")
        assert pins[name] == version


def test_book_extra_is_included_on_request_and_an_upper_bound_is_not_the_pin():
    lines, unbounded = mc.constraints(mc.requirements(ROOT / "pyproject.toml", ["test", "book"]))
    assert "jupyter-book==1.0" in lines and unbounded == []


@pytest.mark.parametrize("requirement, expected", [
    ("numpy>=1.24", ("numpy", "1.24")),
    ("jupyter-book >= 1.0, <2", ("jupyter-book", "1.0")),
    ("foo[bar]~=2.3", ("foo", "2.3")),
    ("baz==0.1.2", ("baz", "0.1.2")),
    ("qux<3", ("qux", None)),
    ("plain", ("plain", None)),
])
def test_lower_bound(requirement, expected):
    assert mc.lower_bound(requirement) == expected


def test_a_marker_is_kept_on_the_pin():
    assert mc.constraints(["numpy>=1.24; python_version < '3.12'"])[0] == ["numpy==1.24; python_version < '3.12'"]


def test_a_package_without_a_lower_bound_is_reported_and_fails(tmp_path, capsys):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\ndependencies = ["numpy>=1.24", "requests", "six<2"]\n'
                         '[project.optional-dependencies]\ntest = []\n')
    out = tmp_path / "c.txt"
    assert mc.main(["--pyproject", str(pyproject), "-o", str(out)]) == 1
    assert out.read_text() == "numpy==1.24\n"
    err = capsys.readouterr().err
    assert "'requests' has no lower bound" in err and "'six<2' has no lower bound" in err


def test_an_unknown_extra_is_named_with_the_ones_that_exist():
    with pytest.raises(ValueError, match=r"extras \['docs'\] are not in .*it has \['book', 'test'\]"):
        mc.requirements(ROOT / "pyproject.toml", ["docs"])


def test_a_specifier_without_an_operator_is_an_error_naming_it():
    with pytest.raises(ValueError, match=r"'numpy 1.24'.*specifier '1.24' has no comparison operator"):
        mc.lower_bound("numpy 1.24")
