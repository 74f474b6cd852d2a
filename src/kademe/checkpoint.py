"""Checkpoint files: atomic writes, content keys, and the per-year manifest.

A stage writes ``<workdir>/<year>/<stage>-<key12>.parquet`` to a temporary name and renames it into
place, so a file under its final name is always whole. Keys chain: each stage's key hashes the key of
its input and the settings that change its output, and the first key hashes the source file's bytes.
A killed run therefore finds either a finished checkpoint or none, and a changed input or setting
gives a new key (a new file) instead of a stale hit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from kademe.faults import crash_point


def chain_key(*parts: str) -> str:
    """Hash several keys or fingerprints into one 64-character hex key."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def file_digest(path: Path, chunk: int = 4 * 2**20) -> str:
    """SHA-256 of a file's bytes, read in 4 MiB pieces."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        crash_point("checkpoint-rename")
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), encoding="utf-8")


def read_json(path: Path) -> Any | None:
    """Read JSON, or None when the file is missing or torn."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None


class ParquetSink:
    """Stream record batches into one Parquet file, renamed into place on ``close()``.

    Example:
        >>> with ParquetSink(Path("out.parquet"), schema) as sink:
        ...     sink.write(rows)        # a list of dicts matching the schema
    """

    def __init__(self, path: Path, schema: pa.Schema):
        self.path, self.schema, self.rows = path, schema, 0
        self._atomic = atomic_path(path)
        self._tmp = self._atomic.__enter__()
        self._writer = pq.ParquetWriter(self._tmp, schema, compression="zstd")

    def write(self, rows: list[dict]) -> None:
        if rows:
            self._writer.write_table(pa.Table.from_pylist(rows, schema=self.schema))
            self.rows += len(rows)

    def __enter__(self) -> ParquetSink:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._writer.close()
        self._atomic.__exit__(exc_type, exc, tb)


def write_parquet(path: Path, rows: list[dict], schema: pa.Schema) -> None:
    """Write a list of dicts as one Parquet file, atomically."""
    with ParquetSink(path, schema) as sink:
        sink.write(rows)


def parquet_rows(path: Path) -> int | None:
    """Row count from a Parquet footer, or None when the file is missing or torn."""
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (FileNotFoundError, OSError, pa.ArrowException):
        return None


def iter_parquet(path: Path, batch_size: int = 1024, columns: list[str] | None = None) -> Iterator[list[dict]]:
    """Read a Parquet file back as lists of exactly ``batch_size`` dicts (the last may be shorter).

    Batches do not follow row groups, so batch ``i`` always holds rows ``i*batch_size`` onwards:
    shard numbers stay stable however the file was written. Memory stays bounded by a batch.
    """
    buffer: list[dict] = []
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size, columns=columns):
        buffer.extend(batch.to_pylist())
        while len(buffer) >= batch_size:
            yield buffer[:batch_size]
            buffer = buffer[batch_size:]
    if buffer:
        yield buffer


STALE_TEMP_SECONDS = 3600  # a temporary checkpoint file untouched this long belongs to a dead run


class YearDir:
    """The files of one year under the work directory, and its manifest (``state.json``).

    The manifest records, per stage, the key and path of the checkpoint the last run produced or
    reused; ``kademe verify`` and ``kademe upgrade`` start from it.
    """

    def __init__(self, workdir: Path, year: int):
        self.year = year
        self.path = Path(workdir) / str(year)

    def stage_file(self, stage: str, key: str, suffix: str = ".parquet") -> Path:
        return self.path / f"{stage}-{key[:12]}{suffix}"

    @property
    def rejects(self) -> Path:
        return self.path / "rejects.ndjson"

    @property
    def manifest_path(self) -> Path:
        return self.path / "state.json"

    def manifest(self) -> dict:
        return read_json(self.manifest_path) or {}

    def sweep_temp(self, older_than: float = STALE_TEMP_SECONDS) -> list[Path]:
        """Delete the temporary files a killed run left (``.<name>.<random>.tmp``); return them.

        Only files untouched for ``older_than`` seconds go: a live writer touches its file as it
        writes, so an old one has no writer left.
        """
        if not self.path.is_dir():
            return []
        cutoff = time.time() - older_than
        gone = []
        for tmp in self.path.rglob(".*.tmp"):
            try:
                if tmp.is_file() and tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
                    gone.append(tmp)
            except FileNotFoundError:  # its writer finished or another sweep took it meanwhile
                continue
        return gone

    def record(self, stage: str, **entry: Any) -> None:
        """Merge one stage's entry into the manifest (atomic rewrite)."""
        data = self.manifest()
        data[stage] = entry
        write_json(self.manifest_path, data)
