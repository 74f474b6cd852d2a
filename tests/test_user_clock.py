"""The user's clock (issue 22): the first run with a Prefect home says why it is slower; the bench measures whole processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"


def test_a_prefect_home_without_a_database_is_a_first_run(tmp_path):
    # In a process of its own: the session's Prefect test harness overrides the database in this one.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_", "PREFECT_SERVER_DATABASE"))}
    env.update(PREFECT_HOME=str(tmp_path / "home"), PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
    check = [sys.executable, "-c", "from flows.launch import _new_database; print(_new_database())"]

    first = subprocess.run(check, capture_output=True, text=True, env=env, timeout=120)
    (tmp_path / "home").mkdir(exist_ok=True)
    (tmp_path / "home" / "prefect.db").write_bytes(b"")
    later = subprocess.run(check, capture_output=True, text=True, env=env, timeout=120)

    assert first.stdout.strip() == str(tmp_path / "home" / "prefect.db"), first.stderr[-2000:]
    assert later.stdout.strip() == "None"


@pytest.mark.slow
def test_user_clock_bench_times_whole_processes(tmp_path):
    out = tmp_path / "throughput.json"
    cmd = [sys.executable, str(BENCH / "throughput.py"), "--chunks", "300", "--rounds", "1", "--layers", "0",
           "--shard-size", "128", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env={**os.environ, "PYTHONPATH": "src:."})
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["mode"] == "user-clock" and result["chunks"] >= 300
    med = result["median"]
    assert med["bare"]["wall_s"] > med["bare"]["encode_s"] > 0
    for home in ("fresh", "existing"):
        assert med[home]["wall_s"] > med[home]["flow_s"] > 0 and med[home]["ratio_to_bare"] > 0
        assert set(med[home]["stages_s"]) == {"read", "clean", "chunk", "lexical", "embed", "upsert", "verify", "index"}
    assert med["fresh"]["first_run_note_on_stderr"] and not med["existing"]["first_run_note_on_stderr"]
    assert "kademe/bare" in proc.stdout
