"""Prefect flow ``upgrade-years``: re-embed degraded years with the primary model, one after another."""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.ingest import settings_from
from kademe.errors import KademeError
from kademe.upgrade import upgrade_years as upgrade_years_of


@task(name="upgrade", cache_policy=NO_CACHE)
def upgrade_year_task(year: int, s) -> dict:
    """Re-embed one year's fallback-model chunks with the primary model (every corpus, or --corpus)."""
    return upgrade_years_of(s, [year])["years"][str(year)]


@flow(name="upgrade-years", flow_run_name="upgrade-{years}")
def upgrade_years(
    years: list[int],
    collection: str | None = None,
    workdir: str | None = None,
    model: str | None = None,
    device: str | None = None,
    batch_size: int | None = None,
    token_budget: int | None = None,
    shard_size: int | None = None,
    qdrant_url: str | None = None,
    qdrant_api_key_block: str | None = None,
    qdrant_grpc: bool | None = None,
    corpus: str | None = None,
    dtype: str | None = None,
) -> dict:
    """Upgrade each year; a year that fails is reported and the next one goes on."""
    s = settings_from({k: v for k, v in locals().items() if k != "years"})
    result: dict = {"years": {}}
    for year in years:
        state = upgrade_year_task(year, s, return_state=True)
        if state.is_completed():
            result["years"][str(year)] = state.result()
        else:
            exc = state.result(raise_on_failure=False)
            result["years"][str(year)] = {"status": "failed", "degraded": None, "upgraded": 0,
                                          "error": str(exc) if isinstance(exc, KademeError) else repr(exc)}
    return result
