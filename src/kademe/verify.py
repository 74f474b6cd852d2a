"""Verify: the collection against the checkpoints, per partition ``(corpus, year)``, without pulling vectors.

Ids come from a scroll that returns ids and two payload fields only; vectors are checked by
counting the partition's points that hold each named vector (a ``has_vector`` filter), and only
when a count falls short are the ids lacking it looked up (again without vectors).

A run that wrote and deleted nothing (a quiet night, issue 29) checks by counts alone: the
partition's points and, per vector space, those holding that vector, against the checkpoint. Any
difference falls back to the scroll, which names the ids. What counts cannot see is a point
swapped for a foreign one behind kademe's back; ``kademe verify`` always scrolls.
"""

from __future__ import annotations

from collections import Counter
import pyarrow.parquet as pq

from kademe.partition import Partition, partitions
from kademe.settings import Settings
from kademe.errors import KademeError
from kademe.store import Store, Where, missing_collection, open_store

COUNT_FIELDS = ("expected", "found", "missing_count", "extra_count")
LIST_FIELDS = ("missing", "extra", "duplicates", "bad_vectors")
EXAMPLES = 20


def expected_points(part: Partition) -> dict[str, str] | None:
    """Point id -> vector name, from the partition's finished embed checkpoint; None without one."""
    manifest = part.manifest()
    if "chunk" not in manifest or "embed" not in manifest:
        return None
    expected: dict[str, str] = {}
    for shard in part.checkpoint("embed", manifest["embed"]["key"]).files():
        table = pq.read_table(shard, columns=["point_id", "space"])
        expected.update(zip(table.column("point_id").to_pylist(), table.column("space").to_pylist()))
    return expected


def verify_partition(store: Store, part: Partition, by_counts: bool = False) -> dict:
    """Check one partition: every chunk present once, in the right vector space, nothing extra.

    Args:
        by_counts: check the counts first and scroll only when they differ (for a run that wrote nothing).

    Returns:
        ``{"ok", "corpus", "expected", "found", "missing", "extra", "duplicates", "bad_vectors",
        "missing_count", "extra_count", "checked"}`` (lists hold up to 20 example ids; ``checked``:
        ``"ids"`` or ``"counts"``), or ``{"ok": False, "error": ...}`` when the partition has no
        checkpoints or the collection does not exist.
    """
    expected = expected_points(part)
    if expected is None:
        return {"ok": False, "corpus": part.corpus,
                "error": f"no finished checkpoints for {part.label} under {part.workdir}; run kademe ingest first"}
    from kademe.faults import crash_point

    crash_point("verify-start")
    info = store.info()
    if info is None:
        return {"ok": False, "corpus": part.corpus, "error": f"collection '{store.where}' does not exist",
                "expected": len(expected)}
    where = Where(part.corpus, part.year)
    if by_counts and _counts_agree(store, where, expected, info.dense):
        return {"ok": True, "corpus": part.corpus, "expected": len(expected), "found": len(expected), "missing": [], "extra": [],
                "duplicates": [], "bad_vectors": [], "missing_count": 0, "extra_count": 0, "checked": "counts"}
    found: set[str] = set()
    extra, dupes, pairs = [], [], set()
    for pid, payload in store.scroll(where, fields=("doc_id", "chunk_index")):
        found.add(pid)
        if pid not in expected:
            extra.append(pid)
            continue
        pair = (payload.get("doc_id"), payload.get("chunk_index"))
        (dupes.append(pid) if pair in pairs else pairs.add(pair))
    missing = [pid for pid in expected if pid not in found]
    bad = _bad_vectors(store, where, expected, found, info.dense)
    ok = not (missing or extra or bad or dupes)
    return {"ok": ok, "corpus": part.corpus, "expected": len(expected), "found": len(found),
            "missing": missing[:EXAMPLES], "extra": extra[:EXAMPLES], "duplicates": dupes[:EXAMPLES],
            "bad_vectors": bad[:EXAMPLES], "missing_count": len(missing), "extra_count": len(extra), "checked": "ids"}


def _counts_agree(store: Store, where: Where, expected: dict[str, str], dense: dict[str, int]) -> bool:
    """Whether the partition holds as many points as the checkpoint, and as many of each vector space."""
    if store.count(where) != len(expected):
        return False
    return all(space in dense and store.count(Where(where.corpus, where.year, has_vector=space)) == want
               for space, want in Counter(expected.values()).items())


def _bad_vectors(store: Store, where: Where, expected: dict[str, str], found: set[str], dense: dict[str, int]) -> list[str]:
    """Present points that lack the vector their checkpoint says they have."""
    bad: list[str] = []
    for space, want in Counter(space for pid, space in expected.items() if pid in found).items():
        if space not in dense:
            bad += [pid for pid, sp in expected.items() if sp == space and pid in found]
            continue
        having = Where(where.corpus, where.year, has_vector=space)
        if store.count(having) >= want:
            continue
        holders = {pid for pid, _ in store.scroll(having, fields=())}
        bad += [pid for pid, sp in expected.items() if sp == space and pid in found and pid not in holders]
    return bad


def verify_years(s: Settings, years: list[int], store: Store | None = None) -> dict:
    """Verify ``years`` of ``s.corpus``, or of every corpus the workdir holds for them.

    Returns:
        ``{"ok", "corpora": [names], "years": {"2011": {...totals, "corpora": {name: result}}}}``.

    Raises:
        KademeError: no year has any checkpoint under the workdir, or the collection does not exist.
    """
    if store is None:
        with open_store(s) as own:
            return verify_years(s, years, own)
    found = {year: partitions(s.workdir, [year], s.corpus) for year in years}
    if not any(found.values()):  # nothing to verify: a wrong --workdir, --corpus or --years, not a failed check
        scope = f"corpus '{s.corpus}', " if s.corpus else ""
        raise KademeError(f"No finished checkpoints for {scope}{', '.join(map(str, years))} under {s.workdir}.\n\n"
                          "Pass the --workdir (and --corpus) of the ingest, or run kademe ingest for those years first.")
    if store.info() is None:
        raise missing_collection(s)
    result: dict = {"ok": True, "corpora": [], "years": {}}
    for year in years:
        parts = found[year]
        if not parts:
            scope = f"corpus '{s.corpus}', " if s.corpus else ""
            entry = {"ok": False, "error": f"no finished checkpoints for {scope}{year} under {s.workdir}; run kademe ingest first"}
        else:
            entry = combine({p.corpus: verify_partition(store, p) for p in parts})
        result["years"][str(year)] = entry
        result["ok"] = result["ok"] and entry["ok"]
        result["corpora"] = sorted(set(result["corpora"]) | set(entry.get("corpora", {})))
    return result


def combine(per_corpus: dict[str, dict]) -> dict:
    """One year's totals over its corpora, with each corpus's own result under ``corpora``."""
    total: dict = {"ok": all(r["ok"] for r in per_corpus.values())}
    for name in COUNT_FIELDS:
        total[name] = sum(r.get(name, 0) for r in per_corpus.values())
    for name in LIST_FIELDS:
        total[name] = [x for r in per_corpus.values() for x in r.get(name, [])][:EXAMPLES]
    errors = [f"{c}: {r['error']}" for c, r in per_corpus.items() if r.get("error")]
    if errors:
        total["error"] = "; ".join(errors)
    total["corpora"] = per_corpus
    return total
