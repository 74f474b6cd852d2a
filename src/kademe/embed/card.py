"""The card the ladder encodes on: one object answers the device, free memory, calibration and the allocator.

``choose_card()`` is where the encoder's fault instruments are read, once per ladder: it returns the
real card (what ``torch.cuda`` says), or an ``InstrumentedCard`` when a ``KADEME_FAULT_*`` encoder
instrument is set. The ladder asks its card and never learns which one it holds, as a caller of the
store never learns which engine answered.

Instruments (``kademe.faults``):
  * ``KADEME_FAULT_FAKE_CUDA`` — a card without a GPU: the GPU rungs run on the CPU, free memory is
    ``KADEME_FAULT_FREE_MB`` (or unknown), nothing is calibrated, and the report says the CPU computed;
  * ``KADEME_FAULT_OOM_RUNGS`` / ``KADEME_FAULT_OOM_TOKENS`` — a GPU-rung batch raises a genuine
    ``torch.cuda.OutOfMemoryError``.
The variables are read at each question, not only at the choice: a test or bench may change the
free memory or the OOM threshold in the middle of a run, as other jobs on a real card would.
"""

from __future__ import annotations

from kademe.embed.oom import enable_expandable_segments, free_memory
from kademe.errors import KademeError
from kademe.faults import check_oom, encoder_instruments, fake_cuda, fake_free_bytes


class Card:
    """The machine's CUDA card as PyTorch sees it (or its absence).

    Example:
        >>> choose_card().gpu_rungs("cpu")  # --device cpu: never the GPU rungs, card or no card
        False
    """

    device = "cuda"  # where the GPU rungs compute

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
        self.fake = fake
        self.device = "cpu" if fake else "cuda"

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


def choose_card() -> Card:
    """The card to encode on: the real one, or an instrumented one when an encoder instrument is set."""
    return InstrumentedCard(fake=fake_cuda()) if encoder_instruments() else Card()
