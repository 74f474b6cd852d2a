"""On a real CUDA card: genuine OOMs, memory given back, and the ladder while another job takes memory.

Skipped without CUDA (marker ``gpu``). On a lent device machine: ``python -m pytest -m gpu -q``.
The memory hog lives in this process (a tensor holding most of the free memory), which is what
another job's allocation looks like to ``torch.cuda.mem_get_info``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kademe.embed.ladder import Ladder
from kademe.embed.model import load_encoder
from kademe.models import resolve_model
from kademe.embed.oom import enable_expandable_segments, frozen_heap, is_oom, release_memory
from kademe.settings import Settings
from kademe.testing import hold_gpu_memory, sample_chunks
from tests.conftest import MODEL

pytestmark = pytest.mark.gpu
MiB = 1 << 20


@pytest.fixture(scope="module")
def long_chunks():
    """Real decisions chunked to the model's 256 tokens: mostly full-length chunks."""
    return sample_chunks(600, MODEL, seed=3)


@pytest.fixture(scope="module")
def cpu_vectors(long_chunks):
    return load_encoder(resolve_model(MODEL), "cpu").encode(long_chunks[0], batch_size=32, normalize_embeddings=True)


def test_a_genuine_oom_is_recognised_and_its_memory_given_back():
    base = torch.cuda.memory_allocated()

    def fill(held: list) -> None:
        while True:
            held.append(torch.empty(256 * MiB, dtype=torch.uint8, device="cuda"))

    with frozen_heap():
        try:
            fill([])
        except Exception as exc:  # noqa: BLE001 - the point is what it is
            assert is_oom(exc), repr(exc)
        release_memory()
    assert torch.cuda.memory_allocated() == base


def test_expandable_segments_are_switched_on_at_run_time():
    assert enable_expandable_segments() == "expandable_segments:True via torch.cuda.memory._set_allocator_settings"


def test_plan_from_free_memory_and_calibrate_on_the_card(long_chunks, cpu_vectors):
    ladder = Ladder(Settings(device="cuda", batch_size=64))
    out = ladder.embed(*long_chunks)
    assert set(out.rungs) == {"gpu"} and not out.events
    assert ladder.budget.cost_per_token and ladder.budget.cost_per_token > 0, "bytes per padded token measured on the card"
    assert np.min(np.sum(np.asarray(out.vectors) * cpu_vectors, axis=1)) >= 0.999


def test_the_ladder_survives_a_hog_that_arrives_mid_year(long_chunks, cpu_vectors):
    """Planned with the card free; then another job takes all but ~96 MiB. Nothing is lost."""
    held: list[torch.Tensor] = []

    class SharedCard(Ladder):
        def encode_batch(self, rung, texts, padded_tokens):
            if self.batches == 3 and not held:
                held.append(hold_gpu_memory(96 * MiB))
            return super().encode_batch(rung, texts, padded_tokens)

    ladder = SharedCard(Settings(device="cuda", batch_size=64))
    try:
        out = ladder.embed(*long_chunks)
    finally:
        held.clear()
        release_memory()
    print("events:", [e.as_dict() for e in out.events], "rungs:", sorted(set(out.rungs)), "allocator:", ladder.allocator)
    assert len(out.vectors) == len(long_chunks[0])
    assert set(out.rungs) <= {"gpu", "gpu-batch1", "cpu"}, "no fallback model given: never degraded"
    assert np.min(np.sum(np.asarray(out.vectors) * cpu_vectors, axis=1)) >= 0.999


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "auto"])
def test_half_precision_on_the_card_matches_float32(long_chunks, cpu_vectors, dtype):
    """--dtype on a card: the weights are half precision, the vectors float32 unit vectors close to fp32."""
    from kademe.embed.model import load_encoder as load

    if dtype == "bfloat16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this card has no bfloat16")
    ladder = Ladder(Settings(device="cuda", dtype=dtype, batch_size=64))
    out = ladder.embed(*long_chunks)
    want = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    assert ladder.dtypes["gpu"] == (want if dtype == "auto" else dtype)
    assert next(load(ladder.primary_dir, "cuda", ladder.dtypes["gpu"]).parameters()).dtype == getattr(torch, ladder.dtypes["gpu"])
    vecs = np.asarray(out.vectors)
    assert vecs.dtype == np.float32 and np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-4)
    assert np.min(np.sum(vecs * cpu_vectors, axis=1)) >= 0.99
    assert ladder.encode_seconds > 0


def test_half_precision_halves_the_weights_on_the_card():
    from kademe.embed.model import evict_encoder
    from kademe.embed.model import load_encoder as load

    path = resolve_model(MODEL)
    used = {}
    for dtype in ("float32", "float16"):
        release_memory()
        before = torch.cuda.memory_allocated()
        load(path, "cuda", dtype)
        used[dtype] = torch.cuda.memory_allocated() - before
        evict_encoder(path, "cuda", dtype)
        release_memory()
    assert abs(used["float16"] / used["float32"] - 0.5) < 0.05, used


def test_leaving_the_gpu_rungs_frees_the_primary_model_on_the_card(long_chunks, monkeypatch):
    monkeypatch.setenv("KADEME_FAULT_OOM_RUNGS", "gpu,gpu-batch1")
    release_memory()
    base = torch.cuda.memory_allocated()
    ladder = Ladder(Settings(device="cuda", dtype="float16"))  # loads the primary onto the card
    assert torch.cuda.memory_allocated() > base
    out = ladder.embed(long_chunks[0][:8], long_chunks[1][:8])
    assert set(out.rungs) == {"cpu"} and ladder.evicted
    assert torch.cuda.memory_allocated() <= base + (1 << 20), "the primary's weights left the card"
