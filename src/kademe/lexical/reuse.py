"""Sparse vectors a partition has already computed, found by the SHA-256 of their chunk text (issue 29).

A BM25 document vector is a function of the text and the analyzer alone, so a night's lexical stage
takes the vector of every chunk text it computed before (in the previous lexical checkpoint of the
same settings, ``kademe.retention.lineage``) and runs the analyzer on the new texts only.
"""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kademe.partition import Partition


class PreviousSparse:
    """The sparse vectors of an earlier committed lexical checkpoint, by text hash.

    Only the ``text_sha`` column is read up front; a shard's vectors are read when a chunk needs them, and
    the ``keep`` last used shards are kept: a text that recurs (boilerplate, a decision appended again)
    maps to its first occurrence, so a night's tail keeps referring back to early shards (one shard kept
    read a shard again for nearly every such chunk: a night's lexical stage grew from 4.5 to 14 s over
    20 nights of bench/nights.py).

    Example:
        >>> previous = PreviousSparse.find(part, lineage(s, "lexical"), skip=key)
        >>> previous.get(text_sha("Birinci cümle."))   # (indices, values) or None
    """

    def __init__(self, cp, shards: int, keep: int = 16):
        self.cp = cp
        self.where: dict[str, tuple[int, int]] = {}
        for i in range(shards):
            table = pq.read_table(cp.shard_file(i), columns=["text_sha"])
            for j, sha in enumerate(table.column("text_sha").to_pylist()):
                if sha:
                    self.where.setdefault(sha, (i, j))
        self._shard = functools.lru_cache(maxsize=keep)(self._read)

    @classmethod
    def find(cls, part: Partition, lineage: str, skip: str | None = None) -> PreviousSparse | None:
        """The newest committed lexical checkpoint of ``part`` with this lineage and text hashes; None if none."""
        cp = part.newest("lexical", lineage, skip)
        if cp is None:
            return None
        try:
            shards = len(cp.meta.get("files", {}))
            if not shards or "text_sha" not in pq.read_schema(cp.shard_file(0)).names:  # written before issue 29
                return None
            return cls(cp, shards)
        except (OSError, pa.ArrowException):
            return None

    def get(self, sha: str) -> tuple[np.ndarray, np.ndarray] | None:
        found = self.where.get(sha)
        if found is None:
            return None
        i, j = found
        return self._shard(i)[j]

    def _read(self, i: int) -> list[tuple[np.ndarray, np.ndarray]]:
        from kademe.lexical.shards import read_sparse

        return read_sparse(self.cp.shard_file(i))[1]
