"""A local workdir's checkpoint I/O: kademe's own file routines against obstore's ``LocalStore`` (issue 31 point 3).

obstore's ``LocalStore`` gives what ``LocalStorage`` did by hand (a create-only ``put`` that links a
staged file, so a name appears whole or not at all; ``list``; ``list_with_delimiter``), and
``LocalStorage`` now uses it; ``Handmade`` here is the routine it replaced ("ours"). This replays
the checkpoint protocol of one year through the real ``Partition`` and ``Checkpoint`` classes on
each backend, interleaved: a cold ingest (read, clean and chunk parts and commits; ``--shards``
lexical and embed shards with their create-only markers; the upsert's shard marks; every done file
and manifest record) and a warm rerun (every stage a hit, the manifest read). Parts are tiny, so
what is timed is the protocol's own I/O, not Parquet.

Reports the median seconds per year of each, and ``median(obstore)/median(ours)``; writes
``bench/results/local-storage.json``.

Example:
    python bench/local_storage.py --shards 100 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from _machine import machine, versions  # bench/_machine.py

import kademe.storage as storage_module
from kademe.partition import Partition
from kademe.storage import LocalStorage, write_whole

SCHEMA = pa.schema([("x", pa.int64())])


class Handmade(LocalStorage):
    """The baseline: kademe's LocalStorage before it used obstore (a temporary file, then rename or link; os.walk)."""

    def put(self, name: str, data: bytes, create: bool = False) -> bool:
        return write_whole(self.path(name), lambda f: f.write(data), create=create)

    def get(self, name: str) -> bytes | None:
        try:
            return self.path(name).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def list(self, prefix: str) -> dict[str, tuple[int, float]]:
        base = self.path(prefix)
        if not base.is_dir():
            return {}
        out = {}
        for dirpath, _, files in os.walk(base):
            for f in files:
                p = Path(dirpath) / f
                try:
                    st = p.stat()
                except FileNotFoundError:
                    continue
                out[p.relative_to(self.root).as_posix()] = (st.st_size, st.st_mtime)
        return out

    def delete(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def children(self, prefix: str) -> list[str]:
        base = self.path(prefix)
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


def year(workdir: Path, shards: int) -> tuple[float, float]:
    """One year's checkpoint I/O, cold then warm: seconds of each."""
    part = Partition(str(workdir), "bench", 2011)
    keys = {stage: f"{stage}{'0' * 60}" for stage in ("read", "clean", "chunk", "lexical", "embed", "upsert")}
    started = time.perf_counter()
    for stage in ("read", "clean", "chunk"):
        cp = part.checkpoint(stage, keys[stage])
        assert cp.hit() is None
        with cp.sink(SCHEMA) as sink:
            sink.write([{"x": 1}])
        cp.commit(rows=1)
    for stage in ("lexical", "embed"):
        cp = part.checkpoint(stage, keys[stage])
        assert cp.hit() is None
        for i in cp.pending(shards):
            cp.put_shard(i, lambda path: pq.write_table(pa.table({"x": [i]}), path) or 1, events=[])
        cp.commit(shards=shards)
    cp = part.checkpoint("upsert", keys["upsert"])
    assert cp.hit() is None
    marked = cp.marked()
    for i in range(shards):
        if i not in marked:
            cp.mark(i, points=1)
    cp.commit(upserted=shards)
    part.manifest()
    cold = time.perf_counter() - started
    started = time.perf_counter()
    for stage, key in keys.items():
        assert part.checkpoint(stage, key).hit() is not None
    part.manifest()
    part.collect()
    return cold, time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shards", type=int, default=100, help="shards per sharded stage (100 = 51,200 chunks at 512)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "local-storage.json"))
    args = ap.parse_args()
    runs: dict[str, dict[str, list[float]]] = {"ours": {"cold": [], "warm": []}, "obstore": {"cold": [], "warm": []}}
    for _ in range(args.rounds):
        for name, cls in (("ours", Handmade), ("obstore", LocalStorage)):
            root = Path(tempfile.mkdtemp(prefix=f"kademe-bench-{name}-"))
            storage_module._open.cache_clear()
            original = storage_module._open
            storage_module._open = lambda url, cls=cls: cls(storage_module.local_root(url))
            try:
                cold, warm = year(root, args.shards)
            finally:
                storage_module._open = original
                shutil.rmtree(root, ignore_errors=True)
            runs[name]["cold"].append(cold)
            runs[name]["warm"].append(warm)
    med = {name: {kind: statistics.median(v) for kind, v in kinds.items()} for name, kinds in runs.items()}
    ratio = {kind: round(med["obstore"][kind] / med["ours"][kind], 3) for kind in ("cold", "warm")}
    result = {"shards": args.shards, "rounds": args.rounds, "median_seconds": med, "ratio_obstore_to_ours": ratio,
              "runs": runs, "machine": machine(), "versions": versions(("obstore", "pyarrow"))}
    print(f"checkpoint I/O of a {args.shards}-shard year, median of {args.rounds}: cold ours {med['ours']['cold']:.3f} s, "
          f"obstore {med['obstore']['cold']:.3f} s ({ratio['cold']}x); warm ours {med['ours']['warm']:.3f} s, "
          f"obstore {med['obstore']['warm']:.3f} s ({ratio['warm']}x)")
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
