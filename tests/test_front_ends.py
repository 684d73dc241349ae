"""Every front end runs the same detect: the demo, `ingest DIR` + `detect`, `report`, a
one-day backtest, `run --watch --once`, `detect --summaries` and the Python API on a
DataFrame all raise the same alerts (the anomaly rule's and the static rows') on the same
data, and all that have raw sessions name the talkers."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import portlens
from portlens import formats


def cli(*args, cwd=None) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "portlens", *map(str, args)], capture_output=True,
                       text=True, cwd=cwd, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return r


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def ids(alerts: list[dict]) -> set[tuple[str, str]]:
    return {(a["id"], a["kind"]) for a in alerts}


def report_ids(path: Path) -> set[str]:
    return set(re.findall(r'<section class="alert [^"]*" id="alert-[0-9a-f]+" data-alert-id="([0-9a-f]+)"',
                          path.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("front-ends") / "demo"
    cli("demo", "--dir", folder, "--scale", "0.3")
    return folder


@pytest.fixture(scope="module")
def store(demo, tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("front-ends-store") / "s.duckdb"
    # The demo folder also holds the demo's store and report: skipped with a note, not errors.
    r = cli("ingest", demo, "--db", db)
    assert "skipped 2 file(s) portlens writes" in r.stderr
    assert "demo.duckdb" in r.stderr and "report.html" in r.stderr
    return db


@pytest.fixture(scope="module")
def detected(store) -> list[dict]:
    return jsonl(cli("detect", "--db", store, "--format", "jsonl").stdout)


def test_detect_has_both_rules_and_talkers(detected):
    kinds = sorted(a["kind"] for a in detected)
    assert kinds == ["anomaly", "anomaly", "static"]
    assert {a["DstPortNumber"] for a in detected} == {"389", "3389", "445"}
    for a in detected:
        assert a["explanation"]["raw_retained"] is True
        assert all(s["talkers"]["SrcIpAddr"] for s in a["series"])
    smb = next(a for a in detected if a["kind"] == "static")
    assert smb["series"][0]["talkers"]["SrcIpAddr"][0]["value"] == "10.1.7.31"  # the demo's SMB sweeper


def test_demo_report_and_detect_agree(demo, store, detected, tmp_path):
    assert report_ids(demo / "report.html") == {a["id"] for a in detected}
    cli("report", "--db", store, "--output", tmp_path / "r.html")
    assert report_ids(tmp_path / "r.html") == {a["id"] for a in detected}


def test_one_day_backtest_agrees(store, detected):
    as_of = next(a for a in detected if a["kind"] == "anomaly")["window"]["end"]
    backtest = jsonl(cli("detect", "--db", store, "--from", as_of, "--to", as_of, "--format", "jsonl").stdout)
    assert ids(backtest) == ids(detected)
    assert backtest == detected


def test_run_once_agrees(demo, detected, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    logs = inbox / "sessions.jsonl"
    shutil.copy(demo / "demo-sessions.jsonl", logs)
    old = time.time() - 60
    os.utime(logs, (old, old))  # settled: the watcher skips files still being written
    alerts = tmp_path / "alerts.jsonl"
    cli("run", "--watch", inbox, "--db", tmp_path / "w.duckdb", "--alerts", alerts, "--once")
    written = jsonl(alerts.read_text())
    assert ids(written) == ids(detected)
    assert all(s["talkers"]["SrcIpAddr"] for a in written for s in a["series"])


def test_detect_from_summaries_agrees(store, detected, tmp_path):
    exported = tmp_path / "summaries.parquet"
    cli("export-summaries", exported, "--db", store)
    from_summaries = jsonl(cli("detect", "--summaries", exported, "--format", "jsonl").stdout)
    assert ids(from_summaries) == ids(detected)
    # No raw sessions behind summaries: the alerts say so instead of naming talkers.
    assert all(a["explanation"]["raw_retained"] is False and a["explanation"]["notes"]
               for a in from_summaries)


def test_python_api_on_a_dataframe_agrees(demo, detected):
    pd = pytest.importorskip("pandas")
    rows = pd.read_json(demo / "demo-sessions.jsonl", lines=True)
    result = portlens.detect(rows)
    assert {(a.id, a.kind) for a in result.alerts} == ids(detected)
    assert all(isinstance(a.port, int) and a.talkers["SrcIpAddr"] for a in result.alerts)
    assert [formats.to_record(a) for a in result.alerts] == detected
