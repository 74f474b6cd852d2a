"""Tokenize once (issue 22): the chunk stage keeps each chunk's token ids; the embed stage feeds them to the model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from kademe.chunk import chunk_texts, split_texts, split_tokens
from kademe.clean import clean_records, clean_text
from kademe.embed.ladder import Ladder
from kademe.embed.model import load_encoder
from kademe.models import load_tokenizer, resolve_model
from kademe.settings import Settings
from kademe.sources import read_year
from tests.conftest import MODEL

REAL = Path("/work/shared/corpus/real-decisions.ndjson")


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(resolve_model(MODEL))


@pytest.fixture(scope="module")
def real_texts():
    if not REAL.exists():
        pytest.skip(f"{REAL} is not on this machine")
    return [clean_text(json.loads(line)["text"]) for line in REAL.read_text(encoding="utf-8").splitlines()[::15]]


@pytest.mark.parametrize("limit,overlap", [(256, 32), (64, 8)])
def test_kept_ids_are_the_tokenizers_ids_of_each_chunk(tok, real_texts, limit, overlap):
    chunks = [c for doc in split_tokens(real_texts, tok, limit, overlap) for c in doc]
    assert len(chunks) > 100
    assert [list(ids) for _, _, ids in chunks] == [tok(text)["input_ids"] for text, _, _ in chunks]
    assert all(len(ids) == n for _, n, ids in chunks)
    assert [(t, n) for t, n, _ in chunks] == [c for doc in split_texts(real_texts, tok, limit, overlap) for c in doc], \
        "the chunks themselves are unchanged"


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


def test_without_ids_the_ladder_still_encodes_texts(tok, real_texts):
    chunks = [c for doc in split_tokens(real_texts[:2], tok, 128, 0) for c in doc][:8]
    texts, counts = [c[0] for c in chunks], [c[1] for c in chunks]
    with_ids = Ladder(Settings(device="cpu")).embed(texts, counts, [c[2] for c in chunks])
    without = Ladder(Settings(device="cpu")).embed(texts, counts)
    assert np.abs(np.stack(with_ids.vectors) - np.stack(without.vectors)).max() < 1e-5


def test_chunk_file_keeps_token_ids(settings, tok):
    s = settings(chunk_tokens=64, chunk_overlap=8)
    result = chunk_texts(clean_records(read_year(2011, s), 2011, s), 2011, s)
    table = pq.read_table(result.chunks, columns=["text", "n_tokens", "token_ids"]).to_pylist()
    assert len(table) == result.count > 4
    for row in table:
        ids = np.frombuffer(row["token_ids"], dtype="<i4").tolist()
        assert ids == tok(row["text"])["input_ids"] and len(ids) == row["n_tokens"]
