"""Small datasets for the data-selection tests (tests/test_selection*.py).

Each test builds what the KQL text says should (or should not) enter the rule's 14 daily
bins, runs portlens on it, and checks the alert. The series shapes used:

- a single-day surge on otherwise steady counts (SURGE) scores about 5.9 >= 5 with a positive
  baseline: it alerts whenever it reaches the rule;
- the same steady counts without the surge (STEADY) never alert (all residuals 0);
- NOISY traffic with a moderate last day does not alert (score about 1).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import portlens
from portlens import monitor
from portlens.rules import port_anomaly as rule

AS_OF = datetime(2024, 5, 15, 6, 0, tzinfo=timezone.utc)  # on a 20-minute boundary
START = AS_OF - timedelta(days=14)
SURGE = [10] * 13 + [40]
STEADY = [10] * 14
NOISY = [100, 112, 95, 108, 90, 104, 97, 110, 93, 106, 99, 101, 96, 103]

HEADER = ("Ports,App,Protocol,Direction,Action,Type,ThresholdType,Threshold,Severity,"
          "Tactic,Name,Description\n")


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def session(t: datetime, port=3389, protocol="TCP", direction="Inbound", action="Allow", **extra) -> dict:
    row = {"TimeGenerated": iso(t), "DstPortNumber": port, "NetworkProtocol": protocol,
           "NetworkDirection": direction, "DvcAction": action, **extra}
    return {k: v for k, v in row.items() if v is not None}


def daily(counts, *, offset=timedelta(hours=1), start=START, **fields) -> list[dict]:
    """counts[i] sessions in daily bin i of the window ending at AS_OF, `offset` into the day."""
    return [session(start + timedelta(days=i) + offset + timedelta(seconds=j), **fields)
            for i, c in enumerate(counts) for j in range(c)]


def write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def summary_csv(path, rows, legacy=False) -> str:
    """A Sentinel export of NetworkSummary_Protocol_CL (or, legacy=True, of the playbook table
    NetworkCustomAnalytics_protocol_CL): rows are (EventTime, port, protocol, direction,
    action, count)."""
    if legacy:
        head = ("TenantId,TimeGenerated,NetworkProtocol_s,DstPortNumber_d,DstAppName_s,"
                "NetworkDirection_s,DvcAction_s,EventTime_t,count__d,Type\n")
        line = "t,{t},{p},{port},,{d},{a},{t},{c},NetworkCustomAnalytics_protocol_CL\n"
    else:
        head = ("TenantId,TimeGenerated,NetworkProtocol,DstPortNumber,DstAppName,NetworkDirection,"
                "DvcAction,EventTime,count_,Type\n")
        line = "t,{t},{p},{port},,{d},{a},{t},{c},NetworkSummary_Protocol_CL\n"
    path.write_text(head + "".join(line.format(t=iso(t), port=port, p=p, d=d, a=a, c=c)
                                   for t, port, p, d, a, c in rows))
    return str(path)


def daily_summaries(counts, port=3389, *, offset=timedelta(hours=1), start=START,
                    protocol="TCP", direction="Inbound", action="Allow") -> list[tuple]:
    """One summary row per day (at bin start + offset) holding that day's count."""
    return [(start + timedelta(days=i) + offset, port, protocol, direction, action, c)
            for i, c in enumerate(counts) if c]


def config(tmp_path, *lines: str, name="watchlist.csv") -> monitor.MonitorConfig:
    path = tmp_path / name
    path.write_text(HEADER + "".join(line + "\n" for line in lines))
    return monitor.load_config(path)


def anomaly_row(ports, name, protocol="*", direction="*", action="*") -> str:
    return f'"{ports}",*,"{protocol}","{direction}","{action}",Detection,Anomaly,,High,Execution,{name},{name} traffic'


def fired(data, cfg, as_of=AS_OF, **options) -> set[tuple[str, str]]:
    """(Name, DstPortNumber) of every alert of the rule as of `as_of`."""
    found = portlens.detect(data, config=cfg, as_of=as_of, explain=False, static=False, **options)
    return {(a.name, str(a.port)) for a in found.alerts}


def series(data, as_of=AS_OF, tier="auto") -> dict[tuple, list[int]]:
    window = rule.Window(as_of)
    s = rule.daily_series(data.daily_counts(window.start, window.days, rule.KEYS, tier=tier), window)
    return {tuple(s.keys[k][i].as_py() for k in rule.KEYS): [int(v) for v in s.totals[i]]
            for i in range(s.keys.num_rows)}
