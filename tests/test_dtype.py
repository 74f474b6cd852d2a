"""Half precision: the dtype setting resolved per device and rung, bf16 on the CPU, the paper cost, eviction, output widths."""

from __future__ import annotations

import gc
import json
import weakref
from pathlib import Path

import numpy as np
import pytest

from kademe.split import split_texts
from kademe.embed.ladder import Ladder
from kademe.embed.rungs import rung_dtypes
from kademe.embed.model import embedding_dims, load_encoder, resolve_dtype
from kademe.models import load_tokenizer, resolve_model
from kademe.embed.memory import bytes_per_token, dtype_bytes_of, estimate, max_token_budget
from kademe.embed.shape import KNOWN_SHAPES
from kademe.errors import KademeError
from kademe.settings import Settings
from tests.conftest import MODEL

REAL = Path("/work/shared/corpus/real-decisions.ndjson")


@pytest.fixture(scope="module")
def real_chunks():
    """Real Turkish decisions cut as the chunk stage cuts them (256 tokens)."""
    docs = [json.loads(line)["text"] for line in REAL.read_text(encoding="utf-8").splitlines()[:12]]
    pieces = [c for doc in split_texts(docs, load_tokenizer(resolve_model(MODEL)), 256, 32) for c in doc][:64]
    return [t for t, _ in pieces], [n for _, n in pieces]


@pytest.fixture
def fake_gpu(monkeypatch):
    monkeypatch.setenv("KADEME_FAULT_FAKE_CUDA", "1")
    return monkeypatch


def test_auto_is_float32_on_the_cpu_and_explicit_half_is_honoured():
    assert resolve_dtype("auto", "cpu") == "float32"
    assert resolve_dtype("bfloat16", "cpu") == "bfloat16"
    assert resolve_dtype("float16", "cpu") == "float16"  # this PyTorch computes float16 on the CPU (slowly)
    with pytest.raises(KademeError, match="--dtype"):
        resolve_dtype("float8", "cpu")


def test_fake_cuda_computes_on_the_cpu_so_auto_stays_float32(fake_gpu):
    from kademe.settings import Settings

    assert Ladder(Settings(device="cuda")).dtypes["gpu"] == "float32", "the fake card computes on the CPU"
    assert rung_dtypes("auto", device="cpu")["gpu"] == "float32"
    assert rung_dtypes("float16") == {"gpu": "float16", "gpu-batch1": "float16", "gpu-small": "float16", "cpu": "float32"}
    assert rung_dtypes("bfloat16", gpu=False) == {"cpu": "bfloat16"}


@pytest.mark.slow
def test_bfloat16_on_the_cpu_embeds_close_to_float32(real_chunks):
    texts, counts = real_chunks
    full = Ladder(Settings(device="cpu", dtype="float32")).embed(texts, counts)
    ladder = Ladder(Settings(device="cpu", dtype="bfloat16"))
    half = ladder.embed(texts, counts)
    assert ladder.dtypes == {"cpu": "bfloat16"}
    assert next(load_encoder(ladder.primary_dir, "cpu", "bfloat16").parameters()).dtype.is_floating_point
    a, b = np.asarray(full.vectors), np.asarray(half.vectors)
    assert b.dtype == np.float32 and np.allclose(np.linalg.norm(b, axis=1), 1, atol=1e-5)
    cos = np.sum(a * b, axis=1)
    assert cos.min() > 0.99 and not np.array_equal(a, b), f"min cosine {cos.min()}"
    assert ladder.encode_seconds > 0


def test_half_precision_halves_the_paper_cost_and_doubles_the_budget(fake_gpu):
    fake_gpu.setenv("KADEME_FAULT_FREE_MB", "20")
    full, half = (Ladder(Settings(device="cuda", dtype=d, batch_size=512)) for d in ("float32", "float16"))
    assert half._paper_cost() * 2 == full._paper_cost()
    assert abs(half.budget.tokens / full.budget.tokens - 2) < 0.01, (half.budget.tokens, full.budget.tokens)
    bge = KNOWN_SHAPES["BAAI/bge-m3"]
    assert bytes_per_token(bge, 512, "float32") == 2 * bytes_per_token(bge, 512, "bfloat16")
    assert estimate(bge, 1, 128, "bfloat16") == estimate(bge, 1, 128, 2)
    assert max_token_budget(bge, 10 * 2**30, 8192, "bfloat16") > max_token_budget(bge, 10 * 2**30, 8192, "float32")
    assert dtype_bytes_of("float16") == 2 and dtype_bytes_of(4) == 4


@pytest.mark.parametrize(("forced", "fallback", "last"), [("gpu,gpu-batch1", True, "gpu-small"), ("gpu,gpu-batch1", False, "cpu")])
def test_leaving_the_gpu_rungs_evicts_the_primary_model(real_chunks, fake_gpu, small_model, forced, fallback, last):
    fake_gpu.setenv("KADEME_FAULT_OOM_RUNGS", forced)
    ladder = Ladder(Settings(device="cuda", fallback_model=str(small_model) if fallback else None))
    alive = weakref.ref(load_encoder(ladder.primary_dir, ladder.card.device, ladder.dtypes["gpu"]))
    out = ladder.embed(real_chunks[0][:6], real_chunks[1][:6])
    gc.collect()
    assert set(out.rungs) == {last} and ladder.evicted
    assert alive() is None, "the primary model on the card is freed"


def test_staying_on_the_gpu_rungs_keeps_the_primary_model(real_chunks, fake_gpu):
    fake_gpu.setenv("KADEME_FAULT_OOM_RUNGS", "gpu")
    ladder = Ladder(Settings(device="cuda"))
    out = ladder.embed(real_chunks[0][:4], real_chunks[1][:4])
    assert set(out.rungs) == {"gpu-batch1"} and not ladder.evicted


@pytest.fixture(scope="module")
def wide_model(tmp_path_factory):
    from kademe.testing import derive_wide_model

    return derive_wide_model(tmp_path_factory.mktemp("models") / "minilm-wide")


def test_wide_model_gives_1024_dim_unit_vectors(wide_model, real_chunks):
    out = Ladder(Settings(device="cpu", model=str(wide_model))).embed(real_chunks[0][:8], real_chunks[1][:8])
    vecs = np.asarray(out.vectors)
    assert vecs.shape == (8, 1024) and np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)


def test_collection_width_is_the_models_output_not_its_pooling(wide_model):
    pooling = json.loads((wide_model / "1_Pooling" / "config.json").read_text())
    assert pooling.get("word_embedding_dimension", pooling.get("embedding_dimension")) == 384
    assert embedding_dims(wide_model) == 1024
    assert embedding_dims(resolve_model(MODEL)) == 384
