"""Read one year's source file into parsed records and rejected lines.

Accepts ``.ndjson``/``.jsonl`` (optionally ``.gz``) read line by line, and ``.parquet`` read a batch
of rows at a time: memory stays bounded whatever the source's size (bench/read_memory.py measures
a 1 GB year). Every non-blank line (a Parquet row) becomes either a record or a reject with a
machine-readable reason; blank lines are not records and are not counted.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from kademe.keys import chain_key, file_digest
from kademe.errors import KademeError
from kademe.partition import Partition
from kademe.settings import Settings

LINE_SUFFIXES = (".ndjson", ".jsonl", ".ndjson.gz", ".jsonl.gz")
SUFFIXES = (*LINE_SUFFIXES, ".parquet")
BATCH = 2000
SURROGATES = re.compile("[\ud800-\udfff]")  # lone halves of UTF-16 pairs: JSON allows them, UTF-8 cannot hold them

RECORDS_SCHEMA = pa.schema([("line", pa.int64()), ("record", pa.string())])
REJECTS_SCHEMA = pa.schema([("line", pa.int64()), ("reason", pa.string()), ("detail", pa.string()), ("raw", pa.string())])


@dataclass(frozen=True)
class ReadResult:
    """What ``read_year`` produced: parsed records, rejected lines, and whether it was a cache hit."""

    key: str
    records: Path
    rejects: Path
    read: int
    rejected: int
    cached: bool
    seconds: float = 0.0


def resolve_source(source: str | None, year: int) -> Path:
    """Find the file for ``year`` from a ``{year}`` template or a directory of per-year files.

    Raises:
        KademeError: with what to do, when no file matches.
    """
    if not source:
        raise KademeError("No source given.\n\nPass --source with a {year} template, e.g. data/yargitay_{year}.ndjson.")
    if "{year}" in source:
        path = Path(source.replace("{year}", str(year)))
        if path.is_dir():
            raise KademeError(f"Source '{path}' for year {year} is a directory, not a file.\n\n"
                              "Pass --source with a {year} template of files, or the directory that holds them.")
        if not path.is_file():
            raise KademeError(f"Source file '{path}' for year {year} does not exist.\n\nCheck --source and --years.")
        if not path.name.endswith(SUFFIXES):
            raise KademeError(f"Source file '{path}' is not one of: {', '.join(SUFFIXES)}.")
        return path
    folder = Path(source)
    if not folder.is_dir():
        raise KademeError(f"Source directory '{folder}' does not exist.\n\nCheck --source: a {{year}} template or a directory of year files.")
    matches = sorted(p for p in folder.iterdir() if str(year) in p.name and p.name.endswith(SUFFIXES))
    if len(matches) != 1:
        found = ", ".join(p.name for p in matches) or "none"
        raise KademeError(
            f"Directory '{folder}' must hold exactly one file for year {year} (found: {found}).\n\n"
            "Name files like yargitay_2011.ndjson, or pass a {year} template."
        )
    return matches[0]


def read_key(source: Path, part: Partition, s: Settings) -> str:
    """The read checkpoint's key: the source file's bytes, the read settings and the partition."""
    return chain_key(file_digest(source), s.fingerprint("read"), part.corpus, str(part.year))


def read_year(year: int, s: Settings) -> ReadResult:
    """Parse the year's source into ``read-<key>.parquet`` (records) and ``read-rejects-<key>.parquet``
    in the partition ``(s.corpus, year)``.

    Args:
        year: the year to read; the file comes from ``s.source``.
        s: settings (``source``, ``workdir``, ``max_record_bytes``).

    Returns:
        A ``ReadResult``; ``cached`` is True when a finished checkpoint with this key was reused.
    """
    path = resolve_source(s.source, year)
    part = s.partition(year)
    part.sweep_temp()  # the first stage of a partition: clear what a killed run left
    part.collect()  # and the parts no commit names (a dead writer's, a lost race's), once they are old
    cp = part.checkpoint("read", read_key(path, part, s))
    if (meta := cp.hit()) is not None:
        return ReadResult(cp.key, cp.file(), cp.file("rejects"), meta["read"], meta["rejected"], cached=True)

    cp.crash("start")
    read = 0
    with cp.sink(RECORDS_SCHEMA) as records, cp.sink(REJECTS_SCHEMA, "rejects") as rejects:
        good: list[dict] = []
        bad: list[dict] = []
        for line_no, parsed in _parse_lines(path, s.max_record_bytes):
            read += 1
            (good if "record" in parsed else bad).append({"line": line_no, **parsed})
            if len(good) + len(bad) >= BATCH:
                cp.crash("batch")
                records.write(good), rejects.write(bad)
                good, bad = [], []
        records.write(good), rejects.write(bad)
    cp.commit(read=read, records=records.rows, rejected=rejects.rows, source=str(path))
    return ReadResult(cp.key, cp.file(), cp.file("rejects"), read, rejects.rows, cached=False, seconds=cp.seconds)


def _parse_lines(path: Path, limit: int) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_no, {"record": json} | {"reason", "detail", "raw"})`` for each non-blank line."""
    if path.suffix == ".parquet":
        yield from _parse_parquet(path)
        return
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        for line_no, raw in enumerate(_lines(f, limit), start=1):
            if raw is None:
                yield line_no, _reject("too_large", f"line longer than {limit} bytes", b"")
                continue
            if raw.startswith(b"\xef\xbb\xbf"):  # a BOM opens the file, or a file concatenated onto it
                raw = raw[3:]
            raw = raw.rstrip(b"\r\n")
            if not raw.strip():
                continue
            yield line_no, _parse(raw)


def _lines(f, limit: int) -> Iterator[bytes | None]:
    """Lines of a binary file; a line over ``limit`` bytes is skipped without holding it and yields None."""
    while line := f.readline(limit + 1):
        if len(line) > limit and not line.endswith(b"\n"):
            while (rest := f.readline(2**20)) and not rest.endswith(b"\n"):
                pass
            yield None
        else:
            yield line


def _parse(raw: bytes) -> dict:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        try:
            # Legacy Turkish files are Windows-1254; a line that is not UTF-8 is read as that.
            text = raw.decode("cp1254")
        except UnicodeDecodeError as e:
            return _reject("decode_error", str(e), raw)
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except (json.JSONDecodeError, RecursionError) as e:
        reason = "too_deep" if isinstance(e, RecursionError) else "invalid_json"
        return _reject(reason, str(e)[:200], raw)
    if not isinstance(value, dict):
        return _reject("not_object", f"a JSON {type(value).__name__}, not an object", raw)
    try:
        record = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (ValueError, RecursionError) as e:  # numbers like 1e400 parse as inf, which JSON cannot hold
        return _reject("invalid_json", str(e)[:200], raw)
    if SURROGATES.search(record):
        # A lone "\ud800" escape cannot be written as UTF-8 (it crashed the year's Parquet write):
        # keep the record escaped, and clean turns the surrogate into U+FFFD.
        record = json.dumps(value, allow_nan=False)
    return {"record": record}


def _no_constant(name: str) -> None:
    """NaN and Infinity are not JSON; read them as null (the field is then missing or invalid)."""
    return None


def _reject(reason: str, detail: str, raw: bytes) -> dict:
    snippet = raw[:300].decode("utf-8", errors="replace")
    return {"reason": reason, "detail": detail, "raw": snippet}


def _parse_parquet(path: Path) -> Iterator[tuple[int, dict]]:
    """Each row of a Parquet file as a JSON record, ``BATCH`` rows at a time.

    The file is read as a buffered stream, not pre-buffered: pre-buffering reads a row group's
    column chunks whole, and one row group is often the whole file (polars and pandas write up to
    ~1M rows in one). ``read_year`` on a 1 GB year (382 MB of Parquet in one row group) peaked at
    325 MB RSS, against 1,556 MB reading it whole with polars (bench/results/read-memory.json).
    """
    import pyarrow.parquet as pq

    source = pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False)
    rows = (row for batch in source.iter_batches(batch_size=BATCH) for row in batch.to_pylist())
    for line_no, row in enumerate(rows, start=1):
        try:
            yield line_no, {"record": json.dumps(row, ensure_ascii=False, default=str, allow_nan=False)}
        except ValueError:
            clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
            yield line_no, {"record": json.dumps(clean, ensure_ascii=False, default=str)}
