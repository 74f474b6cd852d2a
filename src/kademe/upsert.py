"""The upsert stage: a partition's chunks, dense and sparse vectors into the store, then prune.

Point ids are deterministic (``kademe.chunk.point_id`` over corpus, doc_id and chunk index), so a
re-upsert overwrites and never duplicates. Every count, scroll and delete is filtered on the
partition ``(corpus, year)``: a run of one corpus never touches another corpus's points.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pyarrow.parquet as pq

from kademe.keys import chain_key
from kademe.parquet_io import iter_parquet
from kademe.partition import Partition
from kademe.chunk import ChunkResult
from kademe.models import resolve_model, vector_name
from kademe.embed.feed import ShardFeed
from kademe.embed.shards import read_shard
from kademe.embed.stage import EmbedResult, embed_key
from kademe.errors import KademeError
from kademe.faults import crash_point
from kademe.settings import Settings
from kademe.lexical.stage import SparseResult, read_sparse
from kademe.store import SPARSE, PointBatch, Store, Where, open_store

PAYLOAD_FIELDS = ("corpus", "doc_id", "year", "chunk_index", "text", "date", "chamber", "esas_no", "karar_no")


@dataclass(frozen=True)
class UpsertResult:
    key: str
    upserted: int
    pruned: int
    cached: bool
    seconds: float = 0.0


def collection_spaces(s: Settings) -> dict[str, int]:
    """Vector name -> size for the primary model and, if set, the fallback model (their real output)."""
    from kademe.embed.model import embedding_dims

    names = [s.model] + ([s.fallback_model] if s.fallback_model else [])
    return {vector_name(m): embedding_dims(resolve_model(m)) for m in names}


def ensure_collection(store: Store, s: Settings, writes: set[str] = frozenset()) -> bool:
    """Create the collection if missing; check an existing one. Returns True when created now.

    The collection always gets the primary model's vector, the fallback model's when one is set (a
    degraded year needs that slot), and the ``bm25`` sparse vector.
    """
    spaces = collection_spaces(s)
    info = store.info()
    if info is None:
        store.create(spaces, (SPARSE,))
        return True
    for name in {vector_name(s.model)} | set(writes):
        if name not in info.dense:
            raise KademeError(f"Collection '{s.collection}' has vectors {sorted(info.dense)} but not '{name}'.\n\n"
                              "It was made with another model or without --fallback-model; pass those, or another --collection.")
        if info.dense[name] != spaces[name]:
            raise KademeError(f"Collection '{s.collection}' stores vector '{name}' with size {info.dense[name]}, "
                              f"but the model gives {spaces[name]}.\n\nUse another --collection or the model it was made with.")
    if SPARSE not in info.sparse:
        raise KademeError(f"Collection '{s.collection}' has no '{SPARSE}' sparse vector (it was made before hybrid search).\n\n"
                          f"Re-upsert from the checkpoints into a new collection: rerun kademe ingest with --collection "
                          f"{s.collection}-v2 (nothing is re-embedded).")
    return False


def upsert_points(chunks: ChunkResult, sparse: SparseResult, year: int, s: Settings,
                  feed: ShardFeed | None = None, embedded: EmbedResult | None = None) -> UpsertResult:
    """Upsert a partition's points shard by shard (resumable), then delete its stale points.

    Args:
        chunks, sparse: the chunk and lexical stages' results.
        year: the year (the partition is ``(s.corpus, year)``).
        s: settings.
        feed: follow an embed stage running alongside: upsert each shard as it lands.
        embedded: the finished embed stage's result, when not following a feed.

    Returns:
        An ``UpsertResult`` with the points written and the stale ones removed.
    """
    part = s.partition(year)
    ekey = embedded.key if embedded else embed_key(chunks, s, year)
    vectors = part.checkpoint("embed", ekey)  # read shard by shard, as the embed stage commits them
    cp = part.checkpoint("upsert", chain_key(ekey, sparse.key, s.fingerprint("upsert")))
    try:
        with open_store(s) as store:
            return _upsert(cp, store, part, chunks, sparse, vectors, s, feed)
    finally:
        if feed:
            feed.leave()


def _upsert(cp, store: Store, part: Partition, chunks: ChunkResult, sparse: SparseResult, vectors, s: Settings,
            feed: ShardFeed | None) -> UpsertResult:
    created = ensure_collection(store, s)
    if not created and (meta := cp.hit()) is not None and store.count(Where(part.corpus, part.year)) == chunks.count:
        return UpsertResult(cp.key, meta["upserted"], 0, cached=True)
    cp.crash("start")
    n_shards = -(-chunks.count // s.shard_size)
    # aligned with the embed and lexical shards; not the token ids, which only the encoder reads
    rows_iter = iter_parquet(chunks.chunks, batch_size=s.shard_size, columns=["point_id", "meta", *PAYLOAD_FIELDS])
    checked: set[str] = set()
    marked = cp.marked()
    for i in range(n_shards):
        rows = next(rows_iter)
        if feed:
            feed.wait(i)
        if i in marked and not created:
            _taken(feed)
            continue
        ids, spaces, rungs, dense = read_shard(vectors.shard_file(i))
        new = set(spaces) - checked
        if new:
            ensure_collection(store, s, new)
            checked |= new
        sparse_ids, sparse_vecs = read_sparse(sparse.shard(i))
        store.upsert(point_batches(rows, ids, spaces, rungs, dense, sparse_ids, sparse_vecs, s))
        crash_point("upsert-batch")
        cp.mark(i, points=len(rows))
        cp.crash("shard")
        _taken(feed)
    cp.crash("prune")
    pruned = prune_partition(store, chunks, part)
    cp.commit(upserted=chunks.count, pruned=pruned)
    return UpsertResult(cp.key, chunks.count, pruned, cached=False, seconds=cp.seconds)


def _taken(feed: ShardFeed | None) -> None:
    if feed:
        feed.taken()


def point_batches(rows: list[dict], ids: list[str], spaces: list[str], rungs: list[str], vectors: list[np.ndarray],
                  sparse_ids: list[str], sparse_vecs: list, s: Settings) -> list[PointBatch]:
    """One ``PointBatch`` per vector space in the shard (usually one: the primary model's)."""
    if [r["point_id"] for r in rows] != ids or ids != sparse_ids:
        raise KademeError(f"Checkpoints of partition out of step at point {rows[0]['point_id'] if rows else '?'}.\n\n"
                          "Delete the partition's embed-* and lexical-* checkpoints and rerun.")
    groups: dict[str, list[int]] = defaultdict(list)
    for j, space in enumerate(spaces):
        groups[space].append(j)
    batches = []
    for space, idx in groups.items():
        payloads = [_payload(rows[j], rungs[j], s) for j in idx]
        batches.append(PointBatch([ids[j] for j in idx], payloads, space, np.stack([vectors[j] for j in idx]),
                                  [sparse_vecs[j] for j in idx]))
    return batches


def _payload(row: dict, rung: str, s: Settings) -> dict:
    degraded = rung == "gpu-small"
    payload = json.loads(row["meta"] or "{}")
    payload.update({k: row[k] for k in PAYLOAD_FIELDS})
    payload.update(model=s.fallback_model if degraded else s.model, degraded=degraded, rung=rung)
    return payload


def expected_ids(chunks_path) -> set[str]:
    return set(pq.read_table(chunks_path, columns=["point_id"]).column("point_id").to_pylist())


def prune_partition(store: Store, chunks: ChunkResult, part: Partition) -> int:
    """Delete the partition's points that the current chunks no longer produce (a setting changed, a decision withdrawn).

    ``chunks.chunks`` is the committed chunk checkpoint's file (a writer that lost the commit race
    holds the winner's), so the prune compares against the committed winner only.
    """
    expected = expected_ids(chunks.chunks)
    stale = [pid for pid, _ in store.scroll(Where(part.corpus, part.year), fields=()) if pid not in expected]
    for start in range(0, len(stale), 4096):
        store.delete(stale[start:start + 4096])
    return len(stale)
