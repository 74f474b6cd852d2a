"""A year's chunks as the stages after the chunk stage read them: finished (``ChunkResult``) or still being cut (``ChunkStream``).

The chunk stage writes its checkpoint as shards of ``shard_size`` chunks (issue 32), and hands each
to the lexical and embed stages as soon as it is committed: the encoder starts on the first shard
while the rest of the year is still being tokenized. Both objects answer the same questions:

  * ``key`` — the chunk checkpoint's key (known before the first chunk: the stages after it key on it);
  * ``columns(batch_size, columns, arrow)`` — the chunks in batches of exactly ``batch_size`` rows,
    column by column, whatever the shard size the checkpoint was written with (and a checkpoint of
    one file, from before issue 32, alike);
  * ``count`` — the year's chunks (a stream knows it once its producer is done);
  * ``expected()`` — the count, or while a stream runs its estimate (for progress displays);
  * ``finished()`` — the committed ``ChunkResult`` (a stream's once its producer is done).

``ChunkResult`` also gives the whole year at once: ``table(columns)``, ``point_ids()``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from kademe import interrupt
from kademe.parquet_io import iter_columns, iter_parquet


@dataclass(frozen=True)
class ChunkResult:
    """The chunks of one year: the committed chunk checkpoint's parts (shards, or one file from before issue 32)."""

    key: str
    files: tuple[Path, ...]
    count: int
    cached: bool
    seconds: float = 0.0

    def columns(self, batch_size: int, columns: list[str] | None = None, arrow: tuple[str, ...] = ()) -> Iterator[dict[str, list]]:
        """The chunks in batches of exactly ``batch_size`` (the last may be shorter), ``{column: values}``."""
        return iter_columns(self.files, batch_size=batch_size, columns=columns, arrow=arrow)

    def rows(self, batch_size: int, columns: list[str] | None = None) -> Iterator[list[dict]]:
        """The chunks in batches of exactly ``batch_size``, a dict a row."""
        return iter_parquet(self.files, batch_size=batch_size, columns=columns)

    def names(self) -> list[str]:
        """The chunk files' column names (a checkpoint from before issue 22 has no ``token_ids`` nor ``text_sha``)."""
        return pq.read_schema(self.files[0]).names if self.files else []

    def table(self, columns: list[str] | None = None) -> pa.Table:
        """The whole year's chunks as one table (tests, benchmarks, the prune's id list)."""
        tables = [pq.read_table(f, columns=columns) for f in self.files]
        return pa.concat_tables(tables) if tables else pa.table({})

    def point_ids(self) -> set[str]:
        """Every chunk's point id."""
        return set(self.table(["point_id"]).column("point_id").to_pylist()) if self.files else set()

    def expected(self) -> int:
        return self.count

    def finished(self) -> ChunkResult:
        return self


class ChunkStream:
    """The chunk stage's shards as they are committed: the producer ``add``s each shard's file, then ``close``s.

    Readers (the lexical and embed stages, each in its own thread) iterate ``columns(...)``: it
    yields a batch as soon as its rows have landed and ends when the producer is done. A producer
    that fails makes every reader raise. Nothing is held in memory but the file names: the shards
    are on disk (or in the workdir's cache), so a slow reader never holds the chunk stage back.

    Example:
        >>> stream = ChunkStream(key)
        >>> threading.Thread(target=chunk_texts, args=(clean, year, s, stream)).start()
        >>> for cols in stream.columns(512, ["point_id", "text"]): ...
        >>> stream.count
    """

    def __init__(self, key: str):
        self.key = key
        self.count: int | None = None
        self.cached = False
        self._files: list[Path] = []
        self._rows = 0
        self._share = 0.0  # the share of the year's documents cut so far (for ``expected``)
        self._done = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self.result: ChunkResult | None = None

    # -- the producer -------------------------------------------------------------------------
    def add(self, i: int, path: Path, rows: int, share: float = 0.0) -> None:
        """Shard ``i``'s file ``path`` (``rows`` chunks) is committed; ``share`` of the year's documents are cut.

        Shards come in order; one already announced (a retried producer starts again) is ignored.
        """
        with self._cond:
            if i < len(self._files):
                return
            self._files.append(path)
            self._rows += rows
            self._share = share
            self._cond.notify_all()

    def close(self, result: ChunkResult | None = None, error: BaseException | None = None) -> None:
        """The producer is done (``result``: the committed checkpoint) or failed with ``error``."""
        with self._cond:
            self._done, self._error, self.result = True, error, result
            if result is not None:
                self.count, self.cached = result.count, result.cached
            self._cond.notify_all()

    # -- readers ------------------------------------------------------------------------------
    def files(self) -> Iterator[Path]:
        """Each shard's file as it lands, in order; raises when the producer failed."""
        i = 0
        while True:
            with self._cond:
                self._cond.wait_for(lambda: i < len(self._files) or self._done)
                if self._error is not None:
                    self._raise()
                if i >= len(self._files):
                    return
                path = self._files[i]
            yield path
            i += 1

    def columns(self, batch_size: int, columns: list[str] | None = None, arrow: tuple[str, ...] = ()) -> Iterator[dict[str, list]]:
        """``ChunkResult.columns``, each batch handed on as soon as its rows have landed."""
        return iter_columns(self.files(), batch_size=batch_size, columns=columns, arrow=arrow)

    def names(self) -> list[str]:
        """The column names of the first shard (waits for it); none when the year has no chunks."""
        first = next(self.files(), None)
        return pq.read_schema(first).names if first is not None else []

    def finished(self) -> ChunkResult:
        """The committed checkpoint, once the producer is done; raises when it failed."""
        with self._cond:
            self._cond.wait_for(lambda: self._done)
            if self._error is not None:
                self._raise()
            return self.result  # type: ignore[return-value]

    def _raise(self) -> None:
        """The producer's failure, for a reader: a stop request stays ``Interrupted`` (the reader's task ends Cancelled)."""
        if isinstance(self._error, interrupt.Interrupted):
            raise interrupt.Interrupted() from self._error
        raise RuntimeError(f"the chunk stage failed: {self._error}") from self._error

    def expected(self) -> int:
        """The year's chunks once known; until then the chunks so far scaled by the share of documents cut."""
        with self._cond:
            if self.count is not None:
                return self.count
            return max(self._rows, round(self._rows / self._share) if self._share > 0 else self._rows)
