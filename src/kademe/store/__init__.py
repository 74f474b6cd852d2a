"""The store seam: ``open_store(settings)`` picks the engine once, from the settings.

No ``--qdrant-url``: Qdrant Edge, the Qdrant engine in-process, at ``<workdir>/qdrant/<collection>``
(``kademe.store.edge``). With one: a Qdrant server through qdrant-client (``kademe.store.server``).
Callers get a ``Store`` and never learn which engine answered.
"""

from __future__ import annotations

from pathlib import Path

from kademe.errors import KademeError
from kademe.settings import Settings
from kademe.store.base import (
    SPARSE,
    CollectionInfo,
    Hit,
    PointBatch,
    Segment,
    Store,
    StoreUnavailable,
    Where,
    call,
    is_transient,
)

__all__ = ["SPARSE", "CollectionInfo", "Hit", "PointBatch", "Segment", "Store", "StoreUnavailable",
           "Where", "call", "is_transient", "open_store"]


def open_store(s: Settings) -> Store:
    """The store for ``s.collection``: a server at ``s.qdrant_url``, else Qdrant Edge under the workdir.

    Use it as a context manager; it closes on exit.

    Example:
        >>> with open_store(Settings(workdir="work", collection="kararlar")) as store:
        ...     store.info()
    """
    if s.qdrant_url:
        from kademe.store.server import ServerStore

        return ServerStore.connect(s.qdrant_url, s.collection, api_key=s.api_key(), grpc=s.qdrant_grpc)
    from kademe.store.edge import EdgeStore
    from kademe.storage import is_remote

    if is_remote(s.workdir):  # Qdrant Edge lives on one host's disk (issue 20)
        raise KademeError(f"--workdir {s.workdir} is remote; pass --qdrant-url: Qdrant Edge keeps the collection on this host's disk.")
    return EdgeStore.open(Path(s.workdir) / "qdrant" / s.collection)
