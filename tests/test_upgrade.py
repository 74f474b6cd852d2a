"""``kademe upgrade`` is crash-safe (issue 11): kill it anywhere, rerun, and the end state equals an
uninterrupted upgrade; a later ``kademe ingest`` keeps the upgraded vectors.

A degraded year is made for real: the GPU rungs are faked (``KADEME_FAULT_FAKE_CUDA``) and forced to
run out of memory (``KADEME_FAULT_OOM_RUNGS``), so the ladder ends on the fallback model.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kademe.cli import main
from tests.conftest import ALL_STAGES, MODEL, crash_matrix, decision, stored_points, write_ndjson

PRIMARY, FALLBACK = "all-minilm-l6-v2", "minilm-3l"
YEARS = ("2011",)
KILLS = ["upgrade-start:1", "upgrade-shard:1", "upgrade-shard:3", "upgrade-upsert:1", "upgrade-upsert:3", "upgrade-swap:1",
         "embed-done:1", "checkpoint-rename:2"]
# In the slow layer: mid-re-embed, mid-upsert and at the swap; the others are marked exhaustive too (-m 'slow or exhaustive').
DEFAULT_KILLS = {"upgrade-shard:3", "upgrade-upsert:3", "upgrade-swap:1"}


def cli(*args: str) -> tuple[int, dict]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*args, "--json"])
    return code, json.loads(out.getvalue())


def upgrade_args(workdir: Path) -> list[str]:
    return ["upgrade", "--years", *YEARS, "--workdir", str(workdir), "--collection", "up", "--model", MODEL, "--device", "cpu"]


@pytest.fixture(scope="module")
def degraded(tmp_path_factory, small_model, prefect_server) -> tuple[Path, str]:
    """A workdir whose 2011 was embedded by the fallback model (read-only: tests copy it)."""
    root = tmp_path_factory.mktemp("upgrade")
    write_ndjson(root / "data" / "yargitay_2011.ndjson", [decision(2011, n) for n in range(4)])
    source = str(root / "data" / "yargitay_{year}.ndjson")
    mp = pytest.MonkeyPatch()
    mp.setenv("KADEME_FAULT_FAKE_CUDA", "1")
    mp.setenv("KADEME_FAULT_OOM_RUNGS", "gpu,gpu-batch1")
    try:
        code, result = cli("ingest", "--source", source, "--years", *YEARS, "--workdir", str(root / "work"), "--collection", "up",
                           "--model", MODEL, "--fallback-model", str(small_model), "--device", "cuda", "--shard-size", "2",
                           "--chunk-tokens", "64", "--chunk-overlap", "8")
    finally:
        mp.undo()
    y = result["years"]["2011"]
    assert code == 0 and y["degraded"] and set(y["rungs"]) == {"gpu-small"} and y["counts"]["chunks"] >= 6
    return root / "work", source


@pytest.fixture(scope="module")
def reference(degraded, tmp_path_factory) -> dict:
    workdir = tmp_path_factory.mktemp("upgrade-ref") / "work"
    shutil.copytree(degraded[0], workdir)
    code, result = cli(*upgrade_args(workdir))
    assert code == 0 and result["years"]["2011"]["upgraded"] > 0 and result["years"]["2011"]["degraded"] is False
    points = stored_points(workdir, "up")
    assert all(set(p.vector) == {PRIMARY} and not p.payload["degraded"] for p in points.values())
    return points


def assert_same(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for pid, p in got.items():
        assert p.payload == want[pid].payload and set(p.vector) == {PRIMARY}
        np.testing.assert_allclose(p.vector[PRIMARY], want[pid].vector[PRIMARY], atol=1e-5, rtol=0)
        assert p.sparse == want[pid].sparse


def test_upgrade_crash_points_are_listed():
    from kademe.faults import UPGRADE_CRASH_POINTS

    assert {k.split(":")[0] for k in KILLS} >= set(UPGRADE_CRASH_POINTS)


@pytest.mark.slow
@pytest.mark.parametrize("spec", crash_matrix(KILLS, DEFAULT_KILLS))
def test_kill_anywhere_in_upgrade_then_rerun_equals_an_uninterrupted_upgrade(spec, degraded, reference, tmp_path):
    from prefect.settings import PREFECT_API_URL

    workdir = tmp_path / "work"
    shutil.copytree(degraded[0], workdir)
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("KADEME_FAULT_")}
    env.update(PREFECT_API_URL=PREFECT_API_URL.value(), KADEME_FAULT_CRASH_AT=spec, OMP_NUM_THREADS="1")
    crashed = subprocess.run([sys.executable, "-m", "kademe.cli", *upgrade_args(workdir)], capture_output=True, text=True,
                             env=env, timeout=300)
    assert crashed.returncode == 137, f"{spec} was never reached (exit {crashed.returncode}):\n{crashed.stderr[-3000:]}"

    code, result = cli(*upgrade_args(workdir))

    y = result["years"]["2011"]
    assert code == 0 and y["status"] == "completed" and y["degraded"] is False and y["verify"]["ok"]
    assert_same(stored_points(workdir, "up"), reference)
    report = json.loads((workdir / "yargitay" / "2011" / "report.json").read_text())
    assert report["degraded"] is False

    # A later ingest keeps the upgraded vectors: the embed stage follows the upgraded checkpoint.
    code, again = cli("ingest", "--source", degraded[1], "--years", *YEARS, "--workdir", str(workdir), "--collection", "up",
                      "--model", MODEL, "--device", "cpu", "--shard-size", "2", "--chunk-tokens", "64", "--chunk-overlap", "8")
    y = again["years"]["2011"]
    assert code == 0 and y["degraded"] is False and y["verify"]["ok"] and "embed" in y["cached"]
    assert y["cached"] == [s for s in ALL_STAGES if s != "upsert"] or y["cached"] == ALL_STAGES
    assert_same(stored_points(workdir, "up"), reference)
