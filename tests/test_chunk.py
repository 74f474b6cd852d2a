"""Chunking with the model's own tokenizer: nothing over the limit, sensible breaks, stable ids."""

from __future__ import annotations


import polars as pl
import pytest

from kademe.chunk import chunk_texts
from kademe.ids import point_id
from kademe.split import plan_chunks, split_texts
from kademe.clean import clean_records
from kademe.models import load_tokenizer, resolve_model
from kademe.testing.sample import make_decision
from kademe.sources import read_year
from tests.conftest import MODEL, real_clean_texts



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
    assert point_id("yargitay", "2011-HD-1", 0) == "10a1253c-2c6d-5441-a334-ccecdcab723a"
    assert point_id("yargitay", "2011-HD-1", 0) != point_id("yargitay", "2011-HD-1", 1) != point_id("yargitay", "2011-HD-2", 1)
    assert point_id("yargitay", "2011-HD-1", 0) != point_id("danistay", "2011-HD-1", 0)
    assert point_id("c", "a", 3)[14] == "5"  # uuid version 5


def test_chunk_stage_writes_ids_counts_and_metadata(settings):
    s = settings(chunk_tokens=64, chunk_overlap=8)
    chunks = chunk_texts(clean_records(read_year(2011, s), 2011, s), 2011, s)
    df = pl.from_arrow(chunks.table())
    assert chunks.count == df.height > 6
    assert df["n_tokens"].max() <= 64
    assert df["point_id"].n_unique() == df.height
    first = df.filter(pl.col("doc_id") == "2011-HD-0000").sort("chunk_index")
    assert first["chunk_index"].to_list() == list(range(first.height))
    assert first["point_id"].to_list() == [point_id(s.corpus_name, "2011-HD-0000", i) for i in range(first.height)]
    assert first["chamber"][0] == "1. Hukuk Dairesi"


@pytest.fixture(scope="module")
def real_texts():
    return real_clean_texts(5)


@pytest.mark.parametrize("limit,overlap", [(256, 32), (64, 8)])
def test_window_counts_are_the_tokenizers_counts_on_real_decisions(tok, real_texts, limit, overlap):
    planned = [c for doc in plan_chunks(real_texts, tok, limit, overlap) for c in doc]
    clean = [c for c in planned if c.clean]
    assert len(clean) >= 0.95 * len(planned) > 200, "almost every chunk is cut at word breaks"
    assert [c.n_tokens for c in clean] == [count(tok, c.text) for c in clean]
    assert split_texts(real_texts, tok, limit, overlap) == [[(c.text, count(tok, c.text)) for c in doc]
                                                            for doc in plan_chunks(real_texts, tok, limit, overlap)]


def _trained_tokenizer(texts, normalizer, pre_tokenizer, wordpiece=False):
    """A real tokenizer trained on ``texts`` (a vocabulary of 2,000), with BERT's special tokens."""
    from tokenizers import Tokenizer, models, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["[UNK]", "[CLS]", "[SEP]"]
    if wordpiece:
        engine, trainer = Tokenizer(models.WordPiece(unk_token="[UNK]")), trainers.WordPieceTrainer
    else:
        engine, trainer = Tokenizer(models.BPE(unk_token="[UNK]")), trainers.BpeTrainer
    engine.normalizer, engine.pre_tokenizer = normalizer, pre_tokenizer
    engine.train_from_iterator(texts, trainer(vocab_size=2000, special_tokens=specials, show_progress=False))
    engine.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", engine.token_to_id("[CLS]")), ("[SEP]", engine.token_to_id("[SEP]"))])
    return PreTrainedTokenizerFast(tokenizer_object=engine, unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]")


@pytest.mark.parametrize("kind", ["byte-level", "words-merged-across-spaces"])
def test_tokenizers_that_count_slices_differently_still_get_exact_counts(real_texts, kind):
    from tokenizers import normalizers, pre_tokenizers

    texts = real_texts[:20]
    if kind == "byte-level":
        other = _trained_tokenizer(texts, None, pre_tokenizers.ByteLevel(add_prefix_space=False))
    else:  # WordPiece on words split at punctuation only, spaces dropped: a slice's first word starts afresh
        other = _trained_tokenizer(texts, normalizers.Replace(" ", ""), pre_tokenizers.BertPreTokenizer(), wordpiece=True)
    if kind == "words-merged-across-spaces":
        planned = [c for doc in plan_chunks(texts, other, 128, 16) for c in doc]
        assert any(c.clean and c.n_tokens != count(other, c.text) for c in planned), "this tokenizer counts slices differently"
    for doc in split_texts(texts, other, 128, 16):
        for text, n in doc:
            assert n == count(other, text) <= 128
