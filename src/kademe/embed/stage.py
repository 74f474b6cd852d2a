"""The embed stage: chunk checkpoint in, vector shards out, resumable shard by shard.

``<workdir>/<year>/embed-<key12>/shard-00000.parquet`` holds ``shard_size`` chunks' vectors
(``point_id``, ``space`` = vector name, ``rung``, ``vector``), and ``shard-00000.json`` the OOM
events met while embedding it. ``embed-<key12>.json`` is written last, when every shard is there.
A killed run redoes at most the shard that was in flight.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from kademe.checkpoint import YearDir, chain_key, iter_parquet, parquet_rows, read_json, write_json, write_parquet
from kademe.chunk import ChunkResult
from kademe.faults import crash_point
from kademe.settings import Settings

SHARD_SCHEMA = pa.schema(
    [("point_id", pa.string()), ("space", pa.string()), ("rung", pa.string()), ("vector", pa.list_(pa.float32()))]
)

Progress = Callable[[int, int], None]  # (chunks embedded so far, total chunks)


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

    def shard(self, i: int) -> Path:
        return shard_path(self.shards_dir, i)

    @classmethod
    def from_summary(cls, key: str, folder: Path, shards: int, count: int, summary: dict, cached: bool) -> EmbedResult:
        """Build from the ``embed-<key>.json`` summary (see ``summarize_shards``)."""
        return cls(key, folder, shards, count, summary["rungs"], summary["oom_events"], summary["degraded"],
                   summary["device"], summary["allocator"], cached)


def shard_path(folder: Path, i: int, suffix: str = ".parquet") -> Path:
    return folder / f"shard-{i:05d}{suffix}"


def embed_chunks(chunks: ChunkResult, year: int, s: Settings, progress: Progress | None = None) -> EmbedResult:
    """Embed every chunk of a year, shard by shard, through the OOM ladder.

    Args:
        chunks: the chunk stage's result.
        year: the year.
        s: settings (model, fallback model, device, batch size, token budget, shard size).
        progress: called with ``(done, total)`` after each shard.

    Returns:
        An ``EmbedResult``; ``cached`` is True when every shard was already there.
    """
    key = chain_key(chunks.key, s.fingerprint("embed"))
    yd = YearDir(s.workdir, year)
    folder, done = yd.stage_file("embed", key, ""), yd.stage_file("embed", key, ".json")
    n_shards = -(-chunks.count // s.shard_size)
    meta = read_json(done)
    if meta and all(_shard_ok(folder, i, chunks.count, s.shard_size) for i in range(n_shards)):
        yd.record("embed", key=key, path=str(folder), shards=n_shards, degraded=meta["degraded"])
        return EmbedResult.from_summary(key, folder, n_shards, chunks.count, meta, cached=True)

    crash_point("embed-start")
    ladder = None  # the model is loaded only if some shard needs embedding
    for i, rows in enumerate(iter_parquet(chunks.chunks, batch_size=s.shard_size, columns=["point_id", "text", "n_tokens"])):
        if not _shard_ok(folder, i, chunks.count, s.shard_size):
            if ladder is None:
                from kademe.embed.ladder import Ladder

                ladder = Ladder(s)
                crash_point("model-loaded")
            out = ladder.embed([r["text"] for r in rows], [r["n_tokens"] for r in rows])
            write_json(shard_path(folder, i, ".json"), {"events": [e.as_dict() for e in out.events], "allocator": ladder.allocator})
            write_parquet(shard_path(folder, i), [
                {"point_id": r["point_id"], "space": sp, "rung": rg, "vector": v.tolist()}
                for r, sp, rg, v in zip(rows, out.spaces, out.rungs, out.vectors)
            ], SHARD_SCHEMA)
            crash_point("embed-shard")
        if progress:
            progress(min((i + 1) * s.shard_size, chunks.count), chunks.count)

    summary = summarize_shards(folder, n_shards, s)
    write_json(done, summary)
    yd.record("embed", key=key, path=str(folder), shards=n_shards, degraded=summary["degraded"])
    crash_point("embed-done")
    return EmbedResult.from_summary(key, folder, n_shards, chunks.count, summary, cached=False)


def summarize_shards(folder: Path, n_shards: int, s: Settings) -> dict:
    """Rungs, OOM events, allocator and degraded flag over all shards of a year."""
    from kademe.embed.model import vector_name

    rungs: Counter[str] = Counter()
    events: list[dict] = []
    allocator = None
    for i in range(n_shards):
        side = read_json(shard_path(folder, i, ".json")) or {}
        events += side.get("events", [])
        allocator = side.get("allocator") or allocator
        for batch in iter_parquet(shard_path(folder, i), columns=["rung"], batch_size=8192):
            rungs.update(r["rung"] for r in batch)
    gpu = any(r.startswith("gpu") for r in rungs) or any(e["rung"].startswith("gpu") for e in events)
    return {
        "rungs": dict(rungs),
        "oom_events": events,
        "degraded": rungs.get("gpu-small", 0) > 0,
        "device": "cuda" if gpu else "cpu",
        "allocator": allocator,
        "model": s.model,
        "space": vector_name(s.model),
    }


def _shard_ok(folder: Path, i: int, total: int, size: int) -> bool:
    """A shard counts only if its Parquet footer is readable and it has the expected rows."""
    expected = min(size, total - i * size)
    return parquet_rows(shard_path(folder, i)) == expected

