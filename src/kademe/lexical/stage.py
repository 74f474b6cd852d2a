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

import pyarrow as pa

from kademe.checkpoint import shard_count
from kademe.keys import chain_key
from kademe.partition import Partition
from kademe.chunks import ChunkResult, ChunkStream
from kademe.ids import text_sha
from kademe.lexical.bm25 import analyzer_fingerprint, sparse_documents
from kademe.lexical.reuse import PreviousSparse
from kademe.lexical.shards import write_sparse
from kademe.retention import lineage
from kademe.settings import Settings

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
            previous = PreviousSparse.find(part, lineage(s, "lexical", analyzer_fingerprint(s.bm25_language)), skip=cp.key) or False
        shas = [sha or text_sha(t) for sha, t in zip(cols.get("text_sha") or [None] * len(cols["text"]), cols["text"])]
        vectors = [previous.get(sha) if previous else None for sha in shas]
        todo = [j for j, v in enumerate(vectors) if v is None]
        for j, v in zip(todo, sparse_documents([cols["text"][j] for j in todo], s.bm25_language) if todo else []):
            vectors[j] = v
        ids = pa.array(cols["point_id"], pa.string())
        cp.put_shard(i, lambda path: write_sparse(path, ids, vectors, shas), computed=len(todo))
        cp.crash("shard")
    cp.commit(chunks=chunks.count, language=s.bm25_language, lineage=lineage(s, "lexical", analyzer_fingerprint(s.bm25_language)))
    return SparseResult(cp.key, cp.folder, n_shards, chunks.count, cached=False, seconds=cp.seconds, part=part)
