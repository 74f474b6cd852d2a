"""Split documents into chunks that fit the model, with the model's own tokenizer.

Each document is tokenized once (with character offsets). Chunks end where the text breaks best
inside the token window — paragraph, then line, then sentence, then clause, then word — and the
next chunk starts ``chunk_overlap`` tokens earlier, on a word start. Every chunk is then checked
against the real limit (re-tokenized in one batch, special tokens included) and split again in the
rare case a tokenizer counts a slice differently, so the encoder never truncates a chunk.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from kademe.checkpoint import chain_key, iter_parquet
from kademe.clean import DOCS_SCHEMA, META_FIELDS, CleanResult
from kademe.embed.model import load_tokenizer, max_seq_length, resolve_model
from kademe.settings import Settings

# Fixed forever: point ids must not change between versions, or reruns would duplicate points.
POINT_NAMESPACE = uuid.UUID("5b0c6f4e-6b61-4465-6d65-6b6164656d65")

CHUNKS_SCHEMA = pa.schema(
    [("point_id", pa.string()), ("corpus", pa.string()), ("doc_id", pa.string()), ("chunk_index", pa.int32()), ("year", pa.int32()),
     ("text", pa.string()), ("n_tokens", pa.int32())]
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


def point_id(corpus: str, doc_id: str, chunk_index: int) -> str:
    """Deterministic Qdrant point id: uuid5 of ``"{corpus}:{doc_id}:{chunk_index}"``.

    The corpus is part of the id: two corpora in one collection may both have a document
    ``2011-1``, and their points must not overwrite each other (issue 11). Ids made before the
    corpus was part of them (``"{doc_id}:{chunk_index}"``) differ; see the README's upgrade note.

    Example:
        >>> point_id("yargitay", "2011-1", 0) != point_id("danistay", "2011-1", 0)
        True
    """
    return str(uuid.uuid5(POINT_NAMESPACE, f"{corpus}:{doc_id}:{chunk_index}"))


def chunk_limit(s: Settings) -> tuple[int, Path]:
    """The most tokens a chunk may have (special tokens included) and the model folder."""
    model_dir = resolve_model(s.model)
    ceiling = max_seq_length(model_dir)
    return min(s.chunk_tokens or ceiling, ceiling), model_dir


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
    cp = part.checkpoint("chunk", chain_key(clean.key, s.fingerprint("chunk")))
    if (meta := cp.hit()) is not None:
        return ChunkResult(cp.key, cp.file(), meta["chunks"], cached=True)

    cp.crash("start")
    limit, model_dir = chunk_limit(s)
    tokenizer = load_tokenizer(model_dir)
    with cp.sink(CHUNKS_SCHEMA) as sink:
        for docs in iter_parquet(clean.documents, batch_size=DOC_BATCH):
            texts = [d["text"] for d in docs]
            spans = split_texts(texts, tokenizer, limit, s.chunk_overlap)
            rows = []
            for doc, doc_spans in zip(docs, spans):
                for i, (text, n_tokens) in enumerate(doc_spans):
                    rows.append({"point_id": point_id(part.corpus, doc["doc_id"], i), "corpus": part.corpus, "chunk_index": i,
                                 "text": text, "n_tokens": n_tokens,
                                 **{k: doc[k] for k in DOCS_SCHEMA.names if k not in ("line", "text")}})
            cp.crash("batch")
            sink.write(rows)
    cp.commit(chunks=sink.rows, limit=limit)
    return ChunkResult(cp.key, cp.file(), sink.rows, cached=False, seconds=cp.seconds)


def split_texts(texts: list[str], tokenizer, limit: int, overlap: int) -> list[list[tuple[str, int]]]:
    """Split each text into ``(chunk_text, n_tokens)`` pairs with ``n_tokens <= limit``.

    Args:
        texts: N clean texts.
        tokenizer: a Hugging Face fast tokenizer.
        limit: most tokens per chunk, special tokens included.
        overlap: tokens repeated from the end of one chunk at the start of the next.

    Returns:
        N lists of chunks, in text order.

    Example:
        >>> split_texts(["Birinci cümle. İkinci cümle."], tok, limit=8, overlap=0)
        [[('Birinci cümle.', 5), ('İkinci cümle.', 5)]]
    """
    specials = tokenizer.num_special_tokens_to_add(pair=False)
    room = max(limit - specials, 8)
    encoded = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    result = []
    for text, offsets in zip(texts, encoded["offset_mapping"]):
        spans = _windows(text, offsets, room, min(overlap, room // 2 - 1))
        result.append([text[a:b] for a, b in spans])
    return _enforce_limit(result, tokenizer, limit, overlap)


def _enforce_limit(chunks: list[list[str]], tokenizer, limit: int, overlap: int) -> list[list[tuple[str, int]]]:
    """Count each chunk with special tokens; split again any chunk the tokenizer counts over ``limit``."""
    flat = [c for doc in chunks for c in doc]
    counts = iter(len(ids) for ids in tokenizer(flat, add_special_tokens=True, verbose=False)["input_ids"]) if flat else iter(())
    result = []
    for doc in chunks:
        out = []
        for text in doc:
            n = next(counts)
            if n <= limit:
                out.append((text, n))
            else:  # shrink the window by the excess and try again on this chunk alone
                out.extend(c for part in split_texts([text], tokenizer, limit - (n - limit) - 1, overlap) for c in part)
        result.append(out)
    return result


def _windows(text: str, offsets: list[tuple[int, int]], room: int, overlap: int) -> list[tuple[int, int]]:
    """Character spans of token windows of at most ``room`` tokens, cut at the best break."""
    n = len(offsets)
    if n <= room:
        return [(0, len(text))] if n else ([(0, len(text))] if text else [])
    score = [_break_score(text, offsets, j) for j in range(n + 1)]
    spans, start = [], 0
    while start < n:
        if n - start <= room:
            end = n
        else:
            lo, hi = start + room // 2, start + room
            end = max(range(lo, hi + 1), key=lambda j: (score[j], j))
            if score[end] < 0:
                end = hi  # no word break in the window (one huge "word"): cut between tokens
        spans.append((offsets[start][0], offsets[end - 1][1]))
        if end == n:
            break
        nxt = end
        if overlap:
            nxt = next((j for j in range(end - overlap, end) if j > start and score[j] >= 0), end)
        start = nxt
    return spans


def _break_score(text: str, offsets: list[tuple[int, int]], j: int) -> int:
    """How good a cut before token ``j`` is: 5 paragraph, 4 line, 3 sentence, 2 clause, 1 word, -1 inside a word."""
    if j == 0 or j == len(offsets):
        return 5
    gap = text[offsets[j - 1][1] : offsets[j][0]]
    if "\n\n" in gap:
        return 5
    if "\n" in gap:
        return 4
    if not gap:
        return -1
    last = text[offsets[j - 1][1] - 1]
    return 3 if last in ".!?…" else 2 if last in ";:," else 1
