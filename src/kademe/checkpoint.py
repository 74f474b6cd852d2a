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

import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from kademe.faults import crash_point
from kademe.parquet_io import ParquetSink, parquet_rows
from kademe.storage import dump_json, load_json, new_token


def shard_count(count: int, shard_size: int) -> int:
    """The shards ``count`` rows take at ``shard_size`` rows a shard (the last one partial).

    Example:
        >>> shard_count(1025, 512)
        3
    """
    return -(-count // shard_size)


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

    def __init__(self, part, stage: str, key: str):
        # part: the kademe.partition.Partition it belongs to (not imported: the partition hands out checkpoints)
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
        meta = load_json(self.storage.get(self.done_name))
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
        if not self.storage.put(self.done_name, dump_json(meta), create=True):
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
                marker = load_json(self.storage.get(self._marker(i)))
                if not marker or sizes.get(self._name(f"{self.dir}/{marker.get('file')}"), (None,))[0] != marker.get("bytes"):
                    self.storage.delete(self._marker(i))
                    todo.append(i)
                    continue
                self.shards[i] = marker
        return todo

    def committed_shards(self) -> dict[int, dict]:
        """Every shard committed whole so far, by number, with its marker: for a stage that does not know its
        shard count in advance (the chunk stage, issue 32). Markers whose part is damaged are withdrawn (see ``pending``)."""
        names = self.storage.list(self._name(self.dir))
        numbers = [int(n.rsplit("shard-", 1)[1][:5]) for n in names if n.rsplit("/", 1)[-1].startswith("shard-") and n.endswith(".json")]
        n = max(numbers) + 1 if numbers else 0
        todo = set(self.pending(n))
        return {i: self.shards[i] for i in range(n) if i not in todo}

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
        if not self.storage.put(self._marker(i), dump_json(marker), create=True):
            self.storage.delete(self._name(f"{self.dir}/{rel}"))
            marker = load_json(self.storage.get(self._marker(i))) or marker
        self.shards[i] = marker
        return marker

    def shard_marker(self, i: int) -> dict | None:
        """Shard ``i``'s committed marker (its part's name, rows, and what the stage stored beside)."""
        if i not in self.shards:
            marker = load_json(self.storage.get(self._marker(i)))
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
        self.storage.put(self._name(f"{self.dir}/shard-{i:05d}.done"), dump_json(data), create=True)

    def unmark(self) -> None:
        """Withdraw every ``mark``: a new run of the key redoes each shard (issue 29: an earlier run's marks
        vouch for store writes that later runs may have overwritten)."""
        for name in self.storage.list(self._name(self.dir)):
            if name.endswith(".done"):
                self.storage.delete(name)

    def marked(self) -> set[int]:
        """The shards ``mark`` committed."""
        names = self.storage.list(self._name(self.dir))
        return {int(n.rsplit("shard-", 1)[1][:5]) for n in names if n.endswith(".done")}

    # -- successors -------------------------------------------------------------------------------
    def successor(self) -> str | None:
        """The key of the checkpoint that replaced this one (``kademe upgrade``), if any."""
        return (load_json(self.storage.get(self._name(f"{self.dir}.next"))) or {}).get("key")

    def supersede(self, key: str) -> None:
        """Name ``key`` as this checkpoint's successor (create-only: the first upgrade wins)."""
        self.storage.put(self._name(f"{self.dir}.next"), dump_json({"key": key}), create=True)
