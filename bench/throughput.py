"""Throughput of one year on the user's clock, and stage by stage: is everything around the model fast enough for a GPU?

    PYTHONPATH=src:. python bench/throughput.py [--chunks 50000] [--rounds 3] --layers 0   # the user's clock
    PYTHONPATH=src:. python bench/throughput.py --stages [--chunks 50000] [--rounds 3] [--profile]
    PYTHONPATH=src:. python bench/throughput.py --gpu --model PATH [--dtype auto] [--card-chunks 50000]
    PYTHONPATH=src:. python bench/throughput.py --gpu --fake-cuda --card-chunks 2000    # that path's card-busy part, on the CPU

The user's clock (the default, issue 22): each round runs, interleaved, a bare ``encode`` process
(import sentence-transformers, load the model, ``SentenceTransformer.encode`` of the year's chunk
texts, exit) and the whole ``kademe ingest`` process twice: with a fresh Prefect home (no database
yet) and with an existing one. Each wall time is the process's, from ``Popen`` to exit. Beside it:
the year's stage seconds from the ``--json`` summary, and ``outside_flow_s`` = wall - the year's
seconds (imports, Prefect's server, model load, the orchestration around the year, exit; the year's
seconds include its index build, which ``ingest-years`` runs right after the year). Reported:

    ratio = kademe wall / bare encode wall          (issue 22, point 5: <= 1.05 with a real model)
    model-free chunks/s = chunks / (kademe wall - index - bare encode wall)   (point 2: >= 2,000)
    embed own CPU / encoder = the embed stage thread's CPU outside the encoder (reading, planning,
        bookkeeping, shard writes; ``own_cpu_seconds`` in its checkpoint) / the encoder's time (point 4:
        <= 5 %); the wall-time ratio beside it (embed stage / encoder - 1) also holds the waiting for
        the two cores and the GIL that the upsert and lexical stages running beside it take.

The rest of this docstring is the stage-level mode (``--stages``).

The corpus is /work/shared/corpus/real-decisions.ndjson (297 real decisions) repeated with fresh
ids until it cuts into at least ``--chunks`` chunks, all in one year. The model is a
1024-dimension test model derived offline from the packaged MiniLM (its first layer, a seeded
Dense 384 -> 1024 projection, Normalize: ``kademe.testing.derive_wide_model``), so vectors are as
wide as bge-m3's while the encoder stays cheap.

Each round runs the year twice on fresh work folders, interleaved: ``sequential`` (embed, then
upsert) and ``overlap`` (embed and upsert at once through a ``ShardFeed``, as the flow does). It
times read, clean, chunk, lexical, embed, upsert, verify and the index build, and reports

    model-free chunks/s = chunks / (wall - time inside the encoder - HNSW index build)

Targets on 2 cores: model-free >= 2,000 chunks/s; with overlap, wall <= 1.1 x max(encoder
time, model-free time). ``--profile`` runs one sequential pass under cProfile and prints the top
costs per stage. ``--gpu --model PATH`` times only the encoder on the card (tokens/s and
chunks/s for the chosen ``--dtype``), e.g. with ``kademe.testing.derive_bge_m3_standin``, and then
card-busy (issue 32) of whole ``kademe ingest`` processes on the card, as ``bench/card.py`` measures
it against its stand-in card, with the busy seconds from CUDA events around each encode
(``KADEME_FAULT_CARD_LOG``, ``kademe.embed.busy.CudaClock``): card-busy of the year and of the
process, and the batches the card was fed. ``--fake-cuda`` runs that part with the GPU rungs on the
CPU (the wall clock times them), so the path is exercised without a card.
Results go to bench/results/throughput.json (or throughput-gpu.json).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "src"), str(Path(__file__).resolve().parent)]

from _machine import machine, versions  # noqa: E402

from kademe.settings import Settings  # noqa: E402

REAL = Path("/work/shared/corpus/real-decisions.ndjson")
YEAR = 2020
RESULTS = Path(__file__).resolve().parent / "results"
STAGES = ("read", "clean", "chunk", "lexical", "embed", "upsert", "verify", "index")


def build_corpus(folder: Path, want_chunks: int, model: Path) -> tuple[str, int]:
    """Write ``real_<YEAR>.ndjson``: the real decisions repeated with fresh ids until >= ``want_chunks`` chunks."""
    from kademe.split import split_texts
    from kademe.clean import clean_text
    from kademe.models import load_tokenizer, max_seq_length

    records = [json.loads(line) for line in REAL.read_text(encoding="utf-8").splitlines() if line.strip()]
    tok = load_tokenizer(model)
    per_pass = sum(len(c) for c in split_texts([clean_text(r["text"]) for r in records], tok, max_seq_length(model), 32))
    passes = -(-want_chunks // per_pass)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"real_{YEAR}.ndjson", "w", encoding="utf-8") as f:
        for k in range(passes):
            for r in records:
                f.write(json.dumps({**r, "id": f"{r['id']}~{k}", "year": YEAR}, ensure_ascii=False) + "\n")
    return str(folder / "real_{year}.ndjson"), passes * per_pass


def run_year(s: Settings, overlap: bool, profile: dict[str, cProfile.Profile] | None = None) -> dict:
    """One year through every stage as the flow runs them; seconds per stage, encoder and wall time."""
    from kademe.chunk import chunk_texts
    from kademe.clean import clean_records
    from kademe.embed.feed import ShardFeed
    from kademe.embed.stage import embed_chunks
    from kademe.sources import read_year
    from kademe.lexical.stage import sparse_chunks
    from kademe.store import open_store
    from kademe.upsert import upsert_points
    from kademe.verify import verify_partition

    t: dict[str, float] = {}

    def timed(name, fn, *args, **kw):
        prof = profile.setdefault(name, cProfile.Profile()) if profile is not None else None
        start = time.perf_counter()
        if prof:
            prof.enable()
        try:
            return fn(*args, **kw)
        finally:
            if prof:
                prof.disable()
            t[name] = time.perf_counter() - start

    wall = time.perf_counter()
    read = timed("read", read_year, YEAR, s)
    clean = timed("clean", clean_records, read, YEAR, s)
    chunks = timed("chunk", chunk_texts, clean, YEAR, s)
    sparse = timed("lexical", sparse_chunks, chunks, YEAR, s)
    if overlap:
        feed, box = ShardFeed(), {}
        worker = threading.Thread(target=lambda: box.update(r=timed("embed", embed_chunks, chunks, YEAR, s, feed=feed)))
        worker.start()
        timed("upsert", upsert_points, chunks, sparse, YEAR, s, feed=feed)
        worker.join()
        embedded = box["r"]
    else:
        embedded = timed("embed", embed_chunks, chunks, YEAR, s)
        timed("upsert", upsert_points, chunks, sparse, YEAR, s, embedded=embedded)
    with open_store(s) as store:
        check = timed("verify", verify_partition, store, s.partition(YEAR))
        t["index"] = store.optimize()
    wall = time.perf_counter() - wall
    assert check["ok"], check
    encoder = embedded.encode_seconds
    model_free = wall - encoder - t["index"]
    n = chunks.count
    return {"chunks": n, "wall_s": wall, "encoder_s": encoder, "index_s": t["index"], "model_free_s": model_free,
            "model_free_chunks_per_s": n / model_free, "stages_s": t,
            "stages_chunks_per_s": {k: (n / v if v > 0 else None) for k, v in t.items()},
            "overlap_ratio": (wall - t["index"]) / max(encoder, model_free)}  # target <= 1.1 with overlap


def settings_for(root: Path, source: str, model: Path, shard_size: int) -> Settings:
    return Settings(source=source, workdir=root / "work", collection="bench", model=str(model), device="cpu",
                    shard_size=shard_size)


def top_costs(profile: cProfile.Profile, n: int = 25) -> str:
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(n)
    return out.getvalue()


def gpu_encoder(model: Path, dtype: str, seconds: float) -> dict:
    """Time the encoder alone on the card: tokens/s and chunks/s over real chunks at the model's length."""
    import torch

    from kademe.embed.ladder import Ladder

    from kademe.testing import sample_chunks

    texts, counts = sample_chunks(4096, str(model))
    ladder = Ladder(Settings(model=str(model), device="cuda", dtype=dtype, batch_size=256))
    ladder.embed(texts[:64], counts[:64])  # warm up
    torch.cuda.synchronize()
    done = tokens = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        ladder.embed(texts, counts)
        done, tokens = done + len(texts), tokens + sum(counts)
    torch.cuda.synchronize()
    took = time.perf_counter() - start
    return {"model": str(model), "dtype": ladder.dtypes["gpu"], "chunks": done, "seconds": took, "tokens_per_s": tokens / took,
            "chunks_per_s": done / took, "mean_tokens_per_chunk": tokens / max(done, 1), "gpu": torch.cuda.get_device_name(),
            "peak_gb": torch.cuda.max_memory_allocated() / 1e9}


BARE = """
import json, sys, time
marks = {}
from sentence_transformers import SentenceTransformer
marks["imported"] = time.time()
model = SentenceTransformer(sys.argv[1], device="cpu", local_files_only=True)
marks["model_loaded"] = time.time()
texts = json.load(open(sys.argv[2], encoding="utf-8"))
model.encode(texts, batch_size=int(sys.argv[3]), convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
marks["encoded"] = time.time()
print(json.dumps(marks))
"""


def chunk_texts_of(root: Path, source: str, model: Path) -> tuple[Path, int]:
    """The year's chunk texts, as the chunk stage cuts them, in a JSON file for the bare encode process."""
    from kademe.chunk import chunk_texts
    from kademe.clean import clean_records
    from kademe.sources import read_year

    s = settings_for(root / "texts", source, model, 2048)
    chunks = chunk_texts(clean_records(read_year(YEAR, s), YEAR, s), YEAR, s)

    texts = chunks.table(["text"]).column("text").to_pylist()
    path = root / "texts.json"
    path.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    shutil.rmtree(root / "texts", ignore_errors=True)
    return path, len(texts)


def _env(prefect_home: Path) -> dict:
    """The child's environment; the tokenizer's own threads are left at their default, as a user's bare script has them."""
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PREFECT_HOME": str(prefect_home), "PYTHONPATH": os.pathsep.join([src, str(Path(src).parent)]),
           "HF_HUB_OFFLINE": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("TOKENIZERS_PARALLELISM", None)
    return env


def bare_process(model: Path, texts: Path, batch_size: int, home: Path) -> dict:
    """Wall time of a bare encode process, with when it had imported, loaded the model and encoded."""
    import subprocess

    start = time.time()
    proc = subprocess.run([sys.executable, "-c", BARE, str(model), str(texts), str(batch_size)], capture_output=True, text=True,
                          env=_env(home))
    wall = time.time() - start
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    marks = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"wall_s": wall, "imported_s": marks["imported"] - start, "model_loaded_s": marks["model_loaded"] - start,
            "encode_s": marks["encoded"] - marks["model_loaded"], "exit_s": start + wall - marks["encoded"]}


def kademe_process(root: Path, source: str, model: Path, shard_size: int, home: Path) -> dict:
    """Wall time of a whole ``kademe ingest`` process, its stage seconds, and what went outside the flow."""
    import subprocess

    work = root / "work"
    kademe = shutil.which("kademe")  # the console script, as a user runs it
    cmd = [kademe, "ingest"] if kademe else [sys.executable, "-m", "kademe.cli", "ingest"]
    cmd += ["--source", source, "--years", str(YEAR), "--workdir", str(work),
            "--collection", "bench", "--model", str(model), "--device", "cpu", "--shard-size", str(shard_size), "--json"]
    start = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(home))
    wall = time.time() - start
    metas = [json.loads(p.read_text()) or {} for p in work.glob(f"*/{YEAR}/embed-*.json")]
    encoder = sum(m.get("encode_seconds", 0.0) for m in metas)
    own_cpu = sum(m.get("own_cpu_seconds", 0.0) for m in metas)
    shutil.rmtree(work, ignore_errors=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    year = json.loads(proc.stdout)["years"][str(YEAR)]
    stages = year["stages"]
    index = stages.get("index", 0.0)
    return {"wall_s": wall, "flow_s": year["seconds"], "index_s": index, "outside_flow_s": wall - year["seconds"],
            "encoder_s": encoder, "embed_overhead": stages["embed"] / encoder - 1 if encoder else None,
            "embed_own_cpu_over_encoder": own_cpu / encoder if encoder else None,
            "stages_s": stages, "chunks": year["counts"]["chunks"], "first_run_note": "first run" in proc.stderr.lower()}


def user_clock(args, root: Path, model: Path, info: dict) -> int:
    """Interleaved rounds: bare encode process, kademe with a fresh Prefect home, kademe with an existing one."""
    source, _ = build_corpus(root / "data", args.chunks, model)
    texts, n = chunk_texts_of(root, source, model)
    batch = Settings().batch_size
    existing = root / "prefect-existing"
    tiny, _ = build_corpus(root / "tiny", 1, model)
    kademe_process(root / "prime", tiny, model, args.shard_size, existing)  # the existing home has its database
    print(f"user's clock: {n} chunks, model {model}, batch {batch}, shard size {args.shard_size}, load {os.getloadavg()}", flush=True)
    runs: dict[str, list[dict]] = {"bare": [], "fresh": [], "existing": []}
    for rnd in range(args.rounds):
        for mode in ("bare", "fresh", "existing"):  # interleaved: drift on the machine hits all alike
            if mode == "bare":
                r = bare_process(model, texts, batch, existing)
            else:
                home = existing if mode == "existing" else root / f"prefect-fresh-{rnd}"
                r = kademe_process(root / f"{mode}-{rnd}", source, model, args.shard_size, home)
                assert r["chunks"] == n, (r["chunks"], n)
            r["loadavg"] = os.getloadavg()[0]
            runs[mode].append(r)
            extra = "" if mode == "bare" else (f" flow {r['flow_s']:.1f}s index {r['index_s']:.1f}s outside the flow "
                                               f"{r['outside_flow_s']:.1f}s stages " + json.dumps({k: round(v, 1) for k, v in r['stages_s'].items()}))
            print(f"round {rnd} {mode:8s} wall {r['wall_s']:.1f}s{extra} load {r['loadavg']:.1f}", flush=True)

    def med(mode, key):
        return statistics.median(r[key] for r in runs[mode])

    bare = med("bare", "wall_s")
    summary = {"bare": {k: med("bare", k) for k in ("wall_s", "imported_s", "model_loaded_s", "encode_s", "exit_s")}}
    for mode in ("fresh", "existing"):
        wall, index = med(mode, "wall_s"), med(mode, "index_s")
        # paired by round (the bare process ran just before), then the median: drift hits both alike
        free = [r["wall_s"] - r["index_s"] - b["wall_s"] for r, b in zip(runs[mode], runs["bare"])]  # beyond a bare encode process
        own = [r["wall_s"] - r["index_s"] - r["encoder_s"] for r in runs[mode]]  # ... beyond kademe's own encoder (it tokenizes nothing)
        free_rates = [n / f if f > 0 else float("inf") for f in free]
        summary[mode] = {"wall_s": wall, "flow_s": med(mode, "flow_s"), "index_s": index, "outside_flow_s": med(mode, "outside_flow_s"),
                         "encoder_s": med(mode, "encoder_s"), "embed_stage_over_encoder": med(mode, "embed_overhead"),
                         "embed_own_cpu_over_encoder": med(mode, "embed_own_cpu_over_encoder"),
                         "stages_s": {k: statistics.median(r["stages_s"].get(k, 0.0) for r in runs[mode]) for k in STAGES},
                         "ratio_to_bare": statistics.median(r["wall_s"] / b["wall_s"] for r, b in zip(runs[mode], runs["bare"])),
                         "ratio_of_medians": wall / bare,
                         "model_free_chunks_per_s": None if statistics.median(free_rates) == float("inf") else statistics.median(free_rates),
                         "model_free_chunks_per_s_rounds": [None if x == float("inf") else round(x) for x in free_rates],
                         "model_free_own_encoder_chunks_per_s": statistics.median(n / o for o in own),
                         "first_run_note_on_stderr": any(r["first_run_note"] for r in runs[mode])}
        rate = summary[mode]["model_free_chunks_per_s"]
        print(f"{mode:8s} kademe/bare = {wall:.1f}/{bare:.1f} s, median of paired ratios {summary[mode]['ratio_to_bare']:.2f}x "
              f"(N={args.rounds}); model-free "
              f"{'faster than bare' if rate is None else f'{rate:.0f} chunks/s'} (beyond kademe's own encoder "
              f"{summary[mode]['model_free_own_encoder_chunks_per_s'] or 0:.0f}); embed stage / encoder - 1 = "
              f"{summary[mode]['embed_stage_over_encoder'] or 0:.1%} (its own CPU outside the encoder: "
              f"{summary[mode]['embed_own_cpu_over_encoder'] or 0:.1%}); outside the flow {summary[mode]['outside_flow_s']:.1f} s "
              f"(bare start-up to model loaded {summary['bare']['model_loaded_s']:.1f} s)", flush=True)
    result = {**info, "mode": "user-clock", "command": " ".join(sys.argv), "chunks": n, "rounds": args.rounds,
              "shard_size": args.shard_size, "layers": args.layers, "loadavg_end": [round(x, 2) for x in os.getloadavg()],
              "targets": {"model_free_chunks_per_s": 2000, "ratio_to_bare_real_model": 1.05}, "median": summary, "runs": runs}
    (args.out or RESULTS / "throughput-user-clock.json").write_text(json.dumps(result, indent=1) + "\n")
    shutil.rmtree(root, ignore_errors=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chunks", type=int, default=50_000, help="at least this many chunks in the year")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--shard-size", type=int, default=2048)
    ap.add_argument("--stages", action="store_true", help="stage-level mode in this process (sequential vs overlap)")
    ap.add_argument("--profile", action="store_true", help="one sequential pass under cProfile; top costs per stage")
    ap.add_argument("--gpu", action="store_true", help="time the encoder on the card (needs --model)")
    ap.add_argument("--model", help="model folder (default: the 1024-dim MiniLM derived offline)")
    ap.add_argument("--layers", type=int, default=1, help="transformer layers the derived 1024-dim model keeps (0: embeddings only)")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--seconds", type=float, default=30.0, help="--gpu: how long to encode")
    ap.add_argument("--card-chunks", type=int, default=50_000, help="--gpu: chunks of the year whose card-busy is measured (0: none)")
    ap.add_argument("--batch-size", type=int, default=128, help="--gpu: kademe's --batch-size for the card-busy runs")
    ap.add_argument("--fake-cuda", action="store_true", help="--gpu: no card; only the card-busy runs, GPU rungs on the CPU")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from kademe.testing import derive_wide_model

    root = Path(tempfile.mkdtemp(prefix="kademe-throughput-"))
    model = Path(args.model) if args.model else derive_wide_model(root / "minilm-wide", layers=args.layers)
    info = {"machine": machine(), "versions": versions(("torch", "sentence-transformers", "pyarrow", "qdrant-edge-py"))}
    if args.gpu:
        from card import measure_real_card

        result = {**info, "gpu": None if args.fake_cuda else gpu_encoder(model, args.dtype, args.seconds)}
        print(json.dumps(result["gpu"], indent=1))
        if args.card_chunks:  # card-busy of whole runs, from CUDA events around each encode (issue 32 point 6)
            result["card_busy"] = measure_real_card(model, args.card_chunks, rounds=args.rounds, batch_size=args.batch_size,
                                                    fake_cuda=args.fake_cuda)
            print(json.dumps(result["card_busy"]["median"], indent=1, default=str))
        name = "throughput-gpu-fake.json" if args.fake_cuda else "throughput-gpu.json"
        (args.out or RESULTS / name).write_text(json.dumps(result, indent=1, default=str) + "\n")
        return 0
    if not (args.stages or args.profile):
        return user_clock(args, root, model, info)

    source, expected = build_corpus(root / "data", args.chunks, model)
    print(f"corpus: {expected} chunks expected, model {model} (1024 dims), shard size {args.shard_size}", flush=True)
    if args.profile:
        profiles: dict[str, cProfile.Profile] = {}
        r = run_year(settings_for(root / "profile", source, model, args.shard_size), overlap=False, profile=profiles)
        print(json.dumps({k: round(v, 2) for k, v in r["stages_s"].items()}), flush=True)
        for name, prof in profiles.items():
            print(f"==== {name}: {r['stages_s'][name]:.2f} s under the profiler\n{top_costs(prof, 12)}")
        return 0

    runs: dict[str, list[dict]] = {"sequential": [], "overlap": []}
    for rnd in range(args.rounds):
        for mode in ("sequential", "overlap"):  # interleaved: drift on the machine hits both alike
            folder = root / f"{mode}-{rnd}"
            r = run_year(settings_for(folder, source, model, args.shard_size), overlap=mode == "overlap")
            shutil.rmtree(folder / "work", ignore_errors=True)
            runs[mode].append(r)
            print(f"round {rnd} {mode:10s} wall {r['wall_s']:.1f}s encoder {r['encoder_s']:.1f}s index {r['index_s']:.1f}s "
                  f"model-free {r['model_free_chunks_per_s']:.0f} chunks/s  (wall-index)/max(enc, model-free) {r['overlap_ratio']:.2f}",
                  flush=True)

    def med(mode, key):
        return statistics.median(r[key] for r in runs[mode])

    summary = {mode: {"wall_s": med(mode, "wall_s"), "encoder_s": med(mode, "encoder_s"), "index_s": med(mode, "index_s"),
                      "model_free_chunks_per_s": med(mode, "model_free_chunks_per_s"), "overlap_ratio": med(mode, "overlap_ratio"),
                      "stages_s": {k: statistics.median(r["stages_s"][k] for r in runs[mode]) for k in STAGES}}
               for mode in runs}
    summary["overlap_vs_sequential_wall"] = summary["overlap"]["wall_s"] / summary["sequential"]["wall_s"]
    print(json.dumps(summary, indent=1))
    result = {**info, "chunks": runs["sequential"][0]["chunks"], "rounds": args.rounds, "shard_size": args.shard_size,
              "targets": {"model_free_chunks_per_s": 2000, "overlap_ratio": 1.1}, "median": summary, "runs": runs}
    (args.out or RESULTS / "throughput.json").write_text(json.dumps(result, indent=1) + "\n")
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
