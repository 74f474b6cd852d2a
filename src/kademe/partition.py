"""A partition ``(corpus, year)`` of the work directory: its storage, its manifest, its garbage collector.

The manifest is one record object per commit or hit (``manifest/<stage>/<time_ns>-<token>.json``),
never rewritten: the newest record of a stage is its entry, so concurrent stages, processes and
hosts never lose one (issue 20).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kademe.storage import Storage, dump_json, load_json, local_root, new_token, open_storage

if TYPE_CHECKING:
    from kademe.checkpoint import Checkpoint


STALE_TEMP_SECONDS = 3600  # an unnamed part or temporary file untouched this long belongs to a dead run
MANIFEST_KEEP = 8  # manifest records kept per stage by ``collect`` (the newest wins; older ones are history)


@dataclass(frozen=True)
class Partition:
    """The files of one ``(corpus, year)`` under the work directory (a path or a URL), and its manifest.

    Example:
        >>> Partition("work", "yargitay", 2011).label
        'yargitay/2011'
    """

    workdir: Path | str
    corpus: str
    year: int

    @property
    def storage(self) -> Storage:
        return open_storage(self.workdir)

    @property
    def prefix(self) -> str:
        """The partition's object names start with this: ``<corpus>/<year>``."""
        return f"{self.corpus}/{self.year}"

    @property
    def path(self) -> Path:
        """The partition's local folder (for a remote workdir: its local cache)."""
        storage = self.storage
        return (storage.cache if storage.remote else local_root(self.workdir)) / self.corpus / str(self.year)

    @property
    def label(self) -> str:
        return f"{self.corpus}/{self.year}"

    @property
    def rejects(self) -> Path:
        """``rejects.ndjson`` on local disk (fetched for a remote workdir; see ``get_text``)."""
        return self.path / "rejects.ndjson"

    def put_text(self, name: str, text: str) -> None:
        """Write a plain file of the partition (``report.json``, ``rejects.ndjson``): the last writer wins."""
        self.storage.put(f"{self.prefix}/{name}", text.encode("utf-8"))

    def get_text(self, name: str) -> str | None:
        data = self.storage.get(f"{self.prefix}/{name}")
        return None if data is None else data.decode("utf-8")

    def put_json(self, name: str, data: dict) -> None:
        """Write a plain JSON file of the partition (``report.json``) with the workdir's codec: the last writer wins."""
        self.storage.put(f"{self.prefix}/{name}", dump_json(data))

    def get_json(self, name: str) -> dict | None:
        """A plain JSON file of the partition; None when it is missing or torn."""
        return load_json(self.storage.get(f"{self.prefix}/{name}"))

    def manifest(self) -> dict:
        """``{stage: newest entry}``: for each stage, the newest of its manifest records."""
        storage, newest = self.storage, {}
        for name in storage.list(f"{self.prefix}/manifest"):
            stage = name.rsplit("/", 2)[-2]
            if name.endswith(".json") and name > newest.get(stage, ""):
                newest[stage] = name
        out = {}
        for stage, name in sorted(newest.items()):
            if (entry := load_json(storage.get(name))) is not None:
                out[stage] = entry
        if not out and not storage.remote:  # a partition written before issue 20: its state.json
            out = load_json(storage.get(f"{self.prefix}/state.json")) or {}
        return out

    def record(self, stage: str, entry: dict) -> None:
        """Add one manifest record for ``stage``: a new object under a name no other writer takes.

        Nothing is read or rewritten, so concurrent stages, processes and hosts never lose a record;
        the newest name (a nanosecond clock, then the writer's token) is the stage's entry.
        """
        name = f"{self.prefix}/manifest/{stage}/{time.time_ns():020d}-{new_token()}.json"
        self.storage.put(name, dump_json(entry), create=True)

    def committed(self, stage: str) -> list[dict]:
        """The done files of ``stage``'s committed checkpoints in this partition, newest first."""
        storage = self.storage
        found = {name: mtime for name, (_, mtime) in storage.list(self.prefix).items()
                 if name.count("/") == 2 and name.rsplit("/", 1)[1].startswith(f"{stage}-") and name.endswith(".json")}
        metas = [load_json(storage.get(name)) for name in sorted(found, key=found.get, reverse=True)]
        return [m for m in metas if m and m.get("stage") == stage and m.get("key")]

    def newest(self, stage: str, lineage: str, skip: str | None = None) -> Checkpoint | None:
        """The newest committed checkpoint of ``stage`` made with settings ``lineage`` (``kademe.retention.lineage``),
        other than ``skip``, with its done file loaded; None when there is none (issue 29: what a night reuses)."""
        for meta in self.committed(stage):
            if meta.get("lineage") == lineage and meta["key"] != skip:
                cp = self.checkpoint(stage, meta["key"])
                cp.meta = meta
                return cp
        return None

    def checkpoint(self, stage: str, key: str) -> Checkpoint:
        from kademe.checkpoint import Checkpoint

        return Checkpoint(self, stage, key)

    def sweep_temp(self, older_than: float = STALE_TEMP_SECONDS) -> list[Path]:
        """Delete the temporary files a killed run left in a local workdir; return them.

        Ours are ``.<name>.<random>.tmp`` (``storage.write_whole``); obstore's ``LocalStore`` stages a
        put as ``<name>#<n>`` beside its name.

        Only files untouched for ``older_than`` seconds go: a live writer touches its file as it
        writes, so an old one has no writer left.
        """
        if self.storage.remote or not self.path.is_dir():
            return []
        cutoff = time.time() - older_than
        gone = []
        staged = (p for p in self.path.rglob("*#*") if p.name.rsplit("#", 1)[1].isdigit())
        for tmp in itertools.chain(self.path.rglob(".*.tmp"), staged):
            try:
                if tmp.is_file() and tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
                    gone.append(tmp)
            except FileNotFoundError:  # its writer finished or another sweep took it meanwhile
                continue
        return gone

    def collect(self, older_than: float = STALE_TEMP_SECONDS) -> list[str]:
        """Garbage-collect: delete the parts that no done file or shard marker names; return their names.

        A part becomes visible only when a create-only commit names it, so a part nothing names is a
        loser's or a dead writer's. A live writer's part is not named *yet*: only parts older than
        ``older_than`` seconds go. Old manifest records beyond the newest ``MANIFEST_KEEP`` per stage
        go too.
        """
        storage = self.storage
        objects = storage.list(self.prefix)
        named: set[str] = set()
        committed: set[str] = set()  # a done file names every part of its checkpoint: its markers need no reading
        for name in objects:
            rel = name[len(self.prefix) + 1:]
            if "/" not in rel and rel.endswith(".json") and rel != "report.json":  # a done file
                named |= {f"{self.prefix}/{f}" for f in (load_json(storage.get(name)) or {}).get("files", {})}
                committed.add(rel[:-len(".json")])
        for name in objects:
            rel = name[len(self.prefix) + 1:]
            folder = rel.split("/")[0]
            if rel.count("/") == 1 and folder not in committed and rel.rsplit("/", 1)[1].startswith("shard-") and rel.endswith(".json"):
                if (f := (load_json(storage.get(name)) or {}).get("file")):
                    named.add(f"{self.prefix}/{folder}/{f}")
        cutoff = time.time() - older_than
        gone = [name for name, (_, mtime) in objects.items()
                if name.endswith(".parquet") and name not in named and mtime <= cutoff]
        records: dict[str, list[str]] = {}
        for name in objects:
            if name.startswith(f"{self.prefix}/manifest/"):
                records.setdefault(name.rsplit("/", 2)[-2], []).append(name)
        for names in records.values():
            gone += sorted(names)[:-MANIFEST_KEEP]
        for name in gone:
            storage.delete(name)
        return gone


def partitions(workdir: Path | str, years: list[int], corpus: str | None = None) -> list[Partition]:
    """The partitions the work directory holds for ``years`` (one corpus, or every corpus), sorted.

    A partition is held when it has at least one manifest record.
    """
    storage = open_storage(workdir)
    names = [corpus] if corpus else storage.children("")
    return [Partition(workdir, name, year) for name in names for year in years
            if storage.list(f"{name}/{year}/manifest") or storage.get(f"{name}/{year}/state.json") is not None]
