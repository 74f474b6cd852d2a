"""Search quality and latency on real decisions: dense, lexical (BM25) and hybrid (RRF), one collection.

Corpus: /work/shared/corpus/real-decisions.ndjson (297 real Turkish decisions), split by year into one
collection (payload ``year``), chunked with the model's tokenizer (``kademe.chunk.split_texts``),
embedded with the packaged MiniLM, with ``bm25`` vectors from ``kademe.lexical.bm25``, in Qdrant Edge.

Probes (``build_probes``):
  * sentence: one distinctive sentence copied verbatim from a decision — at least 80% of its word
    6-grams occur in no other decision — from decisions without a near-twin (one sharing over half
    of its 6-grams with another decision: anonymised boilerplate where a known-item probe means nothing);
  * ascii: the same sentences typed without Turkish letters (``davaci`` for ``davacı``), as on a
    keyboard without them, and lower: typed in lower case (``DAVALI`` as ``davalı``); both used to
    choose the analyzer settings, not targets;
  * case: the decision's esas and karar numbers written as lawyers write them, in varied forms.

Reported per mode: hit@1/@5/@10 (the decision among the first k decisions returned), and the median
in-process query latency over ``--rounds`` rounds (modes interleaved per probe); then the median wall
time of a ``kademe search`` subprocess. ``--analyzers`` also compares lexical settings (each on its own
collection with the same chunks). Writes bench/results/search.json and prints the README table.

    python bench/search.py [--workdir /tmp/kademe-bench-search] [--rounds 3] [--cli-calls 7] [--analyzers]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _machine import machine, versions  # noqa: E402  (bench/_machine.py)

from kademe.lexical import bm25  # noqa: E402
from kademe.clean import clean_text  # noqa: E402
from kademe.search import normalize_case_number, search  # noqa: E402
from kademe.settings import DEFAULT_MODEL, Settings  # noqa: E402

CORPUS = Path("/work/shared/corpus/real-decisions.ndjson")
RESULTS = Path(__file__).parent / "results"
VERSIONS = ("qdrant-edge-py", "sentence-transformers", "tokenizers", "kademe")
MODES = ("dense", "lexical", "hybrid")
COLLECTION = "bench-search"
ASCII = str.maketrans("ıİşŞğĞüÜöÖçÇ", "iIsSgGuUoOcC")
LOWER = str.maketrans({"I": "ı", "İ": "i"})
CASE_FORMS = ("{e} E., {k} K.", "{e} E. , {k} K.", "E. {e} K. {k}", "Esas No: {e} Karar No: {k}", "{e} Esas {k} Karar",
              "{e_sp} E., {k_sp} K.", "{chamber} {e} E., {k} K.", "{e} esas sayılı dosya", "{k} K. sayılı karar")


def load_decisions(path: Path = CORPUS) -> list[dict]:
    """The real decisions with clean text (``kademe.clean.clean_text``)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for r in rows:
        r["text"] = clean_text(r["text"])
    return rows


def _grams(words: list[str]) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + 6]) for i in range(len(words) - 5)}


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def build_probes(rows: list[dict], seed: int = 13) -> dict:
    """Sentence, ascii and case-number probes, each ``{"query", "doc_id"}``; plus the near-twin count."""
    grams = {r["id"]: _grams(_words(r["text"])) for r in rows}
    owners: dict[tuple, set] = defaultdict(set)
    for doc, gs in grams.items():
        for g in gs:
            owners[g].add(doc)
    twins = set()
    for doc, gs in grams.items():
        shared = Counter(o for g in gs for o in owners[g] if o != doc)
        if gs and shared and max(shared.values()) > 0.5 * len(gs):
            twins.add(doc)
    rng = random.Random(seed)
    sentences = []
    for r in rows:
        if r["id"] in twins:
            continue
        candidates = []
        for s in re.split(r"(?<=[.!?;])\s+|\n+", r["text"]):
            words = _words(s)
            if not 12 <= len(words) <= 60:
                continue
            gs = [tuple(words[i:i + 6]) for i in range(len(words) - 5)]
            if sum(owners[g] == {r["id"]} for g in gs) >= 0.8 * len(gs):
                candidates.append(s.strip())
        if candidates:
            sentences.append({"query": rng.choice(candidates), "doc_id": r["id"]})
    esas = Counter(normalize_case_number(r["esas_no"]) for r in rows)
    karar = Counter(normalize_case_number(r["karar_no"]) for r in rows)
    cases = []
    for i, r in enumerate(rows):
        e, k = normalize_case_number(r["esas_no"] or ""), normalize_case_number(r["karar_no"] or "")
        if not (e and k):
            continue
        form = CASE_FORMS[i % len(CASE_FORMS)]
        if ("{k" not in form and esas[e] > 1) or ("{e" not in form and karar[k] > 1):
            form = CASE_FORMS[0]  # a single number that is not unique cannot name one decision
        chamber = re.sub(r"^(Yargıtay|Danıştay)\s+", "", r.get("chamber") or "")
        query = form.format(e=e, k=k, e_sp=e.replace("/", " / "), k_sp=k.replace("/", " / "), chamber=chamber)
        cases.append({"query": query, "doc_id": r["id"]})
    ascii_probes = [{"query": p["query"].translate(ASCII), "doc_id": p["doc_id"]} for p in sentences]
    lower = [{"query": p["query"].translate(LOWER).lower(), "doc_id": p["doc_id"]} for p in sentences]
    return {"sentence": sentences, "ascii": ascii_probes, "lower": lower, "case": cases, "twins": len(twins), "decisions": len(rows)}


def build_collection(rows: list[dict], s: Settings) -> dict:
    """Chunk, embed (cached under the workdir), compute bm25 vectors and upsert year by year; timings."""
    import numpy as np

    from kademe.ids import point_id
    from kademe.split import split_texts
    from kademe.embed.model import load_encoder
    from kademe.models import load_tokenizer, max_seq_length, resolve_model, vector_name
    from kademe.store import PointBatch, open_store

    model_dir = resolve_model(s.model)
    limit = min(s.chunk_tokens or max_seq_length(model_dir), max_seq_length(model_dir))
    pieces = split_texts([r["text"] for r in rows], load_tokenizer(model_dir), limit, s.chunk_overlap)
    chunks = [(r, i, text) for r, doc in zip(rows, pieces) for i, (text, _) in enumerate(doc)]
    texts = [c[2] for c in chunks]
    Path(s.workdir).mkdir(parents=True, exist_ok=True)
    cache = Path(s.workdir) / f"dense-{hashlib.sha256(json.dumps(texts).encode()).hexdigest()[:16]}.npy"
    if cache.exists():
        vectors = np.load(cache)
    else:
        vectors = load_encoder(model_dir, "cpu").encode(texts, batch_size=32, normalize_embeddings=True,
                                                        convert_to_numpy=True).astype(np.float32)
        np.save(cache, vectors)
    started = time.perf_counter()
    sparse = bm25.sparse_documents(texts, s.bm25_language)
    sparse_s = time.perf_counter() - started
    folder = Path(s.workdir) / "qdrant" / s.collection
    shutil.rmtree(folder, ignore_errors=True)
    space = vector_name(s.model)
    started = time.perf_counter()
    with open_store(s) as store:
        store.create({space: vectors.shape[1]})
        for year in sorted({r["year"] for r in rows}):
            idx = [j for j, c in enumerate(chunks) if c[0]["year"] == year]
            payloads = [{"corpus": "real", "year": year, "doc_id": chunks[j][0]["id"], "chunk_index": chunks[j][1],
                         "text": chunks[j][2], "date": chunks[j][0].get("date"), "chamber": chunks[j][0].get("chamber"),
                         "esas_no": normalize_case_number(chunks[j][0].get("esas_no") or ""),
                         "karar_no": normalize_case_number(chunks[j][0].get("karar_no") or ""),
                         "model": s.model, "degraded": False} for j in idx]
            ids = [point_id(p["corpus"], p["doc_id"], p["chunk_index"]) for p in payloads]
            store.upsert([PointBatch(ids, payloads, space, vectors[idx], [sparse[j] for j in idx])])
        store.optimize()
    return {"chunks": len(chunks), "years": len({r["year"] for r in rows}), "bm25_seconds": round(sparse_s, 3),
            "bm25_chunks_per_s": round(len(chunks) / sparse_s), "upsert_seconds": round(time.perf_counter() - started, 2)}


def rank_of(result: dict, doc_id: str) -> int | None:
    """1-based rank of ``doc_id`` among the decisions returned, or None."""
    return next((i + 1 for i, h in enumerate(result["hits"]) if h["doc_id"] == doc_id), None)


def _rounds(probes, s, store, modes, rounds, kinds, ranks, latency) -> None:
    """Every probe in every mode, ``rounds`` times, modes interleaved per probe; ranks from the first round."""
    for rnd in range(rounds):
        print(f"round {rnd + 1}/{rounds} on {s.collection}", file=sys.stderr, flush=True)
        for kind in kinds:
            if rnd and kind in ("ascii", "lower"):
                continue  # later rounds time the target probes only
            for p in probes[kind]:
                for m in modes:
                    started = time.perf_counter()
                    result = search(p["query"], s, mode=m, top_k=10, store=store)
                    latency[m].append(time.perf_counter() - started)
                    if rnd == 0:
                        ranks[kind][m].append(rank_of(result, p["doc_id"]))


def evaluate(probes: dict, s: Settings, modes=MODES, rounds: int = 3, kinds=("sentence", "ascii", "lower", "case")) -> dict:
    """hit@k per probe kind and mode, and the median in-process query latency (modes interleaved)."""
    from kademe.store import open_store

    ranks: dict = {kind: {m: [] for m in modes} for kind in kinds}
    latency: dict = {m: [] for m in modes}
    with open_store(s) as store:
        search("warm-up", s, store=store)
        _rounds(probes, s, store, modes, rounds, kinds, ranks, latency)
    out: dict = {}
    for kind in kinds:
        out[kind] = {m: {f"hit@{k}": round(sum(r is not None and r <= k for r in rs) / len(rs), 3) for k in (1, 5, 10)}
                     for m, rs in ranks[kind].items()}
        for m, rs in ranks[kind].items():
            out[kind][m]["misses"] = [p["query"][:80] for p, r in zip(probes[kind], rs) if r is None or r > 5][:5]
    out["latency_ms"] = {m: round(statistics.median(v) * 1000, 1) for m, v in latency.items()}
    return out


STAND_IN = ("import sys, json; import kademe.cli; from kademe.search import search, format_hits; "
            "from kademe.settings import Settings; q, w, c = sys.argv[1:4]; "
            "print(format_hits(search(q, Settings(workdir=w, collection=c), top_k=5)))")


def cli_latency(s: Settings, queries: list[str], calls: int) -> dict:
    """Median wall time of ``kademe search`` in a fresh process per call, on at most 2 cores.

    Until ``kademe.cli`` routes ``search`` to ``kademe.search`` (with ``--mode``), a stand-in runs the
    same thin path: import kademe.cli, call ``kademe.search.search`` and ``format_hits``.
    """
    env = {**os.environ, "PYTHONPATH": f"src{os.pathsep}.", "HF_HUB_OFFLINE": "1"}
    cli = [sys.executable, "-c", "import sys; from kademe.cli import main; sys.exit(main(sys.argv[1:]))", "search"]
    probe = subprocess.run([*cli, queries[0], "--mode", "hybrid", "--workdir", str(s.workdir), "--collection", s.collection],
                           env=env, capture_output=True, text=True)
    via = "kademe.cli" if probe.returncode == 0 else "stand-in"
    times = []
    for i in range(calls):
        q = queries[i % len(queries)]
        if via == "kademe.cli":
            cmd = [*cli, q, "--workdir", str(s.workdir), "--collection", s.collection, "--top-k", "5"]
        else:
            cmd = [sys.executable, "-c", STAND_IN, q, str(s.workdir), s.collection]
        started = time.perf_counter()
        subprocess.run(["taskset", "-c", "0,1", *cmd], env=env, capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - started)
    return {"median_s": round(statistics.median(times), 2), "calls": calls, "via": via,
            "times_s": [round(t, 2) for t in times]}


def analyzer_variants(rows, probes, s: Settings) -> dict:
    """Lexical hit@k for analyzer settings other than the chosen ones, each on its own collection."""
    chosen = dict(bm25.ANALYZER_OPTIONS)
    variants = {"chosen": chosen, "ascii_folding": {**chosen, "ascii_folding": True},
                "no_turkish_case": {**chosen, "turkish_case": False},
                "no_stemmer": {**chosen, "stemmer": False}, "no_stopwords": {**chosen, "stopwords": False}}
    out = {}
    try:
        for name, options in variants.items():
            bm25.ANALYZER_OPTIONS.update(options)
            bm25.analyzer.cache_clear()
            vs = s.model_copy(update={"collection": f"{COLLECTION}-{name}"})
            built = build_collection(rows, vs)
            scores = evaluate(probes, vs, modes=("lexical",), rounds=1)
            out[name] = {"options": options, "bm25_chunks_per_s": built["bm25_chunks_per_s"],
                         **{kind: {m: v for m, v in scores[kind].items()} for kind in ("sentence", "ascii", "lower", "case")}}
    finally:
        bm25.ANALYZER_OPTIONS.update(chosen)
        bm25.analyzer.cache_clear()
    return out


def table(result: dict) -> str:
    q = result["quality"]
    lines = ["| mode | sentence hit@1 | hit@5 | hit@10 | case-number hit@1 | lower-case hit@5 | ascii-typed hit@5 "
             "| median query ms |", "|---|---|---|---|---|---|---|---|"]
    for m in MODES:
        sq, cq, aq, lq = q["sentence"][m], q["case"][m], q["ascii"][m], q["lower"][m]
        lines.append(f"| {m} | {sq['hit@1']:.3f} | {sq['hit@5']:.3f} | {sq['hit@10']:.3f} | {cq['hit@1']:.3f} | "
                     f"{lq['hit@5']:.3f} | {aq['hit@5']:.3f} | {q['latency_ms'][m]:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", default="/tmp/kademe-bench-search")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cli-calls", type=int, default=7)
    parser.add_argument("--analyzers", action="store_true", help="also compare analyzer settings")
    args = parser.parse_args()
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    s = Settings(workdir=args.workdir, collection=COLLECTION, model=DEFAULT_MODEL)
    info = {"machine": machine(), "versions": versions(VERSIONS), "date": time.strftime("%Y-%m-%d"),
            "analyzer": {"language": s.bm25_language, **bm25.ANALYZER_OPTIONS,
                         "fingerprint": bm25.analyzer_fingerprint(s.bm25_language)}}
    rows = load_decisions()
    probes = build_probes(rows)
    print(f"{len(rows)} decisions, {probes['twins']} with a near-twin; probes: {len(probes['sentence'])} sentence, "
          f"{len(probes['case'])} case-number", file=sys.stderr)
    build = build_collection(rows, s)
    print(f"built: {build}", file=sys.stderr)
    quality = evaluate(probes, s, rounds=args.rounds)
    result = {**info, "build": build, "probes": {k: len(probes[k]) for k in ("sentence", "ascii", "lower", "case")},
              "near_twins": probes["twins"], "rounds": args.rounds, "quality": quality,
              "examples": {k: probes[k][:3] for k in ("sentence", "case")}}
    result["cli"] = cli_latency(s, [p["query"] for p in probes["sentence"][:3]] + [p["query"] for p in probes["case"][:3]],
                                args.cli_calls)
    if args.analyzers:
        result["analyzers"] = analyzer_variants(rows, probes, s)
    result["table"] = table(result)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "search.json").write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    print(result["table"])
    print(f"\nkademe search (subprocess, 2 cores, via {result['cli']['via']}): median {result['cli']['median_s']} s "
          f"over {args.cli_calls} calls")
    print(f"bm25 vectors: {build['bm25_chunks_per_s']} chunks/s")
    if args.analyzers:
        for name, v in result["analyzers"].items():
            print(f"analyzer {name:14s} lexical sentence@5 {v['sentence']['lexical']['hit@5']:.3f} "
                  f"lower@5 {v['lower']['lexical']['hit@5']:.3f} ascii@5 {v['ascii']['lexical']['hit@5']:.3f} "
                  f"case@1 {v['case']['lexical']['hit@1']:.3f} | {v['bm25_chunks_per_s']} chunks/s")


if __name__ == "__main__":
    main()
