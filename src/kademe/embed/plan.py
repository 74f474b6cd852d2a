"""Paper estimate of GPU memory for transformer-encoder *inference* (no gradients).

Memory model (bytes; ``d`` = dtype bytes: 2 for fp16/bf16, 4 for fp32)::

    weights     = params * d
    activations = B * L * ((C_LAYER_HIDDEN + C_IO_HIDDEN) * hidden
                           + C_LAYER_INTER * intermediate) * d
    attention   = ATTN_LIVE * B * heads * L**2 * d   (eager only; 0 for sdpa/flash)
    overhead    = fixed CUDA context + cuBLAS/cuDNN workspace (default 512 MiB)
    total       = weights + activations + attention + overhead

``params`` is counted from the config: embeddings ``(vocab + positions + token
types) * hidden`` + embedding LayerNorm ``2h``; per layer ``4h^2 + 4h`` (Q, K, V,
output) + ``2hi + h + i`` (FFN) + ``4h`` (two LayerNorms); pooler ``h^2 + h``;
MPNet's shared relative-position bias ``buckets * heads`` when present.

Assumptions:

* Under ``torch.no_grad`` a layer's inputs are freed once its output exists, so
  only one layer is live. Its peak is the FFN (layer input + output plus the
  up-projection and its GELU copy, i.e. ``2h + 2i``) or attention (input, Q, K,
  V, context: ``~5h``); ``C_LAYER_HIDDEN = 4``, ``C_LAYER_INTER = 2`` covers both,
  with margin for caching-allocator fragmentation. ``C_IO_HIDDEN = 2`` adds the
  embedding output and the final ``last_hidden_state`` handed to pooling.
* Eager attention materialises ``B*heads*L*L`` scores; ``ATTN_LIVE = 2`` copies
  (raw scores + softmax) are live at once. SDPA / flash kernels are treated as
  linear in L. Not modelled: when a batch contains padding, transformers builds
  a boolean ``B*1*L*L`` SDPA mask (``B*L^2`` bytes, e.g. 0.27 GB at 4 x 8192).
* ``L`` is the *padded* length: tokenizers pad a batch to its longest member.
* ``max_positions`` is the raw ``max_position_embeddings`` (XLM-R reserves 2, so
  bge-m3's 8194 means 8192 usable tokens).
* Sizes in tables are decimal GB (1e9 bytes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

C_LAYER_HIDDEN = 4
C_LAYER_INTER = 2
C_IO_HIDDEN = 2
ATTN_LIVE = 2
DEFAULT_OVERHEAD = 512 * 2**20
GB = 10**9
_EAGER = {"eager": True, "sdpa": False, "flash": False, "flash_attention_2": False}
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


def dtype_bytes_of(dtype: int | str) -> int:
    """Bytes per number for a dtype name (``float32``, ``float16``, ``bfloat16``) or a byte count.

    Every ``dtype_bytes`` parameter below takes either, so a planner passes the dtype the encoder
    will run in (``kademe.embed.model.resolve_dtype``).

    Example:
        >>> dtype_bytes_of("bfloat16"), dtype_bytes_of("float32"), dtype_bytes_of(2)
        (2, 4, 2)
    """
    if isinstance(dtype, str):
        if dtype not in DTYPE_BYTES:
            raise ValueError(f"dtype must be one of {sorted(DTYPE_BYTES)} or a byte count, got {dtype!r}")
        return DTYPE_BYTES[dtype]
    return dtype


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


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated bytes per component for one forward pass."""

    weights: int
    activations: int
    attention: int
    overhead: int

    @property
    def total(self) -> int:
        """Sum of all components in bytes."""
        return self.weights + self.activations + self.attention + self.overhead


def _get(config: dict, key: str) -> int:
    if key not in config:
        raise ValueError(f"config is missing required key {key!r}")
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"config key {key!r} must be a positive int, got {value!r}")
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
    n, heads = _get(config, "num_hidden_layers"), _get(config, "num_attention_heads")
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
    if Path(key).is_file():  # a config.json itself
        return load_shape(key)
    return load_shape(fetch_model(key, weights=False))  # a folder, the packaged model, or a Hub id: its configs only (issue 30)


def estimate(shape: ModelShape, batch: int, seq_len: int, dtype_bytes: int | str = 2,
             attention: str = "sdpa", overhead: int = DEFAULT_OVERHEAD) -> MemoryEstimate:
    """Estimate inference memory for ``batch`` sequences padded to ``seq_len``.

    Args:
        shape: Model architecture.
        batch: Sequences per forward pass (>= 1).
        seq_len: Padded tokens per sequence (>= 1).
        dtype_bytes: 2 for fp16/bf16, 4 for fp32, or the dtype's name (``"bfloat16"``).
        attention: ``"eager"`` (adds the L^2 term), ``"sdpa"`` or ``"flash"``.
        overhead: Fixed CUDA context/workspace bytes.

    Returns:
        A :class:`MemoryEstimate` in bytes.

    Example:
        >>> round(estimate(KNOWN_SHAPES["BAAI/bge-m3"], 1, 512).weights / 1e9, 2)
        1.14
    """
    dtype_bytes = dtype_bytes_of(dtype_bytes)
    if batch < 1 or seq_len < 1 or dtype_bytes < 1 or overhead < 0:
        raise ValueError("batch, seq_len and dtype_bytes must be >= 1 and overhead >= 0")
    if attention not in _EAGER:
        raise ValueError(f"attention must be one of {sorted(_EAGER)}, got {attention!r}")
    per_token = (C_LAYER_HIDDEN + C_IO_HIDDEN) * shape.hidden + C_LAYER_INTER * shape.intermediate
    scores = ATTN_LIVE * batch * shape.heads * seq_len * seq_len * dtype_bytes if _EAGER[attention] else 0
    return MemoryEstimate(weights=shape.params * dtype_bytes,
                          activations=batch * seq_len * per_token * dtype_bytes,
                          attention=scores, overhead=overhead)


def bytes_per_token(shape: ModelShape, seq_len: int, dtype_bytes: int | str = 2,
                    attention: str = "sdpa") -> float:
    """Marginal (activations + attention) bytes per padded token at ``seq_len``.

    Constant in ``seq_len`` for sdpa/flash; grows linearly with it for eager.

    Args:
        shape, dtype_bytes, attention: As in :func:`estimate`.
        seq_len: Padded length of the sequences in the batch.

    Returns:
        Bytes per token; times ``B * seq_len`` gives a batch's variable cost.

    Example:
        >>> bytes_per_token(KNOWN_SHAPES["BAAI/bge-m3"], 512)
        28672.0
    """
    one = estimate(shape, 1, seq_len, dtype_bytes, attention, overhead=0)
    return (one.activations + one.attention) / seq_len


def max_token_budget(shape: ModelShape, free_bytes: int, seq_len: int, dtype_bytes: int | str = 2,
                     attention: str = "sdpa", safety: float = 0.8,
                     overhead: int = DEFAULT_OVERHEAD) -> int:
    """Largest ``B * seq_len`` whose estimate fits in ``safety * free_bytes``.

    Weights and overhead are paid first; the rest buys whole sequences.

    Args:
        shape, dtype_bytes, attention, overhead: As in :func:`estimate`.
        free_bytes: Free GPU memory before loading the model.
        seq_len: Padded length the batches will use.
        safety: Fraction of ``free_bytes`` that may be used, in (0, 1].

    Returns:
        Padded-token budget, a multiple of ``seq_len``; 0 if even ``B = 1`` fails.

    Example:
        >>> max_token_budget(KNOWN_SHAPES["BAAI/bge-m3"], 10 * 2**30, 8192)  # 29 sequences
        237568
    """
    if not 0 < safety <= 1:
        raise ValueError(f"safety must be in (0, 1], got {safety}")
    one = estimate(shape, 1, seq_len, dtype_bytes, attention, overhead)
    per_seq = one.activations + one.attention
    room = safety * free_bytes - one.weights - one.overhead
    return int(room // per_seq) * seq_len if room >= per_seq else 0


def plan_table(shape: ModelShape, free_bytes: int | None,
               batch_sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32),
               lengths: tuple[int, ...] = (128, 512, 2048, 8192), dtype_bytes: int | str = 2,
               attention: str = "sdpa") -> list[dict]:
    """Estimate every (length, batch) pair; lengths above ``max_positions`` are skipped.

    Args:
        shape, dtype_bytes, attention: As in :func:`estimate`.
        free_bytes: Free GPU memory; ``fits`` is ``total <= free_bytes`` (no safety
            factor), or ``None`` when this is ``None``.
        batch_sizes, lengths: Batch sizes and padded lengths to tabulate.

    Returns:
        Rows ``{"batch", "seq_len", "weights_gb", "activations_gb", "attention_gb",
        "total_gb", "fits"}`` ordered by length then batch; sizes in GB (1e9 bytes).

    Example:
        >>> len(plan_table(KNOWN_SHAPES["sentence-transformers/all-MiniLM-L6-v2"], None))
        12
    """
    rows = []
    for length in (n for n in lengths if n <= shape.max_positions):
        for batch in batch_sizes:
            est = estimate(shape, batch, length, dtype_bytes, attention)
            gb = {f"{k}_gb": round(getattr(est, k) / GB, 3)
                  for k in ("weights", "activations", "attention", "total")}
            fits = None if free_bytes is None else est.total <= free_bytes
            rows.append({"batch": batch, "seq_len": length, **gb, "fits": fits})
    return rows


def plan_model(model: str, gpu_mem_gb: float | None = None, max_tokens: int | None = None,
               attention: str = "sdpa", dtype: str = "auto") -> dict:
    """The ``kademe plan`` report: the memory table of ``model`` and a token budget for the free memory.

    Args:
        model: a model path, a cached id, or a known public id (``resolve_shape``).
        gpu_mem_gb: free GPU memory in GB; default: what this machine's card measures (None without one).
        max_tokens: longest sequence to plan for; default: the model's limit.
        attention: ``sdpa`` or ``eager``.
        dtype: ``auto`` is the precision the encoder would use on this machine's card
            (``kademe.embed.model.resolve_dtype``: bfloat16/float16 on CUDA, float32 without a card);
            an explicit dtype is planned as given.

    Returns:
        ``{"model", "params", "free_bytes", "max_tokens", "attention", "dtype", "token_budget", "rows"}``;
        ``token_budget`` is None without free memory.
    """
    from kademe.embed.card import choose_card
    from kademe.embed.model import resolve_dtype

    shape = resolve_shape(model)
    card = choose_card()
    free = int(gpu_mem_gb * 1e9) if gpu_mem_gb else (card.free() if card.present() else None)
    length = min(max_tokens or shape.max_positions - 2, shape.max_positions)
    lengths = sorted({n for n in (128, 512, 2048, 8192) if n <= length} | {length})
    if dtype == "auto":
        dtype = resolve_dtype("auto", card.device if card.present() else "cpu")
    rows = plan_table(shape, free, lengths=tuple(lengths), attention=attention, dtype_bytes=dtype)
    budget = max_token_budget(shape, free, length, attention=attention, dtype_bytes=dtype) if free else None
    return {"model": model, "params": shape.params, "free_bytes": free, "max_tokens": length,
            "attention": attention, "dtype": dtype, "token_budget": budget, "rows": rows}


_COLUMNS = ("batch", "seq_len", "weights_gb", "activations_gb", "attention_gb", "total_gb", "fits")


def format_table(rows: list[dict]) -> str:
    """Render :func:`plan_table` rows as a fixed-width terminal table.

    Args:
        rows: Rows as returned by :func:`plan_table`.

    Returns:
        Header, rule and one line per row; ``fits`` shows ``yes`` / ``NO`` / ``?``.

    Example:
        >>> print(format_table([]).splitlines()[0].split())
        ['batch', 'seq_len', 'weights_gb', 'activations_gb', 'attention_gb', 'total_gb', 'fits']
    """
    def cell(key: str, value: object) -> str:
        if key == "fits":
            return "?" if value is None else ("yes" if value else "NO")
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    widths = [max(len(c), 6) for c in _COLUMNS]
    table = [list(_COLUMNS), ["-" * w for w in widths]]
    table += [[cell(c, row.get(c)) for c in _COLUMNS] for row in rows]
    return "\n".join("  ".join(v.rjust(w) for v, w in zip(line, widths)) for line in table)
