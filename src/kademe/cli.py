"""The ``kademe`` command: parse the arguments, call the Python API or the flows, format the result.

Results go to stdout (one JSON object with ``--json``), logs to stderr. Every user error becomes one
message in one place, ``user_error`` (a ``KademeError`` prints its message alone and exits 1; invalid
settings exit 2; an object store's refusal or a path that cannot be used is named), never a traceback. A command is a ``cmd_<name>`` function listed
in ``COMMANDS``, with its parser in ``kademe.cli_parser.build_parser`` and its human output in ``kademe.cli_format``; the flows are imported inside the commands
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
from kademe.cli_format import format_plan, format_summary, format_verify, warn_empty
from kademe.cli_parser import build_parser, parse_years
from kademe.settings import Settings

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
    _emit(args, result, format_summary)
    warn_empty(result)
    return 0 if all(y["status"] == "completed" for y in result["years"].values()) else 1


def cmd_verify(args: argparse.Namespace) -> int:
    from kademe.verify import verify_years

    s = settings_from_args(args)
    result = verify_years(s, parse_years(args.years))
    _emit(args, result, format_verify)
    return 0 if result["ok"] else 1


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
        print(format_summary(result))
        print(f"\nTotal {result['seconds']:.1f} s. Run again warm: kademe demo --workdir {result['workdir']}\n")
        print(f"Search: {result['search']['query']!r}")
        print(format_hits(result["search"]))
    warn_empty(result)
    return 0 if all(y["status"] == "completed" for y in result["years"].values()) else 1


def cmd_plan(args: argparse.Namespace) -> int:
    from kademe.embed.plan import plan_model

    result = plan_model(settings_from_args(args).model, gpu_mem_gb=args.gpu_mem, max_tokens=args.max_tokens, attention=args.attention, dtype=args.dtype)
    _emit(args, result, format_plan)
    return 0


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
    from kademe.collect import collect_years, format_collect
    from kademe.status import found_years

    s = settings_from_args(args)
    years = parse_years(args.years) if args.years else found_years(s.workdir, s.corpus)
    result = collect_years(s.workdir, years, s.corpus, dry_run=args.dry_run)
    _emit(args, result, format_collect)
    return 0


def _emit(args: argparse.Namespace, result: dict, fmt) -> None:
    print(json.dumps(result, ensure_ascii=False, indent=None if args.json else 2) if args.json else fmt(result))


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
