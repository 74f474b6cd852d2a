"""The gpu rung's token budget: how many padded tokens (rows x padded length) a batch may take.

Planned from the card's free memory and the bytes a padded token costs (measured on the card where
it can be, else the paper estimate of ``kademe.embed.memory``); at an OOM it falls to the largest
size known to fit (or half the failed one), and after a run of successes it grows back: doubling
while no failed size is known, else bisecting towards it, and near it trying the failed size again
ever more rarely, or at once when the card says memory was freed. Other jobs on the card come and
go: free memory is read again after every batch.
"""

from __future__ import annotations

from collections.abc import Callable

from kademe.embed.card import Card

GROW_AFTER = 8  # successes in a row before a shrunken budget grows again
PROBE_FIRST = 16  # near a known ceiling, successes in a row before trying the failed size again ...
PROBE_MAX = 512  # ... doubling after every try that fails, up to this; a try that fits starts over
FREED = 1.25  # free memory this many times what it was at the ceiling's OOM: try the ceiling again now
SAFETY = 0.8  # share of free memory the planner may use


class Budget:
    """The token budget of the gpu rung (``tokens``), and what it learnt: the ceiling, the floor, the cost.

    Args:
        card: the card whose free memory and peaks are read.
        static: the most a batch may take whatever the memory: ``--token-budget``, else batch size x max length.
        max_len: the model's longest sequence: the budget never plans below one such sequence.
        paper_cost: bytes per padded token on paper, asked only until the card has measured it.
        on_gpu: whether the ladder starts on the gpu rung (else the budget is ``static``, unplanned).

    Example:
        >>> budget = Budget(card, static=32 * 512, max_len=512, paper_cost=lambda: 2e5, on_gpu=True)
        >>> budget.after_oom(padded=8192, free=None, split=True); budget.tokens
        4096
    """

    def __init__(self, card: Card, static: int, max_len: int, paper_cost: Callable[[], float], on_gpu: bool):
        self.card, self.static, self.max_len, self._paper_cost = card, static, max_len, paper_cost
        self.ceiling: int | None = None  # smallest padded size seen to fail on the gpu rung
        self.ceiling_free: int | None = None  # free memory measured just after that failure, if known
        self.floor = 0  # largest padded size seen to succeed on the gpu rung
        self.cost_per_token: float | None = None  # measured bytes per padded token (where the card measures it)
        self.streak = 0
        self.probe_wait = PROBE_FIRST
        self.grow_after = GROW_AFTER  # bench/ladder.py sets it out of reach to measure halving-only
        self.tokens = self.planned() if on_gpu else static

    def planned(self) -> int:
        """The budget free memory allows now: the static one where the card measures nothing."""
        free = self.card.free()
        if free is None:
            return self.static
        cost = self.cost_per_token or self._paper_cost()
        return max(self.max_len, min(self.static, int(free * SAFETY / cost)))

    def after_success(self, padded: int) -> None:
        """A gpu batch of ``padded`` tokens fitted: learn its cost, and grow a shrunken budget back."""
        peak = self.card.peak_bytes()
        if peak is not None:  # bytes per padded token, from the peak the batch really used
            self.cost_per_token = max(self.cost_per_token or 0.0, peak / padded)
        self.floor = max(self.floor, padded)
        if self.ceiling is not None and self.floor >= self.ceiling:
            self.ceiling = None  # a size that failed before fits now: other jobs freed memory
            self.probe_wait = PROBE_FIRST
        self.streak += 1
        target = self.planned()  # free memory, re-read after every batch: other jobs come and go
        self.tokens = min(self.tokens, target)  # they took memory: shrink now, grow back by successes
        if self.streak < self.grow_after or self.tokens >= target:
            return
        if self.ceiling is not None and self.ceiling - self.floor <= max(self.floor // 10, self.max_len):
            if self.streak < self.probe_wait and not self._memory_freed():
                return  # close enough to the ceiling: stay, and look again ever more rarely
            grown = self.ceiling  # other jobs may have freed memory since: try the failed size once more
            self.probe_wait = min(2 * self.probe_wait, PROBE_MAX)
        else:
            grown = self.tokens * 2 if self.ceiling is None else (self.floor + self.ceiling) // 2
        self.tokens = max(self.tokens, min(target, grown))
        self.streak = 0

    def after_oom(self, padded: int, free: int | None, split: bool) -> None:
        """A batch of ``padded`` tokens ran out of memory (``free`` measured just after); ``split``: on the
        gpu rung, where the batch is halved: the budget falls to what is known to fit."""
        self.streak = 0
        if not split:
            return
        if padded <= self.floor:
            self.floor = 0  # what fitted before no longer does: other jobs took memory
        self.ceiling = padded if self.ceiling is None else min(self.ceiling, padded)
        self.ceiling_free = free
        self.tokens = self.floor if 0 < self.floor < padded else max(1, padded // 2)

    def _memory_freed(self) -> bool:
        """Whether free memory, where it is measured, has grown by a quarter since the ceiling failed."""
        if self.ceiling_free is None:
            return False  # not measured (no card, or faked without KADEME_FAULT_FREE_MB): no query
        free = self.card.free()
        return free is not None and free > FREED * self.ceiling_free
