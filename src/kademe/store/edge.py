"""Qdrant Edge: the Qdrant engine in-process, one ``EdgeShard`` per collection folder.

The folder ``<workdir>/qdrant/<collection>`` holds the shard (``edge_config.json``, ``segments/``,
``wal/``). Writes go to the write-ahead log first, so a process killed mid-upsert leaves a store
that loads (tests/test_store.py kills one). One process owns a folder at a time: the engine's own
WAL lock only says ``WouldBlock``, so ``open`` takes an ``fcntl`` lock on ``<folder>/.kademe.lock``
first and says plainly who to wait for (``kademe.store.folder``: the holder writes its pid,
command and start time there). Opening a folder that does not exist creates nothing (a search
or count of a missing collection leaves no trace); ``create`` makes the folder. Holding the lock, ``open`` removes what a build
killed mid-way left in ``temp_segments/`` (the engine itself never does: ~4 GB at 1M points).

The collection's HNSW, optimizer and quantization settings come from ``kademe.store.design``;
queries carry its search parameters (``hnsw_ef``, rescoring) when the collection has them.
``kademe.store.edge_shapes`` turns the design, filters and point batches into the engine's types.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from qdrant_edge import (
    CountRequest,
    Distance,
    EdgeShard,
    Fusion,
    IntegerIndexParams,
    KeywordIndexParams,
    Memory,
    Modifier,
    PayloadSchemaType,
    PayloadSelector,
    Prefetch,
    Query,
    QueryRequest,
    ScrollRequest,
    SearchParams,
    UpdateOperation,
)

from kademe.errors import KademeError
from kademe.faults import crash_watcher
from kademe.store.base import (
    INTEGER_FIELDS,
    KEYWORD_FIELDS,
    RRF_K,
    SPARSE,
    CollectionInfo,
    Hit,
    Location,
    PointBatch,
    Segment,
    Store,
    Where,
    call,
    coverage,
)
from kademe.store.edge_segments import read_segments
from kademe.store.design import DESIGN, Design, rebuild_hint
from kademe.store.edge_shapes import (
    designed,
    edge_config,
    edge_filter,
    edge_points,
    search_params,
    sparse_vector,
)
from kademe.store.folder import TEMP_SEGMENTS, FolderLock, clear_temp_segments

__all__ = ["EdgeStore", "designed", "edge_filter", "edge_points", "search_params"]

UPDATE_POINTS = 2048  # points per engine update: large enough to amortise, small enough to stay ~10 MB
SHARED_VALUES = ("corpus",)  # keyword fields whose values many points share: in every filter, the tenant index
FLUSH_POINTS = 50_000  # flush (acknowledge the WAL) after this many points: bounds what the next open replays
_said_legacy: set[str] = set()  # folders already told they lack the issue-18 settings (once per process)


class EdgeStore(Store):
    """One collection as a Qdrant Edge shard in a folder. Open with ``EdgeStore.open(path)``."""

    backend = "edge"

    def __init__(self, path: Path, lock: FolderLock | None, shard: EdgeShard | None):
        self.path = path
        self.where = str(path)
        self._lock = lock
        self._shard = shard
        self._params: SearchParams | None = None
        self._unflushed = 0
        if shard is not None:
            self._params = search_params(self._config())

    @staticmethod
    def locate(path: Path, collection: str) -> Location:
        """Where the collection ``collection`` lives (``path``) and, when nothing is there, why."""
        held = (Path(path) / "edge_config.json").is_file()
        return Location("edge", str(path), "" if held else f"no collection '{collection}' at '{path}'")

    @staticmethod
    def collections(root: Path) -> list[str]:
        """The collections under ``root`` (``<workdir>/qdrant``): its folders that hold a shard, sorted."""
        root = Path(root)
        return sorted(p.name for p in root.iterdir() if (p / "edge_config.json").is_file()) if root.is_dir() else []

    @classmethod
    def open(cls, path: Path) -> EdgeStore:
        """Open (and lock) the store in ``path``; ``info()`` is None until ``create()``.

        A folder that does not exist is not created (nothing to lock, nothing to read): the store
        answers as empty. Holding the lock, ``open`` clears ``temp_segments/`` (a killed build's
        leftovers) and says once per process when the collection predates the issue-18 settings.

        Raises:
            StoreBusy: another process has the folder open (it says which, since when).

        Example:
            >>> with EdgeStore.open(Path("work/qdrant/kararlar")) as store:
            ...     store.info()
        """
        path = Path(path)
        if not path.is_dir():
            return cls(path, None, None)
        lock = FolderLock(path)
        try:
            clear_temp_segments(path)
            shard = None
            if (path / "edge_config.json").exists():
                shard = call("open", EdgeShard.load, str(path), where=str(path))
            store = cls(path, lock, shard)
            if shard is not None and not designed(store._config()) and str(path) not in _said_legacy:
                _said_legacy.add(str(path))
                sys.stderr.write(rebuild_hint(str(path)))
            return store
        except BaseException:
            lock.release()
            raise

    # -- the collection --------------------------------------------------------------------
    def _config(self) -> dict:
        return json.loads((self.path / "edge_config.json").read_text())

    def info(self) -> CollectionInfo | None:
        if self._shard is None:
            return None
        config = self._config()
        points = call("info", self._shard.count, CountRequest(exact=True), where=self.where)
        return CollectionInfo(dense={name: int(v["size"]) for name, v in config.get("vectors", {}).items()},
                              sparse=tuple(config.get("sparse_vectors", {})), points=points)

    def create(self, dense: dict[str, int], sparse: Sequence[str] = (SPARSE,), design: Design = DESIGN) -> None:
        """Create the collection with ``design`` (``kademe.store.design``), payload indexes first.

        The ``year`` and ``corpus`` indexes exist before any point arrives, so every segment the
        engine builds carries them (``is_principal`` / ``is_tenant``: the planner's hint that
        searches filter on them).
        """
        if self._shard is not None:
            raise KademeError(f"The Qdrant Edge store at '{self.path}' already holds a collection.\n\n"
                              "Use add_vectors to add vector names, or delete the folder to start over.")
        if self._lock is None:  # opened on a folder that did not exist: make it, and hold it from now on
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock = FolderLock(self.path)
        self._shard = call("create", EdgeShard.create, str(self.path), edge_config(dense, sparse, design),
                           where=self.where)
        for name in KEYWORD_FIELDS:
            # Memory-mapped, not read into the heap at every open: one value per decision (doc_id,
            # case numbers) is looked up a few at a time, and the tenant's heap copy cost ~0.13 s of
            # every open per 400,000 points (issue 18: open <= 0.5 s at 1M points).
            if name in SHARED_VALUES:
                schema = PayloadSchemaType.Keyword if design.legacy else KeywordIndexParams(is_tenant=True, memory=Memory.Cold)
            else:
                schema = KeywordIndexParams(memory=Memory.Cold)
            self._update("create_index", UpdateOperation.create_field_index(name, schema))
        for name in INTEGER_FIELDS:  # year: memory-mapped as well (a heap copy was rebuilt at every open)
            schema = IntegerIndexParams(lookup=True, range=True, memory=Memory.Cold,
                                        is_principal=None if design.legacy else True)
            self._update("create_index", UpdateOperation.create_field_index(name, schema))
        self._params = search_params(self._config(), design)

    def add_vectors(self, dense: dict[str, int], sparse: Sequence[str] = ()) -> None:
        have = self._require()
        for name, size in dense.items():
            if name in have.dense:
                if have.dense[name] != size:
                    raise KademeError(f"Vector '{name}' already exists with size {have.dense[name]}, not {size}.\n\n"
                                      "Use another collection for a model of another size.")
                continue
            self._update("add_vectors", UpdateOperation.create_dense_vector(name, size, Distance.Cosine))
        for name in sparse:
            if name not in have.sparse:
                self._update("add_vectors", UpdateOperation.create_sparse_vector(name, Modifier.Idf))

    # -- points ----------------------------------------------------------------------------
    def _require(self) -> CollectionInfo:
        self._require_shard()
        return self.info()

    def _require_shard(self) -> None:
        """Raise unless a collection is open (cheap: ``info()`` counts every point, exactly)."""
        if self._shard is None:
            raise KademeError(f"The Qdrant Edge store at '{self.path}' holds no collection yet.\n\n"
                              "Run the upsert stage first (it creates the collection).")

    def _update(self, operation: str, op: UpdateOperation) -> None:
        assert self._shard is not None
        call(operation, self._shard.update, op, where=self.where)

    def upsert(self, batches: Sequence[PointBatch]) -> None:
        """Write the points of one shard in updates of ``UPDATE_POINTS``; each is in the WAL on return."""
        self._require_shard()  # not info(): an exact count of the whole collection at every shard
        for batch in batches:
            for start in range(0, len(batch), UPDATE_POINTS):
                part = PointBatch(batch.ids[start:start + UPDATE_POINTS], batch.payloads[start:start + UPDATE_POINTS],
                                  batch.space, batch.vectors[start:start + UPDATE_POINTS],
                                  batch.sparse[start:start + UPDATE_POINTS] if batch.sparse is not None else None)
                self._update("upsert", UpdateOperation.upsert_points(edge_points(part)))
                self._unflushed += len(part)
        if self._unflushed >= FLUSH_POINTS:  # the WAL an open replays stays short at any size
            call("flush", self._shard.flush, where=self.where)
            self._unflushed = 0

    def delete(self, ids: Sequence[str]) -> None:
        ids = list(ids)
        for start in range(0, len(ids), 8192):
            self._update("delete", UpdateOperation.delete_points(ids[start:start + 8192]))

    def count(self, where: Where) -> int:
        if self._shard is None:
            return 0
        return call("count", self._shard.count, CountRequest(exact=True, filter=edge_filter(where)), where=self.where)

    def scroll(self, where: Where, fields: Sequence[str], limit: int = 4096) -> Iterator[tuple[str, dict]]:
        if self._shard is None:
            return
        flt, offset = edge_filter(where), None
        payload = PayloadSelector.Include(list(fields)) if fields else False
        while True:
            request = ScrollRequest(offset=offset, limit=limit, filter=flt, with_payload=payload, with_vector=False)
            records, offset = call("scroll", self._shard.scroll, request, where=self.where)
            for r in records:
                yield str(r.id), dict(r.payload or {})
            if offset is None:
                return

    def query(
        self,
        *,
        dense: Sequence[tuple[str, np.ndarray]] = (),
        sparse: tuple[np.ndarray, np.ndarray] | None = None,
        where: Where | None = None,
        limit: int = 10,
        prefetch_limit: int = 100,
    ) -> list[Hit]:
        if self._shard is None:
            return []
        queries = [Query.Nearest(np.asarray(v, dtype=np.float32), using=name) for name, v in dense]
        if sparse is not None:
            queries.append(Query.Nearest(sparse_vector(sparse), using=SPARSE))
        if not queries:
            raise ValueError("query needs at least one dense or sparse query vector")
        flt, params = edge_filter(where), self._query_params(where)
        if len(queries) == 1:
            request = QueryRequest(limit=limit, query=queries[0], filter=flt, with_payload=True, with_vector=False,
                                   params=params)
        else:
            request = QueryRequest(limit=limit, query=Fusion.Rrf(k=RRF_K), with_payload=True, with_vector=False,
                                   prefetches=[Prefetch(limit=prefetch_limit, query=q, filter=flt, params=params)
                                               for q in queries])
        points = call("query", self._shard.query, request, where=self.where)
        return [Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in points]

    def segments(self) -> list[Segment]:
        """The shard's segments, read from its folder (``kademe.store.edge_segments``), largest first."""
        if self._shard is None:
            return []
        call("flush", self._shard.flush, where=self.where)  # the deleted bitmaps on disk say what the engine knows
        return read_segments(self.path)

    def _query_params(self, where: Where | None) -> SearchParams | None:
        """The design's search parameters, or an exact scan when the filter matches few points (``Design.exact_points``)."""
        if self._params is None or where is None or not DESIGN.exact_points or self.count(where) > DESIGN.exact_points:
            return self._params
        return SearchParams(exact=True)

    def index_state(self) -> dict:
        if self._shard is None:
            return {"state": "unknown"}
        info = call("index_state", self._shard.info, where=self.where)
        return {"state": coverage(info.indexed_vectors_count, info.points_count), "segments": info.segments_count,
                "points": info.points_count, "indexed_vectors": info.indexed_vectors_count}

    def optimize(self) -> float:
        """Build the HNSW and payload indexes in-process (blocks); seconds spent."""
        if self._shard is None:
            return 0.0
        started = time.perf_counter()
        # KADEME_FAULT_CRASH_AT=index-build: killed once a segment is being built (from another
        # process: the binding holds the GIL for the whole optimize(), no thread of ours runs)
        watcher = crash_watcher("index-build", self.path / TEMP_SEGMENTS, "segment_builder*")
        try:
            call("optimize", self._shard.optimize, where=self.where)
        finally:
            if watcher is not None:
                watcher.kill()
                watcher.wait()
        call("flush", self._shard.flush, where=self.where)
        self._unflushed = 0
        return time.perf_counter() - started

    def close(self) -> None:
        if self._shard is not None:
            shard, self._shard = self._shard, None
            shard.flush()  # pending changes on disk before the next process opens the folder
            shard.close()
        if self._lock is not None:
            self._lock.release()
