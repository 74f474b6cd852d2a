"""Catch a bad ``kademe ingest`` before any work starts: each problem is one ``KademeError`` saying what to do.

Checked in the order a run would meet them: every year's source file, the models, the device, a
writable work directory, then the store (open it and create or check the collection, so a wrong
vector size, URL or API key fails here, in one line, instead of after the embedding).
"""

from __future__ import annotations

from kademe.embed.card import choose_card
from kademe.errors import KademeError
from kademe.models import fetch_models
from kademe.settings import Settings
from kademe.sources import resolve_source
from kademe.partition import partitions
from kademe.storage import is_remote, open_storage, storage_error
from kademe.store import missing_collection, open_store
from kademe.upsert import ensure_collection


def check_ingest(s: Settings, years: list[int]) -> None:
    """Raise the first ``KademeError`` an ingest of ``years`` with ``s`` would meet; return None when none.

    Example:
        >>> check_ingest(Settings(source="data/nope_{year}.ndjson"), [2011])  # doctest: +SKIP
        Traceback (most recent call last):
        kademe.errors.KademeError: Source file 'data/nope_2011.ndjson' for year 2011 does not exist. ...
    """
    check_inputs(s, years)
    check_resources(s)


def check_inputs(s: Settings, years: list[int]) -> None:
    """The checks that cost nothing: every year's source file and the models (``check_ingest``'s first half).

    A Hub model that the cache lacks is downloaded here, once, before any flow starts (issue 30).
    ``kademe ingest`` starts Prefect's temporary server right after them, beside the slower half.
    """
    for year in years:
        resolve_source(s.source, year)
    fetch_models(s)


def check_resources(s: Settings) -> None:
    """The device (this imports torch), the work directory and the store (``check_ingest``'s second half)."""
    choose_card().gpu_rungs(s.device)  # --device cuda without CUDA
    if is_remote(s.workdir) and not s.qdrant_url:
        open_store(s)  # raises the one-line error naming --qdrant-url, before any network call
    try:
        storage = open_storage(s.workdir)  # a path or a URL: one probe for both
        storage.put(".kademe-write-test", b"ok")
        storage.delete(".kademe-write-test")
    except KademeError:
        raise
    except Exception as e:
        if is_remote(s.workdir):  # an object store's refusal (no such bucket, no credentials) or silence
            raise storage_error(s.workdir, e) from None
        if not isinstance(e, OSError):
            raise
        raise KademeError(f"Work directory '{s.workdir}' is not writable: {e.strerror}.\n\nPass --workdir with a writable folder.") from None
    with open_store(s) as store:
        ensure_collection(store, s)


def check_upgrade(s: Settings, years: list[int]) -> None:
    """What ``kademe upgrade`` needs before its flow starts: each year's checkpoints (an object store's refusal
    surfaces here, as the CLI's one message), the store and its collection, then the model (fetched last, so a
    wrong workdir costs no download; upgrading never uses the fallback model)."""
    for year in years:
        if not partitions(s.workdir, [year], s.corpus):
            raise KademeError(f"No finished checkpoints for {year} under {s.workdir}.\n\nRun kademe ingest for that year first.")
    with open_store(s) as store:
        if store.info() is None:
            raise missing_collection(s)
    fetch_models(s, fallback=False)
