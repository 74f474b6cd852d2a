"""The embed stage's shard write, alone: into memory then one write, against straight to the file (issue 22).

    python bench/shard_write.py [--rounds 5] [--shards 30] [--gap 0.2]

Each shard is 512 vectors of 1024 float32 dims (the rows as the ladder hands them over: views of
its batches, in input order), written the way ``kademe.embed.stage.write_shard`` writes it now
(``file``: Arrow's writer straight to the file) and the way it did before (``buffer``: into an
in-memory stream, then one ``write``). Two regimes, interleaved over the rounds:

- ``back-to-back``: one shard after the other, caches warm: a microbenchmark's view;
- ``between-batches``: ``--gap`` seconds and 8 MB of memory traffic between shards, as when the
  encoder runs between them (a shard of 512 chunks every ~0.3 s with the near-free model on 2 cores).

The figure is the writing thread's CPU time per shard (median of rounds), with its page faults.
Results: ``bench/results/shard-write.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from kademe.embed.shards import VECTOR_PARQUET, read_shard, shard_table, write_shard

ROWS, DIMS, BATCH = 512, 1024, 32


def shard(rng: np.random.Generator) -> tuple:
    batches = [rng.standard_normal((BATCH, DIMS), dtype=np.float32) for _ in range(ROWS // BATCH)]
    rows = [row for b in batches for row in b]
    vectors = [rows[i] for i in rng.permutation(ROWS)]
    return ([f"{i:032x}" for i in range(ROWS)], ["wide"] * ROWS, ["cpu"] * ROWS, vectors,
            [f"{i:064x}" for i in range(ROWS)])


def write_buffered(path: Path, ids, spaces, rungs, vectors, shas) -> int:
    """The write before: the same table into an in-memory stream, then one write of its bytes."""
    table = shard_table(ids, spaces, rungs, vectors, shas)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **VECTOR_PARQUET)
    Path(path).write_bytes(sink.getvalue())
    return len(ids)


def run(writer, shards: list, n: int, gap: float, folder: Path) -> dict:
    folder.mkdir(parents=True)
    traffic = np.zeros(8 << 20, np.uint8)
    cpu, faults = 0.0, 0
    for i in range(n):
        if gap:
            time.sleep(gap)
            traffic += 1  # the encoder's memory traffic between two shards
        f0, t0 = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt, time.thread_time()
        writer(folder / f"shard-{i:05d}.parquet", *shards[i % len(shards)])
        cpu += time.thread_time() - t0
        faults += resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - f0
    got = read_shard(folder / "shard-00000.parquet")  # both write the same shard
    assert got[0] == shards[0][0] and all(np.array_equal(a, b) for a, b in zip(got[3], shards[0][3]))
    shutil.rmtree(folder)
    return {"cpu_ms_per_shard": round(cpu / n * 1000, 3), "faults_per_shard": round(faults / n, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--shards", type=int, default=30)
    ap.add_argument("--gap", type=float, default=0.2, help="seconds between shards in the between-batches regime")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "shard-write.json"))
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    shards = [shard(rng) for _ in range(4)]
    writers = {"file": write_shard, "buffer": write_buffered}
    regimes = {"back-to-back": 0.0, "between-batches": args.gap}
    rounds: dict = {f"{r}/{w}": [] for r in regimes for w in writers}
    with tempfile.TemporaryDirectory(prefix="kademe-shard-write-") as tmp:
        for rnd in range(args.rounds):
            for regime, gap in regimes.items():
                for name, writer in writers.items():
                    rounds[f"{regime}/{name}"].append(run(writer, shards, args.shards, gap, Path(tmp) / f"{rnd}-{regime}-{name}"))
    result: dict = {"command": " ".join(sys.argv), "rows": ROWS, "dims": DIMS, "rounds": args.rounds,
                    "shards_per_round": args.shards, "gap_s": args.gap, "regimes": {}}
    for regime in regimes:
        med = {w: statistics.median(x["cpu_ms_per_shard"] for x in rounds[f"{regime}/{w}"]) for w in writers}
        faults = {w: statistics.median(x["faults_per_shard"] for x in rounds[f"{regime}/{w}"]) for w in writers}
        result["regimes"][regime] = {"cpu_ms_per_shard": med, "faults_per_shard": faults,
                                     "buffer_over_file": round(med["buffer"] / med["file"], 2),
                                     "rounds": {w: rounds[f"{regime}/{w}"] for w in writers}}
        print(f"{regime:16s} file {med['file']:6.2f} ms  buffer {med['buffer']:6.2f} ms  buffer/file "
              f"{med['buffer'] / med['file']:.2f}  (faults a shard: file {faults['file']:.0f}, buffer {faults['buffer']:.0f})")
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
