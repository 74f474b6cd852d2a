"""A year into an ``s3://`` workdir (moto's S3 server on loopback) against the same year on a local path (issue 20).

Each round runs, interleaved: local cold, s3 cold, local warm, s3 warm, and s3 warm from a fresh
host (its local cache of parts emptied first). Every run is ``kademe ingest ... --json`` in a
subprocess with the same store (``--qdrant-url path:DIR``, qdrant-client's local mode, so only
the workdir differs). Reported per kind, medians over the rounds:

- model-free seconds: the year's seconds minus the encoder's (``encode_seconds`` of the embed
  checkpoint): what the workdir can make slower;
- wall seconds of the whole command, for the warm reruns (every stage must be a hit).

Targets: s3 cold model-free <= 1.2 x local; s3 warm wall <= 1.5 x local warm.

Example:
    python bench/objstore.py --docs 100 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import machine, versions  # bench/_machine.py

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
ENV = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
BUCKET = "kademe-bench"
STAGES = ["read", "clean", "chunk", "lexical", "embed", "upsert"]


def start_s3() -> tuple[object, dict[str, str]]:
    from moto.server import ThreadedMotoServer
    import boto3

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": "bench",
           "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"}
    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1", aws_access_key_id="bench",
                 aws_secret_access_key="bench").create_bucket(Bucket=BUCKET)
    return server, env


def run(source: str, workdir: str, store: Path, year: int, env: dict) -> tuple[float, dict, list[str]]:
    cmd = [sys.executable, "-m", "kademe.cli", "ingest", "--source", source, "--years", str(year), "--workdir", workdir,
           "--collection", "bench", "--qdrant-url", f"path:{store}", "--model", MODEL, "--device", "cpu", "--json"]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **ENV, **env})
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return wall, json.loads(proc.stdout)["years"][str(year)], cmd


def encode_seconds(workdir: str, year: int) -> float:
    from kademe.partition import Partition

    return float(Partition(workdir, "yargitay", year).manifest()["embed"].get("encode_seconds", 0.0))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=100)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--year", type=int, default=2024)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "objstore.json")
    a = p.parse_args()
    info = machine()
    server, s3env = start_s3()
    os.environ.update(s3env)  # this process reads the s3 manifest too
    root = Path(tempfile.mkdtemp(prefix="kademe-bench-obj-"))
    from kademe.testing.sample import write_corpus

    write_corpus(str(root / "data" / f"yargitay_{a.year}.ndjson"), a.year, a.docs, seed=0, messy=False)
    source = str(root / "data" / "yargitay_{year}.ndjson")
    rounds = []
    try:
        for r in range(a.repeat):
            local, remote = str(root / f"local-{r}"), f"s3://{BUCKET}/round-{r}"
            cache = root / f"cache-{r}"
            env = {"KADEME_CACHE_DIR": str(cache)}
            out: dict = {}
            for kind, workdir in (("local-cold", local), ("s3-cold", remote), ("local-warm", local), ("s3-warm", remote),
                                  ("s3-warm-fresh-host", remote)):
                if kind == "s3-warm-fresh-host":
                    shutil.rmtree(cache, ignore_errors=True)
                wall, y, cmd = run(source, workdir, root / f"store-{kind.split('-')[0]}-{r}", a.year, env)
                enc = encode_seconds(workdir, a.year) if kind.endswith("cold") else 0.0
                out[kind] = {"wall_s": round(wall, 3), "seconds": y["seconds"], "model_free_s": round(y["seconds"] - enc, 3),
                             "encode_s": enc, "cached": y["cached"], "stages": y["stages"], "chunks": y["counts"]["chunks"]}
                if kind.endswith("warm") or kind.endswith("host"):
                    assert y["cached"] == STAGES, (kind, y["cached"])
                print(f"round {r + 1} {kind}: wall {wall:.1f} s, year {y['seconds']:.1f} s, model-free {out[kind]['model_free_s']:.1f} s",
                      file=sys.stderr)
            rounds.append(out)
    finally:
        server.stop()
    med = {k: {f: statistics.median(x[k][f] for x in rounds) for f in ("wall_s", "seconds", "model_free_s")} for k in rounds[0]}
    result = {
        "command": " ".join([sys.executable, *sys.argv]), "ingest_command": " ".join(cmd), "n": a.repeat, "docs": a.docs,
        "chunks": rounds[0]["local-cold"]["chunks"], "rounds": rounds, "median": med,
        "ratio_cold_model_free": round(med["s3-cold"]["model_free_s"] / med["local-cold"]["model_free_s"], 3),
        "ratio_warm_wall": round(med["s3-warm"]["wall_s"] / med["local-warm"]["wall_s"], 3),
        "ratio_warm_fresh_host_wall": round(med["s3-warm-fresh-host"]["wall_s"] / med["local-warm"]["wall_s"], 3),
        "targets": {"ratio_cold_model_free": 1.2, "ratio_warm_wall": 1.5},
        "machine": info, "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "versions": versions(("obstore", "moto", "qdrant-client", "prefect", "kademe")),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2))
    print(f"\n{a.docs} decisions, {result['chunks']} chunks, N={a.repeat}, medians (s3 = moto on loopback):")
    for k, v in med.items():
        print(f"  {k:20s} wall {v['wall_s']:6.1f} s  year {v['seconds']:6.1f} s  model-free {v['model_free_s']:6.1f} s")
    print(f"  s3/local cold model-free {result['ratio_cold_model_free']:.3f} (target <= 1.2); warm wall {result['ratio_warm_wall']:.3f}, "
          f"from a fresh host {result['ratio_warm_fresh_host_wall']:.3f} (target <= 1.5)")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
