"""Who is behind an alert: the top sources, destinations and reporting devices of each
anomalous series on the anomalous day, with their share of that day's sessions next to their
usual share over the previous days, and a flag for talkers never seen before in the window.

Reads raw sessions; when they are no longer retained (pruned, or only summaries imported)
the explanation says so instead of guessing.
"""

from __future__ import annotations

import pyarrow as pa

from .rules.port_anomaly import KEYS, Detection

FIELDS = ("SrcIpAddr", "DstIpAddr", "Dvc")


def attach(store, result: Detection, top: int = 5) -> None:
    """Add `talkers` to every series of every alert and an `explanation` note to each alert."""
    series = [(a, s) for a in result.alerts for s in a["series"]]
    if not series:
        return
    keys = pa.table({
        "DstPortNumber": pa.array([int(a["DstPortNumber"]) for a, _ in series], pa.int32()),
        "NetworkProtocol": pa.array([s["NetworkProtocol"] for _, s in series], pa.string()),
        "NetworkDirection": pa.array([s["NetworkDirection"] for _, s in series], pa.string()),
        "DvcAction": pa.array([s["DvcAction"] for _, s in series], pa.string()),
        "k": pa.array(range(len(series)), pa.int32()),
    })
    window = result.window
    last_day = window.bins()[-1]
    match = " AND ".join(f's."{k}" IS NOT DISTINCT FROM q."{k}"' for k in KEYS)
    unpivot = " UNION ALL ".join(
        f"SELECT k, '{f}' AS field, \"{f}\" AS value, today FROM hits" for f in FIELDS)
    store.con.register("_explain_keys", keys)
    try:
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
            [last_day, window.start, window.as_of, top])
        counted = store.query(
            f"SELECT q.k, count(*) AS n FROM ingested s JOIN _explain_keys q ON {match} "
            f"WHERE s.TimeGenerated >= ?::TIMESTAMPTZ AND s.TimeGenerated < ?::TIMESTAMPTZ GROUP BY q.k",
            [last_day, window.as_of])
        raw_today = dict(zip(counted["k"].to_pylist(), counted["n"].to_pylist()))
    finally:
        store.con.unregister("_explain_keys")

    for _, s in series:
        s["talkers"] = {f: [] for f in FIELDS}
    for r in rows.to_pylist():
        _, s = series[r["k"]]
        usual = r["n_before"] / r["total_before"] if r["total_before"] else None
        s["talkers"][r["field"]].append({
            "value": r["value"], "count": r["n_today"],
            "share": round(r["n_today"] / r["total_today"], 4),
            "usual_share": None if usual is None else round(usual, 4),
            "new": r["n_before"] == 0,
        })
    for i, (alert, s) in enumerate(series):
        seen = raw_today.get(i, 0)
        s["raw_sessions_today"] = seen
        explanation = alert.setdefault("explanation", {"raw_retained": True, "notes": []})
        if seen < s["total"]:
            explanation["raw_retained"] = False
            explanation["notes"].append(
                f"{s['NetworkProtocol']}/{s['NetworkDirection']}/{s['DvcAction']}: raw sessions cover "
                f"{seen:,} of the day's {s['total']:,} sessions (pruned, or imported as summaries); "
                f"talkers are from what is retained")
