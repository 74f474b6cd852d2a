"""The embed stage: chunk checkpoint in, vector shards out, resumable shard by shard.

Each shard holds ``shard_size`` chunks' vectors (``point_id``, ``space`` = vector name, ``rung``,
``vector``, ``text_sha``); its marker (``kademe.checkpoint``) holds the OOM events met while
embedding it. The done file is written last, when every shard is committed. A killed run redoes at
most the shard that was in flight.

Work in proportion to the change (issue 21): a chunk whose text was embedded before in this
partition, by the same model identity and dtype, takes its vector from a committed embed
checkpoint (``ReuseIndex``, keyed by the SHA-256 of the text) instead of the encoder. A grown or
edited source file therefore encodes only its new and changed chunks.

While it runs, finished shards are handed to the upsert stage through a ``ShardFeed``, so shard
*i* is written to the store while shard *i+1* is encoded (issue 14).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from kademe.checkpoint import Checkpoint, shard_count
from kademe.chunks import ChunkResult, ChunkStream
from kademe.embed.feed import ShardFeed
from kademe.embed.model import TokenIds
from kademe.embed.reuse import ReuseIndex, vector_identity
from kademe.embed.shards import write_shard
from kademe.embed.vectors import chunk_shas, reused_rows, write_delta
from kademe.faults import crash_point
from kademe.ids import text_sha
from kademe.keys import chain_key
from kademe.retention import lineage
from kademe.settings import Settings

Progress = Callable[..., None]  # (chunks done so far, total chunks, embedded=, reused=, committed= of those done)
Events = Callable[[str], None]  # one line per OOM event or rung change, as it happens
Found = Callable[[int, list[str]], list]  # (shard, its text hashes) -> per chunk (space, rung, vector) to keep, or None


@dataclass(frozen=True)
class EmbedResult:
    """Where the vectors are and what it took to make them."""

    key: str
    shards_dir: Path
    shards: int
    count: int
    rungs: dict[str, int]
    oom_events: list[dict]
    degraded: bool
    device: str
    allocator: str | None
    cached: bool
    dtype: str | None = None
    seconds: float = 0.0
    encode_seconds: float = 0.0
    # One meaning each (issue 30): embedded + reused + committed == count.
    embedded: int = 0  # chunks this run encoded
    reused: int = 0  # chunks whose vector this run took from an earlier checkpoint by text hash (issue 21)
    committed: int = 0  # chunks in shards (or a whole checkpoint) an earlier run had already committed
    model_revision: str | None = None  # the Hub commit of the model that made the vectors (issue 30)

    @classmethod
    def from_summary(cls, cp: Checkpoint, shards: int, count: int, summary: dict, cached: bool,
                     run: tuple[int, int] = (0, 0)) -> EmbedResult:
        """Build from the embed done file (see ``summarize_shards``) and ``run``: this run's (encoded, reused)."""
        embedded, reused = (0, 0) if cached else run
        return cls(cp.key, cp.folder, shards, count, summary["rungs"], summary["oom_events"], summary["degraded"],
                   summary["device"], summary["allocator"], cached, summary.get("dtype"),
                   0.0 if cached else cp.seconds, 0.0 if cached else summary.get("encode_seconds", 0.0),
                   embedded, reused, count - embedded - reused, summary.get("model_revision"))


def embed_key(chunk_key: str, s: Settings, year: int) -> str:
    """The embed checkpoint's key, known before embedding starts (the upsert stage follows it).

    A checkpoint that ``kademe upgrade`` replaced names its successor: the key is then the
    upgraded checkpoint's.
    """
    part = s.partition(year)
    key = chain_key(chunk_key, s.fingerprint("embed"))
    while nxt := part.checkpoint("embed", key).successor():
        key = nxt
    return key


def embed_chunks(chunks: ChunkResult | ChunkStream, year: int, s: Settings, progress: Progress | None = None,
                 feed: ShardFeed | None = None, events: Events | None = None) -> EmbedResult:
    """Embed every chunk of a partition, shard by shard, through the OOM ladder.

    Args:
        chunks: the chunk stage's result, or its stream while it runs (issue 32: the encoder starts on its first shard).
        year: the year (the partition is ``(s.corpus, year)``).
        s: settings (model, fallback model, device, dtype, batch size, token budget, shard size).
        progress: called with ``(done, total)`` after each shard.
        feed: told about each shard as it lands, for an upsert running alongside.
        events: called with a line for each OOM event or rung change as it happens.

    Returns:
        An ``EmbedResult``; ``cached`` is True when every shard was already there.
    """
    cp = s.partition(year).checkpoint("embed", embed_key(chunks.key, s, year))
    try:
        result = _embed(cp, chunks, s, progress, feed, events)
    except BaseException as e:
        if feed:
            feed.close(e)
        raise
    if feed:
        feed.close()
    return result


def _embed(cp: Checkpoint, chunks: ChunkResult | ChunkStream, s: Settings, progress: Progress | None,
           feed: ShardFeed | None, events: Events | None) -> EmbedResult:
    if (meta := cp.hit()) is not None:
        n_shards = meta.get("shards") or shard_count(chunks.finished().count, s.shard_size)
        for i in range(n_shards):
            if feed:
                feed.put(i)
        return EmbedResult.from_summary(cp, n_shards, chunks.finished().count, meta, cached=True)

    cp.crash("start")
    identity = vector_identity(s)
    tally: dict[str, int] = {}
    own_cpu = embed_shards(cp, chunks, s, _reused(cp, chunks, s, identity), progress, feed.put if feed else None, events, tally)
    n_shards = shard_count(chunks.finished().count, s.shard_size)  # a stream's count is known once it has been read
    summary = summarize_shards(cp, n_shards, s)
    # own_cpu_seconds: this run's (a resumed run's covers the shards it embedded); issue 22 point 4 holds it to
    # <= 5 % of the encoder's time. Waiting (for the cores or the GIL, held by the stages beside it) is not in it.
    meta = cp.commit(**summary, shard_size=s.shard_size, shards=n_shards, vector_identity=identity,
                     own_cpu_seconds=round(own_cpu, 3), lineage=lineage(s, "embed"))
    return EmbedResult.from_summary(cp, n_shards, chunks.finished().count, meta, cached=False, run=(tally["embedded"], tally["reused"]))


def _reused(cp: Checkpoint, chunks: ChunkResult, s: Settings, identity: str) -> Found:
    """The vectors this partition embedded before (``ReuseIndex``), indexed once some shard needs them."""
    index = None

    compact = True

    def found(i: int, shas: list[str]) -> list:
        nonlocal index, compact
        if index is None:
            from kademe.models import vector_name

            index = ReuseIndex(cp.part, identity, vector_name(s.model), skip=cp.key)
            # issue 29: a reference to the row holding a reused vector, unless the bases hold too much the year no longer needs
            compact = not index.where or index.worth_compacting(chunk_shas(chunks.finished()), chunks.finished().count)
        spaces, rungs, vectors, refs = reused_rows(index, shas, compact)  # a first run has nothing to reuse
        return [None if sp is None else (sp, rung, vec) if ref is None else (sp, rung, None, ref)
                for sp, rung, vec, ref in zip(spaces, rungs, vectors, refs)]

    return found


def embed_shards(cp: Checkpoint, chunks: ChunkResult | ChunkStream, s: Settings, reuse: Found, progress: Progress | None = None,
                 on_shard: Callable[[int], None] | None = None, events: Events | None = None,
                 tally: dict[str, int] | None = None) -> float:
    """Write ``cp``'s pending shards of ``chunks`` (``s.shard_size`` each): kept vectors, the rest encoded.

    The one shard loop: the embed stage keeps what ``ReuseIndex`` finds, ``kademe upgrade`` what the
    degraded checkpoint holds in the primary space. Each shard is committed on its own (its marker
    holds the OOM events, device, dtypes, chunks embedded and reused).

    Args:
        reuse: ``(shard, text hashes)`` -> per chunk ``(space, rung, vector)`` to keep, ``(space, rung, None,
            (base key, shard, row))`` to refer to (a delta, ``kademe.embed.vectors``), or None to encode.
        on_shard: called with each shard's index, in order, once it is committed (written now or before).
        tally: filled with this run's ``embedded`` (encoded) and ``reused`` (kept) chunks (issue 30).

    Returns:
        This thread's CPU seconds outside the encoder (reading, planning, bookkeeping, shard writes).
    """
    committed = cp.committed_shards()  # a stream's shard count is not known in advance (issue 32)
    ladder = None  # the model is loaded only if some shard needs it
    columns = ["point_id", "text", "n_tokens"]
    kept = chunks.names()
    columns += [c for c in ("token_ids", "text_sha") if c in kept]  # a chunk file from before issue 22 keeps neither:
    # the encoder then tokenizes, and this stage hashes the texts
    own_cpu = time.thread_time()  # this thread's CPU outside the encoder: reading, planning, bookkeeping, shard writes
    tally = tally if tally is not None else {}
    tally.update(embedded=0, reused=0)  # this run's; the shards an earlier run committed are the rest (issue 30)
    done = 0
    # shard by shard as the chunk stage commits them (a ChunkStream), or from a finished chunk checkpoint
    for i, cols in enumerate(chunks.columns(s.shard_size, columns, arrow=("token_ids",))):
        done += len(cols["point_id"])
        if i not in committed:
            texts, ids = cols["text"], cols["point_id"]
            shas = cols["text_sha"] if "text_sha" in cols else [text_sha(t) for t in texts]
            found = reuse(i, shas)
            todo = [j for j, f in enumerate(found) if f is None]
            spaces, rungs, vectors, refs = [None] * len(ids), [None] * len(ids), [None] * len(ids), [None] * len(ids)
            for j, f in enumerate(found):
                if f is not None:
                    spaces[j], rungs[j], vectors[j] = f[:3]
                    refs[j] = f[3] if len(f) > 3 else None  # kept as a reference to the row holding it (issue 29)
            side: dict = {"events": [], "allocator": None, "device": "cpu", "dtype": {}, "encode_seconds": 0.0}
            if todo:
                if ladder is None:
                    from kademe.embed.ladder import Ladder

                    ladder = Ladder(s)
                    if events:
                        ladder.on_event = lambda e: events(f"OOM on {e.rung}: {e.rows} rows x {e.padded_tokens} padded tokens -> {e.action}")
                    crash_point("model-loaded")
                encoding = getattr(ladder, "encode_seconds", 0.0)
                whole = len(todo) == len(ids)  # nothing reused: the columns as they are
                pick = (lambda xs: xs) if whole else (lambda xs: [xs[j] for j in todo])
                tokens = TokenIds.of(cols["token_ids"]) if "token_ids" in cols else None
                if tokens is not None and not whole:
                    tokens = tokens.take(todo)
                out = ladder.embed(pick(texts), pick(cols["n_tokens"]), tokens)
                for j, space, rung, vec in zip(todo, out.spaces, out.rungs, out.vectors):
                    spaces[j], rungs[j], vectors[j] = space, rung, vec
                side = {"events": [e.as_dict() for e in out.events], "allocator": ladder.allocator,
                        "device": ladder.real_device, "dtype": _dtypes(ladder, out.rungs),
                        "encode_seconds": getattr(ladder, "encode_seconds", 0.0) - encoding}
            bases = sorted({r[0] for r in refs if r is not None})
            write = (lambda path: write_delta(path, ids, spaces, rungs, vectors, shas, refs)) if bases else \
                (lambda path: write_shard(path, ids, spaces, rungs, vectors, shas))
            cp.put_shard(i, write, **side, embedded=len(todo), reused=len(ids) - len(todo), rungs=dict(Counter(rungs)),
                         stored=sum(r is None for r in refs), bases=bases)
            cp.crash("shard")
            tally["embedded"], tally["reused"] = tally["embedded"] + len(todo), tally["reused"] + len(ids) - len(todo)
        if on_shard:
            on_shard(i)
        if progress:
            total = max(done, chunks.expected())  # a stream's estimate grows as the chunks land
            progress(done, total, **tally, committed=done - tally["embedded"] - tally["reused"])
    return time.thread_time() - own_cpu - (ladder.encode_cpu_seconds if ladder is not None else 0.0)


def _dtypes(ladder, rungs: list[str]) -> dict[str, str]:
    dtypes = getattr(ladder, "dtypes", {}) or {}
    return {r: dtypes.get(r, "float32") for r in sorted(set(rungs))}


def summarize_shards(cp: Checkpoint, n_shards: int, s: Settings) -> dict:
    """Rungs, OOM events, allocator, device, dtypes, the degraded flag and chunks embedded/reused over all shards."""
    from kademe.models import resolve_model, snapshot_commit, vector_name

    rungs: Counter[str] = Counter()
    events: list[dict] = []
    allocator, devices, dtypes, encode, embedded, reused, stored, bases = None, set(), {}, 0.0, 0, 0, 0, set()
    for i in range(n_shards):
        side = cp.shard_marker(i) or {}
        embedded += side.get("embedded", side.get("rows", 0))
        reused += side.get("reused", 0)
        stored += side.get("stored", side.get("rows", 0))
        bases |= set(side.get("bases", []))
        events += side.get("events", [])
        allocator = side.get("allocator") or allocator
        devices.add(side.get("device", "cpu"))
        dtypes.update(side.get("dtype") or {})
        encode += side.get("encode_seconds", 0.0)
        if "rungs" in side:  # counted when the shard was written (issue 22: the summary reads no shard back)
            rungs.update(side["rungs"])
        else:  # a marker from before: count the shard's rung column
            rungs.update(pq.read_table(cp.shard_file(i), columns=["rung"]).column("rung").to_pylist())
    return {
        "rungs": dict(rungs),
        "oom_events": events,
        "degraded": rungs.get("gpu-small", 0) > 0,
        "device": "cuda" if "cuda" in devices else "cpu",
        "dtype": ",".join(sorted(set(dtypes.values()))) or None,
        "allocator": allocator,
        "model": s.model,
        "model_revision": snapshot_commit(resolve_model(s.model)),  # the Hub commit loaded (None: a folder, the packaged model)
        "space": vector_name(s.model),
        "encode_seconds": round(encode, 3),
        "embedded": embedded,
        "reused": reused,
        "stored": stored,  # rows holding their vector; the others refer to the bases' (issue 29)
        "bases": sorted(bases),
    }
