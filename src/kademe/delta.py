"""What the store holds of a partition, and what a run changes in it (issue 29).

A night changes ~1 % of a year's decisions, so the upsert stage writes only the points that are
new or whose payload or vectors changed, and deletes the withdrawn ones. For that it keeps two
things in the workdir:

* **digests**: a part of every upsert checkpoint (``upsert-<key12>/digests-<token>.parquet``):
  each point's id and a 16-byte BLAKE2b of what was written (the payload's inputs, the vector
  space, the dense vector's float32 bytes, the bm25 vector's indices and values). The next run
  diffs its points against the digests of the checkpoint the store holds.
* **the store's state** of the partition, one small object per store (``store-<fp12>.state``, the
  upsert fingerprint: collection and server URL): ``applied``, the upsert checkpoint whose point
  set the store holds; ``applying``, a run's key while it writes; ``touched``, the ids that run
  (and any killed run before it) may have written or deleted. It is overwritten in place (the
  partition lock allows one writer) and written before the first store write of a run, so a run
  killed anywhere in its writes or deletes leaves a state that says which ids to trust no more:
  the rerun (or the next night) rewrites them. ``touched`` None means "any id": the next run
  writes the whole partition and prunes.

A workdir from before issue 29 has no state and no digests: its first run upserts the whole
partition and prunes, as before, and records both.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kademe.checkpoint import Checkpoint
from kademe.partition import Partition
from kademe.settings import Settings
from kademe.storage import dump_json, load_json

DIGEST_SCHEMA = pa.schema([("point_id", pa.string()), ("digest", pa.binary(16))])
DIGEST_FIELDS = ("meta", "corpus", "doc_id", "year", "chunk_index", "text", "date", "chamber", "esas_no", "karar_no")
TOUCHED_MAX = 100_000  # more ids than this in flight: the state says "any id" (the next run rewrites the partition)


def point_digests(rows: list[dict], spaces: list[str], rungs: list[str], vectors: list[np.ndarray],
                  sparse: list[tuple[np.ndarray, np.ndarray]], models: tuple[str, str | None]) -> list[bytes]:
    """One 16-byte digest per point of a shard: what the store would hold for it.

    Args:
        rows: the chunk rows (``meta`` and the payload fields); ``rungs`` and ``models`` (primary,
            fallback) complete the payload as ``kademe.upsert`` builds it.
        spaces, vectors: each point's vector name and float32 vector.
        sparse: each point's bm25 ``(indices, values)``.

    Returns:
        N digests, in the rows' order.
    """
    out = []
    for row, space, rung, vec, (ix, vals) in zip(rows, spaces, rungs, vectors, sparse):
        h = hashlib.blake2b(digest_size=16)
        fields = [row.get(k) for k in DIGEST_FIELDS]
        h.update(json.dumps([fields, space, rung, models], ensure_ascii=False, default=str).encode())
        h.update(np.ascontiguousarray(vec, dtype="<f4").tobytes())
        h.update(np.ascontiguousarray(ix, dtype="<u4").tobytes())
        h.update(np.ascontiguousarray(vals, dtype="<f4").tobytes())
        out.append(h.digest())
    return out


def write_digests(cp: Checkpoint, ids: list[str], digests: list[bytes]) -> None:
    """The checkpoint's ``digests`` part (published; named by its commit)."""
    with cp.sink(DIGEST_SCHEMA, "digests") as sink:
        for start in range(0, len(ids), 65536):
            sink.write([{"point_id": p, "digest": d} for p, d in zip(ids[start:start + 65536], digests[start:start + 65536])])


def read_digests(part: Partition, key: str | None) -> dict[str, bytes] | None:
    """``{point id: digest}`` of the committed upsert checkpoint ``key``; None without one (or without digests)."""
    if not key:
        return None
    cp = part.checkpoint("upsert", key)
    meta = cp.done()
    if meta is None or not any(rel.rsplit("/", 1)[-1].startswith("digests-") for rel in meta.get("files", {})):
        return None
    cp.meta = meta
    try:
        table = pq.read_table(cp.file("digests"))
    except (FileNotFoundError, OSError, pa.ArrowException):
        return None
    return dict(zip(table.column("point_id").to_pylist(), table.column("digest").to_pylist()))


@dataclass
class StoreState:
    """What the store holds of one partition, as far as kademe knows (see the module docstring)."""

    applied: str | None = None
    applying: str | None = None
    touched: list[str] | None = None

    @property
    def clean(self) -> bool:
        """No run was killed while writing: the store holds exactly ``applied``'s points."""
        return self.applying is None


def state_name(part: Partition, s: Settings) -> str:
    return f"{part.prefix}/store-{s.fingerprint('upsert')[:12]}.state"


def read_state(part: Partition, s: Settings) -> StoreState | None:
    """The partition's state in ``s``'s store; None when kademe never recorded one (a workdir from before)."""
    data = load_json(part.storage.get(state_name(part, s)))
    if not isinstance(data, dict):
        return None
    return StoreState(data.get("applied"), data.get("applying"), data.get("touched"))


def write_state(part: Partition, s: Settings, state: StoreState) -> None:
    part.storage.put(state_name(part, s), dump_json(asdict(state)))


def touched_ids(*sets: set[str] | None) -> list[str] | None:
    """The union of the ids in flight, or None ("any id") when one is unknown or the union is too long."""
    if any(x is None for x in sets):
        return None
    union = set().union(*sets)
    return sorted(union) if len(union) <= TOUCHED_MAX else None
