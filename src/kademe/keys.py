"""Content keys: SHA-256 digests that name checkpoints (a stage's key chains its input's key and its settings)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def chain_key(*parts: str) -> str:
    """Hash several keys or fingerprints into one 64-character hex key."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def file_digest(path: Path, chunk: int = 4 * 2**20) -> str:
    """SHA-256 of a file's bytes, read in 4 MiB pieces."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
