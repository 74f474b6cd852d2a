"""Peak memory of the read stage on a large year, NDJSON and Parquet (issue 31 point 3: a source of any size streams).

Makes a year of at least ``--mb`` MB from the shared real corpus (``shared/corpus/real-decisions.ndjson``)
repeated with fresh ids, as NDJSON and as Parquet (one row group, as polars and pandas write a file
of this many rows), then runs ``read_year`` on each in a fresh process and reads that process's
peak RSS (``resource.getrusage``). The Parquet source is read by kademe's reader (pyarrow, a batch
of rows at a time, buffered) and by the one it replaced (``polars.read_parquet`` of the whole
file), interleaved over ``--rounds``.

Writes ``bench/results/read-memory.json``.

Example:
    python bench/read_memory.py --mb 64 --rounds 1        # small
    python bench/read_memory.py --mb 1024 --rounds 1      # the issue's >= 1 GB year
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
from pathlib import Path

from _machine import machine, versions  # bench/_machine.py

CORPUS = Path(os.environ.get("KADEME_CORPUS", "/work/shared/corpus/real-decisions.ndjson"))
YEAR = 2022

CHILD = r"""
import json, resource, sys, time
from kademe.settings import Settings
import kademe.sources as sources

source, workdir, reader = sys.argv[1:4]
if reader == "polars":  # the reader before issue 31: the whole file in one DataFrame
    import math
    def whole_file(path):
        import polars as pl
        frame = pl.read_parquet(path)
        for line_no, row in enumerate(frame.iter_rows(named=True), start=1):
            try:
                yield line_no, {"record": json.dumps(row, ensure_ascii=False, default=str, allow_nan=False)}
            except ValueError:
                clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
                yield line_no, {"record": json.dumps(clean, ensure_ascii=False, default=str)}
    sources._parse_parquet = whole_file
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
result = sources.read_year(%d, Settings(source=source, workdir=workdir, corpus="bench"))
print(json.dumps({"read": result.read, "rejected": result.rejected, "seconds": round(time.perf_counter() - started, 2),
                  "rss_before_mb": round(before / 1024, 1),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
""" % YEAR


def make_year(folder: Path, mb: int) -> tuple[Path, Path, int]:
    """``yargitay_<YEAR>.ndjson`` and ``.parquet`` of at least ``mb`` MB: the corpus repeated with fresh ids."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    lines = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    ndjson, parquet = folder / f"yargitay_{YEAR}.ndjson", folder / f"yargitay_{YEAR}.parquet"
    written, rows, copy = 0, [], 0
    with open(ndjson, "wb") as f:
        while written < mb * 2**20:
            for rec in lines:
                rec = {**rec, "id": f"{rec['id']}-r{copy}", "year": YEAR}
                data = (json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8")
                f.write(data)
                written += len(data)
                rows.append(rec)
            copy += 1
    columns = sorted({k for r in rows for k in r})
    table = pa.table({c: [None if r.get(c) is None else str(r[c]) if c != "year" else r[c] for r in rows] for c in columns})
    del rows
    pq.write_table(table, parquet, row_group_size=len(table))  # one row group: the whole year
    return ndjson, parquet, len(table)


def run(source: Path, reader: str) -> dict:
    workdir = tempfile.mkdtemp(prefix="kademe-read-memory-")
    try:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1] / "src"),
                                                            os.environ.get("PYTHONPATH", "")])}
        template = str(source).replace(str(YEAR), "{year}")
        out = subprocess.run([sys.executable, "-c", CHILD, template, workdir, reader], capture_output=True, text=True,
                             env=env, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=int, default=1024, help="size of the NDJSON year in MB (>= 1024 for the issue's figure)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--dir", help="where to write the year (default: a temporary folder, removed after)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "read-memory.json"))
    ap.add_argument("--make", help=argparse.SUPPRESS)  # (the child that writes the year)
    args = ap.parse_args()
    if args.make:
        print(json.dumps(make_year(Path(args.make), args.mb)[2]))
        return
    folder = Path(args.dir or tempfile.mkdtemp(prefix="kademe-big-year-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        # Written by a child process: a child's peak RSS starts at its parent's (fork), so this one stays small.
        ndjson, parquet = folder / f"yargitay_{YEAR}.ndjson", folder / f"yargitay_{YEAR}.parquet"
        if not (ndjson.is_file() and parquet.is_file() and ndjson.stat().st_size >= args.mb * 2**20):
            subprocess.run([sys.executable, __file__, "--make", str(folder), "--mb", str(args.mb)], check=True)
        import pyarrow.parquet as pq

        rows = pq.ParquetFile(parquet).metadata.num_rows
        sizes = {"ndjson_mb": round(ndjson.stat().st_size / 2**20, 1), "parquet_mb": round(parquet.stat().st_size / 2**20, 1),
                 "rows": rows}
        print(f"year: {sizes}")
        kinds = {"ndjson": (ndjson, "kademe"), "parquet": (parquet, "kademe"), "parquet-polars-before": (parquet, "polars")}
        runs: dict[str, list[dict]] = {k: [] for k in kinds}
        for _ in range(args.rounds):
            for kind, (source, reader) in kinds.items():
                runs[kind].append(run(source, reader))
                print(kind, runs[kind][-1])
    finally:
        if not args.dir:
            shutil.rmtree(folder, ignore_errors=True)
    peak = {kind: statistics.median(r["peak_rss_mb"] for r in rs) for kind, rs in runs.items()}
    result = {"year": sizes, "rounds": args.rounds, "median_peak_rss_mb": peak,
              "ratio_parquet_to_before": round(peak["parquet"] / peak["parquet-polars-before"], 3),
              "runs": runs, "machine": machine(), "versions": versions(("pyarrow", "polars"))}
    print(f"peak RSS of read_year on a {sizes['ndjson_mb']} MB year ({rows} decisions): NDJSON {peak['ndjson']} MB, "
          f"Parquet {peak['parquet']} MB (before, polars: {peak['parquet-polars-before']} MB)")
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
