"""Parquet in and out of the checkpoints: a streaming writer, exact-size batch readers, packed binary columns."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


class ParquetSink:
    """Stream record batches into one Parquet file; ``publish(path, rows)`` runs when it closes whole.

    A failed block deletes the file instead (nothing names it).

    Example:
        >>> with ParquetSink(Path("out.parquet"), schema, publish) as sink:
        ...     sink.write(rows)        # a list of dicts matching the schema
    """

    def __init__(self, path: Path, schema: pa.Schema, publish: Callable[[Path, int], None]):
        self.path, self.schema, self.rows, self._publish = path, schema, 0, publish
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(path, schema, compression="zstd")

    def write(self, rows: list[dict]) -> None:
        if rows:
            self._writer.write_table(pa.Table.from_pylist(rows, schema=self.schema))
            self.rows += len(rows)

    def write_table(self, table: pa.Table) -> None:
        """Write rows that are already a table of the sink's schema (rows carried over from another file)."""
        if table.num_rows:
            self._writer.write_table(table)
            self.rows += table.num_rows

    def __enter__(self) -> ParquetSink:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._writer.close()
        if exc_type is None:
            self._publish(self.path, self.rows)
        else:
            self.path.unlink(missing_ok=True)


def parquet_rows(path: Path) -> int | None:
    """Row count from a Parquet footer, or None when the file is missing or torn."""
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (FileNotFoundError, OSError, pa.ArrowException):
        return None


def _exact_batches(path: Path | Iterable[Path], batch_size: int, columns: list[str] | None) -> Iterator[pa.Table]:
    """Tables of exactly ``batch_size`` rows (the last may be shorter), whatever the file's row groups.

    Batches do not follow row groups, so batch ``i`` always holds rows ``i*batch_size`` onwards:
    shard numbers stay stable however the file was written. ``path`` may be several files, read as
    one in their order (a sharded chunk checkpoint, issue 32), and an iterator that yields them as
    they are written: a batch is handed on as soon as its rows are there. Memory stays bounded by a batch.
    """
    pending: list[pa.Table] = []
    held = 0
    for one in ([path] if isinstance(path, (str, Path)) else path):
        for batch in pq.ParquetFile(one).iter_batches(batch_size=batch_size, columns=columns):
            pending.append(pa.Table.from_batches([batch]))
            held += batch.num_rows
            while held >= batch_size:
                table = pa.concat_tables(pending) if len(pending) > 1 else pending[0]
                yield table.slice(0, batch_size)
                rest = table.slice(batch_size)
                pending, held = ([rest] if rest.num_rows else []), rest.num_rows
    if held:
        yield pa.concat_tables(pending) if len(pending) > 1 else pending[0]


def iter_parquet(path: Path | Iterable[Path], batch_size: int = 1024, columns: list[str] | None = None) -> Iterator[list[dict]]:
    """Read a Parquet file back as lists of exactly ``batch_size`` dicts (the last may be shorter; see ``_exact_batches``)."""
    for table in _exact_batches(path, batch_size, columns):
        yield table.to_pylist()


def iter_columns(path: Path | Iterable[Path], batch_size: int = 1024, columns: list[str] | None = None,
                 arrow: tuple[str, ...] = ()) -> Iterator[dict[str, list]]:
    """``iter_parquet``'s batches (the same rows in each), column by column: ``{name: [values]}``.

    No dict per row: the embed and lexical stages read every chunk of a year this way and want its
    columns as lists anyway (issue 22). Columns named in ``arrow`` stay pyarrow arrays (no Python
    object per value: the embed stage reads the token ids' buffers in place).
    """
    for table in _exact_batches(path, batch_size, columns):
        yield {name: table.column(name) if name in arrow else table.column(name).to_pylist() for name in table.column_names}


def binary_values(column, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """A binary column whose values are packed numbers (a shard's float32 vectors, a chunk's int32 token
    ids) as one numpy array over its buffer, nothing copied, and N+1 offsets into it, in numbers.

    ``dtype`` is a numpy dtype string (``"<f4"``, ``"<i4"``); nulls are not looked at (see ``is_valid``).
    """
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not (pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type)):
        raise TypeError(f"packed {dtype} values are a binary column, not {arr.type}")
    _, offset_buffer, data = arr.buffers()
    width = np.int64 if pa.types.is_large_binary(arr.type) else np.int32
    offsets = np.frombuffer(offset_buffer, dtype=width)[arr.offset:arr.offset + len(arr) + 1].astype(np.int64)
    flat = np.frombuffer(data, dtype=dtype) if data is not None else np.zeros(0, dtype)
    return flat, offsets // flat.itemsize
