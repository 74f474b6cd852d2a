"""A year that grows (issue 21): a rerun over a grown or edited file embeds only the new chunk texts.

The source of one year is ingested, then grown (decisions appended), edited (one decision's text
changed) and trimmed (one withdrawn); the rerun into the same workdir must encode only chunk texts
it has not embedded before, report what changed, and end with exactly the points (ids, payloads,
vectors) of a from-scratch ingest of the new file. Killed anywhere during the incremental run, the
rerun ends the same way.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from kademe.partition import Partition
from kademe.cli import main
from tests.conftest import (VECTOR_COUNTS, MODEL, crash_matrix, decision, free_dead_slots, source_counts, stored_points,
                            write_ndjson)
from tests.test_reliability import api_env, assert_same_points, one_torch_thread, quiet_env  # noqa: F401 - fixtures

YEAR = "2011"
TUNING = ["--device", "cpu", "--model", MODEL, "--shard-size", "4", "--chunk-tokens", "64", "--chunk-overlap", "8"]


def ingest(source: Path, workdir: Path) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["ingest", "--source", str(source), "--years", YEAR, "--workdir", str(workdir), "--collection", "inc",
                     *TUNING, "--json"])
    result = json.loads(out.getvalue())
    assert code == 0, result
    return result["years"][YEAR]


def chunk_texts(workdir: Path) -> list[str]:
    part = Partition(workdir, "yargitay", int(YEAR))
    cp = part.checkpoint("chunk", part.manifest()["chunk"]["key"])
    return [t for f in cp.files() for t in pq.read_table(f, columns=["text"]).column("text").to_pylist()]


def versions(folder: Path) -> tuple[Path, Path]:
    """Version 1: decisions 0-5. Version 2: 1 withdrawn, 3 edited, 6 and 7 appended."""
    v1 = [decision(2011, n) for n in range(6)]
    edited = dict(v1[3], text=v1[3]["text"].replace("SONUÇ:", "SONUÇ (düzeltilmiş):"))
    v2 = [v1[0], v1[2], edited, v1[4], v1[5], decision(2011, 6), decision(2011, 7)]
    write_ndjson(folder / "v1" / "yargitay_2011.ndjson", v1), write_ndjson(folder / "v2" / "yargitay_2011.ndjson", v2)
    return folder / "v1" / "yargitay_{year}.ndjson", folder / "v2" / "yargitay_{year}.ndjson"


@pytest.fixture(scope="module")
def grown(tmp_path_factory, prefect_server) -> dict:
    """The first ingest, the from-scratch ingest of version 2, and the sources."""
    root = tmp_path_factory.mktemp("incremental")
    v1, v2 = versions(root)
    first_work = root / "first"
    first = ingest(v1, first_work)
    scratch = ingest(v2, root / "scratch")
    return {"v1": v1, "v2": v2, "first_work": first_work, "first": first, "scratch": scratch,
            "scratch_points": stored_points(root / "scratch", "inc"), "scratch_texts": chunk_texts(root / "scratch")}


@pytest.mark.slow
def test_a_grown_year_embeds_only_new_chunk_texts_and_follows_the_source(grown, tmp_path):
    import shutil

    workdir = tmp_path / "work"
    shutil.copytree(grown["first_work"], workdir)
    old_texts = set(chunk_texts(workdir))

    y = ingest(grown["v2"], workdir)

    new_texts = [t for t in grown["scratch_texts"] if t not in old_texts]
    assert y["status"] == "completed" and y["verify"]["ok"]
    assert y["changes"]["documents"] == {"new": 2, "changed": 1, "unchanged": 4, "removed": 1}
    assert y["changes"]["chunks"] == {"embedded": len(new_texts), "reused": y["counts"]["chunks"] - len(new_texts), "committed": 0}
    assert {k: y["counts"][k] for k in VECTOR_COUNTS} == y["changes"]["chunks"], "one meaning per count (issue 30)"
    assert 0 < len(new_texts) < y["counts"]["chunks"] / 2
    assert source_counts(y["counts"]) == source_counts(grown["scratch"]["counts"])
    assert_same_points(stored_points(workdir, "inc"), grown["scratch_points"])
    withdrawn = decision(2011, 1)["id"]
    assert not [p for p in stored_points(workdir, "inc").values() if p.payload["doc_id"] == withdrawn]

    again = ingest(grown["v2"], workdir)  # a warm rerun: nothing changed, nothing embedded
    assert again["changes"]["documents"] == {"new": 0, "changed": 0, "unchanged": 7, "removed": 0}
    assert again["changes"]["chunks"] == {"embedded": 0, "reused": 0, "committed": again["counts"]["chunks"]}


@pytest.mark.slow
def test_first_ingest_reports_every_document_new(grown):
    first = grown["first"]
    assert first["changes"]["documents"] == {"new": 6, "changed": 0, "unchanged": 0, "removed": 0}
    assert first["changes"]["chunks"] == {"embedded": first["counts"]["chunks"], "reused": 0, "committed": 0}


INCREMENTAL_CRASHES = ["clean-done:1", "chunk-done:1", "embed-shard:1", "embed-batch:1", "checkpoint-rename:6",
                       "upsert-delta:1", "upsert-prune:1", "embed-done:1"]  # a night writes its delta (issue 29)
# In the slow layer: mid-embed of the new texts, an unnamed part, the prune of the withdrawn decision's points;
# the others are marked exhaustive too (python -m pytest -m 'slow or exhaustive' runs both).
DEFAULT_CRASHES = {"embed-batch:1", "checkpoint-rename:6", "upsert-prune:1"}


@pytest.mark.slow
@pytest.mark.parametrize("spec", crash_matrix(INCREMENTAL_CRASHES, DEFAULT_CRASHES))
def test_incremental_run_killed_anywhere_ends_with_the_from_scratch_points(spec, grown, tmp_path, api_env):  # noqa: F811
    import shutil

    workdir = tmp_path / "work"
    shutil.copytree(grown["first_work"], workdir)
    args = ["ingest", "--source", str(grown["v2"]), "--years", YEAR, "--workdir", str(workdir), "--collection", "inc", *TUNING]
    crashed = subprocess.run([sys.executable, "-m", "kademe.cli", *args], capture_output=True, text=True,
                             env={**api_env, "KADEME_FAULT_CRASH_AT": spec}, timeout=300)
    assert crashed.returncode == 137, f"{spec} was never reached (exit {crashed.returncode}):\n{crashed.stderr[-3000:]}"
    free_dead_slots()  # the killed run's partition slot (the test server expires no leases)

    y = ingest(grown["v2"], workdir)

    assert y["status"] == "completed" and y["verify"]["ok"]
    assert source_counts(y["counts"]) == source_counts(grown["scratch"]["counts"])
    assert_same_points(stored_points(workdir, "inc"), grown["scratch_points"])
