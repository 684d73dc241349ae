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

from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import kql
from ..alerts import Alert, AlertBuilder, AlertSeries, AlertWindow, iso
from ..monitor import MonitorConfig
from .port_anomaly import KEYS, TECHNIQUES, join_watchlist

RULE_ID = "156997bd-da0f-4729-b47a-0a3e02dd50c8"
RULE_NAME = "Detect port misuse by static threshold (ASIM Network Session schema)"
RULE_VERSION = "1.0.1"
BIN = timedelta(minutes=10)


def last_bin(as_of: datetime) -> tuple[datetime, datetime]:
    """The last complete 10-minute bin before as_of: [bin(as_of) - 10m, bin(as_of))."""
    end = kql.bin_time(as_of, BIN)
    return end - BIN, end


def crossings(counts: pa.Table, rows: list, *, per_bin: bool = False) -> pa.Table:
    """Join counts (KEYS, n[, bin_start]) with static configuration rows and keep counts above
    their Threshold; `line`, `Name`, ... and `Threshold` come from the row."""
    if counts.num_rows == 0 or not rows:
        return counts.slice(0, 0)
    order = [("bin_start", "ascending")] if per_bin else []
    counts = counts.sort_by(order + [(k, "ascending") for k in KEYS])
    joined = join_watchlist(counts, rows)
    # A row without a Threshold never fires (KQL: Sum > null is null, not true).
    over = pc.fill_null(pc.greater(joined["n"], joined["Threshold"]), False)
    return joined.filter(over)


def run(store, config: MonitorConfig, as_of: datetime) -> list[Alert]:
    """Static-threshold alerts for the last complete 10-minute bin before as_of."""
    rows = config.select("Detection", "Static")
    if not rows:
        return []
    start, end = last_bin(as_of)
    counts, source = store.bin_counts(start, end, KEYS)
    builder = AlertBuilder("static", (RULE_ID, RULE_NAME, RULE_VERSION), TECHNIQUES,
                           AlertWindow(start, end, BIN, counted_from=source))
    for r in crossings(counts, rows).to_pylist():  # a few rows over threshold
        builder.add(r, AlertSeries(r["NetworkProtocol"], r["NetworkDirection"], r["DvcAction"],
                                   total=int(r["n"]), threshold=r["Threshold"]),
                    key=(r["NetworkProtocol"], r["NetworkDirection"], r["DvcAction"], r["Threshold"]))
    return sorted(builder.done(), key=lambda a: (-a.total, a.name))


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
             "DstPortNumber": str(r["DstPortNumber"]), "NetworkProtocol": r["NetworkProtocol"],
             "NetworkDirection": r["NetworkDirection"], "DvcAction": r["DvcAction"],
             "bin_start": iso(r["bin_start"]), "count": int(r["n"]), "threshold": r["Threshold"],
             "counted_from": source} for r in found.to_pylist()]


def hunt_anomalies(series, config: MonitorConfig, fit: dict) -> list[dict]:
    """Hunting rows with ThresholdType = Anomaly: every day of the window (not only the last)
    where the rule's score filter passes, matched to the hunting rows."""
    from .port_anomaly import passes
    if series.totals.shape[0] == 0:
        return []
    hit_rows, hit_days = np.nonzero(passes(fit["scores"], fit["baselines"]))
    if hit_rows.size == 0:
        return []
    keys = series.keys.take(pa.array(hit_rows)).append_column("_i", pa.array(np.arange(hit_rows.size)))
    joined = join_watchlist(keys, config.select("Hunting", "Anomaly"))
    bins = series.window.bins()
    out = []
    for r in joined.to_pylist():
        i, day = hit_rows[r["_i"]], hit_days[r["_i"]]
        out.append({"kind": "anomaly", "Name": r["Name"], "Severity": r["Severity"], "line": r["line"],
                    "DstPortNumber": str(r["DstPortNumber"]), "NetworkProtocol": r["NetworkProtocol"],
                    "NetworkDirection": r["NetworkDirection"], "DvcAction": r["DvcAction"],
                    "day_start": iso(bins[day]), "count": int(series.totals[i, day]),
                    "baseline": round(float(fit["baselines"][i, day]), 3),
                    "score": round(float(fit["scores"][i, day]), 3)})
    return out
