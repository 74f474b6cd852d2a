"""One writer per partition: a Prefect global concurrency limit named after ``(corpus, year)``.

Several workers on several hosts may be handed the same year (a retry that lands elsewhere, two
``prefect deployment run`` of one year). The file stages of a partition therefore run inside
``partition_lock(corpus, year)``: one slot of the limit ``kademe-<corpus>-<year>`` (limit 1),
which kademe creates on first use. The second run waits for the slot, then finds the first one's
checkpoints and reuses them.

Unlike the GPU slot (``flows/gpu.py``, ``strict=False``), this limit is strict: a limit that
cannot be created, or that exists but does not hold runs to one (inactive, or a limit above 1),
stops the run before any stage starts, with what to do.

The slot is held under a lease (``LEASE_SECONDS``) that a background thread renews. A worker that
dies frees the partition when its lease runs out; a renewal that fails (the Prefect API unreachable
for a while) only logs, and the stage goes on: the slot may then be taken by another run, and what
keeps the partition whole is the checkpoint commit, not the slot (issue 20, point 3).

Without ``PREFECT_API_URL`` (``kademe ingest`` on its temporary server, ``flows.server``) no slot is taken: that
server serves one process, and it runs none of Prefect's background services, the lease
repossessor included, so the slot of a killed run would stay taken in the local database for good
and hang every later run of that year. Several workers need a shared server anyway.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flows.server import on_temporary_server
from kademe.errors import KademeError

LEASE_SECONDS = 60  # a dead worker's partition is free again ~1 minute later (the server's repossessor runs every 15 s)


def partition_limit_name(corpus: str, year: int) -> str:
    """The limit's name: ``kademe-<corpus>-<year>`` (Prefect names may not hold ``/``).

    Example:
        >>> partition_limit_name("yargitay", 2011)
        'kademe-yargitay-2011'
    """
    return f"kademe-{corpus}-{year}"


def ensure_partition_limit(name: str) -> str:
    """Create the global concurrency limit ``name`` with limit 1 unless it exists; return ``name``.

    Two workers creating it at once is fine: the server keeps names unique, and the loser reads the
    winner's limit.

    Raises:
        KademeError: the limit cannot be created (the API refused or failed), or it exists but is
            inactive or allows more than one run.
    """
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    try:
        with get_client(sync_client=True) as client:
            try:
                limit = client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                try:
                    client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
                    return name
                except ObjectAlreadyExists:  # another worker created it in between
                    limit = client.read_global_concurrency_limit_by_name(name)
    except httpx.HTTPStatusError as e:
        raise KademeError(
            f"Could not create the global concurrency limit '{name}' that keeps other workers off this partition: "
            f"HTTP {e.response.status_code} from the Prefect API.\n\n"
            f"Create it once with: prefect gcl create {name} --limit 1") from None
    except httpx.HTTPError as e:
        raise KademeError(
            f"Could not create the global concurrency limit '{name}': the Prefect API did not answer ({type(e).__name__}).\n\n"
            "Check PREFECT_API_URL.") from None
    if not limit.active or limit.limit != 1:
        state = "inactive" if not limit.active else f"limit {limit.limit}"
        raise KademeError(
            f"The global concurrency limit '{name}' is {state}: it would let two workers write one partition.\n\n"
            f"Fix it with: prefect gcl update {name} --limit 1 --enable")
    return name


@contextmanager
def partition_lock(corpus: str, year: int) -> Iterator[str | None]:
    """Hold the partition's slot (creating its limit if needed) for the duration of the block.

    Waits as long as another run holds it (no timeout: that run is doing this partition's work).

    Args:
        corpus, year: the partition.

    Returns:
        A context manager yielding the limit's name, or None on Prefect's temporary server (no
        ``PREFECT_API_URL``: one process, nothing to share; see the module's docstring).

    Raises:
        KademeError: see ``ensure_partition_limit``.
        prefect.concurrency.asyncio.ConcurrencySlotAcquisitionError: the limit vanished before the
            slot was taken (``strict=True``: never runs unguarded).

    Example:
        >>> with partition_lock("yargitay", 2011) as name:  # doctest: +SKIP
        ...     name
        'kademe-yargitay-2011'
    """
    from prefect.client.schemas.objects import ConcurrencyLeaseHolder
    from prefect.concurrency.sync import concurrency
    from prefect.context import FlowRunContext

    if on_temporary_server():
        yield None
        return
    name = ensure_partition_limit(partition_limit_name(corpus, year))
    run = FlowRunContext.get()
    holder = ConcurrencyLeaseHolder(type="flow_run", id=run.flow_run.id) if run and run.flow_run else None
    with concurrency(name, occupy=1, strict=True, lease_duration=LEASE_SECONDS, holder=holder,
                     raise_on_lease_renewal_failure=False):
        yield name
