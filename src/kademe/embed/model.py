"""Load and run the encoder: one SentenceTransformer per process, device and dtype; its precision and width.

Finding the model folder and reading its configs is ``kademe.models``' job; loading weights is this one's.
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from kademe.errors import KademeError
from kademe.models import pooling_modes, read_config

if TYPE_CHECKING:
    import numpy as np

DTYPES = ("float32", "float16", "bfloat16")
_load_lock = threading.Lock()
_encoders: dict[tuple[Path, str, str], object] = {}  # (model folder, device, dtype) -> SentenceTransformer


def resolve_dtype(setting: str, device: str) -> str:
    """The precision an encoder on ``device`` runs in for the ``--dtype`` setting.

    ``auto`` is ``bfloat16`` on a CUDA card that supports it, else ``float16``, and ``float32`` on
    the CPU (the ladder passes ``cpu`` for its GPU rungs under ``KADEME_FAULT_FAKE_CUDA``). An
    explicit dtype is honoured; ``float16`` on the CPU only where this PyTorch computes it (it is
    several times slower there than ``float32``; ``bfloat16`` is the half precision for CPUs).

    Args:
        setting: ``auto``, ``float32``, ``float16`` or ``bfloat16``.
        device: a torch device string (``cpu``, ``cuda``, ``cuda:1``).

    Returns:
        ``float32``, ``float16`` or ``bfloat16``.

    Raises:
        KademeError: an unknown setting, or ``float16`` on a CPU that cannot compute in it.

    Example:
        >>> resolve_dtype("auto", "cpu"), resolve_dtype("bfloat16", "cpu")
        ('float32', 'bfloat16')
    """
    if setting not in ("auto", *DTYPES):
        raise KademeError(f"Unknown dtype {setting!r}.\n\nUse --dtype auto, float32, float16 or bfloat16.")
    on_cuda = device.startswith("cuda")
    if setting == "auto":
        if not on_cuda:
            return "float32"
        import torch

        return "bfloat16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "float16"
    if setting == "float16" and not on_cuda and not _cpu_computes_float16():
        raise KademeError("This PyTorch cannot run float16 on the CPU.\n\nUse --dtype bfloat16 or --dtype float32 on the CPU.")
    return setting


@functools.lru_cache(maxsize=1)
def _cpu_computes_float16() -> bool:
    """Whether a float16 linear layer, layer norm, GELU and softmax run on this CPU (they need kernels)."""
    import torch

    try:
        x = torch.ones(2, 8, dtype=torch.float16)
        lin = torch.nn.Linear(8, 8).to(torch.float16)
        y = torch.nn.functional.layer_norm(torch.nn.functional.gelu(lin(x)), (8,))
        return bool(torch.isfinite(torch.softmax(y, -1).float()).all())
    except (RuntimeError, NotImplementedError):
        return False


def load_encoder(model_dir: Path, device: str, dtype: str = "float32"):
    """A SentenceTransformer on ``device`` in ``dtype``, loaded once per process, device and dtype.

    ``device`` is a torch device string (``cpu``, ``cuda``); under ``KADEME_FAULT_FAKE_CUDA`` the
    ladder asks for ``cpu`` for its GPU rungs. ``dtype`` is a resolved dtype (see
    ``resolve_dtype``); the weights are cast before they move to the device, so a half-precision
    model never holds its float32 copy on the card. ``evict_encoder`` drops it again.

    Example:
        >>> load_encoder(resolve_model("all-MiniLM-L6-v2"), "cpu", "bfloat16").dtype  # doctest: +SKIP
        torch.bfloat16
    """
    key = (Path(model_dir), device, dtype)
    if key in _encoders:
        return _encoders[key]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    target = device
    import torch
    from sentence_transformers import SentenceTransformer

    with _load_lock:
        if key in _encoders:
            return _encoders[key]
        try:
            model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
        except OSError as e:
            raise KademeError(f"Model folder '{model_dir}' could not be loaded: {e}\n\nCheck that it is a complete sentence-transformers model.") from None
        model.to(getattr(torch, dtype)).to(target)
        _encoders[key] = model
        return model


def evict_encoder(model_dir: Path, device: str, dtype: str | None = None) -> int:
    """Forget the loaded encoders of ``model_dir`` on ``device`` (every dtype, or one), so their memory can go.

    Args:
        model_dir: the model folder as given to ``load_encoder``.
        device: the device it was loaded for.
        dtype: only this dtype; None: all.

    Returns:
        How many encoders were dropped. The caller empties the CUDA cache afterwards.
    """
    with _load_lock:
        keys = [k for k in _encoders if k[0] == Path(model_dir) and k[1] == device and dtype in (None, k[2])]
        for k in keys:
            del _encoders[k]
    return len(keys)


class Tokenized(str):
    """A chunk's text that carries its token ids (what the chunk stage's tokenizer made of it), so no encoder tokenizes it again.

    It is a ``str``: the encoder seam (``Ladder.encode_batch``) and anything that reads texts see the
    text; ``encode_tokenized`` reads ``ids``.

    Example:
        >>> t = Tokenized("Dava reddedildi", np.array([101, 4830, 102], dtype=np.int32).tobytes())
        >>> t, t.ids.tolist()
        ('Dava reddedildi', [101, 4830, 102])
    """

    def __new__(cls, text: str, ids):
        self = super().__new__(cls, text)
        self._ids = ids
        return self

    @property
    def ids(self) -> "np.ndarray":
        import numpy as np

        ids = self._ids
        return np.frombuffer(ids, dtype="<i4") if isinstance(ids, (bytes, bytearray, memoryview)) else np.asarray(ids)


def token_ids(texts: list) -> "list[np.ndarray] | None":
    """The token ids of every text when every one carries them (``Tokenized``), else None (encode the texts)."""
    if not texts or not all(isinstance(t, Tokenized) for t in texts):
        return None
    return [t.ids for t in texts]


def encode_tokenized(model, ids: "list[np.ndarray]"):
    """Run ``model`` on token ids, padded per batch as ``model.encode`` pads its tokenizer's output; None if it cannot.

    The same forward pass as ``SentenceTransformer.encode`` without the tokenizer: ``input_ids``,
    ``attention_mask`` (and zero ``token_type_ids`` where the model takes them), padded to the
    longest row with the tokenizer's pad id on its padding side. A model with a default prompt, ids
    longer than the model's ``max_seq_length``, or features other than these return None: the
    caller encodes the texts instead.

    Returns:
        The ``sentence_embedding`` tensor (rows x dim) on the model's device, or None.
    """
    import numpy as np
    import torch

    tokenizer = getattr(model, "tokenizer", None)
    names = set(getattr(tokenizer, "model_input_names", None) or ())
    longest = max(len(x) for x in ids)
    if (tokenizer is None or getattr(model, "default_prompt_name", None) or not names <= {"input_ids", "attention_mask", "token_type_ids"}
            or longest > (model.max_seq_length or longest)):
        return None
    rows = len(ids)
    input_ids = np.full((rows, longest), tokenizer.pad_token_id or 0, dtype=np.int64)
    mask = np.zeros((rows, longest), dtype=np.int64)
    left = getattr(tokenizer, "padding_side", "right") == "left"
    for j, x in enumerate(ids):
        cols = slice(longest - len(x), longest) if left else slice(0, len(x))
        input_ids[j, cols] = x
        mask[j, cols] = 1
    features = {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask)}
    if "token_type_ids" in names:
        features["token_type_ids"] = torch.zeros_like(features["input_ids"])
    features = {k: v.to(model.device) for k, v in features.items()}
    features["modality"] = "text"  # sentence-transformers >= 6 routes features by modality
    model.eval()
    with torch.inference_mode():
        return model(features)["sentence_embedding"].cpu()  # finished batches leave the card, as in encode


def normalized(vecs) -> "np.ndarray":
    """Float32 unit vectors (rows x dim) from an encoder's output in any precision, normalized after the cast.

    Example:
        >>> normalized([[3.0, 4.0]]).tolist()
        [[0.6000000238418579, 0.800000011920929]]
    """
    import numpy as np

    out = np.asarray(vecs.float().numpy() if hasattr(vecs, "float") else vecs, dtype=np.float32)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def embedding_dims(model_dir: Path) -> int:
    """The dimension of the vectors a sentence-transformers folder produces, read from its configs (no weights).

    The last module that sets a width decides: a ``Dense`` projection's ``out_features``, else the
    pooling layer's width (``word_embedding_dimension``, or ``embedding_dimension`` since
    sentence-transformers 6) times its modes, else the transformer's ``hidden_size``.

    Example:
        >>> embedding_dims(resolve_model("sentence-transformers/all-MiniLM-L6-v2"))
        384
    """
    modules = read_config(Path(model_dir) / "modules.json") or []
    dims = None
    for module in modules:
        kind, folder = str(module.get("type", "")), Path(model_dir) / module.get("path", "")
        if kind.endswith("Dense"):
            dims = (read_config(folder / "config.json") or {}).get("out_features", dims)
        elif kind.endswith("Pooling"):
            cfg = read_config(folder / "config.json") or {}  # sentence-transformers < 6 and >= 6 spell it differently
            width = cfg.get("word_embedding_dimension", cfg.get("embedding_dimension"))
            dims = width * max(len(pooling_modes(cfg)), 1) if isinstance(width, int) else dims
    if dims is None:
        dims = (read_config(Path(model_dir) / "config.json") or {}).get("hidden_size")
    if isinstance(dims, int):
        return dims
    return load_encoder(Path(model_dir), "cpu").get_sentence_embedding_dimension()
