"""What a rerun would redo: each stage's committed key against the key the stage would compute now.

The keys come from the stages' own recipes (``read_key``, ``clean_key``, ``chunk_key``,
``lexical_key``, ``embed_key``, ``upsert_key``), called without running anything, so ``kademe
status`` and an ingest cannot disagree; tests/test_status.py checks that a finished ingest reads
as "reuse" everywhere.
"""

from __future__ import annotations

from pathlib import Path

from kademe.errors import KademeError
from kademe.partition import Partition
from kademe.settings import Settings

STAGES = ("read", "clean", "chunk", "lexical", "embed", "upsert")


def rerun_plan(part: Partition, s: Settings, manifest: dict, points: int | None,
               store_detail: str = "", collection_known: bool = True) -> tuple[dict, dict[str, dict]]:
    """Each stage's committed key against the key a rerun would compute now.

    The source is ``s.source`` when given, else the file the last read recorded. Without a readable
    source every key is unknown (they all chain from the source's bytes). The upsert stage also
    redoes its work when the store lacks the partition's points (``points``: None when unknown, and
    ``store_detail`` says why). Without a collection (``collection_known`` False) the upsert stage's
    key, which holds the collection's name, is unknown too.

    Returns:
        ``({"path", "state": "ok" | "missing" | "none", "detail"}, {stage: {"committed", "rerun", "why"}})``.
    """
    s = s.model_copy(update={"corpus": part.corpus})
    source = source_of(part, s, manifest)
    expected: dict[str, str | None] = dict.fromkeys(STAGES)
    why = source["detail"]
    if source["state"] == "ok":
        keys, model_missing = expected_keys(part, s, Path(source["path"]))
        expected.update(keys)
        why = model_missing or why
    if not collection_known:
        expected["upsert"] = None
    stages = {}
    for stage in STAGES:
        entry = manifest.get(stage)
        committed = entry["key"] if entry else None
        want = expected[stage]
        if want is None:
            stages[stage] = {"committed": _short(committed), "rerun": "unknown",
                             "why": store_detail if stage == "upsert" and not collection_known else why}
        elif committed is None:
            stages[stage] = {"committed": None, "rerun": "recompute", "why": "never committed"}
        elif want != committed:
            stages[stage] = {"committed": _short(committed), "rerun": "recompute", "why": f"key now {want[:12]}"}
        else:
            stages[stage] = {"committed": _short(committed), "rerun": "reuse", "why": ""}
    up = stages["upsert"]
    if up["rerun"] == "reuse":  # the upsert stage also redoes its work when the store lacks the partition's points
        from kademe.delta import read_state
        from kademe.upsert import store_holds

        chunks = manifest.get("chunk", {}).get("chunks")
        if not store_holds(read_state(part, s), expected["upsert"]):
            up.update(rerun="recompute", why="a run was killed writing the store: a rerun writes its points again")
        elif points is None:
            up.update(rerun="unknown", why=store_detail or "points unknown")
        elif points != chunks:
            up.update(rerun="recompute", why=f"store holds {points} points, not {chunks}")
    return source, stages


def expected_keys(part: Partition, s: Settings, source: Path) -> tuple[dict[str, str], str]:
    """The key each stage would get from ``source`` and ``s``: the stages' own recipes, in order.

    Returns:
        ``({stage: key}, "")``; when the model cannot be resolved, only the read and clean keys (the
        others hold the model's identity) and the first line of what resolving it said.
    """
    from kademe.chunk import chunk_key
    from kademe.clean import clean_key
    from kademe.embed.stage import embed_key
    from kademe.lexical.stage import lexical_key
    from kademe.sources import read_key
    from kademe.upsert import upsert_key

    keys = {"read": read_key(source, part, s)}
    keys["clean"] = clean_key(keys["read"], s)
    try:
        keys["chunk"] = chunk_key(keys["clean"], s)
    except KademeError as e:
        return keys, str(e).split("\n")[0]
    keys["lexical"] = lexical_key(keys["chunk"], s)
    keys["embed"] = embed_key(keys["chunk"], s, part.year)  # an upgraded checkpoint: its successor's key
    keys["upsert"] = upsert_key(keys["embed"], keys["lexical"], s)
    return keys, ""


def source_of(part: Partition, s: Settings, manifest: dict) -> dict:
    """The source a rerun would read: ``{"path", "state": "ok" | "missing" | "none", "detail"}``."""
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
