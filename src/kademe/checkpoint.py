"""Checkpoints: one protocol for every stage, in the spirit of dlt's load packages.

A partition is ``(corpus, year)`` and lives in ``<workdir>/<corpus>/<year>/``. A stage's output
there is named by a content key: ``<stage>-<key12>.parquet`` (or a folder of shards), written to a
temporary name and renamed into place, so a file under its final name is always whole. Keys chain:
each stage's key hashes its input's key and the settings (and model identity) that change its
output; the first key hashes the source file's bytes. ``<stage>-<key12>.json``, the *done file*,
is written last and lists every file with its row count; a checkpoint is a hit only when the done
file exists and every Parquet footer still holds those rows. ``state.json`` (the manifest) records
each stage's checkpoint, counts and seconds; ``kademe verify`` and ``kademe upgrade`` start from it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Partition:
    """The files of one ``(corpus, year)`` under the work directory, and its manifest (``state.json``).

    Example:
        >>> Partition(Path("work"), "yargitay", 2011).path
        PosixPath('work/yargitay/2011')
    """

    workdir: Path
    corpus: str
    year: int

    @property
    def path(self) -> Path:
        return Path(self.workdir) / self.corpus / str(self.year)

    @property
    def label(self) -> str:
        return f"{self.corpus}/{self.year}"

    @property
    def rejects(self) -> Path:
        return self.path / "rejects.ndjson"

    @property
    def manifest_path(self) -> Path:
        return self.path / "state.json"

    def manifest(self) -> dict:
        return read_json(self.manifest_path) or {}

    def record(self, stage: str, entry: dict) -> None:
        """Set one stage's entry of the manifest (atomic rewrite, under the partition's lock).

        Stages commit concurrently (upsert runs beside embed), so the read-modify-write holds an
        ``fcntl`` lock on ``state.json.lock``: a lock per open file, so it orders threads of one
        process as well as processes.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / "state.json.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            data = self.manifest()
            data[stage] = entry
            write_json(self.manifest_path, data)
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def checkpoint(self, stage: str, key: str) -> Checkpoint:
        return Checkpoint(self, stage, key)

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


def partitions(workdir: Path, years: list[int], corpus: str | None = None) -> list[Partition]:
    """The partitions the work directory holds for ``years`` (one corpus, or every corpus), sorted."""
    root = Path(workdir)
    names = [corpus] if corpus else sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    return [Partition(root, name, year) for name in names for year in years
            if (root / name / str(year) / "state.json").exists()]


class Checkpoint:
    """One stage's output for one partition: files named by ``key``, a done file written last.

    A stage asks for a hit, else does its work into the checkpoint's files and commits::

        cp = part.checkpoint("chunk", key)
        if (meta := cp.hit()) is not None:
            return ChunkResult.from_meta(cp, meta, cached=True)
        cp.crash("start")
        with cp.sink(schema) as sink:
            ...
        meta = cp.commit(chunks=sink.rows)

    ``commit`` writes the done file (the files and their row counts, plus the stage's figures),
    records the stage in the manifest with the seconds it took, and reaches ``<stage>-done``.
    """

    def __init__(self, part: Partition, stage: str, key: str):
        self.part, self.stage, self.key = part, stage, key
        self.started = time.monotonic()
        self.files: list[Path] = []
        self.seconds = 0.0

    def file(self, name: str = "", suffix: str = ".parquet") -> Path:
        """``<stage>[-<name>]-<key12><suffix>`` in the partition; tracked for the done file."""
        path = self.part.path / f"{self.stage}{'-' + name if name else ''}-{self.key[:12]}{suffix}"
        if suffix == ".parquet" and path not in self.files:
            self.files.append(path)
        return path

    @property
    def folder(self) -> Path:
        """``<stage>-<key12>/``: where a sharded stage keeps its shards."""
        return self.part.path / f"{self.stage}-{self.key[:12]}"

    def shard(self, i: int, suffix: str = ".parquet") -> Path:
        """``<stage>-<key12>/shard-<i>.<suffix>``; Parquet shards are tracked for the done file."""
        path = self.folder / f"shard-{i:05d}{suffix}"
        if suffix == ".parquet" and path not in self.files:
            self.files.append(path)
        return path

    @property
    def done_path(self) -> Path:
        return self.part.path / f"{self.stage}-{self.key[:12]}.json"

    def crash(self, point: str) -> None:
        """The stage's crash point ``<stage>-<point>`` (``KADEME_FAULT_CRASH_AT``)."""
        crash_point(f"{self.stage}-{point}")

    def hit(self) -> dict | None:
        """The done file's figures when the checkpoint is finished and whole; else None.

        A hit is recorded in the manifest (0 seconds: nothing was done).
        """
        meta = read_json(self.done_path)
        if not meta or meta.get("key") != self.key:
            return None
        for name, rows in meta.get("files", {}).items():
            if parquet_rows(self.part.path / name) != rows:
                return None
        self._record(meta, cached=True)
        return meta

    def sink(self, schema: pa.Schema, name: str = "") -> ParquetSink:
        """A streaming Parquet writer for ``file(name)``, renamed into place when closed."""
        return ParquetSink(self.file(name), schema)

    def commit(self, **figures: Any) -> dict:
        """Write the done file last, record the manifest, reach ``<stage>-done``; return the done file's data."""
        self.seconds = time.monotonic() - self.started
        files = {str(p.relative_to(self.part.path)): parquet_rows(p) for p in self.files}
        meta = {"key": self.key, "stage": self.stage, "files": files, **figures}
        write_json(self.done_path, meta)
        self._record(meta, cached=False)
        self.crash("done")
        return meta

    def _record(self, meta: dict, cached: bool) -> None:
        entry = {k: v for k, v in meta.items() if k != "files"}
        main = self.folder if self.folder.is_dir() else self.part.path / f"{self.stage}-{self.key[:12]}.parquet"
        entry.update(path=str(main), cached=cached,
                     seconds=0.0 if cached else round(self.seconds, 3))
        self.part.record(self.stage, entry)
