"""The shape of the code: stages know nothing of Prefect; flow parameters are the settings."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from kademe.settings import Settings


@pytest.mark.parametrize("module", ["kademe.sources", "kademe.clean", "kademe.chunk", "kademe.lexical.stage", "kademe.embed.stage",
                                    "kademe.embed.ladder", "kademe.store", "kademe.upsert", "kademe.verify", "kademe.search",
                                    "kademe.upgrade", "kademe.report", "kademe.cli"])
def test_stage_modules_import_without_prefect(module):
    code = f"import sys, {module}; print('prefect' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_flow_parameters_are_the_settings_without_secrets():
    from flows.ingest import ingest_year, ingest_years

    expected = set(Settings.model_fields) - {"qdrant_api_key"}
    assert set(inspect.signature(ingest_year.fn).parameters) - {"year", "build_index"} == expected
    assert set(inspect.signature(ingest_years.fn).parameters) - {"years"} == expected
    assert set(Settings().flow_parameters()) == expected


def test_the_product_path_imports_no_test_instruments():
    """Issue 11: the synthetic-corpus generator and the derived models live in kademe.testing, off the product path."""
    code = ("import sys, kademe.cli, kademe.upsert, kademe.verify, kademe.upgrade, kademe.search, flows.ingest; "
            "print(sorted(m for m in sys.modules if m.startswith('kademe.testing') or m == 'kademe.sample'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_demo_copies_the_packaged_sample_files(tmp_path):
    from importlib import resources

    from flows.demo import copy_sample_corpus

    copied = copy_sample_corpus(tmp_path)
    packaged = resources.files("kademe").joinpath("data", "sample")
    assert [p.name for p in copied] == ["yargitay_2021.ndjson", "yargitay_2022.ndjson", "yargitay_2023.ndjson"]
    assert all(p.read_bytes() == packaged.joinpath(p.name).read_bytes() for p in copied)


def test_instruments_are_read_at_their_seams_only():
    """Issue 11: the encoder seam (where the Ladder's card is chosen: embed/card.py, issue 19), the store seam
    (store.base.call) and the crash points read the KADEME_FAULT_* instruments; no other production module does."""
    import re
    from pathlib import Path

    import kademe

    root = Path(kademe.__file__).parent
    readers = {}
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("testing/") or rel == "faults.py":
            continue
        text = path.read_text()
        found = set(re.findall(r"\b(fake_cuda|fake_free_bytes|check_oom|maybe_store_error|card_rate|card_log_path)\(", text))
        found |= set(re.findall(r"environ[^\n]*(KADEME_FAULT_\w+)", text))
        if found:
            readers[rel] = found
    assert set(readers) <= {"embed/card.py", "store/base.py"}, readers
