"""The user's clock (issue 22): the first run with a Prefect home says why it is slower; the bench measures whole processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"


@pytest.mark.slow
def test_a_prefect_home_without_a_database_is_a_first_run(tmp_path):
    # In a process of its own: the session's Prefect test harness overrides the database in this one.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_", "PREFECT_SERVER_DATABASE"))}
    env.update(PREFECT_HOME=str(tmp_path / "home"), PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
    check = [sys.executable, "-c", "from flows.server import _new_database; print(_new_database())"]

    first = subprocess.run(check, capture_output=True, text=True, env=env, timeout=120)
    (tmp_path / "home").mkdir(exist_ok=True)
    (tmp_path / "home" / "prefect.db").write_bytes(b"")
    later = subprocess.run(check, capture_output=True, text=True, env=env, timeout=120)

    assert first.stdout.strip() == str(tmp_path / "home" / "prefect.db"), first.stderr[-2000:]
    assert later.stdout.strip() == "None"


@pytest.mark.slow
@pytest.mark.exhaustive  # a benchmark's end-to-end run: CI runs it after the default suite
def test_user_clock_bench_times_whole_processes(tmp_path):
    out = tmp_path / "throughput.json"
    cmd = [sys.executable, str(BENCH / "throughput.py"), "--chunks", "300", "--rounds", "1", "--layers", "0",
           "--shard-size", "128", "--out", str(out)]
    # Prefect migrates each fresh home itself here (no copied database, flows/prefect_db.py): the first-run note shows
    env = {**os.environ, "PYTHONPATH": "src:.", "KADEME_PREFECT_DB_TEMPLATE": "0"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["mode"] == "user-clock" and result["chunks"] >= 300
    med = result["median"]
    assert med["bare"]["wall_s"] > med["bare"]["encode_s"] > 0
    for home in ("fresh", "existing"):
        assert med[home]["wall_s"] > med[home]["flow_s"] > 0 and med[home]["ratio_to_bare"] > 0
        assert set(med[home]["stages_s"]) == {"read", "clean", "chunk", "lexical", "embed", "upsert", "verify", "index"}
        assert 0 < med[home]["embed_own_cpu_over_encoder"] < 1  # the embed stage's own work, measured (point 4)
    assert med["fresh"]["first_run_note_on_stderr"] and not med["existing"]["first_run_note_on_stderr"]
    assert "kademe/bare" in proc.stdout


SERVER_CHILD = """
import json, os, sys
from flows.launch import prepare_prefect, run_flow
url = prepare_prefect().result()
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.server.api.server import SubprocessASGIServer
from prefect.settings import get_current_settings
import urllib.request

@flow
def seen() -> dict:
    with get_client(sync_client=True) as client:
        return {"client": str(client.api_url), "heartbeat": get_current_settings().flows.heartbeat_frequency}

ask = urllib.request.Request(url + "/block_types/filter", data=b"{}", headers={"Content-Type": "application/json"})
block_types = json.load(urllib.request.build_opener(urllib.request.ProxyHandler({})).open(ask, timeout=30))
pid = SubprocessASGIServer().server_process.pid
blocked = int(open(f"/proc/{pid}/status").read().split("SigBlk:")[1].split()[0], 16)
print(json.dumps({"url": url, "block_types": len(block_types), "settings": get_current_settings().api.url, "pid": pid,
                  "sigint_blocked": bool(blocked & (1 << 1)), **run_flow(seen)}), flush=True)
"""


@pytest.mark.slow
def test_the_temporary_server_is_prefects_own_and_stops_with_the_process(tmp_path):
    # A process of its own, without PREFECT_API_URL: kademe starts Prefect's ephemeral server early, Prefect's own clients
    # use it, the terminal's Ctrl-C does not reach it, and the process's exit stops it (issue 22 point 4, issues 30 and 31).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_", "PREFECT_SERVER_DATABASE"))}
    env.update(PREFECT_HOME=str(tmp_path / "home"), PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", KADEME_PREFECT_TEMPLATES=str(tmp_path / "cache"))
    child = subprocess.Popen([sys.executable, "-c", SERVER_CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env)
    out, err = child.communicate(timeout=180)  # returns at EOF: the server, which shares our pipes, is gone by then
    assert child.returncode == 0, err[-3000:]
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["url"].startswith("http://127.0.0.1:") and seen["url"].endswith("/api")
    assert seen["settings"] is None  # Prefect's settings untouched: ephemeral mode, which flows.limits reads
    assert seen["client"].rstrip("/") == seen["url"]  # the flow's client found the server kademe started
    assert seen["heartbeat"] is None  # no flow-run heartbeats to a server that dies with the process: each flow's end waited ~1 s
    assert seen["block_types"] == 0  # not registered at start: ~1 s of a first run, for blocks no flow of kademe creates
    assert seen["sigint_blocked"]  # a Ctrl-C at a terminal is kademe's to handle; the server is stopped after the flow
    assert "first run with this Prefect home" in err
    assert not _alive(seen["pid"]), "the temporary server outlived its process"


@pytest.mark.slow
def test_a_new_prefect_home_starts_from_a_database_prefect_migrated_before(tmp_path):
    # Issue 32 point 4: Prefect migrates a new home's database once per machine and Prefect version; later homes get a
    # copy (flows/prefect_db.py), skip the migrations, and still work with Prefect's own CLI.
    import sqlite3

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_", "PREFECT_SERVER_DATABASE"))}
    env.update(PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               KADEME_PREFECT_TEMPLATES=str(tmp_path / "cache"))
    took, errs = [], []
    for home in ("first", "second"):
        started = time.monotonic()
        child = subprocess.run([sys.executable, "-c", SERVER_CHILD], capture_output=True, text=True, timeout=180,
                               env={**env, "PREFECT_HOME": str(tmp_path / home)})
        assert child.returncode == 0, child.stderr[-3000:]
        took.append(time.monotonic() - started)
        errs.append(child.stderr)
    templates = list((tmp_path / "cache").glob("prefect-*.db"))
    assert len(templates) == 1
    assert "first run with this Prefect home" in errs[0] and "first run with this Prefect home" not in errs[1]

    def head(db):
        with sqlite3.connect(db) as con:
            return con.execute("select version_num from alembic_version").fetchall()

    assert head(tmp_path / "second" / "prefect.db") == head(tmp_path / "first" / "prefect.db") != []
    listed = subprocess.run([sys.executable, "-m", "prefect", "flow-run", "ls"], capture_output=True, text=True, timeout=180,
                            env={**env, "PREFECT_HOME": str(tmp_path / "second")})
    assert listed.returncode == 0, listed.stderr[-3000:]
    print(f"first home {took[0]:.1f} s, second home {took[1]:.1f} s")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_heartbeats_stay_on_against_a_real_server(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_", "PREFECT_SERVER_DATABASE"))}
    env.update(PREFECT_HOME=str(tmp_path / "home"), PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
               PREFECT_API_URL="http://127.0.0.1:9/api")
    check = ("from flows.launch import prepare_prefect; from prefect.settings import get_current_settings; "
             "print(prepare_prefect().result(), get_current_settings().flows.heartbeat_frequency)")
    proc = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env=env, timeout=120)
    assert proc.stdout.split() == ["None", "180"], proc.stderr[-2000:]  # nothing started; Prefect's default kept


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.slow
@pytest.mark.skipif(_cuda(), reason="the failing preflight is --device cuda on a machine without CUDA")
def test_an_ingest_that_fails_its_preflight_after_the_server_began_exits_at_once_and_leaves_no_server(tmp_path, settings):
    # The temporary server starts before the device and store checks (issue 22); --device cuda on a machine
    # without CUDA fails there. The exit must neither wait for the server's start nor leave it running.
    s = settings()
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_", "PREFECT_SERVER_DATABASE"))}
    env.update(PREFECT_HOME=str(home), PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", CUDA_VISIBLE_DEVICES="")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "kademe.cli", "ingest", "--source", s.source, "--years", "2011",
                           "--workdir", str(tmp_path / "w"), "--collection", "c", "--device", "cuda"],
                          capture_output=True, text=True, env=env, timeout=180)
    took = time.monotonic() - started
    assert proc.returncode != 0 and "cuda" in proc.stderr.lower(), proc.stderr[-2000:]
    deadline = time.monotonic() + 30
    while _servers_of(home) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _servers_of(home), "a temporary server outlived the failed run"
    assert took < 60, f"the failed run took {took:.0f} s"


def _servers_of(home: Path) -> list[int]:
    """Live processes whose environment names this Prefect home (the temporary server's)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if f"PREFECT_HOME={home}".encode() in (proc / "environ").read_bytes().split(b"\0") and _alive(int(proc.name)):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids
