"""Checkpoints: one protocol for every stage, in the spirit of dlt's load packages (issue 20).

A partition is ``(corpus, year)`` and lives in ``<workdir>/<corpus>/<year>/``; the workdir is a
path or an object-store URL (``kademe.storage``). Keys chain: each stage's key hashes its input's
key and the settings (and model identity) that change its output; the first key hashes the source
file's bytes. A stage's checkpoint is laid out as::

    <stage>-<key12>/<name>-<token>.parquet        parts, under names only this writer uses
    <stage>-<key12>/shard-00000.json             a shard's commit: names its part (create-only)
    <stage>-<key12>/shard-00000-<token>.parquet
    <stage>-<key12>.json                          the done file: the commit (create-only), lists the parts
    manifest/<stage>/<time_ns>-<token>.json       one manifest record per commit or hit; the newest wins

No rename, no lock: a part is invisible until a done file or shard marker names it, and those are
written with a create-only put, so the first committer wins and a loser adopts the winner's
checkpoint (and deletes its own parts). ``Partition.collect`` deletes parts nothing names.
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

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kademe.faults import crash_point
from kademe.partition import MANIFEST_KEEP, STALE_TEMP_SECONDS, Partition, _dumps, _loads, partitions  # noqa: F401 - re-exported
from kademe.storage import new_token


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
    """Stream record batches into one Parquet file; ``publish(path, rows)`` runs when it closes whole.

    Without ``publish`` the file is written to a temporary name and renamed into place.

    Example:
        >>> with ParquetSink(Path("out.parquet"), schema) as sink:
        ...     sink.write(rows)        # a list of dicts matching the schema
    """

    def __init__(self, path: Path, schema: pa.Schema, publish=None):
        self.path, self.schema, self.rows, self._publish = path, schema, 0, publish
        if publish is None:
            self._atomic = atomic_path(path)
            self._tmp = self._atomic.__enter__()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._tmp = path
        self._writer = pq.ParquetWriter(self._tmp, schema, compression="zstd")

    def write(self, rows: list[dict]) -> None:
        if rows:
            self._writer.write_table(pa.Table.from_pylist(rows, schema=self.schema))
            self.rows += len(rows)

    def __enter__(self) -> ParquetSink:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._writer.close()
        if self._publish is None:
            self._atomic.__exit__(exc_type, exc, tb)
        elif exc_type is None:
            self._publish(self.path, self.rows)
        else:
            self.path.unlink(missing_ok=True)


def parquet_rows(path: Path) -> int | None:
    """Row count from a Parquet footer, or None when the file is missing or torn."""
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (FileNotFoundError, OSError, pa.ArrowException):
        return None


def _exact_batches(path: Path, batch_size: int, columns: list[str] | None) -> Iterator[pa.Table]:
    """Tables of exactly ``batch_size`` rows (the last may be shorter), whatever the file's row groups.

    Batches do not follow row groups, so batch ``i`` always holds rows ``i*batch_size`` onwards:
    shard numbers stay stable however the file was written. Memory stays bounded by a batch.
    """
    pending: list[pa.Table] = []
    held = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size, columns=columns):
        pending.append(pa.Table.from_batches([batch]))
        held += batch.num_rows
        while held >= batch_size:
            table = pa.concat_tables(pending) if len(pending) > 1 else pending[0]
            yield table.slice(0, batch_size)
            rest = table.slice(batch_size)
            pending, held = ([rest] if rest.num_rows else []), rest.num_rows
    if held:
        yield pa.concat_tables(pending) if len(pending) > 1 else pending[0]


def iter_parquet(path: Path, batch_size: int = 1024, columns: list[str] | None = None) -> Iterator[list[dict]]:
    """Read a Parquet file back as lists of exactly ``batch_size`` dicts (the last may be shorter; see ``_exact_batches``)."""
    for table in _exact_batches(path, batch_size, columns):
        yield table.to_pylist()


def iter_columns(path: Path, batch_size: int = 1024, columns: list[str] | None = None,
                 arrow: tuple[str, ...] = ()) -> Iterator[dict[str, list]]:
    """``iter_parquet``'s batches (the same rows in each), column by column: ``{name: [values]}``.

    No dict per row: the embed and lexical stages read every chunk of a year this way and want its
    columns as lists anyway (issue 22). Columns named in ``arrow`` stay pyarrow arrays (no Python
    object per value: the embed stage reads the token ids' buffers in place).
    """
    for table in _exact_batches(path, batch_size, columns):
        yield {name: table.column(name) if name in arrow else table.column(name).to_pylist() for name in table.column_names}


def binary_values(column, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """A binary column whose values are packed numbers (a shard's float32 vectors, a chunk's int32 token
    ids) as one numpy array over its buffer, nothing copied, and N+1 offsets into it, in numbers.

    ``dtype`` is a numpy dtype string (``"<f4"``, ``"<i4"``); nulls are not looked at (see ``is_valid``).
    """
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not (pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type)):
        raise TypeError(f"packed {dtype} values are a binary column, not {arr.type}")
    _, offset_buffer, data = arr.buffers()
    width = np.int64 if pa.types.is_large_binary(arr.type) else np.int32
    offsets = np.frombuffer(offset_buffer, dtype=width)[arr.offset:arr.offset + len(arr) + 1].astype(np.int64)
    flat = np.frombuffer(data, dtype=dtype) if data is not None else np.zeros(0, dtype)
    return flat, offsets // flat.itemsize


class Checkpoint:
    """One stage's output for one partition: parts under this writer's names, a done file as the commit.

    A stage asks for a hit, else does its work into the checkpoint's parts and commits::

        cp = part.checkpoint("chunk", key)
        if (meta := cp.hit()) is not None:
            return ChunkResult(cp.key, cp.file(), meta["chunks"], cached=True)
        cp.crash("start")
        with cp.sink(schema) as sink:
            ...
        meta = cp.commit(chunks=sink.rows)
        return ChunkResult(cp.key, cp.file(), ...)   # the committed winner's file

    A sharded stage asks for the pending shards and commits each shard on its own::

        for i in cp.pending(n_shards):
            cp.put_shard(i, lambda path: write(path, ...), events=[...])
        cp.commit(...)

    ``commit`` creates the done file (create-only: if another writer committed first, this one
    adopts that checkpoint and deletes its own parts), records the manifest with the seconds it
    took, and reaches ``<stage>-done``.
    """

    def __init__(self, part: Partition, stage: str, key: str):
        self.part, self.stage, self.key = part, stage, key
        self.storage = part.storage
        self.token = new_token()
        self.started = time.monotonic()
        self.seconds = 0.0
        self.meta: dict | None = None  # the committed done file, once hit or committed
        self.parts: dict[str, list[int]] = {}  # this writer's published parts: rel name -> [rows, bytes]
        self.shards: dict[int, dict] = {}  # committed shard markers known so far

    # -- names ------------------------------------------------------------------------------------
    @property
    def dir(self) -> str:
        """``<stage>-<key12>``, relative to the partition."""
        return f"{self.stage}-{self.key[:12]}"

    @property
    def folder(self) -> Path:
        """The checkpoint's local folder (a remote workdir's local cache)."""
        return self.part.path / self.dir

    def _name(self, rel: str) -> str:
        return f"{self.part.prefix}/{rel}"

    @property
    def done_name(self) -> str:
        return self._name(f"{self.dir}.json")

    def crash(self, point: str) -> None:
        """The stage's crash point ``<stage>-<point>`` (``KADEME_FAULT_CRASH_AT``)."""
        crash_point(f"{self.stage}-{point}")

    # -- whole checkpoints ------------------------------------------------------------------------
    def done(self) -> dict | None:
        """The committed done file's data, whole or not; None when nothing is committed."""
        meta = _loads(self.storage.get(self.done_name))
        return meta if meta and meta.get("key") == self.key else None

    def hit(self) -> dict | None:
        """The done file's figures when the checkpoint is committed and whole; else None.

        Whole: every part the done file names is there with its size. A committed checkpoint
        whose parts were damaged (a torn disk, a hand deletion) is withdrawn so the stage can
        commit again. A hit is recorded in the manifest (0 seconds: nothing was done).
        """
        meta = self.done()
        if meta is None:
            if self.storage.get(self.done_name) is not None:  # torn or foreign: withdraw it
                self.storage.delete(self.done_name)
            return None
        if not self._whole(meta):
            self.storage.delete(self.done_name)
            return None
        self.meta = meta
        self._record(meta, cached=True)
        return meta

    def _whole(self, meta: dict) -> bool:
        """Every part the done file names is there: with its size, or (a done file from before issue 20,
        in a local workdir) with its rows in the Parquet footer."""
        if "bytes" not in meta and not self.storage.remote:  # the earlier layout: files beside the done file
            return all(parquet_rows(self.part.path / rel) == rows for rel, rows in meta.get("files", {}).items())
        sizes = self.storage.list(self._name(self.dir))
        return all(sizes.get(self._name(rel), (None,))[0] == meta["bytes"].get(rel) for rel in meta.get("files", {}))

    def file(self, name: str = "") -> Path:
        """The local path of part ``name`` (``""``: the stage's main file) of the committed checkpoint.

        Before a commit, this writer's own path for it (where ``sink`` writes).
        """
        logical = name or self.stage
        if self.meta is not None:
            for rel in self.meta.get("files", {}):
                if rel.rsplit("/", 1)[-1].rsplit("-", 1)[0] in (logical, f"{self.stage}-{logical}"):  # (earlier layout)
                    return self.storage.fetch(self._name(rel))
        return self.storage.spool(self._name(f"{self.dir}/{logical}-{self.token}.parquet"))

    def files(self) -> list[Path]:
        """Local paths of every part of the committed checkpoint, in name order (shards in shard order)."""
        return [self.storage.fetch(self._name(rel)) for rel in sorted((self.meta or self.done() or {}).get("files", {}))]

    def sink(self, schema: pa.Schema, name: str = "") -> ParquetSink:
        """A streaming Parquet writer for part ``name``; published (not yet committed) when closed."""
        rel = f"{self.dir}/{name or self.stage}-{self.token}.parquet"
        return ParquetSink(self.storage.spool(self._name(rel)), schema, lambda path, rows: self._publish(rel, path, rows))

    def _publish(self, rel: str, path: Path, rows: int) -> None:
        """A part is whole on local disk: put it in the store (still named by nothing)."""
        crash_point("checkpoint-rename")  # the part is complete and not yet named by a commit
        size = path.stat().st_size
        self.storage.put_file(self._name(rel), path)
        self.parts[rel] = [rows, size]

    def commit(self, **figures: Any) -> dict:
        """Create the done file (first committer wins), record the manifest, reach ``<stage>-done``.

        Returns:
            The committed done file's data: this writer's, or the winner's when another writer
            committed the same key first (this writer's parts are then deleted).
        """
        self.seconds = time.monotonic() - self.started
        parts = dict(self.parts)
        for i, marker in sorted(self.shards.items()):
            parts[f"{self.dir}/{marker['file']}"] = [marker["rows"], marker["bytes"]]
        meta = {"key": self.key, "stage": self.stage, "files": {rel: v[0] for rel, v in parts.items()},
                "bytes": {rel: v[1] for rel, v in parts.items()}, **figures}
        if not self.storage.put(self.done_name, _dumps(meta), create=True):
            winner = self.done()
            if winner is None:
                raise RuntimeError(f"{self.done_name} exists but cannot be read back")
            for rel in self.parts:
                if rel not in winner.get("files", {}):
                    self.storage.delete(self._name(rel))
            meta = winner
        self.meta = meta
        self._record(meta, cached=False)
        self.crash("done")
        return meta

    def _record(self, meta: dict, cached: bool) -> None:
        entry = {k: v for k, v in meta.items() if k not in ("files", "bytes")}
        entry.update(path=f"{self.part.workdir}/{self._name(self.dir)}", cached=cached,
                     seconds=0.0 if cached else round(self.seconds, 3))
        self.part.record(self.stage, entry)

    # -- shards -----------------------------------------------------------------------------------
    def _marker(self, i: int) -> str:
        return self._name(f"{self.dir}/shard-{i:05d}.json")

    def pending(self, n_shards: int) -> list[int]:
        """The shards of ``range(n_shards)`` not yet committed whole; the others' markers are kept.

        A marker whose part is missing or of the wrong size is withdrawn, so the shard is redone.
        """
        sizes = self.storage.list(self._name(self.dir))
        todo = []
        for i in range(n_shards):
            if i not in self.shards:
                if self._marker(i) not in sizes:
                    todo.append(i)
                    continue
                marker = _loads(self.storage.get(self._marker(i)))
                if not marker or sizes.get(self._name(f"{self.dir}/{marker.get('file')}"), (None,))[0] != marker.get("bytes"):
                    self.storage.delete(self._marker(i))
                    todo.append(i)
                    continue
                self.shards[i] = marker
        return todo

    def put_shard(self, i: int, write, **side: Any) -> dict:
        """Write shard ``i`` with ``write(path) -> rows``, publish it, commit its marker (create-only).

        Returns:
            The shard's committed marker (another writer's, when it committed shard ``i`` first).
        """
        rel = f"shard-{i:05d}-{self.token}.parquet"
        path = self.storage.spool(self._name(f"{self.dir}/{rel}"))
        rows = write(path)
        crash_point("checkpoint-rename")
        size = path.stat().st_size
        self.storage.put_file(self._name(f"{self.dir}/{rel}"), path)
        marker = {"file": rel, "rows": rows, "bytes": size, **side}
        if not self.storage.put(self._marker(i), _dumps(marker), create=True):
            self.storage.delete(self._name(f"{self.dir}/{rel}"))
            marker = _loads(self.storage.get(self._marker(i))) or marker
        self.shards[i] = marker
        return marker

    def shard_marker(self, i: int) -> dict | None:
        """Shard ``i``'s committed marker (its part's name, rows, and what the stage stored beside)."""
        if i not in self.shards:
            marker = _loads(self.storage.get(self._marker(i)))
            if marker is None:
                return None
            self.shards[i] = marker
        return self.shards[i]

    def shard_file(self, i: int) -> Path:
        """The local path of committed shard ``i``."""
        marker = self.shard_marker(i)
        if marker is not None and marker.get("file"):
            return self.storage.fetch(self._name(f"{self.dir}/{marker['file']}"))
        for rel in (self.meta or self.done() or {}).get("files", {}):  # a checkpoint of the earlier layout
            if rel.rsplit("/", 1)[-1].startswith(f"shard-{i:05d}"):
                return self.storage.fetch(self._name(rel))
        raise FileNotFoundError(f"{self._marker(i)}: shard {i} is not committed")

    def mark(self, i: int, **data: Any) -> None:
        """Commit a shard that has no part (an upsert acknowledged by the store): ``shard-<i>.done``."""
        self.storage.put(self._name(f"{self.dir}/shard-{i:05d}.done"), _dumps(data), create=True)

    def marked(self) -> set[int]:
        """The shards ``mark`` committed."""
        names = self.storage.list(self._name(self.dir))
        return {int(n.rsplit("shard-", 1)[1][:5]) for n in names if n.endswith(".done")}

    # -- successors -------------------------------------------------------------------------------
    def successor(self) -> str | None:
        """The key of the checkpoint that replaced this one (``kademe upgrade``), if any."""
        return (_loads(self.storage.get(self._name(f"{self.dir}.next"))) or {}).get("key")

    def supersede(self, key: str) -> None:
        """Name ``key`` as this checkpoint's successor (create-only: the first upgrade wins)."""
        self.storage.put(self._name(f"{self.dir}.next"), _dumps({"key": key}), create=True)
