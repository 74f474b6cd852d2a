"""Hybrid search through real parts: real decisions, the packaged MiniLM, Qdrant Edge, Qdrant's BM25."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from kademe.errors import KademeError
from kademe.search import format_hits, normalize_case_number, parse_case_numbers, search
from kademe.settings import Settings

CORPUS = Path("/work/shared/corpus/real-decisions.ndjson")
PARTIES = ("Eyfel Çelik", "İdart Turizm")  # companies named in one real decision each (real-0011, real-0026)


def _subset() -> list[dict]:
    """25 real decisions (179 chunks, 14 years): real-0011 and 24 short ones spread over the corpus."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from search import load_decisions  # bench/search.py

    rows = load_decisions(CORPUS)
    target = next(r for r in rows if r["id"] == "real-0011")
    others = sorted((r for r in rows if r is not target), key=lambda r: len(r["text"]))[:150:6]
    return [target] + others[:24]


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from search import build_collection

    rows = _subset()
    s = Settings(workdir=tmp_path_factory.mktemp("search"), collection="kararlar")
    build_collection(rows, s)
    return s, rows


def decisions(result: dict) -> list[str]:
    return [h["doc_id"] for h in result["hits"]]


def test_query_vector_equals_sentence_transformers():
    from kademe.embed.model import load_encoder
    from kademe.models import resolve_model
    from kademe.embed.query import encode_query

    texts = ["kıdem tazminatı faiz başlangıcı", "İSTANBUL 2. İŞ MAHKEMESİ ıslak imza", " 2022/14549 E., 2023/4695 K. ",
             json.loads(CORPUS.read_text(encoding="utf-8").splitlines()[0])["text"]]
    model = "sentence-transformers/all-MiniLM-L6-v2"
    ours = np.stack([encode_query(t, model) for t in texts])
    ref = load_encoder(resolve_model(model), "cpu").encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    assert np.abs(ours - ref).max() < 1e-5


@pytest.mark.slow
def test_search_imports_no_torch_or_prefect(collection):
    import subprocess

    s, _ = collection
    code = ("import sys; from kademe.search import search; from kademe.settings import Settings; "
            f"search('temyiz', Settings(workdir={str(s.workdir)!r}, collection='kararlar')); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'sentence_transformers', 'sklearn', "
            "'prefect', 'qdrant_client', 'transformers'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": "src:.", "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
@pytest.mark.parametrize("party", PARTIES)
def test_party_name_found_by_hybrid_where_dense_fails(collection, party):
    s, rows = collection
    target = next(r["id"] for r in rows if party in r["text"])
    assert sum(party in r["text"] for r in rows) == 1
    assert target not in decisions(search(party, s, mode="dense", top_k=5))
    assert decisions(search(party, s, mode="hybrid", top_k=5))[0] == target


@pytest.mark.slow
def test_one_hit_per_decision(collection):
    s, _ = collection
    result = search("davacı vekili tarafından temyiz edilmesi üzerine", s, top_k=10)
    ids = decisions(result)
    assert len(ids) == 10 and len(set(ids)) == 10
    assert {"doc_id", "chunk_index", "score", "text", "year", "chamber", "esas_no", "karar_no", "date"} <= set(result["hits"][0])
    assert result["mode"] == "hybrid"


@pytest.mark.slow
def test_case_numbers_rank_their_decision_first(collection):
    s, rows = collection
    for r, form in zip(rows[5:10], ("{e} E., {k} K.", "E. {e} K. {k}", "Esas No: {e}", "{k} K.", "{e_sp} E. , {k_sp} K.")):
        e, k = normalize_case_number(r["esas_no"]), normalize_case_number(r["karar_no"])
        query = form.format(e=e, k=k, e_sp=e.replace("/", " / "), k_sp=k.replace("/", " / "))
        for mode in ("hybrid", "dense", "lexical"):
            top = search(query, s, mode=mode, top_k=3)["hits"][0]
            assert top["doc_id"] == r["id"] and top["matched"], (query, mode)


@pytest.mark.slow
def test_year_filter(collection):
    s, rows = collection
    year = rows[0]["year"]
    result = search("temyiz", s, year=year, top_k=50)
    assert result["hits"] and {h["year"] for h in result["hits"]} == {year}
    assert len(result["hits"]) == sum(r["year"] == year for r in rows)  # every decision of the year, no more


def test_parse_case_numbers_forms():
    both = {"esas": ["2022/14549"], "karar": ["2023/4695"]}
    for q in ("2022/14549 E., 2023/4695 K.", "E. 2022/14549 K. 2023/4695", "Esas No: 2022/14549 Karar No: 2023/4695",
              "2022 / 14549 Esas , 2023 / 4695 Karar", "Yargıtay 4. HD 2022/014549E.-2023/4695K."):
        assert parse_case_numbers(q) == both, q
    assert parse_case_numbers("2019/17697") == {"esas": ["2019/17697"], "karar": ["2019/17697"]}
    assert parse_case_numbers("5237 sayılı TCK 53. madde, 24.11.2015") == {"esas": [], "karar": []}
    assert normalize_case_number("SAYISI : 2019 / 0017697") == "2019/17697"


def test_missing_collection_says_how(tmp_path):
    with pytest.raises(KademeError, match="does not exist"):
        search("temyiz", Settings(workdir=tmp_path, collection="yok"))


def test_collection_without_bm25_says_how_to_add_it(tmp_path):
    from kademe.store import PointBatch, open_store

    s = Settings(workdir=tmp_path, collection="eski")
    with open_store(s) as store:
        store.create({"all-minilm-l6-v2": 384}, sparse=())
        vec = np.ones((1, 384), dtype=np.float32) / np.sqrt(384)
        store.upsert([PointBatch(["00000000-0000-0000-0000-000000000001"], [{"doc_id": "d", "chunk_index": 0, "text": "t"}],
                                 "all-minilm-l6-v2", vec)])
    with pytest.raises(KademeError, match="--collection eski-hybrid"):
        search("temyiz", s)
    assert decisions(search("temyiz", s, mode="dense")) == ["d"]


def test_unsearchable_space_is_reported(tmp_path):
    from kademe.store import PointBatch, open_store

    s = Settings(workdir=tmp_path, collection="karma")
    with open_store(s) as store:
        store.create({"all-minilm-l6-v2": 384, "tiny": 8})
        store.upsert([PointBatch(["00000000-0000-0000-0000-000000000002"], [{"doc_id": "d", "chunk_index": 0, "text": "t"}],
                                 "tiny", np.ones((1, 8), dtype=np.float32),
                                 [(np.array([1], dtype=np.uint32), np.array([1.0], dtype=np.float32))])])
    result = search("temyiz", s, mode="dense")
    assert result["not_searched"] and result["not_searched"][0]["space"] == "tiny"
    assert "not searched: 1 points in vector space 'tiny'" in format_hits(result)


def test_model_saved_by_the_pinned_sentence_transformers_runs_on_the_fast_encoder(tmp_path, capsys):
    """Issue 19: sentence-transformers 6 writes ``"pooling_mode": "mean"``; the numpy encoder reads it and
    gives the vectors SentenceTransformer gives (a 1024-dim Dense projection on top, as in the report)."""
    import sentence_transformers

    from kademe.embed.model import load_encoder
    from kademe.embed.query import encode_query, numpy_encoder
    from kademe.testing import derive_wide_model

    wide = derive_wide_model(tmp_path / "wide", dims=1024)
    capsys.readouterr()  # the save's progress bars
    pooling = json.loads((wide / "1_Pooling" / "config.json").read_text())
    assert sentence_transformers.__version__.startswith("6.") and pooling["pooling_mode"] == "mean"
    assert numpy_encoder(wide) is not None
    texts = ["kıdem tazminatı faiz başlangıcı", "İSTANBUL 2. İŞ MAHKEMESİ ıslak imza"]
    ours = np.stack([encode_query(t, str(wide)) for t in texts])
    assert capsys.readouterr().err == ""  # no fallback, so nothing to explain
    ref = load_encoder(wide, "cpu").encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    assert ours.shape == (2, 1024) and np.abs(ours - ref).max() < 1e-5


def test_fallback_says_why_on_stderr(tmp_path, capsys):
    from kademe.embed.query import numpy_encoder
    from kademe.testing import derive_small_model

    small = derive_small_model(tmp_path / "small", layers=1)
    config = small / "1_Pooling" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "pooling_mode": "weightedmean"}))
    capsys.readouterr()  # the save's progress bars
    assert numpy_encoder(small) is None
    assert capsys.readouterr().err == (f"kademe: the fast query encoder cannot run {small.name} (pooling weightedmean); "
                                       "loading sentence-transformers instead (slower)\n")


@pytest.mark.parametrize("query", ["", "   ", "\n"])
def test_empty_query_is_an_error_before_the_store_opens(tmp_path, query):
    with pytest.raises(KademeError, match=r"^The query is empty: give words, a sentence or case numbers to search for\.$"):
        search(query, Settings(workdir=tmp_path, collection="yok"))
    assert list(tmp_path.iterdir()) == []
