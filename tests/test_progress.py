"""RunProgress: one exact line per shard off a terminal, a live bar on one; never stdout, never prefect."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import pytest
from rich.console import Console

from kademe.progress import RunProgress


def ticks(*values: float):
    return iter(values).__next__


def test_off_a_terminal_one_line_per_shard_and_per_event():
    out = io.StringIO()
    p = RunProgress(stream=out, clock=ticks(0.0, 1.0, 2.0, 3.0, 5.0))
    p.start("2011", "embed", 11649)
    p.advance(512)
    p.event("OOM on gpu (64 rows, 16384 tokens): split")
    p.advance(512)
    p.start("2011", "upsert", 1000)
    p.advance(1000)
    p.finish()
    assert out.getvalue().splitlines() == [
        "kademe: 2011 embed 512/11649 chunks, 512 chunks/s, ETA 22 s",
        "kademe: 2011 embed: OOM on gpu (64 rows, 16384 tokens): split",
        "kademe: 2011 embed 1024/11649 chunks, 512 chunks/s, ETA 21 s",
        "kademe: 2011 upsert 1000/1000 chunks, 500 chunks/s, ETA 0 s",
    ]


def test_the_stages_done_total_callback_advances_to_done():
    out = io.StringIO()
    p = RunProgress(stream=out, clock=ticks(0.0, 2.0, 4.0))
    p.start("2012", "embed", 1000)
    p(500, 1000)
    p(1000, 1000)
    assert out.getvalue().splitlines() == [
        "kademe: 2012 embed 500/1000 chunks, 250 chunks/s, ETA 2 s",
        "kademe: 2012 embed 1000/1000 chunks, 250 chunks/s, ETA 0 s",
    ]


def test_the_embed_line_says_how_the_done_chunks_were_done():
    """Issue 30: a rerun of a grown year shows 326/326 done, of which this run embedded 16."""
    out = io.StringIO()
    p = RunProgress(stream=out, clock=ticks(0.0, 2.0))
    p.start("yargitay 2011", "embed", 326)
    p(326, 326, embedded=16, reused=310, committed=0)
    assert out.getvalue() == "kademe: yargitay 2011 embed 326/326 chunks, 16 embedded, 310 reused, 0 committed; 163 chunks/s, ETA 0 s\n"


def test_on_a_terminal_a_live_bar_with_the_events_above_it():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    p = RunProgress(stream=out, live=True, console=console, clock=ticks(0.0, 1.0, 2.0))
    p.start("2011", "embed", 1000)
    p.advance(500)
    p.event("rung gpu -> gpu-batch1")
    p.advance(500)
    p.finish()
    screen = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", out.getvalue())
    assert "2011 embed: rung gpu -> gpu-batch1\n" in screen
    assert "━" in screen and screen.rstrip().endswith("2011 embed ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 1000/1000 chunks, 500 chunks/s, ETA 0 s")
    assert "kademe:" not in screen, "the per-shard log lines are for non-terminals only"


def test_never_stdout():
    with pytest.raises(ValueError, match="stdout"):
        RunProgress(stream=sys.stdout)


def test_importing_it_imports_neither_prefect_nor_rich():
    code = "import sys, kademe.progress; print('prefect' in sys.modules, 'rich' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
