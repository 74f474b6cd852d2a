"""Turn parsed records into clean documents; reject what cannot be a document, with a reason.

Text cleaning: HTML tags and entities, Unicode NFC (Turkish letters typed as NFD become one code
point), zero-width, format and control characters, CRLF and runs of blank space. Case is never
changed, so Turkish dotted/dotless I stay as written.
"""

from __future__ import annotations

import functools
import html
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import date as Date
from pathlib import Path

import pyarrow as pa

from kademe.carry import doc_digest
from kademe.casenumbers import normalize_case_number
from kademe.keys import chain_key
from kademe.parquet_io import iter_parquet
from kademe.partition import Partition
from kademe.settings import Settings
from kademe.sources import SURROGATES, ReadResult

META_FIELDS = ("date", "chamber", "esas_no", "karar_no")
CASE_FIELDS = ("esas_no", "karar_no")
DOCS_SCHEMA = pa.schema(
    [("line", pa.int64()), ("doc_id", pa.string()), ("year", pa.int32()), ("text", pa.string())]
    + [(name, pa.string()) for name in META_FIELDS]
    + [("meta", pa.string())]
)

_TAG = re.compile(r"<[^<>]{0,500}>")
_LINE_TAG = re.compile(r"<\s*(br|/li|/tr)\b[^<>]{0,200}>", re.IGNORECASE)
_PARAGRAPH_TAG = re.compile(r"<\s*(/p|/div|/h[1-6])\b[^<>]{0,200}>", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]{2,}|[\t\u00a0\u2000-\u200a\u202f\u205f\u3000]")  # not a lone " "
_BLANK_LINES = re.compile(r"\n{3,}")
_ODD_SPACES = "\t\u00a0" + "".join(map(chr, range(0x2000, 0x200B))) + "\u202f\u205f\u3000"  # _SPACES but " "
_ODD_STRIPPED = "\u1680\u2028\u2029"  # what str.strip() removes that _SPACES leaves, once controls are gone
_STRIPPED = "".join(ch for ch in map(chr, range(0x3001)) if ch.isspace() and ch != "\n")  # str.isspace(): none above U+3000
_LINE_EDGES = re.compile(f"[{re.escape(_STRIPPED)}]+\n[{re.escape(_STRIPPED)}]*|\n[{re.escape(_STRIPPED)}]+")
_YEAR_IN_DATE = re.compile(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)")


@dataclass(frozen=True)
class CleanResult:
    """Clean documents, their count, exact duplicates skipped, and rejects (read + clean)."""

    key: str
    documents: Path
    count: int
    duplicates: int
    rejected: int
    cached: bool
    seconds: float = 0.0
    changes: dict | None = None  # documents new / changed / unchanged / removed since the last clean checkpoint


def clean_text(text: str) -> str:
    """Normalise one text: strip markup, NFC, drop invisible characters, tidy whitespace.

    Example:
        >>> clean_text("<p>Yarg\u0131tay&nbsp;kararı\u200b</p>\\r\\nI\u0307zmir")
        'Yargıtay kararı\\nİzmir'
    """
    if "<" in text:
        text = _TAG.sub("", _LINE_TAG.sub("\n", _PARAGRAPH_TAG.sub("\n\n", text)))
    if "&" in text:
        text = html.unescape(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFC", text)
    # Lone surrogates (from JSON "\ud800" escapes) cannot be stored as UTF-8: make them U+FFFD.
    if not _encodes(text):
        text = SURROGATES.sub("\ufffd", text)
    if not text.replace("\n", "").replace("\t", "").replace("\u00a0", "").isprintable():  # else nothing to drop
        text = _invisible().sub("", text)
    text = _tidy_spaces(text)
    if "\n\n\n" in text:
        text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()


def _tidy_spaces(text: str) -> str:
    """Runs of blank space become one space and every line is stripped, as ``str.strip()`` does.

    Without U+1680, U+2028 and U+2029 (blank to ``str.strip()`` but not runs of space) this is done
    with ``str.replace`` alone, many times faster than a pattern that stops at every space.
    """
    if any(ch in text for ch in _ODD_STRIPPED):
        return _LINE_EDGES.sub("\n", _SPACES.sub(" ", text))
    for ch in _ODD_SPACES:
        if ch in text:
            text = text.replace(ch, " ")
    while "  " in text:
        text = text.replace("  ", " ")
    return text.replace(" \n", "\n").replace("\n ", "\n")


def _encodes(text: str) -> bool:
    """Whether ``text`` is valid UTF-8 material (holds no lone surrogate): one pass in C."""
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


@functools.lru_cache(maxsize=1)
def _invisible() -> re.Pattern:
    """One character class of every control, format and surrogate code point (Cc, Cf, Cs) but ``\n`` and ``\t``.

    Built once from ``unicodedata`` (~0.1 s). Planes 4-13 hold no assigned code points and 15-16
    only private use, so planes 0-3 and 14 are all there is to scan.
    """
    points = [c for plane in ((0, 0x40000), (0xE0000, 0xF0000)) for c in range(*plane)
              if c not in (9, 10) and unicodedata.category(chr(c)) in ("Cc", "Cf", "Cs")]
    ranges, start = [], points[0]
    for prev, c in zip(points, points[1:] + [-1]):
        if c != prev + 1:
            ranges.append(_class_char(start) + ("-" + _class_char(prev) if prev > start else ""))
            start = c
    return re.compile("[" + "".join(ranges) + "]")


def _class_char(c: int) -> str:
    return f"\\U{c:08x}"


def clean_key(read_key: str, s: Settings) -> str:
    """The clean checkpoint's key: the read checkpoint's key and the clean settings."""
    return chain_key(read_key, s.fingerprint("clean"))


def clean_records(read: ReadResult, year: int, s: Settings) -> CleanResult:
    """Validate and clean one year's records into ``clean-<key>.parquet``; write ``rejects.ndjson``.

    Counts add up: ``read.read == count + duplicates + rejected``.

    Args:
        read: the read stage's result.
        year: the file's year; a record of another year is rejected (``year_mismatch``).
        s: settings (``workdir``).

    Returns:
        A ``CleanResult``.
    """
    part = s.partition(year)
    cp = part.checkpoint("clean", clean_key(read.key, s))
    if (meta := cp.hit()) is not None and part.get_text("rejects.ndjson") is not None:
        unchanged = {"new": 0, "changed": 0, "unchanged": meta["documents"], "removed": 0}
        return CleanResult(cp.key, cp.file(), meta["documents"], meta["duplicates"], meta["rejected"], cached=True,
                           changes=unchanged)

    previous = part.manifest().get("clean", {}).get("key")  # the last committed clean checkpoint: what changed since
    digests: dict[str, str] = {}
    cp.crash("start")
    seen: dict[str, tuple[str, int]] = {}  # doc_id -> (content hash, first line)
    duplicates = 0
    rejects: list[dict] = [{**r, "stage": "read"} for batch in iter_parquet(read.rejects) for r in batch]
    with cp.sink(DOCS_SCHEMA) as docs:
        for batch in iter_parquet(read.records, batch_size=2000):
            rows = []
            for item in batch:
                try:
                    doc, reason, detail = clean_record(json.loads(item["record"]), year)
                except RecursionError:
                    doc, reason, detail = None, "too_deep", "JSON nested too deeply to clean"
                if doc is not None:
                    digest = doc_digest(doc)  # one hash a document: duplicates, and what changed since the last run
                    first = seen.setdefault(doc["doc_id"], (digest, item["line"]))
                    if first[1] != item["line"]:
                        if first[0] == digest:
                            duplicates += 1
                            continue
                        reason, detail = "duplicate_id", f"id {doc['doc_id']!r} first seen on line {first[1]} with other content"
                if reason:
                    rejects.append({"line": item["line"], "reason": reason, "detail": detail, "raw": item["record"][:300], "stage": "clean"})
                else:
                    rows.append({"line": item["line"], **doc})
                    digests[doc["doc_id"]] = digest
            cp.crash("batch")
            docs.write(rows)
    rejects.sort(key=lambda r: r["line"])
    part.put_text("rejects.ndjson", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rejects))
    changes = document_changes(part, previous if previous != cp.key else None, digests)
    meta = cp.commit(documents=docs.rows, duplicates=duplicates, rejected=len(rejects), changes=changes)
    return CleanResult(cp.key, cp.file(), docs.rows, duplicates, len(rejects), cached=False, seconds=cp.seconds,
                       changes=meta.get("changes", changes))


def document_changes(part: Partition, previous: str | None, digests: dict[str, str]) -> dict[str, int]:
    """``{"new", "changed", "unchanged", "removed"}``: these documents against the previous clean checkpoint (issue 21).

    Without a previous checkpoint (a first ingest) every document is new.
    """
    old: dict[str, str] = {}
    prev = part.checkpoint("clean", previous) if previous else None
    if prev is not None:
        prev.meta = prev.done()
    if prev is not None and prev.meta is not None:
        for batch in iter_parquet(prev.file(), batch_size=2000):
            old.update((row["doc_id"], doc_digest(row)) for row in batch)
    same = sum(1 for d, h in digests.items() if old.get(d) == h)
    changed = sum(1 for d, h in digests.items() if d in old and old[d] != h)
    return {"new": len(digests) - same - changed, "changed": changed, "unchanged": same,
            "removed": len(old.keys() - digests.keys())}


def clean_record(record: dict, file_year: int) -> tuple[dict | None, str | None, str | None]:
    """Check and clean one record.

    Returns:
        ``(document, None, None)`` or ``(None, reason, detail)``.
    """
    doc_id = record.get("id")
    if doc_id is None or (isinstance(doc_id, str) and not clean_text(doc_id)):
        return None, "missing_id", "no 'id' field, or it is empty"
    if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)):
        return None, "invalid_id", f"'id' is a {type(doc_id).__name__}; expected a string or an integer"
    doc_id = clean_text(str(doc_id)).replace("\n", " ")
    text = record.get("text")
    if text is None:
        return None, "missing_text", "no 'text' field, or it is null"
    if not isinstance(text, str):
        return None, "invalid_text", f"'text' is a {type(text).__name__}; expected a string"
    text = clean_text(text)
    if not text:
        return None, "empty_text", "'text' is empty after cleaning"
    year, problem = _record_year(record, file_year)
    if problem:
        return None, "invalid_year", problem
    if year != file_year:
        return None, "year_mismatch", f"record year {year} is not the file's year {file_year}"
    doc = {"doc_id": doc_id, "year": year, "text": text}
    for name in META_FIELDS:
        value = record.get(name)
        doc[name] = None if value is None else _clean_value(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
    for name in CASE_FIELDS:  # one canonical form ("2022/14549"), so search matches it on the keyword index
        doc[name] = normalize_case_number(doc[name]) or doc[name] if doc[name] else doc[name]
    # A key with a lone surrogate ("\udfff" in the JSON) crashed the year's Parquet write: make it U+FFFD.
    rest = {SURROGATES.sub("\ufffd", k): _clean_value(v) for k, v in record.items() if k not in ("id", "text", "year", *META_FIELDS)}
    doc["meta"] = json.dumps(rest, ensure_ascii=False, sort_keys=True)
    return doc, None, None


def _record_year(record: dict, file_year: int) -> tuple[int, str | None]:
    """The record's year: its ``year`` field, else the year in ``date``, else the file's year."""
    value = record.get("year")
    if value is not None:
        if isinstance(value, bool):
            return 0, f"'year' is a boolean: {value!r}"
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if not isinstance(value, int) or not 1800 <= value <= Date.today().year + 1:
            return 0, f"'year' is not a plausible year: {str(value)[:50]!r}"
        return value, None
    date = record.get("date")
    if isinstance(date, str) and (m := _YEAR_IN_DATE.search(date)):
        return int(m.group(1)), None
    return file_year, None


def _clean_value(value):
    """Clean strings inside metadata (any nesting) so payloads are valid UTF-8 without control characters."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [_clean_value(v) for v in value]
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean_value(v) for k, v in value.items()}
    return value
