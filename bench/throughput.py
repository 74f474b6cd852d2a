"""Throughput of one year, stage by stage: is everything around the model fast enough for a GPU?

    PYTHONPATH=src:. python bench/throughput.py [--chunks 50000] [--rounds 3] [--profile]
    PYTHONPATH=src:. python bench/throughput.py --gpu --model PATH [--dtype auto]

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
chunks/s for the chosen ``--dtype``), e.g. with ``kademe.testing.derive_bge_m3_standin``.
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
    from kademe.chunk import split_texts
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
    from kademe.embed.stage import ShardFeed, embed_chunks
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chunks", type=int, default=50_000, help="at least this many chunks in the year")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--shard-size", type=int, default=2048)
    ap.add_argument("--profile", action="store_true", help="one sequential pass under cProfile; top costs per stage")
    ap.add_argument("--gpu", action="store_true", help="time the encoder on the card (needs --model)")
    ap.add_argument("--model", help="model folder (default: the 1024-dim MiniLM derived offline)")
    ap.add_argument("--layers", type=int, default=1, help="transformer layers the derived 1024-dim model keeps (0: embeddings only)")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--seconds", type=float, default=30.0, help="--gpu: how long to encode")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from kademe.testing import derive_wide_model

    root = Path(tempfile.mkdtemp(prefix="kademe-throughput-"))
    model = Path(args.model) if args.model else derive_wide_model(root / "minilm-wide", layers=args.layers)
    info = {"machine": machine(), "versions": versions(("torch", "sentence-transformers", "pyarrow", "qdrant-edge-py"))}
    if args.gpu:
        result = {**info, "gpu": gpu_encoder(model, args.dtype, args.seconds)}
        print(json.dumps(result["gpu"], indent=1))
        (args.out or RESULTS / "throughput-gpu.json").write_text(json.dumps(result, indent=1) + "\n")
        return 0

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
