"""The per-year summary (the CLI's JSON contract) and its Markdown rendering."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from kademe.partition import Partition

# "embedded" is what this run encoded; "reused" vectors it took from an earlier checkpoint by text hash; "committed"
# the chunks whose vectors an earlier run had committed (a whole checkpoint hit, or the shards a resumed run found
# done): chunks == embedded + reused + committed (issue 30). "reused" and "committed" were added, nothing renamed.
COUNT_KEYS = ("read", "documents", "duplicates", "rejected", "chunks", "embedded", "reused", "committed", "upserted")
VECTOR_KEYS = ("embedded", "reused", "committed")
CHANGE_KEYS = ("new", "changed", "unchanged", "removed")
POINT_KEYS = ("written", "deleted", "unchanged")  # changes.points: what the upsert stage did to the store (issue 29)
STAGE_KEYS = ("read", "clean", "chunk", "lexical", "embed", "upsert", "index", "verify", "collect")


def year_summary(
    *,
    counts: dict[str, int],
    cached: list[str],
    degraded: bool,
    oom_events: list[dict],
    model: str,
    device: str,
    seconds: float,
    rungs: dict[str, int] | None = None,
    allocator: str | None = None,
    verify: dict | None = None,
    status: str = "completed",
    error: str | None = None,
    corpus: str | None = None,
    dtype: str | None = None,
    stages: dict[str, float] | None = None,
    instruments: list[str] | None = None,
    changes: dict | None = None,
    model_revision: str | None = None,
) -> dict:
    """One year's entry of ``{"years": {...}}``; the keys are an interface other tools read.

    ``counts`` must add up: ``read == documents + duplicates + rejected`` and ``chunks == embedded +
    reused + committed == upserted`` for a completed year (``embedded``: encoded by this run). ``changes``
    (issue 21) is ``{"documents": {"new", "changed", "unchanged", "removed"}, "chunks": {"embedded",
    "reused", "committed"}, "points": {"written", "deleted", "unchanged"}}``: what this run found changed
    in the source since the last ingest, the same three vector counts as ``counts``, and how many points
    it wrote to the store, deleted from it and left as they were. ``status`` is ``completed``, ``failed``
    or ``empty`` (the year has no document: ``year_outcome``). ``model_revision`` is the Hub commit of the
    model that made the year's vectors (None for a folder or the packaged model), from the embed
    checkpoint (issue 30).
    """
    summary = {
        "status": status,
        "counts": {k: int(counts.get(k, 0)) for k in COUNT_KEYS},
        "cached": cached,
        "degraded": degraded,
        "oom_events": oom_events,
        "model": model,
        "model_revision": model_revision,
        "device": device,
        "seconds": round(seconds, 3),
        "rungs": rungs or {},
        "allocator": allocator,
        "verify": verify,
        "corpus": corpus,
        "dtype": dtype,
        "stages": {k: round(float((stages or {}).get(k, 0.0)), 3) for k in STAGE_KEYS},
        "instruments": instruments or [],
    }
    summary["changes"] = changes or {"documents": {k: 0 for k in CHANGE_KEYS}, "chunks": {k: 0 for k in VECTOR_KEYS}}
    summary["changes"].setdefault("points", {k: 0 for k in POINT_KEYS})
    if error:
        summary["error"] = error
    return summary


def year_outcome(part: Partition, read: int, clean, check: dict) -> tuple[str, str | None]:
    """``(status, error)`` of a year whose stages ran: ``failed`` when verify failed, ``empty`` when no
    document came out of the source (every line rejected, or no line at all), else ``completed``.

    An empty year is not ``completed``: nothing was ingested for a year that was asked for, so the
    CLI exits 1 and warns on stderr, naming ``rejects.ndjson`` (issue 30). It is not ``failed``
    either: a rerun changes nothing until the source does.
    """
    if not check["ok"]:
        return "failed", f"verify failed: {check}"
    if clean.count:
        return "completed", None
    if clean.rejected:
        return "empty", (f"{part.corpus} {part.year}: every one of the {read} lines was rejected, nothing was ingested; "
                         f"{rejects_location(part)} says why, line by line. Check --source and the file's format (NDJSON, one decision a line).")
    return "empty", f"{part.corpus} {part.year}: the source holds no line, nothing was ingested. Check --source."


def rejects_location(part: Partition) -> str:
    """Where the user finds the partition's ``rejects.ndjson``: a local path, or the object's URL."""
    return f"{part.workdir}/{part.prefix}/rejects.ndjson" if part.storage.remote else str(part.rejects)


def failed_year(error: str, model: str, device: str, seconds: float, corpus: str | None = None) -> dict:
    """The entry for a year that did not complete."""
    from kademe.faults import active_instruments

    return year_summary(counts={}, cached=[], degraded=False, oom_events=[], model=model, device=device,
                        seconds=seconds, status="failed", error=error, corpus=corpus, instruments=active_instruments())


def rejects_by_reason(part: Partition) -> dict[str, int]:
    """Counts of ``rejects.ndjson`` lines by reason."""
    text = part.get_text("rejects.ndjson")
    if text is None:
        return {}
    return dict(Counter(json.loads(line)["reason"] for line in text.splitlines() if line.strip()))


def write_report(part: Partition, summary: dict) -> Path:
    """Save the summary as ``<workdir>/<corpus>/<year>/report.json`` (whole or not at all; the last run wins),
    stamped ``finished`` (UTC)."""
    stamped = {**summary, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    part.put_json("report.json", stamped)
    return part.path / "report.json"


def read_report(part: Partition) -> dict | None:
    """The partition's last ``report.json``, or None when there is none (or it is torn)."""
    return part.get_json("report.json")


def markdown(year: int, summary: dict, reasons: dict[str, int]) -> str:
    """A short Markdown report of one year: counts, cache, ladder, verify, rejects."""
    c = summary["counts"]
    lines = [
        f"# kademe: {summary.get('corpus') or 'corpus'} {year} — {summary['status']}",
        "",
        f"Model `{summary['model']}`" + (f" (commit `{summary['model_revision'][:12]}`)" if summary.get("model_revision") else "")
        + f" on `{summary['device']}`"
        + (f" ({summary['dtype']})" if summary.get("dtype") else "") + f", {summary['seconds']:.1f} s."
        + (" **Degraded**: some chunks were embedded with the fallback model." if summary["degraded"] else ""),
        "",
        "| " + " | ".join(COUNT_KEYS) + " |",
        "|" + "---:|" * len(COUNT_KEYS),
        "| " + " | ".join(str(c.get(k, 0)) for k in COUNT_KEYS) + " |",
        "",
        f"Stages served from checkpoints: {', '.join(summary['cached']) or 'none'}.",
    ]
    if ch := summary.get("changes"):
        d, k = ch["documents"], ch["chunks"]
        lines += ["", f"Documents since the last ingest: {d['new']} new, {d['changed']} changed, {d['unchanged']} unchanged, "
                      f"{d['removed']} removed. Chunks embedded by this run {k['embedded']}, vectors reused by text "
                      f"{k['reused']}, already committed {k.get('committed', 0)}."]
        if pts := ch.get("points"):
            lines[-1] += f" Points written {pts['written']}, deleted {pts['deleted']}, unchanged {pts['unchanged']}."
        if b := ch.get("bytes"):  # the workdir's side (issue 29)
            lines += ["", f"Workdir: {_mb(b['written'])} written, {_mb(b['collected'])} collected, {_mb(b['workdir'])} held."]
    if summary.get("stages"):
        lines += ["", "| " + " | ".join(STAGE_KEYS) + " |", "|" + "---:|" * len(STAGE_KEYS),
                  "| " + " | ".join(f"{summary['stages'].get(k, 0.0):.1f} s" for k in STAGE_KEYS) + " |"]
    if summary.get("instruments"):
        lines += ["", "**Instruments active** (test/benchmark faults): " + ", ".join(f"`{i}`" for i in summary["instruments"]) + "."]
    if summary.get("rungs"):
        lines += ["", "Chunks by ladder rung: " + ", ".join(f"`{k}` {v}" for k, v in summary["rungs"].items()) + "."]
    if summary["oom_events"]:
        lines += ["", "| OOM on rung | rows | padded tokens | free bytes | then |", "|---|---:|---:|---:|---|"]
        lines += [f"| {e['rung']} | {e['rows']} | {e['padded_tokens']} | {e['free_bytes']} | {e['action']} |" for e in summary["oom_events"]]
    if summary.get("allocator"):
        lines += ["", f"Allocator: {summary['allocator']}."]
    if summary.get("verify") is not None:
        lines += ["", f"Verify: {'ok' if summary['verify'].get('ok') else 'FAILED'}."]
    if reasons:
        lines += ["", "Rejected lines by reason: " + ", ".join(f"`{k}` {v}" for k, v in sorted(reasons.items())) + "."]
    if summary.get("error"):
        lines += ["", f"Error: {summary['error']}"]
    return "\n".join(lines) + "\n"


def _mb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.1f} MB"
