"""Prefect operations: task retries after a store outage, flow-run retries that reuse checkpoints, artifacts."""

from __future__ import annotations

import asyncio

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
)

import flows.ingest as ingest_flows
from kademe import faults

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture
def outage(monkeypatch):
    """The first N store calls fail with a genuine transient qdrant-client error; retry delays are 0 s."""
    faults.reset()
    monkeypatch.setattr(ingest_flows, "upsert_points_task", ingest_flows.upsert_points_task.with_options(retry_delay_seconds=0))

    def down(calls: int):
        monkeypatch.setenv("KADEME_FAULT_QDRANT_DOWN_CALLS", str(calls))

    yield down
    faults.reset()


def task_runs(flow_run_id):
    async def read():
        async with get_client() as client:
            return await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))

    return {t.name.rsplit("-", 1)[0]: t for t in asyncio.run(read())}


def artifact(key: str, flow_run_id):
    """The artifact with this key that the given flow run made (the key is shared by every run of the year)."""

    async def read():
        async with get_client() as client:
            found = await client.read_artifacts(artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[key]), flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
            return found[-1] if found else None

    return asyncio.run(read())


@pytest.mark.slow
def test_upsert_task_retry_succeeds_after_a_store_outage(settings, outage):
    outage(8)  # tenacity's 8 attempts on the first call all fail: the task fails once, Prefect retries it
    s = settings()
    state = ingest_flows.ingest_year(2011, **s.flow_parameters(), return_state=True)
    summary = state.result()
    assert summary["status"] == "completed" and summary["verify"]["ok"]
    runs = task_runs(state.state_details.flow_run_id)
    assert runs["upsert"].run_count == 2, "one failed attempt, one retry"
    assert runs["read"].run_count == 1


@pytest.mark.slow
def test_a_server_down_when_the_upsert_task_starts_is_retried_by_the_task(settings, outage, tmp_path):
    """The server path (qdrant-client local mode standing in for a server): down at connect, back for the retry."""
    outage(8)  # the connect call's 8 attempts all fail: StoreUnavailable, and Prefect retries the task
    s = settings(qdrant_url=f"path:{tmp_path / 'server'}")
    state = ingest_flows.ingest_year(2011, **s.flow_parameters(), return_state=True)
    summary = state.result()
    assert summary["status"] == "completed" and summary["verify"]["ok"]
    assert "KADEME_FAULT_QDRANT_DOWN_CALLS=8" in summary["instruments"]
    runs = task_runs(state.state_details.flow_run_id)
    assert runs["upsert"].run_count == 2, "one failed attempt, one retry"


@pytest.mark.slow
def test_flow_run_retry_reuses_finished_stages(settings, outage, monkeypatch):
    outage(8)
    monkeypatch.setattr(ingest_flows, "upsert_points_task", ingest_flows.upsert_points_task.with_options(retries=0))
    s = settings()
    flow = ingest_flows.ingest_year.with_options(retries=1, retry_delay_seconds=0)
    summary = flow(2011, **s.flow_parameters())
    assert summary["status"] == "completed"
    assert summary["cached"] == ["read", "clean", "chunk", "lexical", "embed"], "the retry recomputed nothing that had finished"


def test_report_rejects_and_progress_artifacts(settings, tmp_path):
    with open(tmp_path / "data" / "yargitay_2012.ndjson", "ab") as f:
        f.write(b"not json\n[1]\n")
    s = settings()
    state = ingest_flows.ingest_year(2012, **s.flow_parameters(), return_state=True)
    summary, run_id = state.result(), state.state_details.flow_run_id
    report = artifact("kademe-report-yargitay-2012", run_id)
    assert report.type == "markdown" and "yargitay 2012" in report.data
    assert "| read | clean | chunk | lexical | embed | upsert | index | verify |" in report.data, "stage times are shown"
    assert "| read | documents | duplicates | rejected | chunks | embedded | reused | committed | upserted |" in report.data
    assert "| 8 | 6 | 0 | 2 | {0} | {0} | 0 | 0 | {0} |".format(summary["counts"]["chunks"]) in report.data, "a cold run embeds every chunk"
    rejects = artifact("kademe-rejects-yargitay-2012", run_id)
    assert rejects.type == "table"
    assert sorted((r["reason"], r["lines"]) for r in _rows(rejects.data)) == [("invalid_json", 1), ("not_object", 1)]
    progress = artifact("embed-progress-yargitay-2012", run_id)
    assert progress.type == "progress" and float(progress.data) == 100.0


def test_the_progress_artifact_is_posted_every_few_seconds_not_every_shard(settings, monkeypatch):
    posted = []
    real = ingest_flows.update_progress_artifact
    monkeypatch.setattr(ingest_flows, "update_progress_artifact", lambda a, p, *x, **k: posted.append(p) or real(a, p, *x, **k))
    monkeypatch.setattr(ingest_flows, "PROGRESS_EVERY", 3600.0)
    s = settings(shard_size=2)
    state = ingest_flows.ingest_year(2012, **s.flow_parameters(), return_state=True)
    summary, run_id = state.result(), state.state_details.flow_run_id
    shards = -(-summary["counts"]["chunks"] // 2)
    assert shards >= 3 and len(posted) == 2 and posted[-1] == 100.0, (shards, posted)  # the first shard, then the last
    assert float(artifact("embed-progress-yargitay-2012", run_id).data) == 100.0


def _rows(data):
    import json

    return json.loads(data) if isinstance(data, str) else data
