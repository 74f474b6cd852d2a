"""Instruments for tests and benchmarks that need no network: a smaller model derived offline, real chunks, a GPU memory hog.

The fallback model of the OOM ladder must be a real model with its own vector space. We derive
one from the packaged all-MiniLM-L6-v2 by keeping its first layers, so tests and benchmarks get
a genuine, smaller encoder without a model hub.
"""

from __future__ import annotations

from pathlib import Path

from kademe.embed.model import embedding_dims  # noqa: F401 - embedding_dims for the doctest
from kademe.models import resolve_model
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
    return _save(_first_layers(base, layers), dest)


def _first_layers(base: str, layers: int):
    """``base`` as a SentenceTransformer on the CPU, cut to its first ``layers`` transformer layers."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(resolve_model(base)), device="cpu", local_files_only=True)
    bert = model[0].auto_model
    bert.encoder.layer = bert.encoder.layer[:layers]
    bert.config.num_hidden_layers = layers
    return model


def _save(model, dest: Path) -> Path:
    """Save under a temporary name, then rename: a folder with modules.json is always whole."""
    tmp = dest.with_name(dest.name + ".tmp")
    model.save(str(tmp))
    tmp.rename(dest)
    return dest


def derive_wide_model(dest: str | Path, dims: int = 1024, layers: int = 1, base: str = DEFAULT_MODEL, seed: int = 0) -> Path:
    """Save a model with ``dims``-wide output: ``base``'s first ``layers`` layers, its pooling, a seeded Dense projection, Normalize.

    It tokenizes and chunks like the packaged MiniLM but hands the store vectors as wide as bge-m3's,
    so benchmarks measure the model-free work (Arrow, Parquet, upserts, index) at 1024 dimensions
    while the encoder itself stays cheap on a CPU.

    Args:
        dest: folder to write (reused when it already holds a model).
        dims: output width.
        layers: transformer layers kept.
        base: the model to start from (offline id or path).
        seed: seeds the projection's random weights.

    Returns:
        The folder, loadable with ``--model``.

    Example:
        >>> embedding_dims(derive_wide_model("/tmp/minilm-wide"))  # doctest: +SKIP
        1024
    """
    dest = Path(dest)
    if (dest / "modules.json").exists():
        return dest
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize

    model = _first_layers(base, layers)
    bert = model[0].auto_model
    torch.manual_seed(seed)
    width = bert.config.hidden_size
    dense = Dense(width, dims, bias=False, activation_function=torch.nn.Identity())
    return _save(SentenceTransformer(modules=[model[0], model[1], dense, Normalize()], device="cpu"), dest)


def derive_bge_m3_standin(dest: str | Path, seed: int = 0) -> Path:
    """Save a random-weight encoder with bge-m3's encoder shape, for GPU memory and speed runs without the real weights.

    A BERT config with hidden 1024, 24 layers, 16 heads, intermediate 4096, max positions 8194 and
    the packaged tokenizer's vocabulary (30,522: bge-m3's 250,002-row embedding table is left out,
    which costs no FLOPs and ~0.9 GB of weights), random weights, the packaged tokenizer, CLS
    pooling and Normalize: the memory and FLOPs per token of bge-m3's encoder. Built on the fly
    (~1.4 GB, seconds); do not commit it.

    Args:
        dest: folder to write (reused when it already holds a model).
        seed: seeds the random weights.

    Returns:
        The folder, loadable with ``--model`` (max_seq_length 8192).
    """
    import json

    dest = Path(dest)
    if (dest / "modules.json").exists():
        return dest
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    base = resolve_model(DEFAULT_MODEL)
    tok = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
    config = BertConfig(vocab_size=len(tok), hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                        intermediate_size=4096, max_position_embeddings=8194, type_vocab_size=1)
    torch.manual_seed(seed)
    tmp = dest.with_name(dest.name + ".tmp")
    BertModel(config).save_pretrained(str(tmp))
    tok.model_max_length = 8192
    tok.save_pretrained(str(tmp))
    (tmp / "1_Pooling").mkdir()
    (tmp / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 1024, "pooling_mode_cls_token": True}))
    (tmp / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 8192, "do_lower_case": False}))
    modules = [("", "Transformer"), ("1_Pooling", "Pooling"), ("2_Normalize", "Normalize")]
    (tmp / "modules.json").write_text(json.dumps([
        {"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"} for i, (path, kind) in enumerate(modules)
    ]))
    tmp.rename(dest)
    return dest


def sample_chunks(n: int, model: str = DEFAULT_MODEL, seed: int = 7) -> tuple[list[str], list[int]]:
    """Up to ``n`` real chunks of sample decisions and their token counts, as the chunk stage cuts them.

    Mostly full-length chunks (the model's maximum, 256 for MiniLM), and the shorter tails.
    """
    from kademe.models import load_tokenizer, max_seq_length
    from kademe.split import split_texts
    from kademe.testing.sample import iter_decisions

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
