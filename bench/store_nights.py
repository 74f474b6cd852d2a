"""A year of nights in the store (issue 29, points 2 and 4), on Qdrant Edge through kademe's ``EdgeStore``.

One year of ``--n`` points (1024-dim unit vectors, bench/store.py's payloads) is loaded and indexed
(the cold build), then ``--nights`` nights each send what the upsert stage sends on a 1 % night:
0.5 % of the points changed (new vectors), 0.3 % new, 0.2 % withdrawn (deleted), followed by the
``optimize()`` the flow runs after each year. Per night: the index seconds (wall and CPU), the
segments (points, deleted, indexed, whether the year's HNSW graph is the cold build's) and the
store's bytes on disk. After the last night, a from-scratch store of the same final points is built,
and both answer the same year-filtered queries: recall@10 against an exact float32 top-10, p50.

    python bench/store.py --nights 30 --n 20000      # reduced (a few minutes here)
    python bench/store.py --nights 30 --n 1000000    # a 1M-point year (hours of CPU on 2 cores)

Writes bench/results/store-nights.json (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
YEAR, CORPUS = 2011, "yargitay"


def du(path: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file())


def batch(ids: list[str], vectors: np.ndarray, pool: list[str]):
    from _texts import SPACE

    from kademe.store import PointBatch

    payloads = [{"corpus": CORPUS, "year": YEAR, "doc_id": pid[:8], "chunk_index": 0, "text": pool[hash(pid) % len(pool)]}
                for pid in ids]
    return PointBatch(ids, payloads, SPACE, vectors)


def load(store, ids: list[str], vectors: np.ndarray, pool: list[str], shard: int = 8192) -> None:
    for start in range(0, len(ids), shard):
        store.upsert([batch(ids[start:start + shard], vectors[start:start + shard], pool)])


def timed_optimize(store) -> tuple[float, float]:
    cpu = time.process_time()
    wall = store.optimize()
    return wall, time.process_time() - cpu


def unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim), dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def searched(stores: dict, queries: np.ndarray, truth: list[set[str]]) -> dict:
    """Recall@10 and p50 of each store on the same year-filtered queries: one warm-up pass, then the timed
    pass with the stores interleaved query by query (a shared machine's load falls on both alike)."""
    from _texts import SPACE

    from kademe.store import Where

    def ask(store, q):
        return {h.id for h in store.query(dense=[(SPACE, q)], where=Where(CORPUS, YEAR), limit=10)}

    for q in queries:
        for store in stores.values():
            ask(store, q)
    lat: dict[str, list] = {name: [] for name in stores}
    hits: dict[str, list] = {name: [] for name in stores}
    for q in queries:
        for name, store in stores.items():
            t = time.perf_counter()
            hits[name].append(ask(store, q))
            lat[name].append(time.perf_counter() - t)
    return {name: {"recall": round(float(np.mean([len(h & t) / 10 for h, t in zip(hits[name], truth)])), 4),
                   "p50_ms": round(float(np.median(lat[name])) * 1000, 3)} for name in stores}


def run(args) -> dict:
    from _texts import DIM, texts

    from kademe.store.edge import EdgeStore

    pool = texts()
    rng = np.random.default_rng(0)
    ids = [f"{i:08x}-0000-4000-8000-000000000000" for i in range(args.n)]
    vectors = {pid: v for pid, v in zip(ids, unit(rng, args.n, DIM))}
    root = Path(tempfile.mkdtemp(prefix="store-nights-", dir=args.workdir))
    out: dict = {"n": args.n, "dim": DIM, "nights": []}
    try:
        store = EdgeStore.open(root / "nightly")
        store.create({"bge-m3": DIM})
        load(store, ids, np.stack([vectors[p] for p in ids]), pool)
        cold_s, cold_cpu = timed_optimize(store)
        year = max(store.segments(), key=lambda s: s.points)
        out["cold"] = {"index_s": round(cold_s, 2), "index_cpu_s": round(cold_cpu, 2), "bytes": du(root / "nightly"),
                       "segments": [s.__dict__ for s in store.segments()]}
        print(f"cold: {args.n} points, index {cold_s:.1f} s ({cold_cpu:.1f} CPU s), {out['cold']['bytes'] / 1e6:.0f} MB", flush=True)
        next_id = args.n
        for night in range(1, args.nights + 1):
            live = list(vectors)
            picks = rng.choice(len(live), size=int(len(live) * 0.007), replace=False)
            changed = [live[i] for i in picks[:int(len(live) * 0.005)]]
            withdrawn = [live[i] for i in picks[int(len(live) * 0.005):]]
            new = [f"{next_id + i:08x}-0000-4000-8000-000000000000" for i in range(int(len(live) * 0.003))]
            next_id += len(new)
            fresh = unit(rng, len(changed) + len(new), DIM)
            for pid, v in zip(changed + new, fresh):
                vectors[pid] = v
            for pid in withdrawn:
                del vectors[pid]
            load(store, changed + new, fresh, pool)
            store.delete(withdrawn)
            wall, cpu = timed_optimize(store)
            segs = store.segments()
            kept = [s for s in segs if s.name == year.name]
            row = {"night": night, "written": len(changed) + len(new), "deleted": len(withdrawn), "index_s": round(wall, 3),
                   "index_cpu_s": round(cpu, 3), "bytes": du(root / "nightly"), "segments": len(segs),
                   "indexed_segments": sum(s.indexed for s in segs),
                   "year_segment": "kept" if kept and kept[0].built == year.built else "rebuilt",
                   "year_deleted": kept[0].deleted if kept else None}
            if not kept:  # vacuumed into a new segment: follow the new one from now on
                year = max(segs, key=lambda s: s.points)
            out["nights"].append(row)
            print(f"night {night}: wrote {row['written']}, deleted {row['deleted']}, index {wall:.2f} s ({cpu:.2f} CPU s), "
                  f"{row['bytes'] / 1e6:.0f} MB, {row['segments']} segments, the year's {row['year_segment']}", flush=True)
        final = list(vectors)
        matrix = np.stack([vectors[p] for p in final])
        scratch = EdgeStore.open(root / "scratch")
        scratch.create({"bge-m3": DIM})
        load(scratch, final, matrix, pool)
        scratch_s, scratch_cpu = timed_optimize(scratch)
        out["scratch"] = {"index_s": round(scratch_s, 2), "index_cpu_s": round(scratch_cpu, 2), "bytes": du(root / "scratch")}
        queries = unit(np.random.default_rng(7), args.queries, DIM) * 0.3 + matrix[np.random.default_rng(8).choice(len(final), args.queries)]
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        top = np.argsort(-(matrix @ queries.T), axis=0)[:10].T
        truth = [{final[j] for j in row} for row in top]
        store.close()
        scratch.close()
        with EdgeStore.open(root / "nightly") as store, EdgeStore.open(root / "scratch") as scratch:  # as a search process opens them
            out["search"] = searched({"nightly": store, "scratch": scratch}, queries, truth)
            out["search_segments"] = {"nightly": [s.__dict__ for s in store.segments()],
                                      "scratch": [s.__dict__ for s in scratch.segments()]}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    nights = out["nights"]
    out["summary"] = {
        "bytes_ratio": round(nights[-1]["bytes"] / out["scratch"]["bytes"], 3),
        "recall_ratio": round(out["search"]["nightly"]["recall"] / out["search"]["scratch"]["recall"], 4),
        "p50_ratio": round(out["search"]["nightly"]["p50_ms"] / out["search"]["scratch"]["p50_ms"], 3),
        "night_index_cpu_median_over_cold": round(float(np.median([r["index_cpu_s"] for r in nights])) / cold_cpu, 4),
        "nights_year_segment_kept": sum(r["year_segment"] == "kept" for r in nights),
    }
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nights", type=int, default=30)
    ap.add_argument("--n", type=int, default=20_000, help="points in the year")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=RESULTS / "store-nights.json")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(HERE))
    from _machine import machine, versions

    result = run(args)
    print(json.dumps({"cold": {k: result["cold"][k] for k in ("index_s", "index_cpu_s", "bytes")}, "scratch": result["scratch"],
                      "search": result["search"], "summary": result["summary"]}))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"command": " ".join(["bench/store.py", *sys.argv[1:]]),
                                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
                                    "versions": versions(("qdrant-edge-py", "numpy", "kademe")), "loadavg": os.getloadavg(),
                                    **result}, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
