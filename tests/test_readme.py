"""The README's CLI reference is generated from --help; this test fails when it goes stale.

Regenerate with: python tests/test_readme.py --update
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"
COMMANDS = ([], ["ingest"], ["verify"], ["search"], ["demo"], ["plan"], ["upgrade"], ["status"])
START, END = "<!-- help -->", "<!-- /help -->"


def help_text() -> str:
    import contextlib
    import io

    from kademe.cli import main

    os.environ["COLUMNS"] = "100"
    blocks = []
    for argv in COMMANDS:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):
            main([*argv, "--help"])
        blocks.append(f"$ kademe {' '.join([*argv, '--help'])}\n{buf.getvalue().rstrip()}")
    return f"{START}\n<details><summary>kademe --help (generated)</summary>\n\n```text\n" + "\n\n".join(blocks) + f"\n```\n</details>\n{END}"


def section(text: str) -> str | None:
    m = re.search(re.escape(START) + r".*?" + re.escape(END), text, re.S)
    return m.group(0) if m else None


def test_readme_help_is_current():
    assert section(README.read_text()) == help_text(), "run: python tests/test_readme.py --update"


def test_readme_shows_the_two_commands():
    text = README.read_text()
    assert "kademe demo" in text and "python -m pytest" in text
    ci = (Path(__file__).parent.parent / ".ci" / "run").read_text()
    assert "python -m pytest" in ci
    assert "python -m pytest -q -m exhaustive" in ci and "python -m pytest -q -m exhaustive" in text, \
        "CI also runs the crash matrices the default run deselects, and the README says so"


if __name__ == "__main__" and "--update" in sys.argv:
    text = README.read_text()
    old = section(text) or START
    README.write_text(text.replace(old, help_text()))
