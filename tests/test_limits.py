"""One writer per partition: the (corpus, year) global concurrency limit, against a real Prefect server."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from kademe.errors import KademeError
from tests.conftest import ALL_STAGES, stub_qdrant

pytestmark = pytest.mark.usefixtures("prefect_server")


def read_limit(name: str):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_global_concurrency_limit_by_name(name)


def corpus_name() -> str:
    return f"c{uuid.uuid4().hex[:8]}"  # a fresh limit per test: the server lives for the whole session


def test_the_limit_is_created_on_first_use_and_held_only_inside_the_block():
    from prefect.exceptions import ObjectNotFound

    from flows.limits import partition_lock

    corpus = corpus_name()
    with pytest.raises(ObjectNotFound):
        read_limit(f"kademe-{corpus}-2011")
    with partition_lock(corpus, 2011) as name:
        held = read_limit(name)
    assert name == f"kademe-{corpus}-2011"
    assert (held.limit, held.active, held.active_slots) == (1, True, 1)
    assert read_limit(name).active_slots == 0


def test_without_a_shared_server_no_slot_is_taken():
    """Prefect's temporary server (kademe ingest without PREFECT_API_URL) expires no leases: a killed run's slot
    would stay taken for good, so none is taken there."""
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.limits import partition_lock

    corpus = corpus_name()
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        with partition_lock(corpus, 2011) as name:
            assert name is None
    with pytest.raises(ObjectNotFound):
        read_limit(f"kademe-{corpus}-2011")


def test_a_second_holder_of_one_partition_waits_and_another_partition_does_not():
    from flows.limits import partition_lock

    corpus = corpus_name()
    entered: dict[int, float] = {}

    def enter(year: int) -> None:
        with partition_lock(corpus, year):
            entered[year] = time.monotonic()

    with partition_lock(corpus, 2011):
        same, other = threading.Thread(target=enter, args=(2011,)), threading.Thread(target=enter, args=(2012,))
        same.start(), other.start()
        other.join(timeout=60)
        assert 2012 in entered, "another partition's slot is taken at once"
        time.sleep(2.0)
        assert 2011 not in entered, "the same partition waits while the slot is held"
        released = time.monotonic()
    same.join(timeout=120)
    assert entered.get(2011, 0) > released


RUN_YEAR = """
import json, sys
from flows.ingest import ingest_year
state = ingest_year(2011, **json.loads(sys.argv[1]), return_state=True)
print(json.dumps({"completed": state.is_completed(), "cached": state.result()["cached"] if state.is_completed() else str(state)}))
"""


@pytest.mark.slow
def test_two_workers_running_one_year_at_once_run_it_one_after_the_other(settings, tmp_path):
    """Two processes, as two workers would: without the slot they would share one Qdrant Edge folder (the
    second open fails) and write the same checkpoints; with it, the second waits, then finds every stage done."""
    import json
    import os
    import subprocess
    import sys

    from prefect.settings import PREFECT_API_URL

    s = settings(corpus=corpus_name())
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PYTHONPATH": os.pathsep.join(sys.path)}
    workers = [subprocess.Popen([sys.executable, "-c", RUN_YEAR, json.dumps(s.flow_parameters())], env=env, cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = []
    for worker in workers:
        out, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err[-3000:]
        outcomes.append(json.loads(out.strip().splitlines()[-1]))
    assert all(o["completed"] for o in outcomes), outcomes
    assert sorted(o["cached"] for o in outcomes) == [[], ALL_STAGES], "one worker did the work, the other reused all of it"
    assert read_limit(f"kademe-{s.corpus}-2011").active_slots == 0


def test_a_limit_that_lets_two_runs_in_stops_the_year_before_any_stage(settings):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    from flows.ingest import ingest_year

    s = settings(corpus=corpus_name())
    name = f"kademe-{s.corpus}-2011"
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1, active=False))
    state = ingest_year(2011, **s.flow_parameters(), return_state=True)
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, KademeError)
    assert str(error) == (f"The global concurrency limit '{name}' is inactive: it would let two workers write one partition.\n\n"
                          f"Fix it with: prefect gcl update {name} --limit 1 --enable")
    assert not (s.workdir / s.corpus).exists(), "no stage ran"


def test_a_limit_the_api_refuses_to_create_is_an_error_that_says_how_to_create_it():
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.limits import partition_lock

    with stub_qdrant(403, "forbidden") as (url, requests), temporary_settings({PREFECT_API_URL: f"{url}/api"}):
        with pytest.raises(KademeError) as error:
            with partition_lock("yargitay", 2011):
                pytest.fail("the block must not run unguarded")
    assert str(error.value) == (
        "Could not create the global concurrency limit 'kademe-yargitay-2011' that keeps other workers off this partition: "
        "HTTP 403 from the Prefect API.\n\nCreate it once with: prefect gcl create kademe-yargitay-2011 --limit 1")
    assert requests == ["/api/v2/concurrency_limits/kademe-yargitay-2011"]
