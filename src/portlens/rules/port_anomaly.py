"""The seed rule: "Detect port misuse by anomaly based detection (ASIM Network Session schema)".

KQL shape reproduced (Sentinel rule cbf07406-fa2a-48b0-82b8-efad58db14ec, v1.3.0):

    allData | where isnotempty(DstPortNumber)
    | make-series Total=sum(Count) on EventTime from ago(14d) to now() step 1d
        by DstPortNumber, NetworkProtocol, NetworkDirection, DvcAction
    | extend (anomalies, score, baseline) = series_decompose_anomalies(Total, 2.5, -1, 'linefit')
    | mv-expand ... | where EventTime >= ago(1d)                      (the last bin only)
    | where toint(score) >= 5 and toint(baseline) > 0
    | join mapping on port | where (Protocol == "*" or Protocol has NetworkProtocol) and ...
    | summarize NetworkProtocols=make_set_if(..,20), NetworkDirections=make_set_if(..,5),
        DvcActions=make_set_if(..,10) by Name, Severity, Tactic, DstPortNumber, Description

All series are decomposed at once as one 2-D array (one row per key).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import asim, kql, summary
from ..alerts import alert_id, iso, split_tactics
from ..monitor import MonitorConfig, expanded, match_mask

RULE_ID = "cbf07406-fa2a-48b0-82b8-efad58db14ec"
RULE_NAME = "Detect port misuse by anomaly based detection (ASIM Network Session schema)"
RULE_VERSION = "1.3.0"
TECHNIQUES = ("T1095", "T1059", "T1203", "T1190")

LOOKBACK_DAYS = 14
ANOMALY_THRESHOLD = 2.5          # k passed to series_decompose_anomalies
MIN_SCORE = 2 * ANOMALY_THRESHOLD  # toint(score) >= 5
SET_LIMITS = {"NetworkProtocols": 20, "NetworkDirections": 5, "DvcActions": 10}
KEYS = ("DstPortNumber", "NetworkProtocol", "NetworkDirection", "DvcAction")


@dataclass
class Window:
    """The 14 daily bins ending at as_of; bin i covers [start + i d, start + (i+1) d)."""
    as_of: datetime
    days: int = LOOKBACK_DAYS

    @property
    def start(self) -> datetime:
        return self.as_of - timedelta(days=self.days)

    def bins(self) -> list[datetime]:
        return [self.start + timedelta(days=i) for i in range(self.days)]


@dataclass
class Series:
    """Daily totals per key: keys is a table of KEYS columns, totals an (n_keys, days) array;
    tiers tells, per day, how many sessions came from each origin (summary, raw, imported)."""
    window: Window
    keys: pa.Table
    totals: np.ndarray
    tiers: dict[str, list[int]] = field(default_factory=dict)


@dataclass
class Detection:
    alerts: list[dict]
    window: Window
    series_count: int
    anomalous: pa.Table = field(repr=False)  # last-bin survivors before the config join
    tiers: dict[str, list[int]] = field(default_factory=dict)


def default_as_of(newest: datetime) -> datetime:
    """Without --as-of the window ends just after the newest data, on the next 20-minute
    boundary: the newest session falls in the last bin (make-series excludes t >= end), and
    summary bins are never cut in two, so every tier gives the same series."""
    step = timedelta(minutes=summary.BIN_MINUTES)
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    return epoch + ((newest - epoch) // step + 1) * step


def run(store, config: MonitorConfig, as_of: datetime, *, zero_spread: str = "inf",
        tier: str = "auto") -> Detection:
    """The rule over a store (or anything with daily_counts): daily series for the window
    ending at as_of, then detect."""
    window = Window(as_of)
    counts = store.daily_counts(window.start, window.days, KEYS, tier=tier)
    return detect(daily_series(counts, window), config, zero_spread=zero_spread)


def daily_series(counts: pa.Table, window: Window) -> Series:
    """Pivot (KEYS..., bin, n) rows into a dense (keys × days) matrix; absent days are 0
    (make-series default). Only keys with rows in the window exist (KQL drops empty groups).
    Keys are numbered by combining per-column dictionary codes (nulls included) in NumPy."""
    if counts.num_rows == 0:
        return Series(window, pa.table({k: pa.array([], asim.COLUMNS[k]) for k in KEYS}),
                      np.zeros((0, window.days)))
    combined = np.zeros(counts.num_rows, dtype=np.int64)
    for name in KEYS:
        encoded = pc.dictionary_encode(counts[name]).combine_chunks()
        codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64) + 1
        combined = combined * (len(encoded.dictionary) + 1) + codes
    _, first, k = np.unique(combined, return_index=True, return_inverse=True)
    bins = counts["bin"].to_numpy(zero_copy_only=False).astype(np.int64)
    flat = np.bincount(k * window.days + bins, weights=counts["n"].to_numpy(zero_copy_only=False),
                       minlength=len(first) * window.days)
    keys = counts.select(list(KEYS)).take(pa.array(first))
    tiers = {}
    if "tier" in counts.column_names:
        for tier in pc.unique(counts["tier"]).to_pylist():
            mask = pc.equal(counts["tier"], tier).to_numpy(zero_copy_only=False)
            per_day = np.bincount(bins[mask], weights=counts["n"].to_numpy(zero_copy_only=False)[mask],
                                  minlength=window.days)
            tiers[tier] = [int(v) for v in per_day]
    return Series(window, keys, flat.reshape(len(first), window.days), dict(sorted(tiers.items())))


def score_series(series: Series, *, zero_spread: str = "inf") -> dict[str, np.ndarray]:
    """series_decompose_anomalies(Total, 2.5, -1, 'linefit') on every row at once."""
    flags, scores, baselines = kql.series_decompose_anomalies(
        series.totals, ANOMALY_THRESHOLD, -1, "linefit", zero_spread=zero_spread)
    return {"flags": flags, "scores": scores, "baselines": baselines}


def _toint(values: np.ndarray) -> np.ndarray:
    """KQL toint(): truncation toward zero; non-finite values become null (-> never pass)."""
    out = np.full(values.shape, np.iinfo(np.int64).min, dtype=np.int64)
    finite = np.isfinite(values)
    out[finite] = np.trunc(values[finite]).astype(np.int64)
    return out


def detect(series: Series, config: MonitorConfig, *, zero_spread: str = "inf") -> Detection:
    window = series.window
    if series.totals.shape[0] == 0:
        return Detection([], window, 0, series.keys, series.tiers)
    fit = score_series(series, zero_spread=zero_spread)
    last_score = _toint(fit["scores"][:, -1])
    last_base = _toint(fit["baselines"][:, -1])
    keep = np.flatnonzero((last_score >= MIN_SCORE) & (last_base > 0))
    survivors = series.keys.take(pa.array(keep, pa.int64())).append_column(
        "_row", pa.array(keep, pa.int64()))
    rows = expanded(config.select("Detection", "Anomaly"))
    joined = asim.query(
        "SELECT s.*, m.Name, m.Severity, m.Tactic, m.Description, m.Protocol, m.Direction, m.Action "
        "FROM s JOIN m ON s.DstPortNumber = m.DstPortNumber ORDER BY s._row, m.line",
        s=survivors, m=rows)
    if joined.num_rows:
        ok = (match_mask(joined["Protocol"], joined["NetworkProtocol"])
              & match_mask(joined["Direction"], joined["NetworkDirection"])
              & match_mask(joined["Action"], joined["DvcAction"]))
        joined = joined.filter(pa.array(ok))
    alerts = _group_alerts(joined, series, fit, window)
    for alert in alerts:
        alert["window"]["tiers"] = series.tiers
    return Detection(alerts, window, series.totals.shape[0], survivors, series.tiers)


def _group_alerts(joined: pa.Table, series: Series, fit: dict, window: Window) -> list[dict]:
    """One alert per (Name, Severity, Tactic, DstPortNumber, Description) with the KQL sets
    and, as portlens extras, every matching series with its numbers."""
    alerts: dict[tuple, dict] = {}
    # A handful of rows survive the score filter; a loop here is over alerts, not data.
    for r in joined.to_pylist():
        key = (r["Name"], r["Severity"], r["Tactic"], str(r["DstPortNumber"]), r["Description"])
        alert = alerts.setdefault(key, _new_alert(*key, window))
        for column, value in (("NetworkProtocols", r["NetworkProtocol"]),
                              ("NetworkDirections", r["NetworkDirection"]),
                              ("DvcActions", r["DvcAction"])):
            if value and value not in alert[column] and len(alert[column]) < SET_LIMITS[column]:
                alert[column].append(value)
        i = r["_row"]
        if any(s["_row"] == i for s in alert["series"]):
            continue
        alert["series"].append({
            "_row": i,
            "NetworkProtocol": r["NetworkProtocol"], "NetworkDirection": r["NetworkDirection"],
            "DvcAction": r["DvcAction"],
            "total": int(series.totals[i, -1]),
            "baseline": float(fit["baselines"][i, -1]),
            "score": float(fit["scores"][i, -1]),
            "totals": [int(v) for v in series.totals[i]],
            "baselines": [round(float(v), 6) for v in fit["baselines"][i]],
            "scores": [round(float(v), 6) for v in fit["scores"][i]],
        })
    out = []
    for alert in alerts.values():
        for s in alert["series"]:
            s.pop("_row")
        alert["series"].sort(key=lambda s: -s["score"])
        alert["score"] = max(s["score"] for s in alert["series"])
        alert["total"] = sum(s["total"] for s in alert["series"])
        alert["baseline"] = sum(s["baseline"] for s in alert["series"])
        out.append(alert)
    out.sort(key=lambda a: (-a["score"], a["Name"], int(a["DstPortNumber"])))
    return out


def _new_alert(name, severity, tactic, port, description, window: Window) -> dict:
    return {
        "id": alert_id(RULE_ID, name, port, window.as_of),
        "title": f"Detected {name}",
        "Name": name, "Severity": severity, "Tactic": tactic, "DstPortNumber": port,
        "Description": description,
        "NetworkProtocols": [], "NetworkDirections": [], "DvcActions": [],
        "rule_id": RULE_ID, "rule_name": RULE_NAME, "rule_version": RULE_VERSION,
        "tactics": split_tactics(tactic), "techniques": list(TECHNIQUES),
        "window": {"start": iso(window.start), "end": iso(window.as_of), "bin": "1d",
                   "days": window.days},
        "series": [],
    }
