"""`portlens run --watch`: ingests files as they land, detects, stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

from portlens.store import Store

from test_cli import rdp_history


def wait_for(check, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.2)
    return False


def test_watch_ingests_detects_and_stops_on_sigterm(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    db, alerts = tmp_path / "s.duckdb", tmp_path / "alerts.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "portlens", "run", "--watch", str(inbox), "--db", str(db),
                             "--every", "0.5s", "--alerts", str(alerts)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        staged = rdp_history(tmp_path / "rdp.jsonl", datetime(2024, 5, 15, tzinfo=timezone.utc))
        os.utime(staged, (time.time() - 60, time.time() - 60))  # settled: not being written
        os.replace(staged, inbox / "rdp.jsonl")
        assert wait_for(lambda: _ingested(db))
        # On demand: SIGUSR1 runs detect now (the first detect ran before the file landed).
        proc.send_signal(signal.SIGUSR1)
        assert wait_for(lambda: alerts.exists() and alerts.read_text().strip())
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped" in err and "Traceback" not in err
    [alert] = [json.loads(l) for l in alerts.read_text().splitlines()]
    assert alert["DstPortNumber"] == "3389"


def _ingested(db) -> bool:
    if not db.exists():
        return False
    try:
        with Store(str(db), read_only=True) as store:
            return store.status()["sessions"] > 0
    except Exception:
        return False


def test_once_mode_and_no_duplicate_alerts(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    data = rdp_history(inbox / "rdp.jsonl", datetime(2024, 5, 15, tzinfo=timezone.utc))
    os.utime(data, (time.time() - 60, time.time() - 60))
    db, alerts = tmp_path / "s.duckdb", tmp_path / "alerts.jsonl"
    cmd = [sys.executable, "-m", "portlens", "run", "--watch", str(inbox), "--db", str(db),
           "--alerts", str(alerts), "--once"]
    for _ in range(2):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
    assert len(alerts.read_text().splitlines()) == 1  # the second run found the same alert id
