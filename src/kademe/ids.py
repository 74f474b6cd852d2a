"""The names of things that must never change between versions: point ids and text hashes."""

from __future__ import annotations

import hashlib
import uuid

# Fixed forever: point ids must not change between versions, or reruns would duplicate points.
POINT_NAMESPACE = uuid.UUID("5b0c6f4e-6b61-4465-6d65-6b6164656d65")


def text_sha(text: str) -> str:
    """The SHA-256 of a chunk's text (hex): what a vector is found again by (``kademe.embed.reuse``)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def point_id(corpus: str, doc_id: str, chunk_index: int) -> str:
    """Deterministic Qdrant point id: uuid5 of ``"{corpus}:{doc_id}:{chunk_index}"``.

    The corpus is part of the id: two corpora in one collection may both have a document
    ``2011-1``, and their points must not overwrite each other (issue 11). Ids made before the
    corpus was part of them (``"{doc_id}:{chunk_index}"``) differ; see the README's upgrade note.

    Example:
        >>> point_id("yargitay", "2011-1", 0) != point_id("danistay", "2011-1", 0)
        True
    """
    return str(uuid.uuid5(POINT_NAMESPACE, f"{corpus}:{doc_id}:{chunk_index}"))
