"""The collection's index design, decided at creation and the same on both engines (issue 18).

A corpus is ~20 yearly partitions of ~1M chunks in one collection, searched by year and across
years. The engine plans each search per segment, and changing m, ef_construct,
full_scan_threshold, payload_m or quantization later makes it rebuild every segment, so all of it
is fixed before the first year is loaded. ``DESIGN`` holds the figures; ``EdgeStore.create`` and
``ServerStore.create`` translate it. Reasons and measurements: README.md ("The collection's
settings") and bench/README.md (store, years).

* One segment per year: the flow builds the index after each year, and ``default_segment_number``
  above the number of years keeps the engine from merging a new year into an older, already
  indexed segment (with the engine's default of 2 on 2 cores, every build re-indexed the earlier
  years: 6.6, 16.9, 25.9, 30.6 s for four equal years). A year's build costs that year.
* Quantized vectors (int8, 1 KB a point at 1024 dims) searched, float32 originals (4 KB) only
  read to rescore ``oversampling`` x limit candidates. Both memory-mapped without pre-reading
  ("cold"): searches page the quantized vectors into the OS page cache, where they stay. Reading
  them at open ("pinned" or "cached") cost 0.9-1.5 s per 50,000 points on this machine, against
  0.35 s for the whole open cold; a server (long-running) keeps them in RAM (``always_ram``).
* Vacuum (issue 29): a night overwrites or deletes ~1 % of a year's points, and the engine only marks
  the old versions deleted. A segment whose deleted share passes ``deleted_threshold`` (and that
  holds at least ``vacuum_min_vector_number`` vectors) is rewritten by the next optimize, which
  kademe runs after each year (Edge) or the server's optimizer runs by itself. 0.2 keeps a year's
  store within ~1.25x of a from-scratch one, at the price of one rebuild of the year's segment every
  ~20 nights of 1 % change (bench/README.md, store nights). Set explicitly, on both engines, so the
  bound does not move with an engine's default.
* Exact search for small filtered sets (issue 29): court decisions repeat boilerplate verbatim, so a
  year holds many identical vectors, and the HNSW walk misses some of them: year-filtered
  recall@10 on the real corpus repeated 10 times a year (20,500 points a year, 1024 dims, the
  near-free encoder) was 0.885 at ``hnsw_ef`` 256 and 0.96 at 1024, 1.0 exact. A filtered query
  whose filter matches at most ``exact_points`` points (counted on the payload index first) is
  answered by an exact scan of the int8 vectors instead: ~1 KB a point read, a few ms at 32,768.
  A query-time choice: no segment is rebuilt. Larger years keep the graph (bench/README.md, "real").
* ``year`` (integer, principal) and ``corpus`` (keyword, tenant) are indexed before any point
  arrives, so every segment built later carries them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Design:
    """HNSW, optimizer, quantization and search settings of a collection (both engines).

    Sizes in KB of vector data, as the engine counts them (1024 float32 dims = 4 KB a point).
    ``quantization`` is ``"int8"``, ``"binary"`` or None; ``legacy`` marks the settings of a
    collection created before issue 18 (engine defaults), kept to compare against and to read
    old collections.
    """

    m: int | None = 32
    ef_construct: int | None = 200
    full_scan_threshold_kb: int | None = 10_000
    payload_m: int | None = 16
    default_segment_number: int | None = 64
    max_segment_size_kb: int | None = 8_000_000
    indexing_threshold_kb: int | None = 10_000
    deleted_threshold: float | None = 0.2
    vacuum_min_vector_number: int | None = 1_000
    quantization: str | None = "int8"
    quantized_memory: str = "cold"  # "cold" (memory-mapped, paged in by searches), "cached" or "pinned" (read at open)
    hnsw_ef: int | None = 256
    exact_points: int | None = 32_768  # a filtered query over at most this many points is an exact scan (issue 29)
    oversampling: float | None = 2.0
    legacy: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


# The settings every new collection gets (figures: bench/README.md, store, years).
DESIGN = Design()
# What kademe created before issue 18: no HNSW, optimizer or quantization settings (engine defaults).
LEGACY = Design(m=None, ef_construct=None, full_scan_threshold_kb=None, payload_m=None, default_segment_number=None,
                max_segment_size_kb=None, indexing_threshold_kb=None, deleted_threshold=None,
                vacuum_min_vector_number=None, quantization=None, hnsw_ef=None, exact_points=None,
                oversampling=None, legacy=True)


def rebuild_hint(where: str) -> str:
    """What to say, once, about a collection made before issue 18."""
    return (f"kademe: the collection at {where} was created without the collection settings of issue 18 "
            "(HNSW, optimizer, quantization): it works, but year-filtered search slows down and every index "
            "build re-indexes earlier years. kademe does not rebuild it by itself. To rebuild: ingest the same "
            "years again into a new collection (--collection NEW); the upsert stage re-upserts from the "
            "checkpoints without re-embedding.\n")
