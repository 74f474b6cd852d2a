"""A corpus of yearly partitions in one Qdrant Edge collection: legacy settings against the design (issue 18).

    python bench/store.py --years 20 --per-year 50000 [--dim 1024] [--rounds 1] [--legacy-years 20]
                          [--set quantization=binary --set payload_m=0 ...]

Each round, per collection settings ("legacy": what kademe created before issue 18; "design":
``kademe.store.design.DESIGN``, with ``--set`` overrides), interleaved, on a fresh folder:

- load year by year as the flow does: upsert the year's points in shards of ``--shard`` (one
  ``Store.upsert`` each), then ``Store.optimize()``; wall and CPU seconds of each year's build, and
  which segments the build kept, rebuilt or added (segment folder names);
- close; then a fresh search process (``python bench/store_years.py --search ...``) opens the
  store (open seconds), runs ``--warmup`` queries of each kind first (Qdrant Edge drops the store's
  pages from the OS cache at every open, so a fresh process's first query of each year reads that
  year's segment from disk: reported apart as ``cold_*``), then ``--queries`` top-10 queries
  filtered to one year and as many unfiltered, and reports latencies and its resident memory
  (VmRSS and peak);
- recall@10 against exact top-10 over the float32 originals (numpy, year by year).

Vectors are a Gaussian mixture, not uniform noise (HNSW's worst case and unlike text embeddings):
``--centres`` unit centres (default 4,000) shared by all years (topics recur), cluster sizes
Zipf-like (s=1), each point ``centre + offset`` renormalised, the offset's norm chosen so a point's
cosine to its centre is ~0.75; 90 % of the offset's variance lies in a shared ``--rank``-dimensional
subspace (default 64) and 10 % is isotropic, since text embeddings vary along few directions
(``--rank 0``: all isotropic, points of a cluster nearly equidistant: HNSW's hard case, reported
apart). Queries are fresh draws of the same mixture. Payload: as bench/store.py (corpus, year, doc_id, case numbers, ~800 chars of
real decision text).

Writes ``--out`` (default bench/results/store-years.json) after every collection, with the command
and the load average.

A 1M-point build takes most of an hour on 2 cores, and its CPU figures (process time) stand on a
busy box while latencies do not. So the two can be split: ``--keep DIR`` keeps each built store
under DIR (with its build figures, ``.bench-build.json``), and ``--reuse DIR`` skips the build and
measures those stores again: ``--search-rounds`` fresh search processes each (open, latencies,
memory: medians), interleaved across the stores, recall from the first.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
RESULTS = HERE / "results"
SPACE = "bge-m3"
CORPUS = "yargitay"
FIRST_YEAR = 2005
COS_TO_CENTRE = 0.75


# -- data -------------------------------------------------------------------------------------------
def centres(n: int, dim: int, rank: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``n`` unit centres, their Zipf-like weights (s=1), and the noise basis (``rank`` x dim, or None)."""
    rng = np.random.default_rng(12345)
    c = rng.standard_normal((n, dim), dtype=np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    w = 1.0 / np.arange(1, n + 1)
    basis = None
    if rank:
        basis = np.linalg.qr(rng.standard_normal((dim, rank)).astype(np.float32))[0].T.astype(np.float32)
    return c, w / w.sum(), basis


def draw(mix, n: int, seed: int) -> np.ndarray:
    """``n`` unit vectors from the mixture, the same for the same seed.

    Within a cluster, the spread is 90 % (of variance) in a shared ``rank``-dimensional subspace and
    10 % isotropic: text embeddings vary along few directions. ``rank=0``: all isotropic, the
    worst case for HNSW (points of a cluster nearly equidistant).
    """
    c, w, basis = mix
    rng = np.random.default_rng(seed)
    dim = c.shape[1]
    spread = np.float32(np.sqrt(1 / COS_TO_CENTRE**2 - 1))  # norm of the offset from the centre
    iso = rng.standard_normal((n, dim), dtype=np.float32)
    if basis is None:
        noise = iso * (spread / np.sqrt(dim))
    else:
        low = rng.standard_normal((n, basis.shape[0]), dtype=np.float32) @ basis
        noise = low * (spread * np.sqrt(0.9 / basis.shape[0])) + iso * (spread * np.sqrt(0.1 / dim))
    v = c[rng.choice(len(c), size=n, p=w)] + noise
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def point_id(year: int, i: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{year}:{i}"))


def year_shard(mix, year: int, start: int, n: int, pool: list[str]):
    """Points ``start .. start+n`` of ``year``: vectors and payloads, the same every time."""
    from kademe.store.base import PointBatch

    vectors = draw(mix, n, seed=year * 1_000_003 + start)
    ids, payloads = [], []
    for i in range(start, start + n):
        doc = i // 8
        ids.append(point_id(year, i))
        payloads.append({"corpus": CORPUS, "year": year, "doc_id": f"{year}-{doc}", "chunk_index": i % 8,
                         "esas_no": f"{year - 1}/{doc}", "karar_no": f"{year}/{doc}", "date": f"{year}-05-04",
                         "chamber": f"{1 + doc % 23}. Hukuk Dairesi", "model": SPACE, "degraded": False, "rung": "cpu",
                         "text": pool[i % len(pool)]})
    return PointBatch(ids, payloads, SPACE, vectors)


# -- one collection ---------------------------------------------------------------------------------
def segments(folder: Path) -> dict[str, bool]:
    """Segment folder name -> whether it holds an HNSW graph."""
    out = {}
    for seg in sorted((folder / "segments").iterdir()):
        out[seg.name] = any(seg.glob("vector_index-*/graph.bin")) or any(seg.glob("vector_index-*/links*"))
    return out


def du(path: Path, pattern: str = "**/*") -> int:
    return sum(f.stat().st_size for f in path.glob(pattern) if f.is_file())


def build(name: str, design, args, mix, pool: list[str], folder: Path) -> dict:
    """Load ``args.years`` years into a fresh store, building the index after each; the figures."""
    from kademe.store.edge import EdgeStore

    years = args.legacy_years if name == "legacy" and args.legacy_years else args.years
    per_year = args.legacy_per_year if name == "legacy" and args.legacy_per_year else args.per_year
    out: dict = {"settings": name, "design": design.as_dict(), "years": years, "per_year": per_year, "by_year": []}
    store = EdgeStore.open(folder)
    store.create({SPACE: args.dim}, design=design)
    for y in range(years):
        year = FIRST_YEAR + y
        upsert_s = 0.0
        for start in range(0, per_year, args.shard):
            batch = year_shard(mix, year, start, min(args.shard, per_year - start), pool)
            t = time.perf_counter()
            store.upsert([batch])
            upsert_s += time.perf_counter() - t
        before = segments(folder)
        load = round(os.getloadavg()[0], 2)
        cpu = time.process_time()
        wall = store.optimize()
        cpu = time.process_time() - cpu
        after = segments(folder)
        row = {"year": year, "upsert_s": round(upsert_s, 2), "build_s": round(wall, 2), "build_cpu_s": round(cpu, 2),
               "build_cpu_ms_per_new_point": round(1000 * cpu / per_year, 3), "load1": load,
               "segments": len(after), "indexed_segments": sum(after.values()),
               "kept_indexed": sum(1 for s, ix in before.items() if ix and s in after),
               "rebuilt_indexed": sum(1 for s, ix in before.items() if ix and s not in after)}
        out["by_year"].append(row)
        print(f"  {name:6s} year {year}: " + " ".join(f"{k}={v}" for k, v in row.items() if k != "year"), flush=True)
    store.close()
    first = out["by_year"][0]["build_cpu_s"] or 1e-9
    cpus = [r["build_cpu_s"] for r in out["by_year"]]
    out["build_cpu_s_total"] = round(sum(cpus), 1)
    out["build_cpu_ms_per_point"] = round(1000 * sum(cpus) / (years * per_year), 3)
    out["last_over_first_build_cpu"] = round(cpus[-1] / first, 3)
    out["max_over_first_build_cpu"] = round(max(cpus[1:] or [first]) / first, 3)
    n = years * per_year
    out["disk_bytes_per_point"] = round(du(folder) / n, 1)
    out["quantized_bytes_per_point"] = round(du(folder, "segments/*/vector_storage-*/quant*") / n, 1) + round(
        du(folder, "segments/*/vector_index-*/quant*") / n, 1)
    out["graph_bytes_per_point"] = round(du(folder, "segments/*/vector_index-*/*") / n, 1)
    return out


def search(folder: Path, args, mix) -> dict:
    """Open the store and query it in a fresh process; its figures and hits."""
    years = json.loads((folder / ".bench-years").read_text())
    queries = draw(mix, 2 * args.queries, seed=777)
    np.save(folder / ".bench-queries.npy", queries)
    np.save(folder / ".bench-warmup.npy", draw(mix, 2 * args.warmup, seed=778))
    cmd = [sys.executable, __file__, "--search", str(folder), "--years-list", ",".join(map(str, years)),
           "--warmup", str(args.warmup),
           "--queries", str(args.queries), "--efs", args.efs]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, env=os.environ)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.splitlines()[-1])


def search_child(folder: Path, years: list[int], nq: int, efs: list[int]) -> None:
    """The search process: open, query at each ``hnsw_ef``, report (one JSON line on stdout)."""
    from dataclasses import replace

    from kademe.store.base import Where
    from kademe.store.design import DESIGN
    from kademe.store.edge import EdgeStore, designed, search_params

    queries = np.load(folder / ".bench-queries.npy")
    warmup = np.load(folder / ".bench-warmup.npy")
    rss0 = _rss_kb()
    t = time.perf_counter()
    store = EdgeStore.open(folder)
    points = store.info().points
    open_s = time.perf_counter() - t
    rss_open = _rss_kb()
    out = {"points": points, "open_s": round(open_s, 4), "rss_before_open_mb": round(rss0 / 1024, 1),
           "rss_after_open_mb": round(rss_open / 1024, 1)}
    # A fresh process: Qdrant Edge drops the store's pages from the OS cache at every open ("cold"
    # placement), so a process's first query of each year reads its segment from disk. Those are
    # timed apart (cold_*), then the measured queries run on a warmed process, as a searcher that
    # stays up (or a server) has it.
    cold: dict[str, list[float]] = {"filtered": [], "unfiltered": []}
    for q in range(len(warmup)):
        kind = "filtered" if q % 2 == 0 else "unfiltered"
        where = Where(corpus=CORPUS, year=years[(q // 2) % len(years)]) if kind == "filtered" else None
        t = time.perf_counter()
        store.query(dense=[(SPACE, warmup[q])], where=where, limit=10)
        cold[kind].append((time.perf_counter() - t) * 1000)
    first = cold["filtered"][:len(years)]  # each year's first query in this process
    out.update({"warmup_queries": len(warmup), "cold_first_query_ms": round(cold["filtered"][0], 1) if first else None,
                "cold_first_in_year_p50_ms": round(float(np.percentile(first, 50)), 1) if first else None,
                "cold_first_in_year_max_ms": round(max(first), 1) if first else None,
                "cold_first_unfiltered_ms": round(cold["unfiltered"][0], 1) if cold["unfiltered"] else None,
                "warmup_s": round(sum(cold["filtered"] + cold["unfiltered"]) / 1000, 2)})
    qyears = [years[q % len(years)] for q in range(nq)]
    config = json.loads((folder / "edge_config.json").read_text())
    efs = [DESIGN.hnsw_ef] + [ef for ef in efs if ef != DESIGN.hnsw_ef]
    for ef in efs if designed(config) else [None]:  # the design's hnsw_ef first, then the others
        store._params = search_params(config, replace(DESIGN, hnsw_ef=ef)) if ef else None
        lat: dict[str, list[float]] = {"filtered": [], "unfiltered": []}
        hits: dict[str, list[list[str]]] = {"filtered": [], "unfiltered": []}
        for q in range(2 * nq):  # interleave the two kinds
            kind = "filtered" if q % 2 == 0 else "unfiltered"
            where = Where(corpus=CORPUS, year=qyears[q // 2]) if kind == "filtered" else None
            t = time.perf_counter()
            res = store.query(dense=[(SPACE, queries[q])], where=where, limit=10)
            lat[kind].append((time.perf_counter() - t) * 1000)
            hits[kind].append([h.id for h in res])
        row: dict = {"hits": hits}
        for kind, ms in lat.items():
            warm = ms[5:] if len(ms) > 10 else ms  # the first few pay the cold page cache; reported apart
            row[f"{kind}_p50_ms"] = round(float(np.percentile(warm, 50)), 2)
            row[f"{kind}_p95_ms"] = round(float(np.percentile(warm, 95)), 2)
            row[f"{kind}_first5_ms"] = [round(x, 1) for x in ms[:5]]
        out.setdefault("by_ef", {})[str(ef)] = row
    store.close()
    out.update({"rss_after_queries_mb": round(_rss_kb() / 1024, 1),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), "query_years": qyears})
    print(json.dumps(out))


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1])
    return 0


def exact(mix, years: list[int], per_year: int, shard: int, queries: np.ndarray, qyears: list[int], nq: int) -> dict:
    """Exact top-10 ids over the float32 originals: filtered (even queries, their year) and unfiltered (odd)."""
    filt = queries[0::2]
    unf = queries[1::2]
    best_u = [(np.full(10, -9.0), [""] * 10) for _ in range(nq)]
    best_f: list = [None] * nq
    for year in years:
        scores_f, scores_u, ids = [], [], []
        for start in range(0, per_year, shard):
            v = draw(mix, min(shard, per_year - start), seed=year * 1_000_003 + start)
            scores_f.append(v @ filt.T)
            scores_u.append(v @ unf.T)
            ids += [point_id(year, i) for i in range(start, start + len(v))]
        sf, su = np.vstack(scores_f), np.vstack(scores_u)
        for q in range(nq):
            top = np.argpartition(-su[:, q], 10)[:10]
            s = np.concatenate([best_u[q][0], su[top, q]])
            names = best_u[q][1] + [ids[i] for i in top]
            keep = np.argsort(-s)[:10]
            best_u[q] = (s[keep], [names[i] for i in keep])
            if qyears[q] == year:
                top = np.argsort(-sf[:, q])[:10]
                best_f[q] = [ids[i] for i in top]
    return {"filtered": best_f, "unfiltered": [b[1] for b in best_u]}


def recall(found: list[list[str]], truth: list[list[str]]) -> float:
    return round(float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)])), 4)


# -- the check on real decisions --------------------------------------------------------------------
def real_check(args) -> dict:
    """Recall@10 of the design on the real decisions embedded by the packaged model (all-MiniLM-L6-v2).

    800-character chunks of the 297 decisions, loaded year by year (their own years) with a build
    after each, thresholds lowered to 20 KB so that every year of more than ~13 chunks gets an HNSW
    graph; queries are the first 150 characters of 100 chunks, each also filtered to its year.
    """
    import re
    from dataclasses import replace

    from sentence_transformers import SentenceTransformer

    from kademe.store.base import PointBatch, Where
    from kademe.store.design import DESIGN
    from kademe.store.edge import EdgeStore

    rows = []
    for line in (Path("/work/shared/corpus/real-decisions.ndjson")).read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        t = " ".join(re.sub(r"<[^>]+>|&quot;", " ", d["text"]).split())
        rows += [(int(d["year"]), f"{d['id']}:{i}", t[i:i + 800]) for i in range(0, max(len(t) - 200, 1), 800)]
    from kademe.models import resolve_model

    model = SentenceTransformer(str(resolve_model("sentence-transformers/all-MiniLM-L6-v2")), device="cpu")
    vectors = model.encode([r[2] for r in rows], batch_size=64, normalize_embeddings=True).astype(np.float32)
    rng = np.random.default_rng(5)
    picks = rng.choice(len(rows), size=100, replace=False)
    queries = model.encode([rows[i][2][:150] for i in picks], normalize_embeddings=True).astype(np.float32)
    design = replace(DESIGN, indexing_threshold_kb=20, full_scan_threshold_kb=20)
    ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, r[1])) for r in rows]
    years = np.array([r[0] for r in rows])
    folder = Path(tempfile.mkdtemp(prefix="years-real-", dir=args.workdir)) / "store"
    found: dict[str, list] = {"filtered": [], "unfiltered": []}
    truth: dict[str, list] = {"filtered": [], "unfiltered": []}
    try:
        with EdgeStore.open(folder) as store:
            store.create({SPACE: vectors.shape[1]}, design=design)
            for year in sorted(set(years)):
                idx = np.flatnonzero(years == year)
                store.upsert([PointBatch([ids[i] for i in idx], [{"corpus": CORPUS, "year": int(year)} for _ in idx],
                                         SPACE, vectors[idx])])
                store.optimize()
            indexed = len(list(folder.glob("segments/*/vector_index-*/graph.bin")))
            for q, i in zip(queries, picks):
                sims = vectors @ q
                truth["unfiltered"].append([ids[j] for j in np.argsort(-sims)[:10]])
                found["unfiltered"].append([h.id for h in store.query(dense=[(SPACE, q)], limit=10)])
                sims = np.where(years == years[i], sims, -9)
                truth["filtered"].append([ids[j] for j in np.argsort(-sims)[:10] if sims[j] > -9])
                found["filtered"].append([h.id for h in store.query(dense=[(SPACE, q)], limit=10,
                                                                    where=Where(corpus=CORPUS, year=int(years[i])))])
    finally:
        shutil.rmtree(folder.parent, ignore_errors=True)
    recall_of = lambda kind: round(float(np.mean([len(set(f) & set(t)) / max(len(t), 1)  # noqa: E731
                                                 for f, t in zip(found[kind], truth[kind])])), 4)
    return {"chunks": len(rows), "dim": int(vectors.shape[1]), "years": int(len(set(years))),
            "hnsw_segments": indexed, "recall_filtered": recall_of("filtered"), "recall_unfiltered": recall_of("unfiltered")}


# -- the run ----------------------------------------------------------------------------------------
def designs(args):
    from kademe.store.design import DESIGN, LEGACY

    overrides = {}
    for item in args.set or []:
        key, _, value = item.partition("=")
        current = getattr(DESIGN, key)
        overrides[key] = None if value == "none" else value if isinstance(current, str) or value in ("int8", "binary") \
            else float(value) if isinstance(current, float) else int(value)
    from dataclasses import replace

    return {"legacy": LEGACY, "design": replace(DESIGN, **overrides)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--years", type=int, default=20)
    ap.add_argument("--per-year", type=int, default=50_000)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--centres", type=int, default=4000)
    ap.add_argument("--rank", type=int, default=64, help="dimensions of a cluster's spread (0: isotropic)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--shard", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--only", choices=("legacy", "design"), default=None, help="run one of the two settings")
    ap.add_argument("--legacy-years", type=int, default=None, help="legacy at fewer years (it re-indexes O(years^2))")
    ap.add_argument("--legacy-per-year", type=int, default=None)
    ap.add_argument("--set", action="append", help="override a DESIGN field, e.g. --set payload_m=0")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=RESULTS / "store-years.json")
    ap.add_argument("--efs", default="256", help="more hnsw_ef values to query the design at (comma-separated)")
    ap.add_argument("--real", action="store_true", help="only the recall check on the real decisions")
    ap.add_argument("--keep", type=Path, help="keep each built store under this folder (for --reuse)")
    ap.add_argument("--reuse", type=Path, help="no build: search the stores kept under this folder again")
    ap.add_argument("--search-rounds", type=int, default=1, help="fresh search processes per store (medians)")
    ap.add_argument("--warmup", type=int, default=100, help="queries of each kind a search process runs before the timed ones")
    ap.add_argument("--search", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--years-list", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.search:
        return search_child(args.search, [int(y) for y in args.years_list.split(",")], args.queries,
                            [int(e) for e in args.efs.split(",") if e])

    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    if args.real:
        result = real_check(args)
        print(json.dumps(result))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                        "loadavg": os.getloadavg(), **result}, indent=2))
        return
    sys.path.insert(0, str(HERE))
    from _machine import machine, versions
    from _texts import texts

    pool = texts()
    mix = centres(args.centres, args.dim, args.rank)
    chosen = designs(args)
    names = [args.only] if args.only else ["design", "legacy"]  # the design first: its figures are the point
    head = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "command": " ".join(sys.argv),
            "machine": machine(), "versions": versions(("qdrant-edge-py", "qdrant-client", "numpy", "kademe")),
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k not in ("search", "years_list")},
            "data": f"Gaussian mixture: {args.centres} centres, Zipf weights, cos(point, centre) ~{COS_TO_CENTRE}, "
                    f"spread 90% in a shared {args.rank}-dim subspace + 10% isotropic" if args.rank else
                    f"Gaussian mixture: {args.centres} centres, Zipf weights, cos(point, centre) ~{COS_TO_CENTRE}, isotropic"}
    runs: dict[str, list[dict]] = {n: [] for n in names}
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    result: dict = {}
    for r in range(1 if args.reuse else args.rounds):
        built: dict[str, tuple[dict, Path]] = {}
        for name in names if r % 2 == 0 else names[::-1]:
            if args.reuse:
                folder = args.reuse / name / "store"
                fig = json.loads((folder / ".bench-build.json").read_text())
            else:
                root = args.keep / name if args.keep else Path(tempfile.mkdtemp(prefix=f"years-{name}-", dir=args.workdir))
                shutil.rmtree(root, ignore_errors=True)
                folder = root / "store"
                print(f"round {r + 1} {name}", flush=True)
                fig = build(name, chosen[name], args, mix, pool, folder)
                (folder / ".bench-build.json").write_text(json.dumps(fig))
            built[name] = (fig, folder)
        searched: dict[str, list[dict]] = {name: [] for name in built}
        for k in range(args.search_rounds):  # fresh search processes, interleaved across the stores
            for name in list(built) if k % 2 == 0 else list(built)[::-1]:
                fig, folder = built[name]
                years = [FIRST_YEAR + y for y in range(fig["years"])]
                (folder / ".bench-years").write_text(json.dumps(years))
                searched[name].append(search(folder, args, mix))
                print(f"  search {k + 1} {name}: open {searched[name][-1]['open_s']} s, load {os.getloadavg()[0]:.2f}", flush=True)
        for name, (fig, folder) in built.items():
            try:
                fig = {**fig, **searched_figures(searched[name], fig, folder, args, mix)}
                fig["load1_after"] = round(os.getloadavg()[0], 2)
                runs[name].append(fig)
                print(f"round {r + 1} {name}: " + " ".join(f"{k}={v}" for k, v in fig.items()
                                                          if k not in ("by_year", "design", "by_ef", "search_rounds")), flush=True)
                print(f"  by hnsw_ef: {json.dumps(fig.get('by_ef'))}", flush=True)
            finally:
                if not (args.keep or args.reuse):
                    shutil.rmtree(folder.parent, ignore_errors=True)
            result = {**head, "rounds_done": r + 1, "summary": summarize(runs), "runs": runs}
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result["summary"], indent=2))
    print(f"wrote {args.out}")


SEARCH_FIGURES = ("open_s", "rss_before_open_mb", "rss_after_open_mb", "rss_after_queries_mb", "peak_rss_mb",
                  "cold_first_query_ms", "cold_first_in_year_p50_ms", "cold_first_in_year_max_ms", "cold_first_unfiltered_ms",
                  "warmup_s")


def searched_figures(rounds: list[dict], fig: dict, folder: Path, args, mix) -> dict:
    """Medians over the search processes (open, memory, latencies per hnsw_ef); recall of the first one's hits."""
    first = rounds[0]
    years = [FIRST_YEAR + y for y in range(fig["years"])]
    queries = np.load(folder / ".bench-queries.npy")
    truth = exact(mix, years, fig["per_year"], args.shard, queries, first["query_years"], args.queries)
    out: dict = {"points": first["points"], "search_rounds": len(rounds)}
    for key in SEARCH_FIGURES:
        values = [s[key] for s in rounds if s.get(key) is not None]
        out[key] = round(statistics.median(values), 4) if values else None
    out["open_s_rounds"] = [s["open_s"] for s in rounds]
    for i, ef in enumerate(first["by_ef"]):
        row = {k: round(statistics.median(s["by_ef"][ef][k] for s in rounds), 2) for k in first["by_ef"][ef]
               if k.endswith(("_p50_ms", "_p95_ms"))}
        row["filtered_p50_ms_rounds"] = [s["by_ef"][ef]["filtered_p50_ms"] for s in rounds]
        row["recall_filtered"] = recall(first["by_ef"][ef]["hits"]["filtered"], truth["filtered"])
        row["recall_unfiltered"] = recall(first["by_ef"][ef]["hits"]["unfiltered"], truth["unfiltered"])
        if i == 0:
            out.update(row)  # the design's own hnsw_ef (legacy: the engine's default)
        out.setdefault("by_ef", {})[ef] = row
    return out


FIGURES = ("build_cpu_ms_per_point", "max_over_first_build_cpu", "open_s", "filtered_p50_ms", "filtered_p95_ms",
           "unfiltered_p50_ms", "unfiltered_p95_ms", "recall_filtered", "recall_unfiltered", "rss_after_queries_mb",
           "disk_bytes_per_point")


def summarize(runs: dict[str, list[dict]]) -> dict:
    """Medians per settings and design/legacy ratios (each at its own size: see years x per_year)."""
    med = {n: {f: statistics.median(r[f] for r in rs) for f in FIGURES} | {"points": rs[0]["years"] * rs[0]["per_year"]}
           for n, rs in runs.items() if rs}
    out: dict = {"medians": med, "rounds": {n: len(rs) for n, rs in runs.items()}}
    if len(med) == 2:
        out["design_over_legacy"] = {f: round(med["design"][f] / med["legacy"][f], 3)
                                     for f in FIGURES if med["legacy"][f]}
    return out


if __name__ == "__main__":
    main()
