"""Prefect flow ``upgrade-years``: re-embed degraded years with the primary model, one after another."""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.parameters import settings_from, takes_settings
from flows.stopping import stoppable
from kademe.errors import KademeError
from kademe.interrupt import Interrupted
from kademe.upgrade import upgrade_years as upgrade_years_of


@task(name="upgrade", cache_policy=NO_CACHE)
@stoppable
def upgrade_year_task(year: int, s) -> dict:
    """Re-embed one year's fallback-model chunks with the primary model (every corpus, or --corpus)."""
    return upgrade_years_of(s, [year])["years"][str(year)]


# Upgrading re-embeds chunks already in the checkpoints with the primary model: it reads no source,
# chunks nothing, analyzes nothing and never falls back to another model.
NOT_READ = ("source", "fallback_model", "chunk_tokens", "chunk_overlap", "max_record_bytes", "bm25_language")


@flow(name="upgrade-years", flow_run_name="upgrade-{years}")
@stoppable
@takes_settings(exclude=NOT_READ)
def upgrade_years(years: list[int], **settings) -> dict:
    """Upgrade each year; a year that fails is reported and the next one goes on."""
    s = settings_from(settings)
    result: dict = {"years": {}}
    for year in years:
        state = upgrade_year_task(year, s, return_state=True)
        if state.is_cancelled():  # asked to stop (issue 30)
            raise Interrupted()
        if state.is_completed():
            result["years"][str(year)] = state.result()
        else:
            exc = state.result(raise_on_failure=False)
            result["years"][str(year)] = {"status": "failed", "degraded": None, "upgraded": 0,
                                          "error": str(exc) if isinstance(exc, KademeError) else repr(exc)}
    return result
