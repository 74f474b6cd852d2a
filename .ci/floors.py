"""The direct dependencies' floors as pip/uv constraints (issue 31 point 5).

``python .ci/floors.py`` prints one ``name==floor`` line for every requirement of ``[project].dependencies``
and the ``test`` extra, taken from its ``>=`` (or ``==``) bound; CI installs with these constraints, so the
fast layer runs on exactly the versions pyproject.toml claims to support. A requirement with no lower
bound is an error: every dependency states a floor that CI has run.
``python .ci/floors.py --check`` compares the installed versions with the floors and exits 1 on a difference.
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*?)\s*(?:;.*)?$")


def floors(pyproject: Path) -> dict[str, str]:
    """Each direct requirement's name and its lower bound."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    out: dict[str, str] = {}
    for requirement in project["dependencies"] + project["optional-dependencies"]["test"]:
        name, specifiers = REQUIREMENT.match(requirement).groups()
        bound = [s.strip()[2:].strip() for s in specifiers.split(",") if s.strip().startswith((">=", "=="))]
        if not bound:
            sys.exit(f"{name} has no lower bound in pyproject.toml: give it the oldest version CI has run ({requirement!r})")
        out[name] = bound[0]
    return out


def main() -> int:
    wanted = floors(Path(__file__).resolve().parent.parent / "pyproject.toml")
    if "--check" not in sys.argv[1:]:
        print("\n".join(f"{name}=={floor}" for name, floor in wanted.items()))
        return 0
    wrong = []
    for name, floor in wanted.items():
        try:
            have = version(name)
        except PackageNotFoundError:
            have = "not installed"
        ok = _same(have, floor)
        print(f"{name:24} floor {floor:10} installed {have}" + ("" if ok else "   <- not the floor"))
        wrong += [] if ok else [name]
    return 1 if wrong else 0


def _same(have: str, floor: str) -> bool:
    """``2.13.0+cpu`` is the floor ``2.13``; ``1.0.0`` is ``1.0``."""
    a, b = have.split("+")[0].split("."), floor.split(".")
    width = max(len(a), len(b))
    return a + ["0"] * (width - len(a)) == b + ["0"] * (width - len(b))


if __name__ == "__main__":
    sys.exit(main())
