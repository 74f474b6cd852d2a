"""Fault injectors: documented test and benchmark instruments, read from the environment.

They raise the genuine exceptions at the seams where real faults happen, so the code under test
cannot tell them from the real thing. All are off unless their variable is set.

``KADEME_FAULT_FAKE_CUDA=1``
    Behave as if CUDA were present: the GPU rungs run (the model computes on the CPU).
``KADEME_FAULT_OOM_TOKENS=N``
    On GPU rungs, a batch with more than N padded tokens (rows x longest row) raises
    ``torch.cuda.OutOfMemoryError``.
``KADEME_FAULT_OOM_RUNGS=gpu,gpu-batch1,...``
    Those ladder rungs always raise ``torch.cuda.OutOfMemoryError``.
``KADEME_FAULT_FREE_MB=N``
    With ``KADEME_FAULT_FAKE_CUDA``: the free GPU memory the planner measures is N MiB (read at
    every measurement, so changing it mid-run plays another job taking or freeing memory).
``KADEME_FAULT_CARD_RATE=N``
    A stand-in card (``kademe.embed.card.StandInCard``, issue 32): GPU rungs run, each batch sleeps
    ``tokens / N`` seconds (N tokens a second; the GIL released) instead of computing, and returns
    vectors of the model's width. Free memory as ``KADEME_FAULT_FREE_MB`` says, else 16 GiB. For
    card-busy benchmarks and tests: ``bench/card.py`` sets N = chunks/s x the corpus's mean chunk length.
``KADEME_FAULT_CARD_LOG=<path>``
    Append one JSON line per GPU-rung batch to ``path``: its start, busy seconds (CUDA events on a real
    card, the wall clock on a stand-in or faked one), rows, tokens and padded tokens (``kademe.embed.busy``).
``KADEME_FAULT_CRASH_AT=<point>[:<n>]``
    ``os._exit(137)`` the n-th time (default 1st) the process reaches the named crash point, as a
    SIGKILL would. ``CRASH_POINTS`` lists the points.
``KADEME_FAULT_PAUSE_AT=<point>[:<n>]``
    The n-th time (default 1st) the process reaches the named point, write
    ``kademe: KADEME_FAULT_PAUSE_AT=<spec>: paused`` on stderr and wait there until the run is asked
    to stop (Ctrl-C, SIGTERM, a cancelled flow run), at most ``KADEME_FAULT_PAUSE_SECONDS`` (default
    60) s: a test sends its signal while the run is at a known point (issue 30). ``PAUSE_POINTS``
    lists the points: the crash points, ``startup`` (the model loaded, the flow not yet started)
    and ``index-start`` (before the index build).
``KADEME_FAULT_QDRANT_ERROR_RATE=0.3``
    That share of store calls raises a transient error (``InjectedStoreError``, a
    ``ConnectionError``) before the call is made, on either store engine. ``KADEME_FAULT_SEED`` seeds it.
``KADEME_FAULT_QDRANT_DOWN_CALLS=N``
    The first N store calls of the process raise that error: an outage of known length, for
    testing retries deterministically.
"""

from __future__ import annotations

import os
import random
import sys
import threading

from kademe import interrupt

# Every place a run can be killed by KADEME_FAULT_CRASH_AT, in the order a year reaches them.
CRASH_POINTS = (
    "read-start",
    "read-batch",  # after each batch of lines is parsed, before it is written
    "read-done",
    "clean-start",
    "clean-batch",
    "clean-done",
    "chunk-start",
    "chunk-batch",  # after a batch of documents is split, before its chunks are written
    "chunk-shard",  # after a shard of chunks is committed (and handed to the lexical and embed stages)
    "chunk-done",
    "lexical-start",
    "lexical-shard",  # after a shard of sparse vectors is written
    "lexical-done",
    "model-loaded",
    "embed-start",
    "embed-batch",  # after a batch is encoded, before its shard is written
    "embed-shard",  # after a shard is written
    "embed-done",
    "upsert-start",
    "upsert-batch",  # after a batch of points is sent, before its shard is marked done
    "upsert-shard",
    "upsert-prune",  # before stale points are deleted
    "upsert-done",
    "verify-start",
    "year-done",  # between years
    "checkpoint-rename",  # a temporary file is complete but not yet renamed into place
)
# Where KADEME_FAULT_PAUSE_AT can hold a run: the crash points and two places where no crash point is.
PAUSE_POINTS = CRASH_POINTS + ("startup", "index-start")
# Inside Qdrant Edge's ``optimize()``, once a segment is being built (``temp_segments/`` holds it):
# its own kill test (tests/test_store.py), since the flow's tiny test years never reach a build.
STORE_CRASH_POINTS = ("index-build",)
# Inside a night's delta (issue 29): reached only when the store already holds an earlier checkpoint
# of the partition (its own kill matrix: tests/test_nights.py).
NIGHT_CRASH_POINTS = (
    "upsert-delta",  # a shard's changed points are acknowledged by the store, the next not yet sent
    "upsert-delete",  # a batch of withdrawn points is deleted, the rest not yet
)
# The points of ``kademe upgrade`` (its own kill matrix; the embed checkpoint's points apply too).
UPGRADE_CRASH_POINTS = (
    "upgrade-start",
    "upgrade-shard",  # an upgraded shard is written, its points not yet upserted
    "upgrade-upsert",  # a shard's upgraded points are acknowledged by the store
    "upgrade-swap",  # every point is upgraded; the new checkpoint is not yet committed
)

# The points of a collection (issue 29; the kill test of a night, tests/test_nights.py): at the end of a
# verified year in ``kademe ingest``, and in ``kademe collect``.
COLLECT_CRASH_POINTS = (
    "collect-start",  # superseded checkpoints found, none deleted yet
    "collect-delete",  # a superseded checkpoint's done file is deleted, its parts not yet
)

_counts: dict[str, int] = {}
_lock = threading.Lock()


def _reached(spec: str | None, name: str, counter: str) -> bool:
    """Whether an instrument's ``<point>[:<n>]`` spec names ``name`` and this is its n-th passage (counted under ``counter``)."""
    if not spec:
        return False
    point, _, nth = spec.partition(":")
    if point != name:
        return False
    with _lock:
        _counts[counter] = _counts.get(counter, 0) + 1
        return _counts[counter] == int(nth or 1)


def crash_point(name: str) -> None:
    """A safe point: die here, abruptly, if ``KADEME_FAULT_CRASH_AT`` names it (and its count is reached);
    pause here if ``KADEME_FAULT_PAUSE_AT`` does; raise ``Interrupted`` if the run was asked to stop.

    Every crash point lies between two units of work whose loss a rerun repairs, so a run asked to
    stop (Ctrl-C, SIGTERM, a cancelled flow run; ``kademe.interrupt``) stops at the next one.
    """
    pause_point(name)
    interrupt.check()
    spec = os.environ.get("KADEME_FAULT_CRASH_AT")
    if _reached(spec, name, name):
        sys.stderr.write(f"kademe: KADEME_FAULT_CRASH_AT={spec}: killing the process\n")
        sys.stderr.flush()
        os._exit(137)


def pause_point(name: str) -> None:
    """Wait here until the run is asked to stop if ``KADEME_FAULT_PAUSE_AT`` names this point (``PAUSE_POINTS``)."""
    spec = os.environ.get("KADEME_FAULT_PAUSE_AT")
    if _reached(spec, name, f"pause:{name}"):
        sys.stderr.write(f"kademe: KADEME_FAULT_PAUSE_AT={spec}: paused\n")
        sys.stderr.flush()
        interrupt.wait(float(os.environ.get("KADEME_FAULT_PAUSE_SECONDS", "60") or 60))


def crash_watcher(name: str, folder: os.PathLike, pattern: str):
    """A crash point inside native code that holds the GIL: if ``KADEME_FAULT_CRASH_AT`` names
    ``name``, start a watcher process that SIGKILLs this one once ``folder`` holds ``pattern``.

    Returns:
        The watcher (``subprocess.Popen``; kill it when the guarded call returns), or None.
    """
    if os.environ.get("KADEME_FAULT_CRASH_AT", "").partition(":")[0] != name:
        return None
    import subprocess

    code = ("import os, pathlib, signal, sys, time\n"
            "pid, folder, pattern, spec = int(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3], sys.argv[4]\n"
            "while not any(folder.glob(pattern)):\n"
            "    time.sleep(0.002)\n"
            "sys.stderr.write(f'kademe: KADEME_FAULT_CRASH_AT={spec}: killing the process\\n')\n"
            "os.kill(pid, signal.SIGKILL)\n")
    return subprocess.Popen([sys.executable, "-c", code, str(os.getpid()), str(folder), pattern,
                             os.environ["KADEME_FAULT_CRASH_AT"]])


def active_instruments() -> list[str]:
    """``NAME=value`` of every ``KADEME_FAULT_*`` variable set now (reports say when a run was instrumented)."""
    return sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith("KADEME_FAULT_") and v not in ("", "0"))


def reset() -> None:
    """Forget how often crash points and store calls were reached (for tests in one process)."""
    with _lock:
        _counts.clear()


def fake_cuda() -> bool:
    """True when ``KADEME_FAULT_FAKE_CUDA`` asks GPU code paths to run without a GPU."""
    return os.environ.get("KADEME_FAULT_FAKE_CUDA", "") not in ("", "0", "false")


def encoder_instruments() -> bool:
    """True when an instrument of the encoder seam is set (fake card, free memory, injected OOM, stand-in card, card log)."""
    return fake_cuda() or any(os.environ.get(f"KADEME_FAULT_{name}", "") not in ("", "0")
                              for name in ("FREE_MB", "OOM_RUNGS", "OOM_TOKENS", "CARD_RATE", "CARD_LOG"))


def card_rate() -> float | None:
    """``KADEME_FAULT_CARD_RATE`` (tokens a second of the stand-in card), or None when unset."""
    rate = os.environ.get("KADEME_FAULT_CARD_RATE", "")
    if rate in ("", "0"):
        return None
    if float(rate) <= 0:
        raise ValueError(f"KADEME_FAULT_CARD_RATE must be a positive number of tokens a second, got {rate!r}")
    return float(rate)


def card_log_path() -> str | None:
    """``KADEME_FAULT_CARD_LOG``: the file each GPU-rung batch's busy seconds are appended to, or None."""
    return os.environ.get("KADEME_FAULT_CARD_LOG") or None


def fake_free_bytes() -> int | None:
    """``KADEME_FAULT_FREE_MB`` in bytes when CUDA is faked (or a stand-in card is set) and the variable is set; else None."""
    mb = os.environ.get("KADEME_FAULT_FREE_MB", "")
    return int(float(mb) * 2**20) if mb and (fake_cuda() or card_rate() is not None) else None


def check_oom(rung: str, rows: int, padded_tokens: int) -> None:
    """Raise ``torch.cuda.OutOfMemoryError`` when an OOM instrument says this batch must fail."""
    if not rung.startswith("gpu"):
        return
    forced = {r.strip() for r in os.environ.get("KADEME_FAULT_OOM_RUNGS", "").split(",") if r.strip()}
    limit = os.environ.get("KADEME_FAULT_OOM_TOKENS")
    if rung in forced or (limit and padded_tokens > int(limit)):
        import torch

        raise torch.cuda.OutOfMemoryError(
            f"CUDA out of memory. Tried to allocate {padded_tokens} tokens' worth "
            f"(injected by KADEME_FAULT_*: rung={rung}, rows={rows})"
        )


_rng = random.Random(int(os.environ.get("KADEME_FAULT_SEED", "0")))


def maybe_store_error(operation: str) -> None:
    """Raise a transient qdrant-client error when a store-fault instrument says this call fails."""
    rate = float(os.environ.get("KADEME_FAULT_QDRANT_ERROR_RATE", "0") or 0)
    down = int(os.environ.get("KADEME_FAULT_QDRANT_DOWN_CALLS", "0") or 0)
    if rate <= 0 and down <= 0:
        return
    with _lock:
        _counts["store-call"] = _counts.get("store-call", 0) + 1
        fail = _counts["store-call"] <= down or (rate > 0 and _rng.random() < rate)
    if fail:
        raise InjectedStoreError(f"injected transient error in {operation}")


class InjectedStoreError(ConnectionError):
    """The transient error the store instruments raise: a lost connection, as either engine can meet."""
