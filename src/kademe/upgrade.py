"""Re-embed a degraded partition with the primary model once memory is back (``kademe upgrade``).

Crash-safe by construction: the upgraded vectors go to a *new* embed checkpoint (its key chains the
old key and the primary model's identity); its shards are written, then upserted, and only when the
store has acknowledged every upgraded point does the new checkpoint commit, which swaps the
manifest. The old checkpoint's done file then points at the new one, so a later ``kademe ingest``
reuses the upgraded vectors. Killed anywhere, a rerun finishes the same way: finished shards are
reused, re-upserts overwrite (deterministic ids), and the end state equals an uninterrupted upgrade.
"""

from __future__ import annotations

from pathlib import Path

from kademe.checkpoint import Partition, chain_key, iter_parquet, parquet_rows, partitions, read_json, write_json
from kademe.embed.ladder import Ladder
from kademe.models import vector_name
from kademe.embed.stage import read_shard, shard_path, summarize_shards, write_shard
from kademe.errors import KademeError
from kademe.faults import crash_point
from kademe.settings import Settings, model_fingerprint
from kademe.lexical.stage import read_sparse
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
    old_done = part.path / f"embed-{entry['key'][:12]}.json"
    made_with = (read_json(old_done) or {}).get("model")
    if made_with and made_with != s.model:
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
    old = manifest["embed"]
    cp = part.checkpoint("embed", chain_key(old["key"], "upgrade", model_fingerprint(s.model) or ""))
    old_folder, chunks, sparse = Path(old["path"]), Path(manifest["chunk"]["path"]), Path(manifest["lexical"]["path"])
    primary, ladder = vector_name(s.model), None
    primary_only = s.model_copy(update={"fallback_model": None})  # upgrading must not degrade again
    n_shards = len(list(old_folder.glob("shard-*.parquet")))
    upgraded, events = 0, []
    for i, rows in enumerate(iter_parquet(chunks, batch_size=old.get("shard_size", s.shard_size))):
        ids, spaces, rungs, vectors = read_shard(shard_path(old_folder, i))
        todo = [j for j, space in enumerate(spaces) if space != primary]
        if parquet_rows(cp.shard(i)) != len(rows):
            if todo:
                ladder = ladder or Ladder(primary_only)
                out = ladder.embed([rows[j]["text"] for j in todo], [rows[j]["n_tokens"] for j in todo], [rows[j].get("token_ids") for j in todo])
                events += [e.as_dict() for e in out.events]
                for j, vec, space, rung in zip(todo, out.vectors, out.spaces, out.rungs):
                    vectors[j], spaces[j], rungs[j] = vec, space, rung
                write_json(cp.shard(i, ".json"), {**(read_json(shard_path(old_folder, i, ".json")) or {}),
                                                  "upgrade_events": [e.as_dict() for e in out.events]})
            else:
                write_json(cp.shard(i, ".json"), read_json(shard_path(old_folder, i, ".json")) or {})
            write_shard(cp.shard(i), ids, spaces, rungs, vectors)
            crash_point("upgrade-shard")
        if todo:  # (re)write the upgraded points: the store acknowledges them before the manifest swaps
            ids, spaces, rungs, vectors = read_shard(cp.shard(i))
            sparse_ids, sparse_vecs = read_sparse(sparse / f"shard-{i:05d}.parquet")
            pick = lambda xs: [xs[j] for j in todo]  # noqa: E731
            store.upsert(point_batches(pick(rows), pick(ids), pick(spaces), pick(rungs), pick(vectors),
                                       pick(sparse_ids), pick(sparse_vecs), s))
            upgraded += len(todo)
            crash_point("upgrade-upsert")
    summary = summarize_shards(cp.folder, n_shards, s)
    summary["oom_events"] = (read_json(part.path / f"embed-{old['key'][:12]}.json") or {}).get("oom_events", []) + events
    crash_point("upgrade-swap")
    cp.commit(**summary, upgraded_from=old["key"], shard_size=old.get("shard_size", s.shard_size), shards=n_shards)
    return upgraded, events


def _point_old_to_new(part: Partition, entry: dict) -> None:
    """Make the old embed done file name its upgrade, so ``kademe ingest`` reuses the new vectors."""
    old_key = entry.get("upgraded_from")
    if not old_key:
        return
    path = part.path / f"embed-{old_key[:12]}.json"
    old = read_json(path)
    if old is not None and old.get("superseded_by") != entry["key"]:
        write_json(path, {**old, "superseded_by": entry["key"]})


def _update_report(part: Partition, entry: dict, check: dict) -> None:
    report_path = part.path / "report.json"
    report = read_json(report_path)
    if report:
        report.update(degraded=entry["degraded"], rungs=entry["rungs"], verify=check)
        write_json(report_path, report)


def upgrade_years(s: Settings, years: list[int]) -> dict:
    """Upgrade ``years`` of ``s.corpus``, or of every corpus the workdir holds for them."""
    result: dict = {"years": {}}
    with open_store(s) as store:
        for year in years:
            parts = partitions(Path(s.workdir), [year], s.corpus)
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
