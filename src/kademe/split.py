"""Split texts into chunks that fit the model, with the model's own tokenizer.

Each document is tokenized once (with character offsets, on every core: the fast tokenizer
releases the GIL). Chunks end where the text breaks best inside the token window — paragraph,
then line, then sentence, then clause, then word — and the next chunk starts ``chunk_overlap``
tokens earlier, on a word start. With a tokenizer that splits words at whitespace first (BERT's
WordPiece), a chunk cut at word breaks on both ends has exactly its window's tokens plus the special
tokens. The tokenizer itself still counts every chunk that could be over the limit
(``RECOUNT_MARGIN``), every chunk cut inside a word, and a sample of the rest (every
``SAMPLE_EVERY``-th); if a sampled count differs from its window's, every chunk of the batch is
counted. Other tokenizers (byte-level BPE, metaspace) count every chunk. A chunk the tokenizer counts
over the limit is split again, so the encoder never truncates a chunk.
"""

from __future__ import annotations

import functools
import json
import weakref
from typing import NamedTuple

import numpy as np

from kademe.threads import map_parts

RECOUNT_MARGIN = 4  # a window count this close to the limit is checked by the tokenizer
SAMPLE_EVERY = 16  # and every 16th chunk, to catch a tokenizer whose slices count differently
_LAST_CHAR_SCORE = np.ones(ord("…") + 1, dtype=np.int8)  # the score of a cut after a character (1: a word ends)
_LAST_CHAR_SCORE[[ord(c) for c in ".!?…"]] = 3
_LAST_CHAR_SCORE[[ord(c) for c in ";:,"]] = 2
_WORD_SPLITTERS = {"BertPreTokenizer", "Whitespace", "WhitespaceSplit"}


class Planned(NamedTuple):
    """One chunk as cut from its document's tokens: its text, the window's count, whether that count is trusted."""

    text: str
    n_tokens: int  # window tokens + special tokens
    clean: bool  # cut at word breaks on both ends (or the whole text): the window count is the tokenizer's
    ids: np.ndarray | None = None  # the window's token ids wrapped in the special tokens (int32), None if unknown


def split_texts(texts: list[str], tokenizer, limit: int, overlap: int) -> list[list[tuple[str, int]]]:
    """Split each text into ``(chunk_text, n_tokens)`` pairs with ``n_tokens <= limit``.

    ``n_tokens`` is what the tokenizer counts for the chunk text alone, special tokens included.

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
    return [[(text, n) for text, n, _ in doc] for doc in split_tokens(texts, tokenizer, limit, overlap)]


def split_tokens(texts: list[str], tokenizer, limit: int, overlap: int) -> list[list[tuple[str, int, np.ndarray]]]:
    """As ``split_texts``, with each chunk's token ids: ``(chunk_text, n_tokens, ids)``, ``len(ids) == n_tokens``.

    The ids are what ``tokenizer(chunk_text)`` gives, special tokens included (int32).

    Example:
        >>> split_tokens(["Birinci cümle."], tok, limit=8, overlap=0)[0][0][2]
        array([  101, 20413, 22657, 13351,   102], dtype=int32)
    """
    return _enforce_limit(plan_chunks(texts, tokenizer, limit, overlap), tokenizer, limit, overlap)


def token_bytes(ids: np.ndarray) -> bytes:
    """Token ids as the chunk file keeps them: little-endian int32 (a binary column reads back ~70x faster than a list)."""
    return np.asarray(ids, dtype="<i4").tobytes()


def plan_chunks(texts: list[str], tokenizer, limit: int, overlap: int) -> list[list[Planned]]:
    """Cut each text into token windows and count each by its window (not yet checked against the tokenizer).

    Args:
        texts, tokenizer, limit, overlap: as for ``split_texts``.

    Returns:
        N lists of ``Planned`` chunks; ``n_tokens`` is the window's tokens plus the special tokens.

    Example:
        >>> plan_chunks(["Birinci cümle. İkinci cümle."], tok, limit=8, overlap=0)[0][0][:3]
        ('Birinci cümle.', 5, True)
    """
    specials = tokenizer.num_special_tokens_to_add(pair=False)
    room = max(limit - specials, 8)
    wrap = _wrapper(tokenizer)
    result = []
    for text, (offsets, ids) in zip(texts, _tokens(texts, tokenizer)):
        n = len(offsets)
        if n <= room:  # the whole text, as the tokenizer saw it
            result.append([Planned(text, n + specials, True, wrap(ids))] if n or text else [])
            continue
        score = _break_scores(text, offsets)
        starts, ends = offsets[:, 0].tolist(), offsets[:, 1].tolist()
        result.append([Planned(text[starts[a]:ends[b - 1]], b - a + specials, bool(score[a] >= 0 and score[b] >= 0), wrap(ids[a:b]))
                       for a, b in _windows(score, room, min(overlap, room // 2 - 1))])
    return result


def _enforce_limit(planned: list[list[Planned]], tokenizer, limit: int, overlap: int) -> list[list[tuple[str, int, np.ndarray]]]:
    """Tokenize the chunks whose window is not enough; split again any over ``limit``."""
    flat = [c for doc in planned for c in doc]
    trusted = _windows_trusted(tokenizer)
    if trusted:
        check = [k for k, c in enumerate(flat)
                 if not c.clean or c.ids is None or c.n_tokens > limit - RECOUNT_MARGIN or k % SAMPLE_EVERY == 0]
    else:  # a word's tokens may depend on what precedes it (byte-level, metaspace): count every chunk
        check = list(range(len(flat)))
    tokens = [c.ids for c in flat]
    real = _tokenize(tokenizer, [flat[k].text for k in check])
    if trusted and any(flat[k].clean and flat[k].ids is not None and not np.array_equal(flat[k].ids, ids)
                       for k, ids in zip(check, real)):
        _MISCOUNTED.add(tokenizer)  # this tokenizer tokenizes slices differently: from now on, count every chunk
        check, real = list(range(len(flat))), _tokenize(tokenizer, [c.text for c in flat])
    for k, ids in zip(check, real):
        tokens[k] = ids
    tokens_iter = iter(tokens)
    result = []
    for doc in planned:
        out = []
        for c in doc:
            ids = next(tokens_iter)
            n = len(ids)
            if n <= limit:
                out.append((c.text, n, ids))
            else:  # shrink the window by the excess and try again on this chunk alone
                out.extend(split_tokens([c.text], tokenizer, limit - (n - limit) - 1, overlap)[0])
        result.append(out)
    return result


def _windows(score: np.ndarray, room: int, overlap: int) -> list[tuple[int, int]]:
    """Token spans ``[a, b)`` of at most ``room`` tokens, each ending at the best break of its window's second half."""
    n = len(score) - 1
    spans, start = [], 0
    while start < n:
        if n - start <= room:
            end = n
        else:
            lo, hi = start + room // 2, start + room
            window = score[lo:hi + 1]
            end = hi - int(np.argmax(window[::-1]))  # the last of the best
            if score[end] < 0:
                end = hi  # no word break in the window (one huge "word"): cut between tokens
        spans.append((start, end))
        if end == n:
            break
        nxt = end
        if overlap:
            lo = max(end - overlap, start + 1)
            ok = np.flatnonzero(score[lo:end] >= 0)
            nxt = lo + int(ok[0]) if len(ok) else end
        start = nxt
    return spans


def _break_scores(text: str, offsets: np.ndarray) -> np.ndarray:
    """How good a cut before each token ``j`` (0..n) is: 5 paragraph, 4 line, 3 sentence, 2 clause, 1 word, -1 inside a word."""
    n = len(offsets)
    score = np.full(n + 1, 5, dtype=np.int8)
    if n < 2:
        return score
    chars = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    a, b = offsets[:-1, 1], offsets[1:, 0]  # the gap before token j (1..n-1) is text[a:b]
    newline = chars == 10
    lines = np.concatenate(([0], np.cumsum(newline)))  # newlines in text[:i]
    pairs = np.concatenate(([0], np.cumsum(newline[:-1] & newline[1:])))  # "\n\n" starting in text[:i]
    last = chars[a - 1]  # a == 0 reads the last character, as text[-1] does
    inner = np.where(last < len(_LAST_CHAR_SCORE), _LAST_CHAR_SCORE[np.minimum(last, len(_LAST_CHAR_SCORE) - 1)], 1)
    inner = np.where(b > a, inner, -1)
    inner = np.where(lines[b] > lines[a], 4, inner)
    inner = np.where(pairs[np.maximum(b - 1, a)] > pairs[a], 5, inner)
    score[1:n] = inner
    return score


@functools.lru_cache(maxsize=4)
def _backend(tokenizer):
    """A private copy of the fast tokenizer's engine, without the truncation or padding its files may set."""
    engine = tokenizer.backend_tokenizer.__class__.from_str(tokenizer.backend_tokenizer.to_str())
    engine.no_truncation()
    engine.no_padding()
    return engine


@functools.lru_cache(maxsize=4)
def _splits_words_first(tokenizer) -> bool:
    """Whether the tokenizer cuts text into words at whitespace before anything else (BERT's WordPiece does).

    A chunk cut at whitespace then holds exactly its window's tokens, so window counts may stand
    for the tokenizer's. Other tokenizers (byte-level BPE, SentencePiece's metaspace) may tokenize a
    word differently at the start of a text.
    """
    pre = json.loads(_backend(tokenizer).to_str()).get("pre_tokenizer") or {}
    kinds = {p.get("type") for p in pre.get("pretokenizers", [])} if pre.get("type") == "Sequence" else {pre.get("type")}
    return bool(_WORD_SPLITTERS & kinds) and kinds <= _WORD_SPLITTERS | {"Punctuation", "Digits"}


# Tokenizers whose count of a word-cut chunk was once seen to differ from the window's: every chunk
# of theirs is counted from then on, for as long as the tokenizer lives.
_MISCOUNTED: weakref.WeakSet = weakref.WeakSet()


def _windows_trusted(tokenizer) -> bool:
    """Whether window counts of chunks cut at word breaks may stand for this tokenizer's counts."""
    return tokenizer not in _MISCOUNTED and _splits_words_first(tokenizer)


def _encode(texts: list[str], tokenizer, specials: bool, fn):
    """``fn`` over the encodings of ``texts``, on every core."""
    engine = _backend(tokenizer)
    return map_parts(lambda part: fn(engine.encode_batch(list(part), add_special_tokens=specials)), texts)


def _tokens(texts: list[str], tokenizer) -> list[tuple[np.ndarray, np.ndarray]]:
    """Character offsets ``(n, 2)`` and ids ``(n,)`` of every token of every text, special tokens left out."""
    return _encode(texts, tokenizer, False, lambda encs: [(np.array(e.offsets, dtype=np.int64).reshape(-1, 2),
                                                            np.array(e.ids, dtype=np.int32)) for e in encs])


def _tokenize(tokenizer, texts: list[str]) -> list[np.ndarray]:
    """Token ids of each text alone, special tokens included: what the encoder will see."""
    if not texts:
        return []
    engine = _backend(tokenizer)
    fast = getattr(engine, "encode_batch_fast", engine.encode_batch)  # no offsets: ~25% less work
    return map_parts(lambda part: [np.array(e.ids, dtype=np.int32) for e in fast(list(part), add_special_tokens=True)], texts)


@functools.lru_cache(maxsize=4)
def _special_ids(tokenizer) -> tuple[np.ndarray, np.ndarray] | None:
    """The special tokens the tokenizer puts before and after one text's tokens, or None if they are not simply around it."""
    enc = _backend(tokenizer).encode("a", add_special_tokens=True)
    inner = [k for k, special in enumerate(enc.special_tokens_mask) if not special]
    if not inner or len(enc.ids) - len(inner) != tokenizer.num_special_tokens_to_add(pair=False):
        return None
    return np.array(enc.ids[:inner[0]], dtype=np.int32), np.array(enc.ids[inner[-1] + 1:], dtype=np.int32)


def _wrapper(tokenizer):
    """A function from a window's ids to the chunk's ids (special tokens around them); None when unknown."""
    specials = _special_ids(tokenizer)
    if specials is None:
        return lambda ids: None
    head, tail = specials
    return lambda ids: np.concatenate((head, ids, tail))
