"""``kademe demo``: the whole job on the bundled sample corpus (three years), then one search.

The sample (``kademe/data/sample/yargitay_{2021,2022,2023}.ndjson``) is copied into the work
directory, ingested by the ``ingest-years`` flow on the CPU into the collection ``yargitay-demo``,
and searched with a sentence that only one sample decision holds. Run again with the same work
directory, every stage reuses its checkpoint.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

from flows.launch import run_ingest
from kademe.search import search
from kademe.settings import Settings

YEARS = [2021, 2022, 2023]


def run_demo(workdir: Path | None = None) -> dict:
    """Ingest the sample corpus into ``workdir`` (default: a new temporary folder) and search it.

    Returns:
        The ingest result (``{"years": {...}}``) with ``seconds`` (the ingest's), ``search``
        (``{"query", "hits", ...}``, top 3) and ``workdir``.
    """
    workdir = Path(workdir or tempfile.mkdtemp(prefix="kademe-demo-"))
    data = workdir / "data"
    if not data.exists():
        copy_sample_corpus(data)
    s = Settings(source=str(data / "yargitay_{year}.ndjson"), workdir=workdir, collection="yargitay-demo", device="cpu")
    print(f"kademe demo: sample corpus in {data}, work directory {workdir}", file=sys.stderr)
    started = time.monotonic()
    result = run_ingest(s, YEARS)
    result["seconds"] = round(time.monotonic() - started, 2)
    query = demo_query(data)
    result["search"] = {"query": query, **search(query, s, top_k=3)}
    result["workdir"] = str(workdir)
    return result


def copy_sample_corpus(dest: Path) -> list[Path]:
    """Copy the packaged sample corpus (``kademe/data/sample/*.ndjson``) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for item in resources.files("kademe").joinpath("data", "sample").iterdir():
        if item.name.endswith(".ndjson"):
            (dest / item.name).write_bytes(item.read_bytes())
            copied.append(dest / item.name)
    return sorted(copied)


def demo_query(data: Path) -> str:
    """A sentence from the claim paragraph of the first 2022 sample decision (unique to that decision)."""
    with open(data / "yargitay_2022.ndjson", "rb") as f:
        first = json.loads(f.readline().decode("utf-8-sig"))
    paragraph = first["text"].split("\n\n")[3]
    return max(paragraph.split(". "), key=len).rstrip(".") + "."
