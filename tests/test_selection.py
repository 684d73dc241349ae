"""Issue 10 items 1-4 and issue 13 item 9: which counts enter the rule's 14 daily bins.

Each test builds a small dataset from what the KQL text says (see docs/kql.md, "Data
selection"), and checks an alert that the old selection got wrong, next to a control alert
that fires either way. The series shapes are in selectionkit.py.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pyarrow as pa
import pytest
from selectionkit import (AS_OF, START, STEADY, SURGE, anomaly_row, config, daily,
                          daily_summaries, fired, series, summary_csv, write_jsonl)

from portlens import asim, selection, summary
from portlens.rules import port_anomaly as rule
from portlens.store import Store

KEY_3389 = (3389, "TCP", "Inbound", "Allow")


@pytest.fixture
def cfg(tmp_path):
    return config(tmp_path, anomaly_row(3389, "RDP"), anomaly_row(22, "SSH"))


def store_with(tmp_path, *files, name="s.duckdb") -> Store:
    store = Store(str(tmp_path / name))
    for f in files:
        if f.endswith(".csv"):
            store.import_summaries(f)
        else:
            store.ingest(f)
    return store


# ---- item 1: EventTime > ago(14d) ---------------------------------------------------------

def test_window_start_is_strict_for_summary_rows(tmp_path, cfg):
    # 200 sessions in the 20-minute bin that starts exactly at as-of - 14 days: the KQL's
    # `where EventTime > ago(lookback)` leaves that bin out.
    edge = daily([200], offset=timedelta(minutes=5), port=3389)
    rows = edge + daily(SURGE, port=3389) + daily(SURGE, port=22)
    with store_with(tmp_path, write_jsonl(tmp_path / "a.jsonl", rows)) as store:
        assert series(store)[KEY_3389] == SURGE
        # Counted into day 0 (before), day 0 would be 210 and the surge would not score.
        assert fired(store, cfg) == {("RDP", "3389"), ("SSH", "22")}
        # The same bin is inside the window of a run one day earlier (it is that window's day 1).
        earlier = series(store, AS_OF - timedelta(days=1))[KEY_3389]
        assert earlier == [0, 210] + [10] * 12
        # Raw sessions at their exact time keep make-series' own rule (from is inclusive).
        assert series(store, tier="raw")[KEY_3389][0] == 210


# ---- item 2: nothing after as-of ----------------------------------------------------------

def test_a_summary_bin_counts_only_once_it_has_ended(tmp_path, cfg):
    as_of = AS_OF - timedelta(minutes=10)          # 05:50, inside the bin 05:40-06:00
    start = as_of - timedelta(days=14)
    base = daily(STEADY, port=3389, start=start)
    # On the last day, 30 sessions at 05:45 and 05:55: in Sentinel that bin does not exist
    # at 05:50 (and 05:55 has not happened yet).
    straddle = (daily([0] * 13 + [15], port=3389, start=start, offset=timedelta(days=1) - timedelta(minutes=5))
                + daily([0] * 13 + [15], port=3389, start=start, offset=timedelta(days=1) + timedelta(minutes=5)))
    control = daily(SURGE, port=22, start=start)
    with store_with(tmp_path, write_jsonl(tmp_path / "a.jsonl", base + straddle + control)) as store:
        assert series(store, as_of)[KEY_3389] == STEADY
        assert fired(store, cfg, as_of) == {("SSH", "22")}     # before: RDP fired on 10 -> 40
        # Raw sessions stamped before as-of do count at their exact time (portlens' own tier).
        assert series(store, as_of, tier="raw")[KEY_3389][-1] == 10 + 15
        # A run on the boundary after the bin closes sees it.
        assert series(store, AS_OF)[KEY_3389][-1] == 10 + 30


# ---- item 3: the allData gates ------------------------------------------------------------

def test_legacy_table_counts_only_without_recent_summaries(tmp_path, cfg):
    legacy = summary_csv(tmp_path / "legacy.csv", daily_summaries(SURGE, 3389), legacy=True)
    recent = write_jsonl(tmp_path / "recent.jsonl", daily(SURGE, port=22))
    with store_with(tmp_path, recent, legacy) as store:
        kinds = store.query("SELECT kind FROM files ORDER BY file_id")["kind"].to_pylist()
        assert kinds == ["sessions", "legacy-summaries"]
        # NetworkSummary_Protocol_CL has rows in the last day: the legacy branch is off.
        assert KEY_3389 not in series(store)
        assert fired(store, cfg) == {("SSH", "22")}             # before: RDP fired too
    # Without recent summaries (the local data ends 2 days before as-of) the legacy rows count,
    # summed with the summaries, as the union does.
    old = write_jsonl(tmp_path / "old.jsonl", daily(SURGE[:12], port=22))
    with store_with(tmp_path, old, legacy, name="t.duckdb") as store:
        assert series(store)[KEY_3389] == SURGE
        assert fired(store, cfg) == {("RDP", "3389")}
    # The same holds for summary files read without a store.
    imported = summary_csv(tmp_path / "nsp.csv", daily_summaries(SURGE, 22))
    files = summary.SummaryFiles([imported, legacy])
    assert fired(files, cfg) == {("SSH", "22")}


def _unsummarize(store: Store, file_id: int) -> None:
    """A file ingested before the store had summaries (an older portlens)."""
    store.con.execute("DELETE FROM summaries WHERE file_id = ?", [file_id]).fetchall()
    store.con.execute("UPDATE files SET summarized = false WHERE file_id = ?", [file_id]).fetchall()


def test_raw_sessions_count_only_without_recent_summaries(tmp_path, cfg):
    control = write_jsonl(tmp_path / "ssh.jsonl", daily(SURGE, port=22))
    rdp = write_jsonl(tmp_path / "rdp.jsonl", daily(SURGE, port=3389))
    with store_with(tmp_path, control, rdp) as store:
        _unsummarize(store, 2)
        # Summaries have rows in the last day: _Im_NetworkSession is not read at all.
        assert KEY_3389 not in series(store)
        assert fired(store, cfg) == {("SSH", "22")}             # before: RDP fired too


def test_raw_branch_reads_four_days_after_the_newest_summary(tmp_path, cfg):
    # Summaries for days 0-5, raw sessions (never summarised) for days 6-13.
    summarized = write_jsonl(tmp_path / "early.jsonl", daily(SURGE[:6], port=3389))
    raw = write_jsonl(tmp_path / "late.jsonl", daily([0] * 6 + SURGE[6:], port=3389)
                      + daily(SURGE, port=22))
    with store_with(tmp_path, summarized, raw) as store:
        _unsummarize(store, 2)
        got = series(store)
        # Days 6-9 are older than ago(4d): lost, as in Sentinel (before: counted, RDP fired).
        assert got[KEY_3389] == [10] * 6 + [0] * 4 + [10, 10, 10, 40]
        assert got[(22, "TCP", "Inbound", "Allow")] == [0] * 10 + [10, 10, 10, 40]
        assert ("RDP", "3389") not in fired(store, cfg)
        assert fired(store, cfg, tier="raw") == {("RDP", "3389"), ("SSH", "22")}


def _relations(summaries: list[tuple], raw_times: list, raw_ports: list) -> selection.Relations:
    import duckdb
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    s = pa.table({"NetworkProtocol": ["TCP"] * len(summaries),
                  "DstPortNumber": pa.array([r[1] for r in summaries], pa.int32()),
                  "DstAppName": pa.nulls(len(summaries), pa.string()),
                  "NetworkDirection": ["Inbound"] * len(summaries), "DvcAction": ["Allow"] * len(summaries),
                  "EventTime": pa.array([r[0] for r in summaries], asim.TIMESTAMP),
                  "count_": pa.array([r[5] for r in summaries], pa.int64()),
                  "origin": ["summary"] * len(summaries)})
    r = pa.table({"TimeGenerated": pa.array(raw_times, asim.TIMESTAMP),
                  "DstPortNumber": pa.array(raw_ports, pa.int32()),
                  "NetworkProtocol": pa.array(["TCP"] * len(raw_times)),
                  "DstAppName": pa.nulls(len(raw_times), pa.string()),
                  "NetworkDirection": pa.array(["Inbound"] * len(raw_times)),
                  "DvcAction": pa.array(["Allow"] * len(raw_times))})
    con.register("s", s)
    con.register("r", r)
    return selection.Relations(con, "SELECT * FROM s", "SELECT * FROM r")


class _Rel:
    """Anything with window_counts feeds the rule."""
    def __init__(self, rel):
        self.rel = rel

    def window_counts(self, first_as_of, windows, keys, tier="auto"):
        return selection.select(self.rel, first_as_of, windows, keys, tier)


@pytest.mark.parametrize("busy", [False, True])
def test_raw_branch_reads_three_days_when_eps_is_above_500(cfg, busy):
    # Summaries for days 0-9; raw sessions on days 10-13 (40, 10, 10, 40 on port 3389).
    # With more than 500 sessions per second in the last 5 minutes (on port 80), the raw
    # branch starts at ago(3d) and day 10 is not read.
    summaries = daily_summaries([10] * 10, 3389)
    times = [START + timedelta(days=10 + i, hours=1, seconds=j)
             for i, c in enumerate([40, 10, 10, 40]) for j in range(c)]
    ports = [3389] * len(times)
    if busy:
        n = 501 * 300                                      # Count / 300 = 501 > 500
        step = timedelta(minutes=5) / (n + 1)
        times += [AS_OF - timedelta(minutes=5) + step * (i + 1) for i in range(n)]
        ports += [80] * n
    data = _Rel(_relations(summaries, times, ports))
    window = rule.Window(AS_OF)
    got = selection.one_window(selection.select(data.rel, AS_OF, 1, rule.KEYS))
    days = np.zeros(14, int)
    for row in got.filter(pa.compute.equal(got["DstPortNumber"], 3389)).to_pylist():
        days[row["bin"]] += row["n"]
    expected = [10] * 10 + ([0] if busy else [40]) + [10, 10, 40]
    assert days.tolist() == expected and window.days == 14
    assert fired(data, cfg) == ({("RDP", "3389")} if busy else set())


# ---- item 4: --tier sentinel-raw ----------------------------------------------------------

def test_sentinel_raw_tier_is_a_workspace_without_summaries(tmp_path, cfg):
    # Busy for 10 days, silent for 3, then 40 sessions: over 14 days a drop and a partial
    # return (no alert); in the raw fallback's 4 days, a surge from nothing (alert).
    rows = daily(SURGE, port=22) + daily([50] * 10 + [0, 0, 0, 40], port=3389)
    with store_with(tmp_path, write_jsonl(tmp_path / "a.jsonl", rows)) as store:
        raw = series(store, tier="sentinel-raw")
        # Only the last 4 days, each session in the day of its 10-minute bin.
        assert raw[KEY_3389] == [0] * 13 + [40]
        assert raw[(22, "TCP", "Inbound", "Allow")] == [0] * 10 + [10, 10, 10, 40]
        assert fired(store, cfg, tier="sentinel-raw") == {("RDP", "3389")}
        # The full 14 days (the summaries, and portlens' --tier raw) see the drop from 50;
        # the control (SSH) fires there.
        assert series(store, tier="raw")[KEY_3389] == [50] * 10 + [0, 0, 0, 40]
        assert fired(store, cfg) == fired(store, cfg, tier="raw") == {("SSH", "22")}


def test_raw_branch_bins_sessions_by_their_ten_minute_bin():
    # A session 3 minutes after a day's start when as-of is 5 minutes past a 10-minute
    # boundary: bin(TimeGenerated, 10m) falls 5 minutes before the day starts.
    as_of = AS_OF + timedelta(minutes=5)
    day13 = as_of - timedelta(days=1)
    rel = _relations([], [day13 + timedelta(minutes=3), day13 + timedelta(minutes=6)], [22, 22])
    got = selection.one_window(selection.select(rel, as_of, 1, rule.KEYS, "sentinel-raw"))
    assert sorted((r["bin"], r["n"]) for r in got.to_pylist()) == [(12, 1), (13, 1)]


# ---- export-summaries writes what detect counts (issue 13 item 9) -------------------------

def test_export_writes_each_bin_once_where_imported_and_local_summaries_overlap(tmp_path, cfg):
    rows = daily(SURGE, port=22)
    with store_with(tmp_path, write_jsonl(tmp_path / "a.jsonl", rows)) as store:
        store.export_summaries(str(tmp_path / "first.csv"))
    with store_with(tmp_path, write_jsonl(tmp_path / "a.jsonl", rows), str(tmp_path / "first.csv"),
                    name="t.duckdb") as store:
        before = series(store)
        store.export_summaries(str(tmp_path / "again.csv"))
        assert before[(22, "TCP", "Inbound", "Allow")] == SURGE
    again = summary.read(str(tmp_path / "again.csv"))
    assert int(pa.compute.sum(again["count_"]).as_py()) == sum(SURGE)   # before: twice
    assert series(summary.SummaryFiles([str(tmp_path / "again.csv")])) == before


# ---- backtests: each window of the one-pass span equals a run at that as-of ---------------

@pytest.mark.parametrize("tier", ["auto", "summaries", "raw", "sentinel-raw"])
@pytest.mark.parametrize("minutes", [0, -10, 7])
def test_backtest_windows_equal_single_runs(tmp_path, tier, minutes):
    rng = np.random.default_rng(7)
    rows = []
    for port in (22, 389, 3389):   # sessions over 20 days, some exactly on day and bin edges
        times = START - timedelta(days=6) + timedelta(minutes=1) * rng.integers(0, 20 * 1440, 400)
        edges = [START + timedelta(days=d) for d in range(-3, 6)]
        rows += [{"TimeGenerated": t.isoformat().replace("+00:00", "Z"), "DstPortNumber": port,
                  "NetworkProtocol": "TCP", "NetworkDirection": "Inbound", "DvcAction": "Allow"}
                 for t in [*times.tolist(), *edges]]
    late = [r for r in rows if r["TimeGenerated"] >= (AS_OF - timedelta(days=3)).isoformat()[:19]]
    legacy = summary_csv(tmp_path / "legacy.csv", daily_summaries([5] * 14, 8080, start=START - timedelta(days=2)),
                         legacy=True)
    with store_with(tmp_path, write_jsonl(tmp_path / "a.jsonl", [r for r in rows if r not in late]),
                    write_jsonl(tmp_path / "b.jsonl", late), legacy) as store:
        _unsummarize(store, 2)
        first = AS_OF - timedelta(days=5) + timedelta(minutes=minutes)
        keys, totals, tiers = selection.window_matrices(store.window_counts(first, 6, rule.KEYS, tier), rule.KEYS)
        for d in range(6):
            as_of = first + timedelta(days=d)
            single = series(store, as_of, tier)
            span = {tuple(keys[k][i].as_py() for k in rule.KEYS): [int(v) for v in totals[d, i]]
                    for i in range(keys.num_rows) if totals[d, i].any()}
            assert span == single, (d, tier)
