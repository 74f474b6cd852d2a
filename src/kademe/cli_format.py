"""What the ``kademe`` command prints for people: the tables and lines of its results (``--json`` prints the results as they are)."""

from __future__ import annotations

import sys


def format_verify(result: dict) -> str:
    lines = []
    for year, v in result["years"].items():
        for corpus, r in (v.get("corpora") or {"": v}).items():
            label = f"{corpus} {year}" if corpus else year
            lines.append(f"{label}: {'ok' if r['ok'] else 'FAILED'} " + (r.get("error") or (
                f"expected {r['expected']}, found {r['found']}, missing {r['missing_count']}, extra {r['extra_count']}, "
                f"duplicates {len(r['duplicates'])}, bad vectors {len(r['bad_vectors'])}")))
    return "\n".join(lines + [f"corpora: {', '.join(result['corpora']) or 'none'}"])

def format_plan(result: dict) -> str:
    from kademe.embed.plan import format_table

    budget, length = result["token_budget"], result["max_tokens"]
    if not result["free_bytes"]:
        return format_table(result["rows"]) + "\n\nPass --gpu-mem GB for a token budget."
    return format_table(result["rows"]) + (f"\n\nWith {result['free_bytes'] / 1e9:.1f} GB free, at {length} tokens: token budget {budget} "
                                           f"(batch {budget // length if budget else 0})")

def format_summary(result: dict) -> str:
    """The human table of an ingest: per year the documents, the chunks and how their vectors came (embedded by
    this run, reused by text, already committed), the source's change since the last ingest (new, changed,
    removed decisions), the stages served from checkpoints, the device and the seconds (issue 30)."""
    head = (f"{'year':<6}{'status':<11}{'read':>5}{'docs':>6}{'dups':>5}{'rej':>5}{'chunks':>7}{'embed':>7}{'reuse':>6}"
            f"{'done':>6}{'upsert':>7}{'new':>5}{'chg':>5}{'rm':>4}  {'cached':<39}{'device':<7}{'sec':>6}")
    lines = [head]
    for year, y in result["years"].items():
        c, d = y["counts"], y.get("changes", {}).get("documents", {})
        lines.append(f"{year:<6}{y['status']:<11}{c['read']:>5}{c['documents']:>6}{c['duplicates']:>5}{c['rejected']:>5}"
                     f"{c['chunks']:>7}{c['embedded']:>7}{c.get('reused', 0):>6}{c.get('committed', 0):>6}{c['upserted']:>7}"
                     f"{d.get('new', 0):>5}{d.get('changed', 0):>5}{d.get('removed', 0):>4}"
                     f"  {','.join(y['cached']) or '-':<39}{y['device']:<7}{y['seconds']:>6.1f}"
                     + ("  DEGRADED" if y["degraded"] else "") + (f"  {len(y['oom_events'])} OOM" if y["oom_events"] else ""))
        if ch := format_change(y.get("changes")):
            lines.append(f"      {ch}")
        if y.get("error"):
            lines.append(f"      error: {y['error']}")
    return "\n".join(lines)


def warn_empty(result: dict) -> None:
    """A year with no document is not a success: say so on stderr, naming its rejects.ndjson (issue 30)."""
    for y in result["years"].values():
        if y["status"] == "empty":
            print(f"kademe: warning: {y['error']}", file=sys.stderr)


def format_change(changes: dict | None) -> str:
    """One line of what the run found changed and what it cost (issue 29), under the year's counts."""
    if not changes or "documents" not in changes:
        return ""
    d, k = changes["documents"], changes["chunks"]
    line = (f"change: documents {d['new']} new, {d['changed']} changed, {d['removed']} removed, {d['unchanged']} unchanged; "
            f"chunks {k['embedded']} embedded, {k['reused']} reused")
    if (p := changes.get("points")) and p.get("written") is not None:
        line += f"; points {p['written']} written, {p.get('deleted', 0)} deleted"
    if b := changes.get("bytes"):
        line += f"; workdir {b['written'] / 1e6:.1f} MB written, {b['collected'] / 1e6:.1f} MB collected"
    return line
