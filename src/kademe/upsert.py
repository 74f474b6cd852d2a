"""The upsert stage: a partition's chunks, dense and sparse vectors into the store, then prune.

Point ids are deterministic (``kademe.chunk.point_id`` over corpus, doc_id and chunk index), so a
re-upsert overwrites and never duplicates. Every count, scroll and delete is filtered on the
partition ``(corpus, year)``: a run of one corpus never touches another corpus's points.

A night writes the change, not the year (issue 29): against the digests of the checkpoint the
store holds (``kademe.delta``), only new and changed points are upserted and the withdrawn ones
deleted; a night with no change writes nothing to the store. Without digests (the first run, a
workdir from before, a store changed by hand) the stage upserts every point and prunes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from kademe.checkpoint import Checkpoint, shard_count
from kademe.keys import chain_key
from kademe.partition import Partition
from kademe.chunks import ChunkResult
from kademe.delta import StoreState, point_digests, read_digests, read_state, touched_ids, write_digests, write_state
from kademe.models import resolve_model, vector_name
from kademe.embed.feed import ShardFeed
from kademe.embed.vectors import EmbedVectors
from kademe.embed.stage import EmbedResult, embed_key
from kademe.errors import KademeError
from kademe.faults import crash_point
from kademe.settings import Settings
from kademe.lexical.shards import read_sparse
from kademe.lexical.stage import SparseResult
from kademe.store import SPARSE, PointBatch, Store, Where, open_store

BUFFER_POINTS = 16_384  # changed points a delta holds in memory (~70 MB at 1024 dims); more are read again
DELETE_POINTS = 4096  # withdrawn points per delete request
PAYLOAD_FIELDS = ("corpus", "doc_id", "year", "chunk_index", "text", "date", "chamber", "esas_no", "karar_no")


@dataclass(frozen=True)
class UpsertResult:
    """``upserted``: the partition's points in the store after the run; ``written`` / ``pruned`` /
    ``unchanged``: what this run wrote, deleted and left as it was (issue 29)."""

    key: str
    upserted: int
    pruned: int
    cached: bool
    seconds: float = 0.0
    written: int = 0
    unchanged: int = 0

    @property
    def points(self) -> dict[str, int]:
        """``{"written", "deleted", "unchanged"}``: the summary's ``changes.points``."""
        return {"written": self.written, "deleted": self.pruned, "unchanged": self.unchanged}


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


def upsert_key(embed_key: str, lexical_key: str, s: Settings) -> str:
    """The upsert checkpoint's key: the embed and lexical checkpoints' keys and the store settings."""
    return chain_key(embed_key, lexical_key, s.fingerprint("upsert"))


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
    ekey = embedded.key if embedded else embed_key(chunks.key, s, year)
    vectors = part.checkpoint("embed", ekey)  # read shard by shard, as the embed stage commits them
    cp = part.checkpoint("upsert", upsert_key(ekey, sparse.key, s))
    try:
        with open_store(s) as store:
            return _upsert(cp, store, part, chunks, sparse, vectors, s, feed)
    finally:
        if feed:
            feed.leave()


def _upsert(cp: Checkpoint, store: Store, part: Partition, chunks: ChunkResult, sparse: SparseResult, vectors: Checkpoint,
            s: Settings, feed: ShardFeed | None) -> UpsertResult:
    created = ensure_collection(store, s)
    state = read_state(part, s)
    held = 0 if created else store.count(Where(part.corpus, part.year))
    if not created and store_holds(state, cp.key) and held == chunks.count and (meta := cp.hit()) is not None:
        return UpsertResult(cp.key, meta["upserted"], 0, cached=True, unchanged=chunks.count)
    cp.crash("start")
    base, forced = None, set()
    if not created and state is not None and state.applied and (state.clean or state.touched is not None):
        base = read_digests(part, state.applied)
        if base is not None and state.clean and held != len(base):
            base = None  # the store does not hold what the state says (changed by hand): write everything
        forced = set(state.touched or ())
    run = _Run(cp, store, part, chunks, sparse, vectors, s, feed, state or StoreState())
    return run.whole(created) if base is None else run.delta(base, forced)


def store_holds(state: StoreState | None, key: str) -> bool:
    """Whether the store's state lets the upsert checkpoint ``key`` be a hit: it names ``key`` as applied and no
    run was killed writing the store since (``kademe.delta``); no state at all (a store from before) trusts the count.

    ``kademe status`` asks this too (``kademe.rerun``), so it cannot say "reuse" where an ingest would re-apply a delta.
    """
    return state is None or (state.clean and state.applied == key)


class _Run:
    """One run of the stage over a partition's shards: the whole partition, or the delta against a base."""

    def __init__(self, cp, store, part, chunks, sparse, vectors, s, feed, state: StoreState):
        self.cp, self.store, self.part, self.chunks, self.sparse = cp, store, part, chunks, sparse
        self.vectors, self.s, self.feed, self.state = vectors, s, feed, state
        self.reader = EmbedVectors(vectors)  # an embed checkpoint may be a delta (kademe.embed.vectors)
        self.n_shards = shard_count(chunks.count, s.shard_size)
        self.models = (s.model, s.fallback_model)
        self.checked: set[str] = set()

    def shards(self, follow: bool = True) -> Iterator[tuple[int, list[dict], tuple]]:
        """``(i, chunk rows, (ids, spaces, rungs, dense, sparse))`` of each shard, following the feed
        (``follow``: the first pass; a second reads the committed shards)."""
        feed = self.feed if follow else None
        # aligned with the embed and lexical shards; not the token ids, which only the encoder reads
        rows_iter = self.chunks.rows(self.s.shard_size, columns=["point_id", "meta", *PAYLOAD_FIELDS])
        for i in range(self.n_shards):
            rows = next(rows_iter)
            if feed:
                feed.wait(i)
            ids, spaces, rungs, dense = self.reader.shard(i)  # references to earlier checkpoints resolved
            if new := set(spaces) - self.checked:
                ensure_collection(self.store, self.s, new)
                self.checked |= new
            sparse_ids, sparse_vecs = read_sparse(self.sparse.shard(i))
            in_step(rows, ids, sparse_ids)
            yield i, rows, (ids, spaces, rungs, dense, sparse_vecs)
            _taken(feed)

    def whole(self, created: bool) -> UpsertResult:
        """Upsert every point, shard by shard (resumable), then prune what the chunks no longer produce."""
        cp, s = self.cp, self.s
        resuming = self.state.applying == cp.key or not self.state.applied and self.state.clean
        marked = cp.marked() if resuming and not created else set()
        if not resuming:
            cp.unmark()  # markers of an earlier run of this key vouch for nothing written since
        write_state(self.part, s, StoreState(self.state.applied, cp.key, None))
        ids_all, digests, written = [], [], 0
        for i, rows, (ids, spaces, rungs, dense, sparse_vecs) in self.shards():
            ids_all += ids
            digests += point_digests(rows, spaces, rungs, dense, sparse_vecs, self.models)
            if i in marked:
                continue
            self.store.upsert(point_batches(rows, ids, spaces, rungs, dense, sparse_ids=ids, sparse_vecs=sparse_vecs, s=s))
            written += len(ids)
            crash_point("upsert-batch")
            cp.mark(i, points=len(rows))
            cp.crash("shard")
        cp.crash("prune")
        pruned = prune_partition(self.store, self.chunks, self.part)
        return self.commit(ids_all, digests, written, pruned, unchanged=self.chunks.count - written)

    def delta(self, base: dict[str, bytes], forced: set[str]) -> UpsertResult:
        """Write the points that are new or changed against ``base`` (or ``forced``), delete the withdrawn ones.

        The state names every id this run may touch before the first store write, so a kill in
        the writes or deletes leaves the next run knowing which ids to rewrite.
        """
        cp, s = self.cp, self.s
        ids_all, digests, pending, buffered = [], [], [], 0
        for i, rows, (ids, spaces, rungs, dense, sparse_vecs) in self.shards():
            shard_digests = point_digests(rows, spaces, rungs, dense, sparse_vecs, self.models)
            ids_all += ids
            digests += shard_digests
            changed = [j for j, (pid, d) in enumerate(zip(ids, shard_digests)) if pid in forced or base.get(pid) != d]
            if changed:
                batches = None
                if buffered < BUFFER_POINTS:  # held in memory; beyond it the shard is read again
                    batches = point_batches([rows[j] for j in changed], [ids[j] for j in changed],
                                            [spaces[j] for j in changed], [rungs[j] for j in changed],
                                            [dense[j] for j in changed], [ids[j] for j in changed],
                                            [sparse_vecs[j] for j in changed], s)
                    buffered += len(changed)
                pending.append((i, changed, batches))
        current = set(ids_all)
        withdrawn = sorted(pid for pid in base.keys() | forced if pid not in current)
        writes = {ids_all[i * s.shard_size + j] for i, changed, _ in pending for j in changed}
        if writes or withdrawn:  # before the first store write: which ids a kill would leave in doubt
            write_state(self.part, s, StoreState(self.state.applied, cp.key, touched_ids(forced, writes, set(withdrawn))))
        reread = {i for i, _, batches in pending if batches is None}
        again = {i: (rows, cols) for i, rows, cols in self.shards(follow=False) if i in reread} if reread else {}
        for i, changed, batches in pending:
            if batches is None:  # a large delta: this shard was not held in memory
                rows, (ids, spaces, rungs, dense, sparse_vecs) = again[i]
                batches = point_batches([rows[j] for j in changed], [ids[j] for j in changed], [spaces[j] for j in changed],
                                        [rungs[j] for j in changed], [dense[j] for j in changed], [ids[j] for j in changed],
                                        [sparse_vecs[j] for j in changed], s)
            self.store.upsert(batches)
            crash_point("upsert-delta")
        cp.crash("prune")
        for start in range(0, len(withdrawn), DELETE_POINTS):
            self.store.delete(withdrawn[start:start + DELETE_POINTS])
            crash_point("upsert-delete")
        return self.commit(ids_all, digests, len(writes), len(withdrawn), unchanged=len(current) - len(writes))

    def commit(self, ids: list[str], digests: list[bytes], written: int, pruned: int, unchanged: int) -> UpsertResult:
        cp = self.cp
        write_digests(cp, ids, digests)
        cp.commit(upserted=self.chunks.count, pruned=pruned, written=written, unchanged=unchanged)
        write_state(self.part, self.s, StoreState(applied=cp.key))
        return UpsertResult(cp.key, self.chunks.count, pruned, cached=False, seconds=cp.seconds, written=written,
                            unchanged=unchanged)


def _taken(feed: ShardFeed | None) -> None:
    if feed:
        feed.taken()


def in_step(rows: list[dict], ids: list[str], sparse_ids: list[str]) -> None:
    """Raise unless a shard's chunk rows, dense vectors and sparse vectors name the same points in the same order."""
    if [r["point_id"] for r in rows] != ids or ids != sparse_ids:
        raise KademeError(f"Checkpoints of partition out of step at point {rows[0]['point_id'] if rows else '?'}.\n\n"
                          "Delete the partition's embed-* and lexical-* checkpoints and rerun.")


def point_batches(rows: list[dict], ids: list[str], spaces: list[str], rungs: list[str], vectors: list[np.ndarray],
                  sparse_ids: list[str], sparse_vecs: list, s: Settings) -> list[PointBatch]:
    """One ``PointBatch`` per vector space in the shard (usually one: the primary model's)."""
    in_step(rows, ids, sparse_ids)
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


def prune_partition(store: Store, chunks: ChunkResult, part: Partition) -> int:
    """Delete the partition's points that the current chunks no longer produce (a setting changed, a decision withdrawn).

    ``chunks.files`` are the committed chunk checkpoint's parts (a writer that lost the commit race
    holds the winner's), so the prune compares against the committed winner only.
    """
    expected = chunks.point_ids()
    stale = [pid for pid, _ in store.scroll(Where(part.corpus, part.year), fields=()) if pid not in expected]
    for start in range(0, len(stale), DELETE_POINTS):
        store.delete(stale[start:start + DELETE_POINTS])
    return len(stale)
