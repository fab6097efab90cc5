"""Write a pip constraints file that pins every dependency to the oldest version pyproject.toml allows.

    python tools/min_constraints.py [--extras test book] [-o constraints.txt]

Reads ``[project].dependencies`` and the named extras (default: ``test``) and turns each lower bound
``>=X`` (or ``~=X``) into ``name==X``; an exact ``==X`` is kept. ``make test-min`` installs with these
constraints, so the lower bounds the project declares are the versions it is tested with. A
requirement with no lower bound is reported on stderr and the exit status is 1: it would otherwise be
tested at its newest version, which says nothing about the oldest one a user may have.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# name, optional [extras], then the version specifiers up to an environment marker (PEP 508, the subset
# pyproject.toml uses: no URLs).
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*([^;]*)(;.*)?$")


def requirements(pyproject: Path, extras: list[str]) -> list[str]:
    """The requirement strings of the project's dependencies and of each named extra."""
    project = tomllib.loads(pyproject.read_text())["project"]
    optional = project.get("optional-dependencies", {})
    unknown = [e for e in extras if e not in optional]
    if unknown:
        raise ValueError(f"extras {unknown} are not in {pyproject}'s [project.optional-dependencies]; "
                         f"it has {sorted(optional)}")
    reqs = list(project.get("dependencies", []))
    for extra in extras:
        reqs += optional[extra]
    return reqs


def lower_bound(requirement: str) -> tuple[str, str | None]:
    """``(name, oldest allowed version)``; the version is None when the requirement has no lower bound."""
    match = _REQUIREMENT.match(requirement)
    if not match:
        raise ValueError(f"requirement {requirement!r} is not of the form 'name[extras] specifiers; marker'")
    name, specifiers, marker = match.groups()
    version = None
    for spec in filter(None, (s.strip() for s in specifiers.split(","))):
        op = re.match(r"(===|==|~=|>=|<=|!=|<|>)\s*(.+)", spec)
        if not op:
            raise ValueError(f"requirement {requirement!r}: specifier {spec!r} has no comparison operator")
        if op.group(1) in (">=", "~=", "=="):
            version = op.group(2).strip()
    return name, version


def constraints(reqs: list[str]) -> tuple[list[str], list[str]]:
    """``(constraint lines, requirements without a lower bound)``."""
    lines, unbounded = [], []
    for requirement in reqs:
        name, version = lower_bound(requirement)
        if version is None:
            unbounded.append(requirement)
        else:
            marker = _REQUIREMENT.match(requirement).group(3) or ""
            lines.append(f"{name}=={version}{marker}")
    return lines, unbounded


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyproject", type=Path, default=ROOT / "pyproject.toml")
    parser.add_argument("--extras", nargs="*", default=["test"], help="extras to include (default: test)")
    parser.add_argument("-o", "--output", type=Path, default=None, help="write here (default: stdout)")
    args = parser.parse_args(argv)
    lines, unbounded = constraints(requirements(args.pyproject, args.extras))
    text = "".join(line + "\n" for line in lines)
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    for requirement in unbounded:
        print(f"min_constraints: {requirement!r} has no lower bound (>=, ~= or ==); declare the oldest "
              f"version it works with", file=sys.stderr)
    return 1 if unbounded else 0


if __name__ == "__main__":
    raise SystemExit(main())
