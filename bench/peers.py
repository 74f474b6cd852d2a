"""kademe against its peers, side by side in one run: bare encode, the by-hand script, LlamaIndex.

Every peer embeds the same chunk texts with the same model (packaged all-MiniLM-L6-v2, ``cpu``,
batch 32) and is timed as one whole subprocess: Python start-up, imports and model load included,
the same for all. Repetitions are interleaved (bare, by-hand, llamaindex, kademe cold, kademe warm,
then again) and medians are reported as ratios to bare encode, the floor.

  bare         SentenceTransformer.encode of kademe's chunk texts (read from the chunk checkpoint)
  by-hand      encode 32 chunk texts, upsert them to local Qdrant, repeat
  llamaindex   IngestionPipeline(HuggingFaceEmbedding -> QdrantVectorStore, local), TextNodes, no splitter
  kademe-cold  kademe ingest ... --json on the raw year, fresh workdir, end to end, with an existing
               Prefect home (its database made before the first round)
  kademe-fresh the same with a fresh Prefect home each round (Prefect creates its database: a first run)
  kademe-warm  the same command again (every stage a checkpoint hit)

kademe runs as ``python -m kademe.cli`` (what the ``kademe`` command runs), so the code measured is
the checkout's even where an older ``kademe`` script is installed.

Example:
    python bench/peers.py --docs 1000 --repeat 3
    python bench/peers.py --docs 5 --repeat 1 --skip-llamaindex --out /tmp/peers

Writes ``<out>/peers.json`` and ``<out>/peers.png`` and prints a table. Only the standard library is
imported at the top: a worker subprocess (``peers.py _worker NAME ...``) pays for its own imports.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import machine, versions  # bench/_machine.py

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
BATCH = 32
PEERS = ("bare", "by-hand", "llamaindex", "kademe-cold", "kademe-fresh", "kademe-warm")
LLAMA_MODULES = ("llama_index.core", "llama_index.embeddings.huggingface", "llama_index.vector_stores.qdrant")
PIP_BENCH = "pip install 'kademe[bench]'  # llama-index-core llama-index-embeddings-huggingface llama-index-vector-stores-qdrant matplotlib"
VERSIONS = ("torch", "sentence-transformers", "transformers", "qdrant-client", "prefect", "llama-index-core",
            "llama-index-embeddings-huggingface", "llama-index-vector-stores-qdrant", "kademe")
TARGET_COLD = 1.05  # kademe cold <= 1.05 x bare encode (issue 14)
TARGET_WARM = 0.10  # kademe warm <= 0.10 x kademe cold
ENV = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


# -- workers: each runs in its own subprocess and prints one "BENCH {json}" line of inner timings --
def _chunk_rows(path: str, columns: list[str]) -> dict[str, list]:
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=columns).to_pydict()


def work_bare(a: argparse.Namespace) -> dict:
    """The floor: load the model, encode every chunk text once."""
    t = time.perf_counter()
    from sentence_transformers import SentenceTransformer

    texts = _chunk_rows(a.chunks, ["text"])["text"]
    t_import = time.perf_counter()
    model = SentenceTransformer(a.model_dir, device="cpu")
    t_load = time.perf_counter()
    vecs = model.encode(texts, batch_size=BATCH, normalize_embeddings=True, show_progress_bar=False)
    t_end = time.perf_counter()
    return {"chunks": len(vecs), "import": t_import - t, "load": t_load - t_import, "encode": t_end - t_load}


def work_by_hand(a: argparse.Namespace) -> dict:
    """The script users write today: encode a batch of 32, upsert it to local Qdrant, repeat."""
    t = time.perf_counter()
    from qdrant_client import QdrantClient, models
    from sentence_transformers import SentenceTransformer

    rows = _chunk_rows(a.chunks, ["doc_id", "chunk_index", "year", "text"])
    t_import = time.perf_counter()
    model = SentenceTransformer(a.model_dir, device="cpu")
    client = QdrantClient(path=a.qdrant)
    client.create_collection(a.collection, vectors_config=models.VectorParams(
        size=model.get_sentence_embedding_dimension(), distance=models.Distance.COSINE))
    t_load = time.perf_counter()
    encode = upsert = 0.0
    for start in range(0, len(rows["text"]), BATCH):
        t0 = time.perf_counter()
        vecs = model.encode(rows["text"][start : start + BATCH], batch_size=BATCH, normalize_embeddings=True, show_progress_bar=False)
        t1 = time.perf_counter()
        client.upsert(a.collection, points=[
            models.PointStruct(id=start + j, vector=v.tolist(), payload={k: rows[k][start + j] for k in rows})
            for j, v in enumerate(vecs)])
        encode, upsert = encode + t1 - t0, upsert + time.perf_counter() - t1
    count = client.count(a.collection, exact=True).count
    client.close()
    return {"chunks": count, "import": t_import - t, "load": t_load - t_import, "encode": encode, "upsert": upsert}


def work_llamaindex(a: argparse.Namespace) -> dict:
    """IngestionPipeline: HuggingFaceEmbedding -> QdrantVectorStore (local mode), one TextNode per chunk."""
    t = time.perf_counter()
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.schema import TextNode
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    rows = _chunk_rows(a.chunks, ["point_id", "doc_id", "chunk_index", "year", "text"])
    meta = ("doc_id", "chunk_index", "year")
    # Metadata is kept out of the embedded text, so LlamaIndex encodes exactly the chunk texts.
    nodes = [TextNode(id_=rows["point_id"][i], text=text, metadata={k: rows[k][i] for k in meta},
                      excluded_embed_metadata_keys=list(meta), excluded_llm_metadata_keys=list(meta))
             for i, text in enumerate(rows["text"])]
    t_import = time.perf_counter()
    embed = HuggingFaceEmbedding(model_name=a.model_dir, device="cpu", embed_batch_size=BATCH)
    client = QdrantClient(path=a.qdrant)
    pipeline = IngestionPipeline(transformations=[embed], vector_store=QdrantVectorStore(a.collection, client=client))
    t_load = time.perf_counter()
    pipeline.run(nodes=nodes)
    t_run = time.perf_counter()
    count = client.count(a.collection, exact=True).count
    client.close()
    return {"chunks": count, "import": t_import - t, "load": t_load - t_import, "run": t_run - t_load}


WORKERS = {"bare": work_bare, "by-hand": work_by_hand, "llamaindex": work_llamaindex}


def worker_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="peers.py _worker")
    p.add_argument("name", choices=sorted(WORKERS))
    p.add_argument("--chunks", required=True)
    p.add_argument("--model-dir", required=True)
    p.add_argument("--qdrant")
    p.add_argument("--collection", default="peers")
    a = p.parse_args(argv)
    print("BENCH " + json.dumps(WORKERS[a.name](a)), flush=True)
    return 0


# -- the parent: set up once, run the peers interleaved, summarise -------------------------------
def setup(work: Path, docs: int, year: int, seed: int) -> dict:
    """Write the corpus and produce kademe's chunks with its read/clean/chunk stages (not timed)."""
    from kademe.chunk import chunk_texts
    from kademe.clean import clean_records
    from kademe.models import resolve_model
    from kademe.settings import Settings
    from kademe.testing.sample import write_corpus
    from kademe.sources import read_year

    source = work / "data" / "yargitay_{year}.ndjson"
    write_corpus(str(source).format(year=year), year, docs, seed=seed, messy=False)
    s = Settings(source=str(source), workdir=work / "setup", model=MODEL, device="cpu", batch_size=BATCH)
    import pyarrow.parquet as pq

    chunks = work / "setup" / "chunks.parquet"  # the year's chunks in one file, for the workers
    pq.write_table(chunk_texts(clean_records(read_year(year, s), year, s), year, s).table(), chunks)
    n_tokens = pq.read_table(chunks, columns=["n_tokens"]).column("n_tokens").to_pylist()
    return {"source": str(source), "chunks_path": str(chunks), "chunks": len(n_tokens), "tokens": sum(n_tokens),
            "model_dir": str(resolve_model(MODEL)), "year": year}


def kademe_command(corpus: dict, workdir: Path) -> list[str]:
    return [sys.executable, "-m", "kademe.cli", "ingest", "--source", corpus["source"], "--years", str(corpus["year"]), "--collection", "peers",
                   "--workdir", str(workdir), "--device", "cpu", "--batch-size", str(BATCH), "--json"]


def peer_command(name: str, corpus: dict, run_dir: Path, rep: int) -> list[str]:
    if name == "kademe-fresh":
        return kademe_command(corpus, run_dir / f"kademe-fresh-{rep}")
    if name.startswith("kademe"):
        return kademe_command(corpus, run_dir / f"kademe-{rep}")  # warm reuses the cold run's workdir
    return [sys.executable, str(Path(__file__).resolve()), "_worker", name, "--chunks", corpus["chunks_path"],
            "--model-dir", corpus["model_dir"], "--qdrant", str(run_dir / f"{name}-{rep}" / "qdrant")]


def run_peer(name: str, corpus: dict, run_dir: Path, rep: int, env: dict) -> dict:
    """One timed subprocess: wall seconds, load average, and what the peer reported about itself."""
    cmd = peer_command(name, corpus, run_dir, rep)
    if name.startswith("kademe"):
        env = {**env, "PREFECT_HOME": str(run_dir / (f"prefect-fresh-{rep}" if name == "kademe-fresh" else "prefect-existing"))}
    log = run_dir / f"{name}-{rep}.log"
    load = os.getloadavg()[0]
    before, busy = resource.getrusage(resource.RUSAGE_CHILDREN), machine_busy()
    t = time.perf_counter()
    with open(log, "wb") as err:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, env=env, cwd=run_dir)
    seconds = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the peer and every process it waited for
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    others = machine_busy() - busy - cpu  # CPU seconds other people's jobs took meanwhile
    out = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-15:]
        raise RuntimeError(f"{name} (rep {rep}) exited {proc.returncode}: {' '.join(cmd)}\n" + "\n".join(tail))
    run = {"seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3), "loadavg_1m": round(load, 2),
           "others_cpu_share": round(max(others, 0.0) / (seconds * len(os.sched_getaffinity(0))), 3)}
    if name.startswith("kademe"):
        year = json.loads(out)["years"][str(corpus["year"])]
        run.update(chunks=year["counts"]["upserted"], flow_seconds=year["seconds"], cached=year["cached"], status=year["status"])
    else:
        inner = json.loads(next(line for line in out.splitlines() if line.startswith("BENCH "))[6:])
        run.update(chunks=inner.pop("chunks"), inner={k: round(v, 3) for k, v in inner.items()})
    if run["chunks"] != corpus["chunks"]:
        raise RuntimeError(f"{name} stored {run['chunks']} chunks, expected {corpus['chunks']} (see {log})")
    return run


PRIME = "from flows.launch import prepare_prefect; prepare_prefect().result()"


def prime_prefect_home(home: Path, env: dict) -> None:
    """Give ``home`` its Prefect database before the first round (the "existing" home kademe-cold runs with)."""
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join([str(Path(root) / "src"), root, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    subprocess.run([sys.executable, "-c", PRIME], env={**env, "PREFECT_HOME": str(home), "PYTHONPATH": path}, check=True,
                   capture_output=True, timeout=600)


def machine_busy() -> float:
    """CPU seconds all processes on this machine have used since boot (``/proc/stat``), or 0 where unknown."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def summarize(runs: dict[str, list[dict]], skipped: dict[str, str], chunks: int) -> dict:
    """Medians per peer, each as a ratio to bare encode, and the targets.

    Args:
        runs: peer name -> its timed runs (``{"seconds": float, ...}``), in run order.
        skipped: peer name -> why it did not run.
        chunks: chunks every peer embedded.

    Returns:
        ``{"peers": {name: {...} | {"skipped": why}}, "ratios": {...}, "pair_ratios": {...}, "targets": {...}}``;
        ``pair_ratios`` holds, per peer, its run of each round over bare's run of the same round
        (runs are interleaved, so a pair shares the machine's state of that moment), and their median.

    Example:
        >>> summarize({"bare": [{"seconds": 10}], "kademe-cold": [{"seconds": 10.5}]}, {}, 100)["ratios"]
        {'kademe-cold/bare': 1.05}
    """
    med = {name: statistics.median(r["seconds"] for r in rs) for name, rs in runs.items() if rs}
    cpu = {name: statistics.median(r["cpu_seconds"] for r in rs) for name, rs in runs.items() if rs and "cpu_seconds" in rs[0]}
    bare = med["bare"]
    peers: dict[str, dict] = {}
    for name in PEERS:
        if name in skipped:
            peers[name] = {"skipped": skipped[name]}
        elif name in med:
            peers[name] = {"seconds": round(med[name], 3), "seconds_per_run": [r["seconds"] for r in runs[name]],
                           "n": len(runs[name]), "chunks": chunks, "chunks_per_s": round(chunks / med[name], 2),
                           "x_bare": round(med[name] / bare, 3), "runs": runs[name]}
            if name in cpu and "bare" in cpu:  # CPU seconds: less swayed than wall time by other jobs on a shared box
                peers[name].update(cpu_seconds=round(cpu[name], 3), cpu_x_bare=round(cpu[name] / cpu["bare"], 3))
            if all("others_cpu_share" in r for r in runs[name]):  # how busy the box was with other jobs
                peers[name]["others_cpu_share"] = statistics.median(r["others_cpu_share"] for r in runs[name])
    ratios: dict[str, float] = {}
    targets: dict[str, dict] = {}
    if "kademe-cold" in med:
        cold = med["kademe-cold"]
        ratios["kademe-cold/bare"] = round(cold / bare, 3)
        targets[f"kademe cold <= {TARGET_COLD:.2f} x bare"] = _target(cold / bare, TARGET_COLD)
        if "kademe-warm" in med:
            ratios["kademe-warm/kademe-cold"] = round(med["kademe-warm"] / cold, 3)
            targets["kademe warm <= 0.10 x cold"] = _target(med["kademe-warm"] / cold, TARGET_WARM)
        if "kademe-fresh" in med:
            ratios["kademe-fresh/bare"] = round(med["kademe-fresh"] / bare, 3)
            targets[f"kademe fresh Prefect home <= {TARGET_COLD:.2f} x bare"] = _target(med["kademe-fresh"] / bare, TARGET_COLD)
        for peer in ("by-hand", "llamaindex"):
            if peer in med:
                ratios[f"kademe-cold/{peer}"] = round(cold / med[peer], 3)
                targets[f"kademe cold faster than {peer}"] = _target(cold / med[peer], 1.0, strict=True)
    return {"peers": peers, "ratios": ratios, "pair_ratios": pair_ratios(runs), "targets": targets}


def pair_ratios(runs: dict[str, list[dict]]) -> dict[str, dict]:
    """Each peer's seconds over bare's in the same round, per round and their median.

    Example:
        >>> pair_ratios({"bare": [{"seconds": 10}, {"seconds": 20}], "kademe-cold": [{"seconds": 11}, {"seconds": 20}]})
        {'kademe-cold/bare': {'per_round': [1.1, 1.0], 'median': 1.05}}
    """
    bare = [r["seconds"] for r in runs.get("bare", [])]
    out: dict[str, dict] = {}
    for name in PEERS:
        if name == "bare" or not runs.get(name):
            continue
        per = [round(r["seconds"] / b, 3) for r, b in zip(runs[name], bare)]
        out[f"{name}/bare"] = {"per_round": per, "median": round(statistics.median(per), 3)}
    return out


def _target(value: float, limit: float, strict: bool = False) -> dict:
    return {"value": round(value, 3), "limit": limit, "met": value < limit if strict else value <= limit}


def llama_missing() -> str | None:
    """Why LlamaIndex cannot run here, or None (checked without importing it)."""
    missing = [m for m in LLAMA_MODULES if _find_spec(m) is None]
    return f"not installed ({', '.join(missing)}): {PIP_BENCH}" if missing else None


def _find_spec(module: str):
    try:
        return importlib.util.find_spec(module)
    except ModuleNotFoundError:
        return None


def format_table(result: dict) -> str:
    lines = [f"{'peer':<13}{'seconds':>9}{'chunks/s':>10}{'x bare':>8}{'cpu s':>9}{'cpu x bare':>12}{'others busy':>13}"]
    for name, p in result["peers"].items():
        if "skipped" in p:
            lines.append(f"{name:<13}  skipped: {p['skipped']}")
        else:
            lines.append(f"{name:<13}{p['seconds']:>9.1f}{p['chunks_per_s']:>10.2f}{p['x_bare']:>8.3f}"
                         f"{p.get('cpu_seconds', float('nan')):>9.1f}{p.get('cpu_x_bare', float('nan')):>12.3f}"
                         + (f"{p['others_cpu_share']:>13.0%}" if "others_cpu_share" in p else f"{'-':>13}"))
    c = result["corpus"]
    lines.append(f"\n{c['docs']} decisions of {c['year']} -> {c['chunks']} chunks ({c['tokens']} tokens); "
                 f"median of N={result['repeat']} interleaved run(s) each; {result['machine']['cpu']}, "
                 f"{result['machine']['usable_cores']} cores")
    for name, pair in result.get("pair_ratios", {}).items():
        lines.append(f"  {name + ' per round':<34} {' / '.join(f'{x:.3f}' for x in pair['per_round'])}  median {pair['median']:.3f}")
    for name, t in result["targets"].items():
        lines.append(f"  {name:<34} {t['value']:.3f}  {'met' if t['met'] else 'MISSED'}")
    busiest = max((p.get("others_cpu_share", 0.0) for p in result["peers"].values()), default=0.0)
    if busiest > 0.10:
        lines.append(f"warning: other jobs took up to {busiest:.0%} of the CPU during a run; wall-time ratios are skewed. "
                     "Rerun on a quiet machine, or with --repeat 3.")
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    """Bar chart of the median seconds per peer, labelled with the ratio to bare encode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [(n, p) for n, p in result["peers"].items() if "seconds" in p]
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    colors = ["#888888" if n == "bare" else "#1f77b4" if n.startswith("kademe") else "#ff7f0e" for n, _ in done]
    bars = ax.barh([n for n, _ in done][::-1], [p["seconds"] for _, p in done][::-1], color=colors[::-1])
    for bar, (_, p) in zip(bars, done[::-1]):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {p['seconds']:.1f} s  {p['x_bare']:.2f}x", va="center", fontsize=9)
    bare = result["peers"]["bare"]["seconds"]
    ax.axvline(bare * TARGET_COLD, color="red", linestyle="--", linewidth=1, label=f"target: {TARGET_COLD:.2f} x bare")
    c = result["corpus"]
    ax.set_xlabel("seconds per run, whole subprocess (median)")
    ax.set_title(f"{c['chunks']} chunks, {MODEL.split('/')[-1]}, cpu, batch {BATCH}, N={result['repeat']}", fontsize=10)
    ax.set_xlim(0, max(p["seconds"] for _, p in done) * 1.35)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_worker"]:
        return worker_main(argv[1:])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=int, default=1000, help="decisions in the corpus (default: 1000)")
    p.add_argument("--year", type=int, default=2021)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeat", type=int, default=1, help="interleaved repetitions; medians are reported")
    p.add_argument("--skip-llamaindex", action="store_true", help="do not run the LlamaIndex peer")
    p.add_argument("--peers", nargs="+", choices=PEERS, default=list(PEERS), metavar="PEER",
                   help=f"run only these ({', '.join(PEERS)}); bare is the baseline and always needed")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results", help="folder for peers.json and peers.png")
    p.add_argument("--workdir", type=Path, help="scratch folder (default: a temporary one, removed at the end)")
    a = p.parse_args(argv)
    if a.docs < 1 or a.repeat < 1:
        p.error("--docs and --repeat must be at least 1")
    if "bare" not in a.peers or ("kademe-warm" in a.peers and "kademe-cold" not in a.peers):
        p.error("--peers must include bare (the baseline), and kademe-cold whenever kademe-warm (it reruns that workdir)")

    work = a.workdir or Path(tempfile.mkdtemp(prefix="kademe-peers-"))
    run_dir = work / "runs"
    run_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **ENV}
    skipped = {"llamaindex": "--skip-llamaindex"} if a.skip_llamaindex else {}
    if "llamaindex" not in skipped and (why := llama_missing()):
        skipped["llamaindex"] = why
    info = {"machine": machine(), "versions": versions(VERSIONS)}
    print(f"peers: setting up {a.docs} decisions in {work}", file=sys.stderr)
    corpus = setup(work, a.docs, a.year, a.seed)
    runs: dict[str, list[dict]] = {n: [] for n in PEERS if n in a.peers and n not in skipped}
    if {"kademe-cold", "kademe-warm"} & set(runs):
        prime_prefect_home(run_dir / "prefect-existing", env)
    try:
        for rep in range(a.repeat):
            for name in runs:
                try:
                    runs[name].append(run_peer(name, corpus, run_dir, rep, env))
                except RuntimeError as e:
                    if name != "llamaindex":
                        raise
                    print(f"peers: llamaindex failed, recorded as skipped: {e}", file=sys.stderr)
                    skipped["llamaindex"] = f"failed: {str(e).splitlines()[-1][:300]}"
                print(f"peers: rep {rep + 1}/{a.repeat} {name}: "
                      f"{runs[name][-1]['seconds'] if name not in skipped else 'skipped'} s", file=sys.stderr)
            runs = {n: rs for n, rs in runs.items() if n not in skipped}
    finally:
        if a.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    result = {"name": "peers", "command": "python bench/peers.py " + " ".join(argv), "repeat": a.repeat,
              "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "corpus": {"docs": a.docs, "year": a.year, "seed": a.seed, "chunks": corpus["chunks"], "tokens": corpus["tokens"]},
              "settings": {"model": MODEL, "device": "cpu", "batch_size": BATCH},
              **summarize(runs, skipped, corpus["chunks"]), **info}
    result["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    a.out.mkdir(parents=True, exist_ok=True)
    write_json(a.out / "peers.json", result)
    if _find_spec("matplotlib") is None:
        print(f"peers: matplotlib not installed, no peers.png ({PIP_BENCH})", file=sys.stderr)
    else:
        plot(result, a.out / "peers.png")
    print(format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
