"""Prefect's database after 30 nightly runs, with and without its retention (issue 29, point 5).

Two real Prefect servers (``prefect server start``, SQLite, a fresh home each): one with Prefect's
defaults (only events are vacuumed, after 7 days), one with what deployments/ configure
(``PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED=events,flow_runs``, flow runs with their task runs,
logs and artifacts kept ``--retention-days`` after they end). Each gets ``--nights`` runs of a
stand-in of the nightly ``ingest-year`` flow (its 8 tasks, a log line per task, the report's
Markdown and table artifacts); then every timestamp of night k is moved k-``nights`` days into
the past, as if the runs had come one a night, and the vacuum loop (``--loop-seconds``) is given
time to run. The database file is measured then, and after SQLite's ``VACUUM`` (the deleted
rows' pages are only reused, never returned, until then).

Usage:
    python bench/prefect_db.py                 # 30 nights, retention 14 days (a few minutes)
    python bench/prefect_db.py --nights 10     # quicker

Writes bench/results/prefect-db.json.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine

RESULTS = Path(__file__).resolve().parent / "results"

NIGHT = '''
import sys, time, json
from prefect import flow, task, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

STAGES = ("read", "clean", "chunk", "lexical", "embed", "upsert", "verify", "index")

@task
def stage(name: str, year: int) -> dict:
    get_run_logger().info("%s: %s done", year, name)
    return {"stage": name, "seconds": 0.01}

@flow(name="ingest-year", flow_run_name="ingest-{year}", log_prints=True)
def ingest_year(year: int) -> dict:
    out = [stage(name, year) for name in STAGES]
    create_markdown_artifact("# kademe report\\n" + "\\n".join(f"| {o['stage']} | 0.0 s |" for o in out) * 4,
                             key=f"kademe-report-yargitay-{year}")
    create_table_artifact([{"reason": "none", "lines": 0}], key=f"kademe-rejects-yargitay-{year}")
    print(f"year {year}: 23,298 chunks, 0 failed")
    return {"ok": True}

bounds = []
for night in range(int(sys.argv[1])):
    start = time.time()
    ingest_year(2011)
    bounds.append([start, time.time()])
    time.sleep(0.05)
print(json.dumps(bounds))
'''

# (table, timestamp columns) that say when a row happened; all are shifted with their night.
TIMESTAMPS = {
    "flow_run": ("created", "updated", "start_time", "end_time", "expected_start_time", "next_scheduled_start_time"),
    "flow_run_state": ("created", "updated", "timestamp"),
    "task_run": ("created", "updated", "start_time", "end_time", "expected_start_time", "next_scheduled_start_time"),
    "task_run_state": ("created", "updated", "timestamp"),
    "log": ("created", "updated", "timestamp"),
    "artifact": ("created", "updated"),
    "events": ("occurred", "received", "created", "updated"),
    "event_resources": ("occurred", "created", "updated"),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.build_opener(urllib.request.ProxyHandler({})).open(f"{url}/health", timeout=2).read()
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"no Prefect server at {url} after {timeout} s")


def db_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if p.is_file())


def rows(db: Path) -> dict[str, int]:
    with sqlite3.connect(db, timeout=60) as con:
        return {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in TIMESTAMPS}


def shift_nights(db: Path, bounds: list[list[float]]) -> None:
    """Move every row of night k (by the wall-clock bounds the client recorded) ``len(bounds) - k`` days back."""
    n = len(bounds)
    starts = [lo for lo, _ in bounds] + [bounds[-1][1] + 30]  # night k: [its start, the next night's start)
    with sqlite3.connect(db, timeout=60) as con:
        for table, columns in TIMESTAMPS.items():
            have = {r[1] for r in con.execute(f"pragma table_info({table})")}
            for col in (c for c in columns if c in have):
                for k in range(n):  # rows move into the past, out of every later night's range
                    lo_s, hi_s = (datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S.%f") for t in starts[k:k + 2])
                    con.execute(f"update {table} set {col} = strftime('%Y-%m-%d %H:%M:%f', {col}, '-{n - k} days') "
                                f"|| substr({col}, 24) where {col} >= ? and {col} < ?", (lo_s, hi_s))
        con.commit()


def measure(mode: str, nights: int, retention_days: int, loop_seconds: int, root: Path) -> dict:
    home = root / mode
    home.mkdir(parents=True)
    db = home / "prefect.db"
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{db}",
           "PREFECT_SERVER_SERVICES_DB_VACUUM_LOOP_SECONDS": str(loop_seconds)}
    if mode == "retention":  # what deployments/local-stack.sh and compose.yaml set
        env.update(PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED="events,flow_runs",
                   PREFECT_SERVER_SERVICES_DB_VACUUM_RETENTION_PERIOD=f"P{retention_days}D",
                   PREFECT_SERVER_EVENTS_RETENTION_PERIOD=f"P{min(retention_days, 7)}D")
    log = open(home / "server.log", "wb")  # noqa: SIM115 - the server writes it until the finally below
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            wait_healthy(url)
        except RuntimeError:
            sys.stderr.write((home / "server.log").read_text()[-3000:])
            raise
        empty = db_bytes(db)
        with sqlite3.connect(db, timeout=60) as con:  # the migrated, empty database as VACUUM leaves it: the floor
            con.execute("vacuum into ?", (str(home / "empty.db"),))
        empty_vacuumed = (home / "empty.db").stat().st_size
        client_env = {k: v for k, v in env.items() if not k.startswith("PREFECT_SERVER_")}
        client_env["PREFECT_API_URL"] = url
        started = time.time()
        out = subprocess.run([sys.executable, "-c", NIGHT, str(nights)], env=client_env, capture_output=True, text=True,
                             check=True, timeout=1800)
        runs_seconds = time.time() - started
        bounds = json.loads(out.stdout.strip().splitlines()[-1])
        time.sleep(2)  # the event persister flushes in batches
        before = {"bytes": db_bytes(db), "rows": rows(db)}
        shift_nights(db, bounds)
        time.sleep(loop_seconds * 3 + 5)  # the vacuum loop's turn (its tasks run on the server's docket)
        after = {"bytes": db_bytes(db), "rows": rows(db)}
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
    with sqlite3.connect(db) as con:  # reclaim the space of deleted rows (the server is stopped)
        con.execute("vacuum")
        con.execute("pragma wal_checkpoint(truncate)")  # VACUUM in WAL mode writes the new file through the WAL
        biggest = con.execute("select name, sum(pgsize) from dbstat group by name order by 2 desc limit 8").fetchall()
    return {"biggest_after_sqlite_vacuum": dict(biggest), "mode": mode, "empty_bytes": empty, "empty_vacuumed_bytes": empty_vacuumed, "runs_seconds": round(runs_seconds, 1), "after_runs": before, "after_vacuum_service": after,
            "after_sqlite_vacuum_bytes": db_bytes(db)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nights", type=int, default=30)
    ap.add_argument("--retention-days", type=int, default=14)
    ap.add_argument("--loop-seconds", type=int, default=5, help="the vacuum service's loop (Prefect's default: 3600)")
    ap.add_argument("--out", type=Path, default=RESULTS / "prefect-db.json")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="prefect-db-") as tmp:
        results = [measure(mode, args.nights, args.retention_days, args.loop_seconds, Path(tmp))
                   for mode in ("defaults", "retention")]
    by = {r["mode"]: r for r in results}
    for r in results:
        print(f"{r['mode']:>10}: largest tables after VACUUM (bytes): {r['biggest_after_sqlite_vacuum']}")
        print(f"{r['mode']:>10}: migrated, empty {r['empty_bytes'] / 1e6:.2f} MB; {args.nights} nights {r['after_runs']['bytes'] / 1e6:.2f} MB "
              f"({r['after_runs']['rows']['flow_run']} flow runs, {r['after_runs']['rows']['log']} logs, "
              f"{r['after_runs']['rows']['events']} events); after the vacuum service "
              f"{r['after_vacuum_service']['bytes'] / 1e6:.2f} MB ({r['after_vacuum_service']['rows']['flow_run']} flow runs, "
              f"{r['after_vacuum_service']['rows']['log']} logs, {r['after_vacuum_service']['rows']['events']} events); "
              f"after SQLite VACUUM {r['after_sqlite_vacuum_bytes'] / 1e6:.2f} MB")
    ratio = by["retention"]["after_sqlite_vacuum_bytes"] / by["defaults"]["after_sqlite_vacuum_bytes"]
    grown = {m: r["after_sqlite_vacuum_bytes"] - r["empty_vacuumed_bytes"] for m, r in by.items()}
    print(f"retention/defaults after VACUUM: {ratio:.2f}; above the empty database: defaults {grown['defaults'] / 1e6:.2f} MB "
          f"(grows with every night), retention {grown['retention'] / 1e6:.2f} MB (the last {args.retention_days} nights): "
          f"{grown['retention'] / grown['defaults']:.2f}")
    out = {"machine": machine(), "nights": args.nights, "retention_days": args.retention_days,
           "loop_seconds": args.loop_seconds, "results": results, "ratio_after_vacuum": round(ratio, 3),
           "grown_bytes_after_vacuum": grown, "ratio_grown": round(grown["retention"] / grown["defaults"], 3)}
    if str(args.out) != "/dev/null":
        args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
