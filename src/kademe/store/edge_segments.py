"""Qdrant Edge's segments, read from its folder (the 0.9 binding answers only totals: ``ShardInfo``).

A shard keeps each segment in ``segments/<uuid>/``: ``segment.json`` (its config: a dense vector
whose ``index.type`` is ``hnsw`` is indexed, ``plain`` is not), an id tracker with 8 bytes of
version per stored point (``id_tracker.versions``, or ``mutable_id_tracker.versions`` in an
appendable segment), a deleted-points bitmap in an indexed segment (``id_tracker.deleted``) and,
when indexed, the HNSW graph (``vector_index-<name>/links*.bin``). An optimizer that rebuilds a
segment writes a new folder under a new name; one that leaves it alone keeps the graph file as it
was. The layout is the engine's, read in the 0.9.0 wheel's output (issue 29); where a file is
missing the figure is None rather than a guess.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kademe.store.base import Segment

VERSION_BYTES = 8  # one u64 version per stored point


def _bytes(folder: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in folder.rglob("*") if p.is_file())


def _deleted(segment: Path, points: int) -> int | None:
    bitmap = segment / "id_tracker.deleted"
    if not bitmap.exists():
        return None
    bits = np.unpackbits(np.frombuffer(bitmap.read_bytes(), dtype=np.uint8), bitorder="little")[:points]
    return int(bits.sum())


def _built(segment: Path) -> int | None:
    graphs = [p for p in segment.glob("vector_index-*/links*.bin")]
    return max(p.stat().st_mtime_ns for p in graphs) if graphs else None


def read_segments(shard: Path) -> list:
    """Every segment of the Edge shard in ``shard``, largest first."""
    out = []
    for segment in sorted((shard / "segments").glob("*/")):
        config = json.loads((segment / "segment.json").read_text()).get("config", {})
        indexed = any(v.get("index", {}).get("type") == "hnsw" for v in config.get("vector_data", {}).values())
        versions = segment / "id_tracker.versions"
        if not versions.exists():
            versions = segment / "mutable_id_tracker.versions"
        points = versions.stat().st_size // VERSION_BYTES if versions.exists() else 0
        out.append(Segment(segment.name, points, _deleted(segment, points), indexed,
                           _built(segment) if indexed else None, _bytes(segment)))
    return sorted(out, key=lambda seg: -seg.points)
