"""Run the flows from one process (``kademe ingest``, ``kademe upgrade``, ``kademe demo``).

Without ``PREFECT_API_URL`` a flow runs against a temporary Prefect server of this process. kademe
starts it itself (``TemporaryServer``), the way Prefect starts its own (``SubprocessASGIServer``:
the same uvicorn command, the same settings), with two differences that the user's clock sees
(issue 22):

- it starts in the background while this thread loads the model the embed stage will reuse, and
  without importing Prefect's server code into this process (~2-4 s of CPU that the model's load
  and the server's own start would share two cores with);
- at exit it is asked to stop (SIGTERM) and not waited for: Prefect waits up to 5 s for its
  shutdown, which then finishes on its own (recording the last task runs). Its output goes to
  ``<PREFECT_HOME>/kademe-temporary-server.log``, not to this process's stdout, so a caller that
  reads this process's output is not held until the server has gone;
- it does not register Prefect's block types at start (``PREFECT_SERVER_REGISTER_BLOCKS_ON_START``,
  unless set): the server lives as long as this process, whose flows create no blocks, and on a
  new Prefect home the registration cost ~1 s of the first run (measured: ready after 12.7 s
  instead of 13.7 s; an existing home skips it anyway).

With ``PREFECT_API_URL`` set (or ephemeral mode off) the flows run against that server and nothing
is started. Prefect is imported inside the functions, after ``_prefect_defaults`` has set its
environment.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import Future
from pathlib import Path

from kademe.settings import Settings


def begin_temporary_server() -> Future:
    """Start this process's temporary Prefect server in the background, once; the future of its API URL.

    ``kademe ingest`` calls it before its slower preflight checks, ``run_ingest`` otherwise: the
    import of Prefect and the server's start then overlap the import of torch and the model's load
    (issue 22). A run that stops before the flow leaves nothing behind: the server's stop is
    registered before it is launched, and the starting thread does not hold the exit.
    """
    global _starting
    if _starting is None:
        _prefect_defaults()
        _starting = _in_background(_start_temporary_server)
    return _starting


def run_ingest(s: Settings, years: list[int]) -> dict:
    """Run the ``ingest-years`` flow for ``years``; its result (``{"years": {year: summary}}``)."""
    server = begin_temporary_server()  # Prefect's import and its server, beside the model's load (issue 22)
    if _embedding_ahead(s, years):
        from kademe.embed.ladder import preload_encoder

        preload_encoder(s)  # while the server starts: the embed stage reuses the loaded model
    from flows.ingest import ingest_years
    from flows.parameters import parameters_of

    server.result()  # a failed start raises here, as it would at the flow's first API call
    return ingest_years(years, **parameters_of(ingest_years, s))


def run_upgrade(s: Settings, years: list[int]) -> dict:
    """Run the ``upgrade-years`` flow for ``years``; its result (``{"years": {year: {...}}}``)."""
    _prefect_defaults()
    _start_temporary_server()
    from flows.parameters import parameters_of
    from flows.upgrade import upgrade_years

    return upgrade_years(years, **parameters_of(upgrade_years, s))


def _prefect_defaults() -> None:
    """Quiet, offline-friendly Prefect defaults for a temporary server started from this process."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _start_temporary_server() -> str | None:
    """Start this process's temporary Prefect server when no API URL is set; its API URL.

    Run in the background (``_in_background``): importing Prefect's settings takes a second, and
    the server's start several, which the model's load then hides. Once the server answers, its
    URL becomes this process's ``PREFECT_API_URL`` (the environment, and Prefect's global settings
    context, which every thread reads), so the flow and Prefect's own workers talk to it. The
    first run with a Prefect home says on stderr why it takes longer (Prefect creates its database).

    Returns:
        The API URL once the server answers (raises ``RuntimeError`` with the server's log when it
        does not); None when ``PREFECT_API_URL`` is set or ephemeral mode is off (the flow then
        uses that server, or Prefect says what is missing).

    Example:
        >>> _in_background(_start_temporary_server).result()  # doctest: +SKIP
        'http://127.0.0.1:39123/api'
    """
    global _temporary
    if _temporary is not None:
        return _temporary.api_url
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    if settings.api.url or not settings.server.ephemeral.enabled:
        return None
    if database := _new_database():  # looked at before the server creates it
        print(f"kademe: first run with this Prefect home: Prefect creates its database ({database}), which takes several "
              "seconds more; later runs reuse it.", file=sys.stderr, flush=True)
    server = TemporaryServer(Path(settings.home), settings.to_environment_variables(exclude_unset=True))
    server.start(timeout=float(settings.server.ephemeral.startup_timeout_seconds))
    _temporary = server
    os.environ["PREFECT_API_URL"] = server.api_url
    import prefect.context

    # threads without a settings context of their own read the global one (Prefect's own refresh, where it has one)
    refresh = getattr(prefect.context, "refresh_global_settings_context", None)
    if refresh is not None:
        refresh()
    else:
        prefect.context.GLOBAL_SETTINGS_CONTEXT = prefect.context.root_settings_context()
    _no_heartbeats()
    return server.api_url


def _no_heartbeats() -> None:
    """No flow-run heartbeats against this process's temporary server (issue 22).

    Heartbeats let a long-lived server mark a run crashed when its process dies unheard; this
    server lives and dies with the process, so nobody would read them. And Prefect's heartbeat
    thread sleeps in whole seconds, which every flow run waits out when it ends (~1 s per year
    and 1 s for the ``ingest-years`` run, measured). Against a real server (``PREFECT_API_URL``)
    they stay on.
    """
    import prefect.context
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY

    ctx = prefect.context.GLOBAL_SETTINGS_CONTEXT
    settings = ctx.settings.copy_with_update(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})
    prefect.context.GLOBAL_SETTINGS_CONTEXT = prefect.context.SettingsContext(profile=ctx.profile, settings=settings)


def temporary_api_url() -> str | None:
    """The API URL of the temporary server this process started, if any (``flows.limits`` takes no slot there)."""
    return _temporary.api_url if _temporary is not None else None


REGISTER_BLOCKS = ("PREFECT_SERVER_REGISTER_BLOCKS_ON_START", "PREFECT_API_BLOCKS_REGISTER_ON_START")  # the name and its alias


class TemporaryServer:
    """Prefect's server in a subprocess on a free loopback port, for this process only.

    The command and environment are those of Prefect's ``SubprocessASGIServer`` (uvicorn, Prefect's
    app factory, the UI off, ephemeral mode); its output goes to ``log`` under the Prefect home.
    ``stop`` (registered at exit) sends SIGTERM and returns: the server finishes its shutdown on
    its own.
    """

    def __init__(self, home: Path, settings_env: dict[str, str]):
        home.mkdir(parents=True, exist_ok=True)
        self.log = home / "kademe-temporary-server.log"
        self.env = {**os.environ, **settings_env, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
                    "PREFECT__SERVER_FINAL": "1"}
        if not any(k in self.env for k in REGISTER_BLOCKS):
            self.env[REGISTER_BLOCKS[0]] = "false"
        self.port = 0
        self.process: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._stopped = False  # stop() came first (the process is exiting): launch nothing

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self, timeout: float) -> None:
        """Launch the server and wait until ``/api/health`` answers (``RuntimeError`` after ``timeout`` s)."""
        import prefect

        app_dir = str(Path(prefect.__file__).resolve().parent.parent)
        deadline = time.monotonic() + timeout
        atexit.register(self.stop)
        while True:
            self.port = _free_port()
            with self._lock, open(self.log, "wb") as log:
                if self._stopped:
                    raise RuntimeError("kademe is exiting: the temporary Prefect server was not started")
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "uvicorn", "--app-dir", app_dir, "--factory",
                     "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(self.port),
                     "--log-level", "error", "--lifespan", "on"],
                    env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break
                if _answers(f"{self.api_url}/health"):
                    return
                time.sleep(0.1)
            code = self.process.poll()
            if code == 3 and time.monotonic() < deadline:  # uvicorn: the port was taken meanwhile; another one
                continue
            self.stop()
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"Prefect's temporary server did not answer within {timeout:.0f} s "
                               f"({'exit code ' + str(code) if code is not None else 'still starting'}); its log "
                               f"({self.log}):\n{tail}")

    def stop(self) -> None:
        """Ask the server to stop (SIGTERM) without waiting for it; no launch after this."""
        with self._lock:
            self._stopped = True
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()
            self.process = None


_temporary: TemporaryServer | None = None
_starting: Future | None = None  # begin_temporary_server's, once per process


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through an HTTP(S)_PROXY


def _answers(url: str) -> bool:
    try:
        with _LOOPBACK.open(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


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


def _embedding_ahead(s: Settings, years: list[int]) -> bool:
    """Whether some year has never been embedded here (no embed entry in its manifest): then the model is needed.

    A warm rerun skips the preload (it would load a model no stage uses); a rerun with changed
    settings loads the model in the embed stage.
    """
    return any("embed" not in s.partition(year).manifest() for year in years)
