"""The CLI contract: names, flags, JSON keys, exit codes, and one clear line for a bad invocation."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kademe.cli import main, parse_years
from tests.conftest import MODEL, edge_store_held


@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["ingest", "--help"], ["verify", "--help"], ["search", "--help"],
                                  ["demo", "--help"], ["plan", "--help"], ["upgrade", "--help"],
                                  ["status", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0
    assert "usage: kademe" in capsys.readouterr().out


def test_ingest_help_documents_the_contract(capsys):
    with pytest.raises(SystemExit):
        main(["ingest", "--help"])
    out = capsys.readouterr().out
    for flag in ("--source", "--years", "--collection", "--workdir", "--model", "--device", "--batch-size", "--qdrant-url",
                 "--qdrant-api-key", "--json", "--fallback-model", "--token-budget"):
        assert flag in out


def test_parse_years_accepts_lists_and_ranges():
    assert parse_years(["2005", "2006-2008", "2011,2012"]) == [2005, 2006, 2007, 2008, 2011, 2012]


@pytest.mark.usefixtures("prefect_server")
def test_ingest_json_is_one_object_with_the_contract_keys(settings, capsys):
    s = settings()
    code = main(["ingest", "--source", s.source, "--years", "2011", "--collection", s.collection, "--workdir", str(s.workdir),
                 "--model", MODEL, "--device", "cpu", "--batch-size", "8", "--json"])
    out = capsys.readouterr().out
    result = json.loads(out)  # the whole of stdout is one JSON object
    year = result["years"]["2011"]
    assert code == 0
    assert {"status", "counts", "cached", "degraded", "oom_events", "model", "device", "seconds"} <= set(year)
    assert set(year["counts"]) == {"read", "documents", "duplicates", "rejected", "chunks", "embedded", "reused", "committed",
                                   "upserted"}  # reused and committed: issue 30
    assert year["counts"]["embedded"] + year["counts"]["reused"] + year["counts"]["committed"] == year["counts"]["chunks"]


def test_empty_query_is_one_line_and_exit_1(tmp_path, capsys):
    code = main(["search", "", "--workdir", str(tmp_path)])
    assert code == 1
    assert capsys.readouterr().err == "kademe: The query is empty: give words, a sentence or case numbers to search for.\n"


def run_cli(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kademe.cli", *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "{tmp}/nope_{{year}}.ndjson"], "Source file '{tmp}/nope_2011.ndjson' for year 2011 does not exist."),
        (["--source", "{tmp}/data/no_template.ndjson"], "has no '{{year}}' placeholder"),
        (["--source", "{tmp}/data/yargitay_{{year}}.ndjson", "--model", "{tmp}/no/such/model"], "Model path '{tmp}/no/such/model' does not exist."),
        (["--source", "{tmp}/data/yargitay_{{year}}.ndjson", "--model", "BAAI/bge-m3"], "Model 'BAAI/bge-m3' is not in the local cache"),
        (["--source", "{tmp}/data/yargitay_{{year}}.ndjson", "--years", "20x1"], "Invalid year '20x1'."),
        (["--source", "{tmp}/data/yargitay_{{year}}.ndjson", "--workdir", "/proc/kademe"], "Work directory '/proc/kademe' is not writable"),
        pytest.param(["--source", "{tmp}/data/yargitay_{{year}}.ndjson", "--qdrant-url", "http://127.0.0.1:9"],
                     "Qdrant at http://127.0.0.1:9 is not reachable.", marks=pytest.mark.slow),  # ~10 s of the store's retries
    ],
)
def test_bad_invocation_gives_one_clear_line(tmp_path, corpus, args, message):
    args = [a.format(tmp=tmp_path) for a in args]
    base = {"--years": "2011", "--workdir": str(tmp_path / "w"), "--collection": "c"}
    for flag, value in base.items():
        if flag not in args:
            args += [flag, value]
    proc = run_cli("ingest", *args)
    assert proc.returncode in (1, 2)
    assert message.format(tmp=tmp_path) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_locked_embedded_qdrant_is_a_clear_error(tmp_path, corpus):
    with edge_store_held(tmp_path / "w" / "qdrant" / "c"):
        proc = run_cli("ingest", "--source", str(corpus), "--years", "2011", "--workdir", str(tmp_path / "w"), "--collection", "c")
        assert proc.returncode == 1
        assert "is in use by another process" in proc.stderr and "Traceback" not in proc.stderr
