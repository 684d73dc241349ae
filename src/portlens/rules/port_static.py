"""The static sibling: "Detect port misuse by static threshold (ASIM Network Session schema)"
(Sentinel rule 156997bd-da0f-4729-b47a-0a3e02dd50c8), driven by the same configuration rows
with ThresholdType = Static:

    allData (the last complete 10-minute bin) | where isnotempty(DstPortNumber)
    | summarize Sum=sum(Count) by DstPortNumber, NetworkProtocol, NetworkDirection, DvcAction
    | join mapping where Ports has tostring(DstPortNumber)
    | where Sum > Threshold and (Protocol == "*" or Protocol has NetworkProtocol) and ...
    | summarize NetworkProtocols=make_set_if(..), ... by Name, Severity, Tactic, DstPortNumber, Description

Counts come from raw sessions in 10-minute bins; where raw sessions are gone, from the
20-minute summary bin instead (as the Sentinel rule does when it reads summaries), and the
alert says which.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa

from .. import asim
from ..alerts import alert_id, iso, split_tactics
from ..monitor import MonitorConfig, expanded, match_mask
from .port_anomaly import KEYS, SET_LIMITS, TECHNIQUES

RULE_ID = "156997bd-da0f-4729-b47a-0a3e02dd50c8"
RULE_NAME = "Detect port misuse by static threshold (ASIM Network Session schema)"
RULE_VERSION = "1.0.1"
BIN = timedelta(minutes=10)


def last_bin(as_of: datetime) -> tuple[datetime, datetime]:
    """The last complete 10-minute bin before as_of: [bin(as_of) - 10m, bin(as_of))."""
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    end = epoch + ((as_of - epoch) // BIN) * BIN
    return end - BIN, end


def crossings(counts: pa.Table, rows: list, *, per_bin: bool = False) -> pa.Table:
    """Join counts (KEYS, n[, bin_start]) with static configuration rows and keep counts above
    their Threshold; `line`, `Name`, ... and `Threshold` come from the row."""
    table = expanded(rows)
    if counts.num_rows == 0 or table.num_rows == 0:
        return counts.slice(0, 0)
    joined = asim.query(
        "SELECT c.*, m.line, m.Name, m.Severity, m.Tactic, m.Description, m.Protocol, m.Direction, "
        "m.Action, m.Threshold FROM c JOIN m ON c.DstPortNumber = m.DstPortNumber "
        "WHERE m.Threshold IS NOT NULL AND c.n > m.Threshold ORDER BY " + ("c.bin_start, " if per_bin else "") +
        "c.DstPortNumber, m.line", c=counts, m=table)
    if joined.num_rows:
        ok = (match_mask(joined["Protocol"], joined["NetworkProtocol"])
              & match_mask(joined["Direction"], joined["NetworkDirection"])
              & match_mask(joined["Action"], joined["DvcAction"]))
        joined = joined.filter(pa.array(ok))
    return joined


def run(store, config: MonitorConfig, as_of: datetime) -> list[dict]:
    """Static-threshold alerts for the last complete 10-minute bin before as_of."""
    rows = config.select("Detection", "Static")
    if not rows:
        return []
    start, end = last_bin(as_of)
    counts, source = store.bin_counts(start, end, KEYS)
    found = crossings(counts, rows)
    alerts: dict[tuple, dict] = {}
    for r in found.to_pylist():  # a few rows over threshold; loop over alerts, not data
        key = (r["Name"], r["Severity"], r["Tactic"], str(r["DstPortNumber"]), r["Description"])
        alert = alerts.setdefault(key, {
            "id": alert_id(RULE_ID, key[0], key[3], end),
            "title": f"Detected {key[0]}",
            "Name": key[0], "Severity": key[1], "Tactic": key[2], "DstPortNumber": key[3],
            "Description": key[4], "NetworkProtocols": [], "NetworkDirections": [], "DvcActions": [],
            "rule_id": RULE_ID, "rule_name": RULE_NAME, "rule_version": RULE_VERSION,
            "tactics": split_tactics(key[2]), "techniques": list(TECHNIQUES),
            "window": {"start": iso(start), "end": iso(end), "bin": "10m", "counted_from": source},
            "threshold": r["Threshold"], "total": 0, "score": None, "baseline": None, "series": [],
        })
        for column, value in (("NetworkProtocols", r["NetworkProtocol"]),
                              ("NetworkDirections", r["NetworkDirection"]), ("DvcActions", r["DvcAction"])):
            if value and value not in alert[column] and len(alert[column]) < SET_LIMITS[column]:
                alert[column].append(value)
        series = {"NetworkProtocol": r["NetworkProtocol"], "NetworkDirection": r["NetworkDirection"],
                  "DvcAction": r["DvcAction"], "total": int(r["n"]), "threshold": r["Threshold"]}
        if series not in alert["series"]:
            alert["series"].append(series)
            alert["total"] += int(r["n"])
    return sorted(alerts.values(), key=lambda a: (-a["total"], a["Name"]))


def hunt(store, config: MonitorConfig, as_of: datetime, days: int = 1) -> list[dict]:
    """Hunting rows with a static threshold: every 10-minute bin of the `days` before as_of
    whose count crosses the row's threshold (a list, not alerts)."""
    rows = config.select("Hunting", "Static")
    if not rows:
        return []
    end = last_bin(as_of)[1]
    counts, source = store.bin_counts(end - timedelta(days=days), end, KEYS, per_bin=True)
    found = crossings(counts, rows, per_bin=True)
    return [{"kind": "static", "Name": r["Name"], "Severity": r["Severity"], "line": r["line"],
             "DstPortNumber": r["DstPortNumber"], "NetworkProtocol": r["NetworkProtocol"],
             "NetworkDirection": r["NetworkDirection"], "DvcAction": r["DvcAction"],
             "bin_start": iso(r["bin_start"]), "count": int(r["n"]), "threshold": r["Threshold"],
             "counted_from": source} for r in found.to_pylist()]


def hunt_anomalies(series, config: MonitorConfig, fit: dict | None = None) -> list[dict]:
    """Hunting rows with ThresholdType = Anomaly: every day of the window (not only the last)
    where the rule's score filter passes, matched to the hunting rows."""
    from .port_anomaly import passes, score_series
    if series.totals.shape[0] == 0:
        return []
    fit = fit or score_series(series)
    hit_rows, hit_days = np.nonzero(passes(fit["scores"], fit["baselines"]))
    if hit_rows.size == 0:
        return []
    keys = series.keys.take(pa.array(hit_rows)).append_column("_i", pa.array(np.arange(hit_rows.size)))
    joined = asim.query(
        "SELECT k.*, m.line, m.Name, m.Severity, m.Protocol, m.Direction, m.Action FROM k "
        "JOIN m ON k.DstPortNumber = m.DstPortNumber ORDER BY k._i, m.line",
        k=keys, m=expanded(config.select("Hunting", "Anomaly")))
    if joined.num_rows:
        ok = (match_mask(joined["Protocol"], joined["NetworkProtocol"])
              & match_mask(joined["Direction"], joined["NetworkDirection"])
              & match_mask(joined["Action"], joined["DvcAction"]))
        joined = joined.filter(pa.array(ok))
    bins = series.window.bins()
    out = []
    for r in joined.to_pylist():
        i, day = hit_rows[r["_i"]], hit_days[r["_i"]]
        out.append({"kind": "anomaly", "Name": r["Name"], "Severity": r["Severity"], "line": r["line"],
                    "DstPortNumber": r["DstPortNumber"], "NetworkProtocol": r["NetworkProtocol"],
                    "NetworkDirection": r["NetworkDirection"], "DvcAction": r["DvcAction"],
                    "day_start": iso(bins[day]), "count": int(series.totals[i, day]),
                    "baseline": round(float(fit["baselines"][i, day]), 3),
                    "score": round(float(fit["scores"][i, day]), 3)})
    return out
