"""The store seam: one small interface, two engines (Qdrant Edge in-process, a Qdrant server).

Stages above the seam talk to a ``Store`` and never learn which engine answered, as callers of
qdrant-client's ``QdrantBase`` never learn whether ``QdrantRemote`` or ``QdrantLocal`` did.
Every engine call goes through ``call`` — the per-call retry policy and the store fault seam
(``KADEME_FAULT_QDRANT_*``) — and transient failures that outlive the retries surface as
``StoreUnavailable``, which the Prefect store tasks retry.

Collection layout, the same on both engines:
  * named dense vectors, one per model (``vector_name(model)``: primary and fallback), cosine;
  * the sparse vector ``bm25`` (IDF modifier) from the lexical stage;
  * payload: ``corpus, year, doc_id, chunk_index, text, date, chamber, esas_no, karar_no, model,
    degraded, rung`` plus the record's other fields; keyword indexes on ``corpus, doc_id, esas_no,
    karar_no``, an integer index on ``year``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from tenacity import (
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from kademe.errors import KademeError
from kademe.faults import maybe_store_error

T = TypeVar("T")

SPARSE = "bm25"  # the lexical sparse vector's name
KEYWORD_FIELDS = ("corpus", "doc_id", "esas_no", "karar_no")
RRF_K = 2  # Qdrant's default RRF constant (the server's too), set explicitly so both engines rank alike
INTEGER_FIELDS = ("year",)


class StoreUnavailable(KademeError):
    """The store stayed unreachable through every per-call retry (the flow may retry the whole task later)."""


class StoreBusy(KademeError):
    """Another process holds the store (an ingest writing a year); ``holder`` names it: ``pid N`` or ``another process``."""

    def __init__(self, message: str, holder: str = "another process"):
        super().__init__(message)
        self.holder = holder


@dataclass(frozen=True)
class Location:
    """Where a collection lives, found without opening (or creating) anything.

    ``backend`` is ``"edge"`` or ``"server"``; ``where`` the Edge folder or the URL; ``missing`` says
    why nothing is there to open (empty when something may be: a server is only known once asked);
    ``collections``, when asked for (``list_collections``), the names found there.
    """

    backend: str
    where: str
    missing: str = ""
    collections: tuple[str, ...] = ()


@dataclass(frozen=True)
class Where:
    """A filter both engines understand: the partition and, optionally, keyword matches.

    ``corpus`` and ``year`` narrow to a partition (a value or a sequence of values, None = any);
    ``any_of`` maps keyword fields to values, and a point matches when any field holds any of its
    values (``{"esas_no": ["2022/14549"], "karar_no": ["2023/4695"]}``).

    Example:
        >>> Where(corpus="yargitay", year=2011)          # one partition
        >>> Where(corpus=["yargitay", "danistay"], year=[2011, 2012])
    """

    corpus: str | Sequence[str] | None = None
    year: int | Sequence[int] | None = None
    any_of: dict[str, list[str]] = field(default_factory=dict)
    has_vector: str | None = None  # only points that hold this named vector

    def clauses(self) -> tuple[list[tuple[str, str | int | list]], dict[str, list[str]], str | None]:
        """The filter in engine-neutral parts, which each engine turns into its own ``Filter``.

        Returns:
            ``must``: ``(field, value)`` pairs, a list value meaning any of them; ``should``: keyword
            fields and values of which one must match (empty: no such clause; asked for with no
            values: a clause nothing matches); ``has_vector``.
        """
        must = [(key, value if isinstance(value, (str, int)) else list(value))
                for key, value in (("corpus", self.corpus), ("year", self.year)) if value is not None]
        should = {key: list(values) for key, values in self.any_of.items() if values}
        if self.any_of and not should:  # keyword matches asked for, none given: nothing matches
            should = {"doc_id": ["\x00"]}
        return must, should, self.has_vector


@dataclass
class PointBatch:
    """N points that share one dense vector space, built from Arrow/numpy columns.

    Args:
        ids: N point ids (uuid strings).
        payloads: N payload dicts.
        space: the dense vector name of every point in the batch.
        vectors: (N, dim) float32.
        sparse: N ``(indices uint32, values float32)`` pairs for the ``bm25`` vector, or None.
    """

    ids: list[str]
    payloads: list[dict]
    space: str
    vectors: np.ndarray
    sparse: list[tuple[np.ndarray, np.ndarray]] | None = None

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Hit:
    """One query result."""

    id: str
    score: float
    payload: dict


@dataclass(frozen=True)
class CollectionInfo:
    dense: dict[str, int]  # vector name -> size
    sparse: tuple[str, ...]
    points: int


@dataclass(frozen=True)
class Segment:
    """One segment of the collection, as the engine keeps it (issue 29: a night must not rebuild the year's).

    ``points``: vectors the segment stores, deleted ones included; ``deleted``: of those, marked
    deleted (None where the engine does not say); ``indexed``: its dense vectors have an HNSW
    graph; ``built``: when that graph was written (ns; the same value before and after a night means
    the graph was not rebuilt); ``bytes``: on disk.
    """

    name: str
    points: int
    deleted: int | None
    indexed: bool
    built: int | None = None
    bytes: int | None = None


class Store:
    """The interface. Both engines implement every method; nothing else is public.

    ``backend`` is ``"edge"`` or ``"server"``; ``where`` is ``<workdir>/qdrant/...`` or the URL.
    """

    backend: str = ""
    where: str = ""

    # -- the collection --------------------------------------------------------------------
    def info(self) -> CollectionInfo | None:
        """The collection's vectors and point count, or None when it does not exist."""
        raise NotImplementedError

    def create(self, dense: dict[str, int], sparse: Sequence[str] = (SPARSE,)) -> None:
        """Create the collection: named cosine vectors, sparse vectors (IDF), payload indexes."""
        raise NotImplementedError

    def add_vectors(self, dense: dict[str, int], sparse: Sequence[str] = ()) -> None:
        """Add vector names to an existing collection; raise KademeError where the engine cannot."""
        raise NotImplementedError

    # -- points ----------------------------------------------------------------------------
    def upsert(self, batches: Sequence[PointBatch]) -> None:
        """Write the points of one shard; return only when the store has acknowledged all of them."""
        raise NotImplementedError

    def delete(self, ids: Sequence[str]) -> None:
        raise NotImplementedError

    def count(self, where: Where) -> int:
        """Exact number of points matching ``where`` (``has_vector`` included)."""
        raise NotImplementedError

    def scroll(self, where: Where, fields: Sequence[str], limit: int = 4096) -> Iterator[tuple[str, dict]]:
        """``(id, payload restricted to fields)`` of every matching point, page by page; never vectors."""
        raise NotImplementedError

    def query(
        self,
        *,
        dense: Sequence[tuple[str, np.ndarray]] = (),
        sparse: tuple[np.ndarray, np.ndarray] | None = None,
        where: Where | None = None,
        limit: int = 10,
        prefetch_limit: int = 100,
    ) -> list[Hit]:
        """Nearest points with payloads, best first.

        Args:
            dense: ``(vector name, query vector)`` pairs, e.g. the primary and the fallback space.
            sparse: ``(indices, values)`` of a ``bm25`` query vector.
            where: filter applied to every prefetch.
            limit: results to return.
            prefetch_limit: candidates per prefetch when fusing.

        Returns:
            With two or more query vectors: RRF fusion of one prefetch per vector. With one: a plain
            nearest query on it. Scores are the engine's (RRF or cosine or BM25).
        """
        raise NotImplementedError

    def segments(self) -> list[Segment]:
        """The collection's segments, oldest index first where the engine tells them; [] without a collection."""
        return []

    def index_state(self) -> dict:
        """What the engine says about its index, collection-wide (segments hold every partition's points).

        Returns:
            ``{"state": "indexed" | "partly indexed" | "unindexed" | "pending" | "unknown", "segments",
            "points", "indexed_vectors", ...}``: Edge reports segments and indexed vectors; a server adds
            its ``status`` (green: optimized; yellow: optimizing; grey: optimizations pending).
        """
        return {"state": "unknown"}

    def optimize(self) -> float:
        """Build what the engine indexes (Edge: HNSW via ``optimize()``); seconds spent. Server: 0."""
        return 0.0

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def coverage(indexed_vectors: int, points: int) -> str:
    """``indexed`` when the engine counts an indexed vector per point, ``partly indexed``, or ``unindexed``.

    Qdrant builds HNSW per segment and only above a segment's indexing threshold; an unindexed segment
    is searched by an exact scan, which is fast while it is small.
    """
    if not indexed_vectors:
        return "unindexed"
    return "indexed" if indexed_vectors >= points else "partly indexed"


def is_transient(exc: BaseException) -> bool:
    """Errors worth retrying: lost connections, time-outs, and 429/5xx answers."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status == 429 or status >= 500
    name = type(exc).__name__
    if name in ("ResponseHandlingException", "TransportError", "ConnectError", "ReadTimeout", "WriteTimeout",
                "PoolTimeout", "RemoteProtocolError", "ReadError", "WriteError", "ConnectTimeout"):
        return True
    try:  # grpc errors carry a code
        import grpc

        if isinstance(exc, grpc.RpcError):
            return exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                                  grpc.StatusCode.RESOURCE_EXHAUSTED)
    except ImportError:  # pragma: no cover - grpc comes with qdrant-client
        pass
    return isinstance(exc, (ConnectionError, TimeoutError))


_retry = retry(
    retry=retry_if_exception(is_transient),
    stop=stop_after_attempt(8),
    wait=wait_exponential_jitter(multiplier=0.05, max=5.0, jitter=0.05),
    reraise=True,
)


def call(operation: str, fn: Callable[..., T], *args: Any, where: str = "the store", **kwargs: Any) -> T:
    """Make one engine call through the retry policy and the fault injector (the store seam).

    Raises:
        StoreUnavailable: a transient failure outlived the retries.
        KademeError: the server refused the API key (401/403), said once, never retried.
    """

    @_retry
    def attempt() -> T:
        maybe_store_error(operation)
        return fn(*args, **kwargs)

    try:
        return attempt()
    except Exception as e:
        status = getattr(e, "status_code", None)
        if status in (401, 403):
            raise KademeError(f"Qdrant refused the API key (HTTP {status}).\n\n"
                              "Check --qdrant-api-key or KADEME_QDRANT_API_KEY.") from None
        if is_transient(e):
            raise StoreUnavailable(f"Qdrant did not answer {operation} after retries: {e}\n\n"
                                   f"Check that {where} is up.") from None
        raise
