"""Qdrant: one code path for the embedded local mode (``<workdir>/qdrant``) and a server (``--qdrant-url``).

Point ids are deterministic (``kademe.chunk.point_id``), so a re-upsert overwrites and never
duplicates. Transient store errors are retried here, per call, with tenacity; anything else fails
fast with a message that says what to do.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from kademe.checkpoint import YearDir, chain_key, iter_parquet, read_json, write_json
from kademe.chunk import ChunkResult
from kademe.embed.model import resolve_model, vector_name
from kademe.embed.stage import EmbedResult, shard_path
from kademe.errors import KademeError
from kademe.faults import crash_point, maybe_store_error
from kademe.settings import Settings

UPSERT_BATCH = 256
T = TypeVar("T")


class StoreUnavailable(KademeError):
    """Qdrant stayed unreachable through every per-call retry (the flow may retry the whole task later)."""


@dataclass(frozen=True)
class UpsertResult:
    key: str
    upserted: int
    pruned: int
    cached: bool


def is_transient(exc: BaseException) -> bool:
    """Errors worth retrying: lost connections, time-outs, and 429/502/503/504 answers."""
    if isinstance(exc, UnexpectedResponse):
        return exc.status_code in (429, 502, 503, 504)
    return isinstance(exc, (ResponseHandlingException, httpx.TransportError, ConnectionError, TimeoutError))


_retry = retry(
    retry=retry_if_exception(is_transient),
    stop=stop_after_attempt(8),
    wait=wait_exponential_jitter(multiplier=0.05, max=5.0, jitter=0.05),
    reraise=True,
)


def call(operation: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Make one store call through the retry policy and the fault injector (the store seam)."""

    @_retry
    def attempt() -> T:
        maybe_store_error(operation)
        return fn(*args, **kwargs)

    try:
        return attempt()
    except UnexpectedResponse as e:
        if e.status_code in (401, 403):
            raise KademeError("Qdrant refused the API key (HTTP %d).\n\nCheck --qdrant-api-key or KADEME_QDRANT_API_KEY." % e.status_code) from None
        raise
    except (ResponseHandlingException, httpx.TransportError) as e:
        raise StoreUnavailable(f"Qdrant did not answer {operation} after retries: {e}\n\nCheck that the server at --qdrant-url is up.") from None


@contextlib.contextmanager
def open_store(s: Settings) -> Iterator[QdrantClient]:
    """A client for the server at ``s.qdrant_url``, or local mode at ``<workdir>/qdrant``; closed on exit."""
    if s.qdrant_url:
        client = QdrantClient(url=s.qdrant_url, api_key=s.api_key(), timeout=30)
        try:
            call("connect", client.get_collections)
        except StoreUnavailable:  # a refused API key is its own, clearer error (raised by call)
            raise KademeError(f"Qdrant at {s.qdrant_url} is not reachable.\n\nStart the server or fix --qdrant-url.") from None
    else:
        path = Path(s.workdir) / "qdrant"
        try:
            path.mkdir(parents=True, exist_ok=True)
            client = QdrantClient(path=str(path))
        except RuntimeError as e:
            if "already accessed" in str(e):
                raise KademeError(f"The local Qdrant at '{path}' is in use by another process.\n\n"
                                  "Wait for it to finish, or run a Qdrant server and pass --qdrant-url.") from None
            raise
    try:
        yield client
    finally:
        client.close()


def collection_spaces(s: Settings) -> dict[str, int]:
    """Vector name -> size for the primary model and, if set, the fallback model (read from configs)."""
    from kademe.embed.ladder import model_dims

    models_ = [s.model] + ([s.fallback_model] if s.fallback_model else [])
    return {vector_name(m): model_dims(resolve_model(m)) for m in models_}


def ensure_collection(client: QdrantClient, s: Settings, writes: set[str] = frozenset()) -> bool:
    """Create the collection (named vectors, cosine) and payload indexes if missing; check it if present.

    The collection always gets the primary model's vector, and the fallback model's when one is
    set: a degraded year needs that slot, and it cannot be added to a collection later.

    Args:
        writes: the vector names this run writes (checked against an existing collection).

    Returns:
        True when the collection was created now.
    """
    spaces = collection_spaces(s)
    if call("collection_exists", client.collection_exists, s.collection):
        info = call("get_collection", client.get_collection, s.collection)
        have = info.config.params.vectors
        have = {k: v.size for k, v in have.items()} if isinstance(have, dict) else {"": have.size}
        for name in {vector_name(s.model)} | set(writes):
            if name not in have:
                raise KademeError(f"Collection '{s.collection}' has vectors {sorted(have)} but not '{name}'.\n\n"
                                  "It was made with another model or without --fallback-model; pass those, or another --collection.")
            if have[name] != spaces[name]:
                raise KademeError(f"Collection '{s.collection}' stores vector '{name}' with size {have[name]}, "
                                  f"but the model gives {spaces[name]}.\n\nUse another --collection or the model it was made with.")
        return False
    call("create_collection", client.create_collection, s.collection,
         vectors_config={n: models.VectorParams(size=d, distance=models.Distance.COSINE) for n, d in spaces.items()})
    with warnings.catch_warnings():  # local mode warns that it ignores indexes; servers use them
        warnings.filterwarnings("ignore", message="Payload indexes have no effect")
        for field, schema in (("year", models.PayloadSchemaType.INTEGER), ("doc_id", models.PayloadSchemaType.KEYWORD)):
            call("create_payload_index", client.create_payload_index, s.collection, field, field_schema=schema)
    return True


def year_filter(year: int) -> models.Filter:
    return models.Filter(must=[models.FieldCondition(key="year", match=models.MatchValue(value=year))])


def upsert_points(chunks: ChunkResult, embedded: EmbedResult, year: int, s: Settings) -> UpsertResult:
    """Upsert a year's points shard by shard (resumable), then delete the year's stale points.

    Returns:
        An ``UpsertResult`` with the points written and the stale ones removed.
    """
    key = chain_key(embedded.key, s.fingerprint("upsert"))
    yd = YearDir(s.workdir, year)
    folder, done = yd.stage_file("upsert", key, ""), yd.stage_file("upsert", key, ".json")
    with open_store(s) as client:
        created = ensure_collection(client, s, _spaces_written(embedded))
        meta = read_json(done)
        if meta and not created and call("count", client.count, s.collection, count_filter=year_filter(year), exact=True).count == chunks.count:
            return UpsertResult(key, meta["upserted"], 0, cached=True)
        crash_point("upsert-start")
        shard_rows = iter_parquet(chunks.chunks, batch_size=s.shard_size)
        for i, rows in enumerate(shard_rows):
            marker = shard_path(folder, i, ".done")
            if marker.exists() and not created:
                continue
            vectors = next(iter_parquet(embedded.shard(i), batch_size=s.shard_size))
            upsert_rows(client, s, rows, vectors)
            write_json(marker, {"points": len(rows)})
            crash_point("upsert-shard")
        crash_point("upsert-prune")
        pruned = prune_year(client, chunks, year, s)
    write_json(done, {"upserted": chunks.count, "pruned": pruned})
    crash_point("upsert-done")
    return UpsertResult(key, chunks.count, pruned, cached=False)


def _spaces_written(embedded: EmbedResult) -> set[str]:
    return {r["space"] for i in range(embedded.shards) for b in iter_parquet(embedded.shard(i), 8192, ["space"]) for r in b}


def upsert_rows(client: QdrantClient, s: Settings, rows: list[dict], vectors: list[dict]) -> None:
    """Upsert chunk rows with their vectors (rows of an embed shard), in batches.

    Args:
        rows: chunk rows (``CHUNKS_SCHEMA``).
        vectors: the matching shard rows (``point_id``, ``space``, ``rung``, ``vector``), same order.
    """
    points = [_point(r, v, s) for r, v in zip(rows, vectors, strict=True)]
    for start in range(0, len(points), UPSERT_BATCH):
        call("upsert", client.upsert, s.collection, points=points[start : start + UPSERT_BATCH], wait=True)
        crash_point("upsert-batch")


def _point(row: dict, vec: dict, s: Settings) -> models.PointStruct:
    if row["point_id"] != vec["point_id"]:
        raise RuntimeError(f"embed shard out of step with chunks at point {row['point_id']}: delete the year's embed-* checkpoint")
    degraded = vec["rung"] == "gpu-small"
    payload = json.loads(row["meta"] or "{}")
    payload.update({k: row[k] for k in ("doc_id", "year", "chunk_index", "text", "date", "chamber", "esas_no", "karar_no")})
    payload.update(model=s.fallback_model if degraded else s.model, degraded=degraded, rung=vec["rung"])
    return models.PointStruct(id=row["point_id"], vector={vec["space"]: vec["vector"]}, payload=payload)


def scroll_year(client: QdrantClient, s: Settings, year: int, with_vectors: bool = False) -> Iterator[models.Record]:
    """Every point of a year in the collection, page by page."""
    offset = None
    while True:
        records, offset = call("scroll", client.scroll, s.collection, scroll_filter=year_filter(year), limit=1024,
                               offset=offset, with_payload=["doc_id", "chunk_index"], with_vectors=with_vectors)
        yield from records
        if offset is None:
            return


def prune_year(client: QdrantClient, chunks: ChunkResult, year: int, s: Settings) -> int:
    """Delete points of ``year`` that the current chunks no longer produce (e.g. after a setting changed)."""
    expected = {r["point_id"] for batch in iter_parquet(chunks.chunks, 8192, ["point_id"]) for r in batch}
    stale = [str(p.id) for p in scroll_year(client, s, year) if str(p.id) not in expected]
    for start in range(0, len(stale), 1024):
        call("delete", client.delete, s.collection, points_selector=models.PointIdsList(points=stale[start : start + 1024]), wait=True)
    return len(stale)


def verify_year(year: int, s: Settings, client: QdrantClient | None = None) -> dict:
    """Check the collection against the year's checkpoints: every chunk present once, right vector, nothing extra.

    Returns:
        ``{"ok", "expected", "found", "missing", "extra", "duplicates", "bad_vectors"}`` (lists hold
        up to 20 example ids), or ``{"ok": False, "error": ...}`` when the year has no checkpoints.
    """
    manifest = YearDir(s.workdir, year).manifest()
    if "chunk" not in manifest or "embed" not in manifest:
        return {"ok": False, "error": f"no finished checkpoints for {year} under {s.workdir}; run kademe ingest first"}
    expected: dict[str, str] = {}  # point id -> vector name
    folder = Path(manifest["embed"]["path"])
    for i in range(manifest["embed"]["shards"]):
        for batch in iter_parquet(shard_path(folder, i), 8192, ["point_id", "space"]):
            expected.update((r["point_id"], r["space"]) for r in batch)
    if client is None:
        with open_store(s) as own:
            return verify_year(year, s, own)
    crash_point("verify-start")
    if not call("collection_exists", client.collection_exists, s.collection):
        return {"ok": False, "error": f"collection '{s.collection}' does not exist", "expected": len(expected)}
    params = call("get_collection", client.get_collection, s.collection).config.params.vectors
    sizes = {k: v.size for k, v in params.items()} if isinstance(params, dict) else {}
    found, extra, bad, pairs, dupes = set(), [], [], set(), []
    for p in scroll_year(client, s, year, with_vectors=True):
        pid = str(p.id)
        found.add(pid)
        if pid not in expected:
            extra.append(pid)
            continue
        vec = (p.vector or {}).get(expected[pid]) if isinstance(p.vector, dict) else None
        if vec is None or len(vec) != sizes.get(expected[pid]):
            bad.append(pid)
        pair = (p.payload.get("doc_id"), p.payload.get("chunk_index"))
        (dupes.append(pid) if pair in pairs else pairs.add(pair))
    missing = [pid for pid in expected if pid not in found]
    ok = not (missing or extra or bad or dupes)
    return {"ok": ok, "expected": len(expected), "found": len(found), "missing": missing[:20], "extra": extra[:20],
            "duplicates": dupes[:20], "bad_vectors": bad[:20], "missing_count": len(missing), "extra_count": len(extra)}


def search(query: str, s: Settings, year: int | None = None, top_k: int = 5) -> list[dict]:
    """Embed ``query`` with the primary model and return the ``top_k`` nearest chunks.

    Returns:
        Hits ``{"doc_id", "chunk_index", "score", "text", "year", ...payload}``, best first.
    """
    from kademe.embed.ladder import cuda_usable
    from kademe.embed.model import load_encoder

    model = load_encoder(resolve_model(s.model), "cuda" if cuda_usable(s.device) else "cpu")
    vec = model.encode([query], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)[0]
    with open_store(s) as client:
        if not call("collection_exists", client.collection_exists, s.collection):
            raise KademeError(f"Collection '{s.collection}' does not exist.\n\nRun kademe ingest first, or check --collection and --workdir.")
        result = call("query", client.query_points, s.collection, query=vec.tolist(), using=vector_name(s.model),
                      query_filter=year_filter(year) if year else None, limit=top_k, with_payload=True)
    return [{"doc_id": p.payload.get("doc_id"), "chunk_index": p.payload.get("chunk_index"), "score": round(p.score, 4),
             "text": p.payload.get("text"), "year": p.payload.get("year"),
             **{k: v for k, v in p.payload.items() if k not in ("text",)}} for p in result.points]
