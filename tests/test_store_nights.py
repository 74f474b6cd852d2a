"""A night in the store (issue 29): only the change is written, the year's index survives, a kill anywhere resumes.

The year of tests/test_incremental.py is ingested (version 1), then a night brings version 2 (one
decision withdrawn, one edited, two appended). The night's upsert writes only the points that are
new or changed and deletes the withdrawn ones; a night with no change writes nothing; a kill inside
the delta's writes or deletes, then a rerun (of the same night, or of another source), ends at the
from-scratch point set.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kademe.delta import read_state
from kademe.settings import Settings
from kademe.store import Where
from tests.conftest import crash_matrix, free_dead_slots, source_counts, stored_points
from tests.test_incremental import TUNING, YEAR, grown, ingest  # noqa: F401 - fixtures
from tests.test_reliability import api_env, assert_same_points, one_torch_thread  # noqa: F401 - fixtures


def wal_bytes(workdir: Path) -> dict[str, int]:
    """Sizes of the Edge store's write-ahead log files: a store write grows them."""
    return {p.name: p.stat().st_size for p in (workdir / "qdrant" / "inc" / "wal").glob("*") if p.is_file()}


def expected_delta(before: dict, after: dict) -> tuple[int, int]:
    """(points to write, points to delete) from one point set to another: new ids, or a payload that changed."""
    written = sum(1 for pid, p in after.items() if pid not in before or before[pid].payload != p.payload)
    return written, len(before.keys() - after.keys())


@pytest.mark.slow
def test_a_night_writes_only_the_changed_points_and_a_quiet_night_writes_nothing(grown, tmp_path):  # noqa: F811
    workdir = tmp_path / "work"
    shutil.copytree(grown["first_work"], workdir)
    first_points = stored_points(workdir, "inc")
    assert grown["first"]["changes"]["points"] == {"written": len(first_points), "deleted": 0, "unchanged": 0}

    y = ingest(grown["v2"], workdir)

    written, deleted = expected_delta(first_points, grown["scratch_points"])
    assert 0 < written < y["counts"]["chunks"] / 2 and deleted > 0
    assert y["changes"]["points"] == {"written": written, "deleted": deleted, "unchanged": y["counts"]["chunks"] - written}
    assert y["counts"]["upserted"] == y["counts"]["chunks"] and y["verify"]["ok"]
    assert_same_points(stored_points(workdir, "inc"), grown["scratch_points"])
    state = read_state(Settings(workdir=str(workdir), corpus="yargitay", collection="inc").partition(int(YEAR)),
                       Settings(workdir=str(workdir), collection="inc"))
    assert state is not None and state.clean and state.touched is None

    wal = wal_bytes(workdir)
    again = ingest(grown["v2"], workdir)  # no change: checkpoint hits, nothing written to the store
    assert again["changes"]["points"] == {"written": 0, "deleted": 0, "unchanged": y["counts"]["chunks"]}
    assert "upsert" in again["cached"] and wal_bytes(workdir) == wal


def delta_ids(before: dict, after: dict) -> tuple[set[str], set[str]]:
    """The ids a night must write (new, or a payload that changed) and delete."""
    return ({pid for pid, p in after.items() if pid not in before or before[pid].payload != p.payload},
            set(before) - set(after))


@pytest.mark.slow
def test_the_server_path_sends_only_the_delta(grown, tmp_path, monkeypatch):  # noqa: F811
    """Through qdrant-client (local mode standing in for a server), the night's requests carry exactly the
    changed points' ids and the withdrawn ones' deletes."""
    import contextlib
    import io
    import json

    from qdrant_client import QdrantClient

    from kademe.cli import main

    url = f"path:{tmp_path / 'qdrant-local'}"

    def ingest_server(source: Path) -> dict:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["ingest", "--source", str(source), "--years", YEAR, "--workdir", str(tmp_path / "work"),
                         "--collection", "inc", "--qdrant-url", url, *TUNING, "--json"])
        assert code == 0, out.getvalue()
        return json.loads(out.getvalue())["years"][YEAR]

    ingest_server(grown["v1"])
    sent: dict[str, set] = {"upsert": set(), "delete": set()}
    real_upload, real_upsert, real_delete = QdrantClient.upload_collection, QdrantClient.upsert, QdrantClient.delete
    monkeypatch.setattr(QdrantClient, "upload_collection",
                        lambda self, name, **kw: (sent["upsert"].update(map(str, kw["ids"])), real_upload(self, name, **kw))[1])
    monkeypatch.setattr(QdrantClient, "upsert",
                        lambda self, name, points, **kw: (sent["upsert"].update(str(p.id) for p in points),
                                                          real_upsert(self, name, points, **kw))[1])
    monkeypatch.setattr(QdrantClient, "delete",
                        lambda self, name, points_selector, **kw: (sent["delete"].update(map(str, points_selector.points)),
                                                                   real_delete(self, name, points_selector, **kw))[1])
    y = ingest_server(grown["v2"])

    written, deleted = delta_ids(_first_points(grown, tmp_path), grown["scratch_points"])
    assert sent == {"upsert": written, "delete": deleted}
    assert y["changes"]["points"] == {"written": len(written), "deleted": len(deleted),
                                      "unchanged": y["counts"]["chunks"] - len(written)} and y["verify"]["ok"]


def _first_points(grown, tmp_path: Path) -> dict:  # noqa: F811 - the fixture's value
    copy = tmp_path / "first-copy"
    shutil.copytree(grown["first_work"], copy)
    return stored_points(copy, "inc")


NIGHT_CRASHES = ["upsert-delta:1", "upsert-delete:1", "upsert-start:1", "upsert-prune:1", "upsert-done:1"]
DEFAULT_NIGHT_CRASHES = {"upsert-delta:1"}


def night_args(source: Path, workdir: Path) -> list[str]:
    return ["ingest", "--source", str(source), "--years", YEAR, "--workdir", str(workdir), "--collection", "inc", *TUNING]


@pytest.mark.slow
@pytest.mark.parametrize("spec", crash_matrix(NIGHT_CRASHES, DEFAULT_NIGHT_CRASHES))
def test_a_night_killed_in_its_store_writes_reruns_to_the_from_scratch_points(spec, grown, tmp_path, api_env):  # noqa: F811
    workdir = tmp_path / "work"
    shutil.copytree(grown["first_work"], workdir)
    crashed = subprocess.run([sys.executable, "-m", "kademe.cli", *night_args(grown["v2"], workdir)], capture_output=True, check=False,
                             text=True, env={**api_env, "KADEME_FAULT_CRASH_AT": spec}, timeout=300)
    assert crashed.returncode == 137, f"{spec} was never reached (exit {crashed.returncode}):\n{crashed.stderr[-3000:]}"
    free_dead_slots()

    y = ingest(grown["v2"], workdir)

    assert y["status"] == "completed" and y["verify"]["ok"] and source_counts(y["counts"]) == source_counts(grown["scratch"]["counts"])
    assert_same_points(stored_points(workdir, "inc"), grown["scratch_points"])


@pytest.mark.slow
def test_status_after_a_night_killed_past_its_commit_says_the_upsert_runs_again(grown, tmp_path, api_env):  # noqa: F811
    # Killed after the upsert checkpoint's commit, before the store's state was marked clean: the checkpoint's key is
    # the one a rerun computes and the store holds as many points, but the rerun writes its points again
    # (kademe.upsert.store_holds); status asks the same question instead of saying "reuse" (issue 31, point 2).
    workdir = tmp_path / "work"
    shutil.copytree(grown["first_work"], workdir)
    crashed = subprocess.run([sys.executable, "-m", "kademe.cli", *night_args(grown["v2"], workdir)], capture_output=True, check=False,
                             text=True, env={**api_env, "KADEME_FAULT_CRASH_AT": "upsert-done:1"}, timeout=300)
    assert crashed.returncode == 137, crashed.stderr[-3000:]
    tuning = [a for a in TUNING if a not in ("--device", "cpu")]
    status = subprocess.run([sys.executable, "-m", "kademe.cli", "status", "--workdir", str(workdir), "--collection", "inc",
                             "--source", str(grown["v2"]), "--years", YEAR, "--json", *tuning],
                            capture_output=True, check=False, text=True, env=api_env, timeout=300)
    upsert = json.loads(status.stdout)["partitions"][f"yargitay/{YEAR}"]["stages"]["upsert"]
    assert upsert["rerun"] == "recompute" and "killed" in upsert["why"], upsert
    assert {s: v["rerun"] for s, v in json.loads(status.stdout)["partitions"][f"yargitay/{YEAR}"]["stages"].items()
            if s != "upsert"} == dict.fromkeys(("read", "clean", "chunk", "lexical", "embed"), "reuse")


@pytest.mark.slow
def test_a_half_applied_night_followed_by_another_source_ends_at_that_source(grown, tmp_path, api_env):  # noqa: F811
    """Killed mid-delta, then run with the first version again (the next night brought it back): the ids the
    killed night touched are rewritten too, so the store holds exactly version 1's points."""
    workdir = tmp_path / "work"
    shutil.copytree(grown["first_work"], workdir)
    first_points = stored_points(workdir, "inc")
    crashed = subprocess.run([sys.executable, "-m", "kademe.cli", *night_args(grown["v2"], workdir)], capture_output=True, check=False,
                             text=True, env={**api_env, "KADEME_FAULT_CRASH_AT": "upsert-delete:1"}, timeout=300)
    assert crashed.returncode == 137, crashed.stderr[-3000:]
    free_dead_slots()
    assert stored_points(workdir, "inc") != first_points, "the killed night wrote part of its delta"

    y = ingest(grown["v1"], workdir)

    written, deleted = expected_delta(first_points, grown["scratch_points"])
    assert y["verify"]["ok"] and y["changes"]["points"]["written"] <= written + deleted
    assert_same_points(stored_points(workdir, "inc"), first_points)


def test_night_crash_points_are_listed():
    from kademe.faults import NIGHT_CRASH_POINTS

    assert {spec.split(":")[0] for spec in NIGHT_CRASHES} >= set(NIGHT_CRASH_POINTS)


# -- the year's index survives a night (Qdrant Edge) -------------------------------------------------
def year_points(n: int, dims: int, seed: int, year: int = 2011, start: int = 0):
    import uuid

    from kademe.store import PointBatch

    rng = np.random.default_rng(seed)
    ids = [str(uuid.UUID(int=start + i + 1)) for i in range(n)]
    payloads = [{"corpus": "c", "year": year, "doc_id": f"d{start + i}"} for i in range(n)]
    return PointBatch(ids, payloads, "v", rng.standard_normal((n, dims)).astype(np.float32))


def test_a_one_percent_night_leaves_the_years_indexed_segment_untouched(tmp_path):
    """3,000 points of 1024 dims (above the 10,000 KB indexing threshold) are indexed into one segment; a
    night overwrites 1 % and deletes 0.5 %, and ``optimize`` then leaves that segment and its HNSW graph
    as they were: the night's points go to a small appendable segment."""
    import uuid

    from kademe.store.edge import EdgeStore

    with EdgeStore.open(tmp_path / "c") as store:
        store.create({"v": 1024})
        store.upsert([year_points(3000, 1024, seed=1)])
        cold = store.optimize()
        before = store.segments()
        night = year_points(30, 1024, seed=2, start=100)  # 30 points of the year, changed
        store.upsert([night])
        store.delete([str(uuid.UUID(int=i + 1)) for i in range(2000, 2015)])
        seconds = store.optimize()
        after = store.segments()

    indexed = [seg for seg in before if seg.indexed]
    assert len(indexed) == 1 and indexed[0].points == 3000
    year = next(seg for seg in after if seg.name == indexed[0].name)
    assert year.indexed and year.built == indexed[0].built and year.points == 3000 and year.deleted == 45
    rest = [seg for seg in after if seg.name != year.name]
    assert sum(seg.points for seg in rest) == 30 and not any(seg.indexed for seg in rest)
    assert seconds < cold / 5, f"the night's optimize took {seconds:.2f} s against {cold:.2f} s for the year"


def test_optimize_vacuums_a_segment_once_a_fifth_of_it_is_deleted(tmp_path):
    """Nights overwrite and delete; past ``deleted_threshold`` (0.2) the next optimize rewrites the segment
    without its deleted points, so the store does not keep every old version (issue 29, point 4)."""
    import uuid

    from kademe.store.edge import EdgeStore

    with EdgeStore.open(tmp_path / "c") as store:
        store.create({"v": 1024})
        store.upsert([year_points(3000, 1024, seed=1)])
        store.optimize()
        store.delete([str(uuid.UUID(int=i + 1)) for i in range(500)])  # 1/6: below the threshold
        store.optimize()
        kept = store.segments()
        store.delete([str(uuid.UUID(int=i + 1)) for i in range(500, 700)])  # 7/30: past it
        store.optimize()
        vacuumed = store.segments()
        assert store.count(Where()) == 2300

    assert kept[0].points == 3000 and kept[0].deleted == 500
    assert vacuumed[0].name != kept[0].name and vacuumed[0].points == 2300 and vacuumed[0].deleted == 0
    assert vacuumed[0].indexed
