"""Issue 13, items 1-2: one record with an absurd timestamp must not wipe, brick or move the
store. Such records are quarantined at ingest; retention and the default as-of count back
from a robust newest time, and an ingest never deletes what it just ingested."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pyarrow as pa

from portlens import asim, summary
from portlens.rules import port_anomaly as rule
from portlens.store import Store

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def session(t: datetime, port=3389) -> dict:
    return {"TimeGenerated": t.isoformat().replace("+00:00", "Z"), "DstPortNumber": port,
            "NetworkProtocol": "TCP", "NetworkDirection": "Inbound", "DvcAction": "Deny"}


def jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def days_of_traffic(days: int, per_day: int = 100, end: datetime = NOW) -> list[dict]:
    """`per_day` sessions a day, evenly over each of `days` days ending at `end`."""
    step = timedelta(days=1) / per_day
    return [session(end - d * timedelta(days=1) - i * step) for d in range(days) for i in range(per_day)]


def test_conform_quarantines_times_outside_the_plausible_range():
    times = ["2030-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
             "1900-06-01T00:00:00Z", (NOW + timedelta(hours=2)).isoformat(), NOW.isoformat()]
    result = asim.conform({"TimeGenerated": pa.array(times), "DstPortNumber": pa.array(["22"] * 6)})
    assert result.table.num_rows == 2
    assert result.rejected_index.to_pylist() == [0, 1, 2, 3]
    assert all("plausible range" in r for r in result.rejected_reason.to_pylist())
    assert all(r.startswith("TimeGenerated:") for r in result.rejected_reason.to_pylist())


def test_other_time_columns_are_checked_too():
    result = asim.conform({"TimeGenerated": pa.array([NOW.isoformat()]),
                           "EventEndTime": pa.array(["9999-12-31T23:59:59Z"])})
    assert result.table.num_rows == 0
    assert result.rejected_reason.to_pylist()[0].startswith("EventEndTime:")


def test_bounds_are_configurable():
    old = "1985-03-01T00:00:00Z"
    assert asim.conform({"TimeGenerated": pa.array([old])}).table.num_rows == 0
    with asim.plausible_times(asim.TimeBounds(not_before=datetime(1980, 1, 1, tzinfo=timezone.utc))):
        assert asim.conform({"TimeGenerated": pa.array([old])}).table.num_rows == 1
    assert asim.time_bounds() == asim.TimeBounds()


def test_one_future_record_neither_wipes_nor_bricks_the_store(tmp_path):
    db = str(tmp_path / "s.duckdb")
    with Store(db) as store:
        store.ingest(jsonl(tmp_path / "a.jsonl", days_of_traffic(20)))
    for stamp in ("2030-01-01T00:00:00Z", "2027-06-01T00:00:00Z", "9999-12-31T23:59:59Z"):
        bad = tmp_path / f"bad-{stamp[:4]}.jsonl"
        bad.write_text(json.dumps({**session(NOW), "TimeGenerated": stamp}) + "\n")
        with Store(db) as store:
            r = store.ingest(str(bad))
            assert (r.sessions, r.quarantined) == (0, 1)
    with Store(db) as store:
        assert store.status()["sessions"] == 2000
        (reason,), = store.con.execute("SELECT DISTINCT reason FROM quarantine").fetchall()
        assert "plausible range" in reason
        assert store.newest_time() >= NOW - timedelta(minutes=1)


def test_a_record_hours_ahead_does_not_move_retention_or_as_of(tmp_path):
    """Within the plausible range but a stray: a device clock 20 h ahead."""
    db = str(tmp_path / "s.duckdb")
    end = NOW - timedelta(hours=1)
    with Store(db) as store:
        store.ingest(jsonl(tmp_path / "a.jsonl", days_of_traffic(20, per_day=500, end=end)))
        honest = store.newest_time()
        store.ingest(jsonl(tmp_path / "stray.jsonl", [session(NOW + timedelta(hours=20))]))
        assert store.status()["sessions"] == 10001
        assert store.newest_time() == honest
        assert rule.default_as_of(store.newest_time()) <= end + timedelta(minutes=40)


def test_retention_counts_back_from_the_robust_newest_day(tmp_path):
    db = str(tmp_path / "s.duckdb")
    with Store(db) as store:
        store.set_retention(raw_days=5, summary_days=15)
        store.ingest(jsonl(tmp_path / "a.jsonl", days_of_traffic(10, per_day=500)))
        store.ingest(jsonl(tmp_path / "stray.jsonl", [session(NOW + timedelta(hours=23))]))
    with Store(db) as store:  # a later command prunes: 5 days back from NOW, not from NOW + 23 h
        store.prune()
        kept = store.con.execute("SELECT count(*) FROM sessions").fetchone()[0]
        # the last 5 days (2,500), the session exactly at NOW - 5 days and the stray, plus
        # what flooring the cut to a 20-minute bin start keeps before it: one session every
        # 172.8 s, so 0 to 6 more, depending on where the wall clock falls in its bin
        assert 2502 <= kept <= 2502 + 6


def test_an_ingest_never_deletes_what_it_just_ingested(tmp_path):
    """Backfilling last year's logs into a store of current data keeps them (for now)."""
    db = str(tmp_path / "s.duckdb")
    with Store(db) as store:
        store.ingest(jsonl(tmp_path / "now.jsonl", days_of_traffic(3)))
        r = store.ingest(jsonl(tmp_path / "old.jsonl", days_of_traffic(3, end=NOW - timedelta(days=500))))
        assert r.sessions == 300
        assert store.status()["sessions"] == 600
        assert store.con.execute("SELECT sum(count_) FROM summaries").fetchone()[0] == 600


def test_summary_imports_reject_implausible_times(tmp_path):
    path = tmp_path / "summaries.csv"
    path.write_text("EventTime,NetworkProtocol,DstPortNumber,DstAppName,NetworkDirection,DvcAction,count_\n"
                    "2024-05-01T00:00:00Z,TCP,22,,Inbound,Allow,3\n"
                    "9999-12-31T00:00:00Z,TCP,22,,Inbound,Allow,3\n")
    try:
        summary.read(str(path))
    except ValueError as e:
        assert "summary row 2" in str(e) and "plausible range" in str(e)
    else:
        raise AssertionError("a summary row in year 9999 was accepted")


def test_cli_options_set_the_bounds(tmp_path):
    log = jsonl(tmp_path / "a.jsonl", [session(datetime(1985, 1, 1, tzinfo=timezone.utc))])
    db = str(tmp_path / "s.duckdb")

    def ingest(*extra):
        return subprocess.run([sys.executable, "-m", "portlens", "ingest", log, "--db", db, *extra],
                              capture_output=True, text=True)
    first = ingest()
    assert first.returncode == 0 and "1 quarantined" in first.stdout
    bad = ingest("--max-future", "-1")
    assert bad.returncode == 2 and "--max-future" in bad.stderr and "Traceback" not in bad.stderr
    with Store(db) as store:  # the quarantined file can be forgotten and re-read later; here: new store
        pass
    second = subprocess.run([sys.executable, "-m", "portlens", "ingest", log, "--db", str(tmp_path / "t.duckdb"),
                             "--not-before", "1980-01-01"], capture_output=True, text=True)
    assert second.returncode == 0 and "1 sessions" in second.stdout.replace(",", "")


def newest(points: list[tuple[datetime, int]]) -> datetime:
    rel = pa.table({"t": pa.array([t for t, _ in points], asim.TIMESTAMP), "n": [n for _, n in points]})
    return asim.query(summary.newest_sql("r"), r=rel).column(0)[0].as_py()


T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)
BULK = [(T0 + timedelta(minutes=20 * i), 50) for i in range(72 * 7)]  # a week, 3,600 a day
LAST = BULK[-1][0]


def test_robust_newest_keeps_a_thin_but_contiguous_end_of_log():
    thin_end = LAST + timedelta(minutes=65)
    assert newest(BULK + [(thin_end, 1)]) == thin_end


def test_robust_newest_ignores_a_few_records_standing_apart():
    assert newest(BULK + [(LAST + timedelta(hours=9), 3), (LAST + timedelta(hours=20), 1)]) == LAST


def test_robust_newest_is_the_plain_newest_with_little_data():
    assert newest([(T0, 1)]) == T0
    assert newest([(T0, 1), (T0 + timedelta(hours=20), 1)]) == T0 + timedelta(hours=20)


def test_a_real_new_day_of_traffic_moves_the_newest_time():
    later = [(LAST + timedelta(hours=10, minutes=20 * i), 50) for i in range(6)]
    assert newest(BULK + later) == later[-1][0]
