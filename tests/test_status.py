"""``kademe status``: committed stages, points, last run and what a rerun would redo, read without writing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kademe.cli import main
from tests.conftest import MODEL, decision, edge_store_held, write_ndjson

pytestmark = pytest.mark.usefixtures("prefect_server")
STAGES = ["read", "clean", "chunk", "lexical", "embed", "upsert"]


def cli(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


def status_json(capsys, *args: str) -> dict:
    code, out = cli(capsys, "status", *args, "--json")
    assert code == 0
    return json.loads(out)


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """Two years of one corpus ingested into Qdrant Edge (``work``) and one into local mode (``work-local``)."""
    root = tmp_path_factory.mktemp("status")
    for year in (2011, 2012):
        write_ndjson(root / "data" / f"yargitay_{year}.ndjson", [decision(year, n, words=16) for n in range(4)])
    source = str(root / "data" / "yargitay_{year}.ndjson")
    common = ["--source", source, "--model", MODEL, "--device", "cpu", "--shard-size", "4", "--collection", "st"]
    assert main(["ingest", *common, "--years", "2011", "2012", "--workdir", str(root / "work")]) == 0
    assert main(["ingest", *common, "--years", "2011", "--workdir", str(root / "work-local"),
                 "--qdrant-url", f"path:{root / 'qdrant-local'}"]) == 0
    return root


def test_a_finished_ingest_reads_as_committed_stored_and_nothing_to_redo(ingested, capsys):
    work = ingested / "work"
    result = status_json(capsys, "--workdir", str(work), "--collection", "st", "--shard-size", "4")
    assert list(result["partitions"]) == ["yargitay/2011", "yargitay/2012"]
    store = result["store"]
    assert (store["backend"], store["state"], store["points"]) == ("edge", "ok", 8)
    assert store["index"]["state"] in ("indexed", "partly indexed", "unindexed") and store["index"]["points"] == 8
    for label, p in result["partitions"].items():
        assert (p["committed"], p["chunks"], p["points"], p["degraded"]) == (STAGES, 4, 4, False), label
        assert (p["rerun"], p["rerun_known"]) == ([], True)
        assert {s["rerun"] for s in p["stages"].values()} == {"reuse"}
        assert p["last_run"]["status"] == "completed" and p["last_run"]["finished"].endswith("+00:00")
        assert p["source"] == {"path": str(ingested / "data" / f"yargitay_{p['year']}.ndjson"), "state": "ok", "detail": ""}
    code, out = cli(capsys, "status", "--workdir", str(work), "--collection", "st", "--shard-size", "4", "--years", "2012")
    lines = out.splitlines()
    assert code == 0 and lines[1].startswith("store: ok; 8 points; index ")
    cells = lines[3].split()
    assert cells[:4] + cells[6:8] == ["yargitay/2012", "6/6", "4", "4", "no", "completed"]
    assert float(cells[4]) == round(result["partitions"]["yargitay/2012"]["bytes"] / 1e6, 1) and cells[5] == "0.0"  # MB, free
    assert lines[3].endswith("nothing")


def test_a_changed_setting_or_source_names_the_stages_a_rerun_would_recompute(ingested, tmp_path, capsys):
    work = ["--workdir", str(ingested / "work"), "--collection", "st"]
    result = status_json(capsys, *work, "--shard-size", "4", "--chunk-overlap", "8")
    assert [p["rerun"] for p in result["partitions"].values()] == [["chunk", "lexical", "embed", "upsert"]] * 2
    assert status_json(capsys, *work)["partitions"]["yargitay/2011"]["rerun"] == ["embed", "upsert"]  # shard size 512
    no_model = status_json(capsys, *work, "--shard-size", "4", "--model", str(tmp_path / "gone"))["partitions"]["yargitay/2011"]
    assert [no_model["stages"][s]["rerun"] for s in STAGES] == ["reuse"] * 2 + ["unknown"] * 4
    assert no_model["stages"]["embed"]["why"] == f"Model path '{tmp_path / 'gone'}' does not exist."

    shutil.copytree(ingested / "data", tmp_path / "data")
    changed = tmp_path / "data" / "yargitay_2012.ndjson"
    changed.write_bytes(changed.read_bytes() + (json.dumps(decision(2012, 99, words=16)) + "\n").encode())
    (tmp_path / "data" / "yargitay_2011.ndjson").unlink()
    result = status_json(capsys, *work, "--shard-size", "4", "--source", str(tmp_path / "data" / "yargitay_{year}.ndjson"))
    gone, edited = result["partitions"]["yargitay/2011"], result["partitions"]["yargitay/2012"]
    assert (edited["rerun"], edited["rerun_known"]) == (STAGES, True)
    assert (gone["rerun"], gone["rerun_known"], gone["source"]["state"]) == ([], False, "missing")
    assert gone["source"]["detail"] == f"Source file '{tmp_path / 'data' / 'yargitay_2011.ndjson'}' for year 2011 does not exist."
    assert {s["rerun"] for s in gone["stages"].values()} == {"unknown"}

    ahead = status_json(capsys, *work, "--corpus", "yargitay", "--years", "2012-2013")["partitions"]
    assert list(ahead) == ["yargitay/2012", "yargitay/2013"]
    assert (ahead["yargitay/2013"]["committed"], ahead["yargitay/2013"]["points"], ahead["yargitay/2013"]["last_run"]) == ([], 0, None)
    assert ahead["yargitay/2013"]["source"]["state"] == "none"


def test_status_creates_nothing(ingested, tmp_path, capsys):
    before = tree(ingested)
    status_json(capsys, "--workdir", str(ingested / "work"), "--collection", "other")
    status_json(capsys, "--workdir", str(ingested / "work"), "--collection", "st")
    status_json(capsys, "--workdir", str(ingested / "work-local"), "--collection", "st", "--qdrant-url", f"path:{tmp_path / 'nope'}")
    assert tree(ingested) == before
    empty = status_json(capsys, "--workdir", str(tmp_path / "never"), "--collection", "st")
    assert (empty["partitions"], empty["store"]["state"]) == ({}, "missing")
    assert list(tmp_path.iterdir()) == []


def test_a_server_store_counts_the_partition_and_reports_its_index(ingested, capsys):
    result = status_json(capsys, "--workdir", str(ingested / "work-local"), "--collection", "st", "--shard-size", "4",
                         "--qdrant-url", f"path:{ingested / 'qdrant-local'}")
    assert (result["store"]["backend"], result["store"]["state"], result["store"]["points"]) == ("server", "ok", 4)
    assert result["store"]["index"]["status"] == "green"
    p = result["partitions"]["yargitay/2011"]
    assert (p["points"], p["rerun"], p["rerun_known"]) == (4, [], True)


def test_a_store_held_by_a_running_ingest_is_reported_busy_with_its_pid(ingested, capsys):
    args = ("--workdir", str(ingested / "work"), "--collection", "st", "--shard-size", "4")
    with edge_store_held(ingested / "work" / "qdrant" / "st") as pid:
        result = status_json(capsys, *args)
        code, out = cli(capsys, "status", *args)
    assert (result["store"]["state"], result["store"]["detail"]) == ("busy", f"store busy (held by pid {pid})")
    p = result["partitions"]["yargitay/2011"]
    assert (p["points"], p["committed"], p["stages"]["upsert"]["rerun"], p["rerun"]) == (None, STAGES, "unknown", [])
    assert code == 0 and f"store: busy (held by pid {pid})" in out
    assert out.splitlines()[3].split()[:4] == ["yargitay/2011", "6/6", "4", "busy"]


def test_without_a_collection_status_uses_the_stores_only_one_or_lists_them(ingested, tmp_path, capsys):
    work = tmp_path / "work"
    shutil.copytree(ingested / "work", work)
    only = status_json(capsys, "--workdir", str(work), "--shard-size", "4")
    assert (only["collection"], only["collections"], only["store"]["state"], only["store"]["points"]) == ("st", ["st"], "ok", 8)
    assert [p["rerun"] for p in only["partitions"].values()] == [[], []]

    shutil.copytree(work / "qdrant" / "st", work / "qdrant" / "other")
    several = status_json(capsys, "--workdir", str(work), "--shard-size", "4")
    assert (several["collection"], several["collections"]) == (None, ["other", "st"])
    assert (several["store"]["state"], several["store"]["where"]) == ("unchosen", str(work / "qdrant"))
    p = several["partitions"]["yargitay/2011"]
    assert (p["points"], p["stages"]["upsert"]["rerun"], p["stages"]["upsert"]["why"]) == (
        None, "unknown", "collections other, st: pass --collection NAME")
    code, out = cli(capsys, "status", "--workdir", str(work))
    assert code == 0 and out.splitlines()[:2] == [f"workdir {work}, collections other, st (edge: {work / 'qdrant'})",
                                                  "store: collections other, st: pass --collection NAME"]
