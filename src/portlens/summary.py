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

import os
from contextlib import closing
from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from . import asim, files, storage
from .sources.base import SourceError, conformed, parse_file, read_ahead, read_head

BIN_MINUTES = 20
TABLE = "NetworkSummary_Protocol_CL"
LEGACY_TABLE = "NetworkCustomAnalytics_protocol_CL"
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


# The newest-time question (what retention and the default as-of count back from) must not be
# answered by a few stray records: a device clock hours ahead, a forged line. Strays are few
# and stand apart in time, so the newest data is found in hourly bins: from the newest hour
# back until the tail holds NEWEST_TAIL_SHARE of a typical day's sessions, then forward again
# through hours no more than NEWEST_MAX_GAP apart.
NEWEST_TAIL_SHARE = 0.01
NEWEST_MAX_GAP_HOURS = 2


def newest_sql(times: str) -> str:
    """SQL giving the robust newest time of `times` (a relation of (t TIMESTAMPTZ, n BIGINT):
    a time and how many sessions it stands for); see NEWEST_TAIL_SHARE. A typical day is the
    median of the 14 newest days with data. With little data (a tail share under one session)
    it is simply the newest time. Computed in SQL so that no out-of-range time reaches Python."""
    return f"""WITH h AS (SELECT date_trunc('hour', t) AS hour, sum(n) AS n, max(t) AS newest
                          FROM {times} GROUP BY 1),
                     typical AS (SELECT median(n) AS m FROM (
                          SELECT date_trunc('day', hour) AS day, sum(n) AS n FROM h GROUP BY 1
                          ORDER BY day DESC LIMIT 14)),
                     tail AS (SELECT hour, sum(n) OVER (ORDER BY hour DESC ROWS UNBOUNDED PRECEDING) AS cum FROM h),
                     anchor AS (SELECT max(hour) AS a FROM tail, typical WHERE cum >= {NEWEST_TAIL_SHARE} * m),
                     after AS (SELECT hour, newest,
                                      hour - lag(hour) OVER (ORDER BY hour) > INTERVAL {NEWEST_MAX_GAP_HOURS} HOUR AS gap
                               FROM h, anchor WHERE hour >= a),
                     cut AS (SELECT min(hour) AS g FROM after WHERE gap)
                SELECT max(newest) FROM after, cut WHERE g IS NULL OR hour < g"""


def bin_end_sql(column: str = "EventTime") -> str:
    """The last instant of a summary bin that starts at `column`."""
    return f"({column} + INTERVAL {BIN_MINUTES} MINUTE - INTERVAL 1 MICROSECOND)"


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


def read(path: str) -> pa.Table:
    """Summary rows from a file: Parquet (portlens, Spark), or a Sentinel export of
    NetworkSummary_Protocol_CL / NetworkCustomAnalytics_protocol_CL as CSV, JSON lines or a
    JSON array. Other columns (TenantId, TimeGenerated, Type, ...) are ignored. The file is
    all or nothing: the first bad row is an error naming its row number."""
    if storage.is_url(path):  # storage hook (issue 14): summary files are small; read a local copy
        with storage.local_copy(path) as local:
            return _read(local, path)
    return _read(path, path)


def _read(path: str, name: str) -> pa.Table:
    head = read_head(path, 64)
    fmt = ("parquet" if head[:4] == b"PAR1" else
           "json" if head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"[") else "csv")
    reader = {"parquet": "read_parquet(?)",
              "json": "read_json(?, format='auto', records=true)",
              "csv": "read_csv(?, all_varchar=true, header=true)"}[fmt]
    con = asim.sql()
    try:
        names = [d[0] for d in con.execute(f"DESCRIBE SELECT * FROM {reader}", [path]).fetchall()]
    except Exception as e:  # duckdb reports parse errors with its own types
        raise SourceError(f"{name}: not a readable summary file ({str(e).splitlines()[0]})") from None
    rename = {n: LEGACY_COLUMNS.get(n, n) for n in names}
    have = set(rename.values())
    missing = [c for c in SCHEMA.names if c not in have]
    if missing:
        raise SourceError(f"{name}: not a summary export; missing column(s) {', '.join(missing)} "
                          f"(expected NetworkSummary_Protocol_CL or NetworkCustomAnalytics_protocol_CL)")
    src = ", ".join(f'CAST("{n}" AS VARCHAR) AS "{rename[n]}"' for n in names if rename[n] in SCHEMA.names)
    text = lambda c: f"NULLIF(trim(\"{c}\"), '')"  # noqa: E731
    typed = (f"SELECT {text('NetworkProtocol')} AS NetworkProtocol, "
             f"TRY_CAST(TRY_CAST({text('DstPortNumber')} AS DOUBLE) AS INTEGER) AS DstPortNumber, "
             f"{text('DstAppName')} AS DstAppName, {text('NetworkDirection')} AS NetworkDirection, "
             f"{text('DvcAction')} AS DvcAction, {asim.time_sql(text('EventTime'))} AS EventTime, "
             f"TRY_CAST(TRY_CAST({text('count_')} AS DOUBLE) AS BIGINT) AS count_, "
             f"{text('DstPortNumber')} AS _port, {text('EventTime')} AS _time, {text('count_')} AS _count, "
             f"row_number() OVER () AS _row FROM (SELECT {src} FROM {reader})")
    rows = con.sql(typed, params=[path]).to_arrow_table()
    bad = asim.query(
        "SELECT _row, CASE WHEN EventTime IS NULL THEN 'EventTime ' || coalesce(_time, 'empty') || ' is not a time' "
        f"WHEN {asim.time_range_sql('EventTime')} THEN 'EventTime ' || _time || ' is {asim.time_bounds().describe()}' "
        "WHEN count_ IS NULL OR count_ < 0 THEN 'count ' || coalesce(_count, 'empty') || ' is not a count' "
        "WHEN _port IS NOT NULL AND (DstPortNumber IS NULL OR DstPortNumber NOT BETWEEN 0 AND 65535) "
        "THEN 'DstPortNumber ' || _port || ' is not a port' END AS why FROM r WHERE why IS NOT NULL "
        "ORDER BY _row LIMIT 1", r=rows)
    if bad.num_rows:
        row, why = bad["_row"][0].as_py(), bad["why"][0].as_py()
        raise SourceError(f"{name}: summary row {row}: {why}")
    # Which Sentinel table the rows are matters to the rule (the legacy one is counted only
    # without recent NetworkSummary_Protocol_CL rows): recorded in the schema metadata.
    table = LEGACY_TABLE if any(n in LEGACY_COLUMNS for n in names) else TABLE
    return rows.select(SCHEMA.names).cast(SCHEMA).replace_schema_metadata({b"table": table.encode()})


def table_name(rows: pa.Table) -> str:
    """The Sentinel table that summary rows read by `read` came from."""
    return ((rows.schema.metadata or {}).get(b"table") or TABLE.encode()).decode()


def write(rows: pa.Table, path: str) -> None:
    """Write summary rows: Parquet for *.parquet, else CSV in the NetworkSummary_Protocol_CL
    shape (ISO-8601 UTC EventTime)."""
    rows = rows.select(SCHEMA.names).cast(SCHEMA)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    if path.endswith(".parquet"):
        pq.write_table(rows, path)
        return
    text = asim.query("SELECT * REPLACE (strftime(EventTime, '%Y-%m-%dT%H:%M:%SZ') AS EventTime) FROM r", r=rows)
    pacsv.write_csv(text, path)


def expand(patterns: list[str]) -> list[str]:
    """Paths, globs and folders (of Parquet parts, as Spark writes them) -> files."""
    found = files.expand(patterns, pattern="*.parquet", skip_not_logs=False).files
    if not found:
        raise SourceError(f"{' '.join(patterns)}: no summary files found")
    return found


def from_raw_files(paths: list[str], source: str = "auto", progress=None,
                   options: dict | None = None) -> tuple[pa.Table, dict]:
    """Summaries of raw log files without a store (the single-machine twin of the Spark
    engine): each file parsed by its source, summarized batch by batch, then combined.
    progress: a progress.Progress told of each file and of the records read; options: the
    source's own (Source.OPTIONS)."""
    from . import sources
    from .progress import Progress
    progress = progress or Progress()
    parts, stats = [], {"files": 0, "sessions": 0, "quarantined": 0, "skipped": 0}
    for path in paths:
        parser = sources.choose(path, source, options)
        progress.file(path)
        with closing(read_ahead(conformed(parse_file(parser, path)))) as batches:
            for batch in batches:
                parts.append(summarize(batch.table))
                stats["sessions"] += batch.table.num_rows
                stats["quarantined"] += batch.quarantine.num_rows
                stats["skipped"] += batch.skipped
                progress.advance(batch.records)
        progress.done()
        stats["files"] += 1
    return combine(pa.concat_tables(parts) if parts else SCHEMA.empty_table()), stats


class SummaryFiles:
    """Summary rows read straight from files, for `detect --summaries` without a store; the
    rule reads them through the same data selection as a store's imported summaries."""

    def __init__(self, patterns: list[str]):
        import duckdb
        self.paths = expand(patterns)
        parts = []
        for p in self.paths:
            rows = read(p)
            origin = "legacy" if table_name(rows) == LEGACY_TABLE else "imported"
            parts.append(rows.append_column("origin", pa.repeat(pa.scalar(origin), rows.num_rows)))
        self.rows = pa.concat_tables([t.replace_schema_metadata(None) for t in parts])
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.register("summary_rows", self.rows)

    def newest_time(self):
        """The end of the newest summary bin, robust to a few outlying rows (see newest_sql)."""
        return asim.query(newest_sql(f"(SELECT {bin_end_sql()} AS t, count_ AS n FROM r)"),
                          r=self.rows).column(0)[0].as_py()

    def relations(self):
        from . import selection
        return selection.Relations(self.con, "SELECT * FROM summary_rows", None)

    def window_counts(self, first_as_of: datetime, windows: int, keys: tuple[str, ...], tier: str = "auto"):
        from . import selection
        if tier in ("raw", "sentinel-raw"):
            raise SourceError(f"--tier {tier} needs a store; summary files hold no raw sessions")
        return selection.select(self.relations(), first_as_of, windows, keys, tier)

    def daily_counts(self, start: datetime, days: int, keys: tuple[str, ...], tier: str = "auto") -> pa.Table:
        from . import selection
        if tier in ("raw", "sentinel-raw"):
            raise SourceError(f"--tier {tier} needs a store; summary files hold no raw sessions")
        return selection.one_window(selection.select(self.relations(), start + timedelta(days=days),
                                                     1, keys, tier, days))
