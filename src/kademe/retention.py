"""Retention (issue 29): which checkpoints of a partition are still needed, and what collecting the rest reclaims.

A night commits a new checkpoint per stage; the one before is then *superseded*. What stays:

- per stage, the newest commit and the checkpoint the newest manifest record names (the last run's);
- per stage and settings lineage (``lineage``: the fingerprints of the stage and the stages feeding
  it), the newest commit for ``KEEP_OTHER_SETTINGS`` seconds, so two collections with two models in
  one workdir do not collect each other's checkpoints every night;
- the upsert checkpoint each store's state names (``store-<fp12>.state``: ``applied``, ``applying``;
  ``kademe.delta``): its digests are what the next night diffs against;
- the bases of every kept embed checkpoint: the checkpoints holding the vectors a delta refers to
  (``kademe.embed.vectors``), and the ``.next`` pointer of an upgraded checkpoint while its successor stays;
- a checkpoint not yet committed, when it is newer than its stage's newest commit (a killed run's,
  to be resumed) or touched in the last ``STALE_TEMP_SECONDS`` (a writer may be at work), with the
  bases its shard markers name.

Everything else is collected, done file first: a kill half way leaves a folder no done file names,
older than its stage's newest commit, which the next collection finishes. While another writer holds
a lease on the partition (``kademe.collect.Lease``: an ingest running, here or on another host), nothing superseded
is collected: that writer may be reading it.
"""

from __future__ import annotations

import os
import re
import socket
import time
from dataclasses import dataclass, field

from kademe.keys import chain_key
from kademe.partition import STALE_TEMP_SECONDS, Partition
from kademe.settings import Settings
from kademe.storage import load_json

KEEP_OTHER_SETTINGS = 7 * 86400  # the newest checkpoint of settings no longer the last run's stays a week
LEASE_REFRESH = 60.0  # a writer's lease is touched this often; one untouched for STALE_TEMP_SECONDS is a dead writer's
_ANCESTORS = {"read": (), "clean": ("read",), "chunk": ("read", "clean"), "lexical": ("read", "clean", "chunk"),
              "embed": ("read", "clean", "chunk"), "upsert": ("read", "clean", "chunk", "lexical", "embed")}
_ENTRY = re.compile(r"(?P<dir>(?P<stage>[a-z]+)-[0-9a-f]{12})(?P<rest>\.json|\.next|/.+)")


def lineage(s: Settings, stage: str, *more: str) -> str:
    """The settings a stage's checkpoints are made with: its fingerprint and its ancestors', chained.

    ``more``: what else the stage's key holds that no setting says (the lexical stage: its analyzer's
    fingerprint, ``kademe.lexical.bm25.analyzer_fingerprint``). Two checkpoints of one stage with one
    lineage differ only by their source: the newer supersedes the older.
    """
    return chain_key("lineage", *[s.fingerprint(name) for name in (*_ANCESTORS[stage], stage)], *more)


@dataclass
class Folder:
    """One checkpoint's objects: its done file (``meta``, when committed), its folder's objects, its ``.next``."""

    dir: str
    stage: str
    meta: dict | None = None
    done_mtime: float = 0.0
    objects: dict[str, tuple[int, float]] = field(default_factory=dict)  # every object of the checkpoint

    @property
    def bytes(self) -> int:
        return sum(size for size, _ in self.objects.values())

    @property
    def newest(self) -> float:
        return max((mtime for _, mtime in self.objects.values()), default=0.0)


@dataclass
class Plan:
    """What a collection of one partition would delete, and why the rest stays."""

    label: str
    bytes: int  # every object of the partition
    delete: list[str]  # object names, in deletion order (done files first)
    reclaim: int  # their bytes
    kept: dict[str, str]  # checkpoint dir -> why it stays
    busy: str | None = None  # another writer's lease: nothing superseded is collected

    def as_dict(self) -> dict:
        return {"bytes": self.bytes, "reclaimable": self.reclaim, "objects": len(self.delete), "busy": self.busy,
                "kept": self.kept}


def survey(part: Partition) -> tuple[dict[str, tuple[int, float]], dict[str, Folder]]:
    """Every object of the partition, and the checkpoints among them by folder name."""
    storage = part.storage
    objects = storage.list(part.prefix)
    folders: dict[str, Folder] = {}
    for name, (size, mtime) in objects.items():
        m = _ENTRY.fullmatch(name[len(part.prefix) + 1:])
        if m is None:
            continue
        folder = folders.setdefault(m["dir"], Folder(m["dir"], m["stage"]))
        folder.objects[name] = (size, mtime)
        if m["rest"] == ".json":
            meta = load_json(storage.get(name))
            if meta and meta.get("key") and meta.get("stage") == m["stage"]:
                folder.meta, folder.done_mtime = meta, mtime
    return objects, folders


def plan_collection(part: Partition, now: float | None = None, own_lease: str | None = None,
                    grace: float = STALE_TEMP_SECONDS) -> Plan:
    """What the retention rule keeps and collects in ``part`` now (nothing is deleted).

    Args:
        part: the partition.
        now: the clock (tests); default ``time.time()``.
        own_lease: the caller's lease token (an ingest collecting at the end of its year): not another writer.
        grace: an uncommitted checkpoint touched this recently, or a lease this fresh, belongs to a live writer.
    """
    now = time.time() if now is None else now
    objects, folders = survey(part)
    total = sum(size for size, _ in objects.values())
    busy = _other_lease(part, objects, own_lease, now, grace)
    kept: dict[str, str] = {}
    manifest = part.manifest()
    by_stage: dict[str, list[Folder]] = {}
    for f in folders.values():
        if f.meta is not None:
            by_stage.setdefault(f.stage, []).append(f)
    newest_commit: dict[str, float] = {}
    for stage, committed in by_stage.items():
        committed.sort(key=lambda f: f.done_mtime, reverse=True)
        newest_commit[stage] = committed[0].done_mtime
        kept.setdefault(committed[0].dir, "newest commit")
        named = manifest.get(stage, {}).get("key", "")
        lineages: set = set()
        for f in committed:
            if named and f.meta["key"] == named:
                kept.setdefault(f.dir, "last run's")
            line = f.meta.get("lineage")
            if line and line not in lineages:
                lineages.add(line)
                if now - f.done_mtime < KEEP_OTHER_SETTINGS:
                    kept.setdefault(f.dir, "newest of other settings")
    for f in folders.values():  # uncommitted: a live or a killed writer's, or what a killed collection left
        if f.meta is None and f.objects and not all(n.endswith(".next") for n in f.objects):
            if f.newest > newest_commit.get(f.stage, 0.0):
                kept[f.dir] = "not yet committed"
            elif now - f.newest < grace:
                kept[f.dir] = "a writer may be at work"
    for name in objects:  # the upsert checkpoint (done file, digests part) each store's state names (kademe.delta)
        if name.rsplit("/", 1)[-1].startswith("store-") and name.endswith(".state") and name.count("/") == 2:
            state = load_json(part.storage.get(name)) or {}
            for key in (state.get("applied"), state.get("applying")):
                if key and f"upsert-{key[:12]}" in folders:
                    kept.setdefault(f"upsert-{key[:12]}", f"the store's state {name.rsplit('/', 1)[-1]}")
    for dir_ in list(kept):  # what kept embed checkpoints refer to
        for base in _bases(part, folders[dir_]):
            if base[:12] and f"embed-{base[:12]}" in folders:
                kept.setdefault(f"embed-{base[:12]}", f"vectors of {dir_}")
    delete: list[str] = []
    for f in folders.values():
        if f.dir in kept:
            continue
        nxt = [n for n in f.objects if n.endswith(".next")]
        successor = (load_json(part.storage.get(nxt[0])) or {}).get("key", "") if nxt else ""
        if busy and f.meta is not None:
            continue  # superseded, but another writer may be reading it
        done = [n for n in f.objects if n.endswith(".json") and n.count("/") == 2]
        rest = sorted(n for n in f.objects if n not in done and n not in nxt)
        delete += done + rest
        if nxt and f"embed-{successor[:12]}" not in kept:
            delete += nxt
        elif nxt:
            kept.setdefault(f.dir + ".next", f"points to {successor[:12]}")
    sizes = {n: objects[n][0] for n in delete}
    return Plan(part.label, total, delete, sum(sizes.values()), kept, busy)


def _bases(part: Partition, folder: Folder) -> set[str]:
    """The embed checkpoints whose vectors ``folder`` (an embed checkpoint) refers to: its done file's
    ``bases``, or, before its commit, its shard markers'."""
    if folder.stage != "embed":
        return set()
    if folder.meta is not None:
        return set(folder.meta.get("bases", []))
    bases: set[str] = set()
    for name in folder.objects:
        if name.rsplit("/", 1)[-1].startswith("shard-") and name.endswith(".json"):
            bases |= set((load_json(part.storage.get(name)) or {}).get("bases", []))
    return bases


def _other_lease(part: Partition, objects: dict, own: str | None, now: float, grace: float) -> str | None:
    """Another live writer's lease on the partition, in words; None when there is none.

    A lease untouched for ``grace`` seconds, or taken on this host by a process that is gone (a killed
    run), is a dead writer's.
    """
    for name, (_, mtime) in objects.items():
        if name.startswith(f"{part.prefix}/leases/") and now - mtime < grace and not name.endswith(f"/{own}.json"):
            lease = load_json(part.storage.get(name)) or {}
            if lease.get("host") == socket.gethostname() and not _alive(lease.get("pid")):
                continue
            return f"{lease.get('holder', 'another writer')} holds a lease on {part.label} (touched {now - mtime:.0f} s ago)"
    return None


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
        return True
    except PermissionError:  # someone else's process: alive
        return True
    except (OSError, TypeError, ValueError):
        return False
