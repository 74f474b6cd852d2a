"""Run the flows from one process (``kademe ingest``, ``kademe upgrade``, ``kademe demo``).

Without ``PREFECT_API_URL`` a flow runs against this process's temporary Prefect server, Prefect's
own ephemeral server, which ``flows.server`` starts early, in the background, while this thread
loads the model the embed stage will reuse (issue 22). With ``PREFECT_API_URL`` set (or ephemeral
mode off) the flows run against that server and nothing is started. Prefect is imported inside the
functions, after ``prepare_prefect`` has set its environment.

The flow runs in a thread of its own while this (the main) thread waits for it: a Ctrl-C or a
SIGTERM (``kademe.interrupt``) is then handled at once, by asking the flow's stages to stop at
their next safe point, and the flow ends Cancelled (issue 30). Prefect's own SIGTERM handler is
only installed by a flow in the main thread (a worker's flow-run process), where it belongs.
"""

from __future__ import annotations

import contextvars
import os
import threading
from concurrent.futures import Future

from kademe import interrupt
from kademe.faults import pause_point
from kademe.settings import Settings

# Prefect's block types are not registered by the temporary server at start (either name): it lives as long as this
# process, whose flows create no blocks, and on a new Prefect home the registration cost ~1 s of the first run.
REGISTER_BLOCKS = ("PREFECT_SERVER_REGISTER_BLOCKS_ON_START", "PREFECT_API_BLOCKS_REGISTER_ON_START")  # the name and its alias


def prepare_prefect():
    """Set Prefect's environment and start the temporary server in the background; the future of its API URL.

    ``kademe ingest`` calls it before its slower preflight checks, ``run_ingest`` otherwise: Prefect's
    import and its server's start then overlap the import of torch and the model's load (issue 22).
    """
    from flows.server import begin_temporary_server

    _prefect_defaults()
    return begin_temporary_server()


def run_ingest(s: Settings, years: list[int]) -> dict:
    """Run the ``ingest-years`` flow for ``years``; its result (``{"years": {year: summary}}``).

    Raises:
        kademe.interrupt.Interrupted: the run was asked to stop (it ended Cancelled; a rerun resumes).
    """
    server = prepare_prefect()  # Prefect's import and its server, beside the model's load (issue 22)
    if _embedding_ahead(s, years):
        from kademe.embed.ladder import preload_encoder

        preload_encoder(s)  # while the server starts: the embed stage reuses the loaded model
    from flows.ingest import ingest_years
    from flows.parameters import parameters_of

    server.result()  # a failed start raises here, as it would at the flow's first API call
    pause_point("startup")
    return run_flow(ingest_years, years, **parameters_of(ingest_years, s))


def run_upgrade(s: Settings, years: list[int]) -> dict:
    """Run the ``upgrade-years`` flow for ``years``; its result (``{"years": {year: {...}}}``)."""
    server = prepare_prefect()
    from flows.parameters import parameters_of
    from flows.upgrade import upgrade_years

    server.result()
    return run_flow(upgrade_years, years, **parameters_of(upgrade_years, s))


def run_flow(flow, *args, **kwargs):
    """Call ``flow`` in a thread of its own and wait for it here; its result.

    Meanwhile a signal only asks the flow to stop (``kademe.interrupt``): it ends Cancelled at its
    stages' next safe point, and this raises ``Interrupted``. On this process's temporary server the
    flow sends no heartbeats: they let a long-lived server mark a run crashed when its process dies
    unheard, but this server dies with the process, and Prefect's heartbeat thread sleeps in whole
    seconds, which every flow run waits out when it ends (~1 s a year, measured, issue 22).

    Raises:
        kademe.interrupt.Interrupted: the flow ended Cancelled (or a stop was asked for before it ran).
    """
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows.server import on_temporary_server

    interrupt.check()
    done: Future = Future()
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None} if on_temporary_server() else {}):
        context = contextvars.copy_context()  # the flow's thread sees these settings

    def work() -> None:
        try:
            done.set_result(context.run(flow, *args, return_state=True, **kwargs))
        except BaseException as e:  # seen by the waiting thread
            done.set_exception(e)

    interrupt.cooperating()  # from now on a first signal asks the flow to stop (and the exit after it to go on)
    threading.Thread(target=work, name="kademe-flow", daemon=True).start()
    state = _wait(done)
    if state.is_cancelled():
        raise interrupt.Interrupted()
    return state.result()


def _wait(done: Future):
    """The flow's final state; a KeyboardInterrupt here (no handler of kademe's installed) asks the flow to stop."""
    try:
        return done.result()
    except KeyboardInterrupt:
        interrupt.request()
        return done.result()


def _prefect_defaults() -> None:
    """Quiet, offline-friendly Prefect defaults for a temporary server started from this process."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not any(k in os.environ for k in REGISTER_BLOCKS):
        os.environ[REGISTER_BLOCKS[0]] = "false"


def _embedding_ahead(s: Settings, years: list[int]) -> bool:
    """Whether some year has never been embedded here (no embed entry in its manifest): then the model is needed.

    A warm rerun skips the preload (it would load a model no stage uses); a rerun with changed
    settings loads the model in the embed stage.
    """
    return any("embed" not in s.partition(year).manifest() for year in years)
