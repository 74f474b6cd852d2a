"""The lexical shard format: one Parquet file of BM25 sparse vectors per shard of a partition's chunks.

A shard holds ``point_id``, ``indices`` (uint32), ``values`` (float32) and ``text_sha`` (what a
night finds the vector again by, issue 29), in chunk order, aligned with the embed shards. The
lexical stage writes shards; its reuse, the upsert and upgrade read them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SPARSE_SCHEMA = pa.schema([("point_id", pa.string()), ("indices", pa.list_(pa.uint32())), ("values", pa.list_(pa.float32())),
                           ("text_sha", pa.string())])


def write_sparse(path: Path, ids: pa.Array, vectors: list[tuple[np.ndarray, np.ndarray]], shas: list[str] | None = None) -> int:
    """Write one shard of sparse vectors to ``path``, as flat Arrow buffers; return the rows written."""
    lengths = np.fromiter((len(ix) for ix, _ in vectors), dtype=np.int32, count=len(vectors))
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    flat_ix = np.concatenate([ix for ix, _ in vectors]).astype(np.uint32) if vectors else np.zeros(0, np.uint32)
    flat_v = np.concatenate([v for _, v in vectors]).astype(np.float32) if vectors else np.zeros(0, np.float32)
    table = pa.Table.from_arrays([ids, pa.ListArray.from_arrays(offsets, pa.array(flat_ix)),
                                  pa.ListArray.from_arrays(offsets, pa.array(flat_v)),
                                  pa.array(shas or [None] * len(ids), pa.string())], schema=SPARSE_SCHEMA)
    pq.write_table(table, path, compression="zstd")
    return len(ids)


def read_sparse(path: Path) -> tuple[list[str], list[tuple[np.ndarray, np.ndarray]]]:
    """``(point ids, [(indices, values)])`` of one shard, as numpy views of flat buffers."""
    table = pq.read_table(path)
    ix, vals = table.column("indices").combine_chunks(), table.column("values").combine_chunks()
    offsets = ix.offsets.to_numpy()
    flat_ix, flat_v = ix.values.to_numpy(zero_copy_only=False), vals.values.to_numpy(zero_copy_only=False)
    pairs = [(flat_ix[offsets[j]:offsets[j + 1]], flat_v[offsets[j]:offsets[j + 1]]) for j in range(len(offsets) - 1)]
    return table.column("point_id").to_pylist(), pairs
