"""Corpus-scoped partitions (issue 11): two corpora share a collection and never touch each other's points.

Yargıtay and Danıştay decisions with overlapping years *and* overlapping document ids go into one
collection (``kararlar``); each is ingested, re-run, changed and pruned, and verify covers one
corpus or all of them. Also: the model's identity (what its folder holds) keys chunk and embed.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import pytest

from kademe.cli import main
from kademe.settings import Settings
from tests.conftest import ALL_STAGES, MODEL, decision, stored_points, write_ndjson

YEARS = ("2011", "2012")


def ingest(source, workdir, *extra) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["ingest", "--source", str(source), "--years", *YEARS, "--workdir", str(workdir), "--collection", "kararlar",
                     "--model", MODEL, "--device", "cpu", "--shard-size", "4", "--json", *extra])
    result = json.loads(out.getvalue())
    assert code == 0, result
    return result


def verify(workdir, *extra) -> tuple[int, dict]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["verify", "--years", *YEARS, "--workdir", str(workdir), "--collection", "kararlar", "--json", *extra])
    return code, json.loads(out.getvalue())


def by_corpus(workdir) -> dict[str, dict]:
    points = stored_points(workdir, "kararlar")
    return {c: {pid: p for pid, p in points.items() if p.payload["corpus"] == c} for c in ("yargitay", "danistay")}


@pytest.fixture
def two_corpora(tmp_path):
    """yargitay_{year} and danistay_{year}: the same years, the same doc ids, other texts."""
    for year in (2011, 2012):
        write_ndjson(tmp_path / "data" / f"yargitay_{year}.ndjson", [decision(year, n) for n in range(4)])
        write_ndjson(tmp_path / "data" / f"danistay_{year}.ndjson",
                     [{**decision(year, n, words=24), "text": f"Danıştay {n}. Daire: idari işlemin iptali istemi. " * 6}
                      for n in range(3)])
    return tmp_path / "data" / "yargitay_{year}.ndjson", tmp_path / "data" / "danistay_{year}.ndjson"


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_two_corpora_in_one_collection_never_touch_each_other(tmp_path, two_corpora):
    yargitay, danistay = two_corpora
    workdir = tmp_path / "work"

    first_y = ingest(yargitay, workdir)
    first_d = ingest(danistay, workdir)
    assert first_y["years"]["2011"]["corpus"] == "yargitay" and first_d["years"]["2011"]["corpus"] == "danistay"
    points = by_corpus(workdir)
    for name, result in (("yargitay", first_y), ("danistay", first_d)):
        assert len(points[name]) == sum(result["years"][y]["counts"]["chunks"] for y in YEARS) > 0
    assert {p.payload["doc_id"] for p in points["yargitay"].values()} & {p.payload["doc_id"] for p in points["danistay"].values()}, \
        "the corpora share doc ids: only the corpus keeps their points apart"
    from kademe.partition import Partition  # each partition keeps its own manifest (one record object per commit)

    assert all(set(Partition(workdir, c, 2011).manifest()) >= set(ALL_STAGES) for c in ("yargitay", "danistay"))

    # A re-run of one corpus is served from its checkpoints and leaves the other's points as they were.
    again = ingest(danistay, workdir)
    assert all(again["years"][y]["cached"] == ALL_STAGES and again["years"][y]["verify"]["ok"] for y in YEARS)
    assert by_corpus(workdir) == points

    # A changed setting re-chunks one corpus; its stale points are pruned, the other's are not touched.
    changed = ingest(yargitay, workdir, "--chunk-tokens", "48", "--chunk-overlap", "4")
    after = by_corpus(workdir)
    assert after["danistay"] == points["danistay"]
    assert len(after["yargitay"]) == sum(changed["years"][y]["counts"]["chunks"] for y in YEARS) > len(points["yargitay"])
    assert all(changed["years"][y]["verify"]["ok"] for y in YEARS), "no stale yargitay chunk is left"
    assert any(after["yargitay"][pid].payload["text"] != p.payload["text"] for pid, p in points["yargitay"].items())

    # A document removed from the source is pruned from its corpus only.
    write_ndjson(danistay.parent / "danistay_2012.ndjson", [decision(2012, n) for n in range(1)])
    pruned = ingest(danistay, workdir)
    final = by_corpus(workdir)
    assert final["yargitay"] == after["yargitay"]
    assert {p.payload["doc_id"] for p in final["danistay"].values() if p.payload["year"] == 2012} == {"2012-HD-0000"}
    assert pruned["years"]["2012"]["verify"]["ok"]

    # verify: every corpus the workdir holds for those years, or one.
    code, everything = verify(workdir)
    assert code == 0 and everything["ok"] and everything["corpora"] == ["danistay", "yargitay"]
    for year in YEARS:
        y = everything["years"][year]
        assert set(y["corpora"]) == {"danistay", "yargitay"}
        assert y["expected"] == y["found"] == sum(c["expected"] for c in y["corpora"].values())
    code, one = verify(workdir, "--corpus", "danistay")
    assert code == 0 and one["corpora"] == ["danistay"]
    assert one["years"]["2012"]["expected"] == len([p for p in final["danistay"].values() if p.payload["year"] == 2012])


def test_corpus_defaults_to_the_source_name_and_rejects_unsafe_names():
    assert Settings(source="data/yargitay_{year}.ndjson").corpus == "yargitay"
    assert Settings(source="/srv/danistay/{year}.jsonl.gz").corpus == "danistay"
    assert Settings(source="data/yargitay_{year}.ndjson", corpus="kararlar").corpus == "kararlar"
    with pytest.raises(ValueError, match="--corpus"):
        Settings(corpus="../etc")


def test_point_ids_differ_by_corpus():
    from kademe.ids import point_id

    assert point_id("yargitay", "2011-1", 0) != point_id("danistay", "2011-1", 0)
    assert point_id("yargitay", "2011-1", 0) == point_id("yargitay", "2011-1", 0)


def test_model_identity_not_model_name(tmp_path, settings):
    """A model folder changed in place recomputes chunk and embed; the same files under another path do not."""
    from kademe.chunk import chunk_texts
    from kademe.clean import clean_records
    from kademe.models import resolve_model
    from kademe.sources import read_year

    a, b = tmp_path / "models" / "a", tmp_path / "models" / "b"
    shutil.copytree(resolve_model(MODEL), a)
    shutil.copytree(resolve_model(MODEL), b)
    sa, sb = settings(model=str(a)), settings(model=str(b))
    before = sa.fingerprint("embed")
    assert sa.fingerprint("chunk") == sb.fingerprint("chunk") and before == sb.fingerprint("embed")

    clean = clean_records(read_year(2011, sa), 2011, sa)
    first = chunk_texts(clean, 2011, sa)
    assert not first.cached and chunk_texts(clean, 2011, sb).cached, "the same files under another path are the same model"

    config = json.loads((a / "sentence_bert_config.json").read_text())
    config["max_seq_length"] = 128
    (a / "sentence_bert_config.json").write_text(json.dumps(config))
    assert sa.fingerprint("embed") != before and sb.fingerprint("embed") == before
    again = chunk_texts(clean, 2011, sa)
    assert not again.cached and again.key != first.key, "a model changed in place is rechunked"
