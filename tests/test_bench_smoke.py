"""The benchmarks: bench/peers.py's summary arithmetic, and one real run of each script on a tiny corpus."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
PEERS_PY = BENCH / "peers.py"


def load_peers():
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))  # as when run as a script: bench/_machine.py is importable
    spec = importlib.util.spec_from_file_location("bench_peers", PEERS_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_summary_reports_medians_as_ratios_to_bare():
    peers = load_peers()
    runs = {"bare": [{"seconds": 10.0}, {"seconds": 12.0}, {"seconds": 11.0}],
            "by-hand": [{"seconds": 14.0}, {"seconds": 13.0}, {"seconds": 15.0}],
            "kademe-cold": [{"seconds": 11.5}, {"seconds": 11.4}, {"seconds": 13.0}],
            "kademe-warm": [{"seconds": 1.0}, {"seconds": 1.2}, {"seconds": 1.1}]}

    result = peers.summarize(runs, {"llamaindex": "--skip-llamaindex"}, chunks=220)

    assert result["peers"]["bare"]["seconds"] == 11.0
    assert result["peers"]["bare"]["chunks_per_s"] == 20.0
    assert result["peers"]["kademe-cold"]["x_bare"] == pytest.approx(11.5 / 11.0, abs=1e-3)
    assert result["peers"]["llamaindex"] == {"skipped": "--skip-llamaindex"}
    assert list(result["peers"]) == ["bare", "by-hand", "llamaindex", "kademe-cold", "kademe-warm"]
    assert result["ratios"] == {"kademe-cold/bare": 1.045, "kademe-warm/kademe-cold": 0.096, "kademe-cold/by-hand": 0.821}
    assert all(t["met"] for t in result["targets"].values())
    assert result["pair_ratios"]["kademe-cold/bare"] == {"per_round": [1.15, 0.95, 1.182], "median": 1.15}
    assert result["pair_ratios"]["kademe-warm/bare"]["per_round"] == [0.1, 0.1, 0.1]


def test_summary_marks_a_missed_target():
    result = load_peers().summarize({"bare": [{"seconds": 10.0}], "kademe-cold": [{"seconds": 10.6}]}, {}, chunks=10)

    assert result["targets"]["kademe cold <= 1.05 x bare"] == {"value": 1.06, "limit": 1.05, "met": False}


@pytest.mark.slow
@pytest.mark.exhaustive  # a benchmark's end-to-end run: CI runs it after the default suite
def test_peers_runs_every_peer_on_a_tiny_corpus(tmp_path):
    peers = load_peers()
    llama = peers.llama_missing() is None
    out = tmp_path / "results"
    cmd = [sys.executable, str(PEERS_PY), "--docs", "3", "--repeat", "1", "--out", str(out), "--workdir", str(tmp_path / "work")]

    proc = subprocess.run(cmd + ([] if llama else ["--skip-llamaindex"]), capture_output=True, text=True, timeout=900)

    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "peers.json").read_text())
    assert list(result["peers"]) == list(peers.PEERS)
    ran = [n for n in peers.PEERS if llama or n != "llamaindex"]
    chunks = result["corpus"]["chunks"]
    assert chunks > 0
    for name in ran:
        p = result["peers"][name]
        assert p["seconds"] > 0 and p["chunks_per_s"] > 0 and p["x_bare"] > 0, name
        assert p["chunks"] == chunks and [r["chunks"] for r in p["runs"]] == [chunks], name
    if not llama:
        assert "skipped" in result["peers"]["llamaindex"]
    assert result["peers"]["kademe-warm"]["runs"][0]["cached"] == ["read", "clean", "chunk", "lexical", "embed", "upsert"]
    assert set(result["ratios"]) >= {"kademe-cold/bare", "kademe-fresh/bare", "kademe-warm/kademe-cold", "kademe-cold/by-hand"}
    assert (tmp_path / "work" / "runs" / "prefect-existing" / "prefect.db").exists()  # kademe-cold's home, made before round 1
    assert result["machine"]["cpu"] and result["machine"]["cores"] >= 1
    assert result["versions"]["torch"] and result["versions"]["qdrant-client"] and result["versions"]["prefect"]
    if importlib.util.find_spec("matplotlib") is not None:  # the chart is optional, like LlamaIndex
        assert (out / "peers.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert not (out / "peers.png").exists() and "matplotlib not installed" in proc.stderr
    assert "kademe-cold" in proc.stdout and "x bare" in proc.stdout


@pytest.mark.slow
@pytest.mark.exhaustive  # a benchmark's end-to-end run: CI runs it after the default suite
def test_ladder_bench_runs_on_a_few_chunks(tmp_path):
    out = tmp_path / "ladder.json"
    cmd = [sys.executable, str(BENCH / "ladder.py"), "--chunks", "24", "--repeat", "1", "--budgets", "1024", "--out", str(out)]

    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)

    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    run = result["budgets"]["1024"]
    assert result["chunks"] == 24 and run["oom_events"]["ladder"] >= 1, "the injected ceiling was hit"
    assert run["best_static"] in run["median_seconds"] and run["ladder_vs_best_static"] > 0
    assert result["machine"]["cores"] >= 1 and result["versions"]["torch"]
    assert "ladder/best-static" in proc.stdout


@pytest.mark.slow
def test_memory_bench_runs_on_a_few_documents(tmp_path):
    cmd = [sys.executable, str(BENCH / "memory.py"), "--docs", "5", "--scale", "2", "--repeat", "1", "--out", str(tmp_path)]

    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)

    result = json.loads((tmp_path / "memory.json").read_text())
    assert proc.returncode == (0 if result["summary"]["ok"] else 1), proc.stderr[-3000:]  # 1: target missed
    assert [result["corpus"][size]["docs"] for size in ("1x", "4x")] == [5, 10], "the big year is --scale times the small"
    assert result["summary"]["ratio"] > 0 and set(result["summary"]["stage_ratio"]) == {"read", "clean", "chunk"}
    assert result["machine"]["cores"] >= 1 and result["versions"]["torch"]
    assert "peak - baseline" in proc.stdout


@pytest.mark.slow
def test_throughput_bench_runs_on_a_small_year(tmp_path):
    out = tmp_path / "throughput.json"
    cmd = [sys.executable, str(BENCH / "throughput.py"), "--stages", "--chunks", "300", "--rounds", "1", "--layers", "0",
           "--shard-size", "128", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": "src:."})
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    for mode in ("sequential", "overlap"):
        med = result["median"][mode]
        assert med["model_free_chunks_per_s"] > 0 and med["encoder_s"] > 0
        assert set(med["stages_s"]) == {"read", "clean", "chunk", "lexical", "embed", "upsert", "verify", "index"}
    assert result["chunks"] >= 300

@pytest.mark.slow
def test_store_bench_runs_both_engines_on_a_few_points(tmp_path):
    out = tmp_path / "store.json"
    cmd = [sys.executable, str(BENCH / "store.py"), "--n", "600", "--baseline-n", "300", "--rounds", "1", "--shard", "250",
           "--queries", "5", "--workdir", str(tmp_path / "w"), "--out", str(out)]

    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)

    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["n"] == {"edge": 600, "local": 300} and result["baseline_capped"] is True
    assert [r["n"] for r in result["runs"]["edge"]] == [600] and [r["n"] for r in result["runs"]["local"]] == [300]
    edge = result["medians"]["edge"]
    assert edge["points_per_s"] > 0 and edge["open_s"] > 0 and edge["query_p50_ms"] > 0
    assert result["ratios_edge_over_local"]["points_per_s"] > 0 and "N=300" in result["ratios_note"]
    assert result["targets"]["edge open s <= 0.5 at 200k"]["met"] is None, "no verdict on the 200k targets at N=600"
    assert result["machine"]["cores"] >= 1 and result["versions"]["qdrant-edge-py"] == "0.9.0"
    assert "local mode capped at N=300" in proc.stdout and "edge/local points_per_s" in proc.stdout


@pytest.mark.slow
def test_store_years_bench_compares_the_settings_year_by_year(tmp_path):
    out = tmp_path / "years.json"
    cmd = [sys.executable, str(BENCH / "store.py"), "--years", "2", "--per-year", "1500", "--dim", "32", "--centres", "50",
           "--shard", "750", "--queries", "12", "--efs", "64", "--set", "indexing_threshold_kb=100",
           "--set", "full_scan_threshold_kb=100", "--workdir", str(tmp_path / "w"), "--out", str(out)]

    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)

    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    design, legacy = result["runs"]["design"][0], result["runs"]["legacy"][0]
    assert [y["indexed_segments"] for y in design["by_year"]] == [1, 2], "a segment and a graph per year"
    assert design["by_year"][1]["rebuilt_indexed"] == 0 and design["by_year"][1]["kept_indexed"] == 1
    assert 0 <= design["recall_filtered"] <= 1 and set(design["by_ef"]) == {"256", "64"}
    assert legacy["years"] == 2 and set(legacy["by_ef"]) == {"None"}, "legacy collections are queried as before"
    assert "design_over_legacy" in result["summary"] and result["command"]


@pytest.mark.slow
@pytest.mark.exhaustive  # whole kademe processes: CI runs it after the default suite
def test_card_reports_card_busy_at_each_stand_in_rate(tmp_path):
    out = tmp_path / "card.json"
    proc = subprocess.run([sys.executable, str(BENCH / "card.py"), "--chunks", "300", "--rounds", "1", "--rates", "1000",
                           "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    median = json.loads(out.read_text())["median"]
    assert set(median) == {"free", "1000"}
    assert median["1000"]["card_s"] > 100 * median["free"]["card_s"], "the stand-in slept at 1,000 chunks/s, not at 10^9 tokens/s"
    assert 0 < median["1000"]["busy_year"] <= 1 and 0 < median["1000"]["busy_process"] < median["1000"]["busy_year"]
    assert median["1000"]["batches"]["max_rows"] > 32, "the stand-in is planned like a card, not in the CPU's batches of 32"


@pytest.mark.slow
@pytest.mark.exhaustive
def test_throughput_gpu_card_busy_path_runs_on_a_faked_card(tmp_path):
    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, str(BENCH / "throughput.py"), "--gpu", "--fake-cuda", "--card-chunks", "300",
                           "--layers", "0", "--rounds", "1", "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    busy = json.loads(out.read_text())["card_busy"]["median"]["real"]
    assert busy["card_s"] > 0 and 0 < busy["busy_year"] <= 1


@pytest.mark.gpu
def test_throughput_gpu_reports_card_busy_from_cuda_events(tmp_path):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, str(BENCH / "throughput.py"), "--gpu", "--seconds", "2", "--card-chunks", "2000",
                           "--rounds", "1", "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    busy = result["card_busy"]["median"]["real"]
    assert result["gpu"]["chunks_per_s"] > 0 and busy["card_s"] > 0 and 0 < busy["busy_year"] <= 1
    assert result["card_busy"]["runs"]["real"][0]["device"] == "cuda"
