"""The summary tier: identical series from summaries, raw and any mix; late data; import and
export of both Sentinel summary shapes; retention; detect straight from summary files."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import portlens
from portlens import demo, monitor, summary
from portlens.cli import _write_jsonl
from portlens.rules import port_anomaly as rule
from portlens.sources import SourceError
from portlens.store import Store, StoreError

END = datetime(2024, 5, 15, 6, 0, tzinfo=timezone.utc)
AS_OF = rule.default_as_of(END - timedelta(microseconds=1))  # 06:00, on a 20-minute boundary
CONFIG = monitor.load_config(None)


@pytest.fixture(scope="module")
def traffic(tmp_path_factory):
    """Two files of demo traffic split at a time that is not on a bin boundary."""
    folder = tmp_path_factory.mktemp("traffic")
    table = demo.generate(END, scale=0.2)
    cut = pa.scalar(END - timedelta(days=6, minutes=7), pa.timestamp("us", tz="UTC"))
    early = table.filter(pc.less(table["TimeGenerated"], cut))
    late = table.filter(pc.greater_equal(table["TimeGenerated"], cut))
    paths = folder / "early.jsonl", folder / "late.jsonl"
    _write_jsonl(early, paths[0])
    _write_jsonl(late, paths[1])
    return [str(p) for p in paths]


def series_of(data, tier="auto"):
    window = rule.Window(AS_OF)
    s = rule.daily_series(data.daily_counts(window.start, window.days, rule.KEYS, tier=tier), window)
    order = np.lexsort([s.keys[k].to_numpy(zero_copy_only=False).astype(str) for k in rule.KEYS])
    return {tuple(str(s.keys[k][i]) for k in rule.KEYS): s.totals[i].tolist() for i in order}, s


def alerts_of(data, tier="auto"):
    return [(a.name, a.port, round(a.score, 9))
            for a in portlens.detect(data, config=CONFIG, as_of=AS_OF, tier=tier).alerts if a.kind == "anomaly"]


def test_summaries_raw_and_mixes_give_identical_series_and_alerts(traffic, tmp_path):
    with Store(str(tmp_path / "a.duckdb")) as store:
        for p in traffic:
            store.ingest(p)
        raw, raw_series = series_of(store, "raw")
        assert raw_series.tiers.keys() == {"raw"}
        summarized, s = series_of(store, "summaries")
        auto, s_auto = series_of(store, "auto")
        assert summarized == auto and s_auto.tiers.keys() == {"summary"}
        # Raw sessions at their exact time (--tier raw) differ only by the 20-minute bin that
        # starts exactly at as-of - 14 days: the KQL's EventTime > ago(14d) leaves it out.
        first_bin = store.query(
            "SELECT count(*) AS n FROM sessions WHERE TimeGenerated >= ? AND TimeGenerated < ?",
            [AS_OF - timedelta(days=14), AS_OF - timedelta(days=14, minutes=-20)])["n"][0].as_py()
        assert first_bin > 0
        assert sum(v[0] for v in raw.values()) - sum(v[0] for v in auto.values()) == first_bin
        assert {k: v[1:] for k, v in raw.items()} == {k: v[1:] for k, v in auto.items()}
        expected_alerts = alerts_of(store)
        assert expected_alerts and alerts_of(store, "summaries") == expected_alerts
        # Mix 1: one file without summaries (as if ingested before summaries existed). The
        # newest summaries are 6 days old, so the KQL's raw branch reads the last 4 days only.
        store.con.execute("DELETE FROM summaries WHERE file_id = 2").fetchall()
        store.con.execute("UPDATE files SET summarized = false WHERE file_id = 2").fetchall()
        mixed, s_mixed = series_of(store)
        assert s_mixed.tiers.keys() == {"raw", "summary"}
        assert {k: v[10:] for k, v in mixed.items()} == {k: v[10:] for k, v in auto.items() if any(v[10:])}
        assert all(v[8:10] == [0, 0] for v in mixed.values())
        store.summarize()
        assert series_of(store)[0] == auto and series_of(store)[1].tiers.keys() == {"summary"}
        exported = str(tmp_path / "all.csv")
        store.export_summaries(exported)
    # Mix 2: imported Sentinel summaries for the early part, raw sessions for the late part.
    with Store(str(tmp_path / "b.duckdb")) as other:
        other.ingest(traffic[1])
        other.import_summaries(exported)
        combined, s_comb = series_of(other)
        assert combined == auto and s_comb.tiers.keys() == {"imported", "summary"}
        assert alerts_of(other) == expected_alerts
    # Straight from summary files, no store.
    files = summary.SummaryFiles([exported])
    assert series_of(files)[0] == auto
    assert alerts_of([exported]) == alerts_of(exported) == expected_alerts  # portlens.detect on the files


def test_late_data_and_reingest(tmp_path, traffic):
    late_rows = tmp_path / "late.jsonl"
    old = END - timedelta(days=3, hours=5)
    late_rows.write_text("".join(
        f'{{"TimeGenerated": "{(old + timedelta(minutes=i)).isoformat()}", "DstPortNumber": 3389, '
        f'"NetworkProtocol": "TCP", "NetworkDirection": "Inbound", "DvcAction": "Deny"}}\n' for i in range(7)))
    with Store(str(tmp_path / "s.duckdb")) as store:
        for p in traffic:
            store.ingest(p)
        before, _ = series_of(store)
        store.ingest(str(late_rows))
        assert store.ingest(str(late_rows)).duplicate_of  # a second time changes nothing
        after, _ = series_of(store)
        raw_after, _ = series_of(store, "raw")
    key = ("3389", "TCP", "Inbound", "Deny")
    day = 14 - 4  # 3 days 5 hours before END falls in bin 10
    assert after[key][day] == before[key][day] + 7
    assert sum(after[key]) == sum(before[key]) + 7
    assert {k: v[1:] for k, v in after.items()} == {k: v[1:] for k, v in raw_after.items()}


def test_legacy_playbook_table_and_bad_rows(tmp_path):
    legacy = tmp_path / "NetworkCustomAnalytics_protocol_CL.csv"
    legacy.write_text(
        "TenantId,TimeGenerated,NetworkProtocol_s,DstPortNumber_d,DstAppName_s,NetworkDirection_s,DvcAction_s,EventTime_t,count__d,Type\n"
        "t,x,TCP,3389.0,,Inbound,Deny,5/14/2024 6:20:00.000 AM,12,NetworkCustomAnalytics_protocol_CL\n"
        "t,x,UDP,53,,Outbound,Allow,2024-05-14T06:40:00Z,3.0,NetworkCustomAnalytics_protocol_CL\n")
    rows = summary.read(str(legacy))
    assert rows.schema == summary.SCHEMA
    assert rows.to_pylist()[0]["DstPortNumber"] == 3389 and rows["count_"].to_pylist() == [12, 3]
    assert rows["EventTime"][0].as_py() == datetime(2024, 5, 14, 6, 20, tzinfo=timezone.utc)
    bad = tmp_path / "bad.csv"
    bad.write_text("NetworkProtocol,DstPortNumber,DstAppName,NetworkDirection,DvcAction,EventTime,count_\n"
                   "TCP,22,,Inbound,Allow,2024-05-14T06:40:00Z,1\n"
                   "TCP,22,,Inbound,Allow,soon,1\n")
    with pytest.raises(SourceError, match="summary row 2: EventTime soon is not a time"):
        summary.read(str(bad))
    no_count = tmp_path / "nocount.csv"
    no_count.write_text("NetworkProtocol,DstPortNumber,DstAppName,NetworkDirection,DvcAction,EventTime\n"
                        "TCP,1,,,,2024-01-01T00:00:00Z\n")
    with pytest.raises(SourceError, match="missing column.*count_"):
        summary.read(str(no_count))


def test_json_export_shape_round_trips(tmp_path):
    rows = pa.table({"NetworkProtocol": ["TCP"], "DstPortNumber": pa.array([636], pa.int32()),
                     "DstAppName": [None], "NetworkDirection": ["Local"], "DvcAction": ["Allow"],
                     "EventTime": pa.array([datetime(2024, 5, 14, 7, 0, tzinfo=timezone.utc)], summary.SCHEMA.field("EventTime").type),
                     "count_": pa.array([5], pa.int64())})
    path = tmp_path / "NetworkSummary_Protocol_CL.json"
    path.write_text('[{"TenantId": "t", "NetworkProtocol": "TCP", "DstPortNumber": 636, "DstAppName": "", '
                    '"NetworkDirection": "Local", "DvcAction": "Allow", "EventTime": "2024-05-14T07:00:00Z", '
                    '"count_": 5, "Type": "NetworkSummary_Protocol_CL"}]')
    assert summary.read(str(path)).to_pylist() == rows.to_pylist()
    summary.write(rows, str(tmp_path / "out.parquet"))
    assert summary.read(str(tmp_path / "out.parquet")).to_pylist() == rows.to_pylist()


def test_retention_keeps_what_the_window_needs(tmp_path, traffic):
    with Store(str(tmp_path / "s.duckdb")) as store:
        for p in traffic:
            store.ingest(p)
        before, _ = series_of(store)
        with pytest.raises(StoreError, match="at least 15 days"):
            store.set_retention(summary_days=10)
        store.set_retention(raw_days=2, summary_days=15)
        done = store.prune()
        assert done["raw_deleted"] > 0
        oldest_raw = store.query("SELECT min(TimeGenerated) AS t FROM sessions")["t"][0].as_py()
        assert oldest_raw >= END - timedelta(days=2, minutes=20)
        after, s = series_of(store)
        assert after == before and s.tiers.keys() == {"summary"}
        # A rebuild after pruning keeps the summaries of pruned days.
        store.summarize()
        assert series_of(store)[0] == before
