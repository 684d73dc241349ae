"""Which counts enter the rule's daily bins: the KQL's `allData` union, as of each run time.

The Sentinel rule (v1.3.0) builds `allData` from three places (docs/kql.md, "Data selection",
quotes the query branch by branch):

1. `NetworkSummary_Protocol_CL | where EventTime > ago(lookback)`: always. For portlens these
   are the summaries of ingested files ("summary") and imported NetworkSummary_Protocol_CL
   exports or summary Parquet ("imported"); where both cover a 20-minute bin, the bin is
   counted once, from the side that counted more (portlens' own: they describe the same
   traffic).
2. `NetworkCustomAnalytics_protocol_CL | where EventTime_t > ago(lookback)` (imported exports
   of the legacy playbook table, "legacy"): only when table 1 has no row with
   `EventTime > ago(1d)`.
3. `_Im_NetworkSession` (raw sessions, "raw"): only when neither table has a row in the last
   day; then only rows with `TimeGenerated > maxSummarizedTime` (the newest EventTime of either
   table + 20 minutes, or ago(14d)), from `ago(3d)` when EPS > 500 else `ago(4d)` (EPS = raw
   sessions in the last 5 minutes / 300, integer division), counted in 10-minute bins.

Nothing exists after the run time: a summary row is a 20-minute bin that counts only when it
has ended by as-of (in Sentinel it is written after its bin closes), a raw session only when
it is stamped before as-of. The window is `from ago(14d) to now()` and summary rows need
`EventTime > ago(14d)` (strict).

Tiers (`--tier`): "auto" is the union above (Sentinel's); "sentinel-raw" is branch 3 alone as
a workspace without summaries sees it (Sentinel's); "raw" counts every retained raw session of
the 14 days at its exact time and "summaries" is the union without branch 3 (portlens' own).

A backtest asks for many run times at once. Summary rows are read in one pass per day of the
span with two corrections per day (rows exactly at the day's start, bins that end after the
day's end), so each window is a slice of one matrix; only the gates and the raw branch are
per window, and those are small.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import numpy as np
import pyarrow as pa

BIN = timedelta(minutes=20)          # the summary tables' bin (maxSummarizedTime adds it)
RAW_BIN = timedelta(minutes=10)      # bin(TimeGenerated, 10m) in the raw branch
LOOKBACK = timedelta(days=14)
RECENT = timedelta(days=1)           # "has a row in the last day"
EPS_WINDOW = timedelta(minutes=5)
EPS_HIGH = 500                       # EPS above this: the raw branch reads 3 days, else 4
DAY_US = 86_400_000_000

TIERS = ("auto", "sentinel-raw", "raw", "summaries")
SENTINEL_TIERS = ("auto", "sentinel-raw")
TIER_HELP = {
    "auto": "Sentinel's allData union: summaries, the legacy table only when there are no "
            "recent summaries, raw sessions only when neither table has a recent row",
    "sentinel-raw": "Sentinel's raw fallback alone: what a workspace without summaries sees "
                    "(the last 3 or 4 days, 10-minute bins)",
    "raw": "portlens' own: every retained raw session of the 14 days, at its exact time",
    "summaries": "portlens' own: the union without its raw branch",
}


@dataclass
class Relations:
    """What the selection reads, as SQL relations on one DuckDB connection.

    summaries: columns of summary.SCHEMA plus `origin` ('summary' = of ingested files,
    'imported' = imported NetworkSummary_Protocol_CL rows, 'legacy' = imported
    NetworkCustomAnalytics_protocol_CL rows); raw: ASIM sessions (None: there are none)."""
    con: duckdb.DuckDBPyConnection
    summaries: str
    raw: str | None


@dataclass
class Selected:
    """Counts for `windows` run times as_of_d = first_as_of + d days.

    shared: (keys..., tier, bin, n, n_first, n_last) with bin = day of the span that starts at
    first_as_of - 14 d; n_first is what leaves the day when it is a window's first day (rows
    exactly at its start: EventTime > ago(14d)), n_last what leaves it when it is a window's
    last day (bins that end after as-of). A tier in `gates` counts in window d only when
    gates[tier][d]. per_window: (run, keys..., tier, bin, n): run d's own rows, bin = day of its window."""
    first_as_of: datetime
    windows: int
    shared: pa.Table
    per_window: pa.Table
    gates: dict[str, np.ndarray]
    days: int = 14

    @property
    def span_start(self) -> datetime:
        return self.first_as_of - timedelta(days=self.days)


def _ts(t: datetime) -> str:
    return f"TIMESTAMPTZ '{t.isoformat()}'"


def _us(t: datetime) -> str:
    return f"epoch_us({_ts(t)})"


def _dedup_sql(rel: Relations, keys: tuple[str, ...], lo: datetime | None = None,
               hi: datetime | None = None) -> str:
    """Summary rows of tables 1 and 2 with EventTime in [lo, hi), one side per 20-minute bin
    between the summaries of ingested files and imported NetworkSummary_Protocol_CL rows."""
    cols = ", ".join(f'"{k}"' for k in keys)
    where = "" if lo is None else f"WHERE EventTime >= {_ts(lo)} AND EventTime < {_ts(hi)}"
    return f"""WITH rows AS (SELECT {cols}, EventTime, count_, origin FROM ({rel.summaries}) {where}),
                 totals AS (SELECT EventTime, sum(count_) FILTER (origin = 'summary') AS loc,
                                   sum(count_) FILTER (origin = 'imported') AS imp
                            FROM rows WHERE origin <> 'legacy' GROUP BY EventTime),
                 imported_bins AS (SELECT EventTime FROM totals WHERE imp > coalesce(loc, 0))
            SELECT * FROM rows WHERE origin = 'legacy'
               OR (origin = 'summary') <> (EventTime IN (SELECT EventTime FROM imported_bins))"""


def select(rel: Relations, first_as_of: datetime, windows: int, keys: tuple[str, ...],
           tier: str = "auto", days: int = 14) -> Selected:
    """The counts the rule reads as of first_as_of and each of the next windows-1 days."""
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r} (expected one of {', '.join(TIERS)})")
    cols = ", ".join(f'"{k}"' for k in keys)
    span_start = first_as_of - timedelta(days=days)
    last_as_of = first_as_of + timedelta(days=windows - 1)
    as_ofs = [first_as_of + timedelta(days=d) for d in range(windows)]
    gates: dict[str, np.ndarray] = {}
    shared = per_window = None

    if tier in ("auto", "summaries"):
        day = f"((epoch_us(EventTime) - {_us(span_start)}) // {DAY_US})"
        off = f"((epoch_us(EventTime) - {_us(span_start)}) % {DAY_US})"
        last = DAY_US - BIN // timedelta(microseconds=1)
        shared = rel.con.sql(f"""
            SELECT {cols}, origin AS tier, CAST({day} AS INTEGER) AS bin,
                   sum(count_)::BIGINT AS n,
                   coalesce(sum(count_) FILTER ({off} = 0), 0)::BIGINT AS n_first,
                   coalesce(sum(count_) FILTER ({off} > {last}), 0)::BIGINT AS n_last
            FROM ({_dedup_sql(rel, keys, span_start, last_as_of)})
            WHERE DstPortNumber IS NOT NULL GROUP BY ALL""").to_arrow_table()
        recent = _recent(rel, as_ofs)
        gates["legacy"] = ~recent["summary"]
        if tier == "auto":
            open_ = ~recent["summary"] & ~recent["legacy"]
            per_window = _raw_branch(rel, as_ofs, keys, open_, recent["newest_end"], days)
    elif tier == "sentinel-raw":
        per_window = _raw_branch(rel, as_ofs, keys, np.ones(windows, bool),
                                 [None] * windows, days)
    else:  # raw: exact times, no corrections needed (days end exactly at the run times)
        if rel.raw is None:
            raise LookupError("no raw sessions")
        day = f"((epoch_us(TimeGenerated) - {_us(span_start)}) // {DAY_US})"
        shared = rel.con.sql(f"""
            SELECT {cols}, 'raw' AS tier, CAST({day} AS INTEGER) AS bin, count(*)::BIGINT AS n,
                   0::BIGINT AS n_first, 0::BIGINT AS n_last
            FROM ({rel.raw}) WHERE TimeGenerated >= {_ts(span_start)}
              AND TimeGenerated < {_ts(last_as_of)} AND DstPortNumber IS NOT NULL
            GROUP BY ALL""").to_arrow_table()
    if shared is None:
        shared = _empty(rel, keys, ["tier", "bin", "n", "n_first", "n_last"])
    if per_window is None:
        per_window = _empty(rel, keys, ["run", "tier", "bin", "n"])
    return Selected(first_as_of, windows, shared, per_window, gates, days)


def _empty(rel: Relations, keys, extra: list[str]) -> pa.Table:
    cols = ", ".join(f'"{k}"' for k in keys)
    types = {"tier": "VARCHAR", "bin": "INTEGER", "run": "INTEGER"}
    more = ", ".join(f"CAST(NULL AS {types.get(c, 'BIGINT')}) AS {c}" for c in extra)
    return rel.con.sql(f"SELECT {cols}, {more} FROM ({rel.summaries}) LIMIT 0").to_arrow_table()


def _recent(rel: Relations, as_ofs: list[datetime]) -> dict:
    """Per run time: does table 1 / table 2 have a row with EventTime > as_of - 1d (that has
    ended by as-of), and the end of the newest bin of either with EventTime > as_of - 14d
    (maxSummarizedTime before its ago(lookback) floor). Read from one row per bin."""
    lo, hi = as_ofs[0] - LOOKBACK, as_ofs[-1]
    values = ", ".join(f"({d}, {_ts(t)})" for d, t in enumerate(as_ofs))
    rows = rel.con.sql(f"""
        WITH bins AS (SELECT EventTime, bool_or(origin <> 'legacy') AS nsp, bool_or(origin = 'legacy') AS legacy
                      FROM ({rel.summaries}) WHERE EventTime > {_ts(lo)} AND EventTime < {_ts(hi)}
                      GROUP BY EventTime),
             w(d, as_of) AS (VALUES {values})
        SELECT d, coalesce(bool_or(nsp AND EventTime > as_of - INTERVAL 1 DAY), false) AS s,
               coalesce(bool_or(legacy AND EventTime > as_of - INTERVAL 1 DAY), false) AS l,
               max(EventTime) + INTERVAL {BIN.seconds // 60} MINUTE AS newest_end
        FROM w LEFT JOIN bins ON EventTime > as_of - INTERVAL {LOOKBACK.days} DAY
                             AND EventTime + INTERVAL {BIN.seconds // 60} MINUTE <= as_of
        GROUP BY d ORDER BY d""").fetchall()
    return {"summary": np.array([r[1] for r in rows], bool),
            "legacy": np.array([r[2] for r in rows], bool),
            "newest_end": [r[3] for r in rows]}


def _raw_branch(rel: Relations, as_ofs: list[datetime], keys, open_: np.ndarray,
                newest_end: list, days: int) -> pa.Table | None:
    """Branch 3 for the run times where it is open: rows after maxSummarizedTime, from the
    last 3 days (EPS > 500) or 4, each counted in the day of its 10-minute bin."""
    if rel.raw is None or not open_.any():
        return None
    windows = []
    for d, as_of in enumerate(as_ofs):
        if not open_[d]:
            continue
        floor = as_of - LOOKBACK
        after = max(newest_end[d], floor) if newest_end[d] is not None else floor
        windows.append((d, as_of, after))
    values = ", ".join(f"({d}, {_ts(t)}, {_ts(a)})" for d, t, a in windows)
    eps = dict(rel.con.sql(f"""
        WITH w(d, as_of, after) AS (VALUES {values})
        SELECT d, count(TimeGenerated) FROM w LEFT JOIN ({rel.raw}) r
          ON r.TimeGenerated > as_of - INTERVAL {EPS_WINDOW.seconds} SECOND AND r.TimeGenerated < as_of
        GROUP BY d""").fetchall())
    values = ", ".join(
        f"({d}, {_ts(t)}, {_ts(a)}, {_ts(t - timedelta(days=3 if eps[d] // 300 > EPS_HIGH else 4))}, "
        f"{_ts(t - timedelta(days=days))})" for d, t, a in windows)
    cols = ", ".join(f'r."{k}"' for k in keys)
    bucket = f"time_bucket(INTERVAL {RAW_BIN.seconds // 60} MINUTE, r.TimeGenerated, TIMESTAMPTZ '1970-01-01 00:00:00+00')"
    return rel.con.sql(f"""
        WITH w(d, as_of, after, since, start) AS (VALUES {values})
        SELECT CAST(d AS INTEGER) AS run, {cols}, 'raw' AS tier,
               CAST((epoch_us({bucket}) - epoch_us(start)) // {DAY_US} AS INTEGER) AS bin,
               count(*)::BIGINT AS n
        FROM w JOIN ({rel.raw}) r ON r.TimeGenerated >= since AND r.TimeGenerated > after
                                 AND r.TimeGenerated < as_of
        WHERE r.DstPortNumber IS NOT NULL GROUP BY ALL HAVING bin >= 0""").to_arrow_table()


def one_window(selected: Selected) -> pa.Table:
    """The counts of the first window as (keys..., bin, tier, n), corrections and gates
    applied: what the rule's make-series sums."""
    from . import asim
    last = selected.days - 1
    gate = {t: bool(g[0]) for t, g in selected.gates.items()}
    keys = [c for c in selected.shared.column_names if c not in ("tier", "bin", "n", "n_first", "n_last")]
    cols = ", ".join(f'"{k}"' for k in keys)
    closed = [t for t, ok in gate.items() if not ok]
    skip = (" AND tier NOT IN (" + ", ".join(f"'{t}'" for t in closed) + ")") if closed else ""
    return asim.query(f"""
        SELECT {cols}, bin, tier, sum(n)::BIGINT AS n FROM (
            SELECT {cols}, bin, tier, n - CASE WHEN bin = 0 THEN n_first ELSE 0 END
                                       - CASE WHEN bin = {last} THEN n_last ELSE 0 END AS n
            FROM s WHERE bin BETWEEN 0 AND {last}{skip}
            UNION ALL SELECT {cols}, bin, tier, n FROM p WHERE run = 0)
        GROUP BY ALL HAVING sum(n) <> 0""", s=selected.shared, p=selected.per_window)


def key_index(table: pa.Table, keys) -> tuple[np.ndarray, np.ndarray]:
    """Number the distinct key tuples of `table` (case-sensitive, nulls included) by combining
    per-column dictionary codes in NumPy: (first row of each key, each row's key number).
    Keys are numbered in the order of their values (nulls first), not of their first row, so
    the numbering does not depend on the order the engine returned the rows in."""
    import pyarrow.compute as pc
    combined = np.zeros(table.num_rows, dtype=np.int64)
    for name in keys:
        encoded = pc.dictionary_encode(table[name]).combine_chunks()
        rank = np.asarray(pc.rank(encoded.dictionary, sort_keys="ascending"), dtype=np.int64)  # 1-based
        index = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        codes = np.zeros(len(index), dtype=np.int64)  # null -> 0 (an all-null column has no dictionary)
        codes[index >= 0] = rank[index[index >= 0]]
        combined = combined * (len(encoded.dictionary) + 1) + codes
    _, first, k = np.unique(combined, return_index=True, return_inverse=True)
    return first, k.reshape(-1)


def window_matrices(selected: Selected, keys: tuple[str, ...]):
    """Dense per-window series: (key table, totals of shape (windows, n_keys, days), per
    window a {tier: per-day sessions} dict). Keys are numbered once for all windows by
    combining per-column dictionary codes (nulls included) in NumPy."""
    shared, per_window = selected.shared, selected.per_window
    both = pa.concat_tables([shared.select(list(keys)), per_window.select(list(keys))])
    w, days, span = selected.windows, selected.days, selected.days + selected.windows - 1
    if both.num_rows == 0:
        return both, np.zeros((w, 0, days)), [{} for _ in range(w)]
    first, k = key_index(both, keys)
    n_keys = len(first)
    key_table = both.take(pa.array(first))
    ks, kp = k[:shared.num_rows], k[shared.num_rows:]

    def col(table, name):
        return table[name].to_numpy(zero_copy_only=False).astype(np.int64)

    totals = np.zeros((w, n_keys, days))
    tiers: list[dict[str, np.ndarray]] = [{} for _ in range(w)]
    s_tier = np.array(shared["tier"].to_pylist(), dtype=object)
    s_bin = col(shared, "bin")
    for tier in sorted(set(s_tier)):
        m = (s_tier == tier) & (s_bin >= 0) & (s_bin < span)
        idx = ks[m] * span + s_bin[m]

        def dense(name):
            return np.bincount(idx, weights=col(shared, name)[m], minlength=n_keys * span).reshape(n_keys, span)

        n, f, last = dense("n"), dense("n_first"), dense("n_last")
        gate = selected.gates.get(tier)
        for d in range(w):
            if gate is not None and not gate[d]:
                continue
            part = n[:, d:d + days].copy()
            part[:, 0] -= f[:, d]
            part[:, -1] -= last[:, d + days - 1]
            totals[d] += part
            tiers[d][tier] = tiers[d].get(tier, 0) + part.sum(axis=0)
    p_tier = np.array(per_window["tier"].to_pylist(), dtype=object)
    p_win, p_bin, p_n = col(per_window, "run"), col(per_window, "bin"), col(per_window, "n")
    for tier in sorted(set(p_tier)):
        m = (p_tier == tier) & (p_bin >= 0) & (p_bin < days)
        flat = np.bincount((p_win[m] * n_keys + kp[m]) * days + p_bin[m], weights=p_n[m],
                           minlength=w * n_keys * days).reshape(w, n_keys, days)
        totals += flat
        for d in range(w):
            if flat[d].any():
                tiers[d][tier] = tiers[d].get(tier, 0) + flat[d].sum(axis=0)
    per_day = [{t: [int(v) for v in tiers[d][t]] for t in sorted(tiers[d])} for d in range(w)]
    return key_table, totals, per_day


def summary_rows(rel: Relations) -> str:
    """Every NetworkSummary_Protocol_CL row as the rule counts it (tables 1, one side per
    bin), for export: the same rows detect reads, whatever the run time."""
    from . import summary
    return (f"SELECT * FROM ({_dedup_sql(rel, summary.KEYS)}) "
            f"WHERE origin <> 'legacy'")
