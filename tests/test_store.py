"""The store contract, the same on both engines: Qdrant Edge in a folder, and a "server" played by
qdrant-client local mode (``path:``). Plus what only one engine has: Edge's folder lock and WAL, the
server's connect errors."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from qdrant_edge import Bm25, Bm25Config

from kademe.errors import KademeError
from kademe.store.base import SPARSE, PointBatch, StoreUnavailable, Where
from kademe.store.design import DESIGN, LEGACY
from kademe.store.edge import EdgeStore
from kademe.store.server import ServerStore
from tests.conftest import stub_qdrant

CORPUS = Path("/work/shared/corpus/real-decisions.ndjson")
SRC = str(Path(__file__).resolve().parents[1] / "src")
PRIMARY, FALLBACK = "minilm", "minilm-small"
DIM, FALLBACK_DIM = 32, 16
N = 60


def turkish_sentences(n: int) -> list[str]:
    """``n`` distinct sentences of real decisions (HTML tags stripped)."""
    out: list[str] = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        text = re.sub(r"<[^>]+>|&quot;", " ", json.loads(line)["text"])
        for s in re.split(r"(?<=[.!?])\s+", text):
            s = " ".join(s.split())
            if 60 <= len(s) <= 400 and s not in out:
                out.append(s)
                if len(out) == n:
                    return out
    return out


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    texts = turkish_sentences(N)
    assert len(texts) == N
    vectors = rng.normal(size=(N, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    bm25 = Bm25(Bm25Config(language="turkish"))
    sparse = [(np.array(v.indices, dtype=np.uint32), np.array(v.values, dtype=np.float32))
              for v in map(bm25.embed_document, texts)]
    ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"doc-{i // 3}:{i % 3}")) for i in range(N)]
    payloads = [{"corpus": "yargitay" if i % 2 == 0 else "danistay", "year": 2011 + i % 3, "doc_id": f"doc-{i // 3}",
                 "chunk_index": i % 3, "esas_no": f"2022/{1000 + i}", "karar_no": f"2023/{2000 + i}", "text": texts[i]}
                for i in range(N)]
    return {"ids": ids, "payloads": payloads, "vectors": vectors, "sparse": sparse, "texts": texts, "bm25": bm25}


def batch(data, rows=slice(None), sparse=True) -> PointBatch:
    idx = range(N)[rows]
    return PointBatch(ids=[data["ids"][i] for i in idx], payloads=[data["payloads"][i] for i in idx], space=PRIMARY,
                      vectors=data["vectors"][rows], sparse=[data["sparse"][i] for i in idx] if sparse else None)


def open_store(kind: str, folder: Path):
    return EdgeStore.open(folder / "edge") if kind == "edge" else ServerStore.connect(f"path:{folder / 'local'}", "c")


@pytest.fixture(params=["edge", "server"])
def kind(request):
    return request.param


@pytest.fixture
def store(kind, tmp_path, data):
    s = open_store(kind, tmp_path)
    s.create({PRIMARY: DIM})
    s.upsert([batch(data, slice(0, 40)), batch(data, slice(40, N))])
    yield s
    s.close()


def test_a_new_store_has_no_collection_until_create(kind, tmp_path):
    with open_store(kind, tmp_path) as s:
        assert s.info() is None
        s.create({PRIMARY: DIM})
        info = s.info()
    assert info.dense == {PRIMARY: DIM} and info.sparse == (SPARSE,) and info.points == 0


def test_upsert_writes_every_point_and_a_reupsert_overwrites(store, data):
    assert store.info().points == N
    changed = batch(data, slice(0, 5), sparse=False)
    changed.payloads = [{**p, "year": 1999} for p in changed.payloads]

    store.upsert([changed])

    assert store.count(Where()) == N, "same ids: overwritten, not added"
    assert store.count(Where(year=1999)) == 5


def test_count_and_scroll_filter_by_partition_and_keywords(store, data):
    expect = lambda f: {data["ids"][i] for i, p in enumerate(data["payloads"]) if f(p)}  # noqa: E731

    assert store.count(Where(corpus="yargitay")) == len(expect(lambda p: p["corpus"] == "yargitay")) == 30
    assert store.count(Where(corpus="yargitay", year=2011)) == len(expect(lambda p: p["corpus"] == "yargitay" and p["year"] == 2011))
    assert store.count(Where(corpus=["yargitay", "danistay"], year=[2011, 2012])) == 40
    assert store.count(Where(corpus="nowhere")) == 0
    any_of = Where(any_of={"esas_no": ["2022/1003", "2022/1010"], "karar_no": ["2023/2020"]})
    assert {i for i, _ in store.scroll(any_of, ["doc_id"])} == {data["ids"][3], data["ids"][10], data["ids"][20]}
    assert store.count(Where(corpus="danistay", any_of={"esas_no": ["2022/1003", "2022/1010"]})) == 1

    rows = list(store.scroll(Where(year=[2012]), ["doc_id", "year"], limit=7))

    assert {i for i, _ in rows} == expect(lambda p: p["year"] == 2012) and len(rows) == 20
    assert all(set(p) == {"doc_id", "year"} and p["year"] == 2012 for _, p in rows), "only the asked fields, never vectors"


def test_has_vector_counts_only_points_holding_that_vector(store, data):
    store.add_vectors({FALLBACK: FALLBACK_DIM})
    fb = np.eye(FALLBACK_DIM, dtype=np.float32)[:4]
    store.upsert([PointBatch(ids=data["ids"][:4], payloads=data["payloads"][:4], space=FALLBACK, vectors=fb)])

    assert store.count(Where(has_vector=FALLBACK)) == 4
    assert store.count(Where(has_vector=PRIMARY)) == N - 4, "a point upserted with only the fallback lost its primary"
    assert store.count(Where(has_vector=SPARSE)) == N - 4
    assert store.info().dense == {PRIMARY: DIM, FALLBACK: FALLBACK_DIM}
    hits = store.query(dense=[(FALLBACK, fb[2])], limit=1)
    assert hits[0].id == data["ids"][2]


def test_delete_removes_only_those_points(store, data):
    store.delete(data["ids"][:10])

    assert store.count(Where()) == N - 10
    assert not set(data["ids"][:10]) & {i for i, _ in store.scroll(Where(), [])}


def test_dense_query_finds_the_nearest_point_within_the_filter(store, data):
    q = data["vectors"][7]
    assert store.query(dense=[(PRIMARY, q)], limit=3)[0].id == data["ids"][7]

    hits = store.query(dense=[(PRIMARY, q)], where=Where(corpus="yargitay", year=2012), limit=5)

    assert hits and all(h.payload["corpus"] == "yargitay" and h.payload["year"] == 2012 for h in hits)
    assert data["ids"][7] not in {h.id for h in hits} and len(hits) == 5
    assert hits == sorted(hits, key=lambda h: -h.score) and hits[0].payload["text"]


def test_sparse_query_finds_the_sentence_by_its_words(store, data):
    text = data["texts"][12]
    q = data["bm25"].embed_query(" ".join(text.split()[:8]))
    qs = (np.array(q.indices, dtype=np.uint32), np.array(q.values, dtype=np.float32))

    hits = store.query(sparse=qs, limit=3)

    assert hits[0].id == data["ids"][12]
    assert store.query(sparse=qs, where=Where(corpus="danistay"), limit=3)[0].payload["corpus"] == "danistay"


def test_hybrid_query_fuses_dense_and_sparse_with_rrf(store, data):
    q = data["bm25"].embed_query(" ".join(data["texts"][12].split()[:8]))
    qs = (np.array(q.indices, dtype=np.uint32), np.array(q.values, dtype=np.float32))

    hits = store.query(dense=[(PRIMARY, data["vectors"][12])], sparse=qs, where=Where(year=2011), limit=4)

    assert hits[0].id == data["ids"][12], "first in both lists, first fused"
    assert hits[0].score == pytest.approx(2 * (1 / 2)), "RRF with k=2: 1/(k + rank 0 - 1 + 1) from each list"
    assert all(h.payload["year"] == 2011 for h in hits) and len(hits) == 4


def test_a_reopened_store_keeps_its_points(kind, tmp_path, data):
    with open_store(kind, tmp_path) as s:
        s.create({PRIMARY: DIM})
        s.upsert([batch(data)])
    with open_store(kind, tmp_path) as s:
        assert s.info().points == N
        assert s.query(dense=[(PRIMARY, data["vectors"][5])], limit=1)[0].id == data["ids"][5]


# Thresholds lowered so a few thousand 64-dim points build a real HNSW graph (the engine's defaults
# need ~10 MB of vectors a segment); everything else is the design new collections get.
SMALL = replace(DESIGN, indexing_threshold_kb=100, full_scan_threshold_kb=100, max_segment_size_kb=1_000)
YEAR_POINTS, YEAR_DIM = 2_000, 64  # 500 KB of vectors a year: above both thresholds


def year_batch(year: int, n: int = YEAR_POINTS) -> PointBatch:
    rng = np.random.default_rng(year)
    vectors = rng.normal(size=(n, YEAR_DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return PointBatch([str(uuid.uuid5(uuid.NAMESPACE_URL, f"{year}:{i}")) for i in range(n)],
                      [{"corpus": "yargitay", "year": year, "doc_id": f"{year}-{i}"} for i in range(n)], PRIMARY, vectors)


def indexed_segments(folder: Path) -> dict[str, float]:
    """Segments holding an HNSW graph: folder name -> the graph file's modification time."""
    return {graph.parents[1].name: graph.stat().st_mtime for graph in (folder / "segments").glob("*/vector_index-*/graph.bin")}


def load_two_years(folder: Path, design) -> tuple[dict[str, float], dict[str, float]]:
    with EdgeStore.open(folder) as s:
        s.create({PRIMARY: YEAR_DIM}, design=design)
        s.upsert([year_batch(2011)])
        s.optimize()
        first = indexed_segments(folder)
        s.upsert([year_batch(2012)])
        s.optimize()
        second = indexed_segments(folder)
        year = year_batch(2011)
        hits = s.query(dense=[(PRIMARY, year.vectors[17])], where=Where(corpus="yargitay", year=2011), limit=3)
        assert hits[0].id == year.ids[17] and all(h.payload["year"] == 2011 for h in hits)
        assert s.count(Where(year=2011)) == s.count(Where(year=2012)) == YEAR_POINTS
    return first, second


@pytest.mark.slow
def test_adding_a_year_builds_that_year_and_keeps_the_earlier_index(tmp_path):
    first, second = load_two_years(tmp_path / "edge", SMALL)

    assert len(first) == 1, "the first year's points got an HNSW graph"
    (segment, built), = first.items()
    assert second.get(segment) == built, "the first year's segment and graph were left as they were"
    assert len(second) == 2, "the second year got a segment and a graph of its own"


@pytest.mark.slow
def test_with_the_engines_default_optimizer_a_new_year_rebuilds_the_old_one(tmp_path):
    """What the design prevents: with ``default_segment_number`` left to the engine (2 on 2 cores),
    the build after the second year merges it into the first year's segment and indexes both."""
    engine_default = replace(SMALL, default_segment_number=None, max_segment_size_kb=None)

    first, second = load_two_years(tmp_path / "edge", engine_default)

    assert len(first) == 1 and not set(first) & set(second), "the first year's segment was rebuilt"
    assert len(second) == 1


def test_edge_create_writes_the_design_before_any_point(tmp_path):
    folder = tmp_path / "edge"
    with EdgeStore.open(folder) as s:
        s.create({PRIMARY: DIM})
    config = json.loads((folder / "edge_config.json").read_text())
    assert config["hnsw_config"] == {"m": DESIGN.m, "ef_construct": DESIGN.ef_construct, "max_indexing_threads": 0,
                                     "full_scan_threshold": DESIGN.full_scan_threshold_kb, "payload_m": DESIGN.payload_m}
    assert {k: config["optimizers"][k] for k in ("default_segment_number", "max_segment_size", "indexing_threshold",
                                                 "deleted_threshold", "vacuum_min_vector_number")} == {
        "default_segment_number": DESIGN.default_segment_number, "max_segment_size": DESIGN.max_segment_size_kb,
        "indexing_threshold": DESIGN.indexing_threshold_kb, "deleted_threshold": DESIGN.deleted_threshold,
        "vacuum_min_vector_number": DESIGN.vacuum_min_vector_number}
    assert config["vectors"][PRIMARY]["memory"] == "cold", "float32 originals on disk"
    assert config["vectors"][PRIMARY]["quantization_config"] == {"scalar": {"type": "int8", "quantile": 0.99,
                                                                             "memory": "cold"}}
    segment, = (folder / "segments").iterdir()
    fields = json.loads((segment / "payload_index" / "config.json").read_text())["indexed_fields"]
    assert fields["year"]["is_principal"] is True and fields["corpus"]["is_tenant"] is True


def test_the_server_gets_the_same_design_in_its_requests(tmp_path, monkeypatch):
    """Local mode ignores HNSW, optimizer, quantization and index parameters: check what is sent."""
    from qdrant_client import models

    sent: dict[str, list] = {"create_collection": [], "create_payload_index": [], "query_points": []}
    with ServerStore.connect(f"path:{tmp_path / 'local'}", "c") as s:
        for name, calls in sent.items():
            real = getattr(s.client, name)
            monkeypatch.setattr(s.client, name, lambda *a, _real=real, _calls=calls, **kw: (_calls.append((a, kw)), _real(*a, **kw))[1])
        s.create({PRIMARY: DIM})
        s.upsert([PointBatch(["00000000-0000-0000-0000-000000000001"], [{"corpus": "c", "year": 2011}], PRIMARY,
                             np.ones((1, DIM), dtype=np.float32))])
        s.query(dense=[(PRIMARY, np.ones(DIM, dtype=np.float32))], limit=1)
        s.query(dense=[(PRIMARY, np.ones(DIM, dtype=np.float32))], where=Where(year=2011), limit=1)

    (_, create), = sent["create_collection"]
    assert create["hnsw_config"] == models.HnswConfigDiff(m=DESIGN.m, ef_construct=DESIGN.ef_construct,
                                                          full_scan_threshold=DESIGN.full_scan_threshold_kb,
                                                          payload_m=DESIGN.payload_m)
    assert create["optimizers_config"] == models.OptimizersConfigDiff(
        default_segment_number=DESIGN.default_segment_number, max_segment_size=DESIGN.max_segment_size_kb,
        indexing_threshold=DESIGN.indexing_threshold_kb, deleted_threshold=DESIGN.deleted_threshold,
        vacuum_min_vector_number=DESIGN.vacuum_min_vector_number)
    vector = create["vectors_config"][PRIMARY]
    assert vector.on_disk is True and vector.quantization_config == models.ScalarQuantization(
        scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, quantile=0.99, always_ram=True))
    schemas = {a[1]: a[2] for a, _ in sent["create_payload_index"]}
    assert schemas["year"].is_principal is True and schemas["year"].type == "integer"
    assert schemas["corpus"].is_tenant is True and schemas["doc_id"].on_disk is True
    (_, query), (_, filtered) = sent["query_points"]
    assert query["search_params"] == models.SearchParams(hnsw_ef=DESIGN.hnsw_ef, quantization=models.QuantizationSearchParams(
        rescore=True, oversampling=DESIGN.oversampling))
    assert filtered["search_params"] == models.SearchParams(exact=True), "one point behind the filter: an exact scan"


@pytest.mark.parametrize("kind", ["edge", "server"])
def test_a_collection_made_before_the_design_keeps_working_and_is_told_once(kind, tmp_path, data, capsys):
    with open_store(kind, tmp_path) as s:
        s.create({PRIMARY: DIM}, design=LEGACY)
        s.upsert([batch(data)])
    if kind == "edge":  # once a segment is indexed, a load writes the engine's derived HNSW defaults into the file
        config = tmp_path / "edge" / "edge_config.json"
        config.write_text(json.dumps({**json.loads(config.read_text()), "hnsw_config": {
            "m": 16, "ef_construct": 100, "full_scan_threshold": 10000, "max_indexing_threads": 0, "on_disk": False}}))
    capsys.readouterr()

    for _ in range(2):
        with open_store(kind, tmp_path) as s:
            assert s.info().points == N
            assert s.query(dense=[(PRIMARY, data["vectors"][5])], limit=1)[0].id == data["ids"][5]

    err = capsys.readouterr().err
    assert err.count("was created without the collection settings of issue 18") == 1, err
    assert "kademe does not rebuild it by itself" in err and "--collection NEW" in err


def test_reading_a_collection_that_does_not_exist_creates_nothing(tmp_path):
    folder = tmp_path / "qdrant" / "nowhere"

    with EdgeStore.open(folder) as s:
        assert s.info() is None and s.count(Where(year=2011)) == 0
        assert s.query(dense=[(PRIMARY, np.ones(DIM, dtype=np.float32))], limit=3) == []
        assert list(s.scroll(Where(), ["doc_id"])) == []

    assert not folder.exists() and not folder.parent.exists()
    with EdgeStore.open(folder) as s:  # a write creates it
        s.create({PRIMARY: DIM})
    assert (folder / "edge_config.json").exists()


def test_edge_keeps_large_structures_on_disk_so_open_stays_fast(tmp_path, data):
    """Vectors, payloads and the per-decision indexes are memory-mapped cold, not read into RAM at open.

    The engine's defaults pre-read every vector and rebuild the keyword indexes on the heap at each
    open: about 1 s at 200,000 points (bench/README.md, store). The indexes must still answer.
    """
    folder = tmp_path / "edge"
    with EdgeStore.open(folder) as s:
        s.create({PRIMARY: DIM})
        s.upsert([batch(data)])
        s.optimize()
    config = json.loads((folder / "edge_config.json").read_text())
    assert config["vectors"][PRIMARY]["memory"] == "cold" and config["payload_memory"] == "cold"
    for segment in (folder / "segments").iterdir():
        fields = json.loads((segment / "payload_index" / "config.json").read_text())["indexed_fields"]
        assert {name: fields[name]["memory"] for name in ("doc_id", "esas_no", "karar_no", "year")} == dict.fromkeys(
            ("doc_id", "esas_no", "karar_no", "year"), "cold")
    with EdgeStore.open(folder) as s:
        p = data["payloads"][7]
        assert s.count(Where(corpus=p["corpus"], year=p["year"], any_of={"esas_no": [p["esas_no"]]})) == 1
        assert s.count(Where(any_of={"doc_id": [p["doc_id"]]})) == 3  # i = 6, 7, 8


# -- Qdrant Edge: one process at a time, and the WAL ------------------------------------------------
def _python(code: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_edge_store_in_use_says_which_process_since_when_and_what_to_do(tmp_path):
    """Issue 18 point 4: a search meeting an ingest's lock names the holder (pid, command, start)."""
    folder = tmp_path / "edge"
    holder = _python(f"""
        import sys, time
        from pathlib import Path
        from kademe.store.edge import EdgeStore
        sys.argv = ["kademe", "ingest", "--year", "2009"]
        s = EdgeStore.open(Path({str(folder)!r}))
        s.create({{"v": 8}})
        print("holding", flush=True)
        time.sleep(60)
        """)
    try:
        assert holder.stdout.readline().strip() == "holding", holder.stderr.read()
        with pytest.raises(KademeError) as e:
            EdgeStore.open(folder)
    finally:
        holder.kill()
        holder.wait(timeout=30)

    message = str(e.value)
    assert re.fullmatch(
        rf"The Qdrant Edge store at '{re.escape(str(folder))}' is in use by another process: process {holder.pid} "
        r"\(kademe ingest --year 2009\), since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(0 min\)\.\n\n"
        r"Wait for it to finish \(an ingest holds the store while it writes a year and builds that year's index\), "
        r"or run a Qdrant server and pass --qdrant-url\.", message), message
    with EdgeStore.open(folder) as s:  # released when the holder died
        assert s.info().points == 0


@pytest.mark.slow
def test_edge_store_killed_inside_the_index_build_keeps_its_points_and_clears_the_builders_leftovers(tmp_path):
    """kill -9 inside optimize() (crash point ``index-build``): the engine leaves
    ``temp_segments/segment_builder_*`` behind and never removes it; the next open does, under the lock."""
    folder = tmp_path / "edge"
    with EdgeStore.open(folder) as s:
        s.create({PRIMARY: YEAR_DIM}, design=SMALL)
        s.upsert([year_batch(2011, 6_000)])
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        from pathlib import Path
        from kademe.store.edge import EdgeStore
        EdgeStore.open(Path({str(folder)!r})).optimize()
        """)], env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin", "KADEME_FAULT_CRASH_AT": "index-build"},
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert "KADEME_FAULT_CRASH_AT=index-build: killing the process" in proc.stderr
    left = list((folder / "temp_segments").iterdir())
    assert left and any(p.name.startswith("segment_builder") for p in left), left

    with EdgeStore.open(folder) as s:
        assert not list((folder / "temp_segments").iterdir()), "the killed build's leftovers were cleared"
        year = year_batch(2011, 6_000)
        assert s.count(Where(year=2011)) == 6_000
        assert s.query(dense=[(PRIMARY, year.vectors[42])], where=Where(year=2011), limit=1)[0].id == year.ids[42]
        s.optimize()
        assert len(indexed_segments(folder)) == 1, "the next build completes"
        assert s.query(dense=[(PRIMARY, year.vectors[42])], where=Where(year=2011), limit=1)[0].id == year.ids[42]


def test_edge_store_killed_mid_upsert_loads_with_what_it_acknowledged(tmp_path):
    folder = tmp_path / "edge"
    proc = _python(f"""
        import sys, uuid
        from pathlib import Path
        import numpy as np
        from kademe.store.base import PointBatch
        from kademe.store.edge import EdgeStore
        s = EdgeStore.open(Path({str(folder)!r}))
        s.create({{"v": 64}})
        rng = np.random.default_rng(0)
        for n in range(10**6):
            ids = [str(uuid.uuid4()) for _ in range(500)]
            s.upsert([PointBatch(ids, [{{"corpus": "c", "year": 2011, "text": "x" * 500}}] * 500, "v",
                                 rng.random((500, 64), dtype=np.float32))])
            print((n + 1) * 500, flush=True)
        """)
    acknowledged = 0
    deadline = time.monotonic() + 30
    while acknowledged < 5000 and time.monotonic() < deadline:
        acknowledged = int(proc.stdout.readline() or 0)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert acknowledged >= 5000, proc.stderr.read()[-2000:]

    with EdgeStore.open(folder) as s:
        points = s.count(Where(corpus="c"))
    assert points >= acknowledged and points % 500 == 0, "every acknowledged update survived, none half-applied"


# -- a server: connect errors -----------------------------------------------------------------------
def test_a_refused_api_key_is_said_once_and_not_retried():
    with stub_qdrant(401, "Invalid api-key") as (url, requests), pytest.raises(KademeError) as e:
        ServerStore.connect(url, "c", api_key="WRONG-KEY")
    assert str(e.value) == "Qdrant refused the API key (HTTP 401).\n\nCheck --qdrant-api-key or KADEME_QDRANT_API_KEY."
    assert type(e.value) is KademeError and requests == ["/collections"]


@pytest.mark.slow
def test_nothing_listening_is_store_unavailable_with_what_to_do():
    with stub_qdrant(401, "unused") as (url, _):
        pass  # the port is now closed: connections are refused

    with pytest.raises(StoreUnavailable) as e:
        ServerStore.connect(url, "c")

    assert str(e.value) == f"Qdrant at {url} is not reachable.\n\nStart the server or fix --qdrant-url."


@pytest.mark.slow
def test_5xx_after_the_retries_is_store_unavailable():
    with stub_qdrant(503, "Service Unavailable") as (url, requests), pytest.raises(StoreUnavailable):
        ServerStore.connect(url, "c")
    assert len(requests) == 8, "every per-call attempt was made before giving up"
