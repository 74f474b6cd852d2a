"""Synthetic Yargıtay (Turkish Court of Cassation) decisions for demos, benchmarks and tests.

Every decision is assembled from the templates of ``kademe.testing.templates`` with seeded random parties,
places, amounts and dates; no real decision text is used. Output is deterministic in
``(year, n, seed)`` because each record gets its own ``random.Random`` seeded with a string.
"""
from __future__ import annotations

import json
import os
import random
import unicodedata
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Callable, Iterator

from kademe.storage import write_whole
from kademe.testing.templates import (
    BAM_CITIES,
    CEVAP,
    CITIES,
    COMPANY_SUFFIXES,
    DRUGS,
    EVIDENCE,
    FINAL,
    FIRST_NAMES,
    GENERIC_CEZA,
    GENERIC_HUKUK,
    INSURER_PREFIXES,
    INTRO_CEZA,
    INTRO_HUKUK,
    ITEMS,
    JOBS,
    LAST_NAMES,
    NEIGHBOURHOODS,
    SAVUNMA,
    SECTORS,
    SONUC,
    TOPICS,
    WEAPONS,
)

__all__ = ["make_decision", "iter_decisions", "write_corpus", "write_sample_corpus"]

def _tr_upper(s: str) -> str:
    """Upper-case with Turkish dotted/dotless i rules."""
    return s.replace("i", "İ").replace("ı", "I").upper()


def _tr_lower(s: str) -> str:
    """Lower-case with Turkish dotted/dotless i rules."""
    return s.replace("I", "ı").replace("İ", "i").lower()


def _person(r: random.Random) -> str:
    """A random Turkish full name, sometimes with two given names."""
    first = r.choice(FIRST_NAMES)
    if r.random() < 0.15:
        first += " " + r.choice(FIRST_NAMES)
    return f"{first} {r.choice(LAST_NAMES)}"


def _money(r: random.Random, low: float = 3.0, high: float = 6.4) -> str:
    """A Turkish-formatted amount between 10**low and 10**high, such as '45.320,75 TL'."""
    text = f"{round(10 ** r.uniform(low, high), 2):,.2f}"
    return text.replace(",", "_").replace(".", ",").replace("_", ".") + " TL"


def _date(r: random.Random, first_year: int, last_year: int, weekday: bool = False) -> date:
    """A random day from 1 January of first_year to 31 December of last_year."""
    start = date(first_year, 1, 1)
    span = (date(last_year + 1, 1, 1) - start).days
    while True:
        d = start + timedelta(days=r.randrange(span))
        if not weekday or d.weekday() < 5:
            return d


def _plate(r: random.Random) -> str:
    letters = "".join(r.choice("ABCDEFGHJKLMNPRSTUVYZ") for _ in range(r.randint(1, 3)))
    return f"{r.randint(1, 81):02d} {letters} {r.randint(10, 9999)}"


_FRESH: dict[str, Callable[[random.Random, int], str]] = {
    "tutar": lambda r, y: _money(r), "aylik": lambda r, y: _money(r, 3.6, 4.9), "harc": lambda r, y: _money(r, 2, 3.7),
    "tarih": lambda r, y: _date(r, y - 6, y - 1).strftime("%d.%m.%Y"),
    "tanik": lambda r, y: _person(r), "kisi": lambda r, y: _person(r), "bilirkisi": lambda r, y: _person(r),
    "yil": lambda r, y: str(r.randint(2, 22)), "ay": lambda r, y: str(r.randint(2, 11)),
    "gun": lambda r, y: str(r.randint(3, 60)), "saat": lambda r, y: str(r.randint(2, 20)),
    "oran": lambda r, y: str(r.randint(5, 60)), "no": lambda r, y: str(r.randint(1, 30)),
    "kisi_sayi": lambda r, y: str(r.randint(30, 450)), "gram": lambda r, y: f"{r.uniform(0.5, 950):.2f}".replace(".", ","),
    "sehir2": lambda r, y: r.choice(tuple(CITIES)), "mahalle": lambda r, y: r.choice(NEIGHBOURHOODS),
    "ada": lambda r, y: str(r.randint(100, 4999)), "parsel": lambda r, y: str(r.randint(1, 250)),
    "plaka": lambda r, y: _plate(r), "esya": lambda r, y: r.choice(ITEMS), "silah": lambda r, y: r.choice(WEAPONS),
    "madde": lambda r, y: r.choice(DRUGS), "meslek": lambda r, y: r.choice(JOBS),
}


class _Filler(dict[str, str]):
    """Template values: fixed per decision, plus a fresh random value for each other placeholder use."""

    def __init__(self, rng: random.Random, year: int, fixed: dict[str, str]) -> None:
        super().__init__(fixed)
        self.rng, self.year = rng, year

    def __missing__(self, key: str) -> str:
        return _FRESH[key](self.rng, self.year)

    def fill(self, template: str) -> str:
        """Format one template."""
        return template.format_map(self)


def _words(parts: list[str]) -> int:
    return sum(len(p.split()) for p in parts)


def make_decision(year: int, n: int, seed: int = 0) -> dict[str, Any]:
    """One clean record: keys id, text, date, chamber, esas_no, karar_no, konu and sometimes
    extra fields ("mahkeme": first-instance court, "sonuc": BOZMA/ONAMA). Deterministic in (year, n, seed)."""
    r = random.Random(f"kademe-sample-{year}-{n}-{seed}")
    topic = r.choice(TOPICS)
    ceza = topic.ceza
    if r.random() < 0.06:
        chamber = "Ceza Genel Kurulu" if ceza else "Hukuk Genel Kurulu"
        code = "CGK" if ceza else "HGK"
    else:
        chamber = r.choice(topic.chambers)
        code = chamber.split(".")[0] + ("CD" if ceza else "HD")
    decided = _date(r, year, year, weekday=True)
    esas_no = f"{year - r.choice((1, 1, 1, 2, 3))}/{r.randint(1000, 29999)}"
    karar_no = f"{year}/{r.randint(100, 19999)}"
    city = r.choice(tuple(CITIES))
    district = r.choice(CITIES[city])
    place = city if r.random() < 0.55 else district
    court = f"{place} {r.randint(1, 14 if place == city else 4)}. {r.choice(topic.courts)}"
    first_date = _date(r, year - 1, year - 1).strftime("%d.%m.%Y")
    first_no = f"{year - 2}/{r.randint(10, 999)} E., {year - 1}/{r.randint(10, 999)} K."
    defendant = {"company": f"{r.choice(LAST_NAMES)} {r.choice(SECTORS)} {r.choice(COMPANY_SUFFIXES)}",
                 "insurer": f"{r.choice(INSURER_PREFIXES)} Sigorta A.Ş.", "person": _person(r)}[topic.defendant]
    bozma = r.random() < 0.55
    appellants = ("sanık müdafii", "katılan vekili", "Cumhuriyet savcısı", "sanık") if ceza else (
        "davacı vekili", "davalı vekili", "taraf vekilleri", "davalı")
    f = _Filler(r, year, {
        "davaci": _person(r), "davali": defendant, "sanik": _person(r), "magdur": _person(r), "cocuk": _person(r),
        "sehir": city, "ilce": district, "mahkeme": court, "bam": city if city in BAM_CITIES else r.choice(BAM_CITIES),
        "dava": _tr_lower(topic.konu), "suc": _tr_lower(topic.konu), "ilk_tarih": first_date, "ilk_no": first_no,
        "karar_sonucu": r.choice(("kabulüne", "reddine", "kısmen kabulüne")), "temyiz_eden": r.choice(appellants),
        "daire": str(r.randint(1, 12)), "yas": str(r.randint(7, 16)), "karar_tarihi": decided.strftime("%d.%m.%Y"),
        "oy": "oybirliğiyle" if r.random() < 0.9 else "oyçokluğuyla"})
    header = f"T.C.\nYARGITAY\n{_tr_upper(chamber)}\nESAS NO: {esas_no}\nKARAR NO: {karar_no}"
    if ceza:
        verdict = r.choice(("Mahkûmiyet", "Mahkûmiyet", "Beraat"))
        info = f"MAHKEMESİ: {court}\nTARİHİ: {first_date}\nNUMARASI: {first_no}\nSUÇ: {topic.konu}\nHÜKÜM: {verdict}"
    else:
        verdict = ""
        info = f"İNCELENEN KARARIN\nMAHKEMESİ: {court}\nTARİHİ: {first_date}\nNUMARASI: {first_no}\nDAVA TÜRÜ: {topic.konu}"
    facts = r.sample(topic.facts, 2 if r.random() < 0.4 else 1)
    paras = [header, info, f.fill(r.choice(INTRO_CEZA if ceza else INTRO_HUKUK)),
             ("İDDİA: " if ceza else "DAVA: ") + " ".join(f.fill(t) for t in facts)]
    if ceza:
        paras.append(f.fill(r.choice(SAVUNMA)))
        paras.append("HÜKÜM: Yerel mahkemece " + (
            f"sanığın eylemi sabit görülerek {r.randint(1, 9)} yıl {r.randint(1, 11)} ay hapis cezası ile cezalandırılmasına karar verilmiştir."
            if verdict == "Mahkûmiyet" else "sanığın atılı suçu işlediğine dair kesin ve inandırıcı delil elde edilemediğinden beraatine karar verilmiştir."))
    else:
        if r.random() < 0.85:
            paras.append(f.fill(r.choice(CEVAP)))
        paras.append(f.fill("MAHKEME KARARI: İlk derece mahkemesince toplanan deliller, tanık beyanları ve {tarih} tarihli bilirkişi raporuna dayanılarak davanın {karar_sonucu} karar verilmiştir."))
    closing = [f.fill(r.choice(FINAL[(ceza, bozma)])), f.fill(r.choice(SONUC[(ceza, bozma)]))]
    target = r.randint(1400, 1700) if n % 20 == 7 else r.randint(150, 760)
    own, generic = list(topic.reasons), list(GENERIC_CEZA if ceza else GENERIC_HUKUK)
    r.shuffle(own)
    r.shuffle(generic)
    reasoning: list[str] = []
    numbered = r.random() < 0.5
    while not reasoning or _words(paras + reasoning + closing) < target:
        sentences = []
        for _ in range(r.randint(1, 3)):
            x = r.random()
            pool = own if (x < 0.5 and own) else generic if (x < 0.75 and generic) else None
            sentences.append(f.fill(pool.pop() if pool else r.choice(EVIDENCE)))
        prefix = "GEREKÇE: " if not reasoning else f"{len(reasoning)}- " if numbered else ""
        reasoning.append(prefix + " ".join(sentences))
    paras += reasoning + closing
    record: dict[str, Any] = {
        "id": f"{year}-{code}-{n:06d}", "text": "\n\n".join(paras), "date": decided.isoformat(), "chamber": chamber,
        "esas_no": esas_no, "karar_no": karar_no, "konu": topic.konu}
    if r.random() < 0.7:
        record["mahkeme"] = court
    if r.random() < 0.4:
        record["sonuc"] = "BOZMA" if bozma else "ONAMA"
    return record


def iter_decisions(year: int, count: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """Yield make_decision(year, n, seed) for n = 1..count."""
    for n in range(1, count + 1):
        yield make_decision(year, n, seed)


# Order of the messy lines; item i goes after clean record number 1 + i*(count-1)//len(MESSY_ORDER).
MESSY_ORDER = ("html", "blank", "not_json", "nfd", "not_object", "truncated", "zero_width", "cp1254",
               "missing_text", "duplicate", "blank_text", "text_not_str", "blank", "missing_id", "bad_year",
               "other_year", "id_conflict")


def _htmlize(text: str) -> str:
    """Wrap paragraphs in HTML markup and entities, as scraped pages often look."""
    html = "\n".join("<p>" + p.replace("\n", "<br/>") + "</p>" for p in text.split("\n\n"))
    html = html.replace("ESAS NO:", "ESAS&nbsp;NO:", 1).replace(" ve ", " &amp; ", 1).replace("ı", "&#305;", 3)
    return '<div class="karar">' + html + "</div>"


def _sprinkle(text: str) -> str:
    """Insert zero-width characters (U+200B, U+FEFF) and control characters (BEL, ESC) inside the text."""
    words = text.split(" ")
    for i, mark in ((3, "\u200b"), (len(words) // 3, "\ufeff"), (len(words) // 2, "\x07"), (2 * len(words) // 3, "\x1b")):
        w = words[i]
        words[i] = w[: len(w) // 2] + mark + w[len(w) // 2:]
    return " ".join(words)


_EDITS: dict[str, Callable[[dict[str, Any]], object]] = {
    "html": lambda d: d.update(text=_htmlize(d["text"])),
    "nfd": lambda d: d.update(text=unicodedata.normalize("NFD", d["text"])),
    "zero_width": lambda d: d.update(text=_sprinkle(d["text"])),
    "missing_text": lambda d: d.pop("text"), "missing_id": lambda d: d.pop("id"),
    "blank_text": lambda d: d.update(text=" \n\t  \n "), "text_not_str": lambda d: d.update(text=12345),
    "bad_year": lambda d: d.update(year="yirmi"),
}


def _messy_line(kind: str, year: int, n: int, seed: int, earlier: list[tuple[str, bytes]], blanks: int) -> bytes:
    """Bytes of one messy line (no line terminator). n is a fresh record number; earlier holds
    (id, line) of the first clean records, reused by "duplicate" and "id_conflict"."""
    if kind == "blank":
        return b"" if blanks == 0 else b" \t  "
    if kind == "not_json":
        return "BU SATIR JSON DEĞİL: kayıt bozuk {".encode("utf-8")
    if kind == "not_object":
        return b"[1, 2, 3]"
    if kind == "duplicate":
        return earlier[0][1]
    rec = make_decision(year - 1 if kind == "other_year" else year, n, seed)
    if kind == "other_year":
        rec["year"] = year - 1
    elif kind == "id_conflict":
        rec["id"] = earlier[-1][0]
    elif kind in _EDITS:
        _EDITS[kind](rec)
    line = json.dumps(rec, ensure_ascii=False)
    if kind == "truncated":
        return line[: len(line) // 2].encode("utf-8")
    return line.encode("cp1254" if kind == "cp1254" else "utf-8")


def write_corpus(path: str | Path, year: int, count: int, seed: int = 0, messy: bool = False) -> dict[str, int]:
    """Write NDJSON (UTF-8) of `count` clean decisions; with messy=True also insert the messy lines of
    MESSY_ORDER, a UTF-8 BOM, and CRLF line endings when `year` is odd. Written atomically in binary mode.
    Returns {"lines": non-blank lines, "clean": clean records, <messy kind>: how many of that kind}."""
    if messy and count < 1:
        raise ValueError("messy corpus needs at least one clean record")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    eol = b"\r\n" if messy and year % 2 else b"\n"
    slots: dict[int, list[int]] = {}
    if messy:
        for i in range(len(MESSY_ORDER)):
            slots.setdefault(1 + i * (count - 1) // len(MESSY_ORDER), []).append(i)
    stats: dict[str, int] = {"lines": 0, "clean": 0}
    if messy:
        stats.update({"bom": 1, **({"crlf": 1} if year % 2 else {})})
    earlier: list[tuple[str, bytes]] = []

    def write(fh) -> None:
        if messy:
            fh.write(b"\xef\xbb\xbf")
        for j, rec in enumerate(iter_decisions(year, count, seed), start=1):
            line = json.dumps(rec, ensure_ascii=False).encode("utf-8")
            if j <= 2:
                earlier.append((rec["id"], line))
            fh.write(line + eol)
            stats["lines"] += 1
            stats["clean"] += 1
            for i in slots.get(j, ()):
                kind = MESSY_ORDER[i]
                out = _messy_line(kind, year, count + 1 + i, seed, earlier, stats.get("blank", 0))
                fh.write(out + eol)
                stats[kind] = stats.get(kind, 0) + 1
                stats["lines"] += 1 if out.strip() else 0
        fh.flush()
        os.fsync(fh.fileno())

    write_whole(path, write)
    return stats


SAMPLE_YEARS: dict[int, tuple[int, int]] = {2021: (24, 11), 2022: (28, 22), 2023: (22, 33)}  # year: (count, seed)


def write_sample_corpus(directory: str | Path) -> list[Path]:
    """Write the bundled demo corpus yargitay_{2021,2022,2023}.ndjson (messy) into `directory`; return the paths."""
    paths = []
    for year, (count, seed) in SAMPLE_YEARS.items():
        path = Path(directory) / f"yargitay_{year}.ndjson"
        write_corpus(path, year, count, seed=seed, messy=True)
        paths.append(path)
    return paths
