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


# ---- issue 13: the service starts useful (item 5) and reads growing files once (item 3) ----


from portlens import monitor  # noqa: E402
from portlens.service import Watcher  # noqa: E402


def _watcher(inbox, tmp_path, said, **kw) -> Watcher:
    return Watcher(inbox, str(tmp_path / "s.duckdb"), tmp_path / "alerts.jsonl", every=0.1,
                   log=said.append, **kw)


def test_first_detect_runs_as_soon_as_the_first_files_have_settled(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    said: list[str] = []
    w = _watcher(inbox, tmp_path, said, settle=30.0, first_detect_wait=600.0)
    cfg = monitor.load_config(None)
    w.scan()
    w._maybe_detect(cfg, once=False)
    w.scan()
    w._maybe_detect(cfg, once=False)
    assert said == ["first detect waits: no sessions have landed yet"]  # said once, not every scan
    data = rdp_history(inbox / "rdp.jsonl", datetime(2024, 5, 15, tzinfo=timezone.utc))
    os.utime(data, (time.time() - 60, time.time() - 60))
    (inbox / "live.log").write_text("")  # a file still being written
    w.scan()
    w._maybe_detect(cfg, once=False)
    assert said[-1] == "first detect waits: 1 file(s) still being written"
    os.remove(inbox / "live.log")
    w.scan()
    w._maybe_detect(cfg, once=False)
    assert said[-1].startswith("detect as of 2024-05-14") and "1 alerts, 1 new" in said[-1]
    w._maybe_detect(cfg, once=False)  # then on schedule (a day later), not at every scan
    assert not said[-1].startswith("detect skipped") and sum(s.startswith("detect as of") for s in said) == 1


def test_first_detect_does_not_wait_for_ever_on_a_writer_that_never_pauses(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    said: list[str] = []
    w = _watcher(inbox, tmp_path, said, settle=30.0, first_detect_wait=0.0)
    data = rdp_history(inbox / "rdp.jsonl", datetime(2024, 5, 15, tzinfo=timezone.utc))
    os.utime(data, (time.time() - 60, time.time() - 60))
    (inbox / "live.log").write_text("")
    w.scan()
    w._maybe_detect(monitor.load_config(None), once=False)
    assert said[-1].startswith("detect as of")


def test_a_slow_writer_is_never_counted_twice_in_watch(tmp_path):
    """A writer that pauses mid-line and between lines, across many scans: every complete line
    lands once, a partial line waits for its newline."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    said: list[str] = []
    w = _watcher(inbox, tmp_path, said, settle=0.0)
    log = inbox / "fw.log"
    rows = [json.dumps({"TimeGenerated": f"2024-05-14T10:{i // 60:02d}:{i % 60:02d}Z", "DstPortNumber": 22,
                        "NetworkProtocol": "TCP", "DvcAction": "Deny"}) + "\n" for i in range(40)]
    text = "".join(rows)
    cuts = sorted({0, len(text), *range(7, len(text), 173)})
    for a, b in zip(cuts, cuts[1:]):
        with open(log, "a") as f:
            f.write(text[a:b])
        os.utime(log, (time.time() - 5, time.time() - 5 + b / 1e6))  # settled, a new stamp each time
        w.scan()
    with Store(w.db, read_only=True) as store:
        assert store.status()["sessions"] == 40
        assert store.status()["quarantined"] == 0
    assert any("waits for its newline" in s for s in said)


def test_rotation_under_watch_is_not_counted_twice(tmp_path):
    import gzip
    import shutil
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    said: list[str] = []
    w = _watcher(inbox, tmp_path, said, settle=0.0)
    log = inbox / "fw.log"

    def rows(a, b):
        return "".join(json.dumps({"TimeGenerated": f"2024-05-14T11:{i // 60:02d}:{i % 60:02d}Z",
                                   "DstPortNumber": 22, "NetworkProtocol": "TCP", "DvcAction": "Deny"}) + "\n"
                       for i in range(a, b))

    def settle_and_scan():
        for p in inbox.iterdir():
            os.utime(p, (time.time() - 5, time.time() - 5))
        w.scan()
    log.write_text(rows(0, 10))
    settle_and_scan()
    with open(log, "a") as f:
        f.write(rows(10, 15))
    os.rename(log, inbox / "fw.log.1")  # rotated before the next scan read lines 11-15
    log.write_text(rows(100, 103))
    settle_and_scan()
    with open(inbox / "fw.log.1", "rb") as src, gzip.open(inbox / "fw.log.1.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.remove(inbox / "fw.log.1")
    settle_and_scan()
    with Store(w.db, read_only=True) as store:
        assert store.status()["sessions"] == 18
