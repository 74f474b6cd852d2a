"""The OOM ladder, driven by the genuine torch.cuda.OutOfMemoryError injected at the encoder seam."""

from __future__ import annotations

import gc
import json
import math
import weakref

import numpy as np
import pytest
import torch

from kademe.split import split_texts
from kademe.embed.batches import halves as _halves
from kademe.embed.budget import GROW_AFTER, PROBE_FIRST
from kademe.embed.ladder import Ladder
from kademe.embed.model import load_encoder
from kademe.models import load_tokenizer, resolve_model
from kademe.embed.oom import frozen_heap, is_oom, release_memory
from kademe.testing.sample import make_decision
from kademe.settings import Settings
from tests.conftest import MODEL, decision, stored_points, write_ndjson


@pytest.fixture(scope="module")
def chunks():
    """About 60 real chunks of mixed length (long ones and short ones)."""
    tok = load_tokenizer(resolve_model(MODEL))
    texts = [make_decision(2021, n)["text"] for n in range(1, 4)]
    pieces = [c for doc in split_texts(texts, tok, 256, 16) for c in doc]
    pieces += [(t, n) for doc in split_texts(["Kısa karar.", "Dava reddedildi.", "Hüküm onandı."] * 8, tok, 256, 0) for t, n in doc]
    return [t for t, _ in pieces], [n for _, n in pieces]


@pytest.fixture(scope="module")
def cpu_vectors(chunks):
    model = load_encoder(resolve_model(MODEL), "cpu")
    return model.encode(chunks[0], batch_size=32, normalize_embeddings=True)


@pytest.fixture
def fake_gpu(monkeypatch):
    monkeypatch.setenv("KADEME_FAULT_FAKE_CUDA", "1")
    return monkeypatch


def cosines(a, b):
    return np.sum(np.asarray(a) * np.asarray(b), axis=1)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"), True),
        (RuntimeError("CUDA out of memory. Tried to allocate 2.00 MiB"), True),
        (RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"), True),
        (RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"), True),
        (RuntimeError("NVML_SUCCESS == r INTERNAL ASSERT FAILED at CUDACachingAllocator.cpp"), True),
        (RuntimeError("The size of tensor a (4) must match the size of tensor b (5)"), False),
        (ValueError("CUDA out of memory"), False),
        (MemoryError(), False),
    ],
)
def test_oom_is_recognised_precisely(exc, expected):
    assert is_oom(exc) is expected


def test_other_errors_propagate_unchanged(chunks, fake_gpu):
    class Broken(Ladder):
        def encode_batch(self, rung, texts, padded_tokens):
            raise RuntimeError("The size of tensor a (4) must match the size of tensor b (5)")

    with pytest.raises(RuntimeError, match="size of tensor a"):
        Broken(Settings(device="cuda")).embed(*chunks)


def test_halves_split_by_tokens_not_rows():
    n_tokens = [200, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20]
    left, right = _halves(list(range(11)), n_tokens)
    assert left == [0] and right == list(range(1, 11))


def test_oom_splits_only_the_failing_batch_and_loses_nothing(chunks, cpu_vectors, fake_gpu):
    fake_gpu.setenv("KADEME_FAULT_OOM_TOKENS", "3000")
    calls = []

    class Counting(Ladder):
        def encode_batch(self, rung, texts, padded_tokens):
            calls.append((rung, len(texts), padded_tokens))
            return super().encode_batch(rung, texts, padded_tokens)

    out = Counting(Settings(device="cuda", batch_size=32)).embed(*chunks)
    assert out.rungs == ["gpu"] * len(chunks[0])
    assert cosines(out.vectors, cpu_vectors).min() >= 0.999, "same vectors, same order"
    assert out.events and all(e.action == "split" and e.padded_tokens > 3000 for e in out.events)
    succeeded = [c for c in calls if c[2] <= 3000]
    assert sum(rows for _, rows, _ in succeeded) == len(chunks[0]), "each chunk embedded exactly once"


def test_budget_grows_back_after_an_outlier(fake_gpu):
    fake_gpu.setenv("KADEME_FAULT_OOM_TOKENS", "2000")
    texts = ["uzun " * 200] + ["kısa metin"] * (GROW_AFTER * 40)
    n_tokens = [256] + [4] * (GROW_AFTER * 40)
    ladder = Ladder(Settings(device="cuda", batch_size=32, token_budget=8192))
    out = ladder.embed(texts, n_tokens)
    assert out.events and out.events[0].padded_tokens == 8192
    assert ladder.budget.tokens >= 1800, "the budget came back up near the largest size that fits"
    assert all(e.rung == "gpu" for e in out.events)


@pytest.mark.slow
def test_a_size_that_failed_is_tried_again_only_as_a_rare_probe(fake_gpu):
    """The waiting halves of a failed batch that are over the shrunken budget are split untried;
    the failed size is looked at again only after a long run of successes, ever more rarely."""
    fake_gpu.setenv("KADEME_FAULT_OOM_TOKENS", "1024")
    calls = []

    class Recording(Ladder):
        def encode_batch(self, rung, texts, padded_tokens):
            calls.append(padded_tokens)
            return super().encode_batch(rung, texts, padded_tokens)

    n = 1024
    out = Recording(Settings(device="cuda", batch_size=32)).embed(["kısa metin"] * n, [256] * n)  # nominal lengths
    failed = [e.padded_tokens for e in out.events]
    assert failed[:3] == [8192, 4096, 2048], "halving down to what fits"
    fails_at = [i for i, p in enumerate(calls) if p > 1024]
    repeats = [i for i in fails_at if calls[i] in {calls[j] for j in fails_at if j < i}]
    assert repeats, "the old ceiling is looked at again now and then"
    gaps = [b - a - 1 for a, b in zip(fails_at, fails_at[1:]) if b in repeats]  # successes before each look
    assert gaps[0] >= PROBE_FIRST and all(later >= 2 * earlier for earlier, later in zip(gaps, gaps[1:])), gaps
    assert len(failed) <= 5 + math.ceil(math.log2(len(calls) / PROBE_FIRST)), failed


@pytest.mark.slow
def test_memory_taken_mid_year_is_learned_once(fake_gpu):
    """Another job takes memory halfway: the ladder learns the new ceiling, then stays under it."""
    fake_gpu.setenv("KADEME_FAULT_OOM_TOKENS", "4096")
    after_change = []

    class SharedCard(Ladder):
        def encode_batch(self, rung, texts, padded_tokens):
            if self.batches == 12:
                fake_gpu.setenv("KADEME_FAULT_OOM_TOKENS", "1024")
            if self.batches >= 12:
                after_change.append(padded_tokens)
            return super().encode_batch(rung, texts, padded_tokens)

    n = 800
    out = SharedCard(Settings(device="cuda", batch_size=32, token_budget=8192)).embed(["kısa metin"] * n, [256] * n)
    failed_after = [p for p in after_change if p > 1024]
    probes = math.ceil(math.log2(len(after_change) / PROBE_FIRST))  # looks at the old ceiling, ever more rarely
    assert len(failed_after) <= 4 + probes, f"the ladder kept hitting the new ceiling: {failed_after}"
    assert len(out.vectors) == n and all(v is not None for v in out.vectors)


@pytest.mark.slow
def test_memory_freed_mid_year_is_used_again(fake_gpu):
    """Another job frees memory halfway: the ladder grows into it; halving-only stays small."""
    n = 600

    def run(regrow: bool) -> Ladder:
        fake_gpu.setenv("KADEME_FAULT_OOM_TOKENS", "1024")

        class SharedCard(Ladder):
            def encode_batch(self, rung, texts, padded_tokens):
                if self.batches == 12:
                    fake_gpu.setenv("KADEME_FAULT_OOM_TOKENS", "4096")
                return super().encode_batch(rung, texts, padded_tokens)

        ladder = SharedCard(Settings(device="cuda", batch_size=32, token_budget=8192))
        if not regrow:
            ladder.budget.grow_after = 10**9
        out = ladder.embed(["kısa metin"] * n, [256] * n)
        assert len(out.vectors) == n and set(out.rungs) == {"gpu"}
        return ladder

    assert run(regrow=True).budget.tokens >= 3072, "grew back towards the freed 4096 tokens"
    assert run(regrow=False).budget.tokens <= 1024


def free_mb_for(tokens: int) -> float:
    """The free memory (MiB) for which the planner's budget is ``tokens`` padded tokens of MiniLM."""
    from kademe.embed.budget import SAFETY
    from kademe.embed.memory import bytes_per_token
    from kademe.embed.shape import load_shape

    return tokens * bytes_per_token(load_shape(resolve_model(MODEL)), 256, dtype_bytes=4) / SAFETY / 2**20


class Recording(Ladder):
    """Records (batch number, padded tokens, free MiB to report from now on) and plays the card's changes."""

    def __init__(self, s, changes: dict[int, dict[str, str]], monkeypatch):
        super().__init__(s)
        self.changes, self.mp, self.calls = changes, monkeypatch, []

    def encode_batch(self, rung, texts, padded_tokens):
        for name, value in self.changes.get(self.batches, {}).items():
            self.mp.setenv(name, value)
        self.calls.append((self.batches, padded_tokens))
        return super().encode_batch(rung, texts, padded_tokens)


def test_planning_from_free_memory_makes_the_oom_rare(fake_gpu):
    n, texts, n_tokens = 200, ["kısa metin"] * 200, [256] * 200
    fake_gpu.setenv("KADEME_FAULT_OOM_TOKENS", "2048")
    unplanned = Ladder(Settings(device="cuda", batch_size=32)).embed(texts, n_tokens)
    fake_gpu.setenv("KADEME_FAULT_FREE_MB", f"{free_mb_for(1536):.2f}")
    ladder = Ladder(Settings(device="cuda", batch_size=32))
    planned = ladder.embed(texts, n_tokens)
    assert unplanned.events, "batch 32 x 256 does not fit a 2048-token card"
    assert planned.events == [] and 1400 <= ladder.budget.tokens <= 1536, ladder.budget.tokens
    assert len(planned.vectors) == n and set(planned.rungs) == {"gpu"}


def test_free_memory_is_re_read_after_every_batch(fake_gpu):
    """Another job takes half of the free memory: the next batch is planned smaller, with no OOM."""
    fake_gpu.setenv("KADEME_FAULT_FREE_MB", f"{free_mb_for(2048):.2f}")
    ladder = Recording(Settings(device="cuda", batch_size=32), {10: {"KADEME_FAULT_FREE_MB": f"{free_mb_for(1024):.2f}"}}, fake_gpu)
    out = ladder.embed(["kısa metin"] * 200, [256] * 200)
    assert out.events == []
    assert max(p for b, p in ladder.calls if b < 10) == 2048
    assert max(p for b, p in ladder.calls if b > 10) <= 1024, "planned down one batch after the change"


@pytest.mark.slow
def test_memory_freed_where_it_is_measured_is_tried_at_once(fake_gpu):
    """At a learned ceiling, a card that reports much more free memory is tried again without the long wait."""

    def first_big_batch_after_the_change(report_freed: bool) -> int:
        fake_gpu.setenv("KADEME_FAULT_OOM_TOKENS", "1024")
        fake_gpu.setenv("KADEME_FAULT_FREE_MB", f"{free_mb_for(4096):.2f}")
        change = {"KADEME_FAULT_OOM_TOKENS": "4096"}
        if report_freed:
            change["KADEME_FAULT_FREE_MB"] = f"{free_mb_for(16384):.2f}"
        ladder = Recording(Settings(device="cuda", batch_size=32), {40: change}, fake_gpu)
        out = ladder.embed(["kısa metin"] * 600, [256] * 600)
        assert len(out.vectors) == 600
        return next(b for b, p in ladder.calls if b >= 40 and p > 1280)

    freed, unmeasured = first_big_batch_after_the_change(True), first_big_batch_after_the_change(False)
    assert freed <= 40 + 2 * GROW_AFTER and freed < unmeasured, (freed, unmeasured)


def test_oom_garbage_is_collected_inside_the_frozen_heap():
    """What a failing batch leaves in reference cycles is freed; the heap is unfrozen afterwards."""

    class Activations:
        pass

    assert gc.get_freeze_count() == 0
    with frozen_heap():
        assert gc.get_freeze_count() > 0
        held = Activations()
        held.cycle, held.tensor = held, torch.zeros(1024)
        alive = weakref.ref(held)
        del held
        release_memory()
        assert alive() is None
    assert gc.get_freeze_count() == 0


@pytest.mark.slow
def test_gpu_batch1_rung_uses_batch_one_and_records_the_allocator(chunks, cpu_vectors, fake_gpu):
    fake_gpu.setenv("KADEME_FAULT_OOM_RUNGS", "gpu")
    ladder = Ladder(Settings(device="cuda"))
    out = ladder.embed(*chunks)
    assert set(out.rungs) == {"gpu-batch1"}
    assert [e.action for e in out.events if e.action != "split"] == ["next-rung:gpu-batch1"]
    assert {e.rung for e in out.events if e.action == "split"} == {"gpu"}, "split down to one chunk first"
    assert ladder.allocator == "not applied: no CUDA device (KADEME_FAULT_FAKE_CUDA)"
    assert cosines(out.vectors, cpu_vectors).min() >= 0.999


@pytest.mark.slow
def test_gpu_small_rung_uses_the_fallback_space(chunks, fake_gpu, small_model):
    fake_gpu.setenv("KADEME_FAULT_OOM_RUNGS", "gpu,gpu-batch1")
    ladder = Ladder(Settings(device="cuda", fallback_model=str(small_model)))
    out = ladder.embed(*chunks)
    assert set(out.rungs) == {"gpu-small"} and set(out.spaces) == {"minilm-3l"} and ladder.degraded
    assert [e.action for e in out.events if e.action != "split"] == ["next-rung:gpu-batch1", "next-rung:gpu-small"]


@pytest.mark.slow
def test_cpu_rung_is_the_primary_space_and_not_degraded(chunks, cpu_vectors, fake_gpu, small_model):
    fake_gpu.setenv("KADEME_FAULT_OOM_RUNGS", "gpu,gpu-batch1,gpu-small")
    ladder = Ladder(Settings(device="cuda", fallback_model=str(small_model)))
    out = ladder.embed(*chunks)
    assert set(out.rungs) == {"cpu"} and set(out.spaces) == {"all-minilm-l6-v2"} and not ladder.degraded
    assert cosines(out.vectors, cpu_vectors).min() >= 0.999


@pytest.mark.slow
def test_without_fallback_model_the_ladder_skips_to_cpu(chunks, fake_gpu):
    fake_gpu.setenv("KADEME_FAULT_OOM_RUNGS", "gpu,gpu-batch1")
    out = Ladder(Settings(device="cuda")).embed(*chunks)
    assert set(out.rungs) == {"cpu"} and out.events[-1].action == "next-rung:cpu"


# -- through kademe ingest, as issue 4 asks ------------------------------------------------------

def vectors_by_id(s, space):
    return {pid: (p.vector.get(space), p.payload) for pid, p in stored_points(s.workdir, s.collection).items()}


def ingest_cli(s, *extra):
    import io
    from contextlib import redirect_stdout

    from kademe.cli import main

    buf = io.StringIO()
    with redirect_stdout(buf):
        code = main(["ingest", "--source", s.source, "--years", "2011", "2012", "--collection", s.collection,
                     "--workdir", str(s.workdir), "--model", MODEL, "--batch-size", "8", "--shard-size", "8", "--json", *extra])
    return code, json.loads(buf.getvalue())


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory, prefect_server):
    """The ``corpus`` fixture's decisions ingested once on the CPU: point id -> (vector, payload) (read-only)."""
    root = tmp_path_factory.mktemp("cpu-run")
    for year in (2011, 2012):  # the same decisions as every test's own corpus: the same point ids
        write_ndjson(root / "data" / f"yargitay_{year}.ndjson", [decision(year, n) for n in range(6)])
    s = Settings(source=str(root / "data" / "yargitay_{year}.ndjson"), workdir=root / "work", collection="test", model=MODEL,
                 device="cpu", shard_size=8)
    code, _ = ingest_cli(s, "--device", "cpu")
    assert code == 0
    return vectors_by_id(s, "all-minilm-l6-v2")


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_ingest_under_a_token_budget_loses_nothing(settings, cpu_run, fake_gpu, small_model):
    fake_gpu.setenv("KADEME_FAULT_OOM_TOKENS", "600")
    s = settings()
    code, result = ingest_cli(s, "--device", "cuda", "--fallback-model", str(small_model))
    assert code == 0
    for year in result["years"].values():
        assert year["status"] == "completed" and not year["degraded"]
        # The GPU rungs ran on the CPU under KADEME_FAULT_FAKE_CUDA: the report says so, not "cuda" (issue 11).
        assert year["device"] == "cpu" and "KADEME_FAULT_FAKE_CUDA=1" in year["instruments"]
        assert "KADEME_FAULT_OOM_TOKENS=600" in year["instruments"] and year["rungs"].keys() == {"gpu"}
        assert year["oom_events"] and year["oom_events"][0]["rung"] == "gpu", "each year starts at the top"
        assert set(year["rungs"]) == {"gpu"}
    got = vectors_by_id(s, "all-minilm-l6-v2")
    assert got.keys() == cpu_run.keys()
    assert min(float(np.dot(got[k][0], cpu_run[k][0])) for k in got) >= 0.999


@pytest.mark.usefixtures("prefect_server")
def test_forced_gpu_rungs_degrade_to_the_small_model_then_upgrade(settings, cpu_run, fake_gpu, small_model, capsys):
    fake_gpu.setenv("KADEME_FAULT_OOM_RUNGS", "gpu,gpu-batch1")
    s = settings()
    code, result = ingest_cli(s, "--device", "cuda", "--fallback-model", str(small_model))
    assert code == 0
    for year in result["years"].values():
        assert year["degraded"] is True and set(year["rungs"]) == {"gpu-small"}
        assert list(dict.fromkeys(e["rung"] for e in year["oom_events"])) == ["gpu", "gpu-batch1"], "each year starts at the top"
    degraded = vectors_by_id(s, "minilm-3l")
    assert all(v is not None and p["degraded"] and p["model"] == str(small_model) for v, p in degraded.values())

    fake_gpu.delenv("KADEME_FAULT_OOM_RUNGS")
    from kademe.cli import main

    capsys.readouterr()
    code = main(["upgrade", "--years", "2011", "2012", "--collection", s.collection, "--workdir", str(s.workdir),
                 "--model", MODEL, "--device", "cpu", "--json"])
    upgraded = json.loads(capsys.readouterr().out)
    assert code == 0 and all(y["degraded"] is False and y["verify"]["ok"] for y in upgraded["years"].values())
    got = vectors_by_id(s, "all-minilm-l6-v2")
    assert got.keys() == cpu_run.keys()
    assert min(float(np.dot(got[k][0], cpu_run[k][0])) for k in got) >= 0.999
    assert not any(p["degraded"] for _, p in got.values())
    assert json.loads((s.workdir / "yargitay" / "2011" / "report.json").read_text())["degraded"] is False


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_all_gpu_rungs_forced_ends_on_cpu_not_degraded(settings, cpu_run, fake_gpu, small_model):
    fake_gpu.setenv("KADEME_FAULT_OOM_RUNGS", "gpu,gpu-batch1,gpu-small")
    s = settings()
    code, result = ingest_cli(s, "--device", "cuda", "--fallback-model", str(small_model))
    assert code == 0
    for year in result["years"].values():
        assert year["degraded"] is False and set(year["rungs"]) == {"cpu"}
        assert list(dict.fromkeys(e["rung"] for e in year["oom_events"])) == ["gpu", "gpu-batch1", "gpu-small"]
    got = vectors_by_id(s, "all-minilm-l6-v2")
    assert got.keys() == cpu_run.keys()
    assert min(float(np.dot(got[k][0], cpu_run[k][0])) for k in got) >= 0.999


@pytest.mark.gpu
def test_real_gpu_embeds_and_matches_cpu(chunks, cpu_vectors):
    out = Ladder(Settings(device="cuda")).embed(*chunks)
    assert set(out.rungs) <= {"gpu", "gpu-batch1"}
    assert cosines(out.vectors, cpu_vectors).min() >= 0.999
