"""Embed texts through the OOM fallback ladder: one data path, one ``encode_batch`` call in a loop.

The data path, as in sentence-transformers' ``encode``: sort by length (longest first), form
batches by a token budget (rows x padded length), encode, put the vectors back in input order.

On a CUDA out-of-memory error the ladder
  1. splits only the failing batch in halves by tokens, down to one chunk (rung ``gpu``), shrinking
     the budget, and grows it back after a run of successes;
  2. then goes down the rungs, each year starting again at the top:
     ``gpu`` -> ``gpu-batch1`` (batch 1, expandable-segments allocator) -> ``gpu-small`` (the
     fallback model: another vector space, the year is *degraded*) -> ``cpu`` (primary model).
A batch that fails on a rung moves down whole; what already succeeded is kept. Each event is
recorded, never hidden.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from kademe.embed.batches import Ranked, halves
from kademe.embed.budget import Budget
from kademe.embed.card import Card, choose_card, run_encoder
from kademe.embed.model import (
    Batch,
    TokenIds,
    ends_normalized,
    evict_encoder,
    load_encoder,
    normalized,
)
from kademe.embed.oom import frozen_heap, is_oom, release_memory
from kademe.embed.rungs import RUNGS, rung_dtypes
from kademe.faults import crash_point
from kademe.models import max_seq_length, resolve_model, vector_name
from kademe.settings import Settings



@dataclass
class OomEvent:
    """One out-of-memory error: where it happened and what the ladder did next."""

    rung: str
    rows: int
    padded_tokens: int
    free_bytes: int | None
    action: str  # "split" or "next-rung:<rung>"

    def as_dict(self) -> dict:
        return self.__dict__.copy()


@dataclass
class Embedded:
    """Vectors for N texts in input order, with the space (vector name) and rung of each."""

    vectors: list[np.ndarray]
    spaces: list[str]
    rungs: list[str]
    events: list[OomEvent] = field(default_factory=list)


class Ladder:
    """Embeds one year's chunks; remembers the rung, budget and events across that year's shards.

    Args:
        s: settings (``model``, ``fallback_model``, ``device``, ``dtype``, ``batch_size``, ``token_budget``).
        card: the card to encode on (``kademe.embed.card``); default: ``choose_card()``.

    Attributes worth reading after a run: ``dtypes`` (rung -> the dtype it computes in; the GPU
    rungs use ``--dtype``, the cpu rung float32 unless bfloat16 was asked for), ``encode_seconds``
    (time spent inside the encoder, tokenizing included), ``evicted`` (whether the primary model
    was dropped from the card on leaving the GPU rungs).

    Example:
        >>> ladder = Ladder(Settings(device="cpu"))
        >>> out = ladder.embed(["Yargıtay kararı", "Dava reddedildi"], [6, 5])
        >>> len(out.vectors), out.rungs
        (2, ['cpu', 'cpu'])
    """

    def __init__(self, s: Settings, card: Card | None = None):
        self.s = s
        self.card = card or choose_card()  # the real card or an instrumented one; the ladder never asks which
        self.primary_dir = resolve_model(s.model)
        self.fallback_dir = resolve_model(s.fallback_model) if s.fallback_model else None
        self.primary_space = vector_name(s.model)
        self.fallback_space = vector_name(s.fallback_model) if s.fallback_model else None
        self.max_len = max_seq_length(self.primary_dir)
        self.rung = "gpu" if self.card.gpu_rungs(s.device) else "cpu"
        self.allocator: str | None = None
        self.on_event: Callable[[OomEvent], None] | None = None  # told of each OOM as it happens (the progress display)
        self.batches = 0
        self.batches_on_gpu = 0
        self.encode_seconds = 0.0
        self.encode_cpu_seconds = 0.0  # CPU of the calling thread inside the encoder (the stage's own work is the rest)
        self.evicted = False
        self._unit: dict = {}  # model folder -> whether its output is unit length already (ends in Normalize)
        self.dtypes = rung_dtypes(s.dtype, gpu=self.rung == "gpu", device=self.card.device)
        if self.rung == "gpu":
            load_encoder(self.primary_dir, self.card.device, self.dtypes["gpu"])  # weights first, so free memory is measured without them
        self.budget = Budget(self.card, s.token_budget or s.batch_size * self.max_len, self.max_len, self._paper_cost,
                             on_gpu=self.rung == "gpu")

    # -- public -------------------------------------------------------------------------------
    def embed(self, texts: list[str], n_tokens: list[int], ids=None) -> Embedded:
        """Embed ``texts`` (N) whose token counts are ``n_tokens``; returns N vectors in input order.

        ``ids``: the texts' token ids from the primary model's tokenizer, as the chunk stage keeps
        them: a ``TokenIds``, the chunk file's ``token_ids`` column, or a list of int32 bytes/arrays
        (None for a text without). The primary model's rungs then run on the ids and tokenize nothing
        (issue 22); a batch with a text without ids, and the fallback model's rung, encode the texts.
        """
        tokens = TokenIds.of(ids) if ids is not None else None
        with frozen_heap():  # an OOM's gc.collect then scans only what the batches made
            return self._embed(texts, n_tokens, tokens)

    def _embed(self, texts: list[str], n_tokens: list[int], tokens: TokenIds | None = None) -> Embedded:
        order = np.argsort(-np.asarray(n_tokens, dtype=np.int64), kind="stable").tolist()  # longest first
        ranked = Ranked(tokens, order) if tokens is not None else None  # a batch's ids: a view, not a gather
        vectors: list[np.ndarray | None] = [None] * len(texts)
        spaces, rungs = [""] * len(texts), [""] * len(texts)
        events: list[OomEvent] = []
        pending: deque[list[int]] = deque()  # split halves wait here, ahead of new batches
        pos = 0
        while pending or pos < len(order):
            if pending:
                batch = pending.popleft()
                if self._known_too_big(batch, n_tokens):  # a half of a failed batch that cannot fit either
                    pending.extendleft(reversed(halves(batch, n_tokens)))
                    continue
            else:
                batch = self._next_batch(order, pos, n_tokens)
                pos += len(batch)
            if self.rung == "gpu-batch1" and len(batch) > 1:
                pending.extendleft(reversed([[i] for i in batch]))
                continue
            padded = len(batch) * n_tokens[batch[0]]  # every batch is a run of `order` (or part of one): longest first
            rung = self.rung
            try:
                out = self.encode_batch(rung, Batch([texts[i] for i in batch], ranked.ids(batch) if ranked is not None else None), padded)
            except Exception as exc:  # only OOM is handled; everything else propagates unchanged
                if not is_oom(exc):
                    raise
                out = None
            if out is None:
                release_memory()
                events.append(self._after_oom(rung, batch, padded, n_tokens, pending))
                if self.on_event:
                    self.on_event(events[-1])
                continue
            space = self._space(rung)
            for i, vec in zip(batch, out):
                vectors[i], spaces[i], rungs[i] = vec, space, rung
            self._after_success(rung, padded)
            crash_point("embed-batch")
        return Embedded(vectors, spaces, rungs, events)  # type: ignore[arg-type]

    def encode_batch(self, rung: str, texts: list[str], padded_tokens: int) -> np.ndarray:
        """The encoder seam: one batch on one rung -> normalized float32 vectors (rows x dim)."""
        self.card.check_batch(rung, len(texts), padded_tokens)
        model_dir = self.fallback_dir if rung == "gpu-small" else self.primary_dir
        model = load_encoder(model_dir, "cpu" if rung == "cpu" else self.card.device, self.dtypes[rung])
        if rung == "gpu-small":  # the ids are the primary model's tokens: the fallback model reads the texts
            texts = list(texts)
        start, cpu = time.perf_counter(), time.thread_time()
        try:  # the card encodes the GPU rungs (and times them: kademe.embed.busy); the cpu rung is this process's
            vecs = run_encoder(model, texts, getattr(texts, "ids", None)) if rung == "cpu" else self.card.encode(model, texts, padded_tokens)
        finally:
            self.encode_seconds += time.perf_counter() - start
            self.encode_cpu_seconds += time.thread_time() - cpu
        if (unit := self._unit.get(model_dir)) is None:
            unit = self._unit[model_dir] = ends_normalized(model)
        return normalized(vecs, unit=unit and self.dtypes[rung] == "float32")

    @property
    def degraded(self) -> bool:
        return self.rung == "gpu-small"

    # -- planning -----------------------------------------------------------------------------
    def _rows_limit(self) -> int:
        return 1 if self.rung == "gpu-batch1" else self.s.batch_size

    def _next_batch(self, order: list[int], pos: int, n_tokens: list[int]) -> list[int]:
        """The next length-sorted batch: as many rows as fit the budget (at least one)."""
        budget = self.budget.tokens if self.rung == "gpu" else self.budget.static
        longest = max(n_tokens[order[pos]], 1)
        rows = max(1, min(self._rows_limit(), budget // longest, len(order) - pos))
        return order[pos : pos + rows]

    def _paper_cost(self) -> float:
        from kademe.embed.memory import bytes_per_token
        from kademe.embed.shape import load_shape

        return bytes_per_token(load_shape(self.primary_dir), self.max_len, dtype_bytes=self.dtypes["gpu"])

    def _known_too_big(self, batch: list[int], n_tokens: list[int]) -> bool:
        """Whether a waiting half is already over the shrunken gpu budget: split it without trying."""
        return self.rung == "gpu" and len(batch) > 1 and len(batch) * max(n_tokens[i] for i in batch) > self.budget.tokens

    # -- what happens after a batch -----------------------------------------------------------
    def _after_success(self, rung: str, padded: int) -> None:
        """Count the batch; on the gpu rung the budget learns from it (``Budget.after_success``)."""
        self.batches += 1
        self.batches_on_gpu += rung.startswith("gpu")
        if rung == "gpu":
            self.budget.after_success(padded)

    @property
    def real_device(self) -> str:
        """The device that really computed: the card's when a GPU rung ran (``cpu`` on a fake card), else ``cpu``."""
        return self.card.device if self.batches_on_gpu else "cpu"

    def _after_oom(self, rung: str, batch: list[int], padded: int, n_tokens: list[int], pending: deque) -> OomEvent:
        free = self.card.free()
        self.budget.after_oom(padded, free, split=rung == "gpu" and len(batch) > 1)
        if rung == "gpu" and len(batch) > 1:
            left, right = halves(batch, n_tokens)
            pending.appendleft(right)
            pending.appendleft(left)
            return OomEvent(rung, len(batch), padded, free, "split")
        self.rung = self._next_rung(rung)
        pending.appendleft(batch)
        return OomEvent(rung, len(batch), padded, free, f"next-rung:{self.rung}")

    def _next_rung(self, rung: str) -> str:
        if rung == "cpu":
            raise RuntimeError("CUDA out of memory reported on the cpu rung; nothing below it")  # pragma: no cover
        nxt = RUNGS[RUNGS.index(rung) + 1]
        if nxt == "gpu-batch1":
            self.allocator = self.card.expandable_segments()
        if nxt == "gpu-small" and self.fallback_dir is None:
            nxt = "cpu"  # no --fallback-model: skip the rung
        if nxt in ("gpu-small", "cpu"):
            self._evict_primary()
        return nxt

    def _evict_primary(self) -> None:
        """Drop the primary model from the card when the ladder leaves the GPU rungs: the fallback gets its memory."""
        if self.evicted:
            return
        evict_encoder(self.primary_dir, self.card.device, self.dtypes["gpu"])
        release_memory()
        self.evicted = True

    def _space(self, rung: str) -> str:
        return self.fallback_space if rung == "gpu-small" else self.primary_space  # type: ignore[return-value]


def preload_encoder(s: Settings) -> None:
    """Load the primary model where and how the ladder's first rung will (device, dtype): it is reused.

    ``load_encoder`` keeps one encoder per process, model, device and dtype; ``kademe ingest`` calls
    this while Prefect's temporary server starts, taking the model load off the flow's critical path.
    """
    card = choose_card()
    gpu = card.gpu_rungs(s.device)
    device = card.device if gpu else "cpu"
    load_encoder(resolve_model(s.model), device, rung_dtypes(s.dtype, gpu=gpu, device=device)["gpu" if gpu else "cpu"])
