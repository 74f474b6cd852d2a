"""The shape of the code: stages know nothing of Prefect; flow parameters are the settings."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from kademe.settings import Settings


@pytest.mark.parametrize("module", ["kademe.sources", "kademe.clean", "kademe.chunk", "kademe.embed.stage",
                                    "kademe.embed.ladder", "kademe.store", "kademe.report", "kademe.cli"])
def test_stage_modules_import_without_prefect(module):
    code = f"import sys, {module}; print('prefect' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_flow_parameters_are_the_settings_without_secrets():
    from flows.ingest import ingest_year, ingest_years

    expected = set(Settings.model_fields) - {"qdrant_api_key"}
    assert set(inspect.signature(ingest_year.fn).parameters) - {"year"} == expected
    assert set(inspect.signature(ingest_years.fn).parameters) - {"years"} == expected
    assert set(Settings().flow_parameters()) == expected
