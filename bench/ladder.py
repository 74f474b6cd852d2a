"""Ladder throughput under an injected memory ceiling, against the best static batch size in hindsight.

For each budget B (``KADEME_FAULT_OOM_TOKENS=B``: a GPU-rung batch over B padded tokens raises the
genuine ``torch.cuda.OutOfMemoryError``; ``KADEME_FAULT_FAKE_CUDA=1`` runs the GPU rungs on the
CPU) it times, interleaved in one process, on the same chunks:

- ``ladder``: kademe's ladder starting from batch 32 x max length, learning the ceiling by OOM;
- ``static``: sentence-transformers-style length-sorted batches of a fixed size, for every size
  that never exceeds B; the fastest of them is "the best static batch size chosen in hindsight";
- ``halving``: the ladder with regrowth switched off (halve on OOM, never grow back).

One more scenario, ``--freed LOW HIGH`` (default 1024 4096): the ceiling is LOW until a third of the
chunks are embedded, then HIGH, as when another job on the card finishes. A static size must
survive LOW; the ladder may grow into HIGH, halving-only may not.

An injected OOM is raised before the forward pass; the ladder still pays its real handling cost
(a full ``gc.collect`` over what the batches made: the heap alive before is frozen, see
``kademe.embed.oom.frozen_heap``). A real OOM also wastes part of a forward pass, which favours the
static baseline on a real card. The ladder learns once per year, so the default corpus is about
one embed shard (400 chunks); a tiny corpus overstates the learning cost.

    python bench/ladder.py [--budgets 1024 2048 4096] [--freed 1024 4096] [--repeat 2] [--chunks 400]

Prints ratios and writes bench/results/ladder.json.

On a real CUDA card (``--gpu``) nothing is injected: a memory hog holds all but ``--leave-gb`` of
the card, every static batch size is tried (those that run out of memory are the users' failure
and are recorded as such), and the ladder plans from the free memory it measures. Writes
bench/results/ladder-gpu.json.

    python bench/ladder.py --gpu [--leave-gb 1.0] [--repeat 2] [--chunks 2000]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _machine import machine, versions  # noqa: E402  (bench/_machine.py)

from kademe.embed.ladder import Ladder  # noqa: E402
from kademe.embed.model import load_encoder  # noqa: E402
from kademe.models import resolve_model  # noqa: E402
from kademe.embed.oom import is_oom, release_memory  # noqa: E402
from kademe.settings import DEFAULT_MODEL, Settings  # noqa: E402
from kademe.testing import sample_chunks  # noqa: E402

RESULTS = Path(__file__).parent / "results"
VERSIONS = ("torch", "sentence-transformers", "transformers", "kademe")
GPU_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class SharedCard(Ladder):
    """A ladder whose injected ceiling rises from ``low`` to ``high`` tokens once a third of the
    chunks are embedded: another job on the card has finished. ``low == high``: a fixed ceiling."""

    def __init__(self, s: Settings, low: int, high: int, total: int):
        super().__init__(s)
        self.low, self.high, self.switch_at, self.done = low, high, total // 3, 0

    def encode_batch(self, rung, texts, padded_tokens):
        os.environ["KADEME_FAULT_OOM_TOKENS"] = str(self.low if self.done < self.switch_at else self.high)
        out = super().encode_batch(rung, texts, padded_tokens)
        self.done += len(texts)
        return out


ARGS_DTYPE = {"setting": "auto", "gpu": "float32"}  # --dtype, and what it resolves to on the GPU rungs (set in main)


def run_ladder(texts, counts, regrow: bool, batch_size: int = 32, ceilings: tuple[int, int] | None = None) -> tuple[float, Ladder, list]:
    s = Settings(device="cuda", batch_size=batch_size, dtype=ARGS_DTYPE["setting"])
    ladder = SharedCard(s, *ceilings, len(texts)) if ceilings else Ladder(s)
    if not regrow:
        ladder.budget.grow_after = 10**9
    t = time.perf_counter()
    out = ladder.embed(texts, counts)
    return time.perf_counter() - t, ladder, out.events


def gpu_device() -> str:
    """Where the ladder's GPU rungs compute: the CPU under the fake card (injected mode), else the card."""
    from kademe.faults import fake_cuda

    return "cpu" if fake_cuda() else "cuda"


def run_static(texts, counts, rows: int) -> float | None:
    """Length-sorted fixed-size batches, as ``SentenceTransformer.encode(batch_size=rows)`` forms them.

    None when that batch size runs out of memory (only on a real card: injected OOMs are the ladder's).
    """
    model = load_encoder(resolve_model(DEFAULT_MODEL), gpu_device(), ARGS_DTYPE["gpu"])  # the instance the ladder's gpu rung uses
    t = time.perf_counter()
    try:
        model.encode(texts, batch_size=rows, normalize_embeddings=True, show_progress_bar=False)
    except Exception as exc:  # noqa: BLE001 - only OOM is an outcome; the rest propagates
        if not is_oom(exc):
            raise
        oom = True
    else:
        oom = False
    if oom:
        release_memory()
        return None
    return time.perf_counter() - t


def interleaved(repeat: int, candidates: dict[str, Callable[[], float | None]]) -> dict[str, list[float | None]]:
    """Seconds of every candidate, each run once per round for ``repeat`` rounds, so noise hits all alike."""
    times: dict[str, list[float | None]] = {name: [] for name in candidates}
    for _ in range(repeat):
        for name, run in candidates.items():
            times[name].append(run())
    return times


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
    ap.add_argument("--budgets", type=int, nargs="+", default=[1024, 2048, 4096], help="fixed injected ceilings (padded tokens)")
    ap.add_argument("--freed", type=int, nargs=2, default=[1024, 4096], metavar=("LOW", "HIGH"),
                    help="a ceiling that rises from LOW to HIGH a third of the way through; --freed 0 0 skips it")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--chunks", type=int, default=None, help="default 400 (injected), 2000 (--gpu)")
    ap.add_argument("--gpu", action="store_true", help="on a real CUDA card under a memory hog, nothing injected")
    ap.add_argument("--leave-gb", type=float, default=1.0, help="with --gpu: GB of the card the hog leaves free")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--dtype", default="auto", choices=["auto", "float32", "float16", "bfloat16"],
                    help="encoder precision for the ladder and the static runs alike (auto: bf16/fp16 on a card, fp32 injected)")
    args = ap.parse_args()
    if not args.gpu:
        os.environ["KADEME_FAULT_FAKE_CUDA"] = os.environ.get("KADEME_FAULT_FAKE_CUDA", "1")
    from kademe.embed.rungs import rung_dtypes

    ARGS_DTYPE.update(setting=args.dtype, gpu=rung_dtypes(args.dtype)["gpu"])
    info = {"machine": machine(), "versions": versions(VERSIONS), "date": time.strftime("%Y-%m-%d"), "repeat": args.repeat,
            "dtype": ARGS_DTYPE["gpu"]}
    result = on_card(args, info) if args.gpu else injected(args, info)
    out = args.out or RESULTS / ("ladder-gpu.json" if args.gpu else "ladder.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


def injected(args, info: dict) -> dict:
    """Injected ceilings on the CPU: ladder vs best static in hindsight vs halving-only, per budget."""
    os.environ["KADEME_FAULT_FAKE_CUDA"] = "1"
    texts, counts = sample_chunks(args.chunks or 400)
    load_encoder(resolve_model(DEFAULT_MODEL), gpu_device(), ARGS_DTYPE["gpu"]).encode(texts[:4])  # warm up: load once, outside timings
    results = {}
    scenarios = {str(b): (b, b) for b in args.budgets}
    if any(args.freed):
        scenarios["->".join(map(str, args.freed))] = tuple(args.freed)
    for label, (low, high) in scenarios.items():
        sizes = feasible_rows(counts, low)  # a static size must survive the lowest ceiling
        events: dict[str, int] = {}

        def ladder(name: str, regrow: bool, ceilings=(low, high)) -> float:
            secs, _ladder, evs = run_ladder(texts, counts, regrow=regrow, ceilings=ceilings)
            events[name] = len(evs)
            return secs

        times = interleaved(args.repeat, {
            "ladder": lambda: ladder("ladder", True), "halving": lambda: ladder("halving", False),
            **{f"static-{r}": functools.partial(run_static, texts, counts, r) for r in sizes},
        })
        med = {k: statistics.median(v) for k, v in times.items()}
        best = min((k for k in med if k.startswith("static-")), key=med.get)
        results[label] = {
            "median_seconds": med, "runs": times, "oom_events": events, "best_static": best,
            "throughput_chunks_per_s": {k: len(texts) / v for k, v in med.items()},
            "ladder_vs_best_static": med[best] / med["ladder"],  # throughput ratio, target >= 0.85
            "ladder_vs_halving_only": med["halving"] / med["ladder"],
        }
        r = results[label]
        print(f"ceiling {label:>10} tokens: ladder {len(texts) / med['ladder']:.1f} chunks/s "
              f"({events['ladder']} OOM), best static {best} {len(texts) / med[best]:.1f} chunks/s, "
              f"halving-only {len(texts) / med['halving']:.1f} chunks/s ({events['halving']} OOM) | "
              f"ladder/best-static {r['ladder_vs_best_static']:.2f}x, ladder/halving {r['ladder_vs_halving_only']:.2f}x  (N={args.repeat})")
    return {
        "bench": "ladder", "chunks": len(texts), "mean_tokens": statistics.mean(counts), **info,
        "target": "ladder throughput >= 0.85 x best static batch size in hindsight",
        "note": "injected OOMs are raised before the forward pass (no wasted compute; the full gc.collect over the unfrozen heap is paid)",
        "budgets": results,
    }


def on_card(args, info: dict) -> dict:
    """A real card, a real memory hog: the ladder vs every static batch size that does not OOM."""
    import torch

    from kademe.testing import hold_gpu_memory

    if not torch.cuda.is_available():
        raise SystemExit("--gpu needs a CUDA device")
    texts, counts = sample_chunks(args.chunks or 2000)
    load_encoder(resolve_model(DEFAULT_MODEL), "cuda", ARGS_DTYPE["gpu"]).encode(texts[:4])
    hog = hold_gpu_memory(int(args.leave_gb * 2**30))
    free, total = torch.cuda.mem_get_info()
    ladder_info: dict = {}

    def ladder() -> float:
        secs, lad, evs = run_ladder(texts, counts, regrow=True, batch_size=max(GPU_SIZES))
        ladder_info.update(oom_events=[e.as_dict() for e in evs], final_budget_tokens=lad.budget.tokens,
                           cost_per_token_bytes=lad.budget.cost_per_token, rung=lad.rung, allocator=lad.allocator)
        return secs

    times = interleaved(args.repeat, {"ladder": ladder, **{f"static-{r}": functools.partial(run_static, texts, counts, r) for r in GPU_SIZES}})
    del hog
    release_memory()
    feasible = {k: statistics.median(v) for k, v in times.items() if None not in v}
    oom = [k for k in times if k not in feasible]
    statics = [k for k in feasible if k.startswith("static-")]
    if not statics:
        raise SystemExit(f"every static batch size ran out of memory under the hog ({oom}); raise --leave-gb")
    best = min(statics, key=feasible.get)
    ratio = feasible[best] / feasible["ladder"]
    print(f"{torch.cuda.get_device_name()}: hog leaves {free / 2**30:.1f} of {total / 2**30:.1f} GiB | "
          f"ladder {len(texts) / feasible['ladder']:.1f} chunks/s ({len(ladder_info['oom_events'])} OOM, rung {ladder_info['rung']}), "
          f"best static {best} {len(texts) / feasible[best]:.1f} chunks/s, static OOM: {oom} | "
          f"ladder/best-static {ratio:.2f}x (N={args.repeat})")
    return {
        "bench": "ladder-gpu", "chunks": len(texts), "mean_tokens": statistics.mean(counts), **info,
        "gpu": torch.cuda.get_device_name(), "free_gb_under_hog": free / 2**30, "total_gb": total / 2**30,
        "runs": times, "median_seconds": feasible, "static_oom": oom, "best_static": best,
        "ladder": ladder_info, "ladder_vs_best_static": ratio,
        "target": "ladder throughput >= 0.85 x the best static batch size found by hand on the same card",
    }


if __name__ == "__main__":
    main()
