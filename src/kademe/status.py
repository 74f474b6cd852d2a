"""``kademe status``: what a workdir and a collection hold, per partition, and what a rerun would redo.

For every ``(corpus, year)`` the workdir holds: the stages its manifest has committed, its chunks,
the points the store holds for it, degraded or not, the last run's outcome (``report.json``), and,
stage by stage, whether a rerun with the current source and settings would reuse the committed
checkpoint or recompute it (``kademe.rerun`` decides; ``kademe.status_text`` prints the table).

Status only reads: it creates no folder, no lock file and no collection. It asks the store seam
where the collection lives, what it holds and what its index is; while an ingest holds the
embedded store, status says who holds it instead of failing. Without ``--collection`` it uses the
store's only collection, or lists the ones it found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from kademe.partition import Partition, partitions
from kademe.rerun import STAGES, rerun_plan
from kademe.settings import Settings

YEARS = range(1800, 2201)  # what ``--years`` accepts


@dataclass
class StoreView:
    """What the store can tell: its state, the points per partition, and its index (collection-wide).

    ``state`` is ``ok``, ``missing`` (no collection), ``busy`` (an ingest holds the embedded store),
    ``unavailable`` (the server did not answer) or ``unchosen`` (no ``--collection``, and the store
    holds several); ``detail`` says it in words.
    """

    backend: str
    where: str
    state: str = "ok"
    detail: str = ""
    points: int | None = None
    index: dict = field(default_factory=lambda: {"state": "unknown"})
    counts: dict[tuple[str, int], int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"backend": self.backend, "where": self.where, "state": self.state, "detail": self.detail,
                "points": self.points, "index": self.index}


def status(s: Settings, years: list[int] | None = None) -> dict:
    """The status of every partition of ``years`` (default: every year found) in ``s.workdir``.

    Args:
        s: settings as for an ingest: ``workdir``, ``collection``, ``qdrant_url``, ``corpus`` (None:
            every corpus) and the fields that key the stages (``source``, ``model``, ``dtype``,
            ``shard_size``, ``chunk_tokens``, ``chunk_overlap``, ``bm25_language``). A collection not
            set (no ``--collection``, no ``KADEME_COLLECTION``) is the store's only one.
        years: the years to cover; None: every year the workdir holds. With a corpus named (``--corpus``
            or derived from ``--source``), a year the workdir does not hold yet is listed too, with
            nothing committed.

    Returns:
        ``{"workdir", "collection", "store": {...}, "partitions": {"<corpus>/<year>": {...}}}``, each
        partition as ``partition_status`` gives it; without a collection set, ``"collections"`` lists
        the store's (``"collection"`` is None when there are several).

    Example:
        >>> status(Settings(workdir="work", collection="yargitay"))["partitions"].keys()
        dict_keys(['yargitay/2011', 'yargitay/2012'])
    """
    found = None if "collection" in s.model_fields_set else _collections(s)
    if found and len(found.collections) == 1:
        s = s.model_copy(update={"collection": found.collections[0]})
    parts = partitions(s.workdir, years if years is not None else found_years(s.workdir, s.corpus), s.corpus)
    if years is not None and s.corpus:  # years asked for by name show up even before their first run
        held = {p.year for p in parts}
        parts = sorted([*parts, *(s.partition(y) for y in years if y not in held)], key=lambda p: p.year)
    several = found is not None and len(found.collections) > 1
    view = store_view(s, parts) if not several else StoreView(
        found.backend, found.where, "unchosen", f"collections {', '.join(found.collections)}: pass --collection NAME")
    result = {"workdir": str(s.workdir), "collection": None if several else s.collection}
    if found is not None:
        result["collections"] = list(found.collections)
    return {**result, "store": view.as_dict(), "partitions": {p.label: partition_status(p, s, view) for p in parts}}


def found_years(workdir, corpus: str | None) -> list[int]:
    """The years under the workdir's corpus folders (a local path); every year ``--years`` allows otherwise."""
    root = Path(workdir)
    if "://" in str(workdir) or not root.is_dir():
        return list(YEARS)  # an object store: partitions() asks for each year's manifest
    corpora = [root / corpus] if corpus else [p for p in root.iterdir() if p.is_dir()]
    return sorted({int(p.name) for c in corpora if c.is_dir() for p in c.iterdir()
                   if p.is_dir() and re.fullmatch(r"\d{4}", p.name) and int(p.name) in YEARS})


def partition_status(part: Partition, s: Settings, view: StoreView) -> dict:
    """One partition: committed stages, chunks, points, degraded, last run, and what a rerun would redo.

    Returns:
        ``{"corpus", "year", "committed": [stages], "chunks", "points", "degraded", "last_run":
        {"status", "finished", "seconds", "cached", "error"} | None, "source", "stages": {stage:
        {"committed": key12 | None, "rerun": "reuse" | "recompute" | "unknown", "why"}}, "rerun":
        [stages a rerun would recompute], "rerun_known": bool}``.
    """
    from kademe.report import read_report

    manifest = part.manifest()
    points = view.counts.get((part.corpus, part.year))
    source, stages = rerun_plan(part, s, manifest, points, view.detail, view.state != "unchosen")
    report = read_report(part)
    last = None if report is None else {k: report.get(k) for k in ("status", "finished", "seconds", "cached", "error")}
    embed = manifest.get("embed", {})
    from kademe.retention import plan_collection

    held = plan_collection(part)  # issue 29: what the partition holds, and what `kademe collect` would reclaim
    return {
        "corpus": part.corpus, "year": part.year,
        "committed": [stage for stage in STAGES if stage in manifest],
        "chunks": manifest.get("chunk", {}).get("chunks"),
        "points": points,
        "degraded": embed.get("degraded") if "embed" in manifest else None,
        "last_run": last,
        "source": source,
        "stages": stages,
        "rerun": [stage for stage, v in stages.items() if v["rerun"] == "recompute"],
        "rerun_known": all(v["rerun"] != "unknown" for v in stages.values()),
        "bytes": held.bytes,
        "reclaimable": held.reclaim,
    }


# -- the store --------------------------------------------------------------------------------------


def store_view(s: Settings, parts: list[Partition]) -> StoreView:
    """Ask the store what it holds: each partition's points and the index state, creating nothing.

    A collection that is not there reads as ``missing``; a held embedded store as ``busy``, with the
    holder's pid; a server that does not answer as ``unavailable``.
    """
    from kademe.store import (
        StoreBusy,
        StoreUnavailable,
        Where,
        locate_store,
        open_store,
    )

    location = locate_store(s)
    view = StoreView(location.backend, location.where)
    if location.missing:
        return _missing(view, location.missing)
    try:
        with open_store(s) as store:
            info = store.info()
            if info is None:
                return _missing(view, f"no collection '{s.collection}' at {view.where}")
            view.points = info.points
            view.counts = {(p.corpus, p.year): store.count(Where(p.corpus, p.year)) for p in parts}
            view.index = store.index_state()
    except StoreUnavailable as e:
        view.state, view.detail = "unavailable", str(e).split("\n")[0]
    except StoreBusy as e:
        view.state, view.detail = "busy", f"store busy (held by {e.holder})"
    return view


def _collections(s: Settings):
    """The store's collections (a ``Location``), or None when it cannot say (a server that does not answer, a held folder)."""
    from kademe.store import StoreBusy, StoreUnavailable, list_collections

    try:
        return list_collections(s)
    except (StoreUnavailable, StoreBusy):
        return None


def _missing(view: StoreView, detail: str) -> StoreView:
    view.state, view.detail, view.points = "missing", detail, 0
    return view
