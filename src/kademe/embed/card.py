"""The card the ladder encodes on: one object answers the device, free memory, calibration and the allocator.

``choose_card()`` is where the encoder's fault instruments are read, once per ladder: it returns the
real card (what ``torch.cuda`` says), or an ``InstrumentedCard`` when a ``KADEME_FAULT_*`` encoder
instrument is set. The ladder asks its card and never learns which one it holds, as a caller of the
store never learns which engine answered.

Instruments (``kademe.faults``):
  * ``KADEME_FAULT_FAKE_CUDA`` — a card without a GPU: the GPU rungs run on the CPU, free memory is
    ``KADEME_FAULT_FREE_MB`` (or unknown), nothing is calibrated, and the report says the CPU computed;
  * ``KADEME_FAULT_OOM_RUNGS`` / ``KADEME_FAULT_OOM_TOKENS`` — a GPU-rung batch raises a genuine
    ``torch.cuda.OutOfMemoryError``;
  * ``KADEME_FAULT_CARD_RATE`` — a stand-in card (``StandInCard``, issue 32): a GPU-rung batch costs no
    CPU but takes the time a card encoding that many tokens a second would (it sleeps, the GIL
    released) and gives vectors of the model's width; it is planned like a card (free memory
    ``KADEME_FAULT_FREE_MB``, default ``STANDIN_FREE_MB``);
  * ``KADEME_FAULT_CARD_LOG`` — every GPU-rung batch's busy seconds go to a log file (``kademe.embed.busy``),
    timed by CUDA events on a real card and by the wall clock on a stand-in or faked one.
The variables are read at each question, not only at the choice: a test or bench may change the
free memory or the OOM threshold in the middle of a run, as other jobs on a real card would.
"""

from __future__ import annotations

import time
import zlib

from kademe.embed.busy import CardLog, CudaClock, WallClock
from kademe.embed.model import encode_tokenized
from kademe.embed.oom import enable_expandable_segments, free_memory
from kademe.errors import KademeError
from kademe.faults import card_log_path, card_rate, check_oom, encoder_instruments, fake_cuda, fake_free_bytes

STANDIN_FREE_MB = 16 * 1024  # the stand-in card's free memory when KADEME_FAULT_FREE_MB does not say (the users' 10-16 GB)
STANDIN_POOL = 4096  # distinct vectors the stand-in hands out, chosen by each chunk's token ids


class Card:
    """The machine's CUDA card as PyTorch sees it (or its absence).

    Example:
        >>> choose_card().gpu_rungs("cpu")  # --device cpu: never the GPU rungs, card or no card
        False
    """

    device = "cuda"  # where the GPU rungs compute

    def __init__(self):
        self.log = CardLog(card_log_path())  # busy seconds of every GPU-rung batch (KADEME_FAULT_CARD_LOG names a file for them)

    def clock(self):
        """What times a batch's busy seconds: CUDA events on the card."""
        return CudaClock()

    def encode(self, model, texts: list[str], padded_tokens: int):
        """One GPU-rung batch through ``model`` (rows x dim, any float type), its busy time logged.

        ``texts`` is a ``kademe.embed.model.Batch`` when the chunks' token ids are known: the model
        then runs on them and tokenizes nothing.
        """
        ids = getattr(texts, "ids", None)
        start = time.time()
        with self.clock().batch() as took:
            vecs = run_encoder(model, texts, ids)
        tokens = int(ids.offsets[-1] - ids.offsets[0]) if ids is not None else padded_tokens
        self.log.add(start, took[0], len(texts), tokens, padded_tokens)
        return vecs

    def present(self) -> bool:
        """Whether there is a card to run the GPU rungs on."""
        import torch

        return torch.cuda.is_available()

    def gpu_rungs(self, device: str) -> bool:
        """Whether the GPU rungs apply for ``--device``; raise if cuda was asked for and there is no card."""
        present = self.present()
        if device == "cuda" and not present:
            raise KademeError("--device cuda was given but PyTorch sees no CUDA device.\n\nUse --device auto or --device cpu.")
        return device != "cpu" and present

    def free(self) -> int | None:
        """Bytes free for this process on the card now, or None when unknown."""
        return free_memory()

    def peak_bytes(self) -> int | None:
        """Bytes the last batch used at its peak beyond what stays allocated, or None when not measured; resets the peak."""
        import torch

        if not torch.cuda.is_available():
            return None
        peak = torch.cuda.max_memory_allocated() - torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        return peak if peak > 0 else None

    def expandable_segments(self) -> str:
        """Switch the allocator to expandable segments; say what was done."""
        return enable_expandable_segments()

    def check_batch(self, rung: str, rows: int, padded_tokens: int) -> None:
        """Raise the out-of-memory error an instrument injects for this batch (the real card injects none)."""


class InstrumentedCard(Card):
    """The card as the ``KADEME_FAULT_*`` encoder instruments describe it (see the module docstring).

    Args:
        fake: no GPU: the GPU rungs compute on the CPU (``KADEME_FAULT_FAKE_CUDA``).
    """

    def __init__(self, fake: bool):
        super().__init__()
        self.fake = fake
        self.device = "cpu" if fake else "cuda"

    def clock(self):
        return WallClock() if self.fake else super().clock()

    def present(self) -> bool:
        return self.fake or super().present()

    def free(self) -> int | None:
        return fake_free_bytes() if self.fake else super().free()

    def peak_bytes(self) -> int | None:
        return None if self.fake else super().peak_bytes()

    def expandable_segments(self) -> str:
        return super().expandable_segments() + (" (KADEME_FAULT_FAKE_CUDA)" if self.fake else "")

    def check_batch(self, rung: str, rows: int, padded_tokens: int) -> None:
        check_oom(rung, rows, padded_tokens)


class StandInCard(InstrumentedCard):
    """A card that costs no CPU: a batch sleeps ``tokens / rate`` seconds (GIL released) and returns vectors of the model's width.

    ``tokens`` are the batch's real tokens (its token ids; the padded count when it has none), so at
    ``rate`` = a corpus's mean chunk length x N the card encodes N of its chunks a second. The vectors
    are unit vectors from a seeded pool of ``STANDIN_POOL``, picked by each chunk's token ids: equal
    texts get equal vectors, as from a model, and no encoder runs. The planner sees a card with
    ``KADEME_FAULT_FREE_MB`` free (default ``STANDIN_FREE_MB``), so batches are planned by its token
    budget as on a card (rows still capped by ``--batch-size``). OOM instruments apply as on a fake card.

    Args:
        rate: tokens a second (``KADEME_FAULT_CARD_RATE``).

    Example:
        >>> card = StandInCard(rate=256_000)        # 1,000 chunks/s of 256 tokens
        >>> card.present(), card.device
        (True, 'cpu')
    """

    def __init__(self, rate: float):
        super().__init__(fake=True)
        self.rate = rate
        self._pools: dict[int, object] = {}

    def free(self) -> int | None:
        faked = fake_free_bytes()
        return faked if faked is not None else STANDIN_FREE_MB * 2**20

    def encode(self, model, texts: list[str], padded_tokens: int):
        import numpy as np

        ids = getattr(texts, "ids", None)
        tokens = int(ids.offsets[-1] - ids.offsets[0]) if ids is not None else padded_tokens
        start = time.time()
        with self.clock().batch() as took:
            time.sleep(tokens / self.rate)  # the card's time; time.sleep releases the GIL
        self.log.add(start, took[0], len(texts), tokens, padded_tokens)
        width = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension  # (renamed in s-t 6)
        pool = self._pool(width())
        if ids is not None:  # a row's pick: its ids' sum and length (no Python per token)
            lengths = np.diff(ids.offsets)
            if len(lengths) and lengths.all():
                sums = np.add.reduceat(ids.flat[ids.offsets[0]:ids.offsets[-1]].astype(np.int64), ids.offsets[:-1] - ids.offsets[0])
                return pool[(sums * 31 + lengths) % STANDIN_POOL]
        return pool[[zlib.crc32(t.encode()) % STANDIN_POOL for t in texts]]

    def _pool(self, dims: int):
        import numpy as np

        if dims not in self._pools:
            vecs = np.random.default_rng(dims).standard_normal((STANDIN_POOL, dims)).astype(np.float32)
            self._pools[dims] = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
        return self._pools[dims]


def run_encoder(model, texts: list[str], ids=None):
    """``model`` on a batch: on its token ids when known (no tokenizer), else on the texts."""
    vecs = encode_tokenized(model, ids) if ids is not None else None
    if vecs is None:
        vecs = model.encode(list(texts), batch_size=len(texts), convert_to_numpy=True, show_progress_bar=False)
    return vecs


def choose_card() -> Card:
    """The card to encode on: the real one, or an instrumented one when an encoder instrument is set."""
    if (rate := card_rate()) is not None:
        return StandInCard(rate)
    return InstrumentedCard(fake=fake_cuda()) if encoder_instruments() else Card()
