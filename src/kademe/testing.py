"""Instruments for tests and benchmarks that need no network: a smaller model derived offline, real chunks, a GPU memory hog.

The fallback model of the OOM ladder must be a real model with its own vector space. We derive
one from the packaged all-MiniLM-L6-v2 by keeping its first layers, so tests and benchmarks get
a genuine, smaller encoder without a model hub.
"""

from __future__ import annotations

from pathlib import Path

from kademe.embed.model import resolve_model
from kademe.settings import DEFAULT_MODEL


def derive_small_model(dest: str | Path, layers: int = 3, base: str = DEFAULT_MODEL) -> Path:
    """Save a copy of ``base`` that keeps only its first ``layers`` transformer layers.

    Args:
        dest: folder to write (reused when it already holds a model).
        layers: layers to keep.
        base: the model to cut down (offline id or path).

    Returns:
        The folder, loadable with ``--model`` / ``--fallback-model``.

    Example:
        >>> derive_small_model("/tmp/minilm-3l")
        PosixPath('/tmp/minilm-3l')
    """
    dest = Path(dest)
    if (dest / "modules.json").exists():
        return dest
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(resolve_model(base)), device="cpu", local_files_only=True)
    bert = model[0].auto_model
    bert.encoder.layer = bert.encoder.layer[:layers]
    bert.config.num_hidden_layers = layers
    tmp = dest.with_name(dest.name + ".tmp")
    model.save(str(tmp))
    tmp.rename(dest)
    return dest


def sample_chunks(n: int, model: str = DEFAULT_MODEL, seed: int = 7) -> tuple[list[str], list[int]]:
    """Up to ``n`` real chunks of sample decisions and their token counts, as the chunk stage cuts them.

    Mostly full-length chunks (the model's maximum, 256 for MiniLM), and the shorter tails.
    """
    from kademe.chunk import split_texts
    from kademe.embed.model import load_tokenizer, max_seq_length
    from kademe.sample import iter_decisions

    model_dir = resolve_model(model)
    tok, max_len = load_tokenizer(model_dir), max_seq_length(model_dir)
    texts, counts = [], []
    for doc in iter_decisions(2021, max(n, 400), seed=seed):
        for text, k in split_texts([doc["text"]], tok, max_len, 32)[0]:
            texts.append(text)
            counts.append(k)
        if len(texts) >= n:
            break
    return texts[:n], counts[:n]


def hold_gpu_memory(leave_bytes: int):
    """A memory hog: a CUDA tensor holding all but ``leave_bytes`` of what this process could allocate.

    To ``torch.cuda.mem_get_info`` it looks like another job on a shared card. Drop the returned
    tensor (and empty the cache) to give the memory back. Needs a real CUDA device.
    """
    import torch

    from kademe.embed.oom import free_memory, release_memory

    release_memory()
    take = max(0, (free_memory() or 0) - leave_bytes)
    for _ in range(16):  # the driver's free figure is not always one allocatable block
        try:
            return torch.empty(take, dtype=torch.uint8, device="cuda")
        except torch.cuda.OutOfMemoryError:
            take -= 64 << 20
    raise RuntimeError(f"could not place a memory hog leaving {leave_bytes} bytes free")
