"""Tokenize once (issue 22): the chunk stage keeps each chunk's token ids; the embed stage feeds them to the model."""

from __future__ import annotations


import numpy as np
import pyarrow.parquet as pq
import pytest

from kademe.chunk import chunk_texts
from kademe.split import split_texts, split_tokens
from kademe.clean import clean_records
from kademe.embed.ladder import Ladder
from kademe.embed.model import load_encoder
from kademe.models import load_tokenizer, resolve_model
from kademe.settings import Settings
from kademe.sources import read_year
from tests.conftest import MODEL, real_clean_texts



@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(resolve_model(MODEL))


@pytest.fixture(scope="module")
def real_texts():
    return real_clean_texts(15)


@pytest.mark.parametrize("limit,overlap", [(256, 32), (64, 8)])
def test_kept_ids_are_the_tokenizers_ids_of_each_chunk(tok, real_texts, limit, overlap):
    chunks = [c for doc in split_tokens(real_texts, tok, limit, overlap) for c in doc]
    assert len(chunks) > 100
    assert [list(ids) for _, _, ids in chunks] == [tok(text)["input_ids"] for text, _, _ in chunks]
    assert all(len(ids) == n for _, n, ids in chunks)
    assert [(t, n) for t, n, _ in chunks] == [c for doc in split_texts(real_texts, tok, limit, overlap) for c in doc], \
        "the chunks themselves are unchanged"


@pytest.mark.slow
def test_embedding_from_kept_ids_matches_encode_on_turkish_text(tok, real_texts, monkeypatch):
    chunks = [c for doc in split_tokens(real_texts[:6], tok, 256, 32) for c in doc][:48]
    texts, counts, ids = [c[0] for c in chunks], [c[1] for c in chunks], [c[2].tobytes() for c in chunks]
    ladder = Ladder(Settings(device="cpu", batch_size=16))
    model = load_encoder(ladder.primary_dir, "cpu")
    want = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    calls = []
    monkeypatch.setattr(model, "preprocess", lambda *a, **k: calls.append(a) or pytest.fail("the embed stage tokenized"))
    out = ladder.embed(texts, counts, ids)
    assert not calls
    assert np.abs(np.stack(out.vectors) - want).max() < 1e-5
    assert ladder.batches == 3 and ladder.encode_seconds > 0


@pytest.mark.slow
def test_batches_split_by_an_oom_carry_their_own_ids(tok, real_texts, monkeypatch):
    monkeypatch.setenv("KADEME_FAULT_FAKE_CUDA", "1")  # the gpu rungs compute on the CPU, in float32
    monkeypatch.setenv("KADEME_FAULT_OOM_TOKENS", "600")  # a genuine OutOfMemoryError above 600 padded tokens
    chunks = [c for doc in split_tokens(real_texts[:6], tok, 128, 16) for c in doc][:40]
    texts, counts, ids = [c[0] for c in chunks], [c[1] for c in chunks], [c[2].tobytes() for c in chunks]
    seen = []

    class Checking(Ladder):
        def encode_batch(self, rung, batch, padded_tokens):
            seen.append(batch.ids.padded(tok.pad_token_id)[0].tolist() == tok(list(batch), padding=True)["input_ids"])
            return super().encode_batch(rung, batch, padded_tokens)

    ladder = Checking(Settings(device="cuda", batch_size=16))
    out = ladder.embed(texts, counts, ids)
    assert any(e.action == "split" for e in out.events) and len(seen) > len(out.events) + 2
    assert all(seen), "every batch, halves included, is fed the ids of its own chunks"
    want = load_encoder(ladder.primary_dir, "cpu").encode(texts, normalize_embeddings=True)
    assert np.abs(np.stack(out.vectors) - want).max() < 1e-5


def test_without_ids_the_ladder_still_encodes_texts(tok, real_texts):
    chunks = [c for doc in split_tokens(real_texts[:2], tok, 128, 0) for c in doc][:8]
    texts, counts = [c[0] for c in chunks], [c[1] for c in chunks]
    with_ids = Ladder(Settings(device="cpu")).embed(texts, counts, [c[2] for c in chunks])
    without = Ladder(Settings(device="cpu")).embed(texts, counts)
    assert np.abs(np.stack(with_ids.vectors) - np.stack(without.vectors)).max() < 1e-5


def test_token_ids_are_read_from_the_column_in_place_and_padded_as_the_tokenizer_pads(tok, real_texts):
    import pyarrow as pa

    from kademe.embed.model import TokenIds

    chunks = [c for doc in split_tokens(real_texts[:3], tok, 64, 8) for c in doc][:20]
    column = pa.array([b"\0\0\0\0"] + [c[2].tobytes() for c in chunks] + [None], pa.binary()).slice(1)  # offset, a null
    tokens = TokenIds.of(pa.chunked_array([column]))
    assert len(tokens) == len(chunks) + 1 and tokens.valid is not None and not tokens.valid[-1]
    assert tokens.flat.base is not None, "the column's buffer is read in place, not copied"
    rows = [7, 0, 12, 3]
    texts = [chunks[r][0] for r in rows]
    for side in ("right", "left"):
        tok.padding_side = side
        try:
            want = tok(texts, padding=True)
        finally:
            tok.padding_side = "right"
        input_ids, mask = tokens.take(rows).padded(tok.pad_token_id, left=side == "left")
        assert input_ids.tolist() == want["input_ids"] and mask.tolist() == want["attention_mask"], side
    assert tokens.take([0, len(chunks)]) is None, "a batch with a chunk without ids is encoded from its text"
    assert TokenIds.of([c[2] for c in chunks]).take(rows).padded(0)[0].tolist() == tokens.take(rows).padded(0)[0].tolist()


def test_chunk_file_keeps_token_ids(settings, tok):
    s = settings(chunk_tokens=64, chunk_overlap=8)
    result = chunk_texts(clean_records(read_year(2011, s), 2011, s), 2011, s)
    table = result.table(["text", "n_tokens", "token_ids"]).to_pylist()
    assert len(table) == result.count > 4
    for row in table:
        ids = np.frombuffer(row["token_ids"], dtype="<i4").tolist()
        assert ids == tok(row["text"])["input_ids"] and len(ids) == row["n_tokens"]


def test_the_embed_stage_hashes_no_text_when_the_chunk_file_keeps_the_hashes(settings, monkeypatch):
    import hashlib

    import kademe.embed.stage as stage

    s = settings(chunk_tokens=64, chunk_overlap=8, shard_size=8)
    chunks = chunk_texts(clean_records(read_year(2011, s), 2011, s), 2011, s)
    kept = chunks.table(["point_id", "text", "text_sha"]).to_pylist()
    assert [r["text_sha"] for r in kept] == [hashlib.sha256(r["text"].encode()).hexdigest() for r in kept]
    monkeypatch.setattr(stage, "text_sha", lambda text: pytest.fail("the embed stage hashed a text"))
    result = stage.embed_chunks(chunks, 2011, s)
    shards = pq.read_table(sorted(result.shards_dir.glob("shard-*.parquet")), columns=["point_id", "text_sha"]).to_pylist()
    assert shards == [{"point_id": r["point_id"], "text_sha": r["text_sha"]} for r in kept] and result.shards > 1


def test_a_shard_keeps_its_vectors_as_float32_bytes_and_shards_written_before_still_read(tmp_path):
    import pyarrow as pa

    from kademe.embed.shards import SHARD_SCHEMA, read_shard, write_shard

    rng = np.random.default_rng(3)
    vectors = [rng.standard_normal(1024).astype(np.float32) for _ in range(4)] + [rng.standard_normal(384).astype(np.float32)]
    ids, spaces, rungs = [f"p{k}" for k in range(5)], ["wide"] * 4 + ["small"], ["cpu"] * 4 + ["gpu-small"]
    write_shard(tmp_path / "new.parquet", ids, spaces, rungs, vectors)
    assert pq.read_schema(tmp_path / "new.parquet").field("vector").type == pa.large_binary() == SHARD_SCHEMA.field("vector").type

    lengths = np.array([len(v) for v in vectors])
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    old = pa.Table.from_arrays([pa.array(ids), pa.array(spaces), pa.array(rungs),
                                pa.ListArray.from_arrays(offsets, pa.array(np.concatenate(vectors))), pa.array([None] * 5, pa.string())],
                               names=["point_id", "space", "rung", "vector", "text_sha"])  # as kademe wrote shards before
    pq.write_table(old, tmp_path / "old.parquet")

    for name in ("new.parquet", "old.parquet"):
        got_ids, got_spaces, got_rungs, got = read_shard(tmp_path / name)
        assert (got_ids, got_spaces, got_rungs) == (ids, spaces, rungs), name
        assert [v.dtype for v in got] == [np.float32] * 5 and all(np.array_equal(a, b) for a, b in zip(got, vectors)), name


@pytest.mark.parametrize("batch", [1, 7, 64, 500])
def test_column_batches_hold_the_rows_of_row_batches_whatever_the_row_groups(tmp_path, batch):
    import pyarrow as pa

    from kademe.parquet_io import iter_columns, iter_parquet

    n = 301
    table = pa.table({"point_id": [f"p{k}" for k in range(n)], "n_tokens": list(range(n)),
                      "token_ids": [np.arange(k % 5, dtype="<i4").tobytes() for k in range(n)]})
    pq.write_table(table, tmp_path / "c.parquet", row_group_size=45)  # row groups cut across every batch size above
    rows = list(iter_parquet(tmp_path / "c.parquet", batch_size=batch))
    cols = list(iter_columns(tmp_path / "c.parquet", batch_size=batch, columns=["point_id", "token_ids"]))
    assert [len(c["point_id"]) for c in cols] == [len(r) for r in rows] and sum(len(r) for r in rows) == n
    for r, c in zip(rows, cols):
        assert c == {"point_id": [x["point_id"] for x in r], "token_ids": [x["token_ids"] for x in r]}


def test_the_embed_summary_counts_rungs_from_the_markers_and_from_older_shards(settings):
    from kademe.chunk import chunk_texts
    from kademe.embed.stage import embed_chunks, embed_key, summarize_shards

    s = settings(chunk_tokens=64, chunk_overlap=8, shard_size=5)
    chunks = chunk_texts(clean_records(read_year(2011, s), 2011, s), 2011, s)
    result = embed_chunks(chunks, 2011, s)
    cp = s.partition(2011).checkpoint("embed", embed_key(chunks.key, s, 2011))
    markers = [cp.shard_marker(i) for i in range(result.shards)]
    assert result.shards > 2 and sum(sum(m["rungs"].values()) for m in markers) == result.count == sum(result.rungs.values())
    assert result.rungs == {"cpu": result.count}
    for m in markers:  # a marker written before issue 22's change holds no rung counts: the shard's rung column counts
        del m["rungs"]
    assert summarize_shards(cp, result.shards, s)["rungs"] == result.rungs
