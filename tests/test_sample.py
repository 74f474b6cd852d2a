"""Tests for the synthetic decision generator kademe.testing.sample."""
from __future__ import annotations

import json
import re
import time
import unicodedata
from datetime import date
from pathlib import Path

import pytest

from kademe.testing.sample import MESSY_ORDER, SAMPLE_YEARS, iter_decisions, make_decision, write_corpus, write_sample_corpus

BUNDLED = Path(__file__).resolve().parents[1] / "src" / "kademe" / "data" / "sample"
KEYS = {"id", "text", "date", "chamber", "esas_no", "karar_no", "konu"}


def _records(raw: bytes) -> list[object]:
    """Parse every line that is valid UTF-8 JSON; other lines become the string 'BAD'."""
    out: list[object] = []
    for line in raw.removeprefix(b"\xef\xbb\xbf").splitlines():
        if not line.strip():
            continue
        try:
            out.append(json.loads(line.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError):
            out.append("BAD")
    return out


def test_make_decision_is_deterministic_and_well_formed() -> None:
    a, b = make_decision(2021, 5, seed=3), make_decision(2021, 5, seed=3)
    assert a == b
    assert a != make_decision(2021, 5, seed=4)
    assert KEYS <= set(a)
    assert re.fullmatch(r"2021-(\d+[HC]D|HGK|CGK)-000005", a["id"])
    assert re.fullmatch(r"20\d\d/\d+", a["esas_no"]) and a["karar_no"].startswith("2021/")
    assert a["text"].startswith("T.C.\nYARGITAY\n") and "SONUÇ:" in a["text"] and "\n\n" in a["text"]


@pytest.mark.parametrize("messy", [False, True])
def test_write_corpus_is_byte_identical_for_same_args(tmp_path: Path, messy: bool) -> None:
    r1 = write_corpus(tmp_path / "a.ndjson", 2021, 30, seed=7, messy=messy)
    r2 = write_corpus(tmp_path / "b.ndjson", 2021, 30, seed=7, messy=messy)
    assert r1 == r2
    assert (tmp_path / "a.ndjson").read_bytes() == (tmp_path / "b.ndjson").read_bytes()
    write_corpus(tmp_path / "c.ndjson", 2021, 30, seed=8, messy=messy)
    assert (tmp_path / "a.ndjson").read_bytes() != (tmp_path / "c.ndjson").read_bytes()
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_clean_corpus_counts_dates_and_ids(tmp_path: Path) -> None:
    path = tmp_path / "clean.ndjson"
    stats = write_corpus(path, 2022, 120, seed=1)
    assert stats == {"lines": 120, "clean": 120}
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf") and b"\r" not in raw
    recs = _records(raw)
    assert len(recs) == 120 and all(isinstance(r, dict) for r in recs)
    assert len({r["id"] for r in recs}) == 120  # type: ignore[index]
    for r in recs:
        assert isinstance(r, dict) and KEYS <= set(r)
        assert date.fromisoformat(r["date"]).year == 2022
        assert r["karar_no"].startswith("2022/")


@pytest.mark.parametrize("year", [2021, 2022])
def test_messy_corpus_reports_what_it_wrote(tmp_path: Path, year: int) -> None:
    path = tmp_path / "messy.ndjson"
    stats = write_corpus(path, year, 25, seed=2, messy=True)
    expected_kinds = set(MESSY_ORDER) | {"bom"} | ({"crlf"} if year % 2 else set())
    assert set(stats) == {"lines", "clean"} | expected_kinds
    assert stats["clean"] == 25 and stats["blank"] == 2
    assert sum(v for k, v in stats.items() if k not in ("lines", "clean", "bom", "crlf", "blank")) == len(MESSY_ORDER) - 2
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf{")  # exactly one BOM at the start (U+FEFF also occurs inside one text)
    lines = raw[3:].split(b"\r\n" if year % 2 else b"\n")
    assert lines[-1] == b""  # file ends with a line terminator
    lines = lines[:-1]
    if year % 2:
        assert all(b"\n" not in ln for ln in lines)
    else:
        assert b"\r" not in raw
    assert sum(1 for ln in lines if ln.strip()) == stats["lines"]
    assert sum(1 for ln in lines if not ln.strip()) == 2
    assert b"BU SATIR JSON DE" in raw and b"[1, 2, 3]" in raw

    recs = [r for r in _records(raw) if isinstance(r, dict)]
    ids = [r.get("id") for r in recs]
    assert sum(1 for r in recs if "text" not in r) == 1
    assert sum(1 for r in recs if "id" not in r) == 1
    assert sum(1 for r in recs if r.get("text") == 12345) == 1
    assert sum(1 for r in recs if isinstance(r.get("text"), str) and not r["text"].strip()) == 1
    assert [r["year"] for r in recs if "year" in r] == ["yirmi", year - 1]
    first = recs[0]
    assert ids.count(first["id"]) == 2 and sum(1 for r in recs if r == first) == 2  # exact duplicate
    conflicts = [i for i in set(ids) if i and ids.count(i) == 2 and len({json.dumps(r, sort_keys=True) for r in recs if r.get("id") == i}) == 2]
    assert len(conflicts) == 1
    texts = [r["text"] for r in recs if isinstance(r.get("text"), str)]
    html = [t for t in texts if "<p>" in t]
    assert len(html) == 1 and all(s in html[0] for s in ("<br/>", "&amp;", "&#305;", "&nbsp;"))
    assert sum(1 for t in texts if unicodedata.normalize("NFC", t) != t) == 1
    zw = [t for t in texts if "\u200b" in t]
    assert len(zw) == 1 and all(c in zw[0] for c in ("\ufeff", "\x07", "\x1b"))


def test_cp1254_line_is_not_utf8_but_is_cp1254_json(tmp_path: Path) -> None:
    path = tmp_path / "m.ndjson"
    write_corpus(path, 2023, 20, seed=5, messy=True)
    bad = []
    for line in path.read_bytes()[3:].splitlines():
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            bad.append(line)
    assert len(bad) == 1
    rec = json.loads(bad[0].decode("cp1254"))
    assert isinstance(rec, dict) and any(c in rec["text"] for c in "şğıİ")


def test_thousand_documents_are_fast_and_diverse() -> None:
    start = time.perf_counter()
    docs = list(iter_decisions(2024, 1000, seed=0))
    assert time.perf_counter() - start < 5.0
    assert len({d["id"] for d in docs}) == 1000
    assert len({d["text"] for d in docs}) == 1000
    first_sentences = [d["text"].split("\n\n")[3].split(". ")[0] for d in docs]  # DAVA/İDDİA paragraph
    assert len(set(first_sentences)) >= 950
    assert len({d["konu"] for d in docs}) >= 10
    words = [len(d["text"].split()) for d in docs]
    assert min(words) >= 150
    assert sum(w <= 900 for w in words) >= 900
    assert sum(w >= 1300 for w in words) >= 10
    assert all(date.fromisoformat(d["date"]).year == 2024 for d in docs)


def test_bundled_sample_corpus_is_current(tmp_path: Path) -> None:
    paths = write_sample_corpus(tmp_path)
    assert [p.name for p in paths] == [f"yargitay_{y}.ndjson" for y in (2021, 2022, 2023)]
    assert sum(p.stat().st_size for p in paths) < 1_000_000
    for p in paths:
        assert 20 <= SAMPLE_YEARS[int(p.stem[-4:])][0] <= 30
        assert (BUNDLED / p.name).read_bytes() == p.read_bytes(), f"regenerate {p.name} with write_sample_corpus"
    assert (BUNDLED.parent / "__init__.py").exists()
