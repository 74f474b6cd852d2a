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
    key = (model_dir if isinstance(model_dir, Path) else Path(model_dir), device, dtype)
    if (model := _encoders.get(key)) is not None:  # the ladder asks once a batch: no new Path, one lookup
        return model
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
        model.eval()  # once: eval() walks every module, and encode_tokenized runs once a batch
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


class TokenIds:
    """The token ids of N texts as one flat int32 array and N+1 offsets into it: no object per text.

    Built from the chunk file's ``token_ids`` column (int32 bytes a row) without copying, or from a
    list of bytes/arrays; a row without ids (None, a null) is marked in ``valid``. ``take`` gathers
    a batch's rows, ``padded`` pads them as the tokenizer pads (issue 22: the embed stage does no text
    work and no Python work per row).

    Example:
        >>> t = TokenIds.of([[101, 7, 102], None, [101, 102]])
        >>> t.take([2, 0]).padded(pad_id=0)[0].tolist(), t.take([1]) is None
        ([[101, 102, 0], [101, 7, 102]], True)
    """

    __slots__ = ("flat", "offsets", "valid")

    def __init__(self, flat: "np.ndarray", offsets: "np.ndarray", valid: "np.ndarray | None" = None):
        self.flat, self.offsets, self.valid = flat, offsets, valid  # valid: None when every row has ids

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @classmethod
    def of(cls, ids) -> "TokenIds":
        """From a pyarrow binary column (int32 bytes a row, nulls allowed) or a list of bytes, arrays or None."""
        import numpy as np

        if isinstance(ids, TokenIds):
            return ids
        if hasattr(ids, "combine_chunks") or hasattr(ids, "buffers"):  # pyarrow: read its buffers in place
            from kademe.parquet_io import binary_values

            flat, offsets = binary_values(ids, "<i4")
            valid = ids.is_valid().to_numpy(zero_copy_only=False) if ids.null_count else None
            return cls(flat, offsets, valid)
        rows = [None if x is None else (np.frombuffer(x, dtype="<i4") if isinstance(x, (bytes, bytearray, memoryview))
                                        else np.asarray(x, dtype="<i4")) for x in ids]
        lengths = np.fromiter((0 if x is None else len(x) for x in rows), dtype=np.int64, count=len(rows))
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.concatenate([x for x in rows if x is not None] or [np.zeros(0, "<i4")]).astype("<i4", copy=False)
        valid = np.fromiter((x is not None for x in rows), dtype=bool, count=len(rows))
        return cls(flat, offsets, None if valid.all() else valid)

    def take(self, rows) -> "TokenIds | None":
        """These rows' ids, in this order (one gather, no loop); None when one of them has no ids."""
        import numpy as np

        rows = np.asarray(rows, dtype=np.int64)
        if self.valid is not None and not self.valid[rows].all():
            return None
        starts = self.offsets[rows]
        lengths = self.offsets[rows + 1] - starts
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        index = np.arange(offsets[-1], dtype=np.int64) + np.repeat(starts - offsets[:-1], lengths)
        return TokenIds(self.flat[index], offsets)

    def slice(self, start: int, stop: int) -> "TokenIds":
        """Rows ``start`` to ``stop`` (exclusive): a view of the same buffer, nothing copied."""
        return TokenIds(self.flat, self.offsets[start:stop + 1], None if self.valid is None else self.valid[start:stop])

    def padded(self, pad_id: int, left: bool = False) -> "tuple[np.ndarray, np.ndarray]":
        """``(input_ids, attention_mask)``, int64 rows x longest, padded with ``pad_id`` on the right (or left)."""
        import numpy as np

        lengths = np.diff(self.offsets)
        start = self.offsets[0]
        columns = np.arange(int(lengths.max(initial=0)))
        mask = columns >= (len(columns) - lengths)[:, None] if left else columns < lengths[:, None]
        input_ids = np.full(mask.shape, pad_id, dtype=np.int64)
        input_ids[mask] = self.flat[start:self.offsets[-1]]  # row-major: each row's ids land in its own slots, in order
        return input_ids, mask.astype(np.int64)


class Batch(list):
    """One encoder batch: its texts (a list, as any encoder takes them) and, where known, their token ids.

    ``ids`` (a ``TokenIds`` of exactly these rows) lets ``encode_tokenized`` skip the tokenizer; a
    plain list of texts, or ``ids=None``, is encoded from the text.
    """

    def __init__(self, texts, ids: TokenIds | None = None):
        super().__init__(texts)
        self.ids = ids


def encode_tokenized(model, ids: TokenIds):
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
    longest = int(np.diff(ids.offsets).max(initial=0))
    if (tokenizer is None or getattr(model, "default_prompt_name", None) or not names <= {"input_ids", "attention_mask", "token_type_ids"}
            or longest > (model.max_seq_length or longest)):
        return None
    input_ids, mask = ids.padded(tokenizer.pad_token_id or 0, left=getattr(tokenizer, "padding_side", "right") == "left")
    features = {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask)}
    if "token_type_ids" in names:
        features["token_type_ids"] = torch.zeros_like(features["input_ids"])
    features = {k: v.to(model.device) for k, v in features.items()}
    features["modality"] = "text"  # sentence-transformers >= 6 routes features by modality
    if model.training:  # load_encoder set eval mode once; eval() walks every module (~50 µs a batch, measured)
        model.eval()
    with torch.inference_mode():
        return model(features)["sentence_embedding"].cpu()  # finished batches leave the card, as in encode


def ends_normalized(model) -> bool:
    """Whether the model's last module is sentence-transformers' ``Normalize`` (its float32 output is unit length)."""
    try:
        return type(model[-1]).__name__ == "Normalize"
    except (TypeError, IndexError, KeyError):
        return False


def normalized(vecs, unit: bool = False) -> "np.ndarray":
    """Float32 unit vectors (rows x dim) from an encoder's output in any precision, normalized after the cast.

    ``unit``: the output is float32 unit vectors already (a float32 model that ends in ``Normalize``,
    see ``ends_normalized``): it is taken as it is, without a second pass (issue 22). A model
    computing in half precision is normalized again after the cast.

    Example:
        >>> normalized([[3.0, 4.0]]).tolist()
        [[0.6000000238418579, 0.800000011920929]]
    """
    import numpy as np

    out = np.asarray(vecs.float().numpy() if hasattr(vecs, "float") else vecs, dtype=np.float32)
    if unit:
        return out
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
