"""Prefect flows: ``ingest-year`` (one year) and ``ingest-years`` (several, one after another).

Steps executed for a partition (corpus, year):
  1. read    — parse the year's file; bad lines become rejects with a reason
  2. clean   — validate and normalise records; exact duplicates counted, others rejected
  3. chunk   — split with the model's tokenizer so nothing is truncated, shard by shard ...
  4. lexical — ... a BM25 sparse vector per chunk (Qdrant's Turkish analyzer), each shard as it lands ...
  5. embed   — ... and, beside it, encode through the OOM ladder, each shard as it lands (progress artifact) ...
  6. upsert  — ... while finished shards are written with deterministic ids; stale points removed
  7. verify  — compare the collection with the checkpoints, then collect the superseded checkpoints
  8. index   — build the store's index (Qdrant Edge's HNSW) once, after the last year
Every stage skips itself when its content-keyed checkpoint exists, so a rerun or a flow-run retry
redoes only what did not finish. Steps 1-7 hold the partition's global concurrency limit
(``flows/limits.py``): two workers never work one partition at once.
Reports go to ``<workdir>/<corpus>/<year>/report.json`` and to artifacts.
"""

from __future__ import annotations

import os
import re
import time

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import CancelledRun

from flows.gpu import gpu_slot
from flows.limits import partition_lock
from flows.parameters import settings_from, takes_settings
from flows.stopping import completed, stoppable
from kademe import interrupt
from kademe.chunk import chunk_key, chunk_texts
from kademe.chunks import ChunkResult, ChunkStream
from kademe.clean import CleanResult, clean_records
from kademe.embed.feed import ShardFeed
from kademe.embed.stage import EmbedResult, embed_chunks
from kademe.errors import KademeError
from kademe.progress import RunProgress
from kademe.faults import active_instruments, crash_point, pause_point
from kademe.collect import Lease, collect_partition, night_changes
from kademe.report import failed_year, markdown, rejects_by_reason, write_report, year_outcome, year_summary
from kademe.settings import Settings
from kademe.sources import ReadResult, read_year
from kademe.lexical.stage import SparseResult, sparse_chunks
from kademe.store import StoreUnavailable, open_store
from kademe.upsert import UpsertResult, upsert_points
from kademe.verify import verify_partition


def _transient_io(task, task_run, state) -> bool:
    """Retry file tasks on I/O hiccups only, never on bad input or user errors."""
    exc = state.result(raise_on_failure=False)
    return isinstance(exc, OSError) and not isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError))


def _store_down(task, task_run, state) -> bool:
    """Retry store tasks when Qdrant stayed unreachable through the per-call retries."""
    return isinstance(state.result(raise_on_failure=False), StoreUnavailable)


FILE_TASK = dict(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 5], retry_condition_fn=_transient_io)
STORE_TASK = dict(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[5, 15, 60], retry_condition_fn=_store_down)
# Seconds between updates of a year's embed progress artifact: each is an HTTP round trip to Prefect's server
# (~14 ms of the embed thread's wall time and 2 ms of its CPU, measured), one a shard before (issue 22).
PROGRESS_EVERY = 2.0


@task(name="read", **FILE_TASK)
@stoppable
def read_year_task(year: int, s: Settings) -> ReadResult:
    """Parse the year's source file."""
    return _logged("read", read_year(year, s))


@task(name="clean", **FILE_TASK)
@stoppable
def clean_records_task(read: ReadResult, year: int, s: Settings) -> CleanResult:
    """Validate and clean the records."""
    return _logged("clean", clean_records(read, year, s))


@task(name="chunk", **FILE_TASK)
@stoppable
def chunk_texts_task(clean: CleanResult, year: int, s: Settings, stream: ChunkStream | None = None) -> ChunkResult:
    """Split documents into model-sized chunks, handing each shard to the stages that follow the stream."""
    return _logged("chunk", chunk_texts(clean, year, s, stream))


@task(name="lexical", **FILE_TASK)
@stoppable
def sparse_chunks_task(chunks: ChunkResult | ChunkStream, year: int, s: Settings) -> SparseResult:
    """BM25 sparse vectors of the chunks."""
    return _logged("lexical", sparse_chunks(chunks, year, s))


@task(name="embed", cache_policy=NO_CACHE)
@stoppable
def embed_chunks_task(chunks: ChunkResult | ChunkStream, year: int, s: Settings, feed: ShardFeed | None = None) -> EmbedResult:
    """Embed the chunks through the OOM ladder (the ladder owns OOM; no task retries)."""
    key = f"embed-progress-{s.corpus}-{year}".lower()
    artifact = create_progress_artifact(0.0, key=_artifact_key(key), description=f"Chunks of {s.corpus} {year} embedded")

    watch = RunProgress()  # a live display on a terminal, one line per shard otherwise (stderr only)
    watch.start(f"{s.corpus} {year}", "embed", chunks.expected())  # a stream's estimate grows as the chunks land

    posted = [float("-inf")]

    def progress(done: int, total: int, **counts: int) -> None:
        now = time.monotonic()
        if done >= total or now - posted[0] >= PROGRESS_EVERY:  # the last shard always posts 100 %
            update_progress_artifact(artifact, 100.0 * done / max(total, 1))
            posted[0] = now
        watch(done, total, **counts)

    try:
        with gpu_slot():  # one embedding per GPU at a time: the worker's KADEME_GPU_SLOT limit (flows/gpu.py)
            return _logged("embed", embed_chunks(chunks, year, s, progress=progress, feed=feed, events=watch.event))
    finally:
        watch.finish()


@task(name="upsert", **STORE_TASK)
@stoppable
def upsert_points_task(chunks: ChunkResult, sparse: SparseResult, year: int, s: Settings,
                       feed: ShardFeed | None = None) -> UpsertResult:
    """Write the partition's points to Qdrant, each shard as soon as it is embedded."""
    return _logged("upsert", upsert_points(chunks, sparse, year, s, feed=feed))


@task(name="verify", **STORE_TASK)
@stoppable
def verify_year_task(year: int, s: Settings, wrote: bool = True) -> dict:
    """Check the collection against the checkpoints; by counts when this run wrote and deleted nothing (kademe.verify)."""
    with open_store(s) as store:
        return verify_partition(store, s.partition(year), by_counts=not wrote)


@task(name="collect", **FILE_TASK)
@stoppable
def collect_partition_task(year: int, s: Settings, lease: str) -> dict:
    """Collect the partition's superseded checkpoints: the workdir keeps one year, not one a night (issue 29)."""
    return collect_partition(s.partition(year), own_lease=lease)


@task(name="index", **STORE_TASK)
@stoppable
def build_index_task(s: Settings) -> float:
    """Build the store's index (Qdrant Edge: HNSW); the seconds it took."""
    pause_point("index-start")
    interrupt.check()  # Qdrant Edge's build holds the GIL until it is done: no signal is seen during it
    with open_store(s) as store:
        return store.optimize()


def _feed_depth() -> int:
    """How far the embedding may run ahead of the upsert: as far as it gets.

    The upsert starts when the chunk and lexical stages are done; until then the embed shards wait on
    disk instead of stalling the encoder (issue 32: the card never waits). On one core the stages take
    turns anyway: two shards ahead.
    """
    return 2 if (os.cpu_count() or 1) < 2 else 1 << 30


def _result_or_leave(future, feed: ShardFeed, stream: ChunkStream | None = None):
    """The future's result; if it failed, the upsert never comes: the embedding must not wait for it.

    A failed chunk stage (its retries spent) closes its stream with the error: the stages following it stop.
    """
    try:
        return future.result()
    except BaseException as e:
        if stream is not None:  # a chunk task that ended Cancelled (a stop request) stops its readers the same way
            stream.close(error=interrupt.Interrupted() if isinstance(e, CancelledRun) else e)
        feed.leave()
        raise


def _logged(stage: str, result):
    if getattr(result, "cached", False):
        get_run_logger().info("%s: reused checkpoint (%s)", stage, result.key[:12])
    return result


@flow(name="ingest-year", flow_run_name="ingest-{year}", log_prints=True)
@stoppable
@takes_settings()
def ingest_year(year: int, build_index: bool = True, **settings) -> dict:
    """Ingest one year of a corpus: read -> clean -> chunk -> lexical -> embed + upsert -> verify -> index.

    Returns the year's summary. ``build_index=False`` leaves the index build to the caller.
    """
    s = settings_from(settings)
    started = time.monotonic()

    # one writer per (corpus, year) across workers and hosts (flows/limits.py); the lease keeps a `kademe collect`
    # elsewhere from collecting what this run reads (kademe.retention)
    with partition_lock(s.corpus_name, year), Lease(s.partition(year), f"ingest pid {os.getpid()}") as lease:
        read = completed(read_year_task(year, s))  # completed(): a task asked to stop ended Cancelled (issue 30)
        clean = completed(clean_records_task(read, year, s))
        # No barrier before the card (issue 32): the chunk stage hands each shard to the lexical and embed
        # stages as it is committed, so the encoder starts on the first while the year is still being cut.
        stream = ChunkStream(chunk_key(clean.key, s))
        chunking = chunk_texts_task.submit(clean, year, s, stream)
        lexical = sparse_chunks_task.submit(stream, year, s)  # beside the embedding (issue 22); the upsert waits for it
        feed = ShardFeed(depth=_feed_depth())  # shard i is upserted while shard i+1 is encoded
        embedding = embed_chunks_task.submit(stream, year, s, feed)
        try:
            chunks = _result_or_leave(chunking, feed, stream)
            sparse = _result_or_leave(lexical, feed)
            upserted = completed(upsert_points_task(chunks, sparse, year, s, feed))
        finally:
            lexical.wait()
            embedding.wait()  # a failed upsert still lets the embedding finish inside the slot, not beside the next writer
        embedded = embedding.result()
        verifying = time.monotonic()
        check = completed(verify_year_task(year, s, wrote=bool(upserted.written or upserted.pruned)))
        verified = time.monotonic() - verifying
        collecting = time.monotonic()
        collected = completed(collect_partition_task(year, s, lease.token)) if check["ok"] else {"collected": 0}  # issue 29
        collected["seconds"] = time.monotonic() - collecting
    index = completed(build_index_task(s)) if build_index else 0.0

    stages = {"read": read, "clean": clean, "chunk": chunks, "lexical": sparse, "embed": embedded, "upsert": upserted}
    vectors = {"embedded": embedded.embedded, "reused": embedded.reused, "committed": embedded.committed}  # one meaning each
    status, error = year_outcome(s.partition(year), read.read, clean, check)
    if status == "empty":
        get_run_logger().warning("%s", error)
    summary = year_summary(
        counts={"read": read.read, "documents": clean.count, "duplicates": clean.duplicates, "rejected": clean.rejected,
                "chunks": chunks.count, **vectors, "upserted": upserted.upserted},
        cached=[name for name, r in stages.items() if r.cached],
        degraded=embedded.degraded, oom_events=embedded.oom_events, model=s.model, device=embedded.device,
        seconds=time.monotonic() - started, rungs=embedded.rungs, allocator=embedded.allocator, verify=check,
        status=status, error=error, corpus=s.corpus, dtype=embedded.dtype, instruments=active_instruments(),
        stages={**{name: r.seconds for name, r in stages.items()}, "index": index, "verify": verified,
                "collect": collected["seconds"]},
        changes={**night_changes(s.partition(year), stages, clean, embedded, upserted, collected), "chunks": vectors},
        model_revision=embedded.model_revision,
    )
    publish_year(year, s, summary)
    crash_point("year-done")
    return summary


def publish_year(year: int, s: Settings, summary: dict) -> None:
    """Save the report file and publish the markdown and rejects-table artifacts."""
    part = s.partition(year)
    write_report(part, summary)
    reasons = rejects_by_reason(part)
    create_markdown_artifact(markdown(year, summary, reasons), key=_artifact_key(f"kademe-report-{s.corpus}-{year}"),
                             description=f"kademe report {s.corpus} {year}")
    create_table_artifact([{"reason": k, "lines": v} for k, v in sorted(reasons.items())] or [{"reason": "none", "lines": 0}],
                          key=_artifact_key(f"kademe-rejects-{s.corpus}-{year}"), description=f"Rejected lines of {s.corpus} {year} by reason")


def _artifact_key(key: str) -> str:
    """Artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", key.lower())


@flow(name="ingest-years", flow_run_name="ingest-{years}", log_prints=True)
@stoppable
@takes_settings()
def ingest_years(years: list[int], **settings) -> dict:
    """Ingest several years one after another; a failed year is reported and the next one goes on.

    Each year's index is built right after that year (``stages.index``), so every year gets a
    segment of its own and a build costs that year only (issue 18).
    """
    s = settings_from(settings)
    result: dict = {"years": {}}
    for year in years:
        started = time.monotonic()
        state = ingest_year(year, **settings, build_index=True, return_state=True)
        if state.is_cancelled():  # asked to stop (issue 30): the years after it are not started
            raise interrupt.Interrupted()
        if state.is_completed():
            result["years"][str(year)] = state.result()
        else:
            exc = state.result(raise_on_failure=False)
            message = str(exc) if isinstance(exc, KademeError) else f"{type(exc).__name__}: {exc}"
            get_run_logger().error("year %s failed: %s", year, message)
            result["years"][str(year)] = failed_year(message, s.model, s.device, time.monotonic() - started)
            write_report(s.partition(year), result["years"][str(year)])
    return result
