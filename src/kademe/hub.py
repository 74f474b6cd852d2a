"""A model from the Hugging Face Hub, downloaded once into its cache, as sentence-transformers does (issue 30).

``cached_snapshot`` looks in the cache only (no request); ``download_snapshot`` fetches what
sentence-transformers loads and returns the same folder. Both go through huggingface_hub, so its
environment holds: ``HF_HOME`` / ``HF_HUB_CACHE`` (where), ``HF_ENDPOINT`` (which Hub), ``HF_TOKEN``
(gated and private models), ``HF_HUB_OFFLINE=1`` (never ask). A snapshot folder is named by its
commit, so the folder says which revision was loaded (``kademe.models.snapshot_commit``).

What is downloaded (``select_files``): the configs, tokenizer and vocabulary files at the top and in
each module folder that ``modules.json`` names (``1_Pooling``, ``2_Dense``...), and one weights format
per folder: safetensors where the repository has them, else ``pytorch_model*.bin``, as
sentence-transformers 6.3 and transformers load them. ONNX, OpenVINO, other checkpoints
(``colbert_linear.pt``), images and the model card stay on the Hub.

Every failure is one ``KademeError`` that says what to do: unknown repository, wrong revision, a gated
or private model without a token, the Hub unreachable, offline mode, a full disk.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from kademe.errors import KademeError

CONFIG_SUFFIXES = (".json", ".txt", ".model")  # configs, vocabularies, sentencepiece models
FIRST = ["modules.json", "config.json"]  # fetched first: they say which folders the model has


def cached_snapshot(repo_id: str, revision: str | None = None, weights: bool = True) -> Path | None:
    """The cache's complete snapshot of ``repo_id`` at ``revision`` (default: ``main``), or None; no request.

    Complete means every file ``select_files`` wants, by the tree listing huggingface_hub cached when it
    downloaded; a snapshot without that listing (filled by sentence-transformers or an older
    huggingface_hub) counts when it holds a ``config.json`` or ``modules.json``.

    Example:
        >>> cached_snapshot("BAAI/bge-m3")  # doctest: +SKIP
        PosixPath('/root/.cache/huggingface/hub/models--BAAI--bge-m3/snapshots/5617a9f61b028005a4858fdac845db406aefb181')
    """
    from huggingface_hub import constants
    from huggingface_hub.file_download import REGEX_COMMIT_HASH, repo_folder_name

    try:
        storage = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type="model")  # validates the id
    except ValueError as e:
        raise explain(e, repo_id, revision) from None
    revision = revision or constants.DEFAULT_REVISION
    commit = revision if REGEX_COMMIT_HASH.fullmatch(revision) else _read(storage / "refs" / revision)
    snapshot = storage / "snapshots" / commit if commit else None
    if snapshot is None or not snapshot.is_dir():
        return None
    paths = _cached_tree(repo_id, commit)
    if paths is None:
        return snapshot if any((snapshot / name).is_file() for name in FIRST) else None
    wanted = select_files(paths, _modules(snapshot), weights=weights)
    return snapshot if all((snapshot / p).is_file() for p in wanted) else None


def download_snapshot(repo_id: str, revision: str | None = None, weights: bool = True) -> Path:
    """Download what sentence-transformers loads of ``repo_id`` at ``revision`` into the cache; its snapshot folder.

    Files already in the cache are not fetched again; a file cut off mid-body is resumed by
    huggingface_hub within the call (a ranged request); a failed call keeps the files it finished.
    Progress goes to stderr: a line before and after, and huggingface_hub's progress bar between.

    Raises:
        KademeError: offline mode, unknown repository or revision, no access, the Hub unreachable,
            a failed download; each says what to do.

    Example:
        >>> download_snapshot("BAAI/bge-m3").parent.name  # doctest: +SKIP
        'snapshots'
    """
    from huggingface_hub import constants, get_cached_repo_tree, snapshot_download

    name = f"{repo_id}@{revision}" if revision else repo_id
    if constants.is_offline_mode():
        raise KademeError(offline_message(name))
    try:
        # First the files that say what the model is made of: this resolves the revision to a commit
        # and caches the repository's tree listing, which select_files and cached_snapshot then read.
        head = Path(snapshot_download(repo_id, revision=revision, allow_patterns=FIRST, tqdm_class=_quiet_tqdm()))
        commit = head.name
        tree = {f.path: f.size for f in get_cached_repo_tree(repo_id, revision=commit)}
        if not any(n in tree for n in FIRST):
            raise KademeError(f"'{repo_id}' on the Hub has no modules.json or config.json: it is not a sentence-transformers "
                              "or transformers model.\n\nPass --model with the id of an embedding model (e.g. BAAI/bge-m3).")
        files = select_files(list(tree), _modules(head), weights=weights)
        missing = [p for p in files if not (head / p).is_file()]
        if missing:
            size = sum(tree[p] or 0 for p in missing)
            print(f"kademe: downloading {name} (commit {commit[:12]}) from {constants.ENDPOINT} into {constants.HF_HUB_CACHE}: "
                  f"{len(missing)} file{'s' * (len(missing) != 1)}, {size / 1e6:,.1f} MB (once; later runs load it from the cache)", file=sys.stderr, flush=True)
            started = time.monotonic()
            snapshot_download(repo_id, revision=commit, allow_patterns=files)
            print(f"kademe: {name} downloaded in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
        return head
    except KademeError:
        raise
    except Exception as e:  # noqa: BLE001 - every failure of the Hub or the disk becomes one line
        raise explain(e, repo_id, revision) from None


def select_files(paths: list[str], modules: list[dict] | None, weights: bool = True) -> list[str]:
    """The files of a repository that sentence-transformers loads, from its file list and ``modules.json``.

    Args:
        paths: every file of the repository, ``/``-separated.
        modules: ``modules.json``'s entries (None: a plain transformers model, the top folder only).
        weights: False leaves the weights out (configs only, for ``kademe plan``).

    Returns:
        The chosen paths, sorted.

    Example:
        >>> select_files(["config.json", "model.safetensors", "pytorch_model.bin", "onnx/model.onnx",
        ...               "1_Pooling/config.json", "README.md"], [{"path": ""}, {"path": "1_Pooling"}])
        ['1_Pooling/config.json', 'config.json', 'model.safetensors']
    """
    folders = dict.fromkeys(["", *(str(m.get("path") or "").strip("/") for m in modules or [])])
    chosen: set[str] = set()
    for folder in folders:
        inside = [p for p in paths if ("/" not in p if not folder else p.startswith(folder + "/"))]
        chosen.update(p for p in inside if p.endswith(CONFIG_SUFFIXES))
        if weights:
            for where in {p.rpartition("/")[0] for p in inside}:
                here = [p for p in inside if p.rpartition("/")[0] == where]
                safe = [p for p in here if p.endswith(".safetensors")]
                chosen.update(safe or [p for p in here if p.rpartition("/")[2].startswith("pytorch_model") and p.endswith(".bin")])
    return sorted(chosen)


def offline_message(name: str) -> str:
    """What to say when ``name`` is not cached and ``HF_HUB_OFFLINE`` forbids asking the Hub."""
    from huggingface_hub import constants

    return (f"Model '{name}' is not in the local cache ({constants.HF_HUB_CACHE}) and HF_HUB_OFFLINE=1 forbids downloading it."
            "\n\nUnset HF_HUB_OFFLINE and run once with the Hub reachable (kademe ingest, search, upgrade or plan downloads it), "
            "or pass --model PATH to a saved sentence-transformers folder.")


def explain(e: BaseException, repo_id: str, revision: str | None) -> KademeError:
    """One ``KademeError`` for a failed look-up or download of ``repo_id``."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    hub, name = constants.ENDPOINT, f"{repo_id}@{revision}" if revision else repo_id
    if isinstance(e, RevisionNotFoundError):
        return KademeError(f"Model '{repo_id}' has no revision '{revision}' on the Hub ({hub}).\n\nPin a branch, tag or full "
                           f"commit hash it has ({repo_id}@main, --model-revision or KADEME_MODEL_REVISION), or drop the pin.")
    if isinstance(e, GatedRepoError):
        return KademeError(f"Model '{repo_id}' is gated on the Hub ({hub}): its terms must be accepted first.\n\nAccept them "
                           f"on {hub}/{repo_id}, then set HF_TOKEN to a token of that account.")
    if isinstance(e, RepositoryNotFoundError):
        return KademeError(f"Model '{repo_id}' was not found on the Hub ({hub}).\n\nCheck the id (as on {hub}/{repo_id}); "
                           "if the model is private, set HF_TOKEN to a token that can read it.")
    if isinstance(e, HfHubHTTPError) and e.response is not None and e.response.status_code in (401, 403):
        return KademeError(f"The Hub ({hub}) refused access to '{repo_id}' ({e.response.status_code}).\n\nSet HF_TOKEN to a valid "
                           "token that can read the model (or unset a wrong one).")
    if isinstance(e, HfHubHTTPError):
        code = e.response.status_code if e.response is not None else "an error"
        return KademeError(f"The Hub ({hub}) answered {code} while downloading '{name}'.\n\nRun the command again later: "
                           "files already downloaded are kept in the cache.")
    if isinstance(e, OfflineModeIsEnabled) or isinstance(getattr(e, "__cause__", None), OfflineModeIsEnabled):
        return KademeError(offline_message(name))
    if isinstance(e, (HFValidationError, ValueError)) and not isinstance(e, OSError):
        return KademeError(f"'{name}' is not a valid model id: {_first_line(e)}\n\nPass a Hub id such as BAAI/bge-m3 "
                           "(optionally @REVISION) or a model folder.")
    cause = e.__cause__ if isinstance(e, LocalEntryNotFoundError) and e.__cause__ else e
    if isinstance(e, LocalEntryNotFoundError) or _network(cause):
        return KademeError(f"Model '{name}' is not in the local cache and the Hub ({hub}) cannot be reached: "
                           f"{type(cause).__name__}: {_first_line(cause)}.\n\nCheck the network (or HF_ENDPOINT and the proxy) "
                           "and run the command again (files already downloaded are kept), or copy the model into the "
                           "Hugging Face cache (HF_HOME) from a machine that reaches the Hub.")
    return KademeError(f"Downloading '{name}' into {constants.HF_HUB_CACHE} failed: {type(e).__name__}: {_first_line(e)}."
                       "\n\nCheck the free space there (or set HF_HOME to a larger disk) and run the command again.")


def _network(e: BaseException) -> bool:
    """Whether ``e`` is a connection failure (huggingface_hub's HTTP client, whichever its name)."""
    return any(c.__name__ in ("ConnectError", "TimeoutException", "NetworkError", "RemoteProtocolError", "ProxyError")
               for c in type(e).__mro__) or isinstance(e, (ConnectionError, TimeoutError))


def _first_line(e: BaseException) -> str:
    return next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__).rstrip(".")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def _cached_tree(repo_id: str, commit: str) -> list[str] | None:
    from huggingface_hub import get_cached_repo_tree
    from huggingface_hub.errors import CachedRepoTreeNotFoundError

    try:
        return [f.path for f in get_cached_repo_tree(repo_id, revision=commit)]
    except (CachedRepoTreeNotFoundError, OSError, ValueError):
        return None


def _modules(snapshot: Path) -> list[dict] | None:
    try:
        data = json.loads((snapshot / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return [m for m in data if isinstance(m, dict)] if isinstance(data, list) else None


def _quiet_tqdm():
    from huggingface_hub.utils.tqdm import tqdm

    class Quiet(tqdm):
        """No bar for the first, tiny step (modules.json and config.json)."""

        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return Quiet
