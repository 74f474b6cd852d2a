"""Card-busy: does the CPU side keep a card busy? Whole ``kademe ingest`` processes against a stand-in card (issue 32).

    PYTHONPATH=src:. python bench/card.py [--chunks 50000] [--rounds 3] [--rates 1000,2500]        # the stand-in card
    PYTHONPATH=src:. python bench/card.py --real --model PATH [--chunks 50000]                       # the real card (CUDA events)
    PYTHONPATH=src:. python bench/card.py --real --fake-cuda --chunks 2000 --rounds 1               # that path, on the CPU

The stand-in card (``KADEME_FAULT_CARD_RATE``, ``kademe.embed.card.StandInCard``) costs no CPU: each
GPU-rung batch sleeps ``tokens / rate`` (the GIL released) and returns 1024-dim vectors. A rate in
chunks/s is turned into tokens/s with the corpus's mean chunk length (the real decisions cut by the
1024-dim test model's tokenizer, ``kademe.testing.derive_wide_model``): at N chunks/s the card takes
N of this corpus's chunks a second. It is planned like a card (the ladder's gpu rung, its token
budget from the stand-in's 16 GiB free), and fed batches of up to ``--batch-size`` rows (default
128; the CPU device's default is 32): the batches it was fed are reported.

Every GPU-rung batch's busy seconds go to a log (``KADEME_FAULT_CARD_LOG``, ``kademe.embed.busy``):
the stand-in's sleeping seconds, or on a real card CUDA events around each encode. Reported, per
rate, as medians over interleaved rounds:

    card-busy of the year    = card seconds / (the year's seconds - its index build)
                                (the flow's start to the year's end: read ... verify, index left out)
    card-busy of the process = card seconds / the process's wall time (Popen to exit)
    ... nominal              = the same with the card's nominal seconds (tokens / rate): on a loaded
                                machine a sleep wakes late, and the late part is not the card's
    card-busy between batches = card seconds / (the last batch's end - the first batch's start)
    first batch after clean  = the first batch's start - the clean stage's commit (its done file's mtime):
                                the wait the chunk stage puts before the card (issue 32 point 2: ~1 s)
    CPU use                  = the process's CPU seconds / (wall x cores): near 1, the cores bound it

plus a model-free round (the stand-in at 10^9 tokens/s: no card time), whose chunks/s is
chunks / (the year's seconds - index) and chunks / the process's wall.

Targets on 2 cores, 50,000 chunks, >= 3 rounds (issue 32 point 5): card-busy of the year >= 0.92 at
1,000 chunks/s; at 2,500 reported with what bounds it. Results: bench/results/card.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "src"), str(Path(__file__).resolve().parent)]

from _machine import machine, versions  # noqa: E402

REAL = Path("/work/shared/corpus/real-decisions.ndjson")
YEAR = 2020
RESULTS = Path(__file__).resolve().parent / "results"
FREE_RATE = 1e9  # tokens a second: a card that takes no time (the model-free round)


def build_corpus(folder: Path, want_chunks: int, model: Path) -> tuple[str, int, float]:
    """``real_<YEAR>.ndjson``: the real decisions repeated with fresh ids until >= ``want_chunks`` chunks.

    Returns:
        The source template, the chunks it cuts into, and their mean length in tokens (special tokens included).
    """
    from kademe.clean import clean_text
    from kademe.models import load_tokenizer, max_seq_length
    from kademe.split import split_texts

    records = [json.loads(line) for line in REAL.read_text(encoding="utf-8").splitlines() if line.strip()]
    cut = split_texts([clean_text(r["text"]) for r in records], load_tokenizer(model), max_seq_length(model), 32)
    if want_chunks < sum(len(c) for c in cut):  # a small run: the first decisions only
        keep = next(i + 1 for i in range(len(cut)) if sum(len(c) for c in cut[:i + 1]) >= want_chunks)
        records, cut = records[:keep], cut[:keep]
    per_pass, tokens = sum(len(c) for c in cut), sum(k for doc in cut for _, k in doc)
    passes = -(-want_chunks // per_pass)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"real_{YEAR}.ndjson", "w", encoding="utf-8") as f:
        for k in range(passes):
            for r in records:
                f.write(json.dumps({**r, "id": f"{r['id']}~{k}", "year": YEAR}, ensure_ascii=False) + "\n")
    return str(folder / "real_{year}.ndjson"), passes * per_pass, tokens / per_pass


def child_env(prefect_home: Path, extra: dict[str, str]) -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KADEME_FAULT_")}
    return {**env, "PREFECT_HOME": str(prefect_home), "PYTHONPATH": os.pathsep.join([src, str(Path(src).parent)]),
            "HF_HUB_OFFLINE": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", **extra}


def ingest(root: Path, source: str, model: Path, home: Path, env: dict[str, str], batch_size: int, shard_size: int,
           device: str = "auto") -> dict:
    """One whole ``kademe ingest`` process under ``env``; its card log read back into card-busy figures."""
    work, log = root / "work", root / "card.ndjson"
    log.unlink(missing_ok=True)
    kademe = shutil.which("kademe")
    cmd = [kademe, "ingest"] if kademe else [sys.executable, "-m", "kademe.cli", "ingest"]
    cmd += ["--source", source, "--years", str(YEAR), "--workdir", str(work), "--collection", "card", "--model", str(model),
            "--device", device, "--batch-size", str(batch_size), "--shard-size", str(shard_size), "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=child_env(home, {**env, "KADEME_FAULT_CARD_LOG": str(log)}))
    wall = time.time() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    year = json.loads(proc.stdout)["years"][str(YEAR)]
    cleaned = min((p.stat().st_mtime for p in work.glob(f"*/{YEAR}/clean-*.json")), default=None)
    shutil.rmtree(work, ignore_errors=True)
    out = {**card_busy(log, wall, year, cleaned), "cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)}
    if rate := float(env.get("KADEME_FAULT_CARD_RATE", 0) or 0):  # the card's own time: a loaded machine wakes a sleep late
        out["card_nominal_s"] = out.pop("tokens") / rate
        flow = out["year_s"] - out["index_s"]
        out["busy_year_nominal"] = out["card_nominal_s"] / flow if flow > 0 else None
    out.pop("tokens", None)
    return out


def card_busy(log: Path, wall: float, year: dict, cleaned: float | None) -> dict:
    """Card-busy of the year, the process and between the first and last batch, from a card log and the year's summary."""
    from kademe.embed.busy import read_card_log

    batches = read_card_log(log)
    card = sum(b["seconds"] for b in batches)
    stages = year["stages"]
    flow = year["seconds"] - stages.get("index", 0.0)
    first = min((b["start"] for b in batches), default=None)
    span = max((b["start"] + b["seconds"] for b in batches), default=0.0) - (first or 0.0)
    rows = [b["rows"] for b in batches]
    return {"wall_s": wall, "year_s": year["seconds"], "index_s": stages.get("index", 0.0), "card_s": card,
            "busy_year": card / flow if flow > 0 else None, "busy_process": card / wall,
            "busy_between_batches": card / span if span > 0 else None,
            "first_batch_after_clean_s": first - cleaned if first and cleaned else None,
            "batches": {"count": len(batches), "mean_rows": statistics.mean(rows) if rows else 0, "max_rows": max(rows, default=0),
                        "mean_tokens": statistics.mean(b["tokens"] for b in batches) if batches else 0,
                        "padding": sum(b["padded"] for b in batches) / max(sum(b["tokens"] for b in batches), 1)},
            "chunks": year["counts"]["chunks"], "stages_s": stages, "device": year.get("device"),
            "tokens": sum(b["tokens"] for b in batches)}


def prime(root: Path, model: Path, home: Path, args) -> None:
    """An existing Prefect home: its database made by a first, tiny run."""
    tiny, _, _ = build_corpus(root / "tiny", 1, model)
    ingest(root / "prime", tiny, model, home, {"KADEME_FAULT_CARD_RATE": str(FREE_RATE)}, args.batch_size, args.shard_size)


def stand_in(args, root: Path, model: Path, info: dict) -> dict:
    """Interleaved rounds: the model-free round, then each rate, on an existing Prefect home."""
    source, n, mean_tokens = build_corpus(root / "data", args.chunks, model)
    home = root / "prefect-home"
    prime(root, model, home, args)
    rates = [float(r) for r in args.rates.split(",")]
    modes = {"free": FREE_RATE, **{f"{r:g}": r * mean_tokens for r in rates}}  # chunks/s -> tokens/s of this corpus
    print(f"card-busy: {n} chunks of {mean_tokens:.1f} tokens on average; stand-in rates (tokens/s) "
          f"{ {k: round(v) for k, v in modes.items()} }; batch {args.batch_size}, shard {args.shard_size}; load {os.getloadavg()}",
          flush=True)
    runs: dict[str, list[dict]] = {mode: [] for mode in modes}
    for rnd in range(args.rounds):
        for mode, rate in modes.items():  # interleaved: drift on the shared machine hits every rate alike
            r = ingest(root / f"{mode}-{rnd}", source, model, home, {"KADEME_FAULT_CARD_RATE": str(rate)}, args.batch_size,
                       args.shard_size)
            r["loadavg"] = os.getloadavg()[0]
            r["cpu_use"] = r["cpu_s"] / (r["wall_s"] * (os.cpu_count() or 1))
            runs[mode].append(r)
            print(f"round {rnd} {mode:>5s}: wall {r['wall_s']:.1f}s year {r['year_s'] - r['index_s']:.1f}s card {r['card_s']:.1f}s "
                  f"busy year {r['busy_year']:.2f} process {r['busy_process']:.2f} between {r['busy_between_batches'] or 0:.2f}; "
                  f"first batch {r['first_batch_after_clean_s'] or 0:.2f}s after clean; cpu use {r['cpu_use']:.2f}; "
                  f"stages {json.dumps({k: round(v, 1) for k, v in r['stages_s'].items()})}; load {r['loadavg']:.1f}", flush=True)
    return {"mode": "stand-in", "chunks": n, "mean_tokens_per_chunk": mean_tokens, "rates_tokens_per_s": modes,
            "median": {mode: summarize(rs) for mode, rs in runs.items()}, "runs": runs}


def real_card(args, root: Path, model: Path, info: dict) -> dict:
    """The real card (or, with ``--fake-cuda``, the GPU rungs on the CPU): card-busy from CUDA events (the wall clock when faked)."""
    source, n, mean_tokens = build_corpus(root / "data", args.chunks, model)
    home = root / "prefect-home"
    env = {"KADEME_FAULT_FAKE_CUDA": "1"} if args.fake_cuda else {}
    prime(root, model, home, args)
    runs = []
    for rnd in range(args.rounds):
        r = ingest(root / f"real-{rnd}", source, model, home, env, args.batch_size, args.shard_size,
                   device="auto" if args.fake_cuda else "cuda")
        r["loadavg"] = os.getloadavg()[0]
        runs.append(r)
        print(f"round {rnd} real card ({r['device']}): wall {r['wall_s']:.1f}s card {r['card_s']:.1f}s busy year {r['busy_year']:.2f} "
              f"process {r['busy_process']:.2f}; {r['chunks'] / max(r['card_s'], 1e-9):.0f} chunks per card-second", flush=True)
    return {"mode": "real-card", "fake_cuda": args.fake_cuda, "chunks": n, "mean_tokens_per_chunk": mean_tokens,
            "median": {"real": summarize(runs)}, "runs": {"real": runs}}


def measure_real_card(model: Path, chunks: int, rounds: int = 1, batch_size: int = 128, shard_size: int = 512,
                      fake_cuda: bool = False) -> dict:
    """``real_card`` for another script (``bench/throughput.py --gpu``): card-busy of whole runs on the card, from CUDA events."""
    args = argparse.Namespace(chunks=chunks, rounds=rounds, batch_size=batch_size, shard_size=shard_size, fake_cuda=fake_cuda)
    root = Path(tempfile.mkdtemp(prefix="kademe-card-"))
    try:
        return real_card(args, root, model, {})
    finally:
        shutil.rmtree(root, ignore_errors=True)


def summarize(rs: list[dict]) -> dict:
    def med(key):
        values = [r[key] for r in rs if r.get(key) is not None]
        return statistics.median(values) if values else None

    out = {k: med(k) for k in ("wall_s", "year_s", "index_s", "card_s", "card_nominal_s", "busy_year", "busy_year_nominal",
                               "busy_process", "busy_between_batches",
                               "first_batch_after_clean_s", "cpu_s", "cpu_use", "loadavg")}
    out["chunks_per_s_year"] = rs[0]["chunks"] / (out["year_s"] - out["index_s"])
    out["chunks_per_s_process"] = rs[0]["chunks"] / out["wall_s"]
    out["stages_s"] = {k: statistics.median(r["stages_s"].get(k, 0.0) for r in rs) for k in rs[0]["stages_s"]}
    out["batches"] = rs[0]["batches"]
    out["n"] = len(rs)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chunks", type=int, default=50_000, help="at least this many chunks in the year")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rates", default="1000,2500", help="stand-in card rates, chunks/s of this corpus")
    ap.add_argument("--batch-size", type=int, default=128, help="most rows in a card batch (kademe's --batch-size)")
    ap.add_argument("--shard-size", type=int, default=512)
    ap.add_argument("--real", action="store_true", help="the real card: card-busy from CUDA events (needs CUDA, or --fake-cuda)")
    ap.add_argument("--fake-cuda", action="store_true", help="with --real: the GPU rungs on the CPU (KADEME_FAULT_FAKE_CUDA)")
    ap.add_argument("--model", help="model folder (default: the 1024-dim MiniLM derived offline)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    from kademe.testing import derive_wide_model

    root = Path(tempfile.mkdtemp(prefix="kademe-card-"))
    model = Path(args.model) if args.model else derive_wide_model(root / "minilm-wide")
    info = {"machine": machine(), "versions": versions(("torch", "sentence-transformers", "pyarrow", "qdrant-edge-py", "prefect"))}
    try:
        result = (real_card if args.real else stand_in)(args, root, model, info)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result = {**info, **result, "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
              "rounds": args.rounds, "batch_size": args.batch_size, "shard_size": args.shard_size,
              "loadavg_end": [round(x, 2) for x in os.getloadavg()],
              "targets": {"busy_year_at_1000": 0.92, "model_free_chunks_per_s_existing_home": 4000}}
    print(json.dumps(result["median"], indent=1, default=str))
    out = args.out or RESULTS / ("card-gpu.json" if args.real and not args.fake_cuda else "card.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
