"""A year of nights (issue 29, the workdir's side): a night's file stages follow the change, the workdir stays bounded.

A year is ingested, then a night changes it (one decision edited, one withdrawn, one appended). The
chunk stage must copy the unchanged decisions' rows, the lexical stage compute only new texts, the
embed stage write a delta (new vectors and references) whose vectors, resolved, equal a from-scratch
embedding; the collection then keeps the newest checkpoints and what they refer to, and nothing else.
A collection racing a writer (a local path, moto's S3 server), or killed half way, never takes what a
later run needs.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kademe.chunk import chunk_texts
from kademe.clean import clean_records
from kademe.cli import main
from kademe.embed.stage import embed_chunks
from kademe.embed.vectors import EmbedVectors
from kademe.lexical.shards import read_sparse
from kademe.lexical.stage import sparse_chunks
from kademe.partition import Partition
from kademe.collect import Lease, collect_partition
from kademe.retention import plan_collection
from kademe.settings import Settings
from kademe.sources import read_year
from kademe.storage import open_storage
from tests.conftest import (
    MODEL,
    crash_matrix,
    decision,
    free_dead_slots,
    stored_points,
    write_ndjson,
)
from tests.test_race import BUCKET, s3  # noqa: F401,F811 - the moto fixture
from tests.test_reliability import api_env, assert_same_points, quiet_env  # noqa: F401 - fixtures

YEAR = 2011
TUNING = {"model": MODEL, "device": "cpu", "shard_size": 4, "chunk_tokens": 64, "chunk_overlap": 8}
FILE_STAGES = ["read", "clean", "chunk", "lexical", "embed"]


def nights(folder: Path, n: int = 12) -> list[Path]:
    """Three versions of one year: the cold one; a night that edits 3, withdraws 1, appends 12; the next night's."""
    v1 = [decision(YEAR, k) for k in range(n)]
    edited = dict(v1[3], text=v1[3]["text"].replace("SONUÇ:", "SONUÇ (düzeltilmiş):"))
    v2 = [v1[0], v1[2], edited, *v1[4:], decision(YEAR, n)]
    v3 = [*v2[:5], dict(v2[5], chamber="9. Hukuk Dairesi (düzeltme)"), *v2[6:], decision(YEAR, n + 1)]
    paths = []
    for name, records in (("v1", v1), ("v2", v2), ("v3", v3)):
        write_ndjson(folder / name / f"yargitay_{YEAR}.ndjson", records)
        paths.append(folder / name / "yargitay_{year}.ndjson")
    return paths


def file_stages(source: Path, workdir: Path | str) -> dict:
    """The file stages of one night, in this process (no Prefect, no store)."""
    s = Settings(source=str(source), workdir=workdir, **TUNING)
    read = read_year(YEAR, s)
    clean = clean_records(read, YEAR, s)
    chunks = chunk_texts(clean, YEAR, s)
    sparse = sparse_chunks(chunks, YEAR, s)
    embedded = embed_chunks(chunks, YEAR, s)
    return {"read": read, "clean": clean, "chunk": chunks, "lexical": sparse, "embed": embedded}


def resolved(workdir: Path | str, run: dict) -> dict[str, tuple[str, np.ndarray, np.ndarray]]:
    """Point id -> (text, dense vector, sparse values) of a night's checkpoints, references resolved."""
    part = Partition(workdir, "yargitay", YEAR)
    vectors = EmbedVectors(part.checkpoint("embed", run["embed"].key))
    texts = run["chunk"].table(["point_id", "text"])
    text = dict(zip(texts.column("point_id").to_pylist(), texts.column("text").to_pylist()))
    out = {}
    for i in range(run["embed"].shards):
        ids, _, _, dense = vectors.shard(i)
        sparse_ids, sparse = read_sparse(run["lexical"].shard(i))
        assert ids == sparse_ids
        for pid, vec, (_, values) in zip(ids, dense, sparse):
            out[pid] = (text[pid], vec, values)
    return out


def assert_same(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for pid, (text, vec, values) in want.items():
        assert got[pid][0] == text
        np.testing.assert_allclose(got[pid][1], vec, atol=1e-5, rtol=0)
        np.testing.assert_allclose(got[pid][2], values, atol=1e-6, rtol=0)


@pytest.fixture(scope="module")
def year(tmp_path_factory) -> dict:
    """The versions, the cold night's workdir, and from-scratch checkpoints of version 2."""
    root = tmp_path_factory.mktemp("nights")
    v1, v2, v3 = nights(root)
    cold = root / "cold"
    file_stages(v1, cold)
    scratch = file_stages(v2, root / "scratch")
    return {"v1": v1, "v2": v2, "v3": v3, "cold": cold, "scratch": resolved(root / "scratch", scratch)}


def copy(src: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(src, dest)
    return dest


def test_a_night_copies_unchanged_documents_and_writes_only_new_vectors(year, tmp_path):
    workdir = copy(year["cold"], tmp_path / "work")
    run = file_stages(year["v2"], workdir)

    part = Partition(workdir, "yargitay", YEAR)
    chunk = part.checkpoint("chunk", run["chunk"].key).done()
    new_docs = {decision(YEAR, 3)["id"], decision(YEAR, 12)["id"]}
    rows = run["chunk"].table(["doc_id"]).column("doc_id").to_pylist()
    assert chunk["carried"] == sum(1 for d in rows if d not in new_docs) > 0, "unchanged documents are copied, not tokenized"
    markers = [part.checkpoint("lexical", run["lexical"].key).shard_marker(i) for i in range(run["lexical"].shards)]
    assert 0 < sum(m["computed"] for m in markers) < run["chunk"].count / 2, "BM25 runs on new texts only"
    embed = part.checkpoint("embed", run["embed"].key).done()
    assert embed["stored"] == run["embed"].embedded < run["chunk"].count, "the delta holds the new vectors only"
    assert embed["bases"] == [part.committed("embed")[1]["key"]]
    assert_same(resolved(workdir, run), year["scratch"])


def test_collection_keeps_the_newest_checkpoints_and_the_vectors_they_refer_to(year, tmp_path):
    workdir = copy(year["cold"], tmp_path / "work")
    first = file_stages(year["v2"], workdir)
    part = Partition(workdir, "yargitay", YEAR)
    plan = plan_collection(part)
    cold_embed = part.checkpoint("embed", first["embed"].key).done()["bases"][0]
    assert plan.kept[f"embed-{cold_embed[:12]}"].startswith("vectors of") and plan.reclaim > 0

    result = collect_partition(part)

    assert result["collected"] == plan.reclaim + 0 and result["reclaimable"] == plan.reclaim
    assert sorted(m["stage"] for s in FILE_STAGES for m in part.committed(s)) == sorted(FILE_STAGES + ["embed"])
    again = file_stages(year["v2"], workdir)  # nothing the newest commit needs was collected: every stage a hit
    assert all(r.cached for r in again.values())
    assert_same(resolved(workdir, again), year["scratch"])
    assert plan_collection(part).reclaim == 0
    second = file_stages(year["v3"], workdir)  # the next night builds on the collected workdir
    assert second["embed"].embedded < second["chunk"].count / 4


def test_a_night_that_leaves_much_of_the_bases_unused_writes_whole_shards_again(year, tmp_path):
    workdir = copy(year["cold"], tmp_path / "work")
    half = [json.loads(line) for line in Path(str(year["v1"]).format(year=YEAR)).read_text(encoding="utf-8").splitlines()][::2]
    write_ndjson(tmp_path / "half" / f"yargitay_{YEAR}.ndjson", half)  # half the decisions withdrawn

    run = file_stages(tmp_path / "half" / "yargitay_{year}.ndjson", workdir)

    part = Partition(workdir, "yargitay", YEAR)
    embed = part.checkpoint("embed", run["embed"].key).done()
    assert run["embed"].embedded == 0 and embed["stored"] == run["chunk"].count and embed["bases"] == []
    collect_partition(part)
    assert [m["key"] for m in part.committed("embed")] == [run["embed"].key], "the cold vectors went with the compaction"
    assert file_stages(tmp_path / "half" / "yargitay_{year}.ndjson", workdir)["embed"].cached


def test_kademe_collect_dry_run_says_what_would_go_and_deletes_nothing(year, tmp_path):
    workdir = copy(year["cold"], tmp_path / "work")
    file_stages(year["v2"], workdir)
    before = open_storage(workdir).list("yargitay")

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["collect", "--workdir", str(workdir), "--years", str(YEAR), "--dry-run", "--json"])
    dry = json.loads(out.getvalue())

    assert code == 0 and dry["dry_run"] and dry["collected"] == 0 and dry["reclaimable"] > 0
    assert dry["partitions"]["yargitay/2011"]["reclaimable"] == dry["reclaimable"]
    assert open_storage(workdir).list("yargitay") == before
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["collect", "--workdir", str(workdir)]) == 0
    assert "yargitay/2011" in out.getvalue() and "total" in out.getvalue()
    assert sum(size for size, _ in open_storage(workdir).list("yargitay").values()) == dry["bytes"] - dry["reclaimable"]


def test_nothing_superseded_is_collected_while_another_writer_holds_a_lease(year, tmp_path):
    workdir = copy(year["cold"], tmp_path / "work")
    file_stages(year["v2"], workdir)
    part = Partition(workdir, "yargitay", YEAR)
    with Lease(part, "ingest pid 1") as lease:
        busy = collect_partition(part)
        own = plan_collection(part, own_lease=lease.token)
    assert busy["busy"].startswith("ingest pid 1 holds a lease") and busy["collected"] == 0
    assert own.busy is None and own.reclaim > 0


def test_a_collection_killed_half_way_is_finished_by_the_next_and_takes_nothing_needed(year, tmp_path):
    workdir = copy(year["cold"], tmp_path / "work")
    file_stages(year["v2"], workdir)
    env = {**quiet_env(), "PYTHONPATH": os.pathsep.join(sys.path), "KADEME_FAULT_CRASH_AT": "collect-delete"}
    crashed = subprocess.run([sys.executable, "-m", "kademe.cli", "collect", "--workdir", str(workdir)],
                             capture_output=True, text=True, env=env, timeout=120, check=False)
    assert crashed.returncode == 137, crashed.stderr[-2000:]
    part = Partition(workdir, "yargitay", YEAR)
    assert plan_collection(part).reclaim > 0, "the killed collection left work for the next"

    collect_partition(part)

    again = file_stages(year["v2"], workdir)
    assert all(r.cached for r in again.values())
    assert_same(resolved(workdir, again), year["scratch"])


def test_a_night_killed_in_its_delta_write_resumes_to_the_same_vectors(year, tmp_path):
    workdir = copy(year["cold"], tmp_path / "work")
    code = (f"import sys; sys.path[:0] = {sys.path!r}\n"
            f"from tests.test_nights import file_stages\nfile_stages({str(year['v2'])!r}, {str(workdir)!r})\n")
    env = {**quiet_env(), "KADEME_FAULT_CRASH_AT": "embed-shard:2"}
    crashed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert crashed.returncode == 137, crashed.stderr[-2000:]
    collect_partition(Partition(workdir, "yargitay", YEAR))  # the night's partial delta and its bases survive it

    run = file_stages(year["v2"], workdir)

    assert run["embed"].reused > 0 and not run["embed"].cached
    assert_same(resolved(workdir, run), year["scratch"])


def _collector(workdir: str, stop: Path, out: Path, env: dict) -> subprocess.Popen:
    """A process that collects the partition over and over until ``stop`` exists, then lists what it deleted."""
    code = ("import json, sys, time, pathlib\n"
            f"sys.path[:0] = {sys.path!r}\n"
            "from kademe.partition import Partition\nfrom kademe.collect import collect_partition\nfrom kademe.retention import plan_collection\n"
            f"part, stop, gone = Partition({workdir!r}, 'yargitay', {YEAR}), pathlib.Path({str(stop)!r}), []\n"
            "while not stop.exists():\n"
            "    plan = plan_collection(part)\n"
            "    collect_partition(part)\n"
            "    gone += plan.delete\n"
            f"pathlib.Path({str(out)!r}).write_text(json.dumps(gone))\n")
    return subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_collection_racing_a_writer_never_takes_what_the_writer_or_the_newest_commit_needs(where, year, s3, tmp_path,  # noqa: F811
                                                                                               monkeypatch):
    """No lease here: the writer is the one whose lease expired, so only the retention rule protects it."""
    if where == "s3":
        for k, v in s3.items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("KADEME_CACHE_DIR", str(tmp_path / "cache"))
        workdir = f"s3://{BUCKET}/{tmp_path.name}"
    else:
        workdir = str(tmp_path / "work")
    file_stages(year["v1"], workdir)
    stop, out = tmp_path / "stop", tmp_path / "gone.json"
    env = {**quiet_env(), **(s3 if where == "s3" else {}), "KADEME_CACHE_DIR": str(tmp_path / "cache-collector")}
    collector = _collector(workdir, stop, out, env)
    try:
        night = file_stages(year["v2"], workdir)  # superseding the cold night's checkpoints one stage after another
        nxt = file_stages(year["v3"], workdir)
    finally:
        stop.touch()
        _, err = collector.communicate(timeout=300)
    assert collector.returncode == 0, err[-3000:]
    gone = json.loads(out.read_text())
    assert any(n.endswith(".json") and "/read-" in n for n in gone), "the collector collected superseded checkpoints meanwhile"
    assert not night["embed"].cached and nxt["embed"].embedded < nxt["chunk"].count / 4

    collect_partition(Partition(workdir, "yargitay", YEAR))
    again = file_stages(year["v3"], workdir)
    assert all(r.cached for r in again.values()), "nothing the newest commit needs was collected"
    scratch = file_stages(year["v3"], str(tmp_path / "scratch"))
    assert_same(resolved(workdir, again), resolved(str(tmp_path / "scratch"), scratch))


# -- whole nights through `kademe ingest`, killed anywhere new (slow: Prefect and the store) --------------------

NIGHT_CRASHES = ["collect-start:1", "collect-delete:1", "embed-shard:1", "checkpoint-rename:8", "chunk-batch:1",
                 "lexical-shard:2"]
DEFAULT_NIGHT_CRASHES = {"collect-delete:1"}
INGEST = ["--device", "cpu", "--model", MODEL, "--shard-size", "4", "--chunk-tokens", "64", "--chunk-overlap", "8"]


def ingest(source: Path, workdir: Path) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["ingest", "--source", str(source), "--years", str(YEAR), "--workdir", str(workdir), "--collection", "n",
                     *INGEST, "--json"])
    result = json.loads(out.getvalue())
    assert code == 0, result
    return result["years"][str(YEAR)]


@pytest.fixture(scope="module")
def ingested(year, tmp_path_factory, prefect_server) -> dict:
    root = tmp_path_factory.mktemp("nights-ingest")
    ingest(year["v1"], root / "cold")
    scratch = ingest(year["v2"], root / "scratch")
    return {"cold": root / "cold", "scratch": scratch, "points": stored_points(root / "scratch", "n")}


@pytest.mark.slow
def test_a_night_reports_its_change_and_collects_the_night_before(year, ingested, tmp_path):
    workdir = copy(ingested["cold"], tmp_path / "work")
    y = ingest(year["v2"], workdir)

    ch = y["changes"]
    assert ch["documents"] == {"new": 1, "changed": 1, "unchanged": 10, "removed": 1}
    assert ch["bytes"]["written"] > 0 and ch["bytes"]["collected"] > 0 and ch["bytes"]["workdir"] > 0
    assert ch["points"]["deleted"] > 0
    assert_same_points(stored_points(workdir, "n"), ingested["points"])
    part = Partition(workdir, "yargitay", YEAR)
    assert plan_collection(part).reclaim == 0, "the night collected what it superseded"
    quiet = ingest(year["v2"], workdir)  # a night with no change: every stage a hit, nothing written
    assert quiet["cached"] == [*FILE_STAGES, "upsert"] and quiet["changes"]["bytes"]["written"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("spec", crash_matrix(NIGHT_CRASHES, DEFAULT_NIGHT_CRASHES))
def test_a_night_killed_anywhere_ends_with_the_from_scratch_points(spec, year, ingested, tmp_path, api_env):  # noqa: F811
    workdir = copy(ingested["cold"], tmp_path / "work")
    args = ["ingest", "--source", str(year["v2"]), "--years", str(YEAR), "--workdir", str(workdir), "--collection", "n", *INGEST]
    crashed = subprocess.run([sys.executable, "-m", "kademe.cli", *args], capture_output=True, text=True,
                             env={**api_env, "KADEME_FAULT_CRASH_AT": spec}, timeout=300, check=False)
    assert crashed.returncode == 137, f"{spec} was never reached (exit {crashed.returncode}):\n{crashed.stderr[-3000:]}"
    free_dead_slots()
    collect_partition(Partition(workdir, "yargitay", YEAR))  # a collection after the kill takes nothing the rerun needs

    y = ingest(year["v2"], workdir)

    same = ("read", "documents", "duplicates", "rejected", "chunks", "upserted")  # embedded/reused/committed: this run's work
    assert y["status"] == "completed" and y["verify"]["ok"]
    assert {k: y["counts"][k] for k in same} == {k: ingested["scratch"]["counts"][k] for k in same}
    assert_same_points(stored_points(workdir, "n"), ingested["points"])
    assert plan_collection(Partition(workdir, "yargitay", YEAR)).reclaim == 0
