"""Hostile input at scale: a catalogue of malformed and adversarial lines, each kept or quarantined.

Every row goes through the real reader and cleaner (``read_year`` + ``clean_records``) next to a
good record; then all rows together go through ``kademe ingest`` once, to show that the year
completes, the counts add up, every rejected line is in ``rejects.ndjson`` with its reason and line
number, and the good records are upserted and searchable. ``tests/test_read_clean.py`` covers the
plain single-line reasons; the rows here are the nastier kinds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl
import pytest

from kademe.clean import clean_records
from kademe.sources import read_year
from tests.conftest import MODEL, decision, write_ndjson

DOCUMENT = "document"
MIB = 2**20


@dataclass(frozen=True)
class Row:
    """One kind of bad input: a single line (without its newline) and what must become of it."""

    name: str
    raw: bytes | Callable[[], bytes]  # big rows are built on demand
    expected: str  # a reject reason, or DOCUMENT

    def bytes(self) -> bytes:
        return self.raw() if callable(self.raw) else self.raw


def j(**fields) -> bytes:
    """A JSON object line, UTF-8, non-ASCII kept."""
    return json.dumps(fields, ensure_ascii=False).encode()


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


_BINARY = bytes(b for b in range(256) if b not in (0x0A, 0x0D)) * 8
_CP1254_UNDEFINED = {0x81, 0x8D, 0x8E, 0x8F, 0x90, 0x9D, 0x9E}

CATALOGUE = [
    # bytes that are not text
    Row("binary_all_byte_values", _BINARY, "decode_error"),
    Row("binary_decodable_as_cp1254", bytes(b for b in _BINARY if b not in _CP1254_UNDEFINED), "invalid_json"),
    Row("utf16_le_with_bom", '{"id": "u16", "text": "metin"}'.encode("utf-16"), "invalid_json"),
    Row("utf16_be", '{"id": "u16be", "text": "metin"}'.encode("utf-16-be"), "invalid_json"),
    Row("bom_mid_file", b"\xef\xbb\xbf" + j(id="bom", text="ikinci dosyanın ilk satırı"), "document"),
    Row("raw_nul_byte_in_string", b'{"id": "nul", "text": "a\x00b"}', "invalid_json"),
    Row("latin1_line", '{"id": "latin1", "text": "Café crème, señor Müller"}'.encode("latin-1"), DOCUMENT),
    Row("windows_1254_metadata", '{"id": "w1254", "text": "metin", "taraf": "Ağır Şişli"}'.encode("cp1254"), DOCUMENT),
    Row("overlong_utf8_sequence", b'{"id": "overlong", "text": "a\xc0\xafb"}', DOCUMENT),
    # sizes
    Row("huge_single_line", lambda: b"a" * (16 * MIB + 10), "too_large"),
    Row("huge_json_record", lambda: j(id="huge", text="kelime " * (17 * MIB // 7)), "too_large"),
    Row("text_10mb", lambda: j(id="ten-mb", text="Yargıtay kararı. " * (10 * MIB // 17)), DOCUMENT),
    Row("very_long_id", j(id="x" * 100_000, text="uzun kimlik"), DOCUMENT),
    Row("ten_thousand_keys", j(id="keys", text="çok alan", **{f"k{i}": i for i in range(10_000)}), DOCUMENT),
    # nesting and numbers
    Row("deeply_nested_field", b'{"id": "deep", "text": "t", "x": ' + nested(100_000).encode() + b"}", "too_deep"),
    Row("nested_payload_within_limits", b'{"id": "deep-ok", "text": "t", "x": ' + nested(100).encode() + b"}", DOCUMENT),
    Row("nan_and_infinity_in_payload", b'{"id": "nan", "text": "t", "a": NaN, "b": Infinity, "c": -Infinity}', DOCUMENT),
    Row("float_overflow_1e400", b'{"id": "inf", "text": "t", "amount": 1e400}', "invalid_json"),
    Row("huge_integer_in_payload", b'{"id": "bigint", "text": "t", "amount": 123456789012345678901234567890}', DOCUMENT),
    # JSON that is not one object
    Row("trailing_comma", b'{"id": "tc", "text": "t",}', "invalid_json"),
    Row("json_with_comment", b'{"id": "cm", "text": "t"} // yorum', "invalid_json"),
    Row("python_repr_quotes", b"{'id': 'py', 'text': 't'}", "invalid_json"),
    Row("two_records_joined_by_cr", j(id="cr1", text="a") + b"\r" + j(id="cr2", text="b"), "invalid_json"),
    Row("top_level_number", b"42", "not_object"),
    Row("top_level_null", b"null", "not_object"),
    Row("top_level_true", b"true", "not_object"),
    Row("array_of_records", b"[" + j(id="arr", text="t") + b"]", "not_object"),
    Row("empty_object", b"{}", "missing_id"),
    Row("duplicated_keys", b'{"id": "dupkey", "text": "ilk", "text": "son"}', DOCUMENT),
    # ids
    Row("path_traversal_id", j(id="../../etc/passwd", text="yol karakterli kimlik"), DOCUMENT),
    Row("numeric_id", j(id=4242, text="sayı kimlik"), DOCUMENT),
    Row("float_id", j(id=1.5, text="ondalık kimlik"), "invalid_id"),
    Row("object_id", j(id={"no": 1}, text="nesne kimlik"), "invalid_id"),
    Row("nan_id", b'{"id": NaN, "text": "t"}', "missing_id"),
    Row("null_id_and_text", b'{"id": null, "text": null}', "missing_id"),
    Row("escaped_nul_only_id", b'{"id": "\\u0000", "text": "t"}', "missing_id"),
    Row("id_with_newline_and_controls", b'{"id": "a\\nb\\u001b[31m", "text": "t"}', DOCUMENT),
    Row("lone_surrogate_in_id", b'{"id": "\\ud83d", "text": "yarim emoji kimlik"}', DOCUMENT),
    # text
    Row("lone_surrogates_in_text", b'{"id": "sur", "text": "a \\ud800 b \\udfff c"}', DOCUMENT),
    Row("lone_surrogate_in_key", b'{"id": "surkey", "text": "t", "\\udfff": "v"}', DOCUMENT),
    Row("escaped_nul_in_text", b'{"id": "nul2", "text": "a\\u0000b"}', DOCUMENT),
    Row("rtl_and_combining_marks", j(id="rtl", text="\u202bمحكمة\u202c I\u0307zmir e\u0301\u0301\u0301 \u0645\u064e\u062d"), DOCUMENT),
    Row("emoji_and_zwj", j(id="emoji-👨‍👩‍👧", text="Karar 👨‍👩‍👧 ⚖️ 🇹🇷"), DOCUMENT),
    Row("unicode_line_separators", j(id="ls", text="bir\u2028iki\u2029üç\u0085dört"), DOCUMENT),
    Row("script_injection", j(id="xss", text="<script>alert(1)</script><img src=x onerror=alert(2)>karar"), DOCUMENT),
    Row("markup_only_text", j(id="markup", text="<p></p><br/>&nbsp;&#8203;"), "empty_text"),
    Row("text_as_list", j(id="tl", text=["bir", "iki"]), "invalid_text"),
    Row("text_as_object", j(id="to", text={"govde": "metin"}), "invalid_text"),
    Row("null_metadata_fields", j(id="nullmeta", text="t", date=None, chamber=None, esas_no=None, karar_no=None), DOCUMENT),
    # years and dates
    Row("year_as_integral_float", j(id="y1", text="t", year=2011.0), DOCUMENT),
    Row("year_as_fraction", j(id="y2", text="t", year=2011.5), "invalid_year"),
    Row("year_negative", j(id="y3", text="t", year=-2011), "invalid_year"),
    Row("year_far_future", j(id="y4", text="t", year=9999), "invalid_year"),
    Row("year_huge", j(id="y5", text="t", year=10**30), "invalid_year"),
    Row("year_boolean", j(id="y6", text="t", year=True), "invalid_year"),
    Row("year_padded_string", j(id="y7", text="t", year=" 2011 "), DOCUMENT),
    Row("date_garbage", j(id="d1", text="t", date="tarih değil ☃"), DOCUMENT),
    Row("date_impossible_day", j(id="d2", text="t", date="31.02.2011"), DOCUMENT),
    Row("date_as_number", j(id="d3", text="t", date=20110101), DOCUMENT),
    Row("date_in_another_year", j(id="d4", text="t", date="1999-12-31T23:59:59Z"), "year_mismatch"),
]


def read_rejects(workdir) -> list[dict]:
    # split on "\n" only: a raw snippet may hold U+2028 or U+0085, which str.splitlines() breaks on
    text = (workdir / "yargitay" / "2011" / "rejects.ndjson").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.split("\n") if line]


def test_the_catalogue_has_thirty_kinds_of_single_lines():
    assert len(CATALOGUE) >= 30 and len({r.name for r in CATALOGUE}) == len(CATALOGUE)
    assert all(b"\n" not in r.bytes() for r in CATALOGUE if not callable(r.raw))


@pytest.mark.parametrize("row", CATALOGUE, ids=lambda r: r.name)
def test_hostile_line_is_kept_or_quarantined_with_its_reason(tmp_path, settings, row):
    path = write_ndjson(tmp_path / "data" / "yargitay_2011.ndjson", [decision(2011, 0)], [row.bytes() + b"\n"])
    s = settings()
    read = read_year(2011, s)
    clean = clean_records(read, 2011, s)
    rejects = read_rejects(s.workdir)
    docs = pl.read_parquet(clean.documents)

    assert read.read == 2 == clean.count + clean.duplicates + clean.rejected
    if row.expected == DOCUMENT:
        assert rejects == [] and clean.count == 2
    else:
        assert [(r["line"], r["reason"]) for r in rejects] == [(2, row.expected)]
        assert rejects[0]["detail"] and isinstance(rejects[0]["raw"], str)
    assert docs["doc_id"][0] == "2011-HD-0000", "the good line before it is unharmed"
    for value in docs["doc_id"].to_list() + docs["text"].to_list() + docs["meta"].to_list():
        assert not any(0xD800 <= ord(c) <= 0xDFFF or (ord(c) < 32 and c not in "\n\t") for c in value)
    path.unlink()


# -- all of it at once, through the CLI ----------------------------------------------------------
LIMIT = MIB  # the end-to-end run rejects the multi-megabyte rows, so it does not embed 10 MB of text


def expected_outcome(row: Row, raw: bytes) -> str:
    return "too_large" if len(raw) + 1 > LIMIT else row.expected


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_a_year_of_hostile_lines_completes_and_keeps_the_good_records(tmp_path, capsys):
    from prefect.settings import PREFECT_API_URL

    from kademe.cli import main

    good = [decision(2011, n) for n in range(3)]
    raws = [row.bytes() for row in CATALOGUE]
    source = write_ndjson(tmp_path / "data" / "yargitay_2011.ndjson", good, [raw + b"\n" for raw in raws])
    first = len(good) + 1  # line number of the first catalogue row
    want_rejects = {first + i: expected_outcome(row, raw) for i, (row, raw) in enumerate(zip(CATALOGUE, raws))
                    if expected_outcome(row, raw) != DOCUMENT}
    n_docs = len(good) + len(CATALOGUE) - len(want_rejects)
    del raws

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "KADEME_MAX_RECORD_BYTES": str(LIMIT), "OMP_NUM_THREADS": "1"}
    workdir = tmp_path / "work"
    proc = subprocess.run([sys.executable, "-m", "kademe.cli", "ingest", "--source", str(source.parent / "yargitay_{year}.ndjson"),
                           "--years", "2011", "--workdir", str(workdir), "--collection", "hostile", "--model", MODEL,
                           "--device", "cpu", "--json"], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    year = json.loads(proc.stdout)["years"]["2011"]
    c = year["counts"]
    assert year["status"] == "completed" and year["verify"]["ok"]
    assert c["read"] == len(good) + len(CATALOGUE) == c["documents"] + c["duplicates"] + c["rejected"]
    assert (c["documents"], c["duplicates"], c["rejected"]) == (n_docs, 0, len(want_rejects))
    assert c["chunks"] == c["embedded"] == c["upserted"]

    rejects = read_rejects(workdir)
    assert {r["line"]: r["reason"] for r in rejects} == want_rejects
    assert all(r["detail"] for r in rejects)
    assert not [p for p in workdir.rglob("*") if "passwd" in p.name], "an id never becomes a path"

    from tests.conftest import stored_points

    doc_ids = {p.payload["doc_id"] for p in stored_points(workdir, "hostile").values()}
    assert len(doc_ids) == n_docs and {g["id"] for g in good} <= doc_ids and "../../etc/passwd" in doc_ids

    sentence = good[1]["text"].split(". ")[0]
    code = main(["search", sentence, "--workdir", str(workdir), "--collection", "hostile", "--model", MODEL,
                 "--year", "2011", "--top-k", "3", "--json"])
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert code == 0 and hits[0]["doc_id"] == good[1]["id"]
