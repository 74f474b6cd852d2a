"""``kademe status``: what a workdir and a collection hold, per partition, and what a rerun would redo.

For every ``(corpus, year)`` the workdir holds: the stages its manifest has committed, its chunks,
the points the store holds for it, degraded or not, the last run's outcome (``report.json``), and,
stage by stage, whether a rerun with the current source and settings would reuse the committed
checkpoint or recompute it. The keys are computed the way each stage computes its own (a content
hash chained over its input's key and its fingerprint; ``sources.py``, ``clean.py``, ``chunk.py``,
``sparse.py``, ``embed/stage.py``, ``upsert.py``) without running anything; tests/test_status.py
checks that a finished ingest reads as "reuse" everywhere, so the two cannot drift apart unseen.

Status only reads: it creates no folder, no lock file and no collection. The embedded store takes
an exclusive lock; while an ingest holds it, status says who holds it instead of failing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from kademe.keys import chain_key, file_digest
from kademe.partition import Partition, partitions
from kademe.errors import KademeError
from kademe.settings import Settings

STAGES = ("read", "clean", "chunk", "lexical", "embed", "upsert")
YEARS = range(1800, 2201)  # what ``--years`` accepts


@dataclass
class StoreView:
    """What the store can tell: its state, the points per partition, and its index (collection-wide).

    ``state`` is ``ok``, ``missing`` (no collection), ``busy`` (an ingest holds the embedded store) or
    ``unavailable`` (the server did not answer); ``detail`` says it in words.
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
            ``shard_size``, ``chunk_tokens``, ``chunk_overlap``, ``bm25_language``).
        years: the years to cover; None: every year the workdir holds. With a corpus named (``--corpus``
            or derived from ``--source``), a year the workdir does not hold yet is listed too, with
            nothing committed.

    Returns:
        ``{"workdir", "collection", "store": {...}, "partitions": {"<corpus>/<year>": {...}}}``; each
        partition as ``partition_status`` gives it.

    Example:
        >>> status(Settings(workdir="work", collection="yargitay"))["partitions"].keys()
        dict_keys(['yargitay/2011', 'yargitay/2012'])
    """
    parts = partitions(s.workdir, years if years is not None else found_years(s.workdir, s.corpus), s.corpus)
    if years is not None and s.corpus:  # years asked for by name show up even before their first run
        held = {p.year for p in parts}
        parts = sorted([*parts, *(s.partition(y) for y in years if y not in held)], key=lambda p: p.year)
    view = store_view(s, parts)
    return {"workdir": str(s.workdir), "collection": s.collection, "store": view.as_dict(),
            "partitions": {p.label: partition_status(p, s, view) for p in parts}}


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
    source, stages = rerun_plan(part, s, manifest, points, view)
    report = read_report(part)
    last = None if report is None else {k: report.get(k) for k in ("status", "finished", "seconds", "cached", "error")}
    embed = manifest.get("embed", {})
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
    }


def rerun_plan(part: Partition, s: Settings, manifest: dict, points: int | None,
               view: StoreView) -> tuple[dict, dict[str, dict]]:
    """Each stage's committed key against the key a rerun would compute now.

    The source is ``s.source`` when given, else the file the last read recorded. Without a readable
    source every key is unknown (they all chain from the source's bytes).

    Returns:
        ``({"path", "state": "ok" | "missing" | "none", "detail"}, {stage: {"committed", "rerun", "why"}})``.
    """
    s = s.model_copy(update={"corpus": part.corpus})
    source = _source(part, s, manifest)
    expected: dict[str, str | None] = dict.fromkeys(STAGES)
    why = source["detail"]
    if source["state"] == "ok":
        keys, model_missing = expected_keys(part, s, Path(source["path"]), manifest)
        expected.update(keys)
        why = model_missing or why
    stages = {}
    for stage in STAGES:
        entry = manifest.get(stage)
        committed = entry["key"] if entry else None
        want = expected[stage]
        if want is None:
            stages[stage] = {"committed": _short(committed), "rerun": "unknown", "why": why}
        elif committed is None:
            stages[stage] = {"committed": None, "rerun": "recompute", "why": "never committed"}
        elif want not in (committed, entry.get("upgraded_from")):
            stages[stage] = {"committed": _short(committed), "rerun": "recompute", "why": f"key now {want[:12]}"}
        else:
            stages[stage] = {"committed": _short(committed), "rerun": "reuse", "why": ""}
    up = stages["upsert"]
    if up["rerun"] == "reuse":  # the upsert stage also redoes its work when the store lacks the partition's points
        chunks = manifest.get("chunk", {}).get("chunks")
        if points is None:
            up.update(rerun="unknown", why=view.detail or "points unknown")
        elif points != chunks:
            up.update(rerun="recompute", why=f"store holds {points} points, not {chunks}")
    return source, stages


def expected_keys(part: Partition, s: Settings, source: Path, manifest: dict) -> tuple[dict[str, str], str]:
    """The key each stage would get from ``source`` and ``s`` (the stages' own recipes, in order).

    Returns:
        ``({stage: key}, "")``; when the model is not in the local cache, only the read and clean
        keys (the others hold the model's identity) and the first line of what resolving it said.
    """
    from kademe.lexical.bm25 import analyzer_fingerprint

    read = chain_key(file_digest(source), s.fingerprint("read"), part.corpus, str(part.year))
    keys = {"read": read, "clean": chain_key(read, s.fingerprint("clean"))}
    try:
        s.fingerprint("chunk")
    except KademeError as e:
        return keys, str(e).split("\n")[0]
    keys["chunk"] = chain_key(keys["clean"], s.fingerprint("chunk"))
    keys["lexical"] = chain_key(keys["chunk"], s.fingerprint("lexical"), analyzer_fingerprint(s.bm25_language))
    keys["embed"] = chain_key(keys["chunk"], s.fingerprint("embed"))
    committed = manifest.get("embed", {})
    # An upgraded embed checkpoint (kademe upgrade) stands in for the one it upgraded: the upsert follows it.
    embed = committed["key"] if keys["embed"] in (committed.get("key"), committed.get("upgraded_from")) else keys["embed"]
    keys["upsert"] = chain_key(embed, keys["lexical"], s.fingerprint("upsert"))
    return keys, ""


def _source(part: Partition, s: Settings, manifest: dict) -> dict:
    from kademe.sources import resolve_source

    if s.source:
        try:
            return {"path": str(resolve_source(s.source, part.year)), "state": "ok", "detail": ""}
        except KademeError as e:
            return {"path": None, "state": "missing", "detail": str(e).split("\n")[0]}
    recorded = manifest.get("read", {}).get("source")
    if not recorded:
        return {"path": None, "state": "none", "detail": "no source given (--source) and none recorded"}
    if not Path(recorded).is_file():
        return {"path": recorded, "state": "missing", "detail": f"the recorded source '{recorded}' is gone; pass --source"}
    return {"path": recorded, "state": "ok", "detail": ""}


def _short(key: str | None) -> str | None:
    return key[:12] if key else None


# -- the store --------------------------------------------------------------------------------------


def store_view(s: Settings, parts: list[Partition]) -> StoreView:
    """Open the store read-only in effect (create nothing), count each partition's points, read the index state.

    The embedded store's folder must already hold a collection; a local-mode path must exist; a held
    embedded store is reported as ``busy`` with the holder's pid.
    """
    from kademe.store import StoreUnavailable, Where, open_store

    if s.qdrant_url:
        view = StoreView("server", s.qdrant_url)
        local = s.qdrant_url[len("path:"):] if s.qdrant_url.startswith("path:") else None
        if local is not None and not Path(local).is_dir():
            return _missing(view, f"no local-mode store at '{local}'")
    else:
        folder = Path(s.workdir) / "qdrant" / s.collection
        view = StoreView("edge", str(folder))
        if not (folder / "edge_config.json").is_file():
            return _missing(view, f"no collection '{s.collection}' at '{folder}'")
    try:
        with open_store(s) as store:
            info = store.info()
            if info is None:
                return _missing(view, f"no collection '{s.collection}' at {view.where}")
            view.points = info.points
            view.counts = {(p.corpus, p.year): store.count(Where(p.corpus, p.year)) for p in parts}
            view.index = index_state(store)
    except StoreUnavailable as e:
        view.state, view.detail = "unavailable", str(e).split("\n")[0]
    except KademeError as e:
        if "in use by another process" not in str(e):
            raise
        view.state, view.detail = "busy", f"store busy (held by {_holder(view)})"
    return view


def _missing(view: StoreView, detail: str) -> StoreView:
    view.state, view.detail, view.points = "missing", detail, 0
    return view


def _holder(view: StoreView) -> str:
    """``pid N`` from the embedded store's lock file (a JSON record of the holder, or a bare pid from an
    earlier kademe), else ``another process``."""
    import json

    from kademe.store.folder import LOCK_NAME

    try:
        text = (Path(view.where) / LOCK_NAME).read_text()
        try:
            record = json.loads(text)
        except ValueError:
            record = text.split()[0]
        pid = record.get("pid") if isinstance(record, dict) else record
        return f"pid {int(pid)}"
    except (OSError, IndexError, ValueError, TypeError):
        return "another process"


def index_state(store) -> dict:
    """What the engine says about its index, collection-wide (segments hold every partition's points).

    Returns:
        ``{"state": "indexed" | "partly indexed" | "unindexed" | "pending" | "unknown", "segments", "points",
        "indexed_vectors", ...}``: Edge reports segments and indexed vectors; a server adds its
        status (green: optimized; yellow: optimizing; grey: optimizations pending).
    """
    own = getattr(store, "index_state", None)
    if callable(own):  # a Store that answers this itself
        return own()
    shard = getattr(store, "_shard", None)
    if store.backend == "edge" and shard is not None:
        info = shard.info()
        return {"state": _coverage(info.indexed_vectors_count, info.points_count), "segments": info.segments_count,
                "points": info.points_count, "indexed_vectors": info.indexed_vectors_count}
    client = getattr(store, "client", None)
    if store.backend == "server" and client is not None:
        info = client.get_collection(store.collection)
        colour = str(getattr(info.status, "value", info.status))
        state = {"yellow": "pending", "grey": "pending"}.get(colour) or (
            _coverage(info.indexed_vectors_count or 0, info.points_count or 0) if colour == "green" else "unknown")
        return {"state": state, "status": colour, "segments": info.segments_count, "points": info.points_count,
                "indexed_vectors": info.indexed_vectors_count or 0}
    return {"state": "unknown"}


def _coverage(indexed_vectors: int, points: int) -> str:
    """``indexed`` when the engine counts an indexed vector per point, ``partly indexed``, or ``unindexed``.

    Qdrant builds HNSW per segment and only above a segment's indexing threshold; an unindexed segment
    is searched by an exact scan, which is fast while it is small.
    """
    if not indexed_vectors:
        return "unindexed"
    return "indexed" if indexed_vectors >= points else "partly indexed"


# -- text -------------------------------------------------------------------------------------------


def format_status(result: dict) -> str:
    """The status as a table, one line per partition, then the store and what a rerun would redo."""
    store = result["store"]
    index = store["index"]
    head = f"{'partition':<22}{'committed':<11}{'chunks':>8}{'points':>9}  {'degraded':<9}{'last run':<33}rerun"
    lines = [f"workdir {result['workdir']}, collection {result['collection']} ({store['backend']}: {store['where']})",
             f"store: {store['detail'].removeprefix('store ') or 'ok'}" + (f"; {store['points']} points" if store["points"] is not None else "")
             + f"; index {index['state']}" + (f" ({index['indexed_vectors']} indexed vectors in {index['segments']} segments)"
                                              if "segments" in index else ""),
             head]
    for label, p in result["partitions"].items():
        last = p["last_run"]
        run = f"{last['status']} {(last['finished'] or '').replace('+00:00', 'Z')}".strip() if last else "-"
        points = "busy" if p["points"] is None and store["state"] == "busy" else "-" if p["points"] is None else str(p["points"])
        degraded = "-" if p["degraded"] is None else "yes" if p["degraded"] else "no"
        if p["rerun"]:
            rerun = ",".join(p["rerun"]) + ("" if p["rerun_known"] else " (+ unknown)")
        else:
            rerun = "nothing" if p["rerun_known"] else "unknown: " + next(v["why"] for v in p["stages"].values() if v["rerun"] == "unknown")
        lines.append(f"{label:<22}{len(p['committed'])}/{len(STAGES):<9}{p['chunks'] if p['chunks'] is not None else '-':>8}"
                     f"{points:>9}  {degraded:<9}{run:<33}{rerun}")
    if not result["partitions"]:
        lines.append(f"(no partitions under {result['workdir']})")
    return "\n".join(lines)
