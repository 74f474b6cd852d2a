"""The store seam: ``open_store(settings)`` picks the engine once, from the settings.

No ``--qdrant-url``: Qdrant Edge, the Qdrant engine in-process, at ``<workdir>/qdrant/<collection>``
(``kademe.store.edge``). With one: a Qdrant server through qdrant-client (``kademe.store.server``).
Callers get a ``Store`` and never learn which engine answered. ``locate_store`` says where a
collection lives without opening anything, ``list_collections`` which collections are there.
"""

from __future__ import annotations

from pathlib import Path

from kademe.errors import KademeError
from kademe.settings import Settings
from kademe.store.base import (
    SPARSE,
    CollectionInfo,
    Hit,
    Location,
    PointBatch,
    Segment,
    Store,
    StoreBusy,
    StoreUnavailable,
    Where,
    call,
    is_transient,
)

__all__ = ["SPARSE", "CollectionInfo", "Hit", "Location", "PointBatch", "Segment", "Store", "StoreBusy",
           "StoreUnavailable", "Where", "call", "is_transient", "list_collections", "locate_store", "missing_collection",
           "open_store"]


def missing_collection(s: Settings) -> KademeError:
    """The one message for a collection that is not there (``search``, ``verify``, ``upgrade``)."""
    return KademeError(f"Collection '{s.collection}' does not exist"
                       + (f" at {s.qdrant_url}" if s.qdrant_url else f" under {s.workdir}/qdrant") + ".\n\n"
                       "Ingest first (kademe ingest --source ... --years ...), or pass the --collection and --workdir "
                       "(or --qdrant-url) it was ingested with.")


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

    return EdgeStore.open(_edge_root(s) / s.collection)


def locate_store(s: Settings) -> Location:
    """Where ``s.collection`` lives, and why nothing is there to open when nothing is (nothing is created).

    Example:
        >>> locate_store(Settings(workdir="work", collection="kararlar"))
        Location(backend='edge', where='work/qdrant/kararlar', missing="no collection 'kararlar' at 'work/qdrant/kararlar'")
    """
    if s.qdrant_url:
        from kademe.store.server import ServerStore

        return ServerStore.locate(s.qdrant_url)
    from kademe.storage import is_remote
    from kademe.store.edge import EdgeStore

    if is_remote(s.workdir):
        return Location("edge", f"{s.workdir}/qdrant/{s.collection}",
                        "no Qdrant Edge store in a remote --workdir (pass --qdrant-url)")
    return EdgeStore.locate(_edge_root(s) / s.collection, s.collection)


def list_collections(s: Settings) -> Location:
    """Where the store of ``s`` keeps its collections, and their names, sorted, in ``collections``.

    Edge: the folders under ``<workdir>/qdrant`` that hold a shard; a server: all of its own.

    Raises:
        StoreUnavailable: the server did not answer.
        StoreBusy: another process holds a local-mode folder.
    """
    if s.qdrant_url:
        from kademe.store.server import ServerStore

        location = ServerStore.locate(s.qdrant_url)
        if location.missing:
            return location
        with ServerStore.connect(s.qdrant_url, s.collection, api_key=s.api_key(), grpc=s.qdrant_grpc) as store:
            return Location("server", s.qdrant_url, collections=tuple(store.collections()))
    from kademe.storage import is_remote
    from kademe.store.edge import EdgeStore

    if is_remote(s.workdir):
        return Location("edge", f"{s.workdir}/qdrant", "no Qdrant Edge store in a remote --workdir (pass --qdrant-url)")
    root = _edge_root(s)
    return Location("edge", str(root), collections=tuple(EdgeStore.collections(root)))


def _edge_root(s: Settings) -> Path:
    """``<workdir>/qdrant``, where Qdrant Edge keeps one folder per collection (a local workdir only)."""
    from kademe.storage import is_remote

    if is_remote(s.workdir):  # Qdrant Edge lives on one host's disk (issue 20)
        raise KademeError(f"--workdir {s.workdir} is remote; pass --qdrant-url: Qdrant Edge keeps the collection on this host's disk.")
    return Path(s.workdir) / "qdrant"
