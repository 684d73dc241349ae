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
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import asim, kql, selection, summary
from ..alerts import Alert, AlertBuilder, AlertSeries, AlertWindow
from ..monitor import expanded, match_mask

RULE_ID = "cbf07406-fa2a-48b0-82b8-efad58db14ec"
RULE_NAME = "Detect port misuse by anomaly based detection (ASIM Network Session schema)"
RULE_VERSION = "1.3.0"
TECHNIQUES = ("T1095", "T1059", "T1203", "T1190")

LOOKBACK_DAYS = 14
ANOMALY_THRESHOLD = 2.5          # k passed to series_decompose_anomalies
MIN_SCORE = 2 * ANOMALY_THRESHOLD  # toint(score) >= 5
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


def default_as_of(newest: datetime) -> datetime:
    """Without --as-of the window ends just after the newest data, on the next 20-minute
    boundary: the newest session falls in the last bin (make-series excludes t >= end), and
    summary bins are never cut in two, so every tier gives the same series."""
    step = timedelta(minutes=summary.BIN_MINUTES)
    return kql.bin_time(newest, step) + step


def daily_series(counts: pa.Table, window: Window) -> Series:
    """Pivot (KEYS..., bin, n) rows into a dense (keys × days) matrix; absent days are 0
    (make-series default). Only keys with rows in the window exist (KQL drops empty groups).
    Keys are numbered by selection.key_index."""
    if counts.num_rows == 0:
        return Series(window, pa.table({k: pa.array([], asim.COLUMNS[k]) for k in KEYS}),
                      np.zeros((0, window.days)))
    first, k = selection.key_index(counts, KEYS)
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


MISSING_DAYS = ("zero", "skip")


def outage_days(series: Series) -> np.ndarray:
    """Days with no sessions at all in the data (every key is zero): a sensor or pipeline
    outage rather than a quiet port."""
    return series.totals.sum(axis=0) == 0 if series.totals.size else np.zeros(series.window.days, bool)


# series_decompose_anomalies(..., -1, ...) asks Kusto to detect a period; how Kusto scores
# periods is unpublished (docs/kql.md). "auto" is portlens' detector (it can find period 4
# in 14 daily points); "none" never uses a seasonal component (spec 4.1's expectation for
# 14 daily points). Which one Kusto matches there is unknown: a named guess.
SEASONALITY = {"auto": -1, "none": 0}


def score_series(series: Series, *, zero_spread: str = "inf", missing_days: str = "zero",
                 outage: np.ndarray | None = None, seasonality: str = "auto") -> dict[str, np.ndarray]:
    """series_decompose_anomalies(Total, 2.5, -1, 'linefit') on every row at once.

    missing_days="zero" is KQL's make-series: an empty day is 0. "skip" leaves outage days
    (`outage`, one mask per row or one for all) out of the decomposition, so an outage does
    not bend the trend; their baseline and score are NaN. Rows are grouped by outage pattern,
    so each group is still one vectorized call."""
    totals = series.totals
    period = SEASONALITY[seasonality]
    if missing_days not in MISSING_DAYS:
        raise ValueError(f"missing_days must be one of {MISSING_DAYS}")
    if missing_days == "zero" or outage is None or not np.any(outage):
        flags, scores, baselines = kql.series_decompose_anomalies(
            totals, ANOMALY_THRESHOLD, period, "linefit", zero_spread=zero_spread)
        return {"flags": flags, "scores": scores, "baselines": baselines}
    masks = np.broadcast_to(outage, totals.shape)
    scores = np.full(totals.shape, np.nan)
    baselines = np.full(totals.shape, np.nan)
    flags = np.zeros(totals.shape, dtype=int)
    patterns, group = np.unique(masks, axis=0, return_inverse=True)
    for g, pattern in enumerate(patterns):
        rows, keep = np.flatnonzero(group.ravel() == g), ~pattern
        if keep.sum() < 2:
            continue
        f, sc, b = kql.series_decompose_anomalies(totals[np.ix_(rows, keep)], ANOMALY_THRESHOLD, period,
                                                  "linefit", zero_spread=zero_spread)
        flags[np.ix_(rows, keep)], scores[np.ix_(rows, keep)], baselines[np.ix_(rows, keep)] = f, sc, b
    return {"flags": flags, "scores": scores, "baselines": baselines}


def _toint(values: np.ndarray) -> np.ndarray:
    """KQL toint(): truncation toward zero; non-finite values become null (-> never pass)."""
    out = np.full(values.shape, np.iinfo(np.int64).min, dtype=np.int64)
    finite = np.isfinite(values)
    out[finite] = np.trunc(values[finite]).astype(np.int64)
    return out


def passes(scores: np.ndarray, baselines: np.ndarray) -> np.ndarray:
    """The rule's filter: toint(score) >= 5 and toint(baseline) > 0."""
    return (_toint(scores) >= MIN_SCORE) & (_toint(baselines) > 0)


def survivors(series: Series, fit: dict) -> pa.Table:
    """Filter: the keys whose last day passes toint(score) >= 5 and toint(baseline) > 0 (only
    keys with sessions in the window: KQL makes no series for empty keys); `_row` is the key's
    row in the series."""
    present = np.flatnonzero(series.totals.any(axis=1))
    keep = present[passes(fit["scores"][present, -1], fit["baselines"][present, -1])]
    return series.keys.take(pa.array(keep, pa.int64())).append_column("_row", pa.array(keep, pa.int64()))


def join_watchlist(found: pa.Table, rows: list) -> pa.Table:
    """Watchlist join: each found key with the configuration rows for its port whose Protocol,
    Direction and Action accept it (`== "*" or has`). Rows come out in found order, then
    watchlist order; the row's Name, Severity, Tactic, Description and Threshold come along."""
    joined = asim.query(
        "SELECT f.*, m.line, m.Name, m.Severity, m.Tactic, m.Description, m.Protocol, m.Direction, "
        "m.Action, m.Threshold FROM f JOIN m ON f.DstPortNumber = m.DstPortNumber "
        "ORDER BY f._order, m.line", f=found.append_column("_order", pa.array(np.arange(found.num_rows))),
        m=expanded(rows))
    if joined.num_rows:
        ok = (match_mask(joined["Protocol"], joined["NetworkProtocol"])
              & match_mask(joined["Direction"], joined["NetworkDirection"])
              & match_mask(joined["Action"], joined["DvcAction"]))
        joined = joined.filter(pa.array(ok))
    return joined.drop_columns(["_order"])


def windows(counts, first_as_of: datetime, days: int) -> list[Series]:
    """Daily series for the 14-day windows as of first_as_of and each following day, from the
    counts the data selection returns for them (selection.window_matrices: one matrix)."""
    keys, totals, tiers = selection.window_matrices(counts, KEYS)
    return [Series(Window(first_as_of + timedelta(days=d)), keys, totals[d], tiers[d])
            for d in range(days)]


def score_windows(parts: list[Series], *, zero_spread: str = "inf", missing_days: str = "zero",
                  seasonality: str = "auto") -> list[dict]:
    """score_series on several windows of the same keys in one vectorized call."""
    if not parts or parts[0].totals.shape[0] == 0:
        return [None] * len(parts)
    n = parts[0].totals.shape[0]
    stacked = Series(parts[0].window, parts[0].keys, np.concatenate([w.totals for w in parts]))
    outage = np.concatenate([np.broadcast_to(outage_days(w), w.totals.shape) for w in parts])
    fit = score_series(stacked, zero_spread=zero_spread, missing_days=missing_days, outage=outage,
                       seasonality=seasonality)
    return [{k: v[d * n:(d + 1) * n] for k, v in fit.items()} for d in range(len(parts))]


def group_alerts(joined: pa.Table, series: Series, fit: dict, outage: np.ndarray,
                 missing_days: str = "zero") -> list[Alert]:
    """Group: one alert per (Name, Severity, Tactic, DstPortNumber, Description) with the KQL
    sets and, as portlens extras, every matching series with its numbers."""
    window = series.window
    builder = AlertBuilder("anomaly", (RULE_ID, RULE_NAME, RULE_VERSION), TECHNIQUES, AlertWindow(
        window.start, window.as_of, timedelta(days=1), days=window.days, tiers=series.tiers,
        missing_days=missing_days))
    bins = window.bins()
    # A handful of rows survive the score filter; a loop here is over alerts, not data.
    for r in joined.to_pylist():
        i = r["_row"]
        builder.add(r, AlertSeries(
            r["NetworkProtocol"], r["NetworkDirection"], r["DvcAction"],
            total=int(series.totals[i, -1]),
            baseline=float(fit["baselines"][i, -1]), score=float(fit["scores"][i, -1]),
            totals=[int(v) for v in series.totals[i]],
            baselines=_numbers(fit["baselines"][i]), scores=_numbers(fit["scores"][i]),
            # Missing data is not zero traffic: days with no data at all vs a quiet key.
            outage_days=[d for d, out in zip(bins, outage) if out],
            quiet_days=[d for d, out, v in zip(bins, outage, series.totals[i]) if not out and v == 0]),
            key=i)
    return sorted(builder.done(), key=lambda a: (-a.score, a.name, a.port))


def _numbers(values: np.ndarray) -> list[float | None]:
    """Rounded floats for JSON; NaN (a skipped outage day) becomes null."""
    return [round(float(v), 6) if np.isfinite(v) else None for v in values]
