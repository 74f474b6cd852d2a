"""A year of nights (issue 29): a cold year, then nights of 1 % change and one of 0 %, as whole ``kademe ingest`` processes.

The year is the shared real decisions (/work/shared/corpus/real-decisions.ndjson) repeated with fresh
ids until it holds ``--chunks`` chunks, embedded by the near-free 1024-dim encoder the other benches use
(``kademe.testing.derive_wide_model``). Each night changes 1 % of the decisions (a third appended, a
third edited, a third withdrawn) and runs ``kademe ingest`` into the same workdir, as the nightly
schedule would; a last night changes nothing. After the last night the final source is ingested from
scratch into a fresh workdir, for the sizes to compare with.

Per night: wall seconds, the summary's ``changes`` (documents, chunks embedded/reused, points
written/deleted, workdir bytes written/collected), the workdir's and the store's bytes, the index
seconds. Targets on these 2 cores: a 1 % night <= 10 % of the cold year's wall; a 0 % night <= the
fixed cost of a run + 1 s (the fixed cost: a warm rerun of a one-decision year); workdir and store
<= 1.25x from scratch after the nights.

Example:
    python bench/nights.py                              # 50,000 chunks, 30 nights of 1 %, one of 0 %
    python bench/nights.py --chunks 5000 --nights 5     # a small proof on a shared box

Writes ``bench/results/nights.json`` (or ``--out``) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "src"), str(Path(__file__).resolve().parent)]

from _machine import machine, versions

REAL = Path("/work/shared/corpus/real-decisions.ndjson")
YEAR = 2020
RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = {"night_over_cold": 0.10, "quiet_over_fixed_s": 1.0, "workdir_over_scratch": 1.25, "store_over_scratch": 1.25}


def year_records(want_chunks: int, model: Path) -> list[dict]:
    """The real decisions repeated with fresh ids until the year holds >= ``want_chunks`` chunks."""
    from kademe.clean import clean_text
    from kademe.models import load_tokenizer, max_seq_length
    from kademe.split import split_texts

    records = [json.loads(line) for line in REAL.read_text(encoding="utf-8").splitlines() if line.strip()]
    tok = load_tokenizer(model)
    per_pass = sum(len(c) for c in split_texts([clean_text(r["text"]) for r in records], tok, max_seq_length(model), 32))
    return [{**r, "id": f"{r['id']}~{k}", "year": YEAR} for k in range(-(-want_chunks // per_pass)) for r in records]


def change(records: list[dict], night: int, share: float, rng: random.Random, pool: list[dict]) -> tuple[list[dict], dict]:
    """One night's source: ``share`` of the decisions changed, a third appended, a third edited, a third withdrawn."""
    n = max(3, round(len(records) * share))
    out = [dict(r) for r in records]
    edited = rng.sample(range(len(out)), n // 3)
    for i in edited:
        out[i]["text"] += f"\n\nDÜZELTME ({night}. gece): Karardaki maddi hata düzeltilmiştir."
    withdrawn = set(rng.sample([i for i in range(len(out)) if i not in edited], n // 3))
    out = [r for i, r in enumerate(out) if i not in withdrawn]
    added = n - 2 * (n // 3)
    out += [{**rng.choice(pool), "id": f"yeni-{night}-{k}", "year": YEAR} for k in range(added)]
    return out, {"edited": len(edited), "withdrawn": len(withdrawn), "appended": added}


def write(path: Path, records: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def du(path: Path, skip: str | None = None) -> int:
    """Bytes of every file under ``path`` (leaving out the top folder ``skip``)."""
    total = 0
    for dirpath, dirs, files in os.walk(path):
        if skip and Path(dirpath) == path and skip in dirs:
            dirs.remove(skip)
        for f in files:
            try:
                total += (Path(dirpath) / f).stat().st_size
            except FileNotFoundError:
                pass
    return total


def ingest(source: Path, work: Path, model: Path, home: Path, collection: str = "nights") -> tuple[float, dict]:
    """A whole ``kademe ingest`` process: its wall seconds and the year's summary."""
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PREFECT_HOME": str(home), "PYTHONPATH": os.pathsep.join([src, str(Path(src).parent)]),
           "HF_HUB_OFFLINE": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    kademe = shutil.which("kademe")
    cmd = [kademe, "ingest"] if kademe else [sys.executable, "-m", "kademe.cli", "ingest"]
    cmd += ["--source", str(source.parent / source.name.replace(str(YEAR), "{year}")), "--years", str(YEAR), "--workdir", str(work),
            "--collection", collection, "--model", str(model), "--device", "cpu", "--json"]
    start = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.time() - start
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return wall, json.loads(proc.stdout)["years"][str(YEAR)]


def night_row(name: str, wall: float, y: dict, work: Path, before: int) -> dict:
    ch = y["changes"]
    workdir = du(work, skip="qdrant")
    return {"night": name, "wall_s": round(wall, 2), "flow_s": y["seconds"], "chunks": y["counts"]["chunks"],
            "documents": ch["documents"], "embedded": ch["chunks"]["embedded"], "reused": ch["chunks"]["reused"],
            "points_written": ch.get("points", {}).get("written"), "points_deleted": ch.get("points", {}).get("deleted"),
            "bytes_written": ch.get("bytes", {}).get("written"), "bytes_collected": ch.get("bytes", {}).get("collected"),
            "workdir_bytes": workdir, "bytes_added": workdir - before, "store_bytes": du(work / "qdrant"),
            "index_s": y["stages"].get("index", 0.0), "stages_s": y["stages"], "cached": y["cached"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chunks", type=int, default=50_000, help="at least this many chunks in the year")
    ap.add_argument("--nights", type=int, default=30, help="nights of --change each, then one of 0 %%")
    ap.add_argument("--change", type=float, default=0.01, help="share of the decisions a night changes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", help="model folder (default: the 1024-dim MiniLM derived offline)")
    ap.add_argument("--out", type=Path, default=RESULTS / "nights.json")
    args = ap.parse_args()
    info = machine()
    root = Path(tempfile.mkdtemp(prefix="kademe-bench-nights-"))
    from kademe.testing import derive_wide_model

    model = Path(args.model) if args.model else derive_wide_model(root / "minilm-wide", layers=1)
    home = root / "prefect-home"
    rng = random.Random(args.seed)
    records = year_records(args.chunks, model)
    pool = list(records)

    tiny = root / "tiny" / f"tiny_{YEAR}.ndjson"  # the fixed cost of a run: a warm rerun of a one-decision year
    tiny.parent.mkdir(parents=True)
    write(tiny, records[:1])
    ingest(tiny, root / "tiny-work", model, home, "tiny")  # also creates Prefect's database, once
    fixed, _ = ingest(tiny, root / "tiny-work", model, home, "tiny")

    src = root / "src" / f"year_{YEAR}.ndjson"
    src.parent.mkdir()
    work = root / "work"
    write(src, records)
    wall, y = ingest(src, work, model, home)
    rows = [night_row("cold", wall, y, work, 0)]
    print(f"cold: {wall:.1f} s, {y['counts']['chunks']} chunks, workdir {rows[-1]['workdir_bytes'] / 1e6:.0f} MB, "
          f"store {rows[-1]['store_bytes'] / 1e6:.0f} MB (fixed cost of a run {fixed:.1f} s)", file=sys.stderr)
    plan = [(f"{n + 1}", args.change) for n in range(args.nights)] + [("quiet", 0.0)]
    for name, share in plan:
        what = {}
        if share:
            records, what = change(records, int(name), share, rng, pool)
            write(src, records)
        before = rows[-1]["workdir_bytes"]
        wall, y = ingest(src, work, model, home)
        assert y["status"] == "completed" and y["verify"]["ok"], y
        rows.append({**night_row(name, wall, y, work, before), "change": what})
        r = rows[-1]
        print(f"night {name}: {wall:.1f} s, embedded {r['embedded']}, points written {r['points_written']}, "
              f"+{r['bytes_written'] / 1e6:.1f} MB written, {r['bytes_collected'] / 1e6:.1f} MB collected, workdir "
              f"{r['workdir_bytes'] / 1e6:.0f} MB, store {r['store_bytes'] / 1e6:.0f} MB, index {r['index_s']:.1f} s; stages "
              + " ".join(f"{k} {v:.1f}" for k, v in r["stages_s"].items()), file=sys.stderr)
        args.out.parent.mkdir(parents=True, exist_ok=True)  # so far, in case the run is stopped
        args.out.write_text(json.dumps({"partial": True, "fixed_cost_s": fixed, "cold": rows[0], "rows": rows[1:]}, indent=2))
    scratch_work = root / "scratch"
    scratch_wall, sy = ingest(src, scratch_work, model, home)
    scratch = night_row("scratch", scratch_wall, sy, scratch_work, 0)

    nights = [r for r in rows[1:] if r["night"] != "quiet"]
    quiet = rows[-1]
    night_wall = statistics.median(r["wall_s"] for r in nights)
    last = nights[-1] if nights else rows[0]
    result = {
        "command": " ".join([sys.executable, *sys.argv]), "chunks": rows[0]["chunks"], "nights": args.nights,
        "change": args.change, "fixed_cost_s": round(fixed, 2), "cold": rows[0], "rows": rows[1:], "scratch": scratch,
        "summary": {
            "night_wall_median_s": night_wall, "night_over_cold": round(night_wall / rows[0]["wall_s"], 3),
            "quiet_wall_s": quiet["wall_s"], "quiet_over_fixed_s": round(quiet["wall_s"] - fixed, 2),
            "quiet_cached": quiet["cached"], "quiet_points_written": quiet["points_written"],
            "workdir_over_scratch": round(last["workdir_bytes"] / scratch["workdir_bytes"], 3),
            "store_over_scratch": round(last["store_bytes"] / scratch["store_bytes"], 3),
            "night_bytes_written_median": statistics.median(r["bytes_written"] for r in nights) if nights else 0,
            "night_index_median_s": statistics.median(r["index_s"] for r in nights) if nights else 0,
            "cold_index_s": rows[0]["index_s"]},
        "targets": TARGETS, "machine": info, "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "versions": versions(("torch", "sentence-transformers", "qdrant-edge-py", "prefect", "kademe")),
    }
    m = result["summary"]
    result["met"] = {"night_over_cold": m["night_over_cold"] <= TARGETS["night_over_cold"],
                     "quiet_over_fixed_s": m["quiet_over_fixed_s"] <= TARGETS["quiet_over_fixed_s"],
                     "workdir_over_scratch": m["workdir_over_scratch"] <= TARGETS["workdir_over_scratch"],
                     "store_over_scratch": m["store_over_scratch"] <= TARGETS["store_over_scratch"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"\n{'night':<7}{'wall s':>8}{'embedded':>10}{'written':>9}{'deleted':>9}{'MB wrote':>10}{'MB freed':>10}"
          f"{'workdir MB':>12}{'store MB':>10}{'index s':>9}")
    for r in [rows[0], *rows[1:], scratch]:
        print(f"{r['night']:<7}{r['wall_s']:>8.1f}{r['embedded']:>10}{r['points_written'] or 0:>9}{r['points_deleted'] or 0:>9}"
              f"{(r['bytes_written'] or 0) / 1e6:>10.1f}{(r['bytes_collected'] or 0) / 1e6:>10.1f}{r['workdir_bytes'] / 1e6:>12.1f}"
              f"{r['store_bytes'] / 1e6:>10.1f}{r['index_s']:>9.1f}")
    print(f"\n{result['chunks']} chunks, {args.nights} nights of {args.change:.0%}: night/cold {m['night_over_cold']:.3f} "
          f"(target <= {TARGETS['night_over_cold']}), quiet night - fixed cost {m['quiet_over_fixed_s']:+.1f} s (target <= +1 s), "
          f"workdir {m['workdir_over_scratch']:.2f}x and store {m['store_over_scratch']:.2f}x from scratch (target <= 1.25x)")
    print(f"wrote {args.out}")
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
