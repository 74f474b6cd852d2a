"""Stop on request: Ctrl-C, SIGTERM or a cancelled flow run ends a run at its next safe point (issue 30).

One flag per process. The ``kademe`` command's signal handlers set it (``on_signals``); so does a
flow that Prefect's runner cancels (``flows/stopping.py``). Every stage looks at it where a
killed run could stop anyway (``kademe.faults.crash_point``: between batches and shards, so the
encoder stops at its next batch) and raises ``Interrupted``, which the flows turn into a
Cancelled state. What was committed stays committed; a rerun of the same command resumes.

Before a flow runs, or at a second signal, the command exits at once (exit code 130), after the
``at_once`` callbacks (the temporary Prefect server's stop, without waiting for it).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable

MESSAGE = "interrupted; committed work is kept — rerun the same command to resume"
EXIT_CODE = 130  # 128 + SIGINT, as a shell reports a Ctrl-C

_stop = threading.Event()
_cooperating = [False]  # a flow runs (or ran): a first signal asks it to stop; before: a signal exits at once
_at_once: list[Callable[[], None]] = []


class Interrupted(Exception):
    """The run was asked to stop (Ctrl-C, SIGTERM, a cancelled flow run); committed work is kept."""

    def __init__(self, message: str = MESSAGE):
        super().__init__(message)


def request() -> None:
    """Ask every stage of this process to stop at its next safe point."""
    _stop.set()


def requested() -> bool:
    """Whether a stop was asked for."""
    return _stop.is_set()


def check() -> None:
    """Raise ``Interrupted`` when a stop was asked for (call it between batches, shards, steps)."""
    if _stop.is_set():
        raise Interrupted()


def wait(seconds: float) -> bool:
    """Sleep up to ``seconds``, waking when a stop is asked for; whether it was."""
    return _stop.wait(seconds)


def reset() -> None:
    """Forget a stop request (tests running several runs in one process)."""
    _stop.clear()
    _cooperating[0] = False


def at_once(fn: Callable[[], None]) -> None:
    """Call ``fn`` before a second signal's immediate exit (e.g. stop a server without waiting)."""
    _at_once.append(fn)


def cooperating() -> None:
    """From now on a first signal only sets the flag: a flow runs, and stops itself cleanly at its next safe point."""
    _cooperating[0] = True


def on_signals() -> None:
    """Install the SIGINT and SIGTERM handlers of the ``kademe`` command (main thread only).

    Before a flow runs (start-up: checks, imports, the model's load) a signal exits at once
    (``exit_now``): nothing of this run is committed yet. Once a flow runs (``cooperating``) the first
    signal sets the flag and the flow stops at its next safe point; a second one exits at once.
    """
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame) -> None:
        if _stop.is_set() or not _cooperating[0]:
            exit_now()
        _stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)


def exit_now(code: int = EXIT_CODE, say: bool = True) -> None:
    """Run the ``at_once`` callbacks, say how to resume (``say``), exit with ``code`` without waiting for anything.

    A second signal's exit, a signal's before a flow runs, and ``kademe``'s exit when its command
    ended before a flow ran (a failed check): nothing of the run is left to finish or to report.
    """
    for fn in _at_once:
        try:
            fn()
        except Exception:  # exiting anyway
            pass
    try:
        if say:
            sys.stderr.write(f"kademe: {MESSAGE}\n")
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
    except (OSError, ValueError):  # a closed pipe: nothing more can be said
        pass
    finally:
        os._exit(code)


def early() -> bool:
    """Whether something waits for an exit (``at_once``) while no flow has run: then ``exit_now`` ends the process."""
    return bool(_at_once) and not _cooperating[0]
