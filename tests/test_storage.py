"""The few storage operations the checkpoint protocol relies on, on a local path and on moto's S3 server."""

from __future__ import annotations

import pytest
from kademe.partition import Partition
from kademe.storage import open_storage
from tests.test_race import BUCKET, s3  # noqa: F401 - the moto fixture


@pytest.fixture(params=["local", "s3"])
def workdir(request, tmp_path, monkeypatch) -> str:
    if request.param == "local":
        return str(tmp_path / "work")
    for k, v in request.getfixturevalue("s3").items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("KADEME_CACHE_DIR", str(tmp_path / "cache"))
    return f"s3://{BUCKET}/{tmp_path.name}"


def test_a_create_only_put_fails_on_an_existing_name_and_keeps_the_first(workdir):
    storage = open_storage(workdir)
    assert storage.put("y/2011/chunk-abc.json", b"first", create=True) is True
    assert storage.put("y/2011/chunk-abc.json", b"second", create=True) is False
    assert storage.get("y/2011/chunk-abc.json") == b"first"
    storage.put("y/2011/report.json", b"a")
    storage.put("y/2011/report.json", b"b")  # a plain put overwrites
    assert storage.get("y/2011/report.json") == b"b"
    assert sorted(storage.list("y/2011")) == ["y/2011/chunk-abc.json", "y/2011/report.json"]
    assert storage.children("") == ["y"] and storage.get("nothing") is None
    storage.delete("y/2011/report.json")
    assert list(storage.list("y/2011")) == ["y/2011/chunk-abc.json"]


def test_the_newest_manifest_record_wins_and_old_ones_are_collected(workdir):
    part = Partition(workdir, "yargitay", 2011)
    for n in range(12):
        part.record("embed", {"n": n})
    part.record("chunk", {"n": 0})
    assert part.manifest() == {"chunk": {"n": 0}, "embed": {"n": 11}}
    assert len(part.collect(older_than=0)) == 12 - 8  # MANIFEST_KEEP records per stage stay
    assert part.manifest() == {"chunk": {"n": 0}, "embed": {"n": 11}}


def test_a_part_no_commit_names_is_collected_and_a_named_one_stays(workdir):
    import pyarrow as pa

    part = Partition(workdir, "yargitay", 2011)
    cp = part.checkpoint("chunk", "ab" * 32)
    with cp.sink(pa.schema([("x", pa.int64())])) as sink:
        sink.write([{"x": 1}])
    orphan = part.checkpoint("chunk", "ab" * 32)  # a writer that died before its commit
    with orphan.sink(pa.schema([("x", pa.int64())])) as sink:
        sink.write([{"x": 2}])
    cp.commit(chunks=1)
    gone = part.collect(older_than=0)
    assert gone == [f"yargitay/2011/chunk-abababababab/chunk-{orphan.token}.parquet"]
    assert part.checkpoint("chunk", "ab" * 32).hit() is not None


def test_an_ingest_into_an_s3_workdir_commits_there_and_a_rerun_is_served_from_it(tmp_path, corpus, s3, monkeypatch,
                                                                                    prefect_server):
    """The fast layer's ``s3://`` workdir: one ``kademe ingest`` whose checkpoints live on the S3 test server
    (moto on loopback), committed there and served from there to a rerun that recomputes nothing."""
    import contextlib
    import io
    import json

    from kademe.cli import main
    from tests.conftest import ALL_STAGES, MODEL

    for k, v in s3.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("KADEME_CACHE_DIR", str(tmp_path / "cache"))
    workdir = f"s3://{BUCKET}/{tmp_path.name}"
    args = ["ingest", "--source", str(corpus), "--years", "2011", "--workdir", workdir, "--collection", "c",
            "--qdrant-url", f"path:{tmp_path / 'qdrant'}", "--model", MODEL, "--device", "cpu", "--json"]

    def ingest() -> dict:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(args)
        result = json.loads(out.getvalue())
        assert code == 0, result
        return result["years"]["2011"]

    first = ingest()
    assert first["status"] == "completed" and first["cached"] == [] and first["verify"]["ok"]
    assert not (tmp_path / "s3:").exists() and not list(tmp_path.glob("*/yargitay")), "nothing went to a local path"
    names = open_storage(workdir).list("yargitay/2011")
    committed = {n.rsplit("/", 1)[1].split("-")[0] for n in names if n.count("/") == 2 and n.endswith(".json") and "-" in n}
    assert committed >= {"read", "clean", "chunk", "lexical", "embed"}, names

    second = ingest()
    assert second["cached"] == ALL_STAGES and second["verify"]["ok"]
    assert second["counts"]["embedded"] == 0 and second["counts"]["chunks"] == first["counts"]["chunks"] == first["counts"]["embedded"]


LEGACY = "1075d09"  # the last commit with the rename-and-lock layout (state.json)


@pytest.mark.slow
def test_a_workdir_of_the_earlier_layout_is_served_from_its_checkpoints(tmp_path, corpus, prefect_server):
    """A workdir written before issue 20 (state.json, files beside their done files) is a warm rerun, not a rebuild."""
    import io
    import contextlib
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from kademe.cli import main
    from tests.conftest import ALL_STAGES, MODEL
    from tests.test_reliability import quiet_env

    repo = Path(__file__).resolve().parents[1]
    old = tmp_path / "old"
    old.mkdir()
    archive = subprocess.run(["git", "-C", str(repo), "archive", LEGACY, "src", "flows"], capture_output=True)
    if archive.returncode != 0:
        pytest.skip(f"commit {LEGACY} is not in this clone")
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
    args = ["ingest", "--source", str(corpus), "--years", "2011", "--workdir", str(tmp_path / "work"), "--collection", "c",
            "--model", MODEL, "--device", "cpu", "--json"]
    env = {**quiet_env(), "PYTHONPATH": os.pathsep.join([str(old / "src"), str(old)])}
    first = subprocess.run([sys.executable, "-m", "kademe.cli", *args], capture_output=True, text=True, env=env, timeout=600, cwd=old)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (tmp_path / "work" / "yargitay" / "2011" / "state.json").exists()

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(args)
    y = json.loads(out.getvalue())["years"]["2011"]
    assert code == 0 and y["cached"] == ALL_STAGES and y["verify"]["ok"]
    assert y["changes"]["chunks"]["embedded"] == 0
