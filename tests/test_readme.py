"""The README cannot drift (issue 30 point 5): every command block is run by this test or says why not.

How to tag a block (README.md and deployments/README.md). Put one marker on the line just before
the block's opening fence (a blank line between them is fine):

    <!-- readme-test: run -->         a transcript: each ``$ command`` line is run (``kademe`` as
                                      ``python -m kademe.cli``), its stdout compared with the lines
                                      below it, normalised (``normalise``): seconds, timestamps and
                                      column widths may differ, counts and words may not
    <!-- readme-test: run slow -->    the same, in the slow layer (whole ingests: the demo)
    <!-- readme-test: needs-gpu -->   needs a CUDA card or a model this machine cannot have (bge-m3)
    <!-- readme-test: needs-server --> needs a server, a cluster or a cloud: Prefect server and
                                      workers, a Qdrant server, a bucket, Docker, the Hugging Face Hub
    <!-- readme-test: ci -->          the test commands: each line must be a command .ci/run runs
    <!-- readme-test: install -->     changes the environment (pip install)

A command block is a fenced block in ``bash``/``sh``/``shell``/``console``, or one with a line that
starts with ``$ ``; ``test_every_command_block_is_tagged`` fails on one without a marker. Blocks of
a ``run`` transcript run in order in one scratch folder, and ``/tmp/<name>`` in a command is a
folder of that scratch folder (written back as ``/tmp/<name>`` in the output). After a change of
output, regenerate the transcripts, as ``cog`` does:

    python tests/test_readme.py --update           # the fast ``run`` blocks and the --help section
    python tests/test_readme.py --update --slow    # the ``run slow`` ones too (the demo: minutes)

The ``kademe --help`` section between ``<!-- help -->`` and ``<!-- /help -->`` is generated from
``--help`` (``test_readme_help_is_current``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
DOCS = [README, ROOT / "deployments" / "README.md"]
COMMANDS = ([], ["ingest"], ["verify"], ["search"], ["demo"], ["plan"], ["upgrade"], ["status"])
START, END = "<!-- help -->", "<!-- /help -->"
TAGS = {"run", "needs-gpu", "needs-server", "ci", "install"}
MARK = re.compile(r"<!-- readme-test: ([\w-]+)( slow)? -->")
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass
class Block:
    doc: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    tag: str | None
    slow: bool

    @property
    def name(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"

    @property
    def is_command(self) -> bool:
        return self.lang in ("bash", "sh", "shell", "console") or any(line.startswith("$ ") for line in self.text.splitlines())


def blocks(doc: Path) -> list[Block]:
    """The fenced blocks of ``doc`` outside the generated --help section, each with its marker."""
    lines = doc.read_text().splitlines()
    out, i, helping = [], 0, False
    while i < len(lines):
        helping = (helping or lines[i].strip() == START) and lines[i].strip() != END
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        before = [x for x in lines[max(0, i - 3):i] if x.strip()][-1:]
        mark = MARK.search(before[0]) if before else None
        if not helping:
            out.append(Block(doc, i + 1, m.group(1), "\n".join(lines[i + 1:end]), mark and mark.group(1), bool(mark and mark.group(2))))
        i = end + 1
    return out


ALL = [b for doc in DOCS for b in blocks(doc)]


@pytest.mark.parametrize("block", [b for b in ALL if b.is_command], ids=lambda b: b.name)
def test_every_command_block_is_tagged(block):
    assert block.tag in TAGS, (f"{block.name}: a command block needs a marker on the line before it, one of "
                               f"<!-- readme-test: {' | '.join(sorted(TAGS))} --> (see tests/test_readme.py)")


def test_the_ci_blocks_are_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [line.split("#")[0].strip() for b in ALL if b.tag == "ci" for line in b.text.splitlines()]
    for command in filter(None, commands):
        assert command.split(" && ")[-1].strip() in ci, f"the README says to run {command!r}; .ci/run does not run it"


# -- transcripts ---------------------------------------------------------------------------------

SECONDS = [
    (re.compile(r"\b\d+(\.\d+)? s\b"), "<n> s"),  # 57.9 s, 9.5 s
    (re.compile(r"^(\d{4}\s.*?)\s\d+\.\d(?=(\s+DEGRADED)?(\s+\d+ OOM)?$)", re.M), r"\1 <sec>"),  # a summary row's sec column
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\+00:00|Z)?"), "<time>"),
    (re.compile(r"\b\d+ chunks/s\b"), "<n> chunks/s"),
]


def normalise(text: str) -> str:
    """What may differ between two runs of the same command: seconds, timestamps, rates, column widths."""
    for pattern, repl in SECONDS:
        text = pattern.sub(repl, text)
    return "\n".join(" ".join(line.split()) for line in text.strip().splitlines())


def transcript(block: Block) -> list[tuple[str, str]]:
    """``[(command, expected stdout)]`` of a ``run`` block (a ``\\`` at a line's end continues the command)."""
    steps, command, output = [], None, []
    lines = iter(block.text.splitlines())
    for line in lines:
        if line.startswith("$ "):
            if command is not None:
                steps.append((command, "\n".join(output)))
            command, output = line[2:], []
            while command.rstrip().endswith("\\"):
                command = command.rstrip()[:-1] + " " + next(lines).strip()
        elif command is not None:
            output.append(line)
    if command is not None:
        steps.append((command, "\n".join(output)))
    return steps


def run_command(command: str, scratch: Path) -> str:
    """Run one transcript command in ``scratch`` as a user would; its stdout, with scratch paths written back."""
    command = re.sub(r"\s+#\s.*$", "", command)  # a trailing comment
    command = re.sub(r"/tmp/(\w[\w.-]*)", lambda m: str(scratch / m.group(1)), command)
    command = re.sub(r"(^|&& |; )kademe ", rf"\1{sys.executable} -m kademe.cli ", command)
    env = {**os.environ, "COLUMNS": "100", "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    proc = subprocess.run(["bash", "-c", command], cwd=scratch, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0 or "kademe: " in proc.stderr, f"{command}: exit {proc.returncode}\n{proc.stderr[-3000:]}"
    return proc.stdout.replace(str(scratch), "/tmp").rstrip()


def check_transcripts(run: list[Block], scratch: Path) -> None:
    for block in run:
        for command, expected in transcript(block):
            got = run_command(command, scratch)
            assert normalise(got) == normalise(expected), f"{block.name}: `{command}` printed\n{got}\n\n(run: python tests/test_readme.py --update)"


RUN = [b for b in ALL if b.tag == "run"]


@pytest.mark.parametrize("doc", [d for d in DOCS if any(b.doc == d and not b.slow for b in RUN)], ids=lambda d: d.name)
def test_fast_transcripts_match(doc, tmp_path):
    check_transcripts([b for b in RUN if b.doc == doc and not b.slow], tmp_path)


@pytest.mark.slow
def test_slow_transcripts_match(tmp_path):
    """The demo, cold and warm, and the status of its workdir: whole ingests, in the order the README shows them."""
    check_transcripts([b for b in RUN if b.slow], tmp_path)


def test_normalise_forgives_times_not_counts():
    row = "2021  completed     39    28    1   10    316    316     0     0    316   28    0   0  -    cpu      14.1"
    assert normalise(row) == normalise(row.replace("14.1", "3.2").replace("    316", "  316"))
    assert normalise(row) != normalise(row.replace("316", "317"))
    assert normalise("Total 57.9 s. Run again") == normalise("Total 9.1 s. Run again")


# -- JSON samples ------------------------------------------------------------------------------------


def test_the_json_sample_has_every_key_of_the_summary():
    """The README's ``kademe ingest --json`` sample shows every key a year's summary has (``changes`` included)."""
    from kademe.report import COUNT_KEYS, year_summary

    sample = next(b for b in blocks(README) if b.lang == "json" and '"counts"' in b.text)
    year = next(iter(json.loads(sample.text)["years"].values()))
    real = year_summary(counts={}, cached=[], degraded=False, oom_events=[], model="m", device="cpu", seconds=0.0)
    assert set(year) == set(real), f"keys missing from the sample: {set(real) - set(year)}; not in a summary: {set(year) - set(real)}"
    assert list(year["counts"]) == list(COUNT_KEYS)
    assert {k: set(v) for k, v in year["changes"].items()} == {k: set(v) for k, v in real["changes"].items()}


def test_verify_json_samples_show_corpora():
    """Any ``kademe verify ... --json`` output shown in the docs has the keys verify prints (``corpora`` included)."""
    for b in ALL:
        lines = b.text.splitlines()
        for i, line in enumerate(lines[:-1]):
            if line.startswith("$ kademe verify") and "--json" in line:
                shown = json.loads(lines[i + 1])
                assert set(shown) == {"ok", "corpora", "years"}, b.name
                assert all("corpora" in y for y in shown["years"].values()), b.name


# -- the --help section ------------------------------------------------------------------------------


def help_text() -> str:
    import contextlib
    import io

    from kademe.cli import main

    os.environ["COLUMNS"] = "100"
    out = []
    for argv in COMMANDS:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):
            main([*argv, "--help"])
        out.append(f"$ kademe {' '.join([*argv, '--help'])}\n{buf.getvalue().rstrip()}")
    return f"{START}\n<details><summary>kademe --help (generated)</summary>\n\n```text\n" + "\n\n".join(out) + f"\n```\n</details>\n{END}"


def section(text: str) -> str | None:
    m = re.search(re.escape(START) + r".*?" + re.escape(END), text, re.S)
    return m.group(0) if m else None


def test_readme_help_is_current():
    assert section(README.read_text()) == help_text(), "run: python tests/test_readme.py --update"


def test_readme_shows_the_two_commands():
    text = README.read_text()
    assert "kademe demo" in text and "python -m pytest" in text
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python -m pytest" in ci
    slow = "python -m pytest -q -m 'slow or exhaustive'"
    assert slow in ci and slow in text, "CI also runs the slow layer the default run deselects, and the README says so"
    assert "CI runs exactly this" not in text, "CI runs more than the README's test command (issue 30)"


def test_the_readme_names_the_demo_collection():
    from flows import demo

    assert re.search(r'collection="([\w-]+)"', Path(demo.__file__).read_text()).group(1) == "yargitay-demo"
    assert "`yargitay-demo`" in README.read_text()


def update(slow: bool) -> None:
    """Rewrite the ``run`` transcripts from real runs (the ``run slow`` ones with ``slow``) and the --help section.

    A step whose output matches the README's but for times keeps the README's (and the machine it names).
    """
    import tempfile

    for doc in DOCS:
        text = doc.read_text()
        with tempfile.TemporaryDirectory() as tmp:
            for block in [b for b in blocks(doc) if b.tag == "run" and (slow or not b.slow)]:
                steps = []
                for command, shown in transcript(block):
                    got = run_command(command, Path(tmp))
                    steps.append(f"$ {command}\n{shown if normalise(got) == normalise(shown) else got}")  # keep the quoted times
                text = text.replace(block.text, "\n".join(steps), 1)
        if doc == README:
            text = text.replace(section(text) or START, help_text())
        doc.write_text(text)


if __name__ == "__main__" and "--update" in sys.argv:
    update(slow="--slow" in sys.argv)
