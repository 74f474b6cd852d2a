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

from kademe.embed.model import Batch, TokenIds, encode_tokenized, ends_normalized, evict_encoder, load_encoder, normalized, resolve_dtype
from kademe.embed.card import Card, choose_card
from kademe.embed.oom import frozen_heap, is_oom, release_memory
from kademe.models import max_seq_length, resolve_model, vector_name
from kademe.faults import crash_point
from kademe.settings import Settings

RUNGS = ("gpu", "gpu-batch1", "gpu-small", "cpu")
GROW_AFTER = 8  # successes in a row before a shrunken budget grows again
PROBE_FIRST = 16  # near a known ceiling, successes in a row before trying the failed size again ...
PROBE_MAX = 512  # ... doubling after every try that fails, up to this; a try that fits starts over
FREED = 1.25  # free memory this many times what it was at the ceiling's OOM: try the ceiling again now
SAFETY = 0.8  # share of free memory the planner may use


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
        self.ceiling: int | None = None  # smallest padded size seen to fail on the gpu rung
        self.ceiling_free: int | None = None  # free memory measured just after that failure, if known
        self.floor = 0  # largest padded size seen to succeed on the gpu rung
        self.cost_per_token: float | None = None  # measured bytes per padded token (where the card measures it)
        self.streak = 0
        self.probe_wait = PROBE_FIRST
        self.grow_after = GROW_AFTER  # bench/ladder.py sets it out of reach to measure halving-only
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
        self.budget = self._planned_budget()

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
        ranked = _Ranked(tokens, order) if tokens is not None else None  # a batch's ids: a view, not a gather
        vectors: list[np.ndarray | None] = [None] * len(texts)
        spaces, rungs = [""] * len(texts), [""] * len(texts)
        events: list[OomEvent] = []
        pending: deque[list[int]] = deque()  # split halves wait here, ahead of new batches
        pos = 0
        while pending or pos < len(order):
            if pending:
                batch = pending.popleft()
                if self._known_too_big(batch, n_tokens):  # a half of a failed batch that cannot fit either
                    pending.extendleft(reversed(_halves(batch, n_tokens)))
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
        ids = getattr(texts, "ids", None) if rung != "gpu-small" else None  # the ids are the primary model's tokens
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            vecs = encode_tokenized(model, ids) if ids is not None else None
            if vecs is None:
                vecs = model.encode(list(texts), batch_size=len(texts), convert_to_numpy=True, show_progress_bar=False)
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
        budget = self.budget if self.rung == "gpu" else self.s.token_budget or self.s.batch_size * self.max_len
        longest = max(n_tokens[order[pos]], 1)
        rows = max(1, min(self._rows_limit(), budget // longest, len(order) - pos))
        return order[pos : pos + rows]

    def _planned_budget(self) -> int:
        """Token budget for the gpu rung: the user's, else from free memory and the per-token cost."""
        static = self.s.token_budget or self.s.batch_size * self.max_len
        free = self._free() if self.rung == "gpu" else None
        if free is None:
            return static
        cost = self.cost_per_token or self._paper_cost()
        return max(self.max_len, min(static, int(free * SAFETY / cost)))

    def _paper_cost(self) -> float:
        from kademe.embed.plan import bytes_per_token, load_shape

        return bytes_per_token(load_shape(self.primary_dir), self.max_len, dtype_bytes=self.dtypes["gpu"])

    def _known_too_big(self, batch: list[int], n_tokens: list[int]) -> bool:
        """Whether a waiting half is already over the shrunken gpu budget: split it without trying."""
        return self.rung == "gpu" and len(batch) > 1 and len(batch) * max(n_tokens[i] for i in batch) > self.budget

    # -- what happens after a batch -----------------------------------------------------------
    def _after_success(self, rung: str, padded: int) -> None:
        """Grow a shrunken budget back: double while no ceiling is known, else bisect towards it."""
        self.batches += 1
        self.batches_on_gpu += rung.startswith("gpu")
        if rung != "gpu":
            return
        self._calibrate(padded)
        self.floor = max(self.floor, padded)
        if self.ceiling is not None and self.floor >= self.ceiling:
            self.ceiling = None  # a size that failed before fits now: other jobs freed memory
            self.probe_wait = PROBE_FIRST
        self.streak += 1
        target = self._planned_budget()  # free memory, re-read after every batch: other jobs come and go
        self.budget = min(self.budget, target)  # they took memory: shrink now, grow back by successes
        if self.streak < self.grow_after or self.budget >= target:
            return
        if self.ceiling is not None and self.ceiling - self.floor <= max(self.floor // 10, self.max_len):
            if self.streak < self.probe_wait and not self._memory_freed():
                return  # close enough to the ceiling: stay, and look again ever more rarely
            grown = self.ceiling  # other jobs may have freed memory since: try the failed size once more
            self.probe_wait = min(2 * self.probe_wait, PROBE_MAX)
        else:
            grown = self.budget * 2 if self.ceiling is None else (self.floor + self.ceiling) // 2
        self.budget = max(self.budget, min(target, grown))
        self.streak = 0

    def _memory_freed(self) -> bool:
        """Whether free memory, where it is measured, has grown by a quarter since the ceiling failed."""
        if self.ceiling_free is None:
            return False  # not measured (no card, or faked without KADEME_FAULT_FREE_MB): no query
        free = self._free()
        return free is not None and free > FREED * self.ceiling_free

    def _free(self) -> int | None:
        """Free GPU memory as the card measures it now (None: unknown)."""
        return self.card.free()

    @property
    def real_device(self) -> str:
        """The device that really computed: the card's when a GPU rung ran (``cpu`` on a fake card), else ``cpu``."""
        return self.card.device if self.batches_on_gpu else "cpu"

    def _calibrate(self, padded: int) -> None:
        """Learn bytes per padded token from the peak the last batch really used (where the card measures it)."""
        peak = self.card.peak_bytes()
        if peak is not None:
            self.cost_per_token = max(self.cost_per_token or 0.0, peak / padded)

    def _after_oom(self, rung: str, batch: list[int], padded: int, n_tokens: list[int], pending: deque) -> OomEvent:
        self.streak = 0
        free = self._free()
        if rung == "gpu" and len(batch) > 1:
            if padded <= self.floor:
                self.floor = 0  # what fitted before no longer does: other jobs took memory
            self.ceiling = padded if self.ceiling is None else min(self.ceiling, padded)
            self.ceiling_free = free
            self.budget = self.floor if 0 < self.floor < padded else max(1, padded // 2)
            left, right = _halves(batch, n_tokens)
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


class _Ranked:
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


def _halves(batch: list[int], n_tokens: list[int]) -> tuple[list[int], list[int]]:
    """Split a length-sorted batch where half of its tokens fall on each side (both halves non-empty)."""
    total = sum(n_tokens[i] for i in batch)
    acc, cut = 0, 1
    for cut, i in enumerate(batch[:-1], start=1):
        acc += n_tokens[i]
        if acc * 2 >= total:
            break
    return batch[:cut], batch[cut:]


def preload_encoder(s: Settings) -> None:
    """Load the primary model where and how the ladder's first rung will (device, dtype): it is reused.

    ``load_encoder`` keeps one encoder per process, model, device and dtype; ``kademe ingest`` calls
    this while Prefect's temporary server starts, taking the model load off the flow's critical path.
    """
    card = choose_card()
    gpu = card.gpu_rungs(s.device)
    device = card.device if gpu else "cpu"
    load_encoder(resolve_model(s.model), device, rung_dtypes(s.dtype, gpu=gpu, device=device)["gpu" if gpu else "cpu"])


def rung_dtypes(setting: str, gpu: bool = True, device: str = "cuda") -> dict[str, str]:
    """The dtype each rung computes in for ``--dtype``: GPU rungs resolve it for CUDA; the cpu rung is float32 unless bfloat16 was asked for.

    Args:
        setting: the ``--dtype`` setting.
        gpu: whether the GPU rungs apply (else only the cpu rung is listed).
        device: where the GPU rungs compute (``cpu`` under the fake card).

    Example:
        >>> rung_dtypes("float32")["cpu"], rung_dtypes("bfloat16")["cpu"]
        ('float32', 'bfloat16')
    """
    cpu = {"cpu": "bfloat16" if setting == "bfloat16" else "float32"}
    if not gpu:
        return cpu
    half = resolve_dtype(setting, device)
    return {"gpu": half, "gpu-batch1": half, "gpu-small": half, **cpu}

