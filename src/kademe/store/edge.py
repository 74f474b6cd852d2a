"""Qdrant Edge: the Qdrant engine in-process, one ``EdgeShard`` per collection folder.

The folder ``<workdir>/qdrant/<collection>`` holds the shard (``edge_config.json``, ``segments/``,
``wal/``). Writes go to the write-ahead log first, so a process killed mid-upsert leaves a store
that loads (tests/test_store.py kills one). One process owns a folder at a time: the engine's own
WAL lock only says ``WouldBlock``, so ``open`` takes an ``fcntl`` lock on ``<folder>/.kademe.lock``
first and says plainly who to wait for.

Points are built from ``array.array("f")`` rows cut from one copy of the batch's float32 buffer:
the binding reads those through the buffer protocol, ~4x faster than a list from ``row.tolist()``
and ~5x faster than an ndarray row, which it reads element by element (2,048 x 1024 dims: 0.045 s
against 0.17 s and 0.22 s), with the same float32 values.
"""

from __future__ import annotations

import array
import fcntl
import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from qdrant_edge import (
    CountRequest,
    Distance,
    EdgeConfig,
    EdgeShard,
    EdgeSparseVectorParams,
    EdgeVectorParams,
    FieldCondition,
    Filter,
    Fusion,
    HasVectorCondition,
    IntegerIndexParams,
    KeywordIndexParams,
    MatchAny,
    MatchValue,
    Memory,
    Modifier,
    PayloadSchemaType,
    PayloadSelector,
    Point,
    Prefetch,
    Query,
    QueryRequest,
    ScrollRequest,
    SparseVector,
    UpdateOperation,
)

from kademe.errors import KademeError
from kademe.store.base import (
    INTEGER_FIELDS,
    KEYWORD_FIELDS,
    RRF_K,
    SPARSE,
    CollectionInfo,
    Hit,
    PointBatch,
    Store,
    Where,
    call,
)

UPDATE_POINTS = 2048  # points per engine update: large enough to amortise, small enough to stay ~10 MB
LOCK_NAME = ".kademe.lock"
SHARED_VALUES = ("corpus",)  # keyword fields whose values many points share: in every filter, kept in RAM


def edge_filter(where: Where | None) -> Filter | None:
    """The Qdrant Edge ``Filter`` for ``where`` (None when it matches everything).

    Example:
        >>> edge_filter(Where(corpus="yargitay", year=[2011, 2012]))
    """
    if where is None:
        return None
    pairs, should, has_vector = where.clauses()
    must: list = [FieldCondition(key, match=MatchAny(value) if isinstance(value, list) else MatchValue(value))
                  for key, value in pairs]
    if should:
        must.append(Filter(should=[FieldCondition(key, match=MatchAny(values)) for key, values in should.items()]))
    if has_vector:
        must.append(HasVectorCondition(has_vector))
    return Filter(must=must) if must else None


def sparse_vector(pair: tuple[np.ndarray, np.ndarray]) -> SparseVector:
    indices, values = pair
    return SparseVector(np.asarray(indices, dtype=np.uint32).tolist(), np.asarray(values, dtype=np.float32).tolist())


def edge_points(batch: PointBatch) -> list[Point]:
    """``Point``s of one batch: float32 rows as vectors, the bm25 vector beside them when present."""
    vectors = np.ascontiguousarray(batch.vectors, dtype=np.float32)
    width = vectors.shape[1] if vectors.ndim == 2 else 0
    flat = array.array("f", vectors.tobytes())
    rows = [flat[i * width:(i + 1) * width] for i in range(len(batch.ids))]
    if batch.sparse is None:
        return [Point(pid, {batch.space: rows[i]}, batch.payloads[i]) for i, pid in enumerate(batch.ids)]
    return [Point(pid, {batch.space: rows[i], SPARSE: sparse_vector(batch.sparse[i])}, batch.payloads[i])
            for i, pid in enumerate(batch.ids)]


class _FolderLock:
    """An exclusive ``fcntl`` lock on ``<folder>/.kademe.lock``, held while the store is open."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise KademeError(f"The Qdrant Edge store at '{folder}' is in use by another process.\n\n"
                              "Wait for it to finish, or run a Qdrant server and pass --qdrant-url.") from None
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"{os.getpid()}\n".encode())

    def release(self) -> None:
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1


class EdgeStore(Store):
    """One collection as a Qdrant Edge shard in a folder. Open with ``EdgeStore.open(path)``."""

    backend = "edge"

    def __init__(self, path: Path, lock: _FolderLock, shard: EdgeShard | None):
        self.path = path
        self.where = str(path)
        self._lock = lock
        self._shard = shard

    @classmethod
    def open(cls, path: Path) -> EdgeStore:
        """Open (and lock) the store in ``path``; ``info()`` is None until ``create()``.

        Raises:
            KademeError: another process has the folder open.

        Example:
            >>> with EdgeStore.open(Path("work/qdrant/kararlar")) as store:
            ...     store.info()
        """
        path = Path(path)
        lock = _FolderLock(path)
        try:
            shard = None
            if (path / "edge_config.json").exists():
                shard = call("open", EdgeShard.load, str(path), where=str(path))
            return cls(path, lock, shard)
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

    def create(self, dense: dict[str, int], sparse: Sequence[str] = (SPARSE,)) -> None:
        if self._shard is not None:
            raise KademeError(f"The Qdrant Edge store at '{self.path}' already holds a collection.\n\n"
                              "Use add_vectors to add vector names, or delete the folder to start over.")
        # Original vectors and payloads are memory-mapped "cold": not pre-read into the page cache on
        # every open. The default ("cached") warms all 800 MB of vectors at 200,000 x 1024 dims on each
        # open: 0.97 s against 0.49 s cold (unindexed, this machine). A search walks the HNSW graph (left
        # at the engine's default) and reads few vectors; a page read once stays in the OS cache. The
        # price: filtered p50 25 ms against 12 ms with the defaults at 200,000 (bench/README.md, store).
        # Vectors added later (add_vectors: a fallback model) get the engine's default.
        config = EdgeConfig(
            vectors={name: EdgeVectorParams(size=size, distance=Distance.Cosine, memory=Memory.Cold)
                     for name, size in dense.items()},
            sparse_vectors={name: EdgeSparseVectorParams(modifier=Modifier.Idf) for name in sparse},
            payload_memory=Memory.Cold,
        )
        self._shard = call("create", EdgeShard.create, str(self.path), config, where=self.where)
        for name in KEYWORD_FIELDS:
            # One value per decision (doc_id, case numbers): looked up a few at a time, so the index
            # stays on disk instead of being read into the heap at every open.
            schema = PayloadSchemaType.Keyword if name in SHARED_VALUES else KeywordIndexParams(memory=Memory.Cold)
            self._update("create_index", UpdateOperation.create_field_index(name, schema))
        for name in INTEGER_FIELDS:  # year: memory-mapped as well (a heap copy was rebuilt at every open)
            schema = IntegerIndexParams(lookup=True, range=True, memory=Memory.Cold)
            self._update("create_index", UpdateOperation.create_field_index(name, schema))

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
        info = self.info()
        if info is None:
            raise KademeError(f"The Qdrant Edge store at '{self.path}' holds no collection yet.\n\n"
                              "Run the upsert stage first (it creates the collection).")
        return info

    def _update(self, operation: str, op: UpdateOperation) -> None:
        assert self._shard is not None
        call(operation, self._shard.update, op, where=self.where)

    def upsert(self, batches: Sequence[PointBatch]) -> None:
        """Write the points of one shard in updates of ``UPDATE_POINTS``; each is in the WAL on return."""
        self._require()
        for batch in batches:
            for start in range(0, len(batch), UPDATE_POINTS):
                part = PointBatch(batch.ids[start:start + UPDATE_POINTS], batch.payloads[start:start + UPDATE_POINTS],
                                  batch.space, batch.vectors[start:start + UPDATE_POINTS],
                                  batch.sparse[start:start + UPDATE_POINTS] if batch.sparse is not None else None)
                self._update("upsert", UpdateOperation.upsert_points(edge_points(part)))

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
        flt = edge_filter(where)
        if len(queries) == 1:
            request = QueryRequest(limit=limit, query=queries[0], filter=flt, with_payload=True, with_vector=False)
        else:
            request = QueryRequest(limit=limit, query=Fusion.Rrf(k=RRF_K), with_payload=True, with_vector=False,
                                   prefetches=[Prefetch(limit=prefetch_limit, query=q, filter=flt) for q in queries])
        points = call("query", self._shard.query, request, where=self.where)
        return [Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in points]

    def optimize(self) -> float:
        """Build the HNSW and payload indexes in-process (blocks); seconds spent."""
        if self._shard is None:
            return 0.0
        started = time.perf_counter()
        call("optimize", self._shard.optimize, where=self.where)
        return time.perf_counter() - started

    def close(self) -> None:
        if self._shard is not None:
            shard, self._shard = self._shard, None
            shard.flush()  # pending changes on disk before the next process opens the folder
            shard.close()
        self._lock.release()
