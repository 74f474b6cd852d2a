"""An embed checkpoint's vectors, read through its references: the one way upsert, verify and upgrade read them (issue 29).

A night that changes 1 % of a year must not write a copy of the year's vectors. An embed shard is
therefore either whole (``kademe.embed.shards``: every row holds its vector) or a *delta*: rows whose
vector an earlier committed checkpoint holds keep only a reference to it (``base`` = that
checkpoint's key, ``base_shard``, ``base_row``; ``vector`` and ``text_sha`` null). A reference always
names the row that *holds* the vector, never another reference, so reading resolves in one step.
The done file lists the ``bases`` its shards refer to; ``kademe.retention`` keeps them while the
checkpoint is kept. A delta shard of 512 references is ~10 KB against ~2 MB whole at 1024 dims.

When the bases hold much more than the year needs (vectors of withdrawn or edited chunks, the
references of older deltas), the stage writes whole shards again: ``should_compact``.

Example:
    >>> vectors = EmbedVectors(part.checkpoint("embed", key))
    >>> ids, spaces, rungs, vecs = vectors.shard(0)    # references resolved
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kademe.embed.shards import SHARD_SCHEMA, VECTOR_PARQUET, read_shard, shard_table

DELTA_SCHEMA = pa.schema([*SHARD_SCHEMA, ("base", pa.string()), ("base_shard", pa.int32()), ("base_row", pa.int32())])
DELTA_PARQUET = {**VECTOR_PARQUET, "compression": {**VECTOR_PARQUET["compression"], "base": "zstd", "base_shard": "zstd",
                                                   "base_row": "zstd"},
                 "use_dictionary": [*VECTOR_PARQUET["use_dictionary"], "base"]}
COMPACT_WASTE = 0.2  # whole shards again once the bases hold 20 % more bytes than a whole checkpoint would

Ref = tuple[str, int, int]  # (base key, shard, row) of the row that holds a vector


def write_delta(path: Path, ids: list[str], spaces: list[str], rungs: list[str], vectors: list[np.ndarray | None],
                shas: list[str | None], refs: list[Ref | None]) -> int:
    """Write a delta shard: row ``j`` holds ``vectors[j]`` when ``refs[j]`` is None, else refers to ``refs[j]``."""
    empty = np.zeros(0, "<f4")
    table = shard_table(ids, spaces, rungs, [empty if r else v for v, r in zip(vectors, refs)],
                        [None if r else s for s, r in zip(shas, refs)])
    held = pa.array([r is None for r in refs])
    vector = pc.if_else(held, table.column("vector"), pa.scalar(None, pa.large_binary()))
    table = table.set_column(3, "vector", vector).append_column("base", pa.array([r[0] if r else None for r in refs], pa.string()))
    table = table.append_column("base_shard", pa.array([r[1] if r else None for r in refs], pa.int32()))
    table = table.append_column("base_row", pa.array([r[2] if r else None for r in refs], pa.int32()))
    with pa.OSFile(str(path), "wb") as sink:
        pq.write_table(table, sink, **DELTA_PARQUET)
    return len(ids)


def read_refs(path: Path) -> list[Ref | None] | None:
    """The references of a shard's rows (None for a row that holds its vector); None for a whole shard."""
    schema = pq.read_schema(path)
    if "base" not in schema.names:
        return None
    table = pq.read_table(path, columns=["base", "base_shard", "base_row"])
    return [None if b is None else (b, s, r) for b, s, r in zip(*(table.column(c).to_pylist() for c in ("base", "base_shard", "base_row")))]


class EmbedVectors:
    """The vectors of one embed checkpoint (committed, or shard by shard while it is written), references resolved.

    Base shards are read whole when a reference first needs them, and the ``keep`` last used are kept
    (a delta refers mostly in order, so each base shard is read about once per reader).
    """

    def __init__(self, cp, keep: int = 8):
        # cp: the kademe.checkpoint.Checkpoint of the embed checkpoint (not imported: stage -> vectors -> shards only)
        self.cp, self.keep = cp, keep
        self._bases: dict[str, object] = {}
        self._shards: dict[tuple[str, int], tuple] = {}

    def shard(self, i: int) -> tuple[list[str], list[str], list[str], list[np.ndarray]]:
        """``(point ids, spaces, rungs, vectors)`` of shard ``i``, every vector resolved."""
        path = self.cp.shard_file(i)
        ids, spaces, rungs, vectors = read_shard(path)
        refs = read_refs(path)
        if refs is not None:
            for j, ref in enumerate(refs):
                if ref is not None:
                    vectors[j] = self.vector(ref)
        return ids, spaces, rungs, vectors

    def vector(self, ref: Ref) -> np.ndarray:
        """The vector held at ``ref`` (a base checkpoint's shard and row)."""
        key, i, row = ref
        shard = self._shards.pop((key, i), None)  # least recently used first: boilerplate refers back to early shards
        if shard is None:
            if len(self._shards) >= self.keep:
                self._shards.pop(next(iter(self._shards)))
            shard = read_shard(self.base(key).shard_file(i))
        self._shards[(key, i)] = shard
        return shard[3][row]

    def base(self, key: str):
        """The committed base checkpoint ``key``."""
        if key not in self._bases:
            base = self.cp.part.checkpoint("embed", key)
            base.meta = base.done()
            if base.meta is None:
                raise FileNotFoundError(f"{base.done_name}: the vectors of {self.cp.dir} refer to a checkpoint that is "
                                        "not committed; delete the partition's embed-* checkpoints and rerun")
            self._bases[key] = base
        return self._bases[key]


def stored_rows(meta: dict) -> int:
    """Rows of a committed embed checkpoint that hold their vector (all of them, before deltas)."""
    return int(meta.get("stored", sum(meta.get("files", {}).values())))


def should_compact(bases: dict[str, dict], reused: int, count: int, width: int) -> bool:
    """Whether a new embed checkpoint should be written whole instead of as a delta on ``bases``.

    Args:
        bases: key -> done file of each checkpoint the delta would refer to.
        reused: its rows that would refer to a base.
        count: its rows.
        width: bytes of a whole row (the vector and its columns).

    Returns:
        True when what the delta keeps (the bases, whole, and its own new vectors) passes a whole
        checkpoint's bytes by more than ``COMPACT_WASTE``: the vectors of withdrawn and edited chunks and
        older deltas' references have piled up.
    """
    held = sum(sum(meta.get("bytes", {}).values()) for meta in bases.values())
    return bool(bases) and held + (count - reused) * width > (1 + COMPACT_WASTE) * count * width


def row_width(metas: list[dict]) -> int:
    """Bytes a whole row takes, from the committed checkpoint that stores the most rows (0 if none)."""
    best = max(metas, key=stored_rows, default=None)
    if best is None or not stored_rows(best):
        return 0
    return int(sum(best.get("bytes", {}).values()) / max(1, sum(best.get("files", {}).values())))


def reused_rows(reuse, shas: list[str], whole: bool) -> tuple[list, list, list, list[Ref | None]]:
    """``(spaces, rungs, vectors, refs)`` of a shard's rows from the ``ReuseIndex``: a found text gets its
    vector (``whole``) or a reference to it; a row left with neither is for the encoder."""
    n = len(shas)
    spaces, rungs, vectors, refs = [None] * n, [None] * n, [None] * n, [None] * n
    if reuse is None or not reuse.where:  # a first run has nothing to reuse
        return spaces, rungs, vectors, refs
    for j, sha in enumerate(shas):
        found = reuse.locate(sha)
        if found is None:
            continue
        spaces[j], rungs[j] = reuse.space, found[0]
        if whole:
            vectors[j] = reuse.vectors.vector(found[1])
        else:
            refs[j] = found[1]
    return spaces, rungs, vectors, refs


def chunk_shas(chunks) -> list[str]:
    """The text hash of every chunk of a chunk stage's result, in order (hashed here for a chunk file without them)."""
    from kademe.ids import text_sha

    if "text_sha" in chunks.names():
        return chunks.table(["text_sha"]).column("text_sha").to_pylist()
    return [text_sha(t) for t in chunks.table(["text"]).column("text").to_pylist()]
