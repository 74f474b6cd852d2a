"""Ladder throughput under an injected memory ceiling, against the best static batch size in hindsight.

For each budget B (``KADEME_FAULT_OOM_TOKENS=B``: a GPU-rung batch over B padded tokens raises the
genuine ``torch.cuda.OutOfMemoryError``; ``KADEME_FAULT_FAKE_CUDA=1`` runs the GPU rungs on the
CPU) it times, interleaved in one process, on the same chunks:

- ``ladder``: kademe's ladder starting from batch 32 x max length, learning the ceiling by OOM;
- ``static``: sentence-transformers-style length-sorted batches of a fixed size, for every size
  that never exceeds B; the fastest of them is "the best static batch size chosen in hindsight";
- ``halving``: the ladder with regrowth switched off (halve on OOM, never grow back).

An injected OOM is raised before the forward pass; the ladder still pays its real handling cost
(a full ``gc.collect`` over what the batches made: the heap alive before is frozen, see
``kademe.embed.oom.frozen_heap``). A real OOM also wastes part of a forward pass, which favours the
static baseline on a real card. The ladder learns once per year, so the default corpus is about
one embed shard (400 chunks); a tiny corpus overstates the learning cost.

    python bench/ladder.py [--budgets 1024 2048 4096] [--repeat 2] [--chunks 400]

Prints ratios and writes bench/results/ladder.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["KADEME_FAULT_FAKE_CUDA"] = "1"

from kademe.chunk import split_texts  # noqa: E402
from kademe.embed.ladder import Ladder  # noqa: E402
from kademe.embed.model import load_encoder, load_tokenizer, resolve_model  # noqa: E402
from kademe.sample import iter_decisions  # noqa: E402
from kademe.settings import DEFAULT_MODEL, Settings  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def make_chunks(n: int) -> tuple[list[str], list[int]]:
    """Real chunks of sample decisions: many full 256-token chunks and the shorter tails."""
    tok = load_tokenizer(resolve_model(DEFAULT_MODEL))
    texts, counts = [], []
    for doc in iter_decisions(2021, 400, seed=7):
        for text, k in split_texts([doc["text"]], tok, 256, 32)[0]:
            texts.append(text)
            counts.append(k)
        if len(texts) >= n:
            return texts[:n], counts[:n]
    return texts, counts


def run_ladder(texts, counts, regrow: bool) -> tuple[float, int]:
    ladder = Ladder(Settings(device="cuda", batch_size=32))
    if not regrow:
        ladder.grow_after = 10**9
    t = time.perf_counter()
    out = ladder.embed(texts, counts)
    return time.perf_counter() - t, len(out.events)


def run_static(texts, counts, rows: int) -> float:
    """Length-sorted fixed-size batches, as ``SentenceTransformer.encode(batch_size=rows)`` forms them."""
    model = load_encoder(resolve_model(DEFAULT_MODEL), "cuda")  # the fake-CUDA instance the ladder uses
    t = time.perf_counter()
    model.encode(texts, batch_size=rows, normalize_embeddings=True, show_progress_bar=False)
    return time.perf_counter() - t


def feasible_rows(counts: list[int], budget: int) -> list[int]:
    """Batch sizes whose every length-sorted batch stays within ``budget`` padded tokens."""
    ordered = sorted(counts, reverse=True)
    ok = []
    for rows in (1, 2, 4, 8, 16, 24, 32):
        if all(len(ordered[i : i + rows]) * ordered[i] <= budget for i in range(0, len(ordered), rows)):
            ok.append(rows)
    return ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budgets", type=int, nargs="+", default=[1024, 2048, 4096])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--chunks", type=int, default=400)
    ap.add_argument("--out", type=Path, default=RESULTS / "ladder.json")
    args = ap.parse_args()

    texts, counts = make_chunks(args.chunks)
    load_encoder(resolve_model(DEFAULT_MODEL), "cuda").encode(texts[:4])  # warm up: load once, outside timings
    results = {}
    for budget in args.budgets:
        os.environ["KADEME_FAULT_OOM_TOKENS"] = str(budget)
        sizes = feasible_rows(counts, budget)
        times: dict[str, list[float]] = {"ladder": [], "halving": [], **{f"static-{r}": [] for r in sizes}}
        events: dict[str, int] = {}
        for _ in range(args.repeat):  # interleaved: every candidate once per round
            for name in times:
                if name.startswith("static-"):
                    times[name].append(run_static(texts, counts, int(name.split("-")[1])))
                else:
                    secs, events[name] = run_ladder(texts, counts, regrow=name == "ladder")
                    times[name].append(secs)
        med = {k: statistics.median(v) for k, v in times.items()}
        best = min((k for k in med if k.startswith("static-")), key=med.get)
        results[str(budget)] = {
            "median_seconds": med, "runs": times, "oom_events": events, "best_static": best,
            "throughput_chunks_per_s": {k: len(texts) / v for k, v in med.items()},
            "ladder_vs_best_static": med[best] / med["ladder"],  # throughput ratio, target >= 0.85
            "ladder_vs_halving_only": med["halving"] / med["ladder"],
        }
        r = results[str(budget)]
        print(f"budget {budget:>5} tokens: ladder {len(texts) / med['ladder']:.1f} chunks/s "
              f"({events['ladder']} OOM), best static {best} {len(texts) / med[best]:.1f} chunks/s, "
              f"halving-only {len(texts) / med['halving']:.1f} chunks/s ({events['halving']} OOM) | "
              f"ladder/best-static {r['ladder_vs_best_static']:.2f}x, ladder/halving {r['ladder_vs_halving_only']:.2f}x  (N={args.repeat})")
    import sentence_transformers
    import torch

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "bench": "ladder", "chunks": len(texts), "mean_tokens": statistics.mean(counts), "repeat": args.repeat,
        "target": "ladder throughput >= 0.85 x best static batch size in hindsight",
        "note": "injected OOMs are raised before the forward pass (no wasted compute; the full gc.collect over the unfrozen heap is paid)",
        "machine": {"cpu": _cpu(), "cores": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform()},
        "versions": {"torch": torch.__version__, "sentence-transformers": sentence_transformers.__version__},
        "date": time.strftime("%Y-%m-%d"), "budgets": results,
    }, indent=2))
    print(f"wrote {args.out}")


def _cpu() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


if __name__ == "__main__":
    main()
