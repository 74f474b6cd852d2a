"""Prefect-native operations: prefect.yaml, the GPU slot, and deployments/local-stack.sh with a real server."""

from __future__ import annotations

import inspect
import json
import os
import socket
import subprocess
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

from tests.conftest import MODEL, decision, write_ndjson

ROOT = Path(__file__).resolve().parents[1]
STACK = ROOT / "deployments" / "local-stack.sh"


def deployments() -> dict[str, dict]:
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    return {d["name"]: {**d, "pull": spec["pull"], "build": spec.get("build"), "push": spec.get("push")}
            for d in spec["deployments"]}


@pytest.mark.parametrize(
    ("name", "function", "required"),
    [("kademe-year", "ingest_year", "year"), ("kademe-backfill", "ingest_years", "years")],
)
def test_prefect_yaml_deploys_the_flow_with_its_own_parameters(name, function, required):
    import flows.ingest

    d = deployments()[name]
    module, _, attr = d["entrypoint"].partition(":")
    assert (module, attr) == ("flows/ingest.py", function)
    assert (ROOT / module).is_file()
    flow = getattr(flows.ingest, attr)
    assert set(d["parameters"]) <= set(inspect.signature(flow.fn).parameters)
    assert required in d["parameters"]
    assert d["parameters"]["model"] == MODEL
    assert "{year}" in d["parameters"]["source"]
    assert d["work_pool"]["name"] == "kademe-gpu"
    assert (d["build"], d["push"]) == (None, None)
    assert d["pull"] == [{"prefect.deployments.steps.set_working_directory": {"directory": "{{ $KADEME_PROJECT_DIR }}"}}]


@pytest.mark.parametrize(("entrypoint", "required", "left_out"), [
    ("flows/ingest.py:ingest_year", "year", {"qdrant_api_key"}),
    ("flows/ingest.py:ingest_years", "years", {"qdrant_api_key"}),
    ("flows/upgrade.py:upgrade_years", "years", {"qdrant_api_key", "source", "fallback_model", "chunk_tokens",
                                                 "chunk_overlap", "max_record_bytes", "bm25_language"}),
])
def test_deployment_schema_lists_the_settings_as_parameters(entrypoint, required, left_out):
    """Issue 19: the flows take **settings with a signature made from Settings; the schema prefect deploy
    and flow.deploy store (prefect.utilities.callables.parameter_schema) still names and types each one."""
    from prefect.flows import load_flow_from_entrypoint
    from prefect.utilities.callables import parameter_schema

    from kademe.settings import Settings

    flow = load_flow_from_entrypoint(str(ROOT / entrypoint))
    schema = parameter_schema(flow).model_dump()
    settings = set(Settings.model_fields) - left_out
    assert set(schema["properties"]) - {required, "build_index"} == settings
    assert schema["required"] == [required]
    assert schema["properties"]["device"]["anyOf"][0]["enum"] == ["auto", "cpu", "cuda"]
    assert schema["properties"]["workdir"]["description"] == Settings.model_fields["workdir"].description
    assert schema == flow.to_deployment(name="schema-check")._parameter_openapi_schema.model_dump()


def test_prefect_yaml_schedules_the_backfill_nightly_in_istanbul():
    d = deployments()
    assert d["kademe-backfill"]["schedules"] == [{"cron": "0 2 * * *", "timezone": "Europe/Istanbul", "active": True}]
    assert d["kademe-backfill"]["parameters"]["years"] == [2021, 2022, 2023]
    assert "schedules" not in d["kademe-year"]
    sample = ROOT / d["kademe-backfill"]["parameters"]["source"]
    assert all(Path(str(sample).format(year=y)).is_file() for y in d["kademe-backfill"]["parameters"]["years"])


def test_compose_offers_an_s3_workdir_store_behind_a_profile_and_points_the_workers_at_it():
    spec = yaml.safe_load((ROOT / "deployments" / "compose.yaml").read_text())
    services = spec["services"]
    store, bucket, worker = services["seaweedfs"], services["s3-bucket"], services["worker"]
    assert (store["profiles"], bucket["profiles"]) == (["s3"], ["s3"])
    assert all("profiles" not in services[name] for name in ("qdrant", "prefect-server", "setup", "worker"))
    assert "-s3.port=8333" in store["command"][0] and store["ports"] == ["127.0.0.1:8333:8333"]
    assert "--bucket kademe" in bucket["command"][0] and bucket["environment"]["AWS_ENDPOINT_URL"] == "http://seaweedfs:8333"
    env = worker["environment"]
    assert (env["AWS_ENDPOINT_URL"], env["AWS_ALLOW_HTTP"]) == ("http://seaweedfs:8333", "true")
    for service in (store, bucket, worker):  # credentials pass through from the shell, never written here
        assert (service["environment"]["AWS_ACCESS_KEY_ID"], service["environment"]["AWS_SECRET_ACCESS_KEY"]) == (None, None)
    assert worker["depends_on"]["s3-bucket"] == {"condition": "service_completed_successfully", "required": False}
    for script in (store["command"][0], bucket["command"][0]):  # shell variables, not Compose interpolation
        assert script.count("${") == script.count("$${") and script.count("$(") == script.count("$$(")
    assert "seaweedfs-data" in spec["volumes"]


def test_gpu_slot_without_a_name_never_calls_the_api(monkeypatch):
    from flows.gpu import gpu_slot

    monkeypatch.delenv("KADEME_GPU_SLOT", raising=False)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # nothing listens there
    with gpu_slot() as slot:
        assert slot is None
    monkeypatch.setenv("KADEME_GPU_SLOT", "")
    with gpu_slot() as slot:
        assert slot is None


def active_slots(name: str) -> int:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_global_concurrency_limit_by_name(name).active_slots


@pytest.mark.usefixtures("prefect_server")
def test_gpu_slot_holds_the_named_limit_only_inside_the_block(monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    from flows.gpu import gpu_slot

    name = f"gpu-test-{uuid.uuid4().hex[:8]}"
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
    monkeypatch.setenv("KADEME_GPU_SLOT", name)
    with gpu_slot() as slot:
        assert (slot, active_slots(name)) == (name, 1)
    assert active_slots(name) == 0


@pytest.mark.usefixtures("prefect_server")
def test_gpu_slot_runs_unguarded_when_the_limit_does_not_exist(monkeypatch):
    from flows.gpu import gpu_slot

    monkeypatch.setenv("KADEME_GPU_SLOT", "gpu-never-created")
    ran = []
    with gpu_slot() as slot:
        ran.append(slot)
    assert ran == ["gpu-never-created"]


def stack(*args: str, env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(STACK), *args], capture_output=True, text=True, env=env, timeout=timeout)


def stack_env(tmp_path: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_URL", "KADEME_"))}
    return {**env, "KADEME_STACK_DIR": str(tmp_path / "stack"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", **extra}


def test_stack_usage_and_status_of_nothing(tmp_path):
    env = stack_env(tmp_path)
    bad = stack("sideways", env=env)
    assert (bad.returncode, bad.stderr.strip()) == (2, f"usage: {STACK} up|down|status|setup")
    status = stack("status", env={**env, "KADEME_PREFECT_PORT": str(free_port())})
    assert status.returncode == 1
    assert f"local-stack: nothing recorded in {tmp_path / 'stack'}" in status.stdout
    assert not (tmp_path / "stack").exists(), "status creates nothing"


def test_stack_up_refuses_an_unreachable_prefect_api_url(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/api"
    result = stack("up", env=stack_env(tmp_path, PREFECT_API_URL=url))
    assert result.returncode == 1
    assert result.stderr.startswith(f"local-stack: error: PREFECT_API_URL={url} does not answer on /health.")
    assert not list((tmp_path / "stack").glob("*.pid")), "nothing was started"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str) -> bool:
    try:
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=2).read()
        return True
    except OSError:
        return False


def prefect_json(*args: str, env: dict) -> dict:
    result = subprocess.run(["prefect", *args, "--output", "json"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def gone(pid: int) -> bool:
    """Exited: no such process, or a zombie waiting for a parent that is not ours to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.slow
def test_local_stack_runs_a_deployment_through_a_worker_and_stops_cleanly(tmp_path):
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = stack_env(tmp_path, KADEME_PREFECT_PORT=str(port), KADEME_WORKERS="1", KADEME_STOP_TIMEOUT="5")
    client_env = {**env, "PREFECT_API_URL": api}
    source = write_ndjson(tmp_path / "data" / "yargitay_2011.ndjson", [decision(2011, n, words=16) for n in range(2)])
    workdir = tmp_path / "work"
    params = {"year": 2011, "source": str(source).replace("2011", "{year}"), "workdir": str(workdir),
              "collection": "stack-test", "device": "cpu"}
    pids: list[int] = []
    try:
        up = stack("up", env=env, timeout=300)
        assert up.returncode == 0, up.stdout + up.stderr
        pids = [int(p.read_text()) for p in sorted((tmp_path / "stack").glob("*.pid"))]
        assert len(pids) == 2 and answers(f"{api}/health")

        run = subprocess.run(["timeout", "300", "prefect", "deployment", "run", "ingest-year/kademe-year",
                              "--params", json.dumps(params), "--watch", "--watch-timeout", "280"],
                             capture_output=True, text=True, env=client_env, cwd=tmp_path, timeout=320)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert "Flow run finished successfully in 'Completed'." in run.stdout
        report = json.loads((workdir / "yargitay" / "2011" / "report.json").read_text())
        assert (report["status"], report["counts"]["documents"], report["device"]) == ("completed", 2, "cpu")

        verify = subprocess.run(["kademe", "verify", "--collection", "stack-test", "--years", "2011", "--workdir", str(workdir),
                                 "--json"], capture_output=True, text=True, env=env, timeout=120)
        assert verify.returncode == 0 and json.loads(verify.stdout)["ok"] is True, verify.stdout + verify.stderr

        backfill = prefect_json("deployment", "inspect", "ingest-years/kademe-backfill", env=client_env)
        assert [(x["schedule"]["cron"], x["schedule"]["timezone"], x["active"]) for x in backfill["schedules"]] == [
            ("0 2 * * *", "Europe/Istanbul", True)]
        assert backfill["work_pool_name"] == "kademe-gpu"
        gpu0 = prefect_json("gcl", "inspect", "gpu-0", env=client_env)
        assert (gpu0["limit"], gpu0["active_slots"]) == (1, 0)

        status = stack("status", env=env)
        assert status.returncode == 0, status.stdout
        assert f"server {api}: healthy" in status.stdout and "worker-0 pid" in status.stdout
    finally:
        down = stack("down", env=env, timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not answers(f"{api}/health")
    assert pids and all(gone(pid) for pid in pids)
    assert not list((tmp_path / "stack").glob("*.pid"))
