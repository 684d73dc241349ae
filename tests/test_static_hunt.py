"""The static-threshold sibling and the hunting rows."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import portlens
from portlens import formats, monitor
from portlens.rules import port_static
from portlens.store import Store

AS_OF = datetime(2024, 5, 15, 6, 5, tzinfo=timezone.utc)  # last complete bin: 05:50-06:00


def local_allow(rows) -> list[dict]:
    return [{"TimeGenerated": t, "DstPortNumber": port, "NetworkProtocol": proto,
             "NetworkDirection": "Local", "DvcAction": "Allow"} for t, port, proto in rows]


def test_static_rule_counts_the_last_complete_ten_minutes(asim_jsonl, make_store, write_config):
    bin_start = datetime(2024, 5, 15, 5, 50, tzinfo=timezone.utc)
    rows = [(bin_start + timedelta(seconds=30 * i), 445, "TCP") for i in range(7)]
    rows += [(bin_start - timedelta(seconds=1), 445, "TCP")] * 20      # the bin before: not counted
    rows += [(AS_OF - timedelta(seconds=1), 445, "TCP")] * 20           # the open bin: not counted
    rows += [(bin_start + timedelta(minutes=1), 445, "UDP")] * 9
    cfg_path = write_config(
        '"139,445",*,TCP,*,*,Detection,Static,6,High,Lateral Movement,SMB,too much smb',
        '445,*,TCP,*,*,Detection,Static,7,Low,Lateral Movement,SMB strict,x',
        '445,*,*,*,*,Hunting,Static,0,Low,Discovery,SMB hunt,x')
    store = make_store(asim_jsonl("smb.jsonl", local_allow(rows)))
    [typed] = port_static.run(store, monitor.load_config(cfg_path), AS_OF)
    # detect runs the Static rows too, and explains them: who is behind the 10 minutes.
    [same] = [a for a in portlens.detect(store, config=cfg_path, as_of=AS_OF).alerts if a.kind == "static"]
    assert typed.kind == "static" and typed.port == 445 and typed.score is None
    assert formats.to_record(same) == {**formats.to_record(typed), **{"series": formats.to_record(same)["series"]},
                                       "explanation": {"raw_retained": True, "notes": []}}
    assert [s.raw_sessions_today for s in same.series] == [7]
    alert = formats.to_record(typed)
    assert alert["Name"] == "SMB" and alert["total"] == 7 and alert["threshold"] == 6  # 7 > 7 is false
    assert alert["NetworkProtocols"] == ["TCP"] and alert["DstPortNumber"] == "445"
    assert alert["window"] == {"start": "2024-05-15T05:50:00Z", "end": "2024-05-15T06:00:00Z",
                               "bin": "10m", "counted_from": "raw sessions (10-minute bins)"}
    assert alert["rule_id"] == port_static.RULE_ID


def test_static_rule_reads_summaries_when_raw_is_gone(asim_jsonl, make_store, write_config):
    t = datetime(2024, 5, 15, 5, 45, tzinfo=timezone.utc)
    cfg = monitor.load_config(write_config('445,*,*,*,*,Detection,Static,3,High,Lateral Movement,SMB,x'))
    store = make_store(asim_jsonl("a.jsonl", local_allow([(t, 445, "TCP")] * 5)))
    store.con.execute("DELETE FROM sessions").fetchall()  # as if pruned
    [alert] = port_static.run(store, cfg, AS_OF)
    assert alert.total == 5 and alert.window.counted_from == "summaries (20-minute bins)"


def test_hunting_lists_every_anomalous_day_and_every_crossing(tmp_path, asim_jsonl, write_config):
    rows = []
    end = datetime(2024, 5, 15, 6, 0, tzinfo=timezone.utc)
    for day in range(14):
        n = 200 if day == 13 else 10 + day % 3
        rows += [(end - timedelta(days=14 - day) + timedelta(minutes=3 * i), 5900, "TCP") for i in range(n)]
    cfg = monitor.load_config(write_config(
        '5900,*,TCP,*,*,Hunting,Anomaly,,Low,Command and Control,VNC hunt,x',
        '5900,*,TCP,*,*,Hunting,Static,15,Low,Command and Control,VNC static,x',
        '5900,*,TCP,*,*,Detection,Static,1000000,High,Command and Control,VNC loud,x'))
    with Store(str(tmp_path / "s.duckdb")) as store:
        store.ingest(str(asim_jsonl("vnc.jsonl", local_allow(rows))))
        found = portlens.hunt(store, config=cfg, as_of=end, days=1)
        anomalies = [r for r in found.rows if r["kind"] == "anomaly"]
        crossings = [r for r in found.rows if r["kind"] == "static"]
        assert port_static.run(store, cfg, end) == []  # the Detection row's threshold is not reached
        assert portlens.detect(store, config=cfg, as_of=end).alerts == []  # hunting rows never alert
    assert [(a["Name"], a["day_start"], a["count"], a["DstPortNumber"]) for a in anomalies] == [
        ("VNC hunt", "2024-05-14T06:00:00Z", 200, "5900")]
    # 200 sessions three minutes apart: 3-4 per 10-minute bin, never above 15 ...
    assert crossings == []
    cfg0 = monitor.load_config(write_config('5900,*,TCP,*,*,Hunting,Static,3,Low,Discovery,VNC,x'))
    with Store(str(tmp_path / "s.duckdb"), read_only=True) as store:
        crossings = port_static.hunt(store, cfg0, end, days=1)
    # ... but above 3 in the bins that hold four sessions.
    assert crossings and all(c["count"] == 4 and c["kind"] == "static" for c in crossings)
