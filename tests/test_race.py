"""Two writers on one partition (issue 20): a local path and an S3 API server on loopback (moto).

Two real processes run the file stages of the same (corpus, year) at once. One of them is the
writer whose lease expired: it finishes its work but every commit comes second. The create-only
commits must leave exactly one committed checkpoint per stage, the loser must adopt the winner's
and leave none of its parts behind, and the collection built from the checkpoints must hold
exactly the points of one clean run.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from kademe.partition import Partition
from kademe.cli import main
from kademe.storage import open_storage
from tests.conftest import MODEL, decision, write_ndjson
from tests.test_reliability import quiet_env

FILE_STAGES = ["read", "clean", "chunk", "lexical", "embed"]
TUNING = ["--device", "cpu", "--model", MODEL, "--shard-size", "2", "--chunk-tokens", "64", "--chunk-overlap", "8"]
BUCKET = "kademe-race"


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> dict[str, str]:
    """moto's S3 server on 127.0.0.1 with one bucket; the environment that names it, the standard way."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}
    import boto3

    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                 aws_access_key_id="test", aws_secret_access_key="test").create_bucket(Bucket=BUCKET)
    yield env
    server.stop()


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("race")
    write_ndjson(folder / "yargitay_2011.ndjson", [decision(2011, n) for n in range(3)])
    return str(folder / "yargitay_{year}.ndjson")


def ingest(source: str, workdir: str, server: Path) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["ingest", "--source", source, "--years", "2011", "--workdir", workdir, "--collection", "race",
                     "--qdrant-url", f"path:{server}", *TUNING, "--json"])
    result = json.loads(out.getvalue())
    assert code == 0, result
    return result["years"]["2011"]


def cli_json(*argv: str) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*argv, "--json"])
    assert code == 0, out.getvalue()[-2000:]
    return json.loads(out.getvalue())


def test_a_remote_workdir_without_a_qdrant_server_is_a_one_line_error(capsys, source):
    code = main(["ingest", "--source", source, "--years", "2011", "--workdir", f"s3://{BUCKET}/x", "--model", MODEL])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1 and "--qdrant-url" in err, err


def collection(server: Path) -> dict[str, tuple[dict, np.ndarray]]:
    from qdrant_client import QdrantClient

    client = QdrantClient(path=str(server))
    try:
        points, offset = [], None
        while True:
            page, offset = client.scroll("race", limit=256, offset=offset, with_vectors=True, with_payload=True)
            points += page
            if offset is None:
                break
        return {str(p.id): (p.payload, np.asarray(next(iter(p.vector.values())) if isinstance(p.vector, dict) else p.vector))
                for p in points}
    finally:
        client.close()


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory, source, prefect_server) -> dict:
    root = tmp_path_factory.mktemp("clean-run")
    ingest(source, str(root / "work"), root / "qdrant")
    return collection(root / "qdrant")


@pytest.mark.slow
@pytest.mark.parametrize("where", ["local", "s3"])
def test_two_writers_on_one_partition_commit_once_and_the_loser_adopts(where, source, clean_run, s3, tmp_path, monkeypatch):
    workdir = str(tmp_path / "work") if where == "local" else f"s3://{BUCKET}/{tmp_path.name}"
    env = {**quiet_env(), **(s3 if where == "s3" else {}), "PYTHONPATH": os.pathsep.join(sys.path)}
    runs = []
    for name, extra in (("winner", []), ("loser", ["--lose"])):
        out = tmp_path / f"{name}.json"
        proc = subprocess.Popen([sys.executable, "-m", "tests.race_worker", source, workdir, "2011", str(out), *extra],
                                env={**env, "KADEME_CACHE_DIR": str(tmp_path / f"cache-{name}")},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        runs.append((proc, out))
    for proc, _ in runs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    winner, loser = (json.loads(out.read_text()) for _, out in runs)

    assert winner["keys"] == loser["keys"] and winner["chunks"] == loser["chunks"]
    assert winner["cached"] == [] and loser["cached"] == [], "both writers did every stage"
    done_lost = sorted(n.rsplit("/", 1)[1] for n in loser["lost"] if re.fullmatch(r".*/2011/[a-z]+-[0-9a-f]{12}\.json", n))
    assert done_lost == sorted(f"{stage}-{winner['keys'][stage][:12]}.json" for stage in FILE_STAGES), \
        "the loser lost every stage's commit"

    if where == "s3":
        for k, v in s3.items():
            monkeypatch.setenv(k, v)
    part = Partition(workdir, "yargitay", 2011)
    objects = open_storage(workdir).list(part.prefix)
    done_files = [n for n in objects if re.fullmatch(r"yargitay/2011/[a-z]+-[0-9a-f]{12}\.json", n)]
    assert sorted(n.split("/")[-1].split("-")[0] for n in done_files) == sorted(FILE_STAGES), "one commit per stage"
    assert part.collect(older_than=0) == [], "nothing left for the collector: the loser deleted its own parts"
    named = set()
    for n in done_files:
        named |= {f"{part.prefix}/{f}" for f in json.loads(open_storage(workdir).get(n))["files"]}
    assert {n for n in objects if n.endswith(".parquet")} == named, "the loser's parts are gone"

    y = ingest(source, workdir, tmp_path / "qdrant")
    assert y["cached"] == FILE_STAGES and y["verify"]["ok"]
    store = ["--workdir", workdir, "--collection", "race", "--qdrant-url", f"path:{tmp_path / 'qdrant'}"]
    assert cli_json("verify", "--years", "2011", *store)["ok"]  # from the workdir's manifest and the store alone
    assert cli_json("upgrade", "--years", "2011", *store, "--model", MODEL, "--device", "cpu")["years"]["2011"]["status"] == "completed"
    assert cli_json("search", "Hükmün BOZULMASINA", *store, "--model", MODEL, "--device", "cpu")["hits"]
    status = cli_json("status", "--years", "2011", *store)["partitions"]["yargitay/2011"]  # issue 20, point 5: any workdir
    assert set(status["committed"]) == {*FILE_STAGES, "upsert"} and status["points"] == status["chunks"] == len(clean_run)
    assert status["last_run"]["status"] == "completed"
    got = collection(tmp_path / "qdrant")
    assert got.keys() == clean_run.keys()
    for pid, (payload, vector) in got.items():
        assert payload == clean_run[pid][0]
        np.testing.assert_allclose(vector, clean_run[pid][1], atol=1e-5, rtol=0)
