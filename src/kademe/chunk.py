"""The chunk stage: a year's clean documents into chunks that fit the model (``kademe.split`` cuts them).

Each chunk keeps its token ids (``token_ids``: int32, special tokens included), what the encoder is
fed: the embed stage does no text work (issue 22, "tokenize once"). Each chunk keeps the SHA-256 of
its text too (``text_sha``), the key under which a rerun finds its vector again (issue 21): the
embed stage reads it and hashes nothing. A chunk file written before it has no such column; the
embed stage then hashes the texts.

A night's rerun tokenizes only new and changed documents (issue 29): an unchanged document's rows
are copied from the previous chunk checkpoint of the same settings (``kademe.carry``), found by the
document's content hash (``doc_sha``, kept on every row).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from kademe.carry import PreviousChunks, doc_digest
from kademe.clean import DOCS_SCHEMA, META_FIELDS, CleanResult
from kademe.ids import point_id, text_sha
from kademe.keys import chain_key
from kademe.models import load_tokenizer, max_seq_length, resolve_model
from kademe.parquet_io import iter_parquet
from kademe.retention import lineage
from kademe.settings import Settings
from kademe.split import split_tokens, token_bytes

CHUNKS_SCHEMA = pa.schema(
    [("point_id", pa.string()), ("corpus", pa.string()), ("doc_id", pa.string()), ("chunk_index", pa.int32()), ("year", pa.int32()),
     ("text", pa.string()), ("n_tokens", pa.int32()), ("token_ids", pa.binary()), ("text_sha", pa.string()),
     ("doc_sha", pa.string())]
    + [(name, pa.string()) for name in META_FIELDS]
    + [("meta", pa.string())]
)
DOC_BATCH = 256


@dataclass(frozen=True)
class ChunkResult:
    """Chunks of one year: ``chunk-<key>.parquet`` (see ``CHUNKS_SCHEMA``)."""

    key: str
    chunks: Path
    count: int
    cached: bool
    seconds: float = 0.0


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


def chunk_texts(clean: CleanResult, year: int, s: Settings) -> ChunkResult:
    """Chunk one year's clean documents into ``chunk-<key>.parquet``.

    Args:
        clean: the clean stage's result.
        year: the year.
        s: settings (``model``, ``chunk_tokens``, ``chunk_overlap``, ``workdir``).

    Returns:
        A ``ChunkResult``; every chunk has ``n_tokens <= max_seq_length`` of the model.
    """
    part = s.partition(year)
    cp = part.checkpoint("chunk", chunk_key(clean.key, s))
    if (meta := cp.hit()) is not None:
        return ChunkResult(cp.key, cp.file(), meta["chunks"], cached=True)

    cp.crash("start")
    limit, model_dir = chunk_limit(s)
    tokenizer = None  # loaded for the first document that is not carried over
    previous = PreviousChunks.find(part, lineage(s, "chunk"), CHUNKS_SCHEMA, skip=cp.key)  # issue 29: unchanged documents
    carried = 0
    with cp.sink(CHUNKS_SCHEMA) as sink:
        for docs in iter_parquet(clean.documents, batch_size=DOC_BATCH):
            shas = [doc_digest(d) for d in docs]
            kept = [previous.rows(d["doc_id"], sha) if previous else None for d, sha in zip(docs, shas)]
            todo = [k for k, rows in enumerate(kept) if rows is None]
            if todo and tokenizer is None:
                tokenizer = load_tokenizer(model_dir)
            spans = dict(zip(todo, split_tokens([docs[k]["text"] for k in todo], tokenizer, limit, s.chunk_overlap))) if todo else {}
            tables = []
            for k, doc in enumerate(docs):
                if kept[k] is not None:
                    tables.append(kept[k])
                    carried += kept[k].num_rows
                    continue
                rows = [{"point_id": point_id(part.corpus, doc["doc_id"], i), "corpus": part.corpus, "chunk_index": i,
                         "text": text, "n_tokens": n_tokens, "token_ids": token_bytes(ids), "text_sha": text_sha(text),
                         "doc_sha": shas[k], **{f: doc[f] for f in DOCS_SCHEMA.names if f not in ("line", "text")}}
                        for i, (text, n_tokens, ids) in enumerate(spans[k])]
                tables.append(pa.Table.from_pylist(rows, schema=CHUNKS_SCHEMA))
            cp.crash("batch")
            if tables:
                sink.write_table(pa.concat_tables(tables))
    cp.commit(chunks=sink.rows, limit=limit, carried=carried, lineage=lineage(s, "chunk"))
    return ChunkResult(cp.key, cp.file(), sink.rows, cached=False, seconds=cp.seconds)
