"""Native work on every core from worker processes, for calls that hold the GIL (qdrant-edge's ``Bm25``).

``kademe.threads`` serves calls that release the GIL (the fast tokenizer). ``qdrant_edge.Bm25``'s
``embed_document`` does not: measured, a thread inside one long call stalls every other Python
thread of the process for the whole call (issue 32), so threads neither share its work across
cores nor leave the embed and upsert threads the GIL while it runs. Here a list is cut into one
contiguous part per core and each part goes to a worker process (started once per process, by
``forkserver``: no fork of a threaded parent); the results come back in order.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from kademe.threads import cores, parts

T = TypeVar("T")
R = TypeVar("R")

_pools: dict[int, ProcessPoolExecutor] = {}
_broken: set[int] = set()  # processes whose workers could not start: the work runs in them


def pool() -> ProcessPoolExecutor:
    """One pool of worker processes per process, one per core."""
    pid = os.getpid()
    if pid not in _pools:
        _pools[pid] = ProcessPoolExecutor(cores(), mp_context=multiprocessing.get_context("forkserver"), initializer=_quiet)
    return _pools[pid]


def _quiet() -> None:
    """A worker leaves Ctrl-C to its parent (which stops it): no traceback of its own on the user's terminal."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def map_processes(fn: Callable[[Sequence[T]], list[R]], items: Sequence[T], weight: Callable[[T], int] = len,
                  min_items: int = 64) -> list[R]:
    """``fn`` (a module-level function, picklable) over ``kademe.threads.parts(items)`` in worker processes; results in order.

    On one core, for fewer than ``min_items`` items (a process round trip would cost more), or where
    the workers cannot start (they import ``__main__`` again, as ``multiprocessing`` does), ``fn`` runs here.

    Example:
        >>> map_processes(sorted_words, texts)     # sorted_words(part) -> one result per text of the part
    """
    if cores() == 1 or len(items) < min_items:
        return fn(items)
    cut = parts(items, weight)
    if len(cut) == 1 or os.getpid() in _broken:
        return fn(items)
    out: list[R] = []
    try:
        for got in pool().map(fn, [list(part) for part in cut]):
            out.extend(got)
    except BrokenProcessPool:  # the workers could not start (a __main__ that cannot be imported again): do it here
        _broken.add(os.getpid())
        _pools.pop(os.getpid()).shutdown(wait=False, cancel_futures=True)
        return fn(items)
    return out
