"""Do the CPU stages use every core? Chunking, BM25 and point building on 1 core against 2 (``taskset``), interleaved (issue 32 point 3).

    PYTHONPATH=src:. python bench/cores.py [--chunks 50000] [--rounds 3] [--cpus 0 0,1]

Each round runs one worker process per CPU set, pinned with ``taskset -c``: it cuts the year into
chunks (``chunk_texts``: tokenization and the rows), computes its BM25 vectors (``sparse_chunks``),
and builds the store's points from them (``kademe.upsert.point_batches``: payloads, with seeded
1024-dim vectors in place of an embedding; nothing is written to a store), timing each. Reported:
each stage's median seconds per CPU set, and the speed-up of the CPU stages' total, 1 core / N cores
(target >= 1.7x on 2 cores). The load average is recorded beside every run: the machine is shared.
Results: bench/results/cores.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "src"), str(Path(__file__).resolve().parent)]

from _machine import machine, versions  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
STAGES = ("chunk", "lexical", "points")


def worker(source: str, model: str, workdir: str, shard_size: int) -> dict:
    """The CPU stages of one year, timed, in this (pinned) process."""
    import numpy as np

    from card import YEAR
    from kademe.chunk import chunk_texts
    from kademe.clean import clean_records
    from kademe.lexical.shards import read_sparse
    from kademe.lexical.stage import sparse_chunks
    from kademe.settings import Settings
    from kademe.sources import read_year
    from kademe.threads import cores
    from kademe.upsert import PAYLOAD_FIELDS, point_batches

    s = Settings(source=source, workdir=workdir, collection="cores", model=model, device="cpu", shard_size=shard_size)
    clean = clean_records(read_year(YEAR, s), YEAR, s)
    t: dict[str, float] = {}
    start = time.perf_counter()
    chunks = chunk_texts(clean, YEAR, s)
    t["chunk"] = time.perf_counter() - start
    start = time.perf_counter()
    sparse = sparse_chunks(chunks, YEAR, s)
    t["lexical"] = time.perf_counter() - start
    rng = np.random.default_rng(0)
    pool = rng.standard_normal((1024, 1024)).astype(np.float32)
    built = 0
    start = time.perf_counter()
    for i, rows in enumerate(chunks.rows(s.shard_size, ["point_id", "meta", *PAYLOAD_FIELDS])):
        ids = [r["point_id"] for r in rows]
        sparse_ids, sparse_vecs = read_sparse(sparse.shard(i))
        vecs = [pool[j % 1024] for j in range(len(ids))]
        built += sum(len(b.ids) for b in point_batches(rows, ids, ["dense"] * len(ids), ["gpu"] * len(ids), vecs, sparse_ids,
                                                      sparse_vecs, s))
    t["points"] = time.perf_counter() - start
    assert built == chunks.count
    return {"chunks": chunks.count, "cores": cores(), "seconds": t}


def run(cpus: str, source: str, model: Path, root: Path, shard_size: int) -> dict:
    work = root / f"work-{cpus.replace(',', '_')}"
    code = (f"import sys, json; sys.path[:0] = {[str(Path(__file__).resolve().parent)]!r}; from cores import worker; "
            f"print(json.dumps(worker({source!r}, {str(model)!r}, {str(work)!r}, {shard_size})))")
    proc = subprocess.run(["taskset", "-c", cpus, sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    shutil.rmtree(work, ignore_errors=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chunks", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cpus", nargs="+", default=["0", "0,1"], help="CPU sets for taskset -c; the first is the baseline")
    ap.add_argument("--shard-size", type=int, default=512)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    from card import build_corpus
    from kademe.testing import derive_wide_model

    root = Path(tempfile.mkdtemp(prefix="kademe-cores-"))
    try:
        model = derive_wide_model(root / "minilm-wide")
        source, n, _ = build_corpus(root / "data", args.chunks, model)
        runs: dict[str, list[dict]] = {c: [] for c in args.cpus}
        for rnd in range(args.rounds):
            for cpus in args.cpus:  # interleaved: drift on the shared machine hits every CPU set alike
                r = run(cpus, source, model, root, args.shard_size)
                r["loadavg"] = os.getloadavg()[0]
                runs[cpus].append(r)
                print(f"round {rnd} cpus {cpus:>5s} ({r['cores']} cores): "
                      f"{json.dumps({k: round(v, 2) for k, v in r['seconds'].items()})} total {sum(r['seconds'].values()):.2f}s "
                      f"load {r['loadavg']:.1f}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    median = {c: {**{k: statistics.median(r["seconds"][k] for r in rs) for k in STAGES},
                  "total": statistics.median(sum(r["seconds"].values()) for r in rs), "loadavg": [r["loadavg"] for r in rs]}
              for c, rs in runs.items()}
    base = args.cpus[0]
    speedup = {c: {k: median[base][k] / median[c][k] for k in (*STAGES, "total")} for c in args.cpus[1:]}
    print(json.dumps({"median_s": median, "speedup_vs_" + base: speedup}, indent=1))
    result = {"machine": machine(), "versions": versions(("tokenizers", "pyarrow", "qdrant-edge-py")), "chunks": n,
              "rounds": args.rounds, "shard_size": args.shard_size, "command": "cores.py " + " ".join(argv or sys.argv[1:]),
              "median_s": median, "speedup": speedup, "target": {"total_speedup_2_cores": 1.7}, "runs": runs,
              "loadavg_end": [round(x, 2) for x in os.getloadavg()]}
    (args.out or RESULTS / "cores.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
