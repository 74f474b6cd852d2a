"""What a model folder holds, as one digest: the model identity in chunk and embed fingerprints.

A model *name* says nothing when a folder is updated in place (a new snapshot copied over, a
fine-tune saved to the same path), and two paths to the same files are the same model. The
identity hashes what decides the output: the content of the small config and tokenizer files, and
the name and size of every other file (weights are gigabytes; hashing them on every run would cost
more than it protects). For a Hugging Face cache snapshot the revision is in the folder name, and
the files behind it are the same either way.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

SMALL = 2 * 2**20  # files up to this size are hashed by content (configs, vocabularies, tokenizers)
SKIP = {".git", "__pycache__", ".cache"}


def model_identity(model_dir: Path) -> str:
    """A 64-character digest of the model folder's configs (content) and other files (name, size).

    Example:
        >>> model_identity(resolve_model("sentence-transformers/all-MiniLM-L6-v2"))[:12]
        '…'
    """
    model_dir = Path(model_dir).resolve()
    return _identity(model_dir, _stamp(model_dir))


def _stamp(model_dir: Path) -> tuple:
    """What changes when files are added, replaced or rewritten: names, sizes and mtimes."""
    return tuple(sorted((str(p.relative_to(model_dir)), st.st_size, st.st_mtime_ns) for p, st in _files(model_dir)))


def _files(model_dir: Path):
    for root, dirs, names in os.walk(model_dir, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d not in SKIP)
        for name in sorted(names):
            path = Path(root) / name
            try:
                yield path, path.stat()
            except FileNotFoundError:  # a dangling link in a cache folder
                continue


@functools.lru_cache(maxsize=16)
def _identity(model_dir: Path, stamp: tuple) -> str:
    h = hashlib.sha256()
    for rel, size, _mtime in stamp:
        h.update(f"{rel}\x1f{size}\x1e".encode())
        if size <= SMALL and not rel.endswith((".bin", ".safetensors", ".pt", ".onnx", ".h5", ".msgpack")):
            h.update(hashlib.sha256((model_dir / rel).read_bytes()).digest())
    return h.hexdigest()
