"""Ctrl-C and SIGTERM stop an ingest promptly and cleanly, and a rerun resumes exactly (issue 30, point 2).

Each case is a real ``kademe ingest`` process on its temporary Prefect server (no ``PREFECT_API_URL``;
one Prefect home for the module, so only the first run creates its database), held at a named point
by ``KADEME_FAULT_PAUSE_AT`` and sent the signal there. It must exit 130 within 5 s of the signal,
with the one line that says how to resume and no traceback; its flow runs end Cancelled; its
temporary server is gone; the rerun completes with the point set of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import MODEL, decision, stored_points, write_ndjson
from tests.test_user_clock import _servers_of

ROOT = Path(__file__).resolve().parents[1]
LINE = "kademe: interrupted; committed work is kept — rerun the same command to resume"
TUNING = ["--device", "cpu", "--model", MODEL, "--shard-size", "2", "--chunk-tokens", "64", "--chunk-overlap", "8"]
WITHIN_S = 5.0  # from the signal to the process's exit (issue 30)

# (the point the run is held at, the signal): start-up, read/chunk, embedding, upsert, index build, verify.
CASES = [
    ("embed-batch", "SIGINT"),
    ("embed-batch", "SIGTERM"),
    ("startup", "SIGINT"),
    ("chunk-batch", "SIGTERM"),
    ("lexical-shard", "SIGINT"),
    ("upsert-batch", "SIGINT"),
    ("index-start", "SIGTERM"),
    ("verify-start", "SIGINT"),
]
REPRESENTATIVE = ("embed-batch", "SIGINT")


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("prefect-home")


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> str:
    """One year of 3 short decisions: 11 chunks in 6 shards of 2."""
    data = tmp_path_factory.mktemp("interrupt") / "data"
    write_ndjson(data / "yargitay_2011.ndjson", [decision(2011, n) for n in range(3)])
    return str(data / "yargitay_{year}.ndjson")


def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_API_", "PREFECT_SERVER_DATABASE", "KADEME_FAULT_", "KADEME_QDRANT_API_KEY"))}
    env.update(PREFECT_HOME=str(home), PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **extra)
    return env


def ingest(source: str, workdir: Path) -> list[str]:
    return [sys.executable, "-m", "kademe.cli", "ingest", "--source", source, "--years", "2011", "--workdir", str(workdir),
            "--collection", "sig", *TUNING]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, source, home) -> dict:
    """The point set of an uninterrupted run (it also creates the module's Prefect home)."""
    workdir = tmp_path_factory.mktemp("reference") / "work"
    proc = subprocess.run(ingest(source, workdir), capture_output=True, text=True, env=env_for(home), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    points = stored_points(workdir, "sig")
    assert len(points) == 11
    return points


def interrupt_at(point: str, signame: str, source: str, workdir: Path, home: Path) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``kademe ingest`` held at ``point``, send ``signame`` there; the finished process and the seconds it took to exit.

    The exit is the process's, not the end of its output: a temporary server asked to stop without
    being waited for (a signal before the flow ran) still holds the inherited stderr while it shuts down.
    """
    child = subprocess.Popen(ingest(source, workdir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env_for(home, KADEME_FAULT_PAUSE_AT=point))
    lines, paused = [], threading.Event()

    def read() -> None:
        for line in child.stderr:
            lines.append(line)
            if f"KADEME_FAULT_PAUSE_AT={point}: paused" in line:
                paused.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert paused.wait(600), "".join(lines)[-3000:]
    child.send_signal(getattr(signal, signame))
    sent = time.monotonic()
    code = child.wait(timeout=60)
    took = time.monotonic() - sent
    reader.join(timeout=60)
    return subprocess.CompletedProcess(child.args, code, child.stdout.read(), "".join(lines)), took


def gone(home: Path, within: float = 30.0) -> bool:
    """Whether no temporary server of ``home`` is left (one asked to stop without waiting ends on its own, soon)."""
    deadline = time.monotonic() + within
    while _servers_of(home) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not _servers_of(home)


def flow_runs(home: Path) -> dict[str, tuple[str, str]]:
    """Flow run id -> (name, state type), for every flow run in the Prefect home's database."""
    with sqlite3.connect(home / "prefect.db") as db:
        return {id_: (name, state) for id_, name, state in db.execute("SELECT id, name, state_type FROM flow_run")}


@pytest.mark.parametrize("point, signame", [
    pytest.param(*case, id=f"{case[0]}-{case[1]}", marks=() if case == REPRESENTATIVE else (pytest.mark.slow,)) for case in CASES])
def test_a_signal_stops_the_run_cleanly_and_the_rerun_resumes_exactly(point, signame, tmp_path, source, home, reference):
    workdir = tmp_path / "work"
    before = flow_runs(home)

    stopped, took = interrupt_at(point, signame, source, workdir, home)
    print(f"{point} {signame}: exit {stopped.returncode} {took:.2f} s after the signal")  # the figures, with -s

    assert stopped.returncode == 130, stopped.stderr[-3000:]
    assert took <= WITHIN_S, f"exited {took:.1f} s after {signame}"
    assert "Traceback" not in stopped.stderr, stopped.stderr[-3000:]
    assert [line for line in stopped.stderr.splitlines() if line.startswith("kademe: interrupted")] == [LINE]
    new = sorted(run for id_, run in flow_runs(home).items() if id_ not in before)
    if point == "startup":
        assert new == []  # stopped before any flow run was created
    else:
        assert new == [("ingest-2011", "CANCELLED"), ("ingest-[2011]", "CANCELLED")]
    assert gone(home), "the temporary server outlived its process"

    rerun = subprocess.run(ingest(source, workdir), capture_output=True, text=True, env=env_for(home), timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    got = stored_points(workdir, "sig")
    assert sorted(got) == sorted(reference) and len(got) == len(reference)


@pytest.mark.slow
def test_a_second_signal_exits_at_once(tmp_path, source, home, reference):
    child = subprocess.Popen(ingest(source, tmp_path / "work"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env_for(home, KADEME_FAULT_PAUSE_AT="upsert-batch"))
    lines = []
    for line in child.stderr:
        lines.append(line)
        if "paused" in line:
            break
    child.send_signal(signal.SIGINT)  # a user's two Ctrl-C, back to back
    child.send_signal(signal.SIGINT)
    sent = time.monotonic()
    code = child.wait(timeout=60)
    took = time.monotonic() - sent
    err = "".join(lines) + child.stderr.read()

    assert code == 130 and took <= WITHIN_S, (code, took, err[-3000:])
    assert "Traceback" not in err and err.count(LINE) == 1, err[-3000:]
    assert gone(home), "the temporary server outlived a second Ctrl-C"  # asked to stop, not waited for


WORKER = '''
import asyncio, json, sys, threading, time
from prefect.testing.utilities import prefect_test_harness


def main():
    source, workdir = sys.argv[1], sys.argv[2]
    with prefect_test_harness(server_startup_timeout=120):
        from prefect.client.orchestration import get_client
        from prefect.runner import Runner
        from prefect.states import Cancelling

        from flows.ingest import ingest_years
        from flows.parameters import parameters_of
        from kademe.settings import Settings

        s = Settings(source=source, workdir=workdir, collection="sig", device="cpu", model=sys.argv[3], shard_size=2,
                     chunk_tokens=64, chunk_overlap=8)
        runner = Runner(query_seconds=1, pause_on_shutdown=False)
        deployment = runner.add_flow(ingest_years, name="sig", parameters={"years": [2011], **parameters_of(ingest_years, s)})
        threading.Thread(target=lambda: asyncio.run(runner.start()), daemon=True).start()
        with get_client(sync_client=True) as client:
            run = client.create_flow_run_from_deployment(deployment)
            print("RUN", run.id, flush=True)
            sys.stdin.readline()  # the test saw the flow-run process paused in the embed stage
            asked = time.monotonic()
            client.set_flow_run_state(run.id, Cancelling(message="cancelled by the test"), force=True)
            while not (state := client.read_flow_run(run.id).state).is_final():
                time.sleep(0.2)
            print("FINAL", json.dumps({"seconds": time.monotonic() - asked, "states": sorted(
                (r.name, r.state.type.value) for r in client.read_flow_runs())}), flush=True)


if __name__ == "__main__":  # the runner starts flow-run processes with multiprocessing's spawn
    main()
'''


@pytest.mark.slow
def test_a_deployment_run_cancelled_through_the_api_stops_the_same_way_on_a_worker(tmp_path, source, reference):
    # Prefect's runner delivers the cancel and sends SIGTERM to the flow-run process; its engine raises TerminationSignal
    # in the main thread, and kademe's flows ask the other threads (the embedding) to stop at their next batch.
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    workdir = tmp_path / "work"
    env = {k: v for k, v in env_for(tmp_path / "home").items() if k != "KADEME_FAULT_PAUSE_AT"}
    env["KADEME_FAULT_PAUSE_AT"] = "embed-batch"
    child = subprocess.Popen([sys.executable, str(script), source, str(workdir), MODEL], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    lines = []
    for line in child.stdout:
        lines.append(line)
        if "KADEME_FAULT_PAUSE_AT=embed-batch: paused" in line:
            child.stdin.write("\n")
            child.stdin.flush()
        if line.startswith("FINAL "):
            break
    child.stdin.close()
    child.wait(timeout=120)
    out = "".join(lines)
    final = json.loads(next(line for line in lines if line.startswith("FINAL "))[6:])
    assert final["states"] == [["ingest-2011", "CANCELLED"], ["ingest-[2011]", "CANCELLED"]], out[-3000:]
    assert "Finished in state Cancelled" in out and "Execution of flow run" in out, out[-3000:]

    rerun = subprocess.run(ingest(source, workdir), capture_output=True, text=True, env=env_for(tmp_path / "home2"), timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert sorted(stored_points(workdir, "sig")) == sorted(reference)
