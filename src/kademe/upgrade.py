"""Re-embed a degraded year with the primary model once memory is back (``kademe upgrade``).

Only chunks whose vector came from the fallback model are re-embedded; their embed shards are
rewritten with the primary vector, the points re-upserted (which replaces the fallback vector and
clears the ``degraded`` payload flag), and the year's checkpoints and report say ``degraded: false``.
"""

from __future__ import annotations

from pathlib import Path

from kademe.checkpoint import YearDir, iter_parquet, read_json, write_json, write_parquet
from kademe.embed.ladder import Ladder
from kademe.embed.model import vector_name
from kademe.embed.stage import SHARD_SCHEMA, shard_path, summarize_shards
from kademe.errors import KademeError
from kademe.settings import Settings
from kademe.store import ensure_collection, open_store, upsert_rows, verify_year


def upgrade_year(year: int, s: Settings) -> dict:
    """Re-embed the year's fallback-model chunks with ``s.model`` and rewrite their points.

    Returns:
        ``{"status", "degraded", "upgraded", "rungs", "oom_events", "verify"}`` for the year.
    """
    yd = YearDir(s.workdir, year)
    manifest = yd.manifest()
    if "embed" not in manifest or "chunk" not in manifest:
        raise KademeError(f"No finished checkpoints for {year} under {s.workdir}.\n\nRun kademe ingest for that year first.")
    entry = manifest["embed"]
    done = yd.stage_file("embed", entry["key"], ".json")
    made_with = (read_json(done) or {}).get("model")
    if made_with and made_with != s.model:
        raise KademeError(f"Year {year} was embedded with --model {made_with}, not {s.model}.\n\nPass --model {made_with}.")
    primary = vector_name(s.model)
    folder, shards = Path(entry["path"]), entry["shards"]
    primary_only = s.model_copy(update={"fallback_model": None})  # upgrading must not degrade again
    ladder: Ladder | None = None
    upgraded, events = 0, []
    with open_store(s) as client:
        ensure_collection(client, s)
        for i, rows in enumerate(iter_parquet(Path(manifest["chunk"]["path"]), batch_size=s.shard_size)):
            shard = next(iter_parquet(shard_path(folder, i), batch_size=s.shard_size))
            todo = [j for j, v in enumerate(shard) if v["space"] != primary]
            if not todo:
                continue
            ladder = ladder or Ladder(primary_only)
            out = ladder.embed([rows[j]["text"] for j in todo], [rows[j]["n_tokens"] for j in todo])
            events += [e.as_dict() for e in out.events]
            for j, vec, space, rung in zip(todo, out.vectors, out.spaces, out.rungs):
                shard[j] = {"point_id": shard[j]["point_id"], "space": space, "rung": rung, "vector": vec.tolist()}
            write_parquet(shard_path(folder, i), shard, SHARD_SCHEMA)
            upsert_rows(client, s, [rows[j] for j in todo], [shard[j] for j in todo])
            upgraded += len(todo)
        summary = summarize_shards(folder, shards, s)
        summary["oom_events"] = (read_json(done) or {}).get("oom_events", []) + events
        write_json(done, summary)
        yd.record("embed", **{**entry, "degraded": summary["degraded"]})
        check = verify_year(year, s, client)
    report_path = yd.path / "report.json"
    report = read_json(report_path)
    if report:
        report.update(degraded=summary["degraded"], rungs=summary["rungs"], verify=check)
        write_json(report_path, report)
    return {"status": "completed" if check["ok"] else "failed", "degraded": summary["degraded"], "upgraded": upgraded,
            "rungs": summary["rungs"], "oom_events": events, "verify": check}
