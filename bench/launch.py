"""The fixed cost of a run: whole ``kademe ingest`` processes, one code tree against another (issue 31, point 4).

Each round runs, interleaved, a bare process (imports torch and sentence-transformers, loads the
packaged model, encodes the tiny year's texts: what any embedding program pays) and, for each code
tree, ``kademe ingest`` of the bundled sample warm (every stage from its checkpoint: the fixed cost
alone) and of a tiny year cold (3 decisions: the model's load and a whole flow). All use one
existing Prefect home (no ``PREFECT_API_URL``: the temporary server is started each time).

    python bench/launch.py --old /tmp/old-tree --rounds 3        # old = a copy of main (git archive)

Prints, per mode, the median wall time and the median of (kademe - bare) paired by round, and the
ratio new/old; writes ``bench/results/launch.json``.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bench._machine import machine, versions  # noqa: E402

BARE = """
import json, sys
import torch
from sentence_transformers import SentenceTransformer
from kademe.models import resolve_model
model = SentenceTransformer(str(resolve_model("sentence-transformers/all-MiniLM-L6-v2")), device="cpu")
texts = [json.loads(line)["text"] for line in open(sys.argv[1], encoding="utf-8")]
model.encode(texts, batch_size=32)
"""


def env_for(tree: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_", "PREFECT_SERVER_DATABASE", "KADEME_FAULT_"))}
    env.update(PREFECT_HOME=str(home), PYTHONPATH=os.pathsep.join([str(tree / "src"), str(tree)]), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    return env


def timed(cmd: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    tree = env["PYTHONPATH"].split(os.pathsep)[1]  # in the tree: ``python -m`` puts the working directory first
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800, cwd=tree)
    took = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return took


def ingest(source: str, years: list[str], workdir: Path) -> list[str]:
    return [sys.executable, "-m", "kademe.cli", "ingest", "--source", source, "--years", *years, "--workdir", str(workdir),
            "--collection", "bench", "--device", "cpu"]


def tiny_year(path: Path) -> None:
    """Three short decisions (11 chunks): a cold run is the model's load and a whole flow, little encoding."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for n, topic in enumerate(("kıdem tazminatı", "tapu iptali", "boşanma")):
            body = " ".join(f"Dosyadaki {n}. delil ve {topic} konusundaki {i}. beyan incelendi." for i in range(5))
            f.write(json.dumps({"id": f"2011-HD-{n:04d}", "text": f"Davacı {n} numaralı dosyada {topic} talep etmiştir. {body}\n\n"
                                "SONUÇ: Hükmün BOZULMASINA oybirliğiyle karar verildi.", "date": f"2011-0{1 + n}-1{n}",
                                "chamber": f"{1 + n}. Hukuk Dairesi", "esas_no": f"2010/{1000 + n}", "karar_no": f"2011/{2000 + n}"},
                               ensure_ascii=False) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", type=Path, required=True, help="the code tree to compare with (its src/ and flows/)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "launch.json")
    args = ap.parse_args()

    from flows.demo import copy_sample_corpus

    tmp = Path(tempfile.mkdtemp(prefix="kademe-launch-"))
    home, sample = tmp / "home", tmp / "sample"
    copy_sample_corpus(sample)
    tiny_year(tmp / "tiny" / "yargitay_2011.ndjson")
    trees = {"old": args.old.resolve(), "new": ROOT}
    sample_src, tiny_src = str(sample / "yargitay_{year}.ndjson"), str(tmp / "tiny" / "yargitay_{year}.ndjson")
    # The Prefect home's database and the warm sample workdir, once (both trees read the same checkpoints)
    timed(ingest(sample_src, ["2021", "2022", "2023"], tmp / "warm-new"), env_for(ROOT, home))
    shutil.copytree(tmp / "warm-new", tmp / "warm-old")
    runs: dict[str, list[float]] = {"bare": [], **{f"{m}-{t}": [] for t in trees for m in ("warm", "cold")}}
    for r in range(args.rounds):
        runs["bare"].append(timed([sys.executable, "-c", BARE, str(tmp / "tiny" / "yargitay_2011.ndjson")], env_for(ROOT, home)))
        for name, tree in (trees.items() if r % 2 == 0 else reversed(trees.items())):  # interleaved, order alternated
            runs[f"warm-{name}"].append(timed(ingest(sample_src, ["2021", "2022", "2023"], tmp / f"warm-{name}"), env_for(tree, home)))
            cold = tmp / f"cold-{name}-{r}"
            runs[f"cold-{name}"].append(timed(ingest(tiny_src, ["2011"], cold), env_for(tree, home)))
            shutil.rmtree(cold, ignore_errors=True)
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f}s" for k, v in runs.items()), flush=True)

    med = {k: round(statistics.median(v), 2) for k, v in runs.items()}
    over = {k: round(statistics.median(x - b for x, b in zip(v, runs["bare"])), 2) for k, v in runs.items() if k != "bare"}
    ratio = {m: round(med[f"{m}-new"] / med[f"{m}-old"], 3) for m in ("warm", "cold")}
    result = {"rounds": args.rounds, "runs_s": runs, "median_s": med, "over_bare_s": over, "new_over_old": ratio,
              "machine": machine(), "versions": versions(("prefect", "torch", "sentence-transformers", "uvicorn"))}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for k in runs:
        print(f"{k:9s} median {med[k]:6.1f} s" + (f"  over bare {over[k]:+.1f} s" if k in over else ""))
    print(f"new/old: warm {ratio['warm']:.3f}x, cold {ratio['cold']:.3f}x (N={args.rounds})")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
