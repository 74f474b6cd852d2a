"""Shared fixtures: real parts only — the packaged model, local Qdrant, a real Prefect test server."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# One torch thread, here and in every process a test starts (set before any test module imports torch).
# The tests encode many tiny batches; on a small shared CPU two spinning threads made each one ~10x
# slower (tests/test_ladder.py's mid-year tests: 99 s with two threads, 11 s with one, at load 4).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _prefect_console_follows_stderr():
    """After each test, a Prefect console log handler left writing to a closed stream writes to ``sys.stderr`` again.

    Prefect's console handler keeps the stream that was ``sys.stderr`` when Prefect set up its logging; set up under
    a test's ``capsys``, that is the test's stream, closed when the test ends, and every later Prefect log line in the
    session would fail (``I/O operation on closed file``) in whatever test ran next.
    """
    yield
    import logging
    import sys

    if "prefect.logging.handlers" not in sys.modules:
        return
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger()] + [lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    for handler in {h for lg in loggers for h in lg.handlers}:
        if isinstance(handler, PrefectConsoleHandler) and getattr(handler.console.file, "closed", False):
            handler.console.file = sys.stderr

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
REAL = Path("/work/shared/corpus/real-decisions.ndjson")  # 297 real decisions (../shared/corpus/SOURCES.md)


def real_clean_texts(every: int) -> list[str]:
    """Every ``every``-th real decision, cleaned; the test is skipped where the corpus is not on the machine."""
    from kademe.clean import clean_text

    if not REAL.exists():
        pytest.skip(f"{REAL} is not on this machine")
    return [clean_text(json.loads(line)["text"]) for line in REAL.read_text(encoding="utf-8").splitlines()[::every]]


def pytest_collection_modifyitems(config, items):
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA device")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


def crash_matrix(cases: list, default: set[str], fast: set[str] = frozenset()) -> list:
    """A crash matrix as pytest params, in three layers: the cases named in ``fast`` run in the fast layer
    (``python -m pytest``), the rest of ``default`` carry the ``slow`` marker, and the others carry ``slow``
    and ``exhaustive`` (CI runs both with ``python -m pytest -m 'slow or exhaustive'``).

    Args:
        cases: crash specs (``"embed-batch:3"``) or tuples whose first item is the spec.
        default: the representative specs.
        fast: the one or two of ``default`` the fast layer runs.
    Returns:
        One ``pytest.param`` per case, with the spec as its id.
    """
    specs = [case[0] if isinstance(case, tuple) else case for case in cases]
    assert default <= set(specs), f"not in the matrix: {sorted(default - set(specs))}"
    assert fast <= default, f"a fast case must be a default one: {sorted(fast - default)}"
    marks = {spec: () if spec in fast else (pytest.mark.slow,) if spec in default else (pytest.mark.slow, pytest.mark.exhaustive)
             for spec in specs}
    return [pytest.param(*(case if isinstance(case, tuple) else (case,)), id=spec, marks=marks[spec])
            for case, spec in zip(cases, specs)]


@pytest.fixture(scope="session")
def prefect_server():
    """A real, temporary Prefect server for the whole session (prefect_test_harness)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(autouse=True)
def _no_slot_outlives_its_test(request):
    """After each test on the session's Prefect server, the partition slots its killed runs left taken are freed.

    A test that kills a run (``KADEME_FAULT_CRASH_AT``) and forgets ``free_dead_slots`` would otherwise make the
    next test's run on the same partition wait for that slot until its subprocess timeout (a 5-minute hang).
    """
    yield
    if "prefect_server" in request.fixturenames:
        free_dead_slots()


@pytest.fixture(scope="session")
def small_model(tmp_path_factory) -> Path:
    """A 3-layer MiniLM derived offline from the packaged model: the fallback model in tests."""
    from kademe.testing import derive_small_model

    return derive_small_model(tmp_path_factory.mktemp("models") / "minilm-3l")


def decision(year: int, n: int, words: int = 40) -> dict:
    """A short, distinct decision (fast to embed) with metadata."""
    topics = ["kıdem tazminatı", "tapu iptali", "boşanma", "kira tespiti", "itirazın iptali", "hırsızlık", "işe iade", "nafaka"]
    topic = topics[n % len(topics)]
    body = " ".join(f"Dosyadaki {n}. delil ve {topic} konusundaki {i}. beyan incelendi." for i in range(words // 8))
    return {
        "id": f"{year}-HD-{n:04d}",
        "text": f"Davacı {n} numaralı dosyada {topic} talep etmiştir. {body}\n\nSONUÇ: Hükmün BOZULMASINA oybirliğiyle karar verildi.",
        "date": f"{year}-0{1 + n % 9}-1{n % 10}",
        "chamber": f"{1 + n % 12}. Hukuk Dairesi",
        "esas_no": f"{year - 1}/{1000 + n}",
        "karar_no": f"{year}/{2000 + n}",
        "konu": topic,
    }


def write_ndjson(path: Path, records: list, raw_lines: list[bytes] = ()) -> Path:
    """Write records (dicts become JSON lines) plus raw byte lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        for r in records:
            f.write((json.dumps(r, ensure_ascii=False) + "\n").encode() if isinstance(r, dict) else r)
        for line in raw_lines:
            f.write(line)
    return path


@pytest.fixture
def corpus(tmp_path) -> Path:
    """Two small years, 2011 and 2012, clean: returns the source template."""
    for year in (2011, 2012):
        write_ndjson(tmp_path / "data" / f"yargitay_{year}.ndjson", [decision(year, n) for n in range(6)])
    return tmp_path / "data" / "yargitay_{year}.ndjson"


@pytest.fixture
def settings(tmp_path, corpus):
    from kademe.settings import Settings

    def make(**kw):
        base = dict(source=str(corpus), workdir=tmp_path / "work", collection="test", model=MODEL, device="cpu", shard_size=8)
        return Settings(**{**base, **kw})

    return make


ALL_STAGES = ["read", "clean", "chunk", "lexical", "embed", "upsert"]


@dataclass
class StoredPoint:
    id: str
    payload: dict
    vector: dict  # dense vector name -> list of floats (the sparse bm25 vector is left out)
    sparse: tuple | None = None  # (indices, values) of bm25


def stored_points(workdir: Path, collection: str, year: int | None = None, corpus: str | None = None) -> dict[str, StoredPoint]:
    """Every point of the embedded (Qdrant Edge) collection with payloads and vectors, read through the engine."""
    from qdrant_edge import ScrollRequest

    from kademe.store import Where
    from kademe.store.edge import EdgeStore, edge_filter

    with EdgeStore.open(Path(workdir) / "qdrant" / collection) as store:
        if store._shard is None:
            return {}
        records, _ = store._shard.scroll(ScrollRequest(limit=1_000_000, filter=edge_filter(Where(corpus, year)),
                                                       with_payload=True, with_vector=True))
    out = {}
    for r in records:
        vectors = dict(r.vector or {})
        bm25 = vectors.pop("bm25", None)
        out[str(r.id)] = StoredPoint(str(r.id), dict(r.payload or {}), {k: list(v) for k, v in vectors.items()},
                                     (list(bm25.indices), list(bm25.values)) if bm25 is not None else None)
    return out


@contextlib.contextmanager
def edge_store_held(folder: Path):
    """Another process holding the Qdrant Edge store in ``folder`` open (as a running ingest does); yields its pid."""
    import subprocess
    import sys

    folder.mkdir(parents=True, exist_ok=True)  # opening a folder that does not exist takes no lock (a read creates nothing)
    holder = subprocess.Popen([sys.executable, "-c", f"from kademe.store.edge import EdgeStore; s = EdgeStore.open({str(folder)!r}); "
                               "print('ready', flush=True); import time; time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()


def free_dead_slots() -> None:
    """Free the partition slots (flows/limits.py) that killed runs left taken on this session's Prefect server.

    A Prefect server's lease repossessor frees them once the dead run's lease runs out (about a
    minute); the test server, a temporary server like every ``prefect_test_harness``, runs none, and
    every test file ingests the same few partitions (yargitay/2011, ...) into its own workdir.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

    with get_client(sync_client=True) as client:
        for limit in client.read_global_concurrency_limits(limit=200):
            if limit.name.startswith("kademe-") and limit.active_slots:
                client.update_global_concurrency_limit(limit.name, GlobalConcurrencyLimitUpdate(active_slots=0))


@contextlib.contextmanager
def stub_qdrant(status: int, error: str):
    """A Qdrant stand-in on 127.0.0.1 that answers every request with ``status`` (401: a wrong API key;
    503: an overloaded server). Yields ``(url, requests)``: the paths it was asked for, in order."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    requests: list[str] = []
    body = json.dumps({"status": {"error": error}, "time": 0.0}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            requests.append(self.path)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_PUT = do_GET

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


VECTOR_COUNTS = ("embedded", "reused", "committed")  # how a run got its vectors: they differ between a cold run and a rerun


def source_counts(counts: dict) -> dict:
    """A year's ``counts`` less how this run got its vectors (``VECTOR_COUNTS``), which add up to ``chunks`` (issue 30)."""
    assert sum(counts[k] for k in VECTOR_COUNTS) == counts["chunks"], counts
    return {k: v for k, v in counts.items() if k not in VECTOR_COUNTS}
