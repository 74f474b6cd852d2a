"""Year-filtered recall@10 on real text with boilerplate, at 1024 dims (issue 29, point 4).

Court decisions repeat paragraphs verbatim, so a year holds many identical vectors, and the
near-free 1024-dim encoder (``kademe.testing.derive_wide_model``: one MiniLM layer and a seeded
projection) crowds its vectors into a narrow cone. This builds what the issue measured: 800-character
chunks of the shared real corpus, each year holding the corpus ``--repeat`` times under fresh ids (each
text recurs as boilerplate does), ``--years`` years loaded one by one into one Edge collection with
kademe's design and an ``optimize()`` after each (as the flow does), then ``--queries`` queries (the
first 150 characters of random chunks), each filtered to one year, answered:

- ``kademe``: through ``EdgeStore.query`` (the design's search parameters);
- ``qdrant-defaults``: the same request with no search parameters (what another program gets);
- ``exact``: ``SearchParams(exact=True)`` (the ceiling).

Recall@10 is counted two ways against an exact float32 top-10 per year: by id (a found id is right
when it is in the exact top-10), and by score (right when its exact cosine reaches the 10th best:
among identical vectors any of the tied ids is as good as another, which the id count cannot see).

    python bench/store.py --real --years 2 --repeat 2         # reduced (~8,000 points)
    python bench/store.py --real --years 4 --repeat 10        # the issue's scale (~82,000 points, 1024 dims)

Writes bench/results/store-real.json (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CORPUS = Path("/work/shared/corpus/real-decisions.ndjson")
SPACE = "wide"


def chunks() -> list[str]:
    """800-character slices of the real decisions (tags stripped), as bench/store_years.py's real check cuts them."""
    out = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        t = " ".join(re.sub(r"<[^>]+>|&quot;", " ", json.loads(line)["text"]).split())
        out += [t[i:i + 800] for i in range(0, max(len(t) - 200, 1), 800)]
    return out


def encode(texts: list[str], model_dir: Path) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    from kademe.testing import derive_wide_model

    model = SentenceTransformer(str(derive_wide_model(model_dir)), device="cpu")
    return model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True).astype(np.float32)


def recall(found: list[list[str]], truth_ids: list[list[str]], scores: list[dict[str, float]], tenth: list[float]) -> dict:
    by_id = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth_ids)])
    by_score = np.mean([sum(s[h] >= k - 1e-5 for h in f) / 10 for f, s, k in zip(found, scores, tenth)])
    return {"by_id": round(float(by_id), 4), "by_score": round(float(by_score), 4)}


def run(args) -> dict:
    from qdrant_edge import QuantizationSearchParams, Query, QueryRequest, SearchParams

    from kademe.store import PointBatch, Where
    from kademe.store.edge import EdgeStore, edge_filter

    texts = chunks()
    vectors = encode(texts, args.model_dir)
    rng = np.random.default_rng(5)
    picks = rng.choice(len(texts), size=args.queries, replace=True)
    queries = encode([texts[i][:150] for i in picks], args.model_dir)
    qyears = [2000 + int(y) for y in rng.integers(0, args.years, size=args.queries)]
    n_year = len(texts) * args.repeat
    folder = Path(tempfile.mkdtemp(prefix="store-real-", dir=args.workdir)) / "store"
    ids = {y: [str(uuid.uuid5(uuid.NAMESPACE_URL, f"{y}:{r}:{i}")) for r in range(args.repeat) for i in range(len(texts))]
           for y in range(2000, 2000 + args.years)}
    year_vectors = np.tile(vectors, (args.repeat, 1))  # the same rows every year, under fresh ids
    out: dict = {"chunks": len(texts), "repeat": args.repeat, "years": args.years, "points": n_year * args.years,
                 "dim": int(vectors.shape[1]), "unique_vectors_per_year": len(np.unique(vectors, axis=0))}
    try:
        with EdgeStore.open(folder) as store:
            store.create({SPACE: vectors.shape[1]})
            build = 0.0
            for y in range(2000, 2000 + args.years):
                for start in range(0, n_year, 4096):
                    sl = slice(start, min(start + 4096, n_year))
                    store.upsert([PointBatch(ids[y][sl], [{"corpus": "real", "year": y} for _ in ids[y][sl]], SPACE,
                                             year_vectors[sl])])
                build += store.optimize()
            out["index_s"] = round(build, 2)
            out["segments"] = [{"points": s.points, "indexed": s.indexed} for s in store.segments()]
            sims = year_vectors @ queries.T  # (n_year, queries): every year holds the same vectors
            truth_ids, scores, tenth = [], [], []
            for q, y in enumerate(qyears):
                order = np.argsort(-sims[:, q], kind="stable")[:10]
                truth_ids.append([ids[y][j] for j in order])
                tenth.append(float(sims[order[-1], q]))
                scores.append(dict(zip(ids[y], sims[:, q].tolist())))
            found: dict[str, list] = {"kademe": [], "qdrant-defaults": [], "exact": []}
            lat: dict[str, list] = {k: [] for k in found}
            params = {"qdrant-defaults": None, "exact": SearchParams(exact=True)}
            for ef, over in args.grid:  # --grid: other search parameters, to choose kademe's
                params[f"ef{ef}-over{over:g}"] = SearchParams(hnsw_ef=ef, quantization=QuantizationSearchParams(
                    rescore=True, oversampling=over))
                found[f"ef{ef}-over{over:g}"], lat[f"ef{ef}-over{over:g}"] = [], []
            for q, y in enumerate(qyears):
                where = Where(corpus="real", year=y)
                t = time.perf_counter()
                found["kademe"].append([h.id for h in store.query(dense=[(SPACE, queries[q])], where=where, limit=10)])
                lat["kademe"].append(time.perf_counter() - t)
                for name, p in params.items():
                    request = QueryRequest(limit=10, query=Query.Nearest(queries[q], using=SPACE), filter=edge_filter(where),
                                           with_payload=False, with_vector=False, params=p)
                    t = time.perf_counter()
                    found[name].append([str(r.id) for r in store._shard.query(request)])
                    lat[name].append(time.perf_counter() - t)
    finally:
        shutil.rmtree(folder.parent, ignore_errors=True)
    out["recall_filtered"] = {k: recall(v, truth_ids, scores, tenth) for k, v in found.items()}
    out["p50_ms"] = {k: round(float(np.median(v)) * 1000, 2) for k, v in lat.items()}
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--years", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2, help="copies of the corpus in each year, under fresh ids")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--grid", type=lambda v: [(int(a), float(b)) for a, b in (x.split(":") for x in v.split(","))],
                    default=[], help="hnsw_ef:oversampling pairs to query as well, e.g. 256:4,512:2")
    ap.add_argument("--model-dir", type=Path, default=Path(tempfile.gettempdir()) / "kademe-minilm-wide")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=RESULTS / "store-real.json")
    args = ap.parse_args(argv)
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(HERE))
    from _machine import machine, versions

    result = run(args)
    print(json.dumps({k: result[k] for k in ("points", "recall_filtered", "p50_ms", "index_s")}))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"command": " ".join(["bench/store.py", *sys.argv[1:]]), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                    "machine": machine(), "versions": versions(("qdrant-edge-py", "numpy", "kademe")),
                                    "loadavg": os.getloadavg(), **result}, indent=2) + "\n")


if __name__ == "__main__":
    main()
