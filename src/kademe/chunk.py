"""The chunk stage: a year's clean documents into chunks that fit the model (``kademe.split`` cuts them).

Each chunk keeps its token ids (``token_ids``: int32, special tokens included), what the encoder is
fed: the embed stage does no text work (issue 22, "tokenize once"). Each chunk keeps the SHA-256 of
its text too (``text_sha``), the key under which a rerun finds its vector again (issue 21): the
embed stage reads it and hashes nothing. A chunk file written before it has no such column; the
embed stage then hashes the texts.

The checkpoint is written as shards of ``shard_size`` chunks (issue 32), each committed on its own
and handed to the stages after it through a ``ChunkStream`` as soon as it is: the encoder starts on
the first shard while the rest of the year is still being cut. A shard's marker says where the next
one starts (document, chunks of it already cut), so a killed run resumes at the shard it died in.
A checkpoint of one file, from before, is read as it is (``kademe.chunks``).

A night's unchanged documents (issue 29) are not tokenized again: their rows are copied from the
previous chunk checkpoint of the same settings (``kademe.carry``), found by the document's content
hash (``doc_sha``, kept on every row).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from kademe.carry import PreviousChunks, doc_digest
from kademe.checkpoint import Checkpoint
from kademe.chunks import ChunkResult, ChunkStream
from kademe.clean import DOCS_SCHEMA, META_FIELDS, CleanResult
from kademe.ids import point_id, text_sha
from kademe.keys import chain_key
from kademe.models import load_tokenizer, max_seq_length, resolve_model
from kademe.retention import lineage
from kademe.settings import Settings
from kademe.split import split_tokens, token_bytes

__all__ = ["CHUNKS_SCHEMA", "ChunkResult", "chunk_key", "chunk_limit", "chunk_texts"]

CHUNKS_SCHEMA = pa.schema(
    [("point_id", pa.string()), ("corpus", pa.string()), ("doc_id", pa.string()), ("chunk_index", pa.int32()), ("year", pa.int32()),
     ("text", pa.string()), ("n_tokens", pa.int32()), ("token_ids", pa.binary()), ("text_sha", pa.string()),
     ("doc_sha", pa.string())]
    + [(name, pa.string()) for name in META_FIELDS]
    + [("meta", pa.string())]
)
# Documents tokenized at once: small enough that the first shard is cut within a fraction of a second
# (issue 32: the encoder waits for it), large enough that the tokenizer's threads share the work.
DOC_BATCH = 64


def chunk_limit(s: Settings) -> tuple[int, Path]:
    """The most tokens a chunk may have (special tokens included) and the model folder."""
    model_dir = resolve_model(s.model)
    ceiling = max_seq_length(model_dir)
    return min(s.chunk_tokens or ceiling, ceiling), model_dir


def chunk_key(clean_key: str, s: Settings) -> str:
    """The chunk checkpoint's key: the clean checkpoint's key and the chunk settings (the model's identity included).

    Raises:
        KademeError: the model cannot be resolved (its identity is part of the key).
    """
    return chain_key(clean_key, s.fingerprint("chunk"))


def chunk_texts(clean: CleanResult, year: int, s: Settings, stream: ChunkStream | None = None) -> ChunkResult:
    """Chunk one year's clean documents into shards of ``s.shard_size`` chunks.

    Args:
        clean: the clean stage's result.
        year: the year.
        s: settings (``model``, ``chunk_tokens``, ``chunk_overlap``, ``shard_size``, ``workdir``).
        stream: told about each shard as it is committed, and closed when the checkpoint is. On an error it
            stays open: a retry announces the shards again from the first (the stream ignores those it has),
            and the caller closes it with the error when it gives up (``ChunkStream.close``).

    Returns:
        A ``ChunkResult``; every chunk has ``n_tokens <= max_seq_length`` of the model.
    """
    cp = s.partition(year).checkpoint("chunk", chunk_key(clean.key, s))
    result = _chunk(cp, clean, year, s, stream)
    if stream is not None:
        stream.close(result)
    return result


def _chunk(cp: Checkpoint, clean: CleanResult, year: int, s: Settings, stream: ChunkStream | None) -> ChunkResult:
    if (meta := cp.hit()) is not None:
        files = tuple(cp.files())
        for i, path in enumerate(files):
            if stream is not None:
                stream.add(i, path, 0, 1.0)
        return ChunkResult(cp.key, files, meta["chunks"], cached=True)

    cp.crash("start")
    limit, model_dir = chunk_limit(s)
    tokenizer = _Tokenizer(model_dir)  # loaded for the first document that is not carried over
    previous = PreviousChunks.find(cp.part, lineage(s, "chunk"), CHUNKS_SCHEMA, skip=cp.key)  # issue 29: unchanged documents
    carried = 0
    committed = cp.committed_shards()  # a resumed run keeps these; each marker says where the next shard starts
    docs = max(clean.count, 1)
    position, rows, i = (0, 0), 0, 0
    cut: Iterator[tuple[dict, tuple[int, int]]] | None = None
    while position[0] < clean.count:
        if i in committed:
            marker, cut = committed[i], None
        else:
            if cut is None:
                cut = _cut(clean.documents, position, tokenizer, limit, s, cp.part.corpus, lambda: cp.crash("batch"), previous)
            shard = list(islice(cut, s.shard_size))
            if not shard:
                break
            marker = cp.put_shard(i, lambda path: _write_chunks(path, [r for r, _, _ in shard]), next=list(shard[-1][1]),
                                  carried=sum(1 for _, _, kept in shard if kept))
        position = tuple(marker["next"])
        rows += marker["rows"]
        carried += marker.get("carried", 0)
        if stream is not None:
            stream.add(i, cp.shard_file(i), marker["rows"], position[0] / docs)
        cp.crash("shard")
        i += 1
    cp.commit(chunks=rows, limit=limit, shard_size=s.shard_size, shards=i, carried=carried, lineage=lineage(s, "chunk"))
    return ChunkResult(cp.key, tuple(cp.files()), rows, cached=False, seconds=cp.seconds)


class _Tokenizer:
    """The model's tokenizer, loaded on first use (a night that carries every document over loads none)."""

    def __init__(self, model_dir: Path):
        self.model_dir, self._tokenizer = model_dir, None

    def get(self):
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.model_dir)
        return self._tokenizer


def _cut(documents: Path, start: tuple[int, int], tokenizer: _Tokenizer, limit: int, s: Settings, corpus: str,
         crash: Callable[[], None], previous: PreviousChunks | None = None) -> Iterator[tuple[dict, tuple[int, int], bool]]:
    """The chunk rows from ``start`` = (document, chunks of it to skip) on, each with where the next one starts and
    whether it was carried over from ``previous`` (an unchanged document's rows, copied, not tokenized)."""
    first_doc, skip = start
    seen = 0
    for batch in pq.ParquetFile(documents).iter_batches(batch_size=DOC_BATCH):
        if seen + batch.num_rows <= first_doc:
            seen += batch.num_rows
            continue
        offset = max(0, first_doc - seen)
        docs = batch.slice(offset).to_pylist()
        shas = [doc_digest(d) for d in docs]
        kept = [previous.rows(d["doc_id"], sha) if previous else None for d, sha in zip(docs, shas)]
        todo = [k for k, rows in enumerate(kept) if rows is None]
        spans = dict(zip(todo, split_tokens([docs[k]["text"] for k in todo], tokenizer.get(), limit, s.chunk_overlap))) if todo else {}
        crash()
        for k, doc in enumerate(docs):
            d = seen + offset + k
            if kept[k] is not None:
                doc_rows, carried = kept[k], True
            else:
                keep = {name: doc[name] for name in DOCS_SCHEMA.names if name not in ("line", "text")}
                doc_rows = [{"point_id": point_id(corpus, doc["doc_id"], j), "corpus": corpus, "chunk_index": j, "text": text,
                             "n_tokens": n_tokens, "token_ids": token_bytes(ids), "text_sha": text_sha(text), "doc_sha": shas[k],
                             **keep} for j, (text, n_tokens, ids) in enumerate(spans[k])]
                carried = False
            for j, row in enumerate(doc_rows):
                if d == first_doc and j < skip:
                    continue
                yield row, ((d, j + 1) if j + 1 < len(doc_rows) else (d + 1, 0)), carried
        seen += batch.num_rows


def _write_chunks(path: Path, rows: list[dict]) -> int:
    """One shard of chunk rows (``CHUNKS_SCHEMA``) to ``path``; the rows written."""
    pq.write_table(pa.Table.from_pylist(rows, schema=CHUNKS_SCHEMA), path, compression="zstd")
    return len(rows)
