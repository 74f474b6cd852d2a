"""The card never waits (issue 32): the stand-in card, card-busy timing, and the chunk stage feeding its shards as it cuts them."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

from kademe.chunk import CHUNKS_SCHEMA, chunk_key, chunk_texts
from kademe.chunks import ChunkStream
from kademe.clean import clean_records
from kademe.embed.busy import CudaClock, WallClock, read_card_log
from kademe.embed.card import StandInCard, choose_card
from kademe.embed.ladder import Ladder
from kademe.embed.stage import embed_chunks
from kademe.lexical.stage import sparse_chunks
from kademe.models import load_tokenizer, resolve_model
from kademe.sources import read_year
from kademe.testing import sample_chunks
from tests.conftest import MODEL, decision, write_ndjson


@pytest.fixture(scope="module")
def chunks_and_ids():
    texts, counts = sample_chunks(200, MODEL, seed=5)
    tok = load_tokenizer(resolve_model(MODEL))
    return texts, counts, [tok(t)["input_ids"] for t in texts]


# -- the stand-in card ---------------------------------------------------------------------------
def test_the_stand_in_card_sleeps_tokens_over_rate_and_computes_nothing(chunks_and_ids, monkeypatch, tmp_path):
    texts, counts, ids = chunks_and_ids
    rate = 40_000.0  # tokens a second: these ~200 chunks take ~1 s
    log = tmp_path / "card.ndjson"
    monkeypatch.setenv("KADEME_FAULT_CARD_RATE", str(rate))
    monkeypatch.setenv("KADEME_FAULT_CARD_LOG", str(log))
    from kademe.settings import Settings

    ladder = Ladder(Settings(model=MODEL, batch_size=64))
    assert isinstance(ladder.card, StandInCard) and ladder.rung == "gpu"
    ladder.embed(texts[:8], counts[:8], ids[:8])  # the pool of vectors is made once
    log.unlink()
    wall, cpu = time.perf_counter(), time.process_time()
    out = ladder.embed(texts, counts, ids)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu

    asleep = sum(counts) / rate
    assert set(out.rungs) == {"gpu"} and len(out.vectors) == len(texts)
    vectors = np.stack(out.vectors)
    assert vectors.shape == (len(texts), 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    batches = read_card_log(log)
    assert sum(b["tokens"] for b in batches) == sum(counts), "the card sleeps for the real tokens, not the padded ones"
    assert sum(b["rows"] for b in batches) == len(texts) and max(b["rows"] for b in batches) == 64
    slept = sum(b["seconds"] for b in batches)  # a sleep never ends early; on a loaded machine it wakes late
    assert asleep <= slept < asleep + 0.05 * len(batches) and slept <= wall < slept + 1.0
    assert cpu < 0.25 * asleep, f"the stand-in card cost {cpu:.2f} s of CPU for {asleep:.2f} s of card"
    again = ladder.embed(texts[:5], counts[:5], ids[:5])
    assert all(np.array_equal(a, b) for a, b in zip(again.vectors, out.vectors[:5])), "equal chunks, equal vectors"


def test_the_stand_in_card_is_planned_like_a_card(monkeypatch):
    from kademe.settings import Settings

    monkeypatch.setenv("KADEME_FAULT_CARD_RATE", "1e9")
    big = Ladder(Settings(model=MODEL, batch_size=512))
    monkeypatch.setenv("KADEME_FAULT_FREE_MB", "64")  # a card with little free memory: a smaller token budget
    small = Ladder(Settings(model=MODEL, batch_size=512))
    assert big.budget.tokens == 512 * big.max_len, "16 GiB free: the rows cap (--batch-size) decides, not the CPU's 32"
    assert small.budget.tokens < big.budget.tokens
    monkeypatch.delenv("KADEME_FAULT_CARD_RATE")
    monkeypatch.delenv("KADEME_FAULT_FREE_MB")
    assert not isinstance(choose_card(), StandInCard)


def test_a_bad_card_rate_says_what_it_wants(monkeypatch):
    monkeypatch.setenv("KADEME_FAULT_CARD_RATE", "-5")
    with pytest.raises(ValueError, match="positive number of tokens a second"):
        choose_card()


def test_the_wall_clock_times_a_batch():
    with WallClock().batch() as took:
        time.sleep(0.05)
    assert 0.05 <= took[0] < 0.2


@pytest.mark.gpu
def test_cuda_events_time_a_batch_on_the_card(chunks_and_ids, tmp_path, monkeypatch):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    with CudaClock().batch() as took:
        torch.cuda._sleep(50_000_000)  # ~tens of ms of GPU time, none of the CPU's
    assert took[0] > 0.001
    texts, counts, ids = chunks_and_ids
    log = tmp_path / "card.ndjson"
    monkeypatch.setenv("KADEME_FAULT_CARD_LOG", str(log))
    from kademe.settings import Settings

    ladder = Ladder(Settings(model=MODEL, device="cuda", batch_size=64))
    wall = time.perf_counter()
    ladder.embed(texts, counts, ids)
    wall = time.perf_counter() - wall
    batches = read_card_log(log)
    assert sum(b["rows"] for b in batches) == len(texts)
    assert 0 < sum(b["seconds"] for b in batches) <= wall


# -- no barrier before the card --------------------------------------------------------------------
@pytest.fixture
def year(tmp_path, settings):
    """A year of 40 decisions: several chunk shards of 8, several batches of documents."""
    write_ndjson(tmp_path / "data" / "yargitay_2011.ndjson", [decision(2011, n, words=120) for n in range(40)])
    s = settings(chunk_tokens=64, chunk_overlap=8, shard_size=8)
    return s, clean_records(read_year(2011, s), 2011, s)


def test_readers_get_the_first_shard_while_the_year_is_still_being_cut(year, monkeypatch):
    import kademe.chunk

    s, clean = year
    monkeypatch.setattr(kademe.chunk, "DOC_BATCH", 4)  # several batches of documents in this small year
    stream = ChunkStream(chunk_key(clean.key, s))
    seen: list[tuple[int, int | None]] = []

    def read():
        for cols in stream.columns(s.shard_size, ["point_id"]):
            seen.append((len(cols["point_id"]), stream.count))

    reader = threading.Thread(target=read)
    reader.start()
    result = chunk_texts(clean, 2011, s, stream)
    reader.join(30)

    assert seen[0][1] is None, "the first shard was read before the chunk stage had finished"
    assert sum(n for n, _ in seen) == result.count == stream.count and len(seen) == -(-result.count // s.shard_size)
    assert len(result.files) == len(seen) > 3 and pq.read_table(result.files[0]).num_rows == s.shard_size


def test_lexical_and_embed_follow_the_stream_and_equal_a_finished_checkpoint(year, settings, tmp_path):
    s, clean = year
    stream = ChunkStream(chunk_key(clean.key, s))
    box: dict = {}
    lexical = threading.Thread(target=lambda: box.update(sparse=sparse_chunks(stream, 2011, s)))
    embed = threading.Thread(target=lambda: box.update(dense=embed_chunks(stream, 2011, s)))
    lexical.start(), embed.start()
    chunks = chunk_texts(clean, 2011, s, stream)
    lexical.join(120), embed.join(120)

    other = settings(chunk_tokens=64, chunk_overlap=8, shard_size=8, workdir=tmp_path / "after")
    after = chunk_texts(clean_records(read_year(2011, other), 2011, other), 2011, other)
    sparse, dense = sparse_chunks(after, 2011, other), embed_chunks(after, 2011, other)
    assert box["dense"].count == dense.count == chunks.count and box["sparse"].shards == sparse.shards == box["dense"].shards
    for i in range(dense.shards):
        streamed = pq.read_table(s.partition(2011).checkpoint("embed", box["dense"].key).shard_file(i)).to_pydict()
        done = pq.read_table(other.partition(2011).checkpoint("embed", dense.key).shard_file(i)).to_pydict()
        assert streamed["point_id"] == done["point_id"] and streamed["vector"] == done["vector"]
        assert pq.read_table(box["sparse"].shard(i)).to_pydict() == pq.read_table(sparse.shard(i)).to_pydict()


def test_a_killed_chunk_stage_resumes_at_the_shard_it_died_in(year, tmp_path):
    s, clean = year
    code = ("import sys, kademe.chunk as c\n"
            "from kademe.settings import Settings\nfrom kademe.clean import clean_records\nfrom kademe.sources import read_year\n"
            "c.DOC_BATCH = 4\n"
            "s = Settings.model_validate_json(sys.argv[1])\n"
            "c.chunk_texts(clean_records(read_year(2011, s), 2011, s), 2011, s)\n")
    env = {**os.environ, "KADEME_FAULT_CRASH_AT": "chunk-shard:3", "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", code, s.model_dump_json()], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 137, proc.stderr[-2000:]
    folder = next(p for p in s.partition(2011).path.glob("chunk-*") if p.is_dir())
    kept = {p: p.stat().st_mtime_ns for p in folder.glob("shard-*")}
    assert len([p for p in kept if p.suffix == ".parquet"]) == 3

    resumed = chunk_texts(clean, 2011, s)

    assert {p: p.stat().st_mtime_ns for p in kept} == kept, "a committed chunk shard was cut again"
    fresh = s.model_copy(update={"workdir": tmp_path / "fresh"})
    whole = chunk_texts(clean_records(read_year(2011, fresh), 2011, fresh), 2011, fresh)
    assert resumed.count == whole.count and resumed.table().to_pydict() == whole.table().to_pydict()


def test_a_chunk_checkpoint_of_one_file_is_read_as_before(year):
    s, clean = year
    cp = s.partition(2011).checkpoint("chunk", chunk_key(clean.key, s))
    rows = [{"point_id": f"p{i}", "corpus": "yargitay", "doc_id": "d", "chunk_index": i, "year": 2011, "text": f"metin {i}",
             "n_tokens": 4, "token_ids": None, "text_sha": None, "meta": None} for i in range(20)]
    with cp.sink(CHUNKS_SCHEMA) as sink:  # the layout before issue 32: one chunk-<token>.parquet
        sink.write(rows)
    cp.commit(chunks=20, limit=64)

    result = chunk_texts(clean, 2011, s)

    assert result.cached and result.count == 20 and len(result.files) == 1
    assert [len(c["point_id"]) for c in result.columns(8, ["point_id"])] == [8, 8, 4]
    assert result.point_ids() == {f"p{i}" for i in range(20)}
