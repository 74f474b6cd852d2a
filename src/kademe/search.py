"""Hybrid search: dense and BM25 prefetches fused by RRF, case numbers first, one hit per decision.

``search(query, s)`` opens the store (``open_store``), embeds the query once per dense space present in
the collection (the primary model's and, for degraded years, the fallback model's), adds the ``bm25``
query vector from ``kademe.lexical.bm25`` and lets the engine fuse them (``Store.query``: Prefetch +
Fusion.RRF). Case numbers in the query (``2022/14549 E., 2023/4695 K.``) are looked up through the
keyword payload indexes on ``esas_no``/``karar_no`` (a filtered query, not a scan) and their decisions
rank first. Results are grouped by decision: the best chunk of each, over-fetching until ``top_k``
decisions or the collection runs out.

Only what a query needs is imported: numpy, Qdrant Edge (or qdrant-client for a server) and the
model's weights through ``kademe.embed.query`` — no torch, no sentence-transformers, no Prefect.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from kademe.casenumbers import normalize_case_number, parse_case_numbers  # noqa: F401 - re-exported
from kademe.errors import KademeError
from kademe.settings import Settings

Mode = Literal["hybrid", "dense", "lexical"]
MODES = ("hybrid", "dense", "lexical")
HIT_FIELDS = ("corpus", "doc_id", "chunk_index", "year", "chamber", "esas_no", "karar_no", "date", "text")
OVERFETCH = 4  # chunks asked for per wanted decision in the first round; doubled until enough decisions
MAX_FETCH = 4096

def _no_bm25(s: Settings) -> KademeError:
    return KademeError(f"Collection '{s.collection}' was made before hybrid search: its points have no bm25 sparse "
                       "vector, so lexical and hybrid search cannot run on it.\n\n"
                       f"Re-upsert it from the checkpoints into a new collection (the embeddings are reused): "
                       f"kademe ingest --source ... --years ... --workdir {s.workdir} --collection {s.collection}-hybrid; "
                       "or search this one with --mode dense.")


def _dense_queries(query: str, s: Settings, store, spaces: dict[str, int], where) -> tuple[list, list[dict]]:
    """``(name, vector)`` per dense space that can be searched, and what could not, with why."""
    from kademe.models import vector_name
    from kademe.embed.query import encode_query
    from kademe.store import Where

    models = {vector_name(s.model): s.model}
    if s.fallback_model:
        models.setdefault(vector_name(s.fallback_model), s.fallback_model)
    queries, skipped = [], []
    for name in spaces:
        model = models.get(name)
        scope = Where(corpus=where.corpus, year=where.year, has_vector=name)
        if model is None or name != vector_name(s.model):
            points = store.count(scope)
            if points == 0:
                continue
            if model is None:
                skipped.append({"space": name, "points": points,
                                "why": f"no model given for vector '{name}' (pass --model or --fallback-model)"})
                continue
        try:
            queries.append((name, encode_query(query, model)))
        except KademeError as e:
            skipped.append({"space": name, "points": store.count(scope), "why": str(e).split("\n")[0]})
    return queries, skipped


def _decisions(hits, seen: set, limit: int) -> list:
    """The first hit of each decision not in ``seen`` (hits come best first), at most ``limit``."""
    out = []
    for hit in hits:
        key = (hit.payload.get("corpus"), hit.payload.get("doc_id"))
        if key in seen:
            continue
        seen.add(key)
        out.append(hit)
        if len(out) == limit:
            break
    return out


def _grouped(store, dense: Sequence, sparse, where, top_k: int, seen: set) -> list:
    """Best chunk of each of ``top_k`` new decisions, over-fetching until enough or exhausted."""
    limit = top_k * OVERFETCH
    while True:
        hits = store.query(dense=dense, sparse=sparse, where=where, limit=limit, prefetch_limit=max(limit, 100))
        trial = set(seen)
        picked = _decisions(hits, trial, top_k)
        if len(picked) == top_k or len(hits) < limit or limit >= MAX_FETCH:
            seen.update(trial)
            return picked
        limit *= 4


def _matching(store, keyed, seen: set, need: int) -> list:
    """Decisions whose case numbers match but whose chunks share nothing with the query vectors.

    A filtered scroll on the keyword indexes (``esas_no``/``karar_no``), not a scan; each such
    decision is represented by its first chunk, with score 0.
    """
    from kademe.store import Hit

    first: dict = {}
    if need <= 0:
        return []
    for pid, payload in store.scroll(keyed, HIT_FIELDS, limit=256):
        key = (payload.get("corpus"), payload.get("doc_id"))
        if key in seen:
            continue
        if key not in first or payload.get("chunk_index", 0) < first[key].payload.get("chunk_index", 0):
            first[key] = Hit(pid, 0.0, payload)
    hits = sorted(first.values(), key=lambda h: (str(h.payload.get("doc_id")), h.payload.get("chunk_index", 0)))[:need]
    seen.update((h.payload.get("corpus"), h.payload.get("doc_id")) for h in hits)
    return hits


def _hit(hit, matched: list[str]) -> dict:
    out = {name: hit.payload.get(name) for name in HIT_FIELDS}
    out["score"] = round(hit.score, 6)
    if matched:
        out["matched"] = matched
    return out


def search(query: str, s: Settings, *, mode: Mode = "hybrid", year: int | None = None, corpus: str | None = None,
           top_k: int = 5, store=None) -> dict:
    """The ``top_k`` decisions that best answer ``query``, one hit (the best chunk) each.

    Args:
        query: free text, a sentence, a party name or case numbers (``2022/14549 E., 2023/4695 K.``).
        s: settings (``collection``, ``workdir``/``qdrant_url``, ``model``, ``fallback_model``, ``bm25_language``).
        mode: ``hybrid`` (RRF of dense and bm25 prefetches), ``dense`` or ``lexical``.
        year: only this year.
        corpus: only this corpus.
        top_k: decisions to return.
        store: an open ``Store`` to use (many queries in one process); default: ``open_store(s)``.

    Returns:
        ``{"hits": [...], "mode", "query", "case_numbers", "spaces", "not_searched"}``; each hit has
        ``doc_id, chunk_index, score, text, year, chamber, esas_no, karar_no, date, corpus`` and, for a
        decision found by its case number, ``matched`` (``["esas_no", "karar_no"]``). ``not_searched``
        lists dense spaces holding points that could not be searched, and why.

    Raises:
        KademeError: an empty query, unknown mode, no such collection, or no bm25 vector where the mode needs one.

    Example:
        >>> search("2022/14549 E., 2023/4695 K.", Settings(workdir="work", collection="kararlar"))["hits"][0]["esas_no"]
        '2022/14549'
    """
    from kademe.lexical.bm25 import sparse_query
    from kademe.store import SPARSE, Where, missing_collection, open_store

    if mode not in MODES:
        raise KademeError(f"Unknown search mode {mode!r}.\n\nUse --mode hybrid, dense or lexical.")
    if not query.strip():
        raise KademeError("The query is empty: give words, a sentence or case numbers to search for.")
    if mode != "lexical":
        from kademe.models import resolve_model

        resolve_model(s.model)  # an unknown --model is the user's mistake, not a lexical-only search (issue 30)
    if store is None:
        with open_store(s) as opened:
            return search(query, s, mode=mode, year=year, corpus=corpus, top_k=top_k, store=opened)
    where = Where(corpus=corpus, year=year)
    cases = parse_case_numbers(query)
    info = store.info()
    if info is None:
        raise missing_collection(s)
    if mode != "dense" and SPARSE not in info.sparse:
        raise _no_bm25(s)
    dense, skipped = _dense_queries(query, s, store, info.dense, where) if mode != "lexical" else ([], [])
    sparse = sparse_query(query, s.bm25_language) if mode != "dense" else None
    if sparse is not None and sparse[0].size == 0:
        sparse = None  # stopwords only
    hits: list[dict] = []
    if dense or sparse is not None:
        seen: set = set()
        if cases["esas"] or cases["karar"]:
            keyed = Where(corpus=corpus, year=year, any_of={"esas_no": cases["esas"], "karar_no": cases["karar"]})
            found = _grouped(store, dense, sparse, keyed, top_k, seen)
            found += _matching(store, keyed, seen, top_k - len(found))
            ranked = sorted(((_matched(h, cases), i, h) for i, h in enumerate(found)), key=lambda t: (-len(t[0]), t[1]))
            hits = [_hit(h, m) for m, _, h in ranked]
        if len(hits) < top_k:
            hits += [_hit(h, []) for h in _grouped(store, dense, sparse, where, top_k - len(hits), seen)]
    return {"hits": hits, "mode": mode, "query": query, "case_numbers": cases,
            "spaces": [name for name, _ in dense] + ([SPARSE] if sparse is not None else []), "not_searched": skipped}


def _matched(hit, cases: dict[str, list[str]]) -> list[str]:
    p = hit.payload
    return [f for f, kind in (("esas_no", "esas"), ("karar_no", "karar"))
            if normalize_case_number(p.get(f) or "") in cases[kind]]


def format_hits(result: dict) -> str:
    """Human-readable lines for ``kademe search``: score, decision, case numbers, the chunk's start.

    Example:
        >>> print(format_hits({"hits": [], "mode": "hybrid", "not_searched": []}))
        no hits (hybrid)
    """
    lines = []
    for h in result["hits"]:
        text = " ".join((h.get("text") or "").split())
        numbers = " ".join(f"{h[f]} {label}" for f, label in (("esas_no", "E."), ("karar_no", "K.")) if h.get(f))
        lines.append(f"{h['score']:.3f}  {h['doc_id']}#{h['chunk_index']} ({h.get('year')})  "
                     f"{h.get('chamber') or ''} {numbers}".rstrip()
                     + ("  [case number]" if h.get("matched") else "") + f"\n       {text[:110]}{'…' if len(text) > 110 else ''}")
    if not lines:
        lines.append(f"no hits ({result['mode']})")
    for skip in result.get("not_searched", []):
        lines.append(f"not searched: {skip['points']} points in vector space '{skip['space']}': {skip['why']}")
    return "\n".join(lines)

