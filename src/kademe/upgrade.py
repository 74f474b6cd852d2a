"""Re-embed a degraded partition with the primary model once memory is back (``kademe upgrade``).

Crash-safe by construction: the upgraded vectors go to a *new* embed checkpoint (its key chains the
old key and the primary model's identity); its shards are written, then upserted, and only when the
store has acknowledged every upgraded point does the new checkpoint commit, which swaps the
manifest. The old checkpoint then names the new one as its successor (``Checkpoint.supersede``), so
a later ``kademe ingest`` reuses the upgraded vectors. Killed anywhere, a rerun finishes the same way: finished shards are
reused, re-upserts overwrite (deterministic ids), and the end state equals an uninterrupted upgrade.
"""

from __future__ import annotations

import functools
from kademe.keys import chain_key
from kademe.partition import Partition, partitions
from kademe.models import same_model, vector_name
from kademe.embed.reuse import vector_identity
from kademe.chunks import ChunkResult
from kademe.embed.shards import read_shard
from kademe.embed.vectors import EmbedVectors
from kademe.embed.stage import embed_shards, summarize_shards
from kademe.errors import KademeError
from kademe.faults import crash_point
from kademe.settings import Settings, model_fingerprint
from kademe.lexical.shards import read_sparse
from kademe.store import Store, open_store
from kademe.upsert import ensure_collection, point_batches
from kademe.verify import combine, verify_partition


def upgrade_partition(part: Partition, s: Settings, store: Store | None = None) -> dict:
    """Re-embed the partition's fallback-model chunks with ``s.model`` and rewrite their points.

    Returns:
        ``{"status", "corpus", "degraded", "upgraded", "rungs", "oom_events", "verify"}``.
    """
    if store is None:
        with open_store(s) as own:
            return upgrade_partition(part, s, own)
    manifest = part.manifest()
    if not {"chunk", "lexical", "embed"} <= set(manifest):
        raise KademeError(f"No finished checkpoints for {part.label} under {s.workdir}.\n\nRun kademe ingest for that year first.")
    entry = manifest["embed"]
    made_with = (part.checkpoint("embed", entry["key"]).done() or {}).get("model")
    if made_with and not same_model(made_with, s.model):
        raise KademeError(f"{part.label} was embedded with --model {made_with}, not {s.model}.\n\nPass --model {made_with}.")
    ensure_collection(store, s)
    upgraded, events = 0, []
    if entry.get("degraded"):
        crash_point("upgrade-start")
        upgraded, events = _upgrade(part, s, store, manifest)
        entry = part.manifest()["embed"]
    _point_old_to_new(part, entry)
    check = verify_partition(store, part)
    _update_report(part, entry, check)
    return {"status": "completed" if check["ok"] else "failed", "corpus": part.corpus, "degraded": entry["degraded"],
            "upgraded": upgraded, "rungs": entry["rungs"], "oom_events": events, "verify": check}


def _upgrade(part: Partition, s: Settings, store: Store, manifest: dict) -> tuple[int, list[dict]]:
    """Re-embed the fallback-model chunks through the embed stage's shard loop, keeping the primary vectors.

    Each shard of the new checkpoint is written by ``embed_shards`` (the degraded checkpoint's primary
    vectors kept, the rest encoded by the primary model alone), then its upgraded points are upserted;
    the new checkpoint commits once every shard's points are acknowledged.
    """
    old = manifest["embed"]
    shard_size = old.get("shard_size", s.shard_size)
    primary_only = s.model_copy(update={"fallback_model": None, "shard_size": shard_size})  # upgrading must not degrade again
    cp = part.checkpoint("embed", chain_key(old["key"], "upgrade", model_fingerprint(s.model) or ""))
    before = part.checkpoint("embed", old["key"])
    chunk_cp = part.checkpoint("chunk", manifest["chunk"]["key"])
    chunk_cp.meta = chunk_cp.done()
    chunks = ChunkResult(chunk_cp.key, tuple(chunk_cp.files()), chunk_cp.meta["chunks"], cached=True)  # shards or one file
    sparse = part.checkpoint("lexical", manifest["lexical"]["key"])
    primary, n_shards = vector_name(s.model), old["shards"]
    pending = set(cp.pending(n_shards))
    rows_iter = chunks.rows(shard_size)
    upgraded = 0
    degraded_shard = functools.lru_cache(maxsize=2)(EmbedVectors(before).shard)  # references resolved (issue 29)

    def keep_primary(i: int, shas: list[str]) -> list:
        _, spaces, rungs, vectors = degraded_shard(i)
        return [(sp, rung, vec) if sp == primary else None for sp, rung, vec in zip(spaces, rungs, vectors)]

    def upsert_upgraded(i: int) -> None:  # the store acknowledges them before the manifest swaps
        nonlocal upgraded
        rows = next(rows_iter)
        if i in pending:
            crash_point("upgrade-shard")
        todo = [j for j, space in enumerate(degraded_shard(i)[1]) if space != primary]
        if todo:  # (re)write the upgraded points
            ids, spaces, rungs, vectors = read_shard(cp.shard_file(i))
            sparse_ids, sparse_vecs = read_sparse(sparse.shard_file(i))
            pick = lambda xs: [xs[j] for j in todo]  # noqa: E731
            store.upsert(point_batches(pick(rows), pick(ids), pick(spaces), pick(rungs), pick(vectors),
                                       pick(sparse_ids), pick(sparse_vecs), s))
            upgraded += len(todo)
            crash_point("upgrade-upsert")

    embed_shards(cp, chunks, primary_only, keep_primary, on_shard=upsert_upgraded)
    events = [e for i in sorted(pending) for e in (cp.shard_marker(i) or {}).get("events", [])]
    summary = summarize_shards(cp, n_shards, s)
    summary["oom_events"] = (before.done() or {}).get("oom_events", []) + events
    crash_point("upgrade-swap")
    cp.commit(**summary, upgraded_from=old["key"], shard_size=shard_size, shards=n_shards,
              vector_identity=vector_identity(s))
    return upgraded, events


def _point_old_to_new(part: Partition, entry: dict) -> None:
    """Make the old embed checkpoint name its upgrade, so ``kademe ingest`` reuses the new vectors."""
    old_key = entry.get("upgraded_from")
    if old_key:
        part.checkpoint("embed", old_key).supersede(entry["key"])


def _update_report(part: Partition, entry: dict, check: dict) -> None:
    report = part.get_json("report.json")
    if report is not None:
        report.update(degraded=entry["degraded"], rungs=entry["rungs"], verify=check)
        part.put_json("report.json", report)


def upgrade_years(s: Settings, years: list[int]) -> dict:
    """Upgrade ``years`` of ``s.corpus``, or of every corpus the workdir holds for them."""
    result: dict = {"years": {}}
    with open_store(s) as store:
        for year in years:
            parts = partitions(s.workdir, [year], s.corpus)
            if not parts:
                raise KademeError(f"No finished checkpoints for {year} under {s.workdir}.\n\nRun kademe ingest for that year first.")
            per = {part.corpus: upgrade_partition(part, s, store) for part in parts}
            rungs: dict[str, int] = {}
            for r in per.values():
                for rung, n in r["rungs"].items():
                    rungs[rung] = rungs.get(rung, 0) + n
            result["years"][str(year)] = {
                "status": "completed" if all(r["status"] == "completed" for r in per.values()) else "failed",
                "degraded": any(r["degraded"] for r in per.values()), "upgraded": sum(r["upgraded"] for r in per.values()),
                "rungs": rungs, "oom_events": [e for r in per.values() for e in r["oom_events"]],
                "verify": combine({c: r["verify"] for c, r in per.items()}), "corpora": per}
    return result
