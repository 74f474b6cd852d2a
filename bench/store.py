"""The store engines on N synthetic points: Qdrant Edge against qdrant-client local mode (issue 12).

Both run through kademe's own ``Store`` classes (``EdgeStore``, ``ServerStore.connect("path:...")``),
interleaved round by round in one process. Each round, per engine, on a fresh folder:

- upsert: N points (1024-dim float32 unit vectors, a ~1 KB payload: corpus, year, doc_id,
  chunk_index, esas_no, karar_no, date, chamber, model, text from real decisions), in shards of
  ``--shard`` points (one ``Store.upsert`` call each, as the upsert stage makes) -> points/s;
- index: ``Store.optimize()`` (Edge builds HNSW and payload indexes; local mode has none: 0 s), wall and
  CPU seconds (``--skip-index``: none, the store is opened and queried unindexed);
- open: close, then time ``open`` + ``info()`` on the folder again;
- query: ``--queries`` filtered top-5 dense queries (corpus + year) -> p50 / p95 ms.

Local mode writes ~500 points/s, so its N is capped at ``--baseline-n`` (default 20,000); the output
and the JSON say so, and its open/query figures are at that N, not at N.

    python bench/store.py [--n 200000] [--rounds 3] [--baseline-n 20000] [--edge-only] [--skip-index]

With ``--nights K --n N``: a year of N points, then K nights of 1 % change: index seconds, segments,
bytes, and recall/p50 against a from-scratch store (bench/store_nights.py; issue 29).

With ``--real --years Y --repeat R``: year-filtered recall@10 on the real corpus, each year holding it R
times (boilerplate), at 1024 dims (bench/store_real.py says what it measures; issue 29).

With ``--years Y --per-year P``: Y yearly partitions in one Edge collection, legacy settings
against the issue-18 design (bench/store_years.py says what it measures).

Prints medians and edge/local ratios; writes bench/results/store.json (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from _machine import machine, versions  # bench/_machine.py
from _texts import CORPUS, DIM, SPACE, texts  # noqa: F401 - bench/_texts.py (store_years and store_nights use them too)

from kademe.store.base import PointBatch, Store, Where
from kademe.store.edge import EdgeStore
from kademe.store.server import ServerStore

RESULTS = Path(__file__).parent / "results"
VERSIONS = ("qdrant-edge-py", "qdrant-client", "numpy", "kademe")
CORPORA = ("yargitay", "danistay", "aym")
YEARS = tuple(range(2000, 2024))
TARGETS = {"edge upsert points/s >= 5000": 5000, "edge open s <= 0.5 at 200k": 0.5, "edge query p50 ms <= 50 at 200k": 50}


def shard(start: int, n: int, pool: list[str]) -> PointBatch:
    """Points ``start .. start+n``: the same every time they are asked for (seeded by ``start``)."""
    rng = np.random.default_rng(start)
    vectors = rng.standard_normal((n, DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids, payloads = [], []
    for i in range(start, start + n):
        doc = i // 8
        ids.append(str(uuid.uuid5(uuid.NAMESPACE_URL, f"doc-{doc}:{i % 8}")))
        payloads.append({"corpus": CORPORA[doc % 3], "year": YEARS[doc % len(YEARS)], "doc_id": f"doc-{doc}",
                         "chunk_index": i % 8, "esas_no": f"{2000 + doc % 24}/{doc}", "karar_no": f"{2001 + doc % 24}/{doc}",
                         "date": "2021-05-04", "chamber": "4. Hukuk Dairesi", "model": SPACE, "degraded": False,
                         "rung": "cpu", "text": pool[i % len(pool)]})
    return PointBatch(ids, payloads, SPACE, vectors)


def opener(engine: str, folder: Path):
    """``engine`` is ``edge`` or ``local`` (qdrant-client local mode through ``ServerStore``)."""
    if engine == "edge":
        return lambda: EdgeStore.open(folder)
    return lambda: ServerStore.connect(f"path:{folder}", "bench")


def one_round(engine: str, n: int, args, pool: list[str]) -> dict:
    """Upsert n points, build the index, reopen, query: the figures of one engine in one round."""
    folder = Path(tempfile.mkdtemp(prefix=f"store-{engine}-", dir=args.workdir))
    try:
        open_ = opener(engine, folder)
        store: Store = open_()
        store.create({SPACE: DIM})
        upsert_s = 0.0
        for start in range(0, n, args.shard):
            batch = shard(start, min(args.shard, n - start), pool)  # built outside the timing
            t = time.perf_counter()
            store.upsert([batch])
            upsert_s += time.perf_counter() - t
        load1 = round(os.getloadavg()[0], 2)  # others' jobs on a shared machine: wall seconds move with it
        cpu = time.process_time()
        index_s = 0.0 if args.skip_index else store.optimize()
        index_cpu_s = time.process_time() - cpu  # CPU seconds of the build, all its threads: steadier than wall
        store.close()
        t = time.perf_counter()
        store = open_()
        points = store.info().points
        open_s = time.perf_counter() - t
        assert points == n, f"{engine}: {points} points after reopening, expected {n}"
        rng = np.random.default_rng(99)
        lat = []
        for q in range(args.queries):
            vec = rng.standard_normal(DIM, dtype=np.float32)
            where = Where(corpus=CORPORA[q % 3], year=YEARS[q % len(YEARS)])
            t = time.perf_counter()
            hits = store.query(dense=[(SPACE, vec)], where=where, limit=5)
            lat.append((time.perf_counter() - t) * 1000)
            assert all(h.payload["corpus"] == where.corpus and h.payload["year"] == where.year for h in hits)
        store.close()
        return {"n": n, "upsert_s": round(upsert_s, 3), "points_per_s": round(n / upsert_s, 1), "index_s": round(index_s, 3),
                "index_cpu_s": round(index_cpu_s, 1), "load1_before_index": load1,
                "open_s": round(open_s, 4), "query_p50_ms": round(float(np.percentile(lat, 50)), 3),
                "query_p95_ms": round(float(np.percentile(lat, 95)), 3)}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


FIGURES = ("points_per_s", "index_s", "index_cpu_s", "open_s", "query_p50_ms", "query_p95_ms")


def summarize(runs: dict[str, list[dict]], n: dict[str, int]) -> dict:
    """Medians per engine, edge/local ratios, and the targets (open and query only at N >= 200,000)."""
    medians = {e: {f: round(statistics.median(r[f] for r in rs), 4) for f in FIGURES} for e, rs in runs.items() if rs}
    out: dict = {"medians": medians, "n": n}
    if "edge" in medians and "local" in medians:
        out["ratios_edge_over_local"] = {f: round(medians["edge"][f] / medians["local"][f], 3)
                                         for f in FIGURES if medians["local"][f]}
        if n["local"] != n["edge"]:
            out["ratios_note"] = (f"local mode ran at N={n['local']}, edge at N={n['edge']}: points/s compares rates, "
                                  "open and query figures are each at their own N")
    if "edge" in medians:
        e, big = medians["edge"], n["edge"] >= 200_000
        out["targets"] = {
            "edge upsert points/s >= 5000": {"value": e["points_per_s"], "limit": 5000, "met": e["points_per_s"] >= 5000},
            "edge open s <= 0.5 at 200k": {"value": e["open_s"], "limit": 0.5, "met": e["open_s"] <= 0.5 if big else None},
            "edge query p50 ms <= 50 at 200k": {"value": e["query_p50_ms"], "limit": 50,
                                                "met": e["query_p50_ms"] <= 50 if big else None},
        }
    return out


def main() -> None:
    if any(a == "--nights" or a.startswith("--nights=") for a in sys.argv[1:]):  # issue 29: a year of nights
        from store_nights import main as nights_main

        return nights_main(sys.argv[1:])
    if "--real" in sys.argv[1:] and any(a == "--repeat" or a.startswith("--repeat=") for a in sys.argv[1:]):  # issue 29
        from store_real import main as real_main

        return real_main(sys.argv[1:])
    if any(a == "--years" or a.startswith("--years=") for a in sys.argv[1:]):  # issue 18: yearly partitions
        from store_years import main as years_main

        return years_main(sys.argv[1:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200_000, help="points per engine (edge)")
    ap.add_argument("--baseline-n", type=int, default=20_000, help="cap on local mode's N (it writes ~500 points/s)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--shard", type=int, default=10_000, help="points per Store.upsert call")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--edge-only", action="store_true", help="skip the local-mode baseline")
    ap.add_argument("--skip-index", action="store_true", help="no optimize(): open and query the unindexed store")
    ap.add_argument("--workdir", type=Path, default=None, help="where the stores are built (default: a temp dir)")
    ap.add_argument("--out", type=Path, default=RESULTS / "store.json")
    args = ap.parse_args()
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    n = {"edge": args.n, "local": min(args.n, args.baseline_n)}
    engines = ["edge"] if args.edge_only else ["edge", "local"]
    if not args.edge_only and n["local"] < args.n:
        print(f"local mode capped at N={n['local']} (--baseline-n); edge at N={args.n}")
    pool = texts()
    runs: dict[str, list[dict]] = {e: [] for e in engines}
    head = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "versions": versions(VERSIONS),
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "dim": DIM, "baseline_capped": not args.edge_only and n["local"] < args.n}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for r in range(args.rounds):
        for engine in engines if r % 2 == 0 else engines[::-1]:  # alternate who goes first
            fig = one_round(engine, n[engine], args, pool)
            runs[engine].append(fig)
            print(f"round {r + 1} {engine:5s} N={fig['n']}: " + "  ".join(f"{k}={fig[k]}" for k in FIGURES), flush=True)
            summary = summarize(runs, {e: n[e] for e in engines})  # written after every run: a long run leaves figures
            result = {**head, "rounds_done": min(map(len, runs.values())), **summary, "runs": runs}
            args.out.write_text(json.dumps(result, indent=2))
    print("\nmedians:")
    for e, m in summary["medians"].items():
        print(f"  {e:5s} N={n[e]:>8}: " + "  ".join(f"{k}={v}" for k, v in m.items()))
    for f, v in summary.get("ratios_edge_over_local", {}).items():
        print(f"  edge/local {f}: {v}")
    if "ratios_note" in summary:
        print(f"  ({summary['ratios_note']})")
    for name, t in summary.get("targets", {}).items():
        print(f"  target {name}: {t['value']} -> {'met' if t['met'] else 'n/a below 200k' if t['met'] is None else 'MISSED'}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
