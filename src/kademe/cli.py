"""The ``kademe`` command: a thin layer over the stage functions and the Prefect flows.

Results go to stdout (one JSON object with ``--json``), logs to stderr. A ``KademeError`` prints its
message alone and exits 1; an invalid option exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from pydantic import ValidationError

from kademe.errors import KademeError
from kademe.settings import DEFAULT_MODEL, Settings

EPILOG_INGEST = """Example:
  kademe ingest --source 'data/yargitay_{year}.ndjson' --years 2005 2006-2009 \\
      --collection yargitay --workdir work --model BAAI/bge-m3 --device cuda \\
      --fallback-model intfloat/multilingual-e5-small --json
"""


def parse_years(values: list[str]) -> list[int]:
    """``["2005", "2006-2009"]`` -> ``[2005, 2006, 2007, 2008, 2009]``; raises KademeError on a bad year."""
    years: list[int] = []
    for value in values:
        for part in value.replace(",", " ").split():
            lo, _, hi = part.partition("-")
            try:
                first, last = int(lo), int(hi or lo)
            except ValueError:
                raise KademeError(f"Invalid year {part!r}.\n\nGive years like 2011, or a range like 2006-2009.") from None
            if not (1800 <= first <= last <= 2200):
                raise KademeError(f"Invalid year {part!r}.\n\nYears must lie between 1800 and 2200, ranges low-high.")
            years += [y for y in range(first, last + 1) if y not in years]
    return years


def _store_options(p: argparse.ArgumentParser, corpus_help: str) -> None:
    p.add_argument("--corpus", help=corpus_help)
    p.add_argument("--collection", help="Qdrant collection (default: kademe)")
    p.add_argument("--workdir", help="work directory with checkpoints and the embedded Qdrant (default: kademe-work)")
    p.add_argument("--qdrant-url", help="Qdrant server URL (default: Qdrant Edge, embedded, at WORKDIR/qdrant)")
    p.add_argument("--qdrant-api-key", help="Qdrant API key (or KADEME_QDRANT_API_KEY); never logged")
    p.add_argument("--qdrant-grpc", action="store_true", default=None, help="talk to the server over gRPC (port 6334)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


ALL_CORPORA = "corpus to cover (default: every corpus the workdir holds for those years)"


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help=f"model path or cached id (default: {DEFAULT_MODEL})")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="where to embed (default: auto)")
    p.add_argument("--batch-size", type=int, help="most rows per batch (default: 32)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kademe", description="Resumable yearly ingest of court decisions into Qdrant, orchestrated by Prefect.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("ingest", help="read, clean, chunk, embed, upsert and verify years", epilog=EPILOG_INGEST,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", required=True, help="path template with {year} (.ndjson, .jsonl, .gz, .parquet), or a directory")
    p.add_argument("--years", nargs="+", required=True, metavar="Y", help="years, e.g. 2011 2012 or 2006-2009")
    _store_options(p, "corpus name, part of every partition and point id (default: from --source, e.g. yargitay)")
    _model_options(p)
    p.add_argument("--dtype", choices=["auto", "float32", "float16", "bfloat16"],
                   help="encoder precision (default: auto: bfloat16/float16 on CUDA, float32 on the CPU)")
    p.add_argument("--fallback-model", help="smaller model for the gpu-small rung (its vectors are stored apart, year marked degraded)")
    p.add_argument("--token-budget", type=int, help="most padded tokens per batch (default: planned from free GPU memory)")
    p.add_argument("--chunk-tokens", type=int, help="most tokens per chunk (default: the model's max_seq_length)")
    p.add_argument("--chunk-overlap", type=int, help="tokens repeated between chunks (default: 32)")
    p.add_argument("--shard-size", type=int, help="chunks per resumable shard (default: 512)")
    p.add_argument("--bm25-language", help="language of the BM25 analyzer (default: turkish)")

    p = sub.add_parser("verify", help="check the collection against the checkpoints")
    p.add_argument("--years", nargs="+", required=True, metavar="Y")
    _store_options(p, ALL_CORPORA)

    p = sub.add_parser("search", help="find the decisions that best match a query (hybrid: dense + BM25)")
    p.add_argument("query")
    p.add_argument("--mode", choices=["hybrid", "dense", "lexical"], default="hybrid",
                   help="hybrid: RRF fusion of dense and BM25 (default); dense or lexical alone")
    p.add_argument("--year", type=int, help="only this year")
    p.add_argument("--top-k", type=int, default=5, help="decisions to return, one hit (the best chunk) each")
    _store_options(p, "only this corpus (default: every corpus in the collection)")
    _model_options(p)
    p.add_argument("--fallback-model", help="the fallback model, to search degraded years in its vector space too")

    p = sub.add_parser("demo", help="run the whole job on the bundled sample corpus, then search it")
    p.add_argument("--workdir", help="work directory (default: a new temporary one; pass an old one for a warm rerun)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("plan", help="estimate inference memory and a safe token budget for a model")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--gpu-mem", type=float, help="free GPU memory in GB (default: measured, if there is a GPU)")
    p.add_argument("--max-tokens", type=int, help="longest sequence to plan for (default: the model's limit)")
    p.add_argument("--attention", choices=["sdpa", "eager"], default="sdpa")
    p.add_argument("--dtype", choices=["auto", "float32", "float16", "bfloat16"], default="auto",
                   help="precision to plan for (default: auto: bfloat16/float16 on CUDA, float32 on the CPU)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("upgrade", help="re-embed degraded years with the primary model")
    p.add_argument("--years", nargs="+", required=True, metavar="Y")
    _store_options(p, ALL_CORPORA)
    _model_options(p)
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Flags that were given -> Settings (the rest from KADEME_* and defaults)."""
    names = set(Settings.model_fields) - {"qdrant_api_key"}
    given = {k: v for k, v in vars(args).items() if k in names and v is not None}
    if getattr(args, "qdrant_api_key", None):
        # Flows read the key from the environment, so it never becomes a flow-run parameter.
        os.environ["KADEME_QDRANT_API_KEY"] = args.qdrant_api_key
    return Settings(**given)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KademeError as e:
        print(f"kademe: {e}", file=sys.stderr)
        return 1
    except ValidationError as e:
        msgs = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'settings'}: {err['msg']}" for err in e.errors())
        print(f"kademe: invalid settings: {msgs}", file=sys.stderr)
        return 2


def _prefect_defaults() -> None:
    """Quiet, offline-friendly Prefect defaults for the ephemeral server the CLI starts."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _start_temporary_server() -> Future | None:
    """Start Prefect's temporary server in a background thread when no API URL is set; None otherwise.

    Prefect starts it on the flow's first API call (``get_client``), ~8 s of waiting on a 2-core box.
    Its ``SubprocessASGIServer`` is one per process (port None), so a server started here is the one
    the flow then finds running. The caller must wait for the future before starting the flow:
    the server counts as running from the moment it is launched, not from its first healthy answer.

    Returns:
        A future that resolves when the server answers (or raises what its start raised), or None
        when ``PREFECT_API_URL`` is set or ephemeral mode is off (the flow then behaves as before).

    Example:
        >>> server = _start_temporary_server()  # doctest: +SKIP
        >>> server is None or server.result() is None  # doctest: +SKIP
        True
    """
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    if settings.api.url or not settings.server.ephemeral.enabled:
        return None

    def start() -> None:
        from prefect.server.api.server import SubprocessASGIServer

        SubprocessASGIServer().start()

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kademe-prefect-server")
    future = pool.submit(start)
    pool.shutdown(wait=False)  # the start runs on; the caller waits on the future
    return future


def _embedding_ahead(s: Settings, years: list[int]) -> bool:
    """Whether some year has never been embedded here (no embed entry in its manifest): then the model is needed.

    A warm rerun skips the preload (it would load a model no stage uses); a rerun with changed
    settings loads the model in the embed stage, as before.
    """
    return any("embed" not in s.partition(year).manifest() for year in years)


def run_ingest(s: Settings, years: list[int]) -> dict:
    """Run the ``ingest-years`` flow (ephemeral Prefect unless PREFECT_API_URL is set).

    Without PREFECT_API_URL, Prefect's temporary server starts in the background while this thread
    loads the model and imports the flow; the flow starts once the server answers.
    """
    _prefect_defaults()
    server = _start_temporary_server()
    if server is not None and _embedding_ahead(s, years):
        from kademe.embed.ladder import preload_encoder

        preload_encoder(s)  # while the server starts: the embed stage reuses the loaded model
    from flows.ingest import ingest_years

    if server is not None:
        server.result()  # a failed start raises here, as it would have at the flow's first API call
    return ingest_years(years, **s.flow_parameters())


def preflight(s: Settings, years: list[int]) -> None:
    """Catch bad invocations before any work starts: each a one-line KademeError."""
    from kademe.embed.model import resolve_model
    from kademe.sources import resolve_source
    from kademe.store import open_store

    for year in years:
        resolve_source(s.source, year)
    for model in filter(None, (s.model, s.fallback_model)):
        resolve_model(model)
    from kademe.embed.ladder import cuda_usable

    cuda_usable(s.device)  # --device cuda without CUDA is an error before any work
    from kademe.storage import is_remote, open_storage

    if is_remote(s.workdir) and not s.qdrant_url:
        open_store(s)  # raises the one-line error naming --qdrant-url, before any network call
    try:
        storage = open_storage(s.workdir)  # a path or a URL: one probe for both
        storage.put(".kademe-write-test", b"ok")
        storage.delete(".kademe-write-test")
    except OSError as e:
        raise KademeError(f"Work directory '{s.workdir}' is not writable: {e.strerror}.\n\nPass --workdir with a writable folder.") from None
    except Exception as e:  # an object store's refusal: no such bucket, no credentials
        raise KademeError(f"Work directory '{s.workdir}' is not writable: {str(e).splitlines()[0]}\n\n"
                          "Check the bucket and the cloud's credentials in the environment (AWS_*, GOOGLE_*, AZURE_*).") from None
    from kademe.upsert import ensure_collection

    with open_store(s) as store:
        ensure_collection(store, s)  # a wrong vector size or API key fails here, in one line


def cmd_ingest(args: argparse.Namespace) -> int:
    s = settings_from_args(args)
    years = parse_years(args.years)
    preflight(s, years)
    result = run_ingest(s, years)
    _emit(args, result, _format_summary)
    return 0 if all(y["status"] == "completed" for y in result["years"].values()) else 1


def cmd_verify(args: argparse.Namespace) -> int:
    from kademe.verify import verify_years

    s = settings_from_args(args)
    result = verify_years(s, parse_years(args.years))
    _emit(args, result, _format_verify)
    return 0 if result["ok"] else 1


def _format_verify(result: dict) -> str:
    lines = []
    for year, v in result["years"].items():
        for corpus, r in (v.get("corpora") or {"": v}).items():
            label = f"{corpus} {year}" if corpus else year
            lines.append(f"{label}: {'ok' if r['ok'] else 'FAILED'} " + (r.get("error") or (
                f"expected {r['expected']}, found {r['found']}, missing {r['missing_count']}, extra {r['extra_count']}, "
                f"duplicates {len(r['duplicates'])}, bad vectors {len(r['bad_vectors'])}")))
    return "\n".join(lines + [f"corpora: {', '.join(result['corpora']) or 'none'}"])


def cmd_search(args: argparse.Namespace) -> int:
    from kademe.search import format_hits, search

    _prefect_defaults()
    s = settings_from_args(args)
    result = search(args.query, s, mode=args.mode, year=args.year, corpus=s.corpus, top_k=args.top_k)
    _emit(args, result, format_hits)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="kademe-demo-"))
    data = workdir / "data"
    if not data.exists():
        copy_sample_corpus(data)
    s = Settings(source=str(data / "yargitay_{year}.ndjson"), workdir=workdir, collection="yargitay-demo", device="cpu")
    print(f"kademe demo: sample corpus in {data}, work directory {workdir}", file=sys.stderr)
    started = time.monotonic()
    result = run_ingest(s, [2021, 2022, 2023])
    result["seconds"] = round(time.monotonic() - started, 2)
    query = _demo_query(workdir)
    from kademe.search import search

    result["search"] = {"query": query, **search(query, s, top_k=3)}
    result["workdir"] = str(workdir)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(_format_summary(result))
        print(f"\nTotal {result['seconds']:.1f} s. Run again warm: kademe demo --workdir {workdir}\n")
        print(f"Search: {query!r}")
        from kademe.search import format_hits

        print(format_hits(result["search"]))
    return 0 if all(y["status"] == "completed" for y in result["years"].values()) else 1


def copy_sample_corpus(dest: Path) -> list[Path]:
    """Copy the packaged sample corpus (``kademe/data/sample/*.ndjson``) into ``dest``."""
    from importlib import resources

    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for item in resources.files("kademe").joinpath("data", "sample").iterdir():
        if item.name.endswith(".ndjson"):
            (dest / item.name).write_bytes(item.read_bytes())
            copied.append(dest / item.name)
    return sorted(copied)


def _demo_query(workdir: Path) -> str:
    """A sentence from the claim paragraph of the first 2022 sample decision (unique to that decision)."""
    with open(workdir / "data" / "yargitay_2022.ndjson", "rb") as f:
        first = json.loads(f.readline().decode("utf-8-sig"))
    paragraph = first["text"].split("\n\n")[3]
    return max(paragraph.split(". "), key=len).rstrip(".") + "."


def cmd_plan(args: argparse.Namespace) -> int:
    from kademe.embed.plan import format_table, max_token_budget, plan_table, resolve_shape

    shape = resolve_shape(args.model)
    free = int(args.gpu_mem * 1e9) if args.gpu_mem else _measured_free()
    length = min(args.max_tokens or shape.max_positions - 2, shape.max_positions)
    lengths = sorted({n for n in (128, 512, 2048, 8192) if n <= length} | {length})
    dtype = _plan_dtype(args.dtype)
    rows = plan_table(shape, free, lengths=tuple(lengths), attention=args.attention, dtype_bytes=dtype)
    budget = max_token_budget(shape, free, length, attention=args.attention, dtype_bytes=dtype) if free else None
    result = {"model": args.model, "params": shape.params, "free_bytes": free, "max_tokens": length,
              "attention": args.attention, "dtype": dtype, "token_budget": budget, "rows": rows}
    _emit(args, result, lambda r: format_table(r["rows"]) + (
        f"\n\nWith {r['free_bytes'] / 1e9:.1f} GB free, at {length} tokens: token budget {budget} "
        f"(batch {budget // length if budget else 0})" if free else "\n\nPass --gpu-mem GB for a token budget."))
    return 0


def _plan_dtype(setting: str) -> str:
    """The dtype a plan is for: ``auto`` is what the encoder would use here (CUDA: bf16/fp16; else fp16, the card's)."""
    if setting != "auto":
        return setting
    try:
        import torch

        if torch.cuda.is_available():
            return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    except Exception:  # noqa: BLE001 - planning works without torch's CUDA
        pass
    return "float16"


def _measured_free() -> int | None:
    try:
        from kademe.embed.oom import free_memory

        return free_memory()
    except Exception:  # noqa: BLE001 - a plan without a GPU is still a plan
        return None


def cmd_upgrade(args: argparse.Namespace) -> int:
    _prefect_defaults()
    from flows.upgrade import upgrade_years

    import inspect

    s = settings_from_args(args)
    accepted = inspect.signature(upgrade_years.fn).parameters
    result = upgrade_years(parse_years(args.years), **{k: v for k, v in s.flow_parameters().items() if k in accepted})
    _emit(args, result, lambda r: "\n".join(f"{y}: {v['status']}, degraded {v['degraded']}, re-embedded {v['upgraded']}" for y, v in r["years"].items()))
    return 0 if all(v["status"] == "completed" for v in result["years"].values()) else 1


def _emit(args: argparse.Namespace, result: dict, fmt) -> None:
    print(json.dumps(result, ensure_ascii=False, indent=None if args.json else 2) if args.json else fmt(result))


def _format_summary(result: dict) -> str:
    head = f"{'year':<6}{'status':<11}{'read':>7}{'docs':>7}{'dups':>6}{'rej':>6}{'chunks':>8}{'upserted':>9}  {'cached':<39}{'device':<7}{'sec':>7}"
    lines = [head]
    for year, y in result["years"].items():
        c = y["counts"]
        lines.append(f"{year:<6}{y['status']:<11}{c['read']:>7}{c['documents']:>7}{c['duplicates']:>6}{c['rejected']:>6}"
                     f"{c['chunks']:>8}{c['upserted']:>9}  {','.join(y['cached']) or '-':<39}{y['device']:<7}{y['seconds']:>7.1f}"
                     + ("  DEGRADED" if y["degraded"] else "") + (f"  {len(y['oom_events'])} OOM" if y["oom_events"] else ""))
        if y.get("error"):
            lines.append(f"      error: {y['error']}")
    return "\n".join(lines)


COMMANDS = {"ingest": cmd_ingest, "verify": cmd_verify, "search": cmd_search, "demo": cmd_demo, "plan": cmd_plan, "upgrade": cmd_upgrade}

if __name__ == "__main__":
    sys.exit(main())
