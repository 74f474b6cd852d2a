"""Peak memory of read + clean + chunk: does it stay flat when a year is 4x bigger?

Each measurement is a fresh child process that imports everything, loads the tokenizer and warms it
on a few texts (the baseline: model and tokenizer excluded), then runs ``read_year``,
``clean_records`` and ``chunk_texts`` on one year. Peak RSS comes from ``VmHWM`` in
``/proc/self/status``; the child resets it to the current RSS (``/proc/self/clear_refs`` = 5) before
each stage, so every stage gets its own peak over the baseline. Sizes are interleaved (1x, 4x, 1x,
4x, ...) and the medians of ``peak - baseline`` are compared:

    ratio = median(4x) / median(1x)        target <= 1.2 (memory does not grow with the year)

Example:
    python bench/memory.py --docs 1000 --scale 4 --repeat 3
    python bench/memory.py --docs 100 --repeat 1 --out /tmp/mem

Writes ``<out>/memory.json`` (default ``bench/results``) and prints a table. Only the standard
library is imported at the top: a child (``memory.py _child ...``) pays for its own imports.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import machine, versions  # bench/_machine.py

TARGET = 1.2
YEAR = 2011
STAGES = ("read", "clean", "chunk")
VERSIONS = ("kademe", "pyarrow", "polars", "tokenizers", "transformers", "torch")
ENV = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


# -- the child: one measurement ----------------------------------------------------------------
def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    """Set VmHWM back to the current RSS (Linux >= 4.0); False when the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def child(a: argparse.Namespace) -> dict:
    """Import, load and warm the tokenizer, then run the three stages, each with its own peak."""
    import gc

    from kademe.chunk import chunk_limit, chunk_texts
    from kademe.split import split_texts
    from kademe.clean import clean_records
    from kademe.models import load_tokenizer
    from kademe.settings import Settings
    from kademe.sources import read_year

    s = Settings(source=a.source, workdir=a.workdir, model=a.model)
    limit, model_dir = chunk_limit(s)
    tokenizer = load_tokenizer(model_dir)
    split_texts(["Yargıtay kararı. " * 400] * 8, tokenizer, limit, s.chunk_overlap)  # first-call allocations
    gc.collect()
    baseline = _status_kb("VmRSS")
    reset = _reset_peak()
    stages: dict[str, dict] = {}
    started = time.perf_counter()
    result = None
    for stage in STAGES:
        before = _status_kb("VmRSS")
        _reset_peak()
        t = time.perf_counter()
        if stage == "read":
            result = read_year(YEAR, s)
            count = result.read
        elif stage == "clean":
            result = clean_records(result, YEAR, s)
            count = result.count
        else:
            result = chunk_texts(result, YEAR, s)
            count = result.count
        stages[stage] = {"rss_before_kb": before, "peak_kb": _status_kb("VmHWM"), "seconds": round(time.perf_counter() - t, 2),
                         "count": count}
    peak = max(v["peak_kb"] for v in stages.values()) if reset else _status_kb("VmHWM")
    return {"baseline_kb": baseline, "peak_kb": peak, "delta_kb": peak - baseline, "hwm_reset": reset,
            "seconds": round(time.perf_counter() - started, 2), "stages": stages}


# -- the parent: corpora, interleaved runs, the ratio ----------------------------------------------
def run_child(source: Path, workdir: Path, model: str) -> dict:
    cmd = [sys.executable, __file__, "_child", "--source", str(source), "--workdir", str(workdir), "--model", model]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **ENV}, timeout=3600)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("BENCH ")), None)
    if proc.returncode or line is None:
        raise SystemExit(f"child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(line[6:])






def summarize(runs: dict[str, list[dict]]) -> dict:
    med = {size: statistics.median(r["delta_kb"] for r in rs) for size, rs in runs.items()}
    per_stage = {size: {st: statistics.median(r["stages"][st]["peak_kb"] - r["baseline_kb"] for r in rs) for st in STAGES}
                 for size, rs in runs.items()}
    ratio = med["4x"] / med["1x"] if med["1x"] > 0 else float("inf")
    stage_ratio = {st: round(per_stage["4x"][st] / per_stage["1x"][st], 3) if per_stage["1x"][st] > 0 else None for st in STAGES}
    return {"median_delta_kb": med, "median_stage_delta_kb": per_stage, "ratio": round(ratio, 3), "stage_ratio": stage_ratio,
            "target": TARGET, "ok": ratio <= TARGET}


def format_table(result: dict) -> str:
    lines = [f"{'size':<5}{'docs':>7}{'MB':>8}{'chunks':>8}  " + "".join(f"{st + ' +MB':>11}" for st in STAGES) + f"{'peak +MB':>11}"]
    for size in ("1x", "4x"):
        c = result["corpus"][size]
        st = result["summary"]["median_stage_delta_kb"][size]
        lines.append(f"{size:<5}{c['docs']:>7}{c['bytes'] / 2**20:>8.1f}{c['chunks']:>8}  "
                     + "".join(f"{st[s] / 1024:>11.1f}" for s in STAGES)
                     + f"{result['summary']['median_delta_kb'][size] / 1024:>11.1f}")
    s = result["summary"]
    lines.append(f"\npeak - baseline, 4x / 1x: {s['ratio']:.3f} (target <= {TARGET}: {'ok' if s['ok'] else 'OVER'}); "
                 f"by stage: " + ", ".join(f"{k} {v}" for k, v in s["stage_ratio"].items())
                 + f"\nmedian of N={result['repeat']} interleaved run(s) each; baseline = after imports and tokenizer load")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_child"]:
        p = argparse.ArgumentParser()
        p.add_argument("--source", required=True)
        p.add_argument("--workdir", required=True)
        p.add_argument("--model", required=True)
        print("BENCH " + json.dumps(child(p.parse_args(argv[1:]))), flush=True)
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=int, default=1000, help="documents in the 1x year (default 1000)")
    p.add_argument("--scale", type=int, default=4, help="the big year is this many times the small one (default 4)")
    p.add_argument("--repeat", type=int, default=3, help="interleaved runs of each size (default 3)")
    p.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    a = p.parse_args(argv)

    from kademe.testing.sample import write_corpus

    info = {"machine": machine(), "versions": versions(VERSIONS)}
    with tempfile.TemporaryDirectory(prefix="kademe-mem-") as tmp:
        corpus = {}
        for size, docs in (("1x", a.docs), ("4x", a.docs * a.scale)):
            path = Path(tmp) / size / f"yargitay_{YEAR}.ndjson"
            write_corpus(path, YEAR, docs, seed=7)
            corpus[size] = {"docs": docs, "bytes": path.stat().st_size, "source": str(path.parent / "yargitay_{year}.ndjson")}
        runs: dict[str, list[dict]] = {"1x": [], "4x": []}
        for rep in range(a.repeat):
            for size in ("1x", "4x"):
                r = run_child(corpus[size]["source"], Path(tmp) / f"work-{size}-{rep}", a.model)
                runs[size].append(r)
                corpus[size]["chunks"] = r["stages"]["chunk"]["count"]
                print(f"  {size} run {rep + 1}/{a.repeat}: +{r['delta_kb'] / 1024:.1f} MB over {r['baseline_kb'] / 1024:.0f} MB, "
                      f"{r['seconds']:.1f} s", file=sys.stderr, flush=True)
    for c in corpus.values():
        c.pop("source")
    result = {"benchmark": "memory", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "command": "python bench/memory.py " + " ".join(argv), "repeat": a.repeat, "model": a.model, **info,
              "corpus": corpus, "summary": summarize(runs), "runs": runs}
    result["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp_path = out / "memory.json.tmp"
    tmp_path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp_path.replace(out / "memory.json")
    print(format_table(result))
    return 0 if result["summary"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
