"""Vectors a partition has already embedded, found by the SHA-256 of their chunk text (issue 21).

A rerun over a grown or edited source file asks ``ReuseIndex`` for each chunk before encoding it:
a text this partition embedded before, with the same model identity and dtype
(``vector_identity``), takes its vector from a committed embed checkpoint instead of the encoder,
or (issue 29) only a reference to the row that holds it (``kademe.embed.vectors``).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kademe.embed.vectors import EmbedVectors, Ref
from kademe.keys import chain_key
from kademe.partition import Partition
from kademe.settings import STAGE_VERSIONS, Settings, model_fingerprint


def vector_identity(s: Settings) -> str:
    """What makes two vectors of one text equal: the model's identity, the dtype and the stage's version.

    Not the shard size, not the chunk key: a vector depends on its text and the model only.
    """
    return chain_key("vectors", model_fingerprint(s.model) or s.model, str(s.dtype), str(STAGE_VERSIONS["embed"]))


REUSE_CHECKPOINTS = 3  # the newest committed embed checkpoints a run takes vectors from (with the bases they refer to)


class ReuseIndex:
    """Vectors already embedded in a partition, by text hash: the rows of committed embed checkpoints that hold one.

    Only checkpoints made with the same ``vector_identity`` count (the newest ``REUSE_CHECKPOINTS``
    and the bases their deltas refer to), and only primary-model vectors (a chunk that fell back to
    the small model is encoded again). Only the ``text_sha``, ``space`` and ``rung`` columns are read
    up front; a shard's vectors are read when a chunk needs them (``get``), never for a reference (``locate``).

    Example:
        >>> index = ReuseIndex(part, vector_identity(s), space="all-minilm-l6-v2")
        >>> index.locate(text_sha("Birinci cümle."))   # (rung, (base key, shard, row)) or None
    """

    def __init__(self, part: Partition, identity: str, space: str, skip: str | None = None):
        self.where: dict[str, tuple[str, Ref]] = {}  # text sha -> (rung, where its vector is held)
        self.metas: dict[str, dict] = {}  # key -> done file of every checkpoint indexed
        self.space, self.vectors = space, None
        metas = [m for m in part.committed("embed") if m.get("vector_identity") == identity and m.get("key") != skip]
        todo = [m for m in metas[:REUSE_CHECKPOINTS]]
        known = {m["key"]: m for m in metas}
        while todo:
            meta = todo.pop(0)
            if meta["key"] in self.metas:
                continue
            self.metas[meta["key"]] = meta
            self._index(part, meta, space)
            for base in meta.get("bases", []):
                if base not in self.metas:
                    found = known.get(base) or part.checkpoint("embed", base).done()
                    if found is not None:
                        todo.append(found)
        if self.metas:
            cp = part.checkpoint("embed", next(iter(self.metas)))
            self.vectors = EmbedVectors(cp)

    def _index(self, part: Partition, meta: dict, space: str) -> None:
        cp = part.checkpoint("embed", meta["key"])
        cp.meta = meta
        for i in range(int(meta.get("shards") or len(meta.get("files", {})))):
            try:
                table = pq.read_table(cp.shard_file(i), columns=["text_sha", "space", "rung"])
            except (OSError, pa.ArrowException):  # a damaged old checkpoint: its vectors are not reused
                continue
            cols = [table.column(c).to_pylist() for c in ("text_sha", "space", "rung")]
            for j, (sha, sp, rung) in enumerate(zip(*cols)):
                if sha and sp == space:  # a reference row has no sha: its vector is indexed at its base
                    self.where.setdefault(sha, (rung, (meta["key"], i, j)))

    def locate(self, sha: str) -> tuple[str, Ref] | None:
        """``(rung, (key, shard, row))`` of the row holding this text's vector, or None."""
        return self.where.get(sha)

    def get(self, sha: str) -> tuple[str, str, np.ndarray] | None:
        """``(space, rung, vector)`` of this text, or None."""
        found = self.where.get(sha)
        if found is None:
            return None
        rung, ref = found
        return self.space, rung, self.vectors.vector(ref)

    def worth_compacting(self, shas: list[str], count: int) -> bool:
        """Whether a checkpoint of these chunk texts should hold every vector rather than refer to its bases
        (``kademe.embed.vectors.should_compact``)."""
        from kademe.embed.vectors import row_width, should_compact

        refs = [self.where[sha][1] for sha in shas if sha in self.where]
        bases = {key for key, _, _ in refs}
        return should_compact({k: self.metas[k] for k in bases}, len(refs), count, row_width(list(self.metas.values())))
