"""A year that grows (issue 21): a cold ingest, then the same year with 1 % appended and 0.5 % edited.

Each round ingests version 1 of the year into a fresh workdir (cold), then version 2 into the
same workdir (incremental), both as the user runs them: ``kademe ingest ... --json`` in a
subprocess, timed on the wall clock (Python start-up, Prefect's temporary server, model load, the
index build included). Rounds alternate cold and incremental; medians are reported side by side
with the incremental run's embed work as a share of the cold run's (chunks encoded).

``--words N`` keeps the first N words of each generated decision (about one chunk each at 120),
so that a 1,000-decision year fits a small shared CPU box; without it a decision is ~11 chunks.

Example:
    python bench/incremental.py --docs 1000 --repeat 3
    python bench/incremental.py --docs 1000 --words 120 --repeat 3    # a shared 2-core box
    python bench/incremental.py --docs 40 --repeat 1 --out /tmp/inc.json

Writes ``bench/results/incremental.json`` (or ``--out``) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import machine, versions  # bench/_machine.py

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
TARGET_EMBED_SHARE = 0.03  # incremental chunks embedded <= 3 % of the cold run's (issue 21)
ENV = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def write_versions(root: Path, docs: int, year: int, seed: int, words: int | None = None) -> tuple[str, str]:
    """Version 1: ``docs`` decisions. Version 2: the same, 0.5 % of them edited, 1 % more appended."""
    from kademe.testing.sample import make_decision

    def decision(n: int) -> dict:
        d = make_decision(year, n, seed)
        return {**d, "text": " ".join(d["text"].split(" ")[:words])} if words else d

    v1 = [decision(n) for n in range(docs)]
    v2 = [dict(d) for d in v1]
    step = max(1, docs // max(1, round(docs * 0.005)))
    for n in range(step // 2, docs, step):  # 0.5 %: a corrected sentence at the end of the text
        v2[n]["text"] = v2[n]["text"] + "\n\nDÜZELTME: Karardaki maddi hata düzeltilmiştir."
    v2 += [decision(docs + n) for n in range(max(1, round(docs * 0.01)))]
    paths = []
    for name, records in (("v1", v1), ("v2", v2)):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"yargitay_{year}.ndjson", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        paths.append(str(folder / "yargitay_{year}.ndjson"))
    return paths[0], paths[1]


def ingest(source: str, workdir: Path, year: int) -> tuple[float, dict, list[str]]:
    cmd = [sys.executable, "-m", "kademe.cli", "ingest", "--source", source, "--years", str(year), "--workdir", str(workdir),
           "--collection", "bench-inc", "--model", MODEL, "--device", "cpu", "--json"]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **ENV})
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{shlex.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return wall, json.loads(proc.stdout)["years"][str(year)], cmd


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--year", type=int, default=2024)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--words", type=int, help="keep the first N words of each decision (default: all)")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "incremental.json")
    a = p.parse_args()
    info = machine()
    root = Path(tempfile.mkdtemp(prefix="kademe-bench-inc-"))
    v1, v2 = write_versions(root, a.docs, a.year, a.seed, a.words)
    rounds = []
    for r in range(a.repeat):
        work = root / f"round-{r}"
        cold_wall, cold, cmd = ingest(v1, work, a.year)
        inc_wall, inc, _ = ingest(v2, work, a.year)
        assert inc["status"] == "completed" and inc["verify"]["ok"], inc
        rounds.append({"cold": {"wall_s": round(cold_wall, 2), "chunks": cold["counts"]["chunks"], "changes": cold["changes"],
                                "stages": cold["stages"]},
                       "incremental": {"wall_s": round(inc_wall, 2), "chunks": inc["counts"]["chunks"], "changes": inc["changes"],
                                       "stages": inc["stages"]}})
        print(f"round {r + 1}: cold {cold_wall:.1f} s ({cold['changes']['chunks']['embedded']} chunks embedded), "
              f"incremental {inc_wall:.1f} s ({inc['changes']['chunks']['embedded']} embedded, "
              f"{inc['changes']['chunks']['reused']} reused)", file=sys.stderr)
    med = lambda kind, f: statistics.median(f(x[kind]) for x in rounds)  # noqa: E731
    cold_embedded = med("cold", lambda x: x["changes"]["chunks"]["embedded"])
    inc_embedded = med("incremental", lambda x: x["changes"]["chunks"]["embedded"])
    result = {
        "command": " ".join([sys.executable, *sys.argv]), "ingest_command": shlex.join(cmd), "rounds": rounds,
        "words": a.words, "docs": {"v1": a.docs, "appended": max(1, round(a.docs * 0.01)), "edited": len(range(max(1, a.docs // max(1, round(a.docs * 0.005))) // 2, a.docs, max(1, a.docs // max(1, round(a.docs * 0.005)))))},
        "median": {"cold_wall_s": med("cold", lambda x: x["wall_s"]), "incremental_wall_s": med("incremental", lambda x: x["wall_s"]),
                   "cold_embedded": cold_embedded, "incremental_embedded": inc_embedded,
                   "incremental_stages_s": {k: med("incremental", lambda x, k=k: x["stages"][k]) for k in rounds[0]["incremental"]["stages"]},
                   "cold_stages_s": {k: med("cold", lambda x, k=k: x["stages"][k]) for k in rounds[0]["cold"]["stages"]}},
        "embed_share": round(inc_embedded / cold_embedded, 4),
        "wall_ratio": round(med("incremental", lambda x: x["wall_s"]) / med("cold", lambda x: x["wall_s"]), 3),
        "target_embed_share": TARGET_EMBED_SHARE, "n": a.repeat,
        "machine": info, "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "versions": versions(("torch", "sentence-transformers", "qdrant-edge-py", "prefect", "kademe")),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    m = result["median"]
    print(f"\n{a.docs} decisions (+{result['docs']['appended']} appended, {result['docs']['edited']} edited), N={a.repeat}, medians:")
    print(f"  chunks embedded  cold {cold_embedded:.0f}  incremental {inc_embedded:.0f}  share {result['embed_share']:.2%} "
          f"(target <= {TARGET_EMBED_SHARE:.0%})")
    print(f"  wall             cold {m['cold_wall_s']:.1f} s  incremental {m['incremental_wall_s']:.1f} s  ratio {result['wall_ratio']:.3f}")
    print("  incremental stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in m["incremental_stages_s"].items()))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
