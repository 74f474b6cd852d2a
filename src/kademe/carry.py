"""Carry unchanged documents forward (issue 29): a night's chunk stage copies their rows instead of tokenizing them.

A document's content hash (``doc_digest``: every field but its line number) decides: a document
whose hash is the one it had in the previous committed chunk checkpoint made with the same settings
(``kademe.retention.lineage``) gets that checkpoint's rows back, byte for byte; chunking is a
function of the document and those settings alone, so the rows are the ones tokenizing would give.
Each chunk row keeps its document's hash (``doc_sha``) for the next night.

Example:
    >>> previous = PreviousChunks.find(part, lineage(s, "chunk"), skip=key)
    >>> previous.rows("2011-7", doc_digest(doc))     # a pyarrow Table of the document's chunks, or None
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from kademe.partition import Partition


def doc_digest(row: dict) -> str:
    """A document's content hash: everything but its line number."""
    return hashlib.sha256(json.dumps({k: v for k, v in row.items() if k != "line"}, sort_keys=True, default=str).encode()).hexdigest()


class PreviousChunks:
    """The chunk rows of an earlier committed chunk checkpoint, by document.

    Only ``doc_id`` and ``doc_sha`` are read up front; a shard's rows are read when a document needs
    them (the last two shards read are kept: a night's documents come mostly in the earlier order, so
    each shard is read about once), so memory stays bounded by a shard whatever the year's size.
    """

    def __init__(self, files: list[Path]):
        self.files = files
        self.docs: dict[str, tuple[str, list[tuple[int, int, int]]]] = {}  # doc_id -> (doc_sha, [(file, first row, rows)])
        for f, path in enumerate(files):
            table = pq.read_table(path, columns=["doc_id", "doc_sha"])
            for row, (doc, sha) in enumerate(zip(table.column("doc_id").to_pylist(), table.column("doc_sha").to_pylist())):
                found = self.docs.setdefault(doc, (sha, []))
                spans = found[1]
                if spans and spans[-1][0] == f and spans[-1][1] + spans[-1][2] == row:
                    spans[-1] = (f, spans[-1][1], spans[-1][2] + 1)
                else:
                    spans.append((f, row, 1))
        self._tables: dict[int, pa.Table] = {}

    @classmethod
    def find(cls, part: Partition, lineage: str, schema: pa.Schema, skip: str | None = None) -> PreviousChunks | None:
        """The newest committed chunk checkpoint of ``part`` with this lineage and per-document hashes; None if none."""
        cp = part.newest("chunk", lineage, skip)
        if cp is None:
            return None
        try:
            files = cp.files()
            if not files or not pq.read_schema(files[0]).equals(schema, check_metadata=False):  # before issue 29 (no doc_sha)
                return None
            return cls(files)
        except (OSError, pa.ArrowException):
            return None

    def rows(self, doc_id: str, sha: str) -> list[dict] | None:
        """The document's chunk rows when its hash is ``sha``; None when it is new or changed."""
        found = self.docs.get(doc_id)
        if found is None or found[0] != sha:
            return None
        rows: list[dict] = []
        for f, first, n in found[1]:
            rows += self._table(f).slice(first, n).to_pylist()
        return rows

    def _table(self, f: int) -> pa.Table:
        if f not in self._tables:
            if len(self._tables) >= 2:
                self._tables.pop(next(iter(self._tables)))
            self._tables[f] = pq.read_table(self.files[f])
        return self._tables[f]
