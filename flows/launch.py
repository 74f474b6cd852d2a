"""Run the flows from one process (``kademe ingest``, ``kademe upgrade``, ``kademe demo``).

Without ``PREFECT_API_URL`` a flow runs against Prefect's temporary server, which Prefect starts on
the flow's first API call (~8 s of waiting on a 2-core box). ``run_ingest`` starts it in the
background instead, while this thread loads the model the embed stage will reuse, and starts the
flow once the server answers. With ``PREFECT_API_URL`` set the flows run against that server.

Prefect is imported inside the functions, after ``_prefect_defaults`` has set its environment.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import Future, ThreadPoolExecutor

from kademe.settings import Settings


def run_ingest(s: Settings, years: list[int]) -> dict:
    """Run the ``ingest-years`` flow for ``years``; its result (``{"years": {year: summary}}``)."""
    _prefect_defaults()
    server = _in_background(_start_temporary_server)  # Prefect's import and its server, beside the model's load (issue 22)
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
    from flows.parameters import parameters_of
    from flows.upgrade import upgrade_years

    return upgrade_years(years, **parameters_of(upgrade_years, s))


def _prefect_defaults() -> None:
    """Quiet, offline-friendly Prefect defaults for a temporary server started from this process."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _start_temporary_server() -> bool:
    """Start Prefect's temporary server when no API URL is set; whether one was started.

    Run in the background (``_in_background``): importing Prefect alone takes seconds, which the
    model's load then hides. Its ``SubprocessASGIServer`` is one per process (port None), so a
    server started here is the one the flow then finds running. The caller must wait for the
    future before starting the flow: the server counts as running from the moment it is launched,
    not from its first healthy answer. The first run with a Prefect home says on stderr why it
    takes longer (Prefect creates its database).

    Returns:
        True once the server answers (raises what its start raised); False when ``PREFECT_API_URL``
        is set or ephemeral mode is off (the flow then starts the server it needs, if any, itself).

    Example:
        >>> _in_background(_start_temporary_server).result() in (True, False)  # doctest: +SKIP
        True
    """
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    if settings.api.url or not settings.server.ephemeral.enabled:
        return False
    if database := _new_database():  # looked at before the server creates it
        print(f"kademe: first run with this Prefect home: Prefect creates its database ({database}), which takes several "
              "seconds more; later runs reuse it.", file=sys.stderr, flush=True)
    from prefect.server.api.server import SubprocessASGIServer

    SubprocessASGIServer().start()
    return True


def _in_background(fn) -> Future:
    """``fn()`` in a thread of its own; the caller waits on the future."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kademe-prefect-server")
    future = pool.submit(fn)
    pool.shutdown(wait=False)  # the start runs on; the caller waits on the future
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
