"""``kademe plan``: a model's inference memory as a table, and a token budget for the free memory.

The memory model is ``kademe.embed.memory``'s; model shapes come from ``kademe.embed.shape``.
"""

from __future__ import annotations

from kademe.embed.memory import GB, estimate, max_token_budget
from kademe.embed.shape import ModelShape, resolve_shape


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
    from kademe.errors import KademeError

    if gpu_mem_gb is not None and gpu_mem_gb <= 0:
        raise KademeError(f"--gpu-mem {gpu_mem_gb:g} is not a memory size.\n\nGive the free GPU memory in GB, e.g. --gpu-mem 12.")
    if max_tokens is not None and max_tokens <= 0:
        raise KademeError(f"--max-tokens {max_tokens} is not a length.\n\nGive the longest sequence to plan for, e.g. --max-tokens 8192.")
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
