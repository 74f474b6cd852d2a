"""The lexical stage: a BM25 sparse vector for every chunk, checkpointed shard by shard.

Each shard of the ``lexical`` checkpoint (``kademe.checkpoint``) holds ``shard_size`` chunks'
``point_id``, ``indices`` (uint32) and ``values`` (float32), in chunk order, aligned with the embed
shards. Its key chains the chunk key with the analyzer's fingerprint (``kademe.lexical.bm25``), so a
changed analyzer recomputes these shards and nothing else: never the dense embedding. A night's
rerun runs the analyzer on new chunk texts only (issue 29): each shard keeps its texts' ``text_sha``,
and a text the previous checkpoint of the same settings holds takes its vector from there
(``kademe.lexical.reuse``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kademe.checkpoint import shard_count
from kademe.keys import chain_key
from kademe.partition import Partition
from kademe.chunks import ChunkResult, ChunkStream
from kademe.ids import text_sha
from kademe.lexical.bm25 import analyzer_fingerprint, sparse_documents
from kademe.lexical.reuse import PreviousSparse
from kademe.retention import lineage
from kademe.settings import Settings

SPARSE_SCHEMA = pa.schema([("point_id", pa.string()), ("indices", pa.list_(pa.uint32())), ("values", pa.list_(pa.float32())),
                           ("text_sha", pa.string())])


@dataclass(frozen=True)
class SparseResult:
    """The sparse vectors of one partition: ``shards`` files under ``folder``."""

    key: str
    folder: Path
    shards: int
    count: int
    cached: bool
    seconds: float = 0.0
    part: Partition | None = None

    def shard(self, i: int) -> Path:
        """The local path of committed shard ``i``."""
        return self.part.checkpoint("lexical", self.key).shard_file(i)


def lexical_key(chunk_key: str, s: Settings) -> str:
    """The lexical checkpoint's key: the chunk checkpoint's key, the lexical settings and the analyzer."""
    return chain_key(chunk_key, s.fingerprint("lexical"), analyzer_fingerprint(s.bm25_language))


def sparse_chunks(chunks: ChunkResult | ChunkStream, year: int, s: Settings) -> SparseResult:
    """Compute the BM25 document vector of every chunk of a partition (resumable per shard).

    Args:
        chunks: the chunk stage's result, or its stream while it runs (issue 32).
        year: the year (the partition is ``(s.corpus, year)``).
        s: settings (``bm25_language``, ``shard_size``).

    Returns:
        A ``SparseResult``; ``cached`` is True when every shard was already there.
    """
    part = s.partition(year)
    cp = part.checkpoint("lexical", lexical_key(chunks.key, s))
    if (meta := cp.hit()) is not None:
        return SparseResult(cp.key, cp.folder, shard_count(meta["chunks"], s.shard_size), meta["chunks"], cached=True, part=part)

    cp.crash("start")
    committed = cp.committed_shards()
    previous = None  # issue 29: the sparse vectors of texts an earlier lexical checkpoint of these settings holds
    n_shards = 0
    columns = ["point_id", "text"] + (["text_sha"] if "text_sha" in chunks.names() else [])  # a chunk file from before issue 22 has none
    # shard by shard as the chunk stage commits them (a ChunkStream), or from a finished chunk checkpoint
    for i, cols in enumerate(chunks.columns(s.shard_size, columns)):
        n_shards = i + 1
        if i in committed:
            continue
        if previous is None:
            previous = PreviousSparse.find(part, lineage(s, "lexical"), skip=cp.key) or False
        shas = [sha or text_sha(t) for sha, t in zip(cols.get("text_sha") or [None] * len(cols["text"]), cols["text"])]
        vectors = [previous.get(sha) if previous else None for sha in shas]
        todo = [j for j, v in enumerate(vectors) if v is None]
        for j, v in zip(todo, sparse_documents([cols["text"][j] for j in todo], s.bm25_language) if todo else []):
            vectors[j] = v
        ids = pa.array(cols["point_id"], pa.string())
        cp.put_shard(i, lambda path: write_sparse(path, ids, vectors, shas), computed=len(todo))
        cp.crash("shard")
    cp.commit(chunks=chunks.count, language=s.bm25_language, lineage=lineage(s, "lexical"))
    return SparseResult(cp.key, cp.folder, n_shards, chunks.count, cached=False, seconds=cp.seconds, part=part)


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
