"""``kademe status`` as text: one line per partition, after the store's line (``kademe.status`` gathers)."""

from __future__ import annotations

from kademe.rerun import STAGES


def format_status(result: dict) -> str:
    """The status as a table, one line per partition, then the store and what a rerun would redo.

    Example:
        >>> print(format_status(status(Settings(workdir="work"))))
        workdir work, collection st (edge: work/qdrant/st)
        store: ok; 8 points; index indexed (8 indexed vectors in 1 segments)
        partition             committed   chunks   points       MB   free  degraded last run                         rerun
        yargitay/2011         6/6              4        4      0.1    0.0  no       completed 2026-01-01T00:00:00Z   nothing
    """
    store = result["store"]
    lines = [_header(result), _store_line(store),
             f"{'partition':<22}{'committed':<11}{'chunks':>8}{'points':>9}{'MB':>9}{'free':>7}  {'degraded':<9}{'last run':<33}rerun"]
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
                     f"{points:>9}{p['bytes'] / 1e6:>9.1f}{p['reclaimable'] / 1e6:>7.1f}  {degraded:<9}{run:<33}{rerun}")
    if not result["partitions"]:
        lines.append(f"(no partitions under {result['workdir']})")
    elif free := sum(p["reclaimable"] for p in result["partitions"].values()):
        lines.append(f"{free / 1e6:.1f} MB held by superseded checkpoints: kademe collect --workdir {result['workdir']} reclaims it")
    return "\n".join(lines)


def _header(result: dict) -> str:
    store = result["store"]
    named = (f"collection {result['collection']}" if result["collection"] is not None
             else f"collections {', '.join(result.get('collections', []))}")
    return f"workdir {result['workdir']}, {named} ({store['backend']}: {store['where']})"


def _store_line(store: dict) -> str:
    if store["state"] == "unchosen":
        return f"store: {store['detail']}"
    index = store["index"]
    return (f"store: {store['detail'].removeprefix('store ') or 'ok'}"
            + (f"; {store['points']} points" if store["points"] is not None else "")
            + f"; index {index['state']}"
            + (f" ({index['indexed_vectors']} indexed vectors in {index['segments']} segments)" if "segments" in index else ""))
