"""Encode one search query fast: the model's own weights and tokenizer, run with numpy.

``kademe search`` embeds a single short query. Importing sentence-transformers costs ~5-7 s on two
cores (torch, transformers' modeling stack with torch._dynamo and torch.distributed, scikit-learn and
scipy through ``sentence_transformers.util``); torch alone ~1.7 s. A BERT-family encoder forward pass
for one sequence of ~50 tokens is a few small matrix products, so this module runs it in numpy
from ``model.safetensors`` with the model's ``tokenizer.json`` (Hugging Face ``tokenizers``), and
honours ``modules.json``: Transformer → Pooling (mean, cls or max, in either config format
sentence-transformers writes: ``kademe.models.pooling_modes``) → Dense → Normalize. The result
equals ``SentenceTransformer.encode(text, normalize_embeddings=True)`` to 1e-5
(tests/test_search.py checks it on Turkish text).

Any model outside that family (another architecture, relative positions, a non-GELU activation, weights
only in ``pytorch_model.bin``, another pooling mode or module) falls back to the SentenceTransformer
loaded by ``kademe.embed.model.load_encoder``: slower to start, never wrong; stderr says why.
"""

from __future__ import annotations

import functools
import math
import sys
from pathlib import Path

import numpy as np

from kademe.models import max_seq_length, pooling_modes, read_config, resolve_model

ARCHITECTURES = {"bert", "roberta", "xlm-roberta"}
MODULES = {"Transformer", "Pooling", "Dense", "Normalize"}


def encode_query(text: str, model: str) -> np.ndarray:
    """The unit-length embedding of ``text``, as the ingest's ``SentenceTransformer`` would give it.

    Args:
        text: the query.
        model: a model path or id (``resolve_model``).

    Returns:
        float32 vector of the model's dimension, L2 norm 1.

    Example:
        >>> v = encode_query("kıdem tazminatı faiz başlangıcı", "sentence-transformers/all-MiniLM-L6-v2")
        >>> v.shape, round(float(v @ v), 5)
        ((384,), 1.0)
    """
    model_dir = resolve_model(model)
    encoder = numpy_encoder(model_dir)
    if encoder is not None:
        return encoder.encode(text)
    from kademe.embed.model import load_encoder

    vec = load_encoder(model_dir, "cpu").encode([text], normalize_embeddings=True, convert_to_numpy=True)[0]
    return np.asarray(vec, dtype=np.float32)


@functools.lru_cache(maxsize=4)
def numpy_encoder(model_dir: Path) -> NumpyEncoder | None:
    """The numpy encoder for ``model_dir``, or None when the model is outside what it supports.

    A None says why on stderr, once per model: the sentence-transformers fallback costs seconds,
    and a user waiting on ``kademe search`` should know what made it slow.
    """
    why = unsupported_reason(model_dir)
    if why is None:
        return NumpyEncoder.load(model_dir)
    print(f"kademe: the fast query encoder cannot run {model_dir.name} ({why}); "
          "loading sentence-transformers instead (slower)", file=sys.stderr)
    return None


def _modules(model_dir: Path) -> list[dict]:
    return read_config(model_dir / "modules.json") or [{"path": "", "type": "sentence_transformers.models.Transformer"},
                                                       {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]


def unsupported_reason(model_dir: Path) -> str | None:
    """Why the numpy path cannot run this model (None when it can).

    Example:
        >>> unsupported_reason(resolve_model("all-MiniLM-L6-v2")) is None
        True
    """
    config = read_config(model_dir / "config.json") or {}
    st = read_config(model_dir / "config_sentence_transformers.json") or {}
    checks = [
        (config.get("model_type") in ARCHITECTURES, f"architecture {config.get('model_type')!r}"),
        (config.get("position_embedding_type", "absolute") == "absolute", "relative position embeddings"),
        (config.get("hidden_act") in ("gelu",), f"activation {config.get('hidden_act')!r}"),
        ((model_dir / "model.safetensors").exists() and (model_dir / "tokenizer.json").exists(),
         "no model.safetensors or tokenizer.json"),
        (not st.get("default_prompt_name"), "a default prompt"),
    ]
    for module in _modules(model_dir):
        kind = module["type"].rsplit(".", 1)[-1]
        checks.append((kind in MODULES, f"module {kind}"))
        if kind == "Pooling":
            modes = pooling_modes(read_config(model_dir / module["path"] / "config.json") or {})
            checks.append((len(modes) == 1 and modes[0] in _POOLING, f"pooling {'+'.join(modes) or 'unknown'}"))
        if kind == "Dense":
            dense = read_config(model_dir / module["path"] / "config.json") or {}
            checks.append(((model_dir / module["path"] / "model.safetensors").exists()
                           and dense.get("activation_function", "").rsplit(".", 1)[-1] in _ACTIVATIONS,
                           f"dense layer {dense.get('activation_function')}"))
    return next((why for ok, why in checks if not ok), None)


_POOLING = {"mean", "cls", "max"}
_ACTIVATIONS = {"Identity": lambda x: x, "Tanh": np.tanh}
# Rational approximation of erf (Eigen's, as in XLA/TensorFlow): |error| < 1e-7 against math.erf.
_ERF_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
          -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02)
_ERF_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
          -1.42647390514189e-02)


def _erf(x: np.ndarray) -> np.ndarray:
    x = np.clip(x.astype(np.float64), -4.0, 4.0)
    x2 = x * x
    return x * np.polyval(_ERF_P, x2) / np.polyval(_ERF_Q, x2)


def _one_blas_thread():
    """One BLAS thread for these small products: measured 2 ms instead of 17-24 ms per (60x384)@(384x1536)
    on two busy cores, where BLAS threads wait on each other."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1)


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    return (0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))).astype(np.float32)


class NumpyEncoder:
    """A BERT/RoBERTa/XLM-R sentence encoder for one text at a time, in float32 numpy."""

    def __init__(self, weights: dict[str, np.ndarray], config: dict, tokenizer, pooling: str,
                 dense: list[tuple[np.ndarray, np.ndarray | None, str]], lower: bool):
        self.w, self.config, self.tokenizer = weights, config, tokenizer
        self.pooling, self.dense, self.lower = pooling, dense, lower

    @classmethod
    def load(cls, model_dir: Path) -> NumpyEncoder:
        """Read weights (memory-mapped safetensors), config, tokenizer and the module chain."""
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = read_config(model_dir / "config.json") or {}
        weights = {}
        for name, value in load_file(str(model_dir / "model.safetensors")).items():
            for prefix in ("bert.", "roberta.", "model."):
                name = name.removeprefix(prefix)
            if name.startswith("encoder.") and value.ndim == 2:  # linear layers, stored (in, out) for x @ w
                value = np.ascontiguousarray(value.T)
            weights[name] = value.astype(np.float32) if value.dtype != np.int64 else value
        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=max_seq_length(model_dir))
        sbert = read_config(model_dir / "sentence_bert_config.json") or {}
        pooling, dense = "mean", []
        for module in _modules(model_dir):
            kind, folder = module["type"].rsplit(".", 1)[-1], model_dir / module["path"]
            if kind == "Pooling":
                pooling = pooling_modes(read_config(folder / "config.json") or {})[0]
            elif kind == "Dense":
                dense_config = read_config(folder / "config.json") or {}
                layer = load_file(str(folder / "model.safetensors"))
                w = next(v for k, v in layer.items() if k.endswith("weight")).astype(np.float32)
                b = next((v for k, v in layer.items() if k.endswith("bias")), None)
                dense.append((w, None if b is None else b.astype(np.float32),
                              dense_config.get("activation_function", "Identity").rsplit(".", 1)[-1]))
        return cls(weights, config, tokenizer, pooling, dense, bool(sbert.get("do_lower_case")))

    def encode(self, text: str) -> np.ndarray:
        """Unit-length float32 embedding of ``text``."""
        text = text.strip()
        if self.lower:
            text = text.lower()
        ids = np.asarray(self.tokenizer.encode(text).ids, dtype=np.int64)
        with _one_blas_thread():
            hidden = self._forward(ids)
        if self.pooling == "cls":
            vec = hidden[0]
        elif self.pooling == "max":
            vec = hidden.max(0)
        else:
            vec = hidden.mean(0)
        for w, b, activation in self.dense:
            vec = _ACTIVATIONS[activation](vec @ w.T + (0 if b is None else b))
        vec = vec.astype(np.float32)
        return vec / max(float(np.linalg.norm(vec)), 1e-12)

    def _forward(self, ids: np.ndarray) -> np.ndarray:
        w, c = self.w, self.config
        eps = c.get("layer_norm_eps", 1e-12)
        if c.get("model_type") in ("roberta", "xlm-roberta"):
            positions = np.arange(len(ids)) + c.get("pad_token_id", 1) + 1
        else:
            positions = np.arange(len(ids))
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][positions]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        heads = c["num_attention_heads"]
        size = c["hidden_size"] // heads
        for i in range(c["num_hidden_layers"]):
            p = f"encoder.layer.{i}."

            def linear(name: str, inp: np.ndarray) -> np.ndarray:
                return inp @ w[p + name + ".weight"] + w[p + name + ".bias"]

            q, k, v = (linear(f"attention.self.{n}", x).reshape(len(ids), heads, size).transpose(1, 0, 2)
                       for n in ("query", "key", "value"))
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(size)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            context = (scores / scores.sum(-1, keepdims=True)) @ v
            context = context.transpose(1, 0, 2).reshape(len(ids), heads * size)
            x = _layer_norm(linear("attention.output.dense", context) + x,
                            w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
            inner = _gelu(linear("intermediate.dense", x))
            x = _layer_norm(linear("output.dense", inner) + x, w[p + "output.LayerNorm.weight"],
                            w[p + "output.LayerNorm.bias"], eps)
        return x
