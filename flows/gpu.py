"""One GPU, one embedding at a time: a Prefect global concurrency slot named by ``KADEME_GPU_SLOT``.

``deployments/local-stack.sh`` starts one worker per GPU with ``CUDA_VISIBLE_DEVICES=<i>`` and
``KADEME_GPU_SLOT=gpu-<i>``, and creates the global concurrency limit ``gpu-<i>`` (limit 1). A worker
runs several flow runs at once; read, clean and chunk overlap, while the embed step waits for the slot.
Limits are global to the Prefect server: with workers on several hosts, name the slots per host
(``host-1-gpu-0``; deployments/README.md, "Several GPU hosts"). The partition's own limit
(``flows/limits.py``) is strict; this one is not, so a missing GPU limit never stops an ingest.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

SLOT_ENV = "KADEME_GPU_SLOT"


@contextmanager
def gpu_slot(name: str | None = None) -> Iterator[str | None]:
    """Hold one slot of the GPU's global concurrency limit for the duration of the block.

    A no-op when no slot is named. When the limit does not exist on the server, Prefect 3.9
    (``strict=False``) logs "Concurrency limits [...] do not exist - skipping acquisition." and the
    block runs unguarded: a missing limit never stops an ingest.

    Args:
        name: the limit to occupy; default: ``$KADEME_GPU_SLOT`` (unset or empty: no slot).

    Returns:
        A context manager yielding the slot name, or ``None`` when no slot was taken.

    Example:
        >>> with gpu_slot() as slot:  # KADEME_GPU_SLOT unset: runs at once
        ...     slot is None
        True
    """
    name = os.environ.get(SLOT_ENV) if name is None else name
    if not name:
        yield None
        return

    from prefect.concurrency.sync import concurrency

    # Waits as long as the other run holds the GPU (timeout_seconds=None). The lease is renewed in the
    # background; a failed renewal only logs, so a long embedding is never cancelled by a network blip.
    with concurrency(name, occupy=1, strict=False, raise_on_lease_renewal_failure=False):
        yield name
