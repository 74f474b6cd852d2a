"""A Qdrant server through qdrant-client (REST, or gRPC with ``grpc=True``).

``ServerStore.connect(url, collection)`` talks to the server at ``url``. Two more forms open
qdrant-client's LOCAL MODE, the in-process stand-in for a server that the tests and the benchmark
use (no server binary is reachable here): ``path:/some/dir`` (``QdrantClient(path=...)``, kept on
disk) and ``:memory:``. Local mode has no payload indexes; its warning about them is silenced.

``create`` sends the collection design of ``kademe.store.design`` (HNSW, optimizers, int8
quantization in RAM with originals on disk, ``year``/``corpus`` indexes as principal/tenant), the
same settings the Edge store gets; queries carry its search parameters. Local mode accepts and
ignores most of them (tests/test_store.py checks the requests).

A shard's points go up with ``upload_collection`` (batches of ``BATCH``, ``parallel`` streams on a
real server) without waiting, then the last batch is upserted with ``wait=True``: the server
applies a shard's updates in order, so that one acknowledgement covers the whole shard.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from qdrant_client import QdrantClient, models

from kademe.errors import KademeError
from kademe.store.base import (
    INTEGER_FIELDS,
    KEYWORD_FIELDS,
    RRF_K,
    SPARSE,
    CollectionInfo,
    Hit,
    Location,
    PointBatch,
    Store,
    StoreBusy,
    StoreUnavailable,
    Where,
    call,
    coverage,
)
from kademe.store.design import DESIGN, Design, rebuild_hint
from kademe.store.server_shapes import (
    point_vectors,
    search_params,
    server_config,
    server_filter,
    server_quantization,
    server_schema,
    sparse_vector,
)

BATCH = 256  # points per request: ~1 MB of 1024-dim float32 as JSON is ~4 MB, well under the 32 MB limit
LOCAL_PREFIX = "path:"
_said_legacy: set[tuple[str, str]] = set()  # (url, collection) already told they lack the design


class ServerStore(Store):
    """One collection on a Qdrant server (or in qdrant-client local mode). Open with ``connect``."""

    backend = "server"

    def __init__(self, client: QdrantClient, collection: str, url: str, *, local: bool, parallel: int):
        self.client = client
        self.collection = collection
        self.where = url
        self.local = local
        self.parallel = parallel

    @staticmethod
    def locate(url: str) -> Location:
        """Where a collection at ``url`` lives; a local-mode folder that does not exist holds nothing."""
        local = url[len(LOCAL_PREFIX):] if url.startswith(LOCAL_PREFIX) else None
        return Location("server", url, f"no local-mode store at '{local}'" if local is not None and not Path(local).is_dir() else "")

    def collections(self) -> list[str]:
        """The names of every collection the server holds, sorted."""
        return sorted(c.name for c in call("collections", self.client.get_collections, where=self.where).collections)

    @classmethod
    def connect(cls, url: str, collection: str, api_key: str | None = None, grpc: bool = False,
                parallel: int = 2) -> ServerStore:
        """Connect to the server at ``url`` (one request: list the collections).

        Args:
            url: ``http(s)://host:port``; or ``path:/dir`` / ``:memory:`` for qdrant-client local mode.
            collection: the collection name.
            api_key: the server's API key, if it wants one.
            grpc: talk gRPC (port 6334) instead of REST.
            parallel: upload streams per shard on a real server.

        Raises:
            StoreUnavailable: nothing answers at ``url``.
            StoreBusy: another process holds the local-mode folder.
            KademeError: the server refused the API key.

        Example:
            >>> store = ServerStore.connect("path:work/qdrant-local", "kararlar")
        """
        if url == ":memory:" or url.startswith(LOCAL_PREFIX):
            location = url if url == ":memory:" else url[len(LOCAL_PREFIX):]
            try:
                client = QdrantClient(location=":memory:") if url == ":memory:" else QdrantClient(path=location)
            except RuntimeError as e:  # local mode locks its folder (portalocker)
                if "already accessed" not in str(e):
                    raise
                raise StoreBusy(f"The Qdrant local-mode store at '{location}' is in use by another process.\n\n"
                                  "Wait for it to finish, or run a Qdrant server and pass --qdrant-url.") from None
            return cls(client, collection, url, local=True, parallel=1)
        client = QdrantClient(url=url, api_key=api_key, prefer_grpc=grpc, check_compatibility=False)
        try:
            call("connect", client.get_collections, where=url)
        except StoreUnavailable:
            client.close()
            raise StoreUnavailable(f"Qdrant at {url} is not reachable.\n\nStart the server or fix --qdrant-url.") from None
        except BaseException:
            client.close()
            raise
        return cls(client, collection, url, local=False, parallel=parallel)

    # -- the collection --------------------------------------------------------------------
    def info(self) -> CollectionInfo | None:
        if not call("info", self.client.collection_exists, self.collection, where=self.where):
            return None
        config = call("info", self.client.get_collection, self.collection, where=self.where).config
        self._say_if_legacy(config)
        params = config.params
        vectors = params.vectors if isinstance(params.vectors, dict) else {"": params.vectors} if params.vectors else {}
        return CollectionInfo(dense={name: int(v.size) for name, v in vectors.items()},
                              sparse=tuple(params.sparse_vectors or {}), points=self.count(Where()))

    def create(self, dense: dict[str, int], sparse: Sequence[str] = (SPARSE,), design: Design = DESIGN) -> None:
        """Create the collection with ``design``, then its payload indexes (before any point)."""
        on_disk = None if design.legacy else True  # originals on disk; the quantized copy in RAM
        call("create", self.client.create_collection, self.collection, where=self.where,
             vectors_config={n: models.VectorParams(size=size, distance=models.Distance.COSINE, on_disk=on_disk,
                                                    quantization_config=server_quantization(design))
                             for n, size in dense.items()},
             sparse_vectors_config={n: models.SparseVectorParams(modifier=models.Modifier.IDF) for n in sparse},
             **server_config(design))
        with warnings.catch_warnings():  # local mode: "Payload indexes have no effect in the local Qdrant"
            warnings.simplefilter("ignore", UserWarning)
            for name in (*KEYWORD_FIELDS, *INTEGER_FIELDS):
                call("create_index", self.client.create_payload_index, self.collection, name,
                     server_schema(name, design), where=self.where)

    def _say_if_legacy(self, config: models.CollectionConfig) -> None:
        """Once per process: a collection without quantization predates the design (issue 18)."""
        vectors = config.params.vectors
        vectors = vectors if isinstance(vectors, dict) else {"": vectors} if vectors else {}
        if config.quantization_config or any(v.quantization_config for v in vectors.values()):
            return
        if (self.where, self.collection) not in _said_legacy:
            _said_legacy.add((self.where, self.collection))
            sys.stderr.write(rebuild_hint(f"{self.where} (collection '{self.collection}')"))

    def add_vectors(self, dense: dict[str, int], sparse: Sequence[str] = ()) -> None:
        have = self.info()
        if have is None:
            raise KademeError(f"Collection '{self.collection}' does not exist at {self.where}.\n\n"
                              "Run the upsert stage first (it creates the collection).")
        for name, size in dense.items():
            if name in have.dense:
                if have.dense[name] != size:
                    raise KademeError(f"Vector '{name}' already exists with size {have.dense[name]}, not {size}.\n\n"
                                      "Use another collection for a model of another size.")
                continue
            config = models.DenseVectorNameConfig(dense=models.DenseVectorConfig(size=size, distance=models.Distance.COSINE))
            call("add_vectors", self.client.create_vector_name, self.collection, name, config, where=self.where)
        for name in sparse:
            if name not in have.sparse:
                config = models.SparseVectorNameConfig(sparse=models.SparseVectorConfig(modifier=models.Modifier.IDF))
                call("add_vectors", self.client.create_vector_name, self.collection, name, config, where=self.where)

    # -- points ----------------------------------------------------------------------------
    def upsert(self, batches: Sequence[PointBatch]) -> None:
        """Stream every batch without waiting, then upsert the very last points with ``wait=True``."""
        ids: list[str] = []
        payloads: list[dict] = []
        vectors: list[dict] = []
        for batch in batches:
            ids += batch.ids
            payloads += batch.payloads
            vectors += point_vectors(batch)
        if not ids:
            return
        head = len(ids) - min(BATCH, len(ids))
        if head:
            parallel = self.parallel if head >= 4 * BATCH else 1
            call("upsert", self.client.upload_collection, self.collection, where=self.where, vectors=vectors[:head],
                 payload=payloads[:head], ids=ids[:head], batch_size=BATCH, parallel=parallel, wait=False)
        tail = [models.PointStruct(id=i, vector=v, payload=p) for i, v, p in zip(ids[head:], vectors[head:], payloads[head:])]
        call("upsert", self.client.upsert, self.collection, tail, wait=True, where=self.where)

    def delete(self, ids: Sequence[str]) -> None:
        ids = list(ids)
        for start in range(0, len(ids), 8192):
            call("delete", self.client.delete, self.collection, where=self.where,
                 points_selector=models.PointIdsList(points=ids[start:start + 8192]), wait=True)

    def count(self, where: Where) -> int:
        result = call("count", self.client.count, self.collection, count_filter=server_filter(where), exact=True,
                      where=self.where)
        return int(result.count)

    def scroll(self, where: Where, fields: Sequence[str], limit: int = 4096) -> Iterator[tuple[str, dict]]:
        flt, offset = server_filter(where), None
        while True:
            records, offset = call("scroll", self.client.scroll, self.collection, scroll_filter=flt, limit=limit,
                                   offset=offset, with_payload=list(fields) if fields else False, with_vectors=False,
                                   where=self.where)
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
        queries: list[tuple[str, object]] = [(name, np.asarray(v, dtype=np.float32).tolist()) for name, v in dense]
        if sparse is not None:
            queries.append((SPARSE, sparse_vector(sparse)))
        if not queries:
            raise ValueError("query needs at least one dense or sparse query vector")
        flt = server_filter(where)
        # few points behind the filter: an exact scan (issue 29; the design's exact_points)
        params = models.SearchParams(exact=True) if where is not None and DESIGN.exact_points and \
            self.count(where) <= DESIGN.exact_points else search_params()
        if len(queries) == 1:
            (using, vector), = queries
            kwargs: dict = {"query": vector, "using": using, "query_filter": flt, "search_params": params}
        else:
            kwargs = {"query": models.RrfQuery(rrf=models.Rrf(k=RRF_K)),
                      "prefetch": [models.Prefetch(query=v, using=n, filter=flt, limit=prefetch_limit,
                                                   params=params) for n, v in queries]}
        with warnings.catch_warnings():  # local mode: "exact (brute-force) search, so `search_params` has no effect"
            warnings.simplefilter("ignore", UserWarning)
            result = call("query", self.client.query_points, self.collection, limit=limit, with_payload=True,
                          with_vectors=False, where=self.where, **kwargs)
        return [Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in result.points]

    def index_state(self) -> dict:
        info = call("index_state", self.client.get_collection, self.collection, where=self.where)
        colour = str(getattr(info.status, "value", info.status))
        state = {"yellow": "pending", "grey": "pending"}.get(colour) or (
            coverage(info.indexed_vectors_count or 0, info.points_count or 0) if colour == "green" else "unknown")
        return {"state": state, "status": colour, "segments": info.segments_count, "points": info.points_count,
                "indexed_vectors": info.indexed_vectors_count or 0}

    def close(self) -> None:
        self.client.close()
