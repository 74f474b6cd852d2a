"""The lexical side of search: BM25 sparse vectors from Qdrant's own analyzer (``qdrant_edge.Bm25``).

One analyzer serves both engines: documents and queries are turned into ``bm25`` sparse vectors
here, in-process, and the collection's IDF modifier supplies the corpus statistics. Nothing here
tokenizes or stems by itself: the tokenizer, the Turkish Snowball stemmer and the Turkish stopwords
are Qdrant's. Settings chosen by measurement on the real decisions (bench/search.py, bench/README.md):

  * ``language`` = the stemmer and stopword language (``turkish``);
  * ``lowercase`` on (Qdrant's default; it is Unicode lowercasing: ``İ`` becomes ``i̇``, ``I`` becomes
    ``i``, so ``İSTANBUL`` and ``istanbul`` do *not* meet unless folded — see ``ascii_folding``);
  * ``ascii_folding`` off: folding merges ``İ/I/ı/i`` but runs before the stemmer, which then no
    longer recognises Turkish suffixes on folded words (``kararı`` → ``karari``), and it measured no
    better on the probes;
  * the ``word`` tokenizer splits ``2019/17697`` into ``2019`` and ``17697``, so a case number is two
    rare terms; exact case-number lookup is done on the payload indexes (``kademe.search``).

``analyzer_fingerprint`` names the configuration and the qdrant-edge version: the checkpoints of
the sparse vectors are keyed by it, so a changed analyzer recomputes them and nothing else.
"""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import metadata

import numpy as np

from kademe.errors import KademeError
from kademe.procs import map_processes

# The analyzer settings besides the language. Change them here and every fingerprint changes.
ANALYZER_OPTIONS: dict[str, object] = {"lowercase": True, "ascii_folding": False, "stemmer": True, "stopwords": True,
                                       "turkish_case": True}
TURKISH_CASE = {"turkish", "azerbaijani"}  # languages whose dotted/dotless I pairs are İ/i and I/ı


def case_fold(text: str, language: str) -> str:
    """Map Turkish capital I/İ to ı/i before the analyzer lowercases (it lowercases for no locale).

    Qdrant's lowercasing turns ``DAVALI`` into ``davali`` and ``İ`` into ``i`` + combining dot, so the
    capitalised headings of a decision would never meet a query typed in lower case. This is a
    character mapping, not a tokenizer: Qdrant still tokenizes, lowercases and stems.

    Example:
        >>> case_fold("DAVALI İŞVEREN", "turkish")
        'DAVALı iŞVEREN'
    """
    if ANALYZER_OPTIONS["turkish_case"] and language in TURKISH_CASE:
        return text.replace("I", "ı").replace("İ", "i")  # str.replace: ~10x faster than translate here
    return text


def _config(language: str):
    from qdrant_edge import Bm25Config, DisabledStemmer, StopwordsSet

    kwargs: dict = {"language": language, "lowercase": ANALYZER_OPTIONS["lowercase"],
                    "ascii_folding": ANALYZER_OPTIONS["ascii_folding"]}
    if not ANALYZER_OPTIONS["stemmer"]:
        kwargs["stemmer"] = DisabledStemmer()
    if not ANALYZER_OPTIONS["stopwords"]:
        kwargs["stopwords"] = StopwordsSet(custom=set())
    return Bm25Config(**kwargs)


@functools.lru_cache(maxsize=8)
def analyzer(language: str = "turkish"):
    """The cached ``qdrant_edge.Bm25`` analyzer for ``language``.

    Args:
        language: a Qdrant BM25 language (``turkish``, ``english``, …).

    Returns:
        A ``qdrant_edge.Bm25`` with ``embed_document`` and ``embed_query``.

    Raises:
        KademeError: Qdrant has no analyzer for ``language``.

    Example:
        >>> analyzer("turkish").embed_query("kararların").indices == analyzer().embed_query("karar").indices
        True
    """
    from qdrant_edge import Bm25

    try:
        return Bm25(_config(language))
    except ValueError as e:
        raise KademeError(f"Qdrant's BM25 analyzer does not support language {language!r}: {e}\n\n"
                          "Pass --bm25-language with a supported language, e.g. turkish or english.") from None


def analyzer_fingerprint(language: str = "turkish") -> str:
    """Hash of the analyzer configuration and the qdrant-edge-py version (keys the sparse checkpoints).

    Example:
        >>> len(analyzer_fingerprint("turkish")), analyzer_fingerprint("turkish") != analyzer_fingerprint("english")
        (16, True)
    """
    values = {"language": language, **ANALYZER_OPTIONS, "qdrant_edge": _edge_version(), "_version": 1}
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def _edge_version() -> str:
    try:
        return metadata.version("qdrant-edge-py")
    except metadata.PackageNotFoundError:  # pragma: no cover - a source build
        return "unknown"


def _arrays(vec) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(vec.indices, dtype=np.uint32), np.asarray(vec.values, dtype=np.float32)


def sparse_documents(texts: list[str], language: str = "turkish") -> list[tuple[np.ndarray, np.ndarray]]:
    """BM25 document vectors (term-frequency weights; the collection's IDF modifier does the rest).

    Args:
        texts: N chunk texts.
        language: analyzer language.

    Returns:
        N ``(indices uint32, values float32)`` pairs; a text of stopwords only gives empty arrays.

    Example:
        >>> idx, val = sparse_documents(["Davacı vekili temyiz etti."])[0]
        >>> idx.dtype, val.dtype, len(idx)
        (dtype('uint32'), dtype('float32'), 3)
    """
    # embed_document holds the GIL for the whole call (issue 32, measured): worker processes, one per core
    return map_processes(functools.partial(_documents, language=language), texts)


def _documents(texts: list[str], language: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """``sparse_documents`` of one part, in this process."""
    model = analyzer(language)
    return [_arrays(model.embed_document(case_fold(t, language))) for t in texts]


def sparse_query(text: str, language: str = "turkish") -> tuple[np.ndarray, np.ndarray]:
    """The BM25 query vector of ``text`` (each distinct term weighs 1.0).

    Example:
        >>> sparse_query("ve ile")[0].size      # stopwords only
        0
    """
    return _arrays(analyzer(language).embed_query(case_fold(text, language)))
