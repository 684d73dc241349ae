"""Issue 13, soak test (bounded, about a minute, no network): the service watches a folder
while other processes write and rotate logs in it (partial lines, pauses, rename, gzip),
an analyst ingests the rotated archives by hand, and loops of status/detect/report read the
store. At the end the store holds exactly one session per line written, nobody died, and
nothing printed a traceback."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from portlens.store import Store
from servers import portlens, stored_sessions

WRITER = r'''
import gzip, json, os, random, shutil, sys, time
from datetime import datetime, timedelta, timezone
folder, name, seconds, seed = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
t0 = datetime.now(timezone.utc) - timedelta(hours=12)
log = os.path.join(folder, name)
written, generation, bursts, end = 0, 0, 0, time.monotonic() + seconds
f = open(log, "a")
while time.monotonic() < end:
    for _ in range(rng.randint(1, 30)):
        t = (t0 + timedelta(milliseconds=written * 7 + seed)).isoformat().replace("+00:00", "Z")
        text = json.dumps({"TimeGenerated": t, "DstPortNumber": rng.choice([22, 443, 3389]),
                           "NetworkProtocol": "TCP", "NetworkDirection": "Inbound", "DvcAction": "Deny",
                           "SrcIpAddr": f"10.0.{seed}.{written % 250}"}) + "\n"
        if rng.random() < 0.2:  # a writer that stops mid-line for a while
            cut = rng.randint(1, len(text) - 1)
            f.write(text[:cut]); f.flush()
            time.sleep(rng.uniform(0.05, 0.6))
            text = text[cut:]
        f.write(text)
        written += 1
    f.flush()
    time.sleep(rng.uniform(0.0, 0.4))
    bursts += 1
    if bursts % 5 == 0:  # rotate: rename, keep writing a little to the old file, then gzip it
        generation += 1
        rotated = f"{log}.{generation}"
        os.rename(log, rotated)
        f.write("".join(json.dumps({"TimeGenerated": (t0 + timedelta(milliseconds=(written + i) * 7 + seed)).isoformat().replace("+00:00", "Z"),
                                    "DstPortNumber": 53, "NetworkProtocol": "UDP", "DvcAction": "Deny"}) + "\n"
                        for i in range(3)))  # the old file still gets lines until it is reopened
        written += 3
        f.flush()
        time.sleep(rng.uniform(0.0, 0.5))
        f.close()
        f = open(log, "a")
        with open(rotated, "rb") as src, gzip.open(rotated + ".gz.tmp", "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.rename(rotated + ".gz.tmp", rotated + ".gz")  # (logrotate writes the .gz in place)
        os.remove(rotated)
f.close()
print(written)
'''


def test_soak_service_writers_rotation_and_readers(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    db, alerts = str(tmp_path / "s.duckdb"), tmp_path / "alerts.jsonl"
    service = subprocess.Popen([sys.executable, "-m", "portlens", "run", "--watch", str(inbox), "--db", db,
                                "--every", "0.3s", "--alerts", str(alerts)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(inbox), name, "35", str(seed)],
                                stdout=subprocess.PIPE, text=True)
               for seed, name in ((1, "fw.log"), (2, "edge.log"))]
    failures: list[str] = []
    stop = threading.Event()

    def loop(*args):
        while not stop.is_set() and stored_sessions(db) <= 0:  # (an empty store is an error for detect)
            time.sleep(0.3)
        while not stop.is_set():
            r = portlens(*args)
            if r.returncode != 0 or "Traceback" in r.stderr:
                failures.append(f"{' '.join(args[:1])}: exit {r.returncode}: {r.stderr.strip()[-300:]}")

    def analyst_ingests():  # someone ingests the rotated archives by hand, now and then
        while not stop.is_set():
            time.sleep(2.0)
            archives = sorted(str(p) for p in inbox.glob("*.gz"))
            if archives:
                r = portlens("ingest", *archives, "--db", db)
                if r.returncode != 0 and "no such file" not in r.stderr:
                    failures.append(f"ingest: exit {r.returncode}: {r.stderr.strip()[-300:]}")

    others = [threading.Thread(target=loop, args=a) for a in
              [("status", "--db", db), ("detect", "--db", db),
               ("report", "--db", db, "--output", str(tmp_path / "r.html"))]]
    others.append(threading.Thread(target=analyst_ingests))
    try:
        for t in others:
            t.start()
        written = sum(int(w.communicate(timeout=120)[0]) for w in writers)
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline and stored_sessions(db) != written:
            time.sleep(0.5)
    finally:
        stop.set()
        for t in others:
            t.join(120)
        service.terminate()
        _, err = service.communicate(timeout=60)
    assert service.returncode == 0, err[-2000:]
    assert "Traceback" not in err and "unexpected error" not in err, err[-2000:]
    assert not failures, failures[:3]
    assert written > 200
    assert len(list(inbox.glob("*.gz"))) >= 4  # rotations happened
    print(f"soak: {written} lines, {len(list(inbox.glob('*.gz')))} rotations, "
          f"{sum('store busy' in l for l in err.splitlines())} waits of the service")
    assert stored_sessions(db) == written
    with Store(db, read_only=True) as store:
        assert store.status()["quarantined"] == 0
        assert store.query("SELECT sum(count_) AS n FROM summaries")["n"][0].as_py() == written
    assert any(line.startswith("detect as of") for line in err.splitlines())


