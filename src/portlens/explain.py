"""Who is behind an alert: the top sources, destinations and reporting devices of each series
on the alert's bin (the anomalous day; the 10-minute bin of a static alert), with their share
of that bin's sessions next to their usual share over the window before it, and a flag for
talkers never seen before in the window.

Reads raw sessions; when they are no longer retained (pruned, or only summaries imported)
the explanation says so instead of guessing.
"""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa

from .alerts import TALKER_FIELDS, Alert, Talker
from .rules.port_anomaly import KEYS, LOOKBACK_DAYS

FIELDS = TALKER_FIELDS


def attach(store, alerts: list[Alert], top: int = 5) -> None:
    """Set `talkers` and `raw_sessions_today` on every series of every alert, and the alert's
    `raw_retained` and `notes`. Alerts sharing a window are explained in one query."""
    by_window: dict[tuple, list[Alert]] = {}
    for alert in alerts:
        w = alert.window
        # Before the alert's bin: the anomaly window's earlier days; for a static bin, the
        # 14 days before it.
        before = w.start if w.days else w.end - w.bin - timedelta(days=LOOKBACK_DAYS)
        by_window.setdefault((before, w.end - w.bin, w.end), []).append(alert)
    for (before, today, end), group in by_window.items():
        _attach(store, group, before, today, end, top)


def _attach(store, alerts: list[Alert], before, today, end, top: int) -> None:
    series = [(a, s) for a in alerts for s in a.series]
    if not series:
        return
    keys = pa.table({
        "DstPortNumber": pa.array([a.port for a, _ in series], pa.int32()),
        "NetworkProtocol": pa.array([s.protocol for _, s in series], pa.string()),
        "NetworkDirection": pa.array([s.direction for _, s in series], pa.string()),
        "DvcAction": pa.array([s.action for _, s in series], pa.string()),
        "k": pa.array(range(len(series)), pa.int32()),
    })
    match = " AND ".join(f's."{k}" IS NOT DISTINCT FROM q."{k}"' for k in KEYS)
    unpivot = " UNION ALL ".join(
        f"SELECT k, '{f}' AS field, \"{f}\" AS value, today FROM hits" for f in FIELDS)
    rows = store.query(f"""
        WITH hits AS (
            SELECT q.k, s.SrcIpAddr, s.DstIpAddr, s.Dvc, s.TimeGenerated >= ?::TIMESTAMPTZ AS today
            FROM ingested s JOIN _explain_keys q ON {match}
            WHERE s.TimeGenerated >= ?::TIMESTAMPTZ AND s.TimeGenerated < ?::TIMESTAMPTZ),
        per_value AS (
            SELECT k, field, value, count(*) FILTER (WHERE today) AS n_today,
                   count(*) FILTER (WHERE NOT today) AS n_before
            FROM ({unpivot}) GROUP BY ALL),
        totals AS (
            SELECT k, count(*) FILTER (WHERE today) AS total_today,
                   count(*) FILTER (WHERE NOT today) AS total_before FROM hits GROUP BY k),
        ranked AS (
            SELECT p.*, t.total_today, t.total_before,
                   row_number() OVER (PARTITION BY p.k, p.field ORDER BY p.n_today DESC, p.value) AS rank
            FROM per_value p JOIN totals t USING (k) WHERE p.n_today > 0)
        SELECT * FROM ranked WHERE rank <= ? ORDER BY k, field, rank""",
        [today, before, end, top], _explain_keys=keys)
    counted = store.query(
        f"SELECT q.k, count(*) AS n FROM ingested s JOIN _explain_keys q ON {match} "
        f"WHERE s.TimeGenerated >= ?::TIMESTAMPTZ AND s.TimeGenerated < ?::TIMESTAMPTZ GROUP BY q.k",
        [today, end], _explain_keys=keys)
    raw_today = dict(zip(counted["k"].to_pylist(), counted["n"].to_pylist()))

    for _, s in series:
        s.talkers = {f: [] for f in FIELDS}
    for r in rows.to_pylist():
        _, s = series[r["k"]]
        usual = r["n_before"] / r["total_before"] if r["total_before"] else None
        s.talkers[r["field"]].append(Talker(
            value=r["value"], count=r["n_today"], share=round(r["n_today"] / r["total_today"], 4),
            usual_share=None if usual is None else round(usual, 4), new=r["n_before"] == 0))
    for alert in alerts:
        alert.raw_retained, alert.notes = True, []
    for i, (alert, s) in enumerate(series):
        seen = raw_today.get(i, 0)
        s.raw_sessions_today = seen
        if seen < s.total:
            alert.raw_retained = False
            alert.notes.append(
                f"{s.protocol}/{s.direction}/{s.action}: raw sessions cover {seen:,} of the "
                f"{'day' if alert.window.days else 'bin'}'s {s.total:,} sessions (pruned, or imported "
                f"as summaries); talkers are from what is retained")
