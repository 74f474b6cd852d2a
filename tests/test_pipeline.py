"""The whole path through real parts: Prefect test server, the packaged model, local Qdrant."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from kademe.cli import main
from kademe.testing.sample import write_corpus
from kademe.store import PointBatch
from kademe.store.edge import EdgeStore
from tests.conftest import ALL_STAGES, MODEL, decision, source_counts, stored_points, write_ndjson

pytestmark = pytest.mark.usefixtures("prefect_server")


def ingest(settings, years=(2011, 2012), **kw):
    from flows.ingest import ingest_years

    return ingest_years(list(years), **settings(**kw).flow_parameters())


@pytest.fixture(scope="module")
def ingested(tmp_path_factory, prefect_server) -> dict[tuple, tuple]:
    """The ``corpus`` fixture's decisions ingested once, both years and 2011 alone: years -> (workdir, result).

    Read-only: a test copies a workdir to its own ``work`` folder with ``ingested_into``. Checkpoint keys
    hash the source's content, not its path, so the test's own copy of the corpus hits them.
    """
    from kademe.settings import Settings

    root = tmp_path_factory.mktemp("pipeline")
    for year in (2011, 2012):
        write_ndjson(root / "data" / f"yargitay_{year}.ndjson", [decision(year, n) for n in range(6)])

    def settings(workdir):
        return lambda **kw: Settings(source=str(root / "data" / "yargitay_{year}.ndjson"), workdir=workdir, collection="test",
                                     model=MODEL, device="cpu", shard_size=8, **kw)

    return {years: (root / name, ingest(settings(root / name), years=years))
            for name, years in (("both", (2011, 2012)), ("2011", (2011,)))}


def ingested_into(ingested, settings, years) -> dict:
    """A copy of the workdir ``ingested`` holds for ``years``, as ``settings()``'s workdir; returns that ingest's result."""
    workdir, result = ingested[years]
    shutil.copytree(workdir, settings().workdir)
    return result


def points(s, year=None):
    return stored_points(s.workdir, s.collection, year=year)


def test_ingest_two_years_end_to_end(settings, ingested):
    result = ingested_into(ingested, settings, (2011, 2012))
    s = settings()
    for year in ("2011", "2012"):
        y = result["years"][year]
        c = y["counts"]
        assert y["status"] == "completed" and y["verify"]["ok"]
        assert c["read"] == c["documents"] + c["duplicates"] + c["rejected"] == 6
        assert c["chunks"] == c["embedded"] == c["upserted"] > 0
        assert (y["degraded"], y["oom_events"], y["device"], y["model"]) == (False, [], "cpu", MODEL)
    pts = points(s)
    assert len(pts) == sum(result["years"][y]["counts"]["chunks"] for y in ("2011", "2012"))
    p = next(iter(pts.values()))
    assert set(p.vector) == {"all-minilm-l6-v2"} and len(p.vector["all-minilm-l6-v2"]) == 384
    assert {"corpus", "doc_id", "year", "chunk_index", "text", "chamber", "date", "esas_no", "karar_no", "konu", "model",
            "degraded"} <= set(p.payload)
    assert p.payload["corpus"] == "yargitay" and p.sparse is not None and len(p.sparse[0]) > 0
    assert np.isclose(np.linalg.norm(p.vector["all-minilm-l6-v2"]), 1.0, atol=1e-3)
    report = json.loads((s.workdir / "yargitay" / "2011" / "report.json").read_text())
    assert report["counts"] == result["years"]["2011"]["counts"]


@pytest.mark.slow
def test_rerun_skips_finished_stages_and_keeps_the_same_points(settings, ingested):
    first = ingested_into(ingested, settings, (2011, 2012))
    before = points(settings())
    second = ingest(settings)
    after = points(settings())
    for year in ("2011", "2012"):
        assert second["years"][year]["cached"] == ALL_STAGES
        assert source_counts(second["years"][year]["counts"]) == source_counts(first["years"][year]["counts"])
        assert second["years"][year]["counts"]["committed"] == first["years"][year]["counts"]["embedded"], "a warm run encodes nothing"
    assert before.keys() == after.keys()
    assert all(before[k].vector == after[k].vector for k in before)


@pytest.mark.slow
def test_changed_setting_recomputes_from_the_first_stage_it_affects(settings, ingested):
    ingested_into(ingested, settings, (2011,))
    old = points(settings())
    result = ingest(settings, years=[2011], chunk_tokens=48, chunk_overlap=4)["years"]["2011"]
    assert result["cached"] == ["read", "clean"]
    assert result["verify"]["ok"], "stale points of the old chunking were removed"
    assert len(points(settings())) == result["counts"]["chunks"] > len(old)


def test_verify_detects_a_deleted_and_an_extra_point(settings, ingested, capsys):
    ingested_into(ingested, settings, (2011,))
    s = settings()
    victim = next(iter(points(s)))
    with EdgeStore.open(s.workdir / "qdrant" / s.collection) as store:
        store.delete([victim])
        store.upsert([PointBatch(["00000000-0000-4000-8000-000000000001"], [{"year": 2011, "corpus": "yargitay"}],
                                 "all-minilm-l6-v2", np.full((1, 384), 0.05, np.float32))])
    code = main(["verify", "--collection", s.collection, "--years", "2011", "--workdir", str(s.workdir), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["ok"] is False
    y = out["years"]["2011"]
    assert y["missing"] == [str(victim)] and y["extra"] == ["00000000-0000-4000-8000-000000000001"]


def test_a_run_that_writes_nothing_verifies_by_counts_and_still_names_a_lost_point(settings, ingested):
    first = ingested_into(ingested, settings, (2011,))["years"]["2011"]
    assert first["verify"]["checked"] == "ids"  # the first run wrote the year: every id is looked at

    quiet = ingest(settings, years=[2011])["years"]["2011"]
    assert quiet["cached"] == ALL_STAGES and quiet["changes"]["points"]["written"] == 0
    assert quiet["verify"]["ok"] and quiet["verify"]["checked"] == "counts" and quiet["verify"]["found"] == first["counts"]["chunks"]

    from kademe.verify import verify_partition

    s = settings()
    victim = next(iter(points(s)))
    with EdgeStore.open(s.workdir / "qdrant" / s.collection) as store:  # lost behind kademe's back
        store.delete([victim])
        lost = verify_partition(store, s.partition(2011), by_counts=True)
    assert lost["ok"] is False and lost["checked"] == "ids" and lost["missing"] == [str(victim)]  # the counts differ: named

    repaired = ingest(settings, years=[2011])["years"]["2011"]  # the upsert sees the store short of its state and rewrites
    assert repaired["verify"]["ok"] and repaired["verify"]["checked"] == "ids" and repaired["changes"]["points"]["written"] >= 1


@pytest.mark.slow
def test_a_failed_year_does_not_stop_the_next(settings):
    result = ingest(settings, years=[2010, 2011])["years"]  # there is no 2010 file
    assert result["2010"]["status"] == "failed"
    assert "yargitay_2010.ndjson" in result["2010"]["error"] and "does not exist" in result["2010"]["error"]
    assert result["2011"]["status"] == "completed"


@pytest.mark.slow
def test_search_finds_the_decision_a_sentence_was_copied_from(settings, tmp_path, capsys):
    write_corpus(tmp_path / "data" / "yargitay_2011.ndjson", 2011, 12, seed=5)
    s = settings()
    assert ingest(settings, years=[2011])["years"]["2011"]["status"] == "completed"
    docs = [json.loads(line) for line in (tmp_path / "data" / "yargitay_2011.ndjson").read_text().splitlines()]
    for doc in docs[:4]:
        sentence = max(doc["text"].split("\n\n")[3].split(". "), key=len)
        code = main(["search", sentence, "--collection", s.collection, "--workdir", str(s.workdir), "--model", MODEL,
                     "--year", "2011", "--top-k", "5", "--json"])
        hits = json.loads(capsys.readouterr().out)["hits"]
        assert code == 0 and doc["id"] in [h["doc_id"] for h in hits]
        assert {"doc_id", "chunk_index", "score", "text", "year"} <= set(hits[0])


def test_embedded_to_server_reupserts_from_checkpoints_without_reembedding(settings, ingested, tmp_path, capsys):
    """Issue 12: a year ingested into the embedded store, then run against a server, re-upserts only.

    The server is qdrant-client's local mode (``--qdrant-url path:DIR``), the stand-in for a server.
    """
    first = ingested_into(ingested, settings, (2011,))["years"]["2011"]
    assert first["status"] == "completed" and first["cached"] == []
    server = f"path:{tmp_path / 'server'}"
    moved = ingest(settings, years=[2011], qdrant_url=server)["years"]["2011"]
    assert moved["status"] == "completed" and moved["verify"]["ok"]
    assert moved["cached"] == ["read", "clean", "chunk", "lexical", "embed"], "nothing but the upsert ran again"
    assert moved["stages"]["embed"] == 0.0 and moved["stages"]["upsert"] > 0
    code = main(["verify", "--collection", "test", "--years", "2011", "--workdir", str(settings().workdir),
                 "--qdrant-url", server, "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["ok"] and out["years"]["2011"]["found"] == first["counts"]["chunks"]


@pytest.mark.slow
def test_a_changed_analyzer_recomputes_only_the_lexical_vectors(settings, ingested):
    """Issue 13: the BM25 analyzer's settings key the lexical checkpoint alone; the embedding is reused."""
    first = ingested_into(ingested, settings, (2011,))["years"]["2011"]
    before = points(settings())
    changed = ingest(settings, years=[2011], bm25_language="english")["years"]["2011"]
    after = points(settings())
    assert changed["status"] == "completed" and changed["verify"]["ok"]
    assert changed["cached"] == ["read", "clean", "chunk", "embed"], "lexical and upsert ran again, nothing else"
    assert source_counts(changed["counts"]) == source_counts(first["counts"]) and after.keys() == before.keys()
    assert all(after[k].vector == before[k].vector for k in before), "the dense vectors are the same"
    assert any(after[k].sparse != before[k].sparse for k in before), "the sparse vectors are the English analyzer's"
