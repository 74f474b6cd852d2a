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

    Only ``doc_id`` and ``doc_sha`` are read up front; rows are read a row group at a time when a
    document needs them (a night's documents come mostly in the earlier order, so each row group is
    read about once), so memory stays bounded by a row group whatever the year's size.
    """

    def __init__(self, path: Path, schema: pa.Schema):
        self.file = pq.ParquetFile(path)
        self.schema = schema
        table = self.file.read(columns=["doc_id", "doc_sha"])
        self.docs: dict[str, tuple[str, int, int]] = {}  # doc_id -> (doc_sha, first row, rows)
        for row, (doc, sha) in enumerate(zip(table.column("doc_id").to_pylist(), table.column("doc_sha").to_pylist())):
            first = self.docs.get(doc)
            self.docs[doc] = (sha, row, 1) if first is None else (first[0], first[1], first[2] + 1)
        self.starts = [0]
        for g in range(self.file.metadata.num_row_groups):
            self.starts.append(self.starts[-1] + self.file.metadata.row_group(g).num_rows)
        self._group: tuple[int, pa.Table] | None = None

    @classmethod
    def find(cls, part: Partition, lineage: str, schema: pa.Schema, skip: str | None = None) -> PreviousChunks | None:
        """The newest committed chunk checkpoint of ``part`` with this lineage and per-document hashes; None if none."""
        for meta in part.committed("chunk"):
            if meta.get("lineage") != lineage or meta["key"] == skip:
                continue
            cp = part.checkpoint("chunk", meta["key"])
            cp.meta = meta
            try:
                path = cp.file()
                if not pq.read_schema(path).equals(schema, check_metadata=False):  # written before issue 29 (no doc_sha) or by another version
                    return None
                return cls(path, schema)
            except (OSError, pa.ArrowException):
                return None
        return None

    def rows(self, doc_id: str, sha: str) -> pa.Table | None:
        """The document's chunk rows when its hash is ``sha``; None when it is new or changed."""
        found = self.docs.get(doc_id)
        if found is None or found[0] != sha:
            return None
        _, first, n = found
        parts = []
        while n:
            g = self._group_of(first)
            table = self._read(g)
            start = first - self.starts[g]
            take = min(n, table.num_rows - start)
            parts.append(table.slice(start, take))
            first, n = first + take, n - take
        return parts[0] if len(parts) == 1 else pa.concat_tables(parts)

    def _group_of(self, row: int) -> int:
        import bisect

        return bisect.bisect_right(self.starts, row) - 1

    def _read(self, g: int) -> pa.Table:
        if self._group is None or self._group[0] != g:
            self._group = (g, self.file.read_row_group(g))
        return self._group[1]
