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
