"""This process's temporary Prefect server: Prefect's own ephemeral server, started early.

Without ``PREFECT_API_URL`` (ephemeral mode on, Prefect's default) Prefect runs flows against a
temporary server that its client starts on first use: ``SubprocessASGIServer`` of
``prefect.server.api.server``, one per process, stopped (SIGTERM) at the process's exit.
``begin_temporary_server`` starts that same server earlier, in a background thread, while the
main thread imports torch and loads the model (issue 22); the flow's client then finds it running.
Prefect's settings are not touched: ``PREFECT_API_URL`` stays unset, which is how ``flows.limits``
tells this server from a shared one (``on_temporary_server``).

Two things kademe adds, by public means (issues 30 and 31):

- the server is launched from a thread that blocks SIGINT, and a process inherits the signal mask
  of the thread that launched it: a Ctrl-C at a terminal, which reaches the whole process group,
  leaves the server up until the flow has reported its Cancelled state, and Prefect's stop at exit
  ends it last;
- a second Ctrl-C (``kademe.interrupt.exit_now``) asks it to stop (SIGTERM) without waiting: it
  finishes what it does (a first run's database migration included) and exits on its own;
- a new Prefect home's SQLite database is a copy of one that Prefect migrated before, on this
  machine, for this Prefect version (``kademe.prefect_db``): Prefect's 116 migrations cost a first
  run 15-23 s on 2 cores, the copy a few milliseconds (issue 32, point 4). Prefect still checks the
  copy's migrations at start (it is at head: nothing to do), and the home works with Prefect's CLI.

This module imports no flow: ``flows.launch`` (the entry point) and ``flows.limits`` import it.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from concurrent.futures import Future

from flows import prefect_db
from kademe import interrupt

_starting: Future | None = None  # begin_temporary_server's, once per process


def begin_temporary_server() -> Future:
    """Start this process's temporary Prefect server in the background, once; the future of its API URL.

    Set Prefect's environment first (``flows.launch.prepare_prefect``). The future's result is the
    server's API URL, or None when ``PREFECT_API_URL`` is set or ephemeral mode is off (the flows
    then use that server, or Prefect says what is missing); a failed start raises at ``result()``.
    The starting thread does not hold the process's exit.

    Example:
        >>> begin_temporary_server().result()  # doctest: +SKIP
        'http://127.0.0.1:8421/api'
    """
    global _starting
    if _starting is None:
        _starting = _in_background(_start_temporary_server)
    return _starting


def on_temporary_server() -> bool:
    """Whether this process's flows run on its temporary server (no ``PREFECT_API_URL``, ephemeral mode on)."""
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    return not settings.api.url and settings.server.ephemeral.enabled


def _start_temporary_server() -> str | None:
    """Prefect's ephemeral server, started now; its API URL (None: a server is configured, nothing started).

    The first run with a Prefect home says on stderr why it takes longer (Prefect creates its database).
    """
    if not on_temporary_server():
        return None
    database = _new_database()  # looked at before the server creates it
    if database and not prefect_db.seed(database):
        print(f"kademe: first run with this Prefect home: Prefect creates its database ({database}), which takes several "
              "seconds more; later runs reuse it.", file=sys.stderr, flush=True)
    # This thread only, inherited by the server's process: a terminal's Ctrl-C is kademe's to handle (issue 30).
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # the instance Prefect's own clients use in ephemeral mode
    interrupt.at_once(lambda: _ask_to_stop(server))
    server.start()  # a free port, the health check, and Prefect's stop registered for the exit
    if database:  # migrated now, and no flow has run yet (the flow waits for this function): keep a copy for new homes
        prefect_db.keep(database)
    return server.api_url


def _ask_to_stop(server) -> None:
    """SIGTERM to the server's process, not waited for (a second Ctrl-C exits at once)."""
    process = server.server_process
    if process is not None and process.poll() is None:
        process.terminate()


def _in_background(fn) -> Future:
    """``fn()`` in a daemon thread of its own (an exit does not wait for it); the caller waits on the future."""
    future: Future = Future()

    def work() -> None:
        try:
            future.set_result(fn())
        except BaseException as e:  # the caller sees it at future.result()
            future.set_exception(e)

    threading.Thread(target=work, name="kademe-prefect-server", daemon=True).start()
    return future


def _new_database() -> str | None:
    """The path of Prefect's SQLite database when it does not exist yet (the first run with this Prefect home), else None."""
    from prefect.settings import get_current_settings

    url = get_current_settings().server.database.connection_url
    url = url.get_secret_value() if hasattr(url, "get_secret_value") else str(url or "")
    path = url.split(":///", 1)[1] if url.startswith("sqlite") and ":///" in url else None
    return path if path and not os.path.exists(path) else None
