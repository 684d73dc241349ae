"""Issue 13, item 4: a store several processes use. Opening a store another process holds
waits (one "store busy, waiting" line) and gives up after a timeout with one line; the
service keeps running while analysts read the store, and the analysts' commands wait for it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

from portlens.store import Store
from servers import portlens, stored_sessions

T0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=6)


def line(i: int) -> str:
    return json.dumps({"TimeGenerated": (T0 + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
                       "DstPortNumber": 3389 if i % 3 else 443, "NetworkProtocol": "TCP",
                       "NetworkDirection": "Inbound", "DvcAction": "Deny", "SrcIpAddr": "10.0.0.1"}) + "\n"


def make_store(tmp_path, n=50) -> str:
    db = str(tmp_path / "s.duckdb")
    log = tmp_path / "a.jsonl"
    log.write_text("".join(line(i) for i in range(n)))
    with Store(db) as store:
        store.ingest(str(log))
    return db


def test_a_reader_waits_for_a_writer_and_says_so(tmp_path):
    db = make_store(tmp_path)
    holder = _holder(db, read_only=False)  # a writer holds the store
    status = subprocess.Popen([sys.executable, "-m", "portlens", "status", "--db", db, "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    told = status.stderr.readline()
    assert told.strip() == f"store busy (held by process {holder.pid}), waiting…"
    time.sleep(0.5)
    assert status.poll() is None  # still waiting
    holder.communicate()  # the writer leaves
    out, err = status.communicate(timeout=60)
    assert status.returncode == 0, err
    assert json.loads(out)["sessions"] == 50 and "store busy" not in err  # said once


def test_a_store_busy_too_long_is_one_line_error(tmp_path):
    db = make_store(tmp_path)
    holder = _holder(db, read_only=False)
    try:
        r = portlens("status", "--db", db, env={**os.environ, "PORTLENS_STORE_WAIT": "1"})
    finally:
        holder.communicate()
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    error = r.stderr.strip().splitlines()[-1]
    assert error.startswith("portlens: error:") and "store busy" in error and "gave up after 1 s" in error


def test_a_writer_waits_for_readers_and_new_readers_let_it_in(tmp_path):
    """A writer kept out by a reader leaves a note; a reader arriving after it waits for the
    writer to get in first, so a stream of readers cannot keep the writer out."""
    db = make_store(tmp_path)
    reader = _holder(db, read_only=True)  # another process reads the store
    said = []
    got_in = threading.Event()

    def write():
        with Store(db, wait=20, notify=said.append):
            got_in.set()
            time.sleep(1.0)
    writer = threading.Thread(target=write)
    writer.start()
    note = db + ".writer-waiting"
    deadline = time.monotonic() + 10
    while not os.path.exists(note) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.path.exists(note)
    # A second reader arrives now: it waits for the writer, though readers could share the store.
    late = subprocess.Popen([sys.executable, "-m", "portlens", "status", "--db", db, "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    told = late.stderr.readline()
    assert "store busy (a writer is waiting for it), waiting" in told
    assert not got_in.is_set()
    reader.communicate(timeout=30)  # the first reader leaves: the writer gets in before the late reader
    assert got_in.wait(10)
    out, err = late.communicate(timeout=60)
    writer.join(10)
    assert late.returncode == 0, err
    assert said and "store busy" in said[0]
    assert not os.path.exists(note)


def _holder(db: str, read_only: bool) -> subprocess.Popen:
    """A process that holds the store until its stdin closes."""
    code = ("import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == 'ro'); "
            "print('holding', flush=True); sys.stdin.read(); c.close()")
    p = subprocess.Popen([sys.executable, "-c", code, db, "ro" if read_only else "rw"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "holding"
    return p


def test_service_survives_concurrent_readers(tmp_path):
    """The service ingests while loops of status/detect/report read the store: nobody dies,
    everything lands once."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    db, alerts = str(tmp_path / "s.duckdb"), tmp_path / "alerts.jsonl"
    service = subprocess.Popen([sys.executable, "-m", "portlens", "run", "--watch", str(inbox), "--db", db,
                                "--every", "0.3s", "--alerts", str(alerts)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    failures: list[str] = []
    stop = threading.Event()

    def analyst(*args):
        while not stop.is_set():
            if not os.path.exists(db):
                time.sleep(0.2)
                continue
            r = portlens(*args, "--db", db)
            if r.returncode != 0 and "no sessions" not in r.stderr and "no data" not in r.stderr.lower():
                failures.append(f"{args[0]}: {r.returncode}: {r.stderr.strip()[-300:]}")
    readers = [threading.Thread(target=analyst, args=a) for a in
               [("status",), ("detect",), ("report", "--output", str(tmp_path / "r.html"))]]
    written = 0
    try:
        for t in readers:
            t.start()
        log = inbox / "fw.log"
        for burst in range(12):
            with open(log, "a") as f:
                f.write("".join(line(written + i) for i in range(40)))
            written += 40
            time.sleep(0.5)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and stored_sessions(db) != written:
            time.sleep(0.5)
    finally:
        stop.set()
        for t in readers:
            t.join(120)
        service.terminate()
        out, err = service.communicate(timeout=60)
    assert service.returncode == 0, err
    assert "Traceback" not in err and "unexpected error" not in err
    assert not failures, failures
    assert stored_sessions(db) == written


def test_a_long_ingest_lets_waiting_readers_in_between_batches(tmp_path, monkeypatch):
    """Short write holds: a reader that arrives during a long ingest gets in between two
    batches and sees the store as it was before that file; the file still lands whole."""
    from portlens.sources import native
    db = make_store(tmp_path, n=50)
    big = tmp_path / "big.jsonl"
    big.write_text("".join(line(1000 + i) for i in range(300)))
    real_parse = native.NativeAsim.parse

    def slow(self, path, batch_lines=10):
        for batch in real_parse(self, path, 10):
            time.sleep(0.1)  # 30 batches: about 3 s
            yield batch
    monkeypatch.setattr(native.NativeAsim, "parse", slow)
    seen = {}

    def analyst():
        time.sleep(0.5)
        started = time.monotonic()
        r = portlens("status", "--db", db, "--json")
        seen.update(code=r.returncode, err=r.stderr, took=time.monotonic() - started,
                    sessions=json.loads(r.stdout)["sessions"] if r.returncode == 0 else None)
    reader = threading.Thread(target=analyst)
    reader.start()
    with Store(db) as store:
        started = time.monotonic()
        assert store.ingest(str(big)).sessions == 300
        ingest_took = time.monotonic() - started
        reader.join(60)
        assert store.status()["sessions"] == 350
    assert seen["code"] == 0, seen["err"]
    assert seen["sessions"] == 50  # the file in flight is invisible until it commits
    assert "store busy" in seen["err"]
    assert ingest_took > 2.5 and not os.path.exists(db + ".handover")
    with Store(db, read_only=True) as store:
        assert store.query("SELECT count(*) AS n FROM files WHERE state <> 'done'")["n"][0].as_py() == 0
        assert store.query("SELECT sum(count_) AS n FROM summaries")["n"][0].as_py() == 350


def test_unfinished_rows_of_a_live_ingest_are_kept_and_of_a_dead_one_removed(tmp_path):
    db = make_store(tmp_path)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with Store(db) as store:
            for file_id, pid in ((90, alive.pid), (91, 2 ** 22 + 12345)):  # (the second: no such process)
                store.con.execute("INSERT INTO files (file_id, path, state, loader_pid) VALUES (?, 'x', 'loading', ?)",
                                  [file_id, pid]).fetchall()
                store.con.execute(f"CREATE TABLE _held_summary_{file_id} (n INTEGER)").fetchall()
        with Store(db) as store:
            left = store.query("SELECT file_id FROM files WHERE state = 'loading'")["file_id"].to_pylist()
            tables = store.query("SELECT table_name FROM duckdb_tables() WHERE starts_with(table_name, '_held')")
            assert left == [90] and tables["table_name"].to_pylist() == ["_held_summary_90"]
    finally:
        alive.kill()
        alive.wait()
