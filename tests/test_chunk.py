"""Chunking with the model's own tokenizer: nothing over the limit, sensible breaks, stable ids."""

from __future__ import annotations

import polars as pl
import pytest

from kademe.chunk import chunk_texts, point_id, split_texts
from kademe.clean import clean_records
from kademe.embed.model import load_tokenizer, resolve_model
from kademe.testing.sample import make_decision
from kademe.sources import read_year
from tests.conftest import MODEL


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(resolve_model(MODEL))


def count(tok, text):
    return len(tok(text, add_special_tokens=True)["input_ids"])


@pytest.mark.parametrize("limit", [32, 64, 256])
def test_no_chunk_exceeds_the_limit(tok, limit):
    texts = [make_decision(2021, n)["text"] for n in range(1, 6)] + ["kısa", "x" * 5000, "a" * 3 + " " + "ğ" * 900]
    for doc in split_texts(texts, tok, limit, overlap=8):
        assert doc, "every text gives at least one chunk"
        for text, n in doc:
            assert n == count(tok, text) <= limit


def test_chunks_cover_the_text_in_order(tok):
    text = make_decision(2021, 7)["text"]
    chunks = [t for t, _ in split_texts([text], tok, 128, overlap=0)[0]]
    joined = " ".join(" ".join(chunks).split())
    assert joined == " ".join(text.split())


def test_overlap_repeats_the_end_of_the_previous_chunk(tok):
    text = make_decision(2021, 3)["text"]
    chunks = [t for t, _ in split_texts([text], tok, 96, overlap=16)[0]]
    assert len(chunks) > 3
    for prev, nxt in zip(chunks, chunks[1:]):
        head = nxt.split()[:2]
        assert " ".join(head) in prev, "the next chunk starts inside the previous one"


def test_chunks_end_on_sentence_or_paragraph_breaks(tok):
    text = "\n\n".join(make_decision(2022, n)["text"] for n in (1, 2))
    chunks = [t for t, _ in split_texts([text], tok, 128, overlap=0)[0]]
    ends = [c[-1] for c in chunks[:-1]]
    assert sum(e in ".:;!?)" for e in ends) / len(ends) >= 0.8


def test_point_ids_are_deterministic_uuid5():
    # Pinned: a changed namespace or format would duplicate every point on the next run.
    assert point_id("2011-HD-1", 0) == "1547c2ae-1faa-5144-97da-c46a3296b1a5"
    assert point_id("2011-HD-1", 0) != point_id("2011-HD-1", 1) != point_id("2011-HD-2", 1)
    assert point_id("a", 3)[14] == "5"  # uuid version 5


def test_chunk_stage_writes_ids_counts_and_metadata(settings):
    s = settings(chunk_tokens=64, chunk_overlap=8)
    chunks = chunk_texts(clean_records(read_year(2011, s), 2011, s), 2011, s)
    df = pl.read_parquet(chunks.chunks)
    assert chunks.count == df.height > 6
    assert df["n_tokens"].max() <= 64
    assert df["point_id"].n_unique() == df.height
    first = df.filter(pl.col("doc_id") == "2011-HD-0000").sort("chunk_index")
    assert first["chunk_index"].to_list() == list(range(first.height))
    assert first["point_id"].to_list() == [point_id("2011-HD-0000", i) for i in range(first.height)]
    assert first["chamber"][0] == "1. Hukuk Dairesi"
