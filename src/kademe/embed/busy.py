"""How long the card was busy, batch by batch: CUDA events on a real card, the CPU's clock elsewhere (issue 32).

Card-busy is the share of a run's wall time that the card spends encoding. Each GPU-rung batch is
timed by the card's clock: ``CudaClock`` records a pair of ``torch.cuda.Event`` around the batch and
reads their elapsed time once the batch's output has left the card (the encoder's ``.cpu()`` has
synchronized by then, so the read waits for nothing); ``WallClock`` (the stand-in card, a faked
card) reads ``time.perf_counter``. Both hand the same record to ``CardLog``.

``KADEME_FAULT_CARD_LOG=<path>`` appends one JSON line per batch to ``path``::

    {"start": <time.time() at the batch's start>, "seconds": <busy>, "rows": 128, "tokens": 30912, "padded": 32768}

``bench/card.py`` sums ``seconds`` and divides by the year's and the process's wall time.
"""

from __future__ import annotations

import json
import os
import threading
import time
from contextlib import contextmanager
from typing import Iterator


class WallClock:
    """A batch's busy seconds by ``time.perf_counter`` (the stand-in card sleeps: its busy time is wall time)."""

    @contextmanager
    def batch(self) -> Iterator[list[float]]:
        """Time the block; the yielded list holds its seconds once the block has run."""
        out: list[float] = []
        start = time.perf_counter()
        try:
            yield out
        finally:
            out.append(time.perf_counter() - start)


class CudaClock:
    """A batch's busy seconds by CUDA events recorded on the current stream before and after it."""

    @contextmanager
    def batch(self) -> Iterator[list[float]]:
        import torch

        out: list[float] = []
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        try:
            yield out
        finally:
            end.record()
            end.synchronize()  # the batch's output was copied to the host already: nothing left to wait for
            out.append(begin.elapsed_time(end) / 1000.0)


class CardLog:
    """Busy seconds of every timed batch: summed in ``seconds``, and one NDJSON line each when a log file is named.

    Args:
        path: the log file (``KADEME_FAULT_CARD_LOG``); None: only the sum is kept.
    """

    def __init__(self, path: str | None = None):
        self.path = path
        self.seconds = 0.0
        self.batches = 0
        self._lock = threading.Lock()

    def add(self, start: float, seconds: float, rows: int, tokens: int, padded: int) -> None:
        with self._lock:
            self.seconds += seconds
            self.batches += 1
            if self.path:
                line = json.dumps({"start": round(start, 6), "seconds": round(seconds, 6), "rows": rows, "tokens": tokens,
                                   "padded": padded})
                with open(self.path, "a", encoding="utf-8") as f:  # one short append a batch: a card batch takes ms
                    f.write(line + "\n")


def read_card_log(path: os.PathLike) -> list[dict]:
    """The batches a ``CardLog`` wrote, in order (an absent file: none)."""
    try:
        text = open(path, encoding="utf-8").read()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]
