"""No traceback for any user error, on any command (issue 30 point 3).

Every command is driven with the mistakes a user makes: a bucket that cannot be reached or does not
exist, an unknown model, a missing collection, bad years, a source that is missing, a directory or
binary garbage, a directory with no year files, a wrong ``--qdrant-url``. Each must end in one
message on stderr (``kademe: <what is wrong>``, then what to do), a non-zero exit and no
``Traceback``. Most cases call ``kademe.cli.main`` in this process (fast); the ones that pass the
cheap checks of ``kademe ingest`` run as real processes, since ``ingest`` starts Prefect's server
in the background before its slower checks.
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import subprocess
import sys

import pytest

from kademe.cli import main
from kademe.settings import Settings
from kademe.store import open_store
from kademe.upsert import ensure_collection
from tests.conftest import MODEL, decision, write_ndjson
from tests.test_race import s3  # noqa: F401 - moto's S3 server on loopback, with one bucket
from tests.test_reliability import api_env, quiet_env  # noqa: F401 - api_env: the session's Prefect server

DEAD = "http://127.0.0.1:9"  # the discard port: nothing listens there (a refused connection)


def dead_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """The files and places the cases name (no case writes there): ``{tmp}``, ``{nobucket}`` (a bucket moto does
    not have), ``{unreachable}`` (a bucket whose endpoint the test points at a port nothing listens on) and
    ``{dead}`` (a Qdrant URL nothing answers)."""
    tmp = tmp_path_factory.mktemp("errors")
    write_ndjson(tmp / "data" / "yargitay_2011.ndjson", [decision(2011, n) for n in range(2)])
    (tmp / "garbage").mkdir()
    (tmp / "garbage" / "yargitay_2011.ndjson").write_bytes(bytes(range(256)) * 40 + b"\n\xff\xfe\x00\n")
    (tmp / "dirs" / "yargitay_2011.ndjson").mkdir(parents=True)  # a directory where a file is expected
    (tmp / "noyears").mkdir()
    (tmp / "noyears" / "README.txt").write_text("no year files here")
    (tmp / "afile").write_text("a file where a folder is expected")
    (tmp / "q").mkdir()  # an empty qdrant-client local-mode store: no collection
    manifest = tmp / "work" / "yargitay" / "2011" / "manifest" / "read"  # a partition the workdir holds (its checkpoints
    manifest.mkdir(parents=True)  # are not read before the store and the collection are checked)
    (manifest / "0-x.json").write_text("{}")
    s = Settings(workdir=tmp / "work", collection="c", model=MODEL)
    with open_store(s) as store:  # an empty collection 'c'
        ensure_collection(store, s)
    return {"tmp": str(tmp), "nobucket": "s3://kademe-no-such-bucket/w",
            "unreachable": "s3://kademe/w", "dead": DEAD}


@pytest.fixture
def place(files, s3, monkeypatch):  # noqa: F811
    """``files``, with moto's environment set (the standard AWS_* variables)."""
    from kademe.storage import _open

    for k, v in s3.items():
        monkeypatch.setenv(k, v)
    _open.cache_clear()  # obstore reads AWS_ENDPOINT_URL when a store is opened: one per case
    yield files
    _open.cache_clear()


def cli(argv: list[str]) -> tuple[int, str, str]:
    """``kademe ARGV`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse: an invalid option
            code = e.code
    return code, out.getvalue(), err.getvalue()


def assert_one_message(code: int, err: str, expected: str) -> None:
    """Non-zero exit; stderr is one ``kademe:`` message (the problem, then what to do) and no traceback."""
    assert code not in (0, None), err
    assert "Traceback" not in err, err
    assert expected in err, err
    if err.startswith("usage: kademe"):  # argparse: the usage, then one line naming the bad option
        assert err.strip().splitlines()[-1].startswith("kademe ") and ": error: " in err, err
        return
    message = err[err.index("kademe: "):] if "kademe: " in err else err
    first, _, advice = message.strip().partition("\n\n")
    assert "\n" not in first, f"the problem must fit one line: {first!r}"
    assert advice or any(verb in first for verb in ("Use ", "Pass ", "Give ", "Check ", "Run ")), \
        f"the message must say what to do: {message!r}"


UNREACHABLE = "cannot be reached"
NO_BUCKET = "NoSuchBucket"
S3_CASES = [  # (command argv, the place the workdir names, expected text)
    pytest.param(["verify", "--years", "2011"], "unreachable", UNREACHABLE, marks=pytest.mark.slow),
    (["verify", "--years", "2011"], "nobucket", NO_BUCKET),
    (["status"], "unreachable", UNREACHABLE),
    (["status"], "nobucket", NO_BUCKET),
    pytest.param(["upgrade", "--years", "2011", "--model", MODEL], "unreachable", UNREACHABLE, marks=pytest.mark.slow),
    (["upgrade", "--years", "2011", "--model", MODEL], "nobucket", NO_BUCKET),
]


@pytest.mark.parametrize(("argv", "where", "expected"), S3_CASES,
                         ids=[f"{c[0][0]}-{c[1]}" for c in (getattr(c, "values", c) for c in S3_CASES)])
def test_a_workdir_bucket_that_fails_is_one_line(place, monkeypatch, argv, where, expected):
    if where == "unreachable":
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{dead_port()}")
    code, out, err = cli([*argv, "--workdir", place[where], "--collection", "c", "--qdrant-url", f"path:{place['tmp']}/q"])
    assert_one_message(code, err, expected)
    assert f"Work directory '{place[where]}'" in err and "AWS_" in err
    assert out == ""


def slow(*case):
    """A case that waits out the store's retries (~7 s against a refused port): the slow layer's (test_cli.py
    keeps one such case, ingest's, in the fast layer)."""
    return pytest.param(*case, marks=pytest.mark.slow)


CASES = [  # (argv with {place} fields, expected text in the message)
    # ingest: the cheap checks, before Prefect starts
    (["ingest", "--source", "{tmp}/nope_{{year}}.ndjson", "--years", "2011"], "does not exist"),
    (["ingest", "--source", "{tmp}/dirs/yargitay_{{year}}.ndjson", "--years", "2011"], "is a directory, not a file"),
    (["ingest", "--source", "{tmp}/noyears", "--years", "2011"], "must hold exactly one file for year 2011"),
    (["ingest", "--source", "{tmp}/nofolder", "--years", "2011"], "has no '{{year}}' placeholder and is not a directory"),
    (["ingest", "--source", "{tmp}/afile", "--years", "2011"], "has no '{{year}}' placeholder"),
    (["ingest", "--source", "{tmp}/data/yargitay_{{year}}.ndjson", "--years", "20x1"], "Invalid year '20x1'"),
    (["ingest", "--source", "{tmp}/data/yargitay_{{year}}.ndjson", "--years", "2011", "--model", "no-such/model"],
     "Model 'no-such/model' is not in the local cache"),
    # verify
    (["verify", "--years", "1066"], "Years must lie between 1800 and 2200"),
    (["verify", "--years", "2011", "--workdir", "{tmp}/empty"], "No finished checkpoints for 2011"),
    (["verify", "--years", "2011", "--workdir", "{tmp}/work", "--collection", "nope"], "Collection 'nope' does not exist"),
    slow(["verify", "--years", "2011", "--workdir", "{tmp}/work", "--qdrant-url", "{dead}"], "is not reachable"),
    (["verify", "--years", "2011", "--workdir", "{tmp}/afile"], "is a file, not a folder"),
    # search
    (["search", "tazminat", "--workdir", "{tmp}/work", "--collection", "nope", "--mode", "lexical"], "does not exist"),
    (["search", "tazminat", "--qdrant-url", "path:{tmp}/q", "--collection", "nope", "--mode", "lexical"], "does not exist"),
    slow(["search", "tazminat", "--qdrant-url", "{dead}", "--collection", "nope", "--mode", "lexical"], "is not reachable"),
    (["search", "tazminat", "--model", "no-such/model", "--workdir", "{tmp}/work", "--collection", "c"], "Model 'no-such/model' is not in the local cache"),
    (["search", "tazminat", "--year", "20x1"], "invalid int value"),
    # plan
    (["plan", "--model", "no-such/model"], "Model 'no-such/model'"),
    (["plan", "--model", "{tmp}/afile"], "is not a model's config.json"),
    (["plan", "--model", MODEL, "--gpu-mem", "-3"], "--gpu-mem"),
    (["plan", "--model", MODEL, "--max-tokens", "0"], "--max-tokens"),
    # upgrade
    (["upgrade", "--years", "20x1"], "Invalid year '20x1'"),
    (["upgrade", "--years", "2011", "--model", "no-such/model", "--workdir", "{tmp}/work", "--collection", "c"], "Model 'no-such/model' is not in the local cache"),
    (["upgrade", "--years", "2012", "--workdir", "{tmp}/work"], "No finished checkpoints for 2012"),
    slow(["upgrade", "--years", "2011", "--workdir", "{tmp}/work", "--qdrant-url", "{dead}"], "is not reachable"),
    (["upgrade", "--years", "2011", "--workdir", "{tmp}/work", "--qdrant-url", "path:{tmp}/q", "--collection", "nope"], "does not exist"),
    # status
    (["status", "--years", "2011-2005"], "ranges low-high"),
    slow(["status", "--workdir", "{tmp}/work", "--qdrant-url", "{dead}"], "is not reachable"),
    (["status", "--workdir", "{tmp}/afile"], "is a file, not a folder"),
    # demo
    (["demo", "--workdir", "{tmp}/afile"], "is not a folder"),
]


@pytest.mark.parametrize(("argv", "expected"), CASES, ids=[f"{(c.values if hasattr(c, 'values') else c)[0][0]}-{i}" for i, c in enumerate(CASES)])
def test_a_user_error_is_one_message_and_a_non_zero_exit(place, argv, expected):
    code, out, err = cli([a.format(**place) for a in argv])
    assert_one_message(code, err, expected.format(**place))
    assert out == "" or argv[0] == "status", "status shows the workdir's part, then says what failed"


def kademe(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kademe.cli", *args], capture_output=True, text=True, timeout=180,
                          env={**quiet_env(), **(env or {})})


PROCESS_CASES = [  # (ingest argv, extra environment, expected text): past the cheap checks, as a user runs them
    pytest.param(["--workdir", "{unreachable}", "--qdrant-url", "path:{tmp}/q"], "unreachable", UNREACHABLE, id="unreachable-bucket",
                 marks=pytest.mark.slow),
    pytest.param(["--workdir", "{nobucket}", "--qdrant-url", "path:{tmp}/q"], None, NO_BUCKET, id="no-such-bucket",
                 marks=pytest.mark.slow),
    pytest.param(["--workdir", "{tmp}/work", "--qdrant-url", "{dead}"], None, "is not reachable", id="dead-qdrant",
                 marks=pytest.mark.slow),
    pytest.param(["--workdir", "{tmp}/afile/work"], None, "is not writable", id="workdir-under-a-file", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("argv", "endpoint", "expected"), PROCESS_CASES)
def test_ingest_past_the_cheap_checks_is_one_message(place, s3, argv, endpoint, expected):  # noqa: F811
    env = {**s3, "PREFECT_API_URL": DEAD + "/api"}  # no flow runs: the error comes first, and no temporary server starts
    if endpoint == "unreachable":
        env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{dead_port()}"
    proc = kademe("ingest", "--source", f"{place['tmp']}/data/yargitay_{{year}}.ndjson", "--years", "2011", "--collection", "c",
                  "--model", MODEL, *[a.format(**place) for a in argv], env=env)
    assert_one_message(proc.returncode, proc.stderr, expected)
    assert proc.stdout == ""


@pytest.mark.parametrize("argv", [["status", "--workdir", "{unreachable}"], ["plan", "--model", "no-such/model"]],
                         ids=["status", "plan"])
def test_as_a_process_too(place, s3, argv):  # noqa: F811
    """The same through the installed entry point's module: what a user's shell sees."""
    proc = kademe(*[a.format(**place) for a in argv], "--json", env={**s3, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{dead_port()}"})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and proc.stderr.startswith("kademe: "), proc.stderr
    assert proc.stdout == ""


@pytest.mark.slow
def test_a_year_whose_every_line_is_rejected_is_empty_with_a_warning(files, tmp_path, api_env):  # noqa: F811
    """A process, as a user runs it (in this process, Prefect's log handler would keep a captured stream)."""
    proc = kademe("ingest", "--source", f"{files['tmp']}/garbage/yargitay_{{year}}.ndjson", "--years", "2011",
                  "--workdir", str(tmp_path / "work"), "--collection", "c", "--model", MODEL, "--device", "cpu", "--json",
                  env=api_env)
    year = json.loads(proc.stdout)["years"]["2011"]
    rejects = str(tmp_path / "work" / "yargitay" / "2011" / "rejects.ndjson")
    assert proc.returncode == 1
    assert year["status"] == "empty" and year["counts"]["documents"] == 0 and year["counts"]["rejected"] == year["counts"]["read"] > 0
    assert rejects in year["error"]
    assert f"kademe: warning: yargitay 2011: every one of the {year['counts']['read']} lines was rejected" in proc.stderr
    assert rejects in proc.stderr and "Traceback" not in proc.stderr
