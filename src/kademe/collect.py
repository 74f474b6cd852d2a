"""Collecting a partition's superseded checkpoints (issue 29): the plan is ``kademe.retention``'s, the deletes are here.

Also what a night reports of its bytes (written, collected, the workdir's) and the writer's ``Lease``
that keeps a collection elsewhere off what a running ingest may read.
"""

from __future__ import annotations

import os
import socket
import threading
import time

from kademe.faults import crash_point
from kademe.partition import Partition
from kademe.retention import LEASE_REFRESH, plan_collection
from kademe.storage import dump_json, new_token

def collect_partition(part: Partition, dry_run: bool = False, own_lease: str | None = None) -> dict:
    """Collect what ``part`` no longer needs: superseded checkpoints (``plan_collection``), then the parts
    nothing names and old manifest records (``Partition.collect``).

    Returns:
        ``{"bytes", "reclaimable", "collected", "objects", "busy", "kept"}``: the partition's bytes before,
        what the rule found reclaimable, and what was deleted (0 with ``dry_run``).
    """
    plan = plan_collection(part, own_lease=own_lease)
    out = {**plan.as_dict(), "collected": 0, "dry_run": dry_run}
    if dry_run:
        return out
    crash_point("collect-start")
    storage, sizes = part.storage, part.storage.list(part.prefix)
    for n, name in enumerate(plan.delete):
        storage.delete(name)
        out["collected"] += sizes.get(name, (0,))[0]
        if n == 0:
            crash_point("collect-delete")  # a done file is gone, its parts not yet
    for name in part.collect():
        out["collected"] += sizes.get(name, (0,))[0]
    if not storage.remote:  # a local workdir keeps folders: drop the emptied ones
        for folder in {name.rsplit("/", 1)[0] for name in plan.delete if name.count("/") > 2}:
            try:
                storage.path(folder).rmdir()
            except OSError:  # not empty (a writer's part appeared) or already gone
                pass
    return out


class Lease:
    """A writer's claim on a partition while it runs (``leases/<token>.json``, touched every ``LEASE_REFRESH`` s).

    A collection from another process collects nothing superseded while a fresh lease is there, so a
    running ingest never loses a checkpoint it reads; a dead writer's lease goes stale and is ignored.

    Example:
        >>> with Lease(part, "ingest pid 42") as lease:
        ...     collect_partition(part, own_lease=lease.token)
    """

    def __init__(self, part: Partition, holder: str):
        self.part, self.holder, self.token = part, holder, new_token()
        self.name = f"{part.prefix}/leases/{self.token}.json"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _touch(self) -> None:
        self.part.storage.put(self.name, dump_json({"holder": self.holder, "touched": time.time(), "pid": os.getpid(),
                                                    "host": socket.gethostname()}))

    def __enter__(self) -> Lease:
        self._touch()
        self._thread = threading.Thread(target=self._keep, daemon=True, name=f"lease-{self.part.label}")
        self._thread.start()
        return self

    def _keep(self) -> None:
        while not self._stop.wait(LEASE_REFRESH):
            try:
                self._touch()
            except Exception:  # noqa: BLE001 - a missed touch only shortens the protection
                pass

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.part.storage.delete(self.name)


def written_bytes(part: Partition, results: list) -> int:
    """The bytes of the checkpoints these stage results committed in this run (hits write nothing).

    Args:
        results: stage results with ``key`` and ``cached`` (``ReadResult``, ``ChunkResult``, ...), and the stage
            name as ``(stage, result)`` pairs.
    """
    total = 0
    for stage, result in results:
        if result is not None and not getattr(result, "cached", True):
            meta = part.checkpoint(stage, result.key).done() or {}
            total += sum(meta.get("bytes", {}).values())
    return total


def partition_bytes(part: Partition) -> int:
    """Every object's bytes under the partition (checkpoints, manifest, reports)."""
    return sum(size for size, _ in part.storage.list(part.prefix).values())


def night_changes(part: Partition, stages: dict, clean, embedded, upserted, collected: dict) -> dict:
    """A run's ``changes`` (issues 21, 29): documents new / changed / unchanged / removed, chunks embedded / reused,
    points written / deleted in the store, and the workdir's bytes written / collected / held after."""
    return {"documents": clean.changes, "chunks": {"embedded": embedded.embedded, "reused": embedded.reused},
            "points": upserted.points,
            "bytes": {"written": written_bytes(part, [(n, r) for n, r in stages.items() if n != "upsert"]),
                      "collected": int(collected.get("collected", 0)), "workdir": partition_bytes(part)}}


def collect_years(workdir, years: list[int], corpus: str | None = None, dry_run: bool = False) -> dict:
    """``kademe collect``: collect every partition of ``years`` (one corpus, or every corpus) the workdir holds.

    Returns:
        ``{"workdir", "dry_run", "bytes", "reclaimable", "collected", "partitions": {"<corpus>/<year>":
        collect_partition's result}}``; bytes are the partitions' before collecting.
    """
    from kademe.partition import partitions

    out: dict = {"workdir": str(workdir), "dry_run": dry_run, "bytes": 0, "reclaimable": 0, "collected": 0, "partitions": {}}
    for part in partitions(workdir, years, corpus):
        result = collect_partition(part, dry_run=dry_run)
        result.pop("kept", None)
        out["partitions"][part.label] = result
        for k in ("bytes", "reclaimable", "collected"):
            out[k] += result[k]
    return out


def format_collect(result: dict) -> str:
    """The collection as a table: one line per partition, then the total."""
    verb = "would collect" if result["dry_run"] else "collected"
    lines = [f"{'partition':<22}{'bytes':>12}{'reclaimable':>13}{verb:>15}  note"]
    for label, p in result["partitions"].items():
        got = p["reclaimable"] if result["dry_run"] else p["collected"]
        lines.append(f"{label:<22}{_mb(p['bytes']):>12}{_mb(p['reclaimable']):>13}{_mb(got):>15}  {p['busy'] or ''}".rstrip())
    if not result["partitions"]:
        lines.append(f"(no partitions under {result['workdir']})")
    got = result["reclaimable"] if result["dry_run"] else result["collected"]
    lines.append(f"{'total':<22}{_mb(result['bytes']):>12}{_mb(result['reclaimable']):>13}{_mb(got):>15}")
    return "\n".join(lines)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"
