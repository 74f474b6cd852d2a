"""One real run of bench/incremental.py and bench/objstore.py on a tiny year (issues 20 and 21)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
ROOT = BENCH.parent


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    return subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=900, env=env, cwd=BENCH)


@pytest.mark.slow
@pytest.mark.exhaustive  # a benchmark's end-to-end run: CI runs it after the default suite
def test_incremental_bench_embeds_only_the_grown_part(tmp_path):
    out = tmp_path / "incremental.json"
    proc = run("incremental.py", "--docs", "40", "--words", "60", "--repeat", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    inc = result["rounds"][0]["incremental"]
    assert inc["changes"]["documents"] == {"new": 1, "changed": 1, "unchanged": 39, "removed": 0}
    assert 0 < result["median"]["incremental_embedded"] < result["median"]["cold_embedded"]
    assert result["embed_share"] == pytest.approx(result["median"]["incremental_embedded"] / result["median"]["cold_embedded"], abs=1e-4)
    assert "share" in proc.stdout and result["machine"]["cores"] >= 1


@pytest.mark.slow
@pytest.mark.exhaustive  # a benchmark's end-to-end run: CI runs it after the default suite
def test_objstore_bench_compares_an_s3_workdir_with_a_local_one(tmp_path):
    out = tmp_path / "objstore.json"
    proc = run("objstore.py", "--docs", "3", "--repeat", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert set(result["median"]) == {"local-cold", "s3-cold", "local-warm", "s3-warm", "s3-warm-fresh-host"}
    assert result["rounds"][0]["s3-warm"]["cached"] == ["read", "clean", "chunk", "lexical", "embed", "upsert"]
    assert result["ratio_cold_model_free"] > 0 and result["ratio_warm_wall"] > 0
