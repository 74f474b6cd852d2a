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

from dataclasses import dataclass

from kademe.embed.shape import ModelShape

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
