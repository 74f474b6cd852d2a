"""Reading and cleaning: every messy input class is handled or quarantined with a reason, counts add up."""

from __future__ import annotations

import gzip
import json
import unicodedata

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from kademe.clean import clean_records, clean_text
from kademe.sources import read_year
from tests.conftest import decision, write_ndjson


def run(settings, year=2011):
    s = settings()
    read = read_year(year, s)
    clean = clean_records(read, year, s)
    rejects = [json.loads(line) for line in (s.workdir / "yargitay" / str(year) / "rejects.ndjson").read_text().splitlines()]
    docs = pl.read_parquet(clean.documents)
    return read, clean, rejects, docs


def make_source(tmp_path, records=(), raw=(), year=2011, bom=False, crlf=False):
    path = tmp_path / "data" / f"yargitay_{year}.ndjson"
    write_ndjson(path, list(records), list(raw))
    data = path.read_bytes()
    if crlf:
        data = data.replace(b"\n", b"\r\n")
    if bom:
        data = b"\xef\xbb\xbf" + data
    path.write_bytes(data)
    return path


def reasons(rejects):
    return {r["line"]: r["reason"] for r in rejects}


def test_bom_and_crlf_are_read_as_plain_lines(tmp_path, settings):
    make_source(tmp_path, [decision(2011, 0), decision(2011, 1)], bom=True, crlf=True)
    read, clean, rejects, docs = run(settings)
    assert (read.read, clean.count, rejects) == (2, 2, [])
    assert "\r" not in "".join(docs["text"])


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"BU SATIR JSON DEGIL\n", "invalid_json"),
        (b'{"id": "a", "text": "kesik sat\n', "invalid_json"),
        (b"[1, 2, 3]\n", "not_object"),
        (b'"just a string"\n', "not_object"),
        (b'{"text": "kimliksiz karar"}\n', "missing_id"),
        (b'{"id": "  ", "text": "bos kimlik"}\n', "missing_id"),
        (b'{"id": [1], "text": "liste kimlik"}\n', "invalid_id"),
        (b'{"id": true, "text": "bool kimlik"}\n', "invalid_id"),
        (b'{"id": "b"}\n', "missing_text"),
        (b'{"id": "b", "text": null}\n', "missing_text"),
        (b'{"id": "c", "text": "   \\n\\t "}\n', "empty_text"),
        (b'{"id": "c2", "text": "\\u200b\\u200b"}\n', "empty_text"),
        (b'{"id": "d", "text": 42}\n', "invalid_text"),
        (b'{"id": "e", "text": "yil yok", "year": "yirmi"}\n', "invalid_year"),
        (b'{"id": "f", "text": "baska yil", "year": 2010}\n', "year_mismatch"),
        (b'{"id": "g", "text": "tarihten yil", "date": "2009-05-01"}\n', "year_mismatch"),
        (b'{"id": "h", "text": "NaN yil", "year": NaN}\n', None),  # NaN reads as null: year from the file
        (b"\x81\x8d\x8f\x90\x9d binary\n", "decode_error"),
        (b"[" * 5000 + b"]" * 5000 + b"\n", "too_deep"),
    ],
)
def test_bad_line_is_quarantined_with_reason(tmp_path, settings, raw, reason):
    make_source(tmp_path, [decision(2011, 0)], [raw])
    read, clean, rejects, _ = run(settings)
    assert read.read == 2
    assert reasons(rejects) == ({2: reason} if reason else {})
    assert read.read == clean.count + clean.duplicates + clean.rejected


def test_blank_lines_are_not_records(tmp_path, settings):
    make_source(tmp_path, [decision(2011, 0)], [b"\n", b"   \n", b"\t\r\n"])
    read, clean, rejects, _ = run(settings)
    assert (read.read, clean.count, rejects) == (1, 1, [])


def test_exact_duplicate_is_counted_and_conflicting_id_rejected(tmp_path, settings):
    first = decision(2011, 0)
    other = {**first, "text": "Aynı kimlik, başka içerik."}
    make_source(tmp_path, [first, decision(2011, 1), first, other])
    read, clean, rejects, docs = run(settings)
    assert (read.read, clean.count, clean.duplicates) == (4, 2, 1)
    assert reasons(rejects) == {4: "duplicate_id"}
    assert "line 1" in rejects[0]["detail"]
    assert docs.filter(pl.col("doc_id") == first["id"])["text"].to_list() == [clean_text(first["text"])]


def test_cp1254_line_is_decoded(tmp_path, settings):
    legacy = json.dumps({"id": "eski", "text": "Şişli ağır ceza mahkemesi İĞÜÇÖ ığüşçö"}, ensure_ascii=False).encode("cp1254")
    make_source(tmp_path, [], [legacy + b"\n"])
    _, clean, rejects, docs = run(settings)
    assert rejects == [] and docs["text"].to_list() == ["Şişli ağır ceza mahkemesi İĞÜÇÖ ığüşçö"]


def test_too_large_line_is_rejected_without_reading_it_whole(tmp_path, settings):
    huge = json.dumps({"id": "big", "text": "x" * 5000}).encode() + b"\n"
    make_source(tmp_path, [decision(2011, 0)], [huge, json.dumps(decision(2011, 1)).encode() + b"\n"])
    s = settings(max_record_bytes=2048)
    read = read_year(2011, s)
    clean = clean_records(read, 2011, s)
    rejects = [json.loads(x) for x in (s.workdir / "yargitay" / "2011" / "rejects.ndjson").read_text().splitlines()]
    assert reasons(rejects) == {2: "too_large"} and clean.count == 2


def test_clean_text_normalises_without_changing_case():
    nfd = unicodedata.normalize("NFD", "İstanbul Şişli ığdır ÇÖĞÜ")
    assert clean_text(nfd) == "İstanbul Şişli ığdır ÇÖĞÜ"
    assert clean_text("<p>Yarg&#305;tay&nbsp;kararı</p><br/>ikinci &amp; satır") == "Yargıtay kararı\n\nikinci & satır"
    assert clean_text("bir<br>iki<b>kalın</b>") == "bir\nikikalın"
    assert clean_text("a\u200bb\x07c\x1b d\ufeffe\u202e") == "abc de"
    assert clean_text("a\r\n\r\n\r\n\r\nb   c") == "a\n\nb c"
    assert clean_text("yalnız \ud800 vekil") == "yalnız \ufffd vekil"


def test_year_comes_from_date_or_file(tmp_path, settings):
    make_source(tmp_path, [{"id": "1", "text": "tarihli", "date": "15.03.2011"}, {"id": "2", "text": "tarihsiz"},
                           {"id": 3, "text": "sayı kimlik", "year": "2011"}])
    _, clean, rejects, docs = run(settings)
    assert rejects == [] and docs["year"].to_list() == [2011, 2011, 2011]
    assert docs["doc_id"].to_list() == ["1", "2", "3"]


def test_metadata_is_kept_and_cleaned(tmp_path, settings):
    rec = {**decision(2011, 0), "extra": {"taraf": "Ays\u0327e\u200b"}, "chamber": 9}
    make_source(tmp_path, [rec])
    _, _, _, docs = run(settings)
    row = docs.row(0, named=True)
    assert row["chamber"] == "9" and row["esas_no"] == rec["esas_no"]
    assert json.loads(row["meta"]) == {"extra": {"taraf": "Ayşe"}, "konu": rec["konu"]}


@pytest.mark.parametrize("suffix", ["jsonl", "ndjson.gz", "parquet"])
def test_other_formats_are_read(tmp_path, settings, suffix):
    records = [decision(2011, n) for n in range(3)]
    path = tmp_path / "data" / f"yargitay_2011.{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
    if suffix == "parquet":
        pl.DataFrame(records).write_parquet(path)
    else:
        path.write_bytes(gzip.compress(lines) if suffix.endswith("gz") else lines)
    s = settings(source=str(tmp_path / "data" / f"yargitay_{{year}}.{suffix}"))
    clean = clean_records(read_year(2011, s), 2011, s)
    assert clean.count == 3 and clean.rejected == 0


def test_directory_source_finds_the_years_file(tmp_path, settings, corpus):
    s = settings(source=str(corpus.parent))
    assert read_year(2012, s).read == 6


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.binary(max_size=300), st.text(max_size=200).map(str.encode),
                          st.dictionaries(st.sampled_from(["id", "text", "year", "date", "chamber"]),
                                          st.one_of(st.none(), st.integers(), st.text(max_size=30), st.floats()))
                          .map(lambda d: json.dumps(d).encode())), max_size=30))
def test_random_lines_never_crash_and_counts_add_up(tmp_path_factory, lines):
    from kademe.settings import Settings

    tmp = tmp_path_factory.mktemp("fuzz")
    path = tmp / "y_2011.ndjson"
    path.write_bytes(b"".join(line.replace(b"\n", b" ") + b"\n" for line in lines))
    s = Settings(source=str(tmp / "y_{year}.ndjson"), workdir=tmp / "w")
    read = read_year(2011, s)
    clean = clean_records(read, 2011, s)
    assert read.read == clean.count + clean.duplicates + clean.rejected
    blank = (b" \t\r\x0b\x0c")
    assert read.read == sum(1 for line in lines if line.replace(b"\n", b" ").removeprefix(b"\xef\xbb\xbf").strip(blank))
