"""The user's clock (issue 22): the first run with a Prefect home says why it is slower; the bench measures whole processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_a_prefect_home_without_a_database_is_a_first_run(tmp_path, monkeypatch):
    from flows.launch import _new_database

    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PREFECT_SERVER_DATABASE_CONNECTION_URL", raising=False)
    monkeypatch.delenv("PREFECT_API_DATABASE_CONNECTION_URL", raising=False)
    assert _new_database() == str(tmp_path / "home" / "prefect.db")
    (tmp_path / "home").mkdir(exist_ok=True)
    (tmp_path / "home" / "prefect.db").write_bytes(b"")
    assert _new_database() is None


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
