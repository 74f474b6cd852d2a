"""Native work on every core from threads, for calls that release the GIL (tokenizers, Qdrant's BM25).

The fast tokenizer's ``encode_batch`` and ``qdrant_edge.Bm25.embed_document`` run in Rust without
the GIL, so a list cut into one contiguous part per core is done in parallel by plain threads: no
processes, no pickling, and the results come back in order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


_pools: dict[int, ThreadPoolExecutor] = {}


def pool() -> ThreadPoolExecutor:
    """One shared pool per process, one thread per core (a forked child, whose copy has no threads, makes its own)."""
    pid = os.getpid()
    if pid not in _pools:
        _pools[pid] = ThreadPoolExecutor(cores(), thread_name_prefix="kademe-native")
    return _pools[pid]


def parts(items: Sequence[T], weight: Callable[[T], int] = len, min_part: int = 2) -> list[Sequence[T]]:
    """``items`` cut into one contiguous part per core, of about equal total ``weight``.

    Example:
        >>> [len(p) for p in parts(["aa", "b", "c", "dd"])]   # on 2 cores
        [2, 2]
    """
    workers = cores()
    if workers == 1 or len(items) < workers * min_part:
        return [items]
    weights = [weight(x) for x in items]
    total, bounds, acc = sum(weights) or 1, [0], 0
    for i, w in enumerate(weights):
        acc += w
        if len(bounds) < workers and acc * workers >= total * len(bounds):
            bounds.append(i + 1)
    bounds.append(len(items))
    return [items[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]


def map_parts(fn: Callable[[Sequence[T]], list[R]], items: Sequence[T], weight: Callable[[T], int] = len) -> list[R]:
    """``fn`` over ``parts(items)`` on the pool; the results concatenated in the order of ``items``.

    Example:
        >>> map_parts(lambda texts: [t.upper() for t in texts], ["a", "b", "c", "d"])
        ['A', 'B', 'C', 'D']
    """
    cut = parts(items, weight)
    if len(cut) == 1:
        return fn(items)
    out: list[R] = []
    for got in pool().map(fn, cut):
        out.extend(got)
    return out
