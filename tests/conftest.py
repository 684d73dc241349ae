from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
SAMPLES = SHARED / "samples"


@pytest.fixture
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip("../shared/samples is not present")
    return SAMPLES


CONFIG_HEADER = "Ports,App,Protocol,Direction,Action,Type,ThresholdType,Threshold,Severity,Tactic,Name,Description\n"


@pytest.fixture
def write_config(tmp_path):
    """Write a monitor configuration CSV from data rows (the header is added)."""
    def write(*rows: str) -> Path:
        path = tmp_path / "config.csv"
        path.write_text(CONFIG_HEADER + "".join(r + "\n" for r in rows))
        return path
    return write


def _json_value(value):
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


@pytest.fixture
def asim_jsonl(tmp_path):
    """Write ASIM rows (dicts; datetimes become ISO-8601 UTC) as a JSON-lines file."""
    def write(name: str, rows) -> Path:
        path = tmp_path / name
        path.write_text("".join(json.dumps({k: _json_value(v) for k, v in r.items()}) + "\n" for r in rows))
        return path
    return write


@pytest.fixture
def make_store(tmp_path):
    """Open a store in tmp_path with these files ingested; closed after the test."""
    from portlens.store import Store
    opened = []

    def make(*files, name: str = "s.duckdb"):
        store = Store(str(tmp_path / name))
        opened.append(store)
        for f in files:
            store.ingest(str(f))
        return store
    yield make
    for store in opened:
        store.close()
