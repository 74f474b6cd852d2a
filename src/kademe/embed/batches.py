"""Batches of the ladder's data path: the token ids of a length-sorted call, and a batch cut in halves by tokens."""

from __future__ import annotations

import numpy as np

from kademe.embed.model import TokenIds


class Ranked:
    """The token ids of one ``embed`` call in the ladder's order (longest first), gathered once.

    A batch is a run of that order, or a half or single of one: its ids are then a slice of the
    ranked ids (a view), not a gather of its own (issue 22: a gather a batch was 12 % of the embed
    stage's own CPU, profiled in a whole run).
    """

    def __init__(self, tokens: TokenIds, order: list[int]):
        self.tokens = tokens
        self.ranked = tokens.take(order)  # None when a text has no ids: each batch is then taken on its own
        position = np.empty(len(order), dtype=np.int64)
        position[order] = np.arange(len(order))
        self.position = position.tolist()

    def ids(self, batch: list[int]) -> TokenIds | None:
        first, last = self.position[batch[0]], self.position[batch[-1]]
        if self.ranked is not None and last - first + 1 == len(batch):
            return self.ranked.slice(first, last + 1)
        return self.tokens.take(batch)


def halves(batch: list[int], n_tokens: list[int]) -> tuple[list[int], list[int]]:
    """Split a length-sorted batch where half of its tokens fall on each side (both halves non-empty)."""
    total = sum(n_tokens[i] for i in batch)
    acc, cut = 0, 1
    for cut, i in enumerate(batch[:-1], start=1):
        acc += n_tokens[i]
        if acc * 2 >= total:
            break
    return batch[:cut], batch[cut:]
