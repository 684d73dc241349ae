"""The 20-minute summary tier: the interface between scale tiers.

A summary row counts sessions per (NetworkProtocol, DstPortNumber, DstAppName,
NetworkDirection, DvcAction) and 20-minute bin, in the shape of Sentinel's summary table
NetworkSummary_Protocol_CL (EventTime = bin start, count_ = KQL count()). Anything that
produces such rows (the local store, Spark, a Sentinel export) can feed the detector.

The older playbook table NetworkCustomAnalytics_protocol_CL has the same keys with type
suffixes (NetworkProtocol_s, DstPortNumber_d, DstAppName_s, NetworkDirection_s, DvcAction_s,
EventTime_t, count__d); `from_sentinel` reads both shapes.
"""

from __future__ import annotations

import pyarrow as pa

from . import asim

BIN_MINUTES = 20
KEYS = ("NetworkProtocol", "DstPortNumber", "DstAppName", "NetworkDirection", "DvcAction")

SCHEMA = pa.schema([
    ("NetworkProtocol", pa.string()), ("DstPortNumber", pa.int32()), ("DstAppName", pa.string()),
    ("NetworkDirection", pa.string()), ("DvcAction", pa.string()),
    ("EventTime", asim.TIMESTAMP), ("count_", pa.int64()),
])

# Column names of the legacy playbook table -> ours.
LEGACY_COLUMNS = {
    "NetworkProtocol_s": "NetworkProtocol", "DstPortNumber_d": "DstPortNumber",
    "DstAppName_s": "DstAppName", "NetworkDirection_s": "NetworkDirection",
    "DvcAction_s": "DvcAction", "EventTime_t": "EventTime", "count__d": "count_",
}


def bin_sql(column: str = "TimeGenerated") -> str:
    """SQL for the 20-minute bin start of a UTC timestamp (aligned to the epoch, like KQL bin())."""
    return f"time_bucket(INTERVAL {BIN_MINUTES} MINUTE, {column}, TIMESTAMPTZ '1970-01-01 00:00:00+00')"


def aggregate_sql(relation: str) -> str:
    """SQL that summarizes ASIM session rows of `relation` into summary rows."""
    keys = ", ".join(f'"{k}"' for k in KEYS)
    return (f"SELECT {keys}, {bin_sql()} AS EventTime, count(*)::BIGINT AS count_ "
            f"FROM {relation} GROUP BY ALL")


def summarize(sessions: pa.Table) -> pa.Table:
    """Summary rows for a batch of ASIM sessions (Arrow in, Arrow out). Partial: rows of the
    same key and bin from several batches are added up by the caller (sum of count_)."""
    present = [c for c in (*KEYS, "TimeGenerated") if c in sessions.column_names]
    missing = ", ".join(f'CAST(NULL AS {"INTEGER" if k == "DstPortNumber" else "VARCHAR"}) AS "{k}"'
                        for k in KEYS if k not in present)
    cols = ", ".join(f'"{c}"' for c in present) + (f", {missing}" if missing else "")
    out = asim.query(aggregate_sql(f"(SELECT {cols} FROM s)"), s=sessions)
    return out.cast(SCHEMA)


def combine(parts: pa.Table) -> pa.Table:
    """Add up partial summaries (same key and bin)."""
    keys = ", ".join(f'"{k}"' for k in KEYS)
    return asim.query(f"SELECT {keys}, EventTime, sum(count_)::BIGINT AS count_ FROM p "
                      f"GROUP BY ALL ORDER BY EventTime, {keys}", p=parts).cast(SCHEMA)
