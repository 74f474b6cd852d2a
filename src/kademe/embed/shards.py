"""The embed shard format: one Parquet file of vectors per shard of a partition's chunks.

A shard holds ``point_id``, ``space`` (the vector name), ``rung`` (the ladder's rung that made it),
``vector`` (float32 bytes) and ``text_sha`` (what the vector is found again by). The embed stage
writes shards; reuse, upsert, upgrade and verify read them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kademe.parquet_io import binary_values

# A vector is one binary value: its float32 values, little-endian. Parquet then writes no list levels
# (one per float), so a shard of 512 x 1024 dims writes in 5.7 ms instead of 8.8 and reads back in
# 1.2 ms instead of 7.6 (issue 22). Shards written before hold ``list<float32>``; ``read_shard`` reads both.
SHARD_SCHEMA = pa.schema(
    [("point_id", pa.string()), ("space", pa.string()), ("rung", pa.string()), ("vector", pa.large_binary()),
     ("text_sha", pa.string())]
)

# Floats neither compress nor fit a dictionary: writing the vectors plain, without dictionary or
# statistics, takes ~1/4 of the time of zstd with Arrow's defaults, for the same file size.
VECTOR_PARQUET = {"compression": {"point_id": "zstd", "space": "zstd", "rung": "zstd", "vector": "none",
                                  "text_sha": "zstd"},
                  "use_dictionary": ["space", "rung"], "write_statistics": ["point_id"]}


def write_shard(path: Path, ids: list[str], spaces: list[str], rungs: list[str], vectors: list[np.ndarray],
                shas: list[str | None] | None = None) -> int:
    """Write one shard to ``path`` (its table: ``shard_table``).

    Returns:
        The rows written.
    """
    table = shard_table(ids, spaces, rungs, vectors, shas)
    # Straight to the file, not into memory and then one write: a shard is written between encoder
    # batches, with cold caches, and there the extra in-memory copy costs 7.3 ms a 2 MB shard
    # against 3.3 (bench/shard_write.py; back to back, caches warm, the two are within ~20 %).
    # In whole runs it cut the embed stage's own CPU by a third (issue 22).
    with pa.OSFile(str(path), "wb") as sink:
        pq.write_table(table, sink, **VECTOR_PARQUET)
    return len(ids)


def shard_table(ids: list[str], spaces: list[str], rungs: list[str], vectors: list[np.ndarray],
                shas: list[str | None] | None = None) -> pa.Table:
    """One shard's rows as an Arrow table; the vectors as one flat float32 buffer (no per-float Python)."""
    lengths = np.fromiter(map(len, vectors), dtype=np.int64, count=len(vectors))
    offsets = np.concatenate([[0], np.cumsum(lengths * 4)]).astype(np.int64)  # in bytes
    flat = np.concatenate(vectors).astype("<f4", copy=False) if vectors else np.zeros(0, "<f4")
    column = pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(vectors), [None, pa.py_buffer(offsets), pa.py_buffer(flat)])
    return pa.Table.from_arrays(
        [pa.array(ids, pa.string()), pa.array(spaces, pa.string()), pa.array(rungs, pa.string()), column,
         pa.array(shas or [None] * len(ids), pa.string())], schema=SHARD_SCHEMA)


def read_shard(path: Path) -> tuple[list[str], list[str], list[str], list[np.ndarray]]:
    """``(point ids, spaces, rungs, vectors)`` of one shard; each vector a float32 view of one buffer."""
    table = pq.read_table(path)
    vec = table.column("vector").combine_chunks()
    if pa.types.is_list(vec.type):  # a shard written before issue 22: list<float32>
        flat = vec.values.to_numpy(zero_copy_only=False)
        offsets = vec.offsets.to_numpy()
    else:  # float32 bytes, one vector a value
        flat, offsets = binary_values(vec, "<f4")
    vectors = [flat[offsets[j]:offsets[j + 1]] for j in range(len(offsets) - 1)]
    return (table.column("point_id").to_pylist(), table.column("space").to_pylist(),
            table.column("rung").to_pylist(), vectors)
