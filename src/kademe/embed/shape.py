"""The shape of a transformer encoder, the numbers its inference memory depends on: from its ``config.json``.

``KNOWN_SHAPES`` holds the public configs of the models kademe's users name, so ``kademe plan``
answers for them without the weights on disk.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelShape:
    """Architecture numbers that drive the memory estimate (``params`` counted)."""

    name: str
    vocab_size: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    max_positions: int
    params: int


def _get(config: dict, key: str, least: int = 1) -> int:
    if key not in config:
        raise ValueError(f"config is missing required key {key!r}")
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"config key {key!r} must be an int >= {least}, got {value!r}")
    return value


def shape_from_config(config: dict, name: str = "") -> ModelShape:
    """Build a :class:`ModelShape` from a Hugging Face ``config.json`` dict.

    Args:
        config: BERT / RoBERTa / XLM-R / MPNet / E5 style config dict.
        name: Label for the shape; defaults to ``config["_name_or_path"]``.

    Returns:
        The shape, with ``params`` counted as in the module docstring.

    Raises:
        ValueError: A required key is missing (the message names it) or not a positive int.

    Example:
        >>> shape_from_config({"vocab_size": 10, "hidden_size": 4, "num_hidden_layers": 1,
        ...     "num_attention_heads": 2, "intermediate_size": 8,
        ...     "max_position_embeddings": 16}).params
        304
    """
    v, h = _get(config, "vocab_size"), _get(config, "hidden_size")
    n, heads = _get(config, "num_hidden_layers", least=0), _get(config, "num_attention_heads")  # 0: embeddings only (the benches' near-free encoder)
    i, pos = _get(config, "intermediate_size"), _get(config, "max_position_embeddings")
    types = int(config.get("type_vocab_size", 0) or 0)
    per_layer = (4 * h * h + 4 * h) + (2 * h * i + h + i) + 4 * h
    params = (v + pos + types) * h + 2 * h + n * per_layer + (h * h + h)
    params += int(config.get("relative_attention_num_buckets", 0) or 0) * heads
    label = name or str(config.get("_name_or_path", "") or "")
    return ModelShape(label, v, h, n, heads, i, pos, params)


def load_shape(model_dir: str | Path) -> ModelShape:
    """Read ``config.json`` from a model folder (or take a config file path).

    A sentence-transformers folder keeps the transformer config at the top level;
    the legacy ``0_Transformer/config.json`` layout is also accepted.

    Args:
        model_dir: Folder holding ``config.json``, or the path of the file itself.

    Returns:
        The :class:`ModelShape`, named after ``model_dir``.

    Raises:
        FileNotFoundError: No ``config.json`` was found (ValueError: bad config).

    Example:
        >>> load_shape("/models/all-MiniLM-L6-v2").hidden  # doctest: +SKIP
        384
    """
    path = Path(model_dir)
    for candidate in (path, path / "config.json", path / "0_Transformer" / "config.json"):
        if candidate.is_file():
            config = json.loads(candidate.read_text(encoding="utf-8"))
            return shape_from_config(config, name=str(model_dir))
    raise FileNotFoundError(f"no config.json in {path}")


def _cfg(v: int, h: int, n: int, heads: int, i: int, pos: int, types: int) -> dict:
    return {"vocab_size": v, "hidden_size": h, "num_hidden_layers": n, "num_attention_heads": heads,
            "intermediate_size": i, "max_position_embeddings": pos, "type_vocab_size": types}


_PUBLIC_CONFIGS = {  # values copied from each model's public config.json
    "BAAI/bge-m3": _cfg(250002, 1024, 24, 16, 4096, 8194, 1),
    "sentence-transformers/all-MiniLM-L6-v2": _cfg(30522, 384, 6, 12, 1536, 512, 2),
    "intfloat/multilingual-e5-small": _cfg(250037, 384, 12, 12, 1536, 512, 2),
    "BAAI/bge-small-en-v1.5": _cfg(30522, 384, 12, 12, 1536, 512, 2),
    "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2": _cfg(250037, 384, 12, 12, 1536, 512, 2),
}
KNOWN_SHAPES: dict[str, ModelShape] = {k: shape_from_config(c, k) for k, c in _PUBLIC_CONFIGS.items()}


def resolve_shape(model: str | Path) -> ModelShape:
    """Return a known shape by id (or unique id suffix), else :func:`load_shape`.

    Args:
        model: Hub id such as ``"BAAI/bge-m3"`` / ``"all-MiniLM-L6-v2"`` (an unknown one: its configs are
            downloaded, ``kademe.models.fetch_model``), the packaged model's names, or a folder.

    Returns:
        The matching :class:`ModelShape`.

    Example:
        >>> resolve_shape("all-MiniLM-L6-v2").layers
        6
    """
    from kademe.models import fetch_model

    key = str(model)
    if key in KNOWN_SHAPES:
        return KNOWN_SHAPES[key]
    hits = [s for k, s in KNOWN_SHAPES.items() if k.split("/")[-1] == key]
    if len(hits) == 1:
        return hits[0]
    from kademe.errors import KademeError

    try:  # a config.json itself, or a folder, the packaged model or a Hub id: its configs only (issue 30)
        return load_shape(key) if Path(key).is_file() else load_shape(fetch_model(key, weights=False))
    except (FileNotFoundError, ValueError, KeyError) as e:  # an unknown id is fetch_model's one message
        raise KademeError(f"'{model}' is not a model's config.json, nor a folder holding one ({e}).\n\n"
                          f"Pass --model with a model folder, a Hub id, or one of: {', '.join(KNOWN_SHAPES)}.") from None
