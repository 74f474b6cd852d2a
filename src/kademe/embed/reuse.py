"""Vectors a partition has already embedded, found by the SHA-256 of their chunk text (issue 21).

A rerun over a grown or edited source file asks ``ReuseIndex`` for each chunk before encoding it:
a text this partition embedded before, with the same model identity and dtype
(``vector_identity``), takes its vector from a committed embed checkpoint instead of the encoder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kademe.keys import chain_key
from kademe.partition import Partition
from kademe.settings import STAGE_VERSIONS, Settings, model_fingerprint


def vector_identity(s: Settings) -> str:
    """What makes two vectors of one text equal: the model's identity, the dtype and the stage's version.

    Not the shard size, not the chunk key: a vector depends on its text and the model only.
    """
    return chain_key("vectors", model_fingerprint(s.model) or s.model, str(s.dtype), str(STAGE_VERSIONS["embed"]))


REUSE_CHECKPOINTS = 3  # the newest committed embed checkpoints a run takes vectors from


class ReuseIndex:
    """Vectors already embedded in a partition, by text hash: the committed embed checkpoints' shards.

    Only checkpoints made with the same ``vector_identity`` count (the newest ``REUSE_CHECKPOINTS``),
    and only primary-model vectors (a chunk that fell back to the small model is encoded again).
    Only the ``text_sha`` column is read up front; a shard's vectors are read when a chunk needs them.

    Example:
        >>> index = ReuseIndex(part, vector_identity(s), space="all-minilm-l6-v2")
        >>> index.get(text_sha("Birinci cümle."))   # kademe.chunk.text_sha; (space, rung, vector) or None
    """

    def __init__(self, part: Partition, identity: str, space: str, skip: str | None = None):
        self.where: dict[str, tuple[Path, int]] = {}
        self._tables: dict[Path, tuple] = {}
        used = 0
        for meta in part.committed("embed"):  # newest first: each holds (nearly) all of the year
            if meta.get("vector_identity") != identity or meta.get("key") == skip:
                continue
            if used == REUSE_CHECKPOINTS:
                break
            used += 1
            cp = part.checkpoint("embed", meta["key"])
            cp.meta = meta
            for path in cp.files():
                try:
                    table = pq.read_table(path, columns=["text_sha", "space"])
                except (OSError, pa.ArrowException):  # a damaged old checkpoint: its vectors are not reused
                    continue
                for j, (sha, sp) in enumerate(zip(table.column("text_sha").to_pylist(), table.column("space").to_pylist())):
                    if sha and sp == space:
                        self.where.setdefault(sha, (path, j))

    def get(self, sha: str) -> tuple[str, str, np.ndarray] | None:
        found = self.where.get(sha)
        if found is None:
            return None
        path, j = found
        if path not in self._tables:
            if len(self._tables) >= 4:
                self._tables.pop(next(iter(self._tables)))
            from kademe.embed.shards import read_shard

            self._tables[path] = read_shard(path)
        ids, spaces, rungs, vectors = self._tables[path]
        return spaces[j], rungs[j], vectors[j]
