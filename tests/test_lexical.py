"""The BM25 analyzer on Turkish text: Qdrant's tokenizer, stemmer and stopwords, with Turkish capitals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kademe.lexical import bm25
from kademe.lexical.bm25 import analyzer_fingerprint, case_fold, sparse_documents, sparse_query

CORPUS = Path("/work/shared/corpus/real-decisions.ndjson")


def terms(text: str) -> set[int]:
    return set(sparse_query(text)[0].tolist())


def test_inflected_forms_share_one_term():
    assert terms("kararların") == terms("kararı") == terms("karar") == terms("KARARLARININ")
    assert terms("davacının") == terms("davacı")


def test_turkish_capitals_meet_lower_case():
    # Unicode lowercasing alone gives DAVALI -> davali and İ -> i + combining dot; the Turkish mapping fixes both.
    assert terms("DAVALI") == terms("davalı")
    assert terms("İSTANBUL") == terms("istanbul")
    assert terms("ISLAK") == terms("ıslak") != terms("islak")


def test_dotted_and_dotless_i_stay_apart():
    assert terms("ılık") != terms("ilik")


def test_case_number_is_two_terms_without_the_slash():
    assert terms("2019/17697") == terms("2019 17697") == terms("2019 / 17697")
    assert len(terms("2019/17697")) == 2


def test_stopwords_give_an_empty_query():
    idx, val = sparse_query("ve ile bu da")
    assert idx.size == 0 and val.size == 0


def test_document_vectors_are_typed_and_weigh_repeats_more():
    (idx, val), (idx2, val2) = sparse_documents(["temyiz", "temyiz temyiz temyiz"])
    assert idx.dtype == np.uint32 and val.dtype == np.float32
    assert idx.tolist() == idx2.tolist() and val2[0] > val[0]


def test_fingerprint_names_the_settings(monkeypatch):
    base = analyzer_fingerprint("turkish")
    assert base == analyzer_fingerprint("turkish") != analyzer_fingerprint("english")
    monkeypatch.setitem(bm25.ANALYZER_OPTIONS, "ascii_folding", True)
    assert analyzer_fingerprint("turkish") != base


def test_turkish_mapping_only_for_turkish():
    assert case_fold("DAVALI", "turkish") == "DAVALı"
    assert case_fold("DAVALI", "english") == "DAVALI"


def test_unknown_language_says_what_to_do():
    from kademe.errors import KademeError

    bm25.analyzer.cache_clear()
    with pytest.raises(KademeError, match="--bm25-language"):
        sparse_query("x", "klingon")


def test_every_real_chunk_gets_terms():
    """On real decisions every chunk of prose yields terms (the rate is measured in bench/search.py)."""
    from kademe.clean import clean_text

    texts = [clean_text(json.loads(line)["text"]) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    chunks = [c for t in texts for c in (t[i:i + 1000] for i in range(0, len(t), 1000)) if len(c) > 200]
    out = sparse_documents(chunks)
    assert len(out) == len(chunks) and all(i.size >= 10 and (v > 0).all() for i, v in out)


def test_previous_vectors_of_recurring_texts_read_each_shard_once(tmp_path, monkeypatch):
    """A night's tail of recurring texts (boilerplate, decisions appended again) refers back to early shards in
    turn: each of them is read once, not once per chunk (issue 29: the lexical stage grew night after night)."""
    from types import SimpleNamespace

    import numpy as np
    import pyarrow as pa

    from kademe.lexical import shards
    from kademe.lexical.reuse import PreviousSparse

    files = []
    for i in range(4):
        files.append(tmp_path / f"shard-{i}.parquet")
        shas = [f"sha-{i}-{j}" for j in range(3)]
        vectors = [(np.array([i, j], np.uint32), np.array([1.0, 2.0], np.float32)) for j in range(3)]
        shards.write_sparse(files[-1], pa.array([f"p{i}{j}" for j in range(3)]), vectors, shas)
    reads = []
    real = shards.read_sparse
    monkeypatch.setattr(shards, "read_sparse", lambda path: (reads.append(path), real(path))[1])
    previous = PreviousSparse(SimpleNamespace(shard_file=lambda i: files[i]), shards=4)

    for _ in range(50):  # the tail: copies of texts first seen in shards 0..3, in turn
        for i in range(4):
            indices, values = previous.get(f"sha-{i}-{i % 3}")
            assert list(indices) == [i, i % 3] and list(values) == [1.0, 2.0]
    assert previous.get("never-seen") is None
    assert sorted(reads) == sorted(files)
