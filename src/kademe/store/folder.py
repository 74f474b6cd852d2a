"""The Qdrant Edge folder's own bookkeeping: who holds it, and what a killed build left behind.

One process owns a store folder at a time. ``FolderLock`` takes an exclusive ``fcntl`` lock on
``<folder>/.kademe.lock`` and writes the holder's pid, command line and start time into it, so a
process refused the lock (``kademe search`` during an ingest) can say whom it waits for, since
when, and what to do. Holding that lock, ``clear_temp_segments`` removes the engine's scratch
segments that a build killed mid-way left in ``temp_segments/`` (Qdrant Edge never does).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
import time
from pathlib import Path

from kademe.store.base import StoreBusy

LOCK_NAME = ".kademe.lock"
TEMP_SEGMENTS = "temp_segments"  # the engine's scratch folder for segments being built

__all__ = ["LOCK_NAME", "TEMP_SEGMENTS", "FolderLock", "clear_temp_segments", "holder_record", "in_use_message"]


class FolderLock:
    """An exclusive ``fcntl`` lock on ``<folder>/.kademe.lock``, held while the store is open.

    The holder writes who it is (pid, command line, since when) into the file, so that another
    process refused the lock can say whom it waits for. ``folder`` must exist.
    """

    def __init__(self, folder: Path):
        self.fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            record = holder_record(os.pread(self.fd, 4096, 0).decode(errors="replace"))
            os.close(self.fd)
            holder = f"pid {record['pid']}" if record.get("pid") else "another process"
            raise StoreBusy(in_use_message(folder, record), holder=holder) from None
        os.ftruncate(self.fd, 0)
        program = "python -c" if sys.argv[0] == "-c" else os.path.basename(sys.argv[0] or "python")
        me = {"pid": os.getpid(), "command": " ".join([program, *sys.argv[1:]])[:300], "since": time.time()}
        os.pwrite(self.fd, json.dumps(me).encode() + b"\n", 0)

    def release(self) -> None:
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1


def holder_record(text: str) -> dict:
    """The lock file's text as ``{"pid", "command", "since"}`` (what is known): a JSON record, or a bare
    pid from an earlier kademe; ``{}`` when it says nothing."""
    try:
        record = json.loads(text)
        record = record if isinstance(record, dict) else {"pid": record}
    except ValueError:
        record = {"pid": text.split()[0]} if text.split() and text.split()[0].isdigit() else {}
    try:
        return {**record, "pid": int(record["pid"])} if record.get("pid") else {}
    except (TypeError, ValueError):
        return {}


def in_use_message(folder: Path, record: dict) -> str:
    """The refusal when another process holds the folder: who (``holder_record``), since when, what to do."""
    who = ""
    if record.get("pid"):
        who = f": process {record['pid']}" + (f" ({record['command']})" if record.get("command") else "")
    if who and isinstance(record.get("since"), (int, float)):
        minutes = max(0, int((time.time() - record["since"]) // 60))
        who += time.strftime(", since %Y-%m-%d %H:%M:%S UTC", time.gmtime(record["since"])) + f" ({minutes} min)"
    return (f"The Qdrant Edge store at '{folder}' is in use by another process{who}.\n\n"
            "Wait for it to finish (an ingest holds the store while it writes a year and builds that year's "
            "index), or run a Qdrant server and pass --qdrant-url.")


def clear_temp_segments(folder: Path) -> int:
    """Remove what a killed index build left in ``temp_segments/``; the caller holds the folder's lock.

    Returns:
        The number of entries removed.
    """
    temp = folder / TEMP_SEGMENTS
    if not temp.is_dir():
        return 0
    removed = 0
    for entry in temp.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    return removed
