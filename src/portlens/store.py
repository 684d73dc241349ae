"""The DuckDB store: normalized sessions, the file ledger, and the quarantine.

Ingest is atomic per file and idempotent:
- a file's rows are appended batch by batch in one transaction, under a ledger entry in state
  'loading' that the same transaction flips to 'done'; every reader goes through the `ingested`
  view, which shows 'done' files only. One transaction per file rather than one per batch
  halves the cost of the inserts (DuckDB writes a committed batch's row groups and its WAL
  once, at the end), and memory stays flat: DuckDB spills uncommitted rows to the database
  file, as long as no Arrow batch is kept registered until the commit (each reaches DuckDB
  by a replacement scan, `_over`, which lets it go when the statement ends), and its cache of
  what it wrote is capped while a file is ingested (INGEST_MEMORY_LIMIT). When readers are
  waiting, the ingest commits what it has (still 'loading', so invisible), lets them in and
  goes on in a new transaction (sharing.hand_over). An ingest that fails rolls back and removes
  what it committed; rows left by a killed process are removed the next time the store is
  opened for writing.
- a local file is known by what it holds (ledger.py): a fingerprint of its first decompressed
  bytes and a checkpoint of how far it was read, so a rotated or compressed copy of ingested
  content adds nothing, and an appended file adds only its new complete lines; the same bytes
  twice change nothing. An object in cloud storage is known by its identity (storage.py).
- several processes share the store (sharing.py): opening it waits while another holds it.

Each batch is conformed by one SQL statement (asim.conform_sql, the vendor's mapping included,
only the stored columns computed) and its rows are routed as Arrow, never row by row in Python:
the valid ones into `sessions`, the rejected ones into `quarantine`, and the batch's 20-minute
counts into the file's running summary, which is committed with the file (no second pass over
the file's sessions). Both cores work on a file, in three stages a batch apart, each in a
thread of its own (base.read_ahead): reading and parsing, the conform statement (on that
thread's compute engine, `_conformed_rows`), and the inserts; a new plain file is hashed and
measured for the ledger in another thread meanwhile (ledger.plan(alongside=...)). A batch
whose statement reads the file itself (a local Parquet file, through DuckDB's reader) skips
the Arrow round trip: it runs on the store's connection, straight into the tables
(`_append_scanned`), with DuckDB's threads on the file's row groups.

Store what is used. The sessions table keeps STORED_COLUMNS: the rule's and the summaries' keys
(time, port, protocol, direction, action, application), the talkers alerts name (source,
destination, reporting device) and cheap columns that identify a session (count, source port,
vendor, product). Measured on 1M Zeek sessions, inserting all 57 ASIM columns cost about 4x
inserting these (high-cardinality text such as UIDs, MACs and AdditionalFields dominates), and
nothing that reads the store uses the rest. Every other column is re-derived from the file on
demand: `portlens normalize FILE` gives the full ASIM rows (the ledger keeps each file's path
and content hash). A store created by an older version keeps its wider table; new rows leave
the extra columns NULL.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from . import asim, kql, ledger, selection, sharing, storage, summary
from .errors import StoreError
from .sources import Source, SourceError, choose
from .sources.base import RAW_LIMITS, READ_LIMITS, Batch, Pending, parse_file, read_ahead

DEFAULT_DB = "portlens.duckdb"

_SQL_TYPE = {asim.TIMESTAMP: "TIMESTAMPTZ", pa.int32(): "INTEGER", pa.int64(): "BIGINT",
             pa.string(): "VARCHAR"}

# The session columns the store keeps: what the rule and the summaries count by (time, port,
# protocol, direction, action, application), what alerts name as talkers (source, destination,
# reporting device), and cheap identifying columns (count, ports, vendor, product). See the
# module docstring for why the other ASIM columns are not stored.
STORED_COLUMNS = ("TimeGenerated", "EventCount", "EventVendor", "EventProduct", "DvcAction",
                  "NetworkProtocol", "NetworkDirection", "DstPortNumber", "DstAppName",
                  "SrcIpAddr", "SrcPortNumber", "DstIpAddr", "Dvc")

_KEEP = frozenset(STORED_COLUMNS)
_STORED_SQL = ", ".join(f'"{c}"' for c in STORED_COLUMNS)  # (the column list of the statements)

# DuckDB keeps the blocks it writes cached, up to its memory limit (80% of RAM by default), so
# without a cap an ingest's memory grew with its file: 522 MiB for 1M AWS VPC flow-log lines,
# 947 MiB for 9M. With the cache capped while a file is ingested, 9M lines peak at 638 MiB and
# Azure NSG's 1M records (4.5M sessions) at 800 instead of 980 MiB, for about 5% more time
# there (128 MB: 20% more). Queries after the ingest have the default again. The checkpoint
# when a store that was written closes is capped too: on 2M Azure NSG records (9M sessions)
# it took the peak from 900 to 1,590 MiB without, for 4.3 s instead of 5.2 s.
INGEST_MEMORY_LIMIT = "256MB"

# One batch's summary rows, added to the file's running summary (`_file_summary`).
_SUMMARY_OF_BATCH = "SELECT * FROM (" + summary.aggregate_sql("_batch") + ")"

_DDL = [
    "CREATE SEQUENCE IF NOT EXISTS file_ids START 1",
    """CREATE TABLE IF NOT EXISTS files (
        file_id INTEGER PRIMARY KEY, path VARCHAR, sha256 VARCHAR, bytes BIGINT,
        source VARCHAR, ingested_at TIMESTAMPTZ, records BIGINT, sessions BIGINT,
        quarantined BIGINT, skipped BIGINT, state VARCHAR,
        kind VARCHAR DEFAULT 'sessions', summarized BOOLEAN DEFAULT false)""",
    "CREATE TABLE IF NOT EXISTS sessions ("
    + ", ".join(f'"{n}" {_SQL_TYPE[asim.COLUMNS[n]]}' for n in STORED_COLUMNS)
    + ", file_id INTEGER)",
    """CREATE TABLE IF NOT EXISTS quarantine (
        file_id INTEGER, file VARCHAR, line BIGINT, source VARCHAR, reason VARCHAR, raw VARCHAR)""",
    # 20-minute summary rows, per file: late data for an old bin is simply another file's rows,
    # so nothing is double counted or lost, and a file's rows come and go with it.
    "CREATE TABLE IF NOT EXISTS summaries (file_id INTEGER, "
    + ", ".join(f'"{f.name}" {_SQL_TYPE[f.type]}' for f in summary.SCHEMA) + ")",
    "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
    # why a file's skipped records were skipped (JSON {reason: count}; sources that say so)
    "ALTER TABLE files ADD COLUMN IF NOT EXISTS skipped_by VARCHAR",
    # Objects in cloud storage are known by storage.identity (URL, size, stamp), so a second
    # ingest of a bucket prefix reads nothing it has seen; local files go by content hash.
    "ALTER TABLE files ADD COLUMN IF NOT EXISTS object_id VARCHAR",
    # Local files: fingerprint and read checkpoint (ledger.py).
    *(f"ALTER TABLE files ADD COLUMN IF NOT EXISTS {name} {kind}" for name, kind in ledger.COLUMNS.items()),
    # The process loading a file: an ingest that lets readers in mid-file (sharing.hand_over)
    # keeps its unfinished rows from another writer's cleanup while it is alive.
    "ALTER TABLE files ADD COLUMN IF NOT EXISTS loader_pid INTEGER",
    """CREATE VIEW IF NOT EXISTS ingested AS SELECT * FROM sessions
        WHERE file_id IN (SELECT file_id FROM files WHERE state = 'done')""",
]

RETENTION_DEFAULTS = {"raw_days": 30, "summary_days": 400}
MIN_SUMMARY_DAYS = 15  # a 14-day window plus the partial day before it


@dataclass
class IngestResult:
    path: str
    source: str
    sessions: int = 0
    quarantined: int = 0
    skipped: int = 0
    records: int = 0
    duplicate_of: str | None = None  # set when the same content was ingested before
    skipped_by: dict = field(default_factory=dict)  # why records were skipped (when the source says)
    notes: list = field(default_factory=list)  # one-line warnings from the source (e.g. a zone assumed)
    replaced: int = 0  # earlier versions of the same object that this one replaced
    continues: str | None = None  # the file whose lines this one continues (rotated or appended)
    lines: tuple[int, int] | None = None  # the lines read this time (first, last), when line-based
    waiting: bool = False  # a last line without its newline waits for it (tail mode)


class _CannotResume(Exception):
    """A source whose batches carry no line numbers met a file to be read from a checkpoint."""


@dataclass
class Forgotten:
    """What `Store.forget` removed."""
    files: list  # [{file_id, path, source}]
    sessions: int = 0
    summary_rows: int = 0
    quarantined: int = 0


@dataclass
class QuarantineListing:
    """What `Store.quarantined` found: the total, counts by reason (most first) and records
    ({file_id, file, line, source, reason, raw}), up to the limit asked."""
    total: int
    by_reason: dict
    records: list


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with storage.open_input(path) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Store:
    def __init__(self, path: str = DEFAULT_DB, *, read_only: bool = False, wait: float | None = None,
                 notify: Callable[[str], None] | None = None):
        """Open the store; while another process holds it, wait up to `wait` seconds
        (default: sharing.default_wait), telling `notify` (default: stderr) once."""
        self.path, self.read_only = path, read_only
        self._ingested_here: set[int] = set()  # files this object ingested: its ingests' retention spares them
        self._wait, self._notify = wait, notify
        self._handed_over_at = time.monotonic()
        if read_only and not os.path.exists(path):
            raise StoreError(f"{path}: no such store; ingest logs into it first, or open another")
        try:
            self.con = sharing.connect(path, read_only, wait, notify)
        except duckdb.Error as e:
            raise StoreError(f"{path}: cannot open store ({str(e).splitlines()[0]})") from None
        _run(self.con, "SET TimeZone = 'UTC'")
        if not read_only:
            try:
                for statement in _DDL:
                    _run(self.con, statement)
            except duckdb.Error as e:
                raise StoreError(f"{path}: not a portlens store of this version ({str(e).splitlines()[0]})") from None
            self._remove_unfinished()
        else:
            try:
                _run(self.con, "SELECT file_id, kind, summarized FROM files LIMIT 0")
                _run(self.con, "SELECT file_id FROM ingested LIMIT 0")
            except duckdb.Error:
                raise StoreError(f"{path}: not a portlens store of this version") from None

    def _remove_unfinished(self) -> None:
        """Drop what an ingest killed mid-file left behind (its ledger entry is 'loading'),
        not what a live ingest that let readers in will finish (sharing.hand_over)."""
        stale = [r[0] for r in _run(self.con, "SELECT file_id, loader_pid FROM files WHERE state <> 'done'")
                 if not sharing.process_alive(r[1])]
        for file_id in stale:
            self._discard(file_id)
        live = {r[0] for r in _run(self.con, "SELECT file_id FROM files WHERE state <> 'done'")}
        for (table,) in _run(self.con, "SELECT table_name FROM duckdb_tables() WHERE NOT temporary "
                                       "AND starts_with(table_name, '_held_summary_')"):
            if int(table.rsplit("_", 1)[1]) not in live:
                _run(self.con, f'DROP TABLE IF EXISTS "{table}"')

    def _let_readers_in(self, file_id: int) -> duckdb.DuckDBPyConnection:
        """Between two batches of an ingest: when readers are waiting for the store, close it,
        let them in and open it again (at most once a second). The file's running summary,
        a temporary table, is kept in a table of the store meanwhile. Returns the connection."""
        if time.monotonic() - self._handed_over_at < 1.0 or not sharing.readers_waiting(self.path):
            return self.con
        held = f"_held_summary_{int(file_id)}"
        _run(self.con, f"CREATE OR REPLACE TABLE {held} AS SELECT * FROM _file_summary")
        _run(self.con, "COMMIT")  # (the file is still 'loading': readers do not see its rows)
        with sharing.hand_over(self.path):
            self.con.close()
            sharing.wait_for_readers(self.path)
            self.con = sharing.connect(self.path, False, self._wait, self._notify)
        _run(self.con, "SET TimeZone = 'UTC'")
        self._ingest_settings(True)
        _run(self.con, f"CREATE OR REPLACE TEMP TABLE _file_summary AS SELECT * FROM {held}")
        _run(self.con, f"DROP TABLE {held}")
        _run(self.con, "BEGIN TRANSACTION")
        self._handed_over_at = time.monotonic()
        return self.con

    def _ingest_settings(self, ingesting: bool) -> None:
        """While a file is ingested, and for the checkpoint at close: DuckDB's cache at
        INGEST_MEMORY_LIMIT (never for a store in memory, whose data is that memory), and rows
        inserted in any order. Threads that insert rows in their file's order each leave a
        part-filled row group, which the checkpoint at close then rewrites (0.3 s for 1M
        Parquet rows, and a store file twice the size); the order of a table's rows means
        nothing to the store. Otherwise DuckDB's defaults."""
        if self.path != ":memory:":
            _run(self.con, f"SET memory_limit = '{INGEST_MEMORY_LIMIT}'" if ingesting else "RESET memory_limit")
        _run(self.con, "SET preserve_insertion_order = false" if ingesting else "RESET preserve_insertion_order")

    def _discard(self, file_id: int) -> None:
        for table in ("sessions", "quarantine", "files"):
            _run(self.con, f"DELETE FROM {table} WHERE file_id = ?", [file_id])

    def close(self) -> None:
        if not self.read_only:
            self._ingest_settings(True)  # (for the checkpoint of what was written)
        self.con.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- ingest ------------------------------------------------------------------------

    def ingest(self, path: str, source: str = "auto",
               progress: Callable[[int], None] | None = None, *,
               apply_retention: bool = True, tail: bool = False, options: dict | None = None) -> IngestResult:
        """Parse and store one file, all or nothing. A local file is read from where its
        lineage was read to (ledger.py): content already ingested, under any name or
        compressed, is not counted again. tail=True: the file may still be growing, so a last
        line without its newline is left for a later ingest (`run --watch`); else the file is
        taken as complete. options: the source's own (Source.OPTIONS), e.g. aws-vpc's format."""
        if storage.is_url(path):
            known = self._known(path, tail)
            return known if isinstance(known, IngestResult) else \
                self._ingest(path, source, progress, apply_retention, *known, options=options)
        if not os.path.isfile(storage.local_path(path)):
            raise SourceError(f"{path}: no such file")
        # Every read of the file, from measuring to parsing, reads the same file, even if it
        # is rotated meanwhile (its checkpoint must describe what was parsed).
        with storage.pinned(path):
            known = self._known(path, tail)
            if isinstance(known, IngestResult):
                return known
            try:
                return self._ingest(path, source, progress, apply_retention, *known, options=options)
            except _CannotResume:
                # Read the whole file instead; it replaces the entries of the lineage it continues.
                plan = known[3]
                plan.first_line, plan.replace = 1, True
                return self._ingest(path, source, progress, apply_retention, *known, options=options)

    def _ingest(self, path: str, source: str, progress, apply_retention: bool,
                digest: str | None, object_id: str | None, size: int,
                plan: ledger.Plan | None, options: dict | None = None) -> IngestResult:
        parser: Source = choose(path, source, options)
        result = IngestResult(path, parser.name)
        con = self.con
        file_id = _one(con, "SELECT nextval('file_ids')")[0]
        _run(con, "INSERT INTO files (file_id, path, sha256, bytes, source, state, object_id) "
                  "VALUES (?, ?, ?, ?, ?, 'loading', ?)",
             [file_id, storage.canonical(path), digest, size, parser.name, object_id])
        _run(con, "UPDATE files SET loader_pid = ? WHERE file_id = ?", [os.getpid(), file_id])
        lines = None  # the line numbers to keep, when reading from a checkpoint
        limits = None
        raw_limits = None
        if plan is not None and plan.measuring is not None:
            # (measured alongside: both passes read the bytes the file holds now)
            raw_limits = RAW_LIMITS.set({**RAW_LIMITS.get(), path: size})
        elif plan is not None:
            self._checkpoint(file_id, plan)
            reading = plan.reading
            if reading.line_based and not reading.cut:  # (a cut is read to its end, and reported)
                limits = READ_LIMITS.set({**READ_LIMITS.get(), path: reading.end_bytes})
                if plan.skip_lines:
                    lines = (plan.skip_lines, reading.end_lines)
                result.lines = (plan.first_line, reading.end_lines)
            result.continues = plan.continues_path if not plan.replace else None
            result.waiting = reading.partial
        _run(con, "CREATE OR REPLACE TEMP TABLE _file_summary ("
                  + ", ".join(f'"{f.name}" {_SQL_TYPE[f.type]}' for f in summary.SCHEMA) + ")")
        # Three stages, each in a thread of its own, one batch apart: reading and mapping,
        # the conform statement (on its thread's compute engine), and the inserts here. Which
        # stage is the slowest depends on the source (AWS VPC flow logs: the statement and the
        # inserts; FortiGate: the mapping), so no stage waits for another's work.
        batches = read_ahead(_conformed_rows(read_ahead(parse_file(parser, path)), lines))
        try:
            self._ingest_settings(True)
            _run(con, "BEGIN TRANSACTION")
            for batch in batches:
                if isinstance(batch, _Rows) or batch.pending is not None:
                    if isinstance(batch, _Rows):
                        rows, quarantined, skipped = self._append_rows(batch, file_id)
                        batch = batch.batch
                    else:
                        rows, quarantined, skipped = self._append_scanned(batch.pending, lines, file_id)
                    batch.counted_skipped(skipped)
                    records = rows + quarantined + skipped  # the statement yields one row per record
                else:
                    if lines is not None:
                        _keep_lines(batch, lines, path)
                    rows, quarantined, skipped = batch.table.num_rows, batch.quarantine.num_rows, batch.skipped
                    records = batch.records if lines is None else rows + quarantined + skipped
                    if rows:
                        self._append_sessions(batch.table, file_id)
                    if quarantined:
                        _over(con, batch.quarantine, f"INSERT INTO quarantine SELECT {int(file_id)}, * FROM _batch")
                result.sessions += rows
                result.quarantined += quarantined
                result.skipped += skipped
                result.records += records
                result.notes.extend(batch.notes)
                for reason, n in batch.skipped_by.items():
                    result.skipped_by[reason] = result.skipped_by.get(reason, 0) + n
                if progress:
                    progress(records)
                con = self._let_readers_in(file_id)
            if plan is not None and plan.measuring is not None:
                self._measured_alongside(file_id, plan, result)
            # The file's summaries (added up from its batches) and its visibility flip with its rows.
            _run(con, f"INSERT INTO summaries SELECT {file_id}, * FROM ({_summed('_file_summary')})")
            if object_id is not None:
                result.replaced = self._replace_versions(storage.canonical(path), file_id)
            elif plan is not None and plan.replace and plan.continues is not None:
                result.replaced = self._replace_lineage(plan.continues)
            _run(con, "UPDATE files SET state = 'done', summarized = true, ingested_at = ?, records = ?, "
                      "sessions = ?, quarantined = ?, skipped = ?, skipped_by = ? WHERE file_id = ?",
                 [datetime.now(timezone.utc), result.records, result.sessions,
                  result.quarantined, result.skipped, json.dumps(result.skipped_by) if result.skipped_by else None,
                  file_id])
            _run(con, "COMMIT")
        except BaseException:
            _roll_back(self.con)
            self._discard(file_id)  # (what was committed to let readers in)
            raise
        finally:
            batches.close()  # (stops the reading thread now if the file failed)
            _run(self.con, "DROP TABLE IF EXISTS _file_summary")
            self._ingest_settings(False)
            if limits is not None:
                READ_LIMITS.reset(limits)
            if raw_limits is not None:
                RAW_LIMITS.reset(raw_limits)
        self._ingested_here.add(file_id)
        if apply_retention:
            self.apply_retention()
        return result

    def apply_retention(self) -> dict:
        """The retention an ingest applies: prune, sparing the files this object ingested.
        `portlens ingest` runs it once, after its last file."""
        return self.prune(spare=self._ingested_here)

    def _append_rows(self, done: "_Rows", file_id: int) -> tuple[int, int, int]:
        """Route a conformed batch (`_conformed_rows`) into sessions, quarantine and the file's
        running summary without a round trip through Python. Returns (rows, quarantined,
        skipped)."""
        batch, pending = done.rows, done.batch.pending
        quarantined = batch.num_rows - batch["_reason"].null_count
        skipped = int(pc.sum(batch["_skip"]).as_py() or 0)  # (a skipped record has no reason)
        rows = batch.num_rows - quarantined - skipped
        if rows:
            _over(self.con, batch, f"INSERT INTO sessions ({_STORED_SQL}, file_id) SELECT {_STORED_SQL}, {int(file_id)} "
                                   "FROM _batch WHERE _reason IS NULL AND NOT _skip")
            _over(self.con, batch, "INSERT INTO _file_summary " + summary.aggregate_sql(
                "(SELECT * FROM _batch WHERE _reason IS NULL AND NOT _skip)"))
        if quarantined:
            _over(self.con, batch, f"INSERT INTO quarantine SELECT {int(file_id)}, {_quote(pending.path)}, "
                                   f"_line, {_quote(pending.source)}, _reason, _raw FROM _batch "
                                   "WHERE _reason IS NOT NULL")
        return rows, quarantined, skipped

    def _append_scanned(self, pending: Pending, lines: tuple[int, int] | None,
                        file_id: int) -> tuple[int, int, int]:
        """Route a batch whose statement reads the file itself (pending.reads_files: DuckDB's
        Parquet reader) on the store's own connection: the rows go from the file into the
        tables with all of DuckDB's threads, never through Arrow. The statement runs once per
        destination; the passes after the first read only the few columns they need. Returns
        (rows, quarantined, skipped)."""
        conformed = f"({_conformed_sql(pending, lines)})"
        with pending.reading():
            rows = _one(self.con, f"INSERT INTO sessions ({_STORED_SQL}, file_id) SELECT {_STORED_SQL}, "
                                  f"{int(file_id)} FROM {conformed} WHERE _reason IS NULL AND NOT _skip")[0]
            if rows:
                _run(self.con, "INSERT INTO _file_summary " + summary.aggregate_sql(
                    f"(SELECT * FROM {conformed} WHERE _reason IS NULL AND NOT _skip)"))
            quarantined = _one(self.con, f"INSERT INTO quarantine SELECT {int(file_id)}, {_quote(pending.path)}, "
                                         f"_line, {_quote(pending.source)}, _reason, _raw FROM {conformed} "
                                         "WHERE _reason IS NOT NULL")[0]
            skipped = _one(self.con, f"SELECT count(*) FROM {conformed} WHERE _skip")[0]
        return rows, quarantined, skipped

    def _append_sessions(self, table: pa.Table, file_id: int) -> None:
        """Append a batch of ASIM rows (the stored columns) and add its 20-minute counts to
        the file's running summary."""
        names = set(table.column_names)
        values = ", ".join(f'"{c}"' if c in names else "NULL" for c in STORED_COLUMNS)
        _over(self.con, table, f"INSERT INTO sessions ({_STORED_SQL}, file_id) SELECT {values}, {int(file_id)} FROM _batch")
        _over(self.con, table, f"INSERT INTO _file_summary {_SUMMARY_OF_BATCH}")

    def ingest_table(self, table: pa.Table, name: str = "<table>") -> IngestResult:
        """Store an in-memory Arrow table of ASIM rows like one file, all or nothing: values
        are conformed as the native ASIM source's are (vocabulary values kept verbatim, as KQL
        counts them), and a row that breaks the schema is quarantined with its row number
        (1-based) as its line."""
        conformed = asim.conform(table, strict_vocabulary=False)
        quarantine = asim.quarantine_rows(
            name, "table", pc.add(conformed.rejected_index, 1), conformed.rejected_reason,
            pa.nulls(len(conformed.rejected_index), pa.string()))
        result = IngestResult(name, "table", sessions=conformed.table.num_rows,
                              quarantined=quarantine.num_rows, records=table.num_rows)
        con = self.con
        _run(con, "BEGIN TRANSACTION")
        try:
            file_id = _one(con, "SELECT nextval('file_ids')")[0]
            _run(con, "INSERT INTO files (file_id, path, bytes, source, state) VALUES (?, ?, ?, 'table', 'loading')",
                 [file_id, name, table.nbytes])
            if conformed.table.num_rows:
                _over(con, conformed.table, f"INSERT INTO sessions ({_STORED_SQL}, file_id) "
                                            f"SELECT {_STORED_SQL}, {int(file_id)} FROM _batch")
            if quarantine.num_rows:
                _over(con, quarantine, f"INSERT INTO quarantine SELECT {int(file_id)}, * FROM _batch")
            self._summarize_file(file_id)
            _run(con, "UPDATE files SET state = 'done', summarized = true, ingested_at = ?, records = ?, "
                      "sessions = ?, quarantined = ?, skipped = 0 WHERE file_id = ?",
                 [datetime.now(timezone.utc), result.records, result.sessions, result.quarantined, file_id])
            _run(con, "COMMIT")
        except BaseException:
            _run(con, "ROLLBACK")
            raise
        return result

    def _replace_versions(self, path: str, file_id: int) -> int:
        """An object that changed in place replaces its earlier version (Azure appends to an
        hour's PT1H.json blob all hour; a rewritten object is the new truth): the earlier
        version's rows go in the same transaction as the new version's appear."""
        old = [r[0] for r in _run(self.con, "SELECT file_id FROM files WHERE path = ? AND file_id <> ? "
                                            "AND object_id IS NOT NULL AND state = 'done'", [path, file_id])]
        for stale in old:
            for table in ("sessions", "quarantine", "summaries", "files"):
                _run(self.con, f"DELETE FROM {table} WHERE file_id = ?", [stale])
        return len(old)

    def _known(self, path: str, tail: bool = False
               ) -> IngestResult | tuple[str | None, str | None, int, ledger.Plan | None]:
        """A file with nothing new for the ledger -> its IngestResult (duplicate_of set, or
        waiting); else the file's (content hash, object identity, size, read plan). An object
        in cloud storage is looked up by its identity before a byte of it is read; a local
        file by its content hash, then by its fingerprint and checkpoints (ledger.plan)."""
        if storage.is_url(path):
            info = storage.stat(path)
            seen = _one(self.con, "SELECT path, source FROM files WHERE object_id = ? AND state = 'done'",
                        [info.identity])
            if seen:
                return IngestResult(path, seen[1], duplicate_of=seen[0])
            return None, info.identity, info.size, None
        if not os.path.isfile(storage.local_path(path)):
            raise SourceError(f"{path}: no such file")
        pinned = storage.PINNED.get().get(str(path))
        size = os.fstat(pinned).st_size if pinned is not None else os.path.getsize(storage.local_path(path))
        # The same bytes as a file read whole (an archive ingested again): nothing to read.
        digest = None if not ledger.compressed(path) else file_sha256(path)
        if digest is not None and (seen := self._same_bytes(digest)):
            return IngestResult(path, seen[1], duplicate_of=seen[0])
        # A file read whole is measured while it is parsed when it continues nothing; its
        # size now bounds both passes (_ingest sets the limit).
        alongside = not tail and ledger.alongside_possible(self.con, _run, path)
        plan = ledger.plan(self.con, path, tail, _run, alongside=size if alongside else None)
        if plan.measuring is not None:
            return digest, None, size, plan
        reading = plan.reading
        digest = digest or reading.raw_sha256
        if reading.end_bytes < reading.total_bytes:
            digest = None  # (a content hash stands for content read whole)
        elif (seen := self._same_bytes(digest)):  # (entries written before checkpoints were kept)
            return IngestResult(path, seen[1], duplicate_of=seen[0])
        if reading.cut and tail:  # a compressed file still being written: wait for all of it
            return IngestResult(path, "-", waiting=True)
        if plan.nothing_new:
            source = _one(self.con, "SELECT source FROM files WHERE file_id = ?", [plan.continues])[0]
            return IngestResult(path, source, duplicate_of=plan.continues_path, waiting=reading.partial)
        if reading.end_bytes == 0 and reading.partial:
            return IngestResult(path, "-", waiting=True)  # not one complete line yet
        return digest, None, size, plan

    def _measured_alongside(self, file_id: int, plan: ledger.Plan, result: IngestResult) -> None:
        """The checkpoint and content hash of a file measured while it was parsed."""
        reading = plan.measured()
        if reading.line_based and not reading.cut:
            result.lines = (1, reading.end_lines)
        self._checkpoint(file_id, plan)
        if reading.raw_sha256 is not None:  # (a compressed file's was taken before: file_sha256)
            _run(self.con, "UPDATE files SET sha256 = ? WHERE file_id = ?", [reading.raw_sha256, file_id])

    def _same_bytes(self, digest: str | None):
        if digest is None:
            return None
        return _one(self.con, "SELECT path, source FROM files WHERE sha256 = ? AND state = 'done'", [digest])

    def _checkpoint(self, file_id: int, plan: ledger.Plan) -> None:
        """Record the fingerprint and checkpoint a file's entry will have once it is done."""
        r = plan.reading
        _run(self.con, "UPDATE files SET fingerprint = ?, fingerprint_bytes = ?, read_bytes = ?, read_lines = ?, "
                       "prefix_sha256 = ?, first_line = ?, continues = ? WHERE file_id = ?",
             [plan.fingerprint, plan.fingerprint_bytes, r.end_bytes, r.end_lines, r.prefix_sha256,
              plan.first_line, None if plan.replace else plan.continues, file_id])

    def _replace_lineage(self, file_id: int) -> int:
        """Remove the entries of a lineage, from `file_id` back to its first file (a file
        that continues it was read whole instead, see _CannotResume)."""
        chain = [r[0] for r in _run(self.con, "WITH RECURSIVE chain(id) AS (SELECT ?::INTEGER UNION "
                                              "SELECT f.continues FROM files f JOIN chain ON f.file_id = chain.id "
                                              "WHERE f.continues IS NOT NULL) SELECT id FROM chain", [file_id])]
        for stale in chain:
            for table in ("sessions", "quarantine", "summaries", "files"):
                _run(self.con, f"DELETE FROM {table} WHERE file_id = ?", [stale])
        return len(chain)

    def _summarize_file(self, file_id: int, since: datetime | None = None) -> None:
        """(Re)build one file's summary rows from its raw sessions (from `since` on)."""
        cut = "" if since is None else f" AND {summary.bin_sql()} >= ?::TIMESTAMPTZ"
        params = [file_id] if since is None else [file_id, since]
        _run(self.con, "DELETE FROM summaries WHERE file_id = ?"
                       + ("" if since is None else " AND EventTime >= ?::TIMESTAMPTZ"), params)
        _run(self.con, f"INSERT INTO summaries SELECT {file_id}, * FROM ("
                       + summary.aggregate_sql(f"(SELECT * FROM sessions WHERE file_id = ?{cut})") + ")",
             params)

    def import_summaries(self, path: str) -> IngestResult:
        """Load summary rows exported from Sentinel (NetworkSummary_Protocol_CL or
        NetworkCustomAnalytics_protocol_CL, CSV or JSON) or written by portlens/Spark (Parquet)."""
        known = self._known(path)
        if isinstance(known, IngestResult):
            known.source = "summaries"
            return known
        digest, object_id, size, _ = known
        rows = summary.read(path)
        con = self.con
        _run(con, "BEGIN TRANSACTION")
        try:
            file_id = _one(con, "SELECT nextval('file_ids')")[0]
            _over(con, rows, f"INSERT INTO summaries SELECT {int(file_id)}, * FROM _batch")
            total = int(pc.sum(rows["count_"]).as_py() or 0)
            # kind: 'summaries' (NetworkSummary_Protocol_CL, portlens/Spark Parquet) or
            # 'legacy-summaries' (NetworkCustomAnalytics_protocol_CL): the rule gates them apart.
            kind = "legacy-summaries" if summary.table_name(rows) == summary.LEGACY_TABLE else "summaries"
            _run(con, "INSERT INTO files (file_id, path, sha256, bytes, source, ingested_at, records, "
                      "sessions, quarantined, skipped, state, kind, summarized, object_id) "
                      "VALUES (?, ?, ?, ?, 'summaries', ?, ?, ?, 0, 0, 'done', ?, true, ?)",
                 [file_id, storage.canonical(path), digest, size,
                  datetime.now(timezone.utc), rows.num_rows, total, kind, object_id])
            _run(con, "COMMIT")
        except BaseException:
            _run(con, "ROLLBACK")
            raise
        self._ingested_here.add(file_id)
        return IngestResult(path, "summaries", sessions=total, records=rows.num_rows)

    def summarize(self) -> int:
        """Rebuild the summaries of every ingested file from its raw sessions (the part of it
        still retained; summaries of pruned days are kept). Returns summary rows written."""
        kept_from = self._meta("raw_kept_from")
        since = datetime.fromisoformat(kept_from) if kept_from else None
        files = [r[0] for r in _run(self.con, "SELECT file_id FROM files WHERE state = 'done' "
                                              "AND kind = 'sessions' ORDER BY file_id")]
        _run(self.con, "BEGIN TRANSACTION")
        try:
            for file_id in files:
                self._summarize_file(file_id, since)
            _run(self.con, "UPDATE files SET summarized = true WHERE kind = 'sessions'")
            _run(self.con, "COMMIT")
        except BaseException:
            _run(self.con, "ROLLBACK")
            raise
        return _one(self.con, "SELECT count(*) FROM summaries WHERE file_id IN "
                              "(SELECT file_id FROM files WHERE kind = 'sessions')")[0]

    def export_summaries(self, path: str) -> int:
        """Write the store's NetworkSummary_Protocol_CL rows (Parquet for *.parquet, else CSV)
        exactly as detect counts them: summed over files, each 20-minute bin from one side
        where imported summaries overlap local ones. Imported legacy
        NetworkCustomAnalytics_protocol_CL rows are a different table for the rule (counted
        only without recent summaries) and are not written. Returns rows written."""
        rows = self.query("SELECT * FROM (" + _summed(f"({selection.summary_rows(self.relations())})")
                          + ") ORDER BY EventTime")
        summary.write(rows, path)
        return rows.num_rows

    # ---- repair ------------------------------------------------------------------------

    def forget(self, path: str | None = None, file_id: int | None = None) -> "Forgotten":
        """Remove a file from the store as if it had never been ingested: its sessions,
        quarantined records, summaries and ledger entry (every table keyed by file_id), in one
        transaction. The file can then be ingested again (with the right source, say). `path`
        matches the ledger's path, or, for a local file, its content."""
        con = self.con
        if (path is None) == (file_id is None):
            raise StoreError("forget: name a file or a file id (one of them)")
        if file_id is not None:
            rows = _run(con, "SELECT file_id, path, source, state FROM files WHERE file_id = ?", [file_id])
            what = f"file id {file_id}"
        else:
            rows = _run(con, "SELECT file_id, path, source, state FROM files WHERE path IN (?, ?) "
                             "ORDER BY file_id", [path, storage.canonical(path)])
            if not rows and not storage.is_url(path) and os.path.isfile(path):
                rows = _run(con, "SELECT file_id, path, source, state FROM files WHERE sha256 = ? "
                                 "ORDER BY file_id", [file_sha256(path)])
            what = path
        if not rows:
            raise StoreError(f"{what}: not in this store's ledger")
        # Entries that continue these (an appended or rotated copy read from their checkpoint,
        # ledger.py) go too: they vouch for lines that would no longer be in the store.
        later = [i for i in ledger.later_entries(con, _run, [int(r[0]) for r in rows])
                 if i not in {int(r[0]) for r in rows}]
        if later:
            rows += _run(con, f"SELECT file_id, path, source, state FROM files WHERE file_id IN "
                              f"({', '.join('?' for _ in later)}) ORDER BY file_id", later)
        if any(state != "done" for *_, state in rows):
            raise StoreError(f"{what}: being ingested right now; forget it once that ingest ends")
        ids = [int(r[0]) for r in rows]
        marks = ", ".join("?" for _ in ids)
        # Every table with a file_id column: sessions, quarantine, summaries, files and any
        # per-file bookkeeping added later.
        tables = [r[0] for r in _run(con, "SELECT table_name FROM duckdb_columns() WHERE column_name = 'file_id' "
                                          "AND database_name = current_database() AND schema_name = 'main' "
                                          "AND table_name IN (SELECT table_name FROM duckdb_tables() "
                                          "WHERE database_name = current_database() AND NOT temporary)")]
        counted = {"sessions": 0, "summaries": 0, "quarantine": 0}
        _run(con, "BEGIN TRANSACTION")
        try:
            for table in counted:
                counted[table] = _one(con, f"SELECT count(*) FROM {table} WHERE file_id IN ({marks})", ids)[0]
            for table in sorted(tables, key=lambda t: t == "files"):  # the ledger entry last
                _run(con, f'DELETE FROM "{table}" WHERE file_id IN ({marks})', ids)
            _run(con, "COMMIT")
        except BaseException:
            _run(con, "ROLLBACK")
            raise
        return Forgotten([{"file_id": i, "path": p, "source": src} for i, p, src, _ in rows],
                         sessions=counted["sessions"], summary_rows=counted["summaries"],
                         quarantined=counted["quarantine"])

    def quarantined(self, file: str | None = None, reason: str | None = None,
                    limit: int | None = 50) -> "QuarantineListing":
        """What ingests quarantined, newest files' records last: counts by reason, and up to
        `limit` records (file, line, source, reason, raw text; None: all). `file` matches the
        path as given to ingest or the ledger's path; `reason` is a case-insensitive part of
        the reason."""
        where, params = ["q.file_id IN (SELECT file_id FROM files WHERE state = 'done')"], []
        if file is not None:
            where.append("(q.file = ? OR q.file_id IN (SELECT file_id FROM files WHERE path IN (?, ?)))")
            params += [file, file, storage.canonical(file)]
        if reason is not None:
            where.append("contains(lower(q.reason), lower(?))")
            params.append(reason)
        cond = " AND ".join(where)
        by_reason = _run(self.con, f"SELECT q.reason, count(*) FROM quarantine q WHERE {cond} "
                                   "GROUP BY ALL ORDER BY 2 DESC, 1", params)
        page = "" if limit is None else f" LIMIT {int(limit)}"
        records = _run(self.con, f"SELECT q.file_id, q.file, q.line, q.source, q.reason, q.raw FROM quarantine q "
                                 f"WHERE {cond} ORDER BY q.file_id, q.line{page}", params)
        return QuarantineListing(
            total=sum(int(n) for _, n in by_reason),
            by_reason={r or "-": int(n) for r, n in by_reason},
            records=[dict(zip(("file_id", "file", "line", "source", "reason", "raw"), r)) for r in records])

    # ---- retention ---------------------------------------------------------------------

    def retention(self) -> dict:
        return {k: int(self._meta(k) or v) for k, v in RETENTION_DEFAULTS.items()}

    def set_retention(self, raw_days: int | None = None, summary_days: int | None = None) -> dict:
        current = self.retention()
        new = {"raw_days": raw_days if raw_days is not None else current["raw_days"],
               "summary_days": summary_days if summary_days is not None else current["summary_days"]}
        if new["summary_days"] < MIN_SUMMARY_DAYS:
            raise StoreError(f"summary retention of {new['summary_days']} days: summaries must cover at least "
                             f"{MIN_SUMMARY_DAYS} days, or a 14-day detect loses its baseline")
        if new["raw_days"] < 1:
            raise StoreError(f"raw retention of {new['raw_days']} days: keep at least 1 day of raw sessions")
        for k, v in new.items():
            self._set_meta(k, str(v))
        return new

    def prune(self, spare: set[int] | frozenset[int] = frozenset()) -> dict:
        """Apply retention relative to the newest data (logs are often replayed, so not the
        wall clock; robust to a few outlying records, see newest_time). Raw sessions go only
        where their summaries exist; summaries older than their retention go. Cut-offs fall on
        20-minute bin starts so tiers stay exact. Files in `spare` keep their rows: the
        retention an ingest applies spares the files it just ingested (a backfill of old logs
        keeps them until a later prune)."""
        newest = self.newest_time(any_tier=True)
        if newest is None:
            return {"raw_deleted": 0, "summaries_deleted": 0}
        keep = self.retention()
        raw_cut = _bin_floor(newest - timedelta(days=keep["raw_days"]))
        sum_cut = _bin_floor(newest - timedelta(days=keep["summary_days"]))
        fresh = ",".join(str(int(f)) for f in sorted(spare))
        prunable = f"file_id NOT IN ({fresh})" if fresh else "true"
        con = self.con
        _run(con, "BEGIN TRANSACTION")
        try:
            raw_where = (f"TimeGenerated < ? AND {prunable} AND file_id IN "
                         "(SELECT file_id FROM files WHERE summarized)")
            raw = _one(con, f"SELECT count(*) FROM sessions WHERE {raw_where}", [raw_cut])[0]
            if raw:
                _run(con, f"DELETE FROM sessions WHERE {raw_where}", [raw_cut])
                kept_from = self._meta("raw_kept_from")
                if not kept_from or datetime.fromisoformat(kept_from) < raw_cut:
                    self._set_meta("raw_kept_from", raw_cut.isoformat())
            old = _one(con, f"SELECT count(*) FROM summaries WHERE EventTime < ? AND {prunable}", [sum_cut])[0]
            if old:
                _run(con, f"DELETE FROM summaries WHERE EventTime < ? AND {prunable}", [sum_cut])
            _run(con, "COMMIT")
        except BaseException:
            _run(con, "ROLLBACK")
            raise
        return {"raw_deleted": raw, "summaries_deleted": old, "raw_before": raw_cut.isoformat(),
                "summaries_before": sum_cut.isoformat()}

    def _meta(self, key: str) -> str | None:
        row = _one(self.con, "SELECT value FROM meta WHERE key = ?", [key])
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        _run(self.con, "INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])

    # ---- reading -----------------------------------------------------------------------

    def query(self, text: str, params: list | None = None, **tables: pa.Table) -> pa.Table:
        """Run SQL on the store; `tables` are Arrow tables visible by name for this query."""
        for name, table in tables.items():
            self.con.register(name, table)
        try:
            return self.con.sql(text, params=params or None).to_arrow_table()
        finally:
            for name in tables:
                self.con.unregister(name)

    def relations(self) -> selection.Relations:
        """The store as the rule's data selection reads it (see selection.py): summary rows
        tagged by origin, and the retained raw sessions."""
        origin = ("CASE f.kind WHEN 'sessions' THEN 'summary' WHEN 'legacy-summaries' THEN 'legacy' "
                  "ELSE 'imported' END")
        return selection.Relations(
            self.con, f"SELECT s.*, {origin} AS origin FROM summaries s JOIN files f USING (file_id) "
                      "WHERE f.state = 'done'", "SELECT * FROM ingested")

    def window_counts(self, first_as_of: datetime, windows: int, keys: tuple[str, ...],
                      tier: str = "auto") -> selection.Selected:
        """The counts the rule reads as of first_as_of and each of the next windows-1 days
        (selection.select: the KQL's allData union by default)."""
        return selection.select(self.relations(), first_as_of, windows, keys, tier)

    def daily_counts(self, start: datetime, days: int, keys: tuple[str, ...],
                     tier: str = "auto") -> pa.Table:
        """Session counts per key and per daily bin of the window [start, start + days), as
        the rule run at start + days reads them (selection.py). Rows without a destination
        port are left out (isnotempty(DstPortNumber)). Columns: keys..., bin, tier, n; tier
        is 'summary' (ingested files), 'imported', 'legacy' or 'raw'."""
        return selection.one_window(selection.select(self.relations(), start + timedelta(days=days),
                                                     1, keys, tier, days))

    def bin_counts(self, start: datetime, end: datetime, keys: tuple[str, ...],
                   per_bin: bool = False) -> tuple[pa.Table, str]:
        """Session counts per key in [start, end) (and per 10-minute bin with per_bin), from
        raw sessions; when none are retained there, from the 20-minute summaries that start
        in the range. Returns the counts and which tier they came from."""
        cols = ", ".join(f'"{k}"' for k in keys)
        raw_bin = "time_bucket(INTERVAL 10 MINUTE, TimeGenerated, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bin_start, " if per_bin else ""
        raw = self.query(
            f"SELECT {cols}, {raw_bin}count(*)::BIGINT AS n FROM ingested WHERE TimeGenerated >= ? "
            f"AND TimeGenerated < ? AND DstPortNumber IS NOT NULL GROUP BY ALL", [start, end])
        if raw.num_rows:
            return raw, "raw sessions (10-minute bins)"
        sum_bin = "EventTime AS bin_start, " if per_bin else ""
        summed = self.query(
            f"SELECT {cols}, {sum_bin}sum(count_)::BIGINT AS n FROM summaries WHERE file_id IN "
            f"(SELECT file_id FROM files WHERE state = 'done') AND EventTime >= ? AND EventTime < ? "
            f"AND DstPortNumber IS NOT NULL GROUP BY ALL",
            [start - timedelta(minutes=summary.BIN_MINUTES) + timedelta(microseconds=1), end])
        return summed, "summaries (20-minute bins)"

    def newest_time(self, any_tier: bool = True) -> datetime | None:
        """The newest data, robust to a few outlying records (summary.newest_sql): the end of
        the newest summary bin, or the newest raw session of files without summaries.
        With any_tier=False, raw sessions only."""
        done = "SELECT file_id FROM files WHERE state = 'done'"
        raw = f"SELECT TimeGenerated AS t, 1 AS n FROM sessions WHERE file_id IN ({done}"
        if not any_tier:
            times = raw + ")"
        else:
            times = (f"SELECT {summary.bin_end_sql()} AS t, count_ AS n FROM summaries WHERE file_id IN ({done}) "
                     f"UNION ALL {raw} AND kind = 'sessions' AND NOT summarized)")
        return _one(self.con, summary.newest_sql(f"({times})"))[0]

    def status(self) -> dict:
        sessions, first, last = _one(
            self.con, "SELECT count(*), min(TimeGenerated), max(TimeGenerated) FROM ingested")
        files, = _one(self.con, "SELECT count(*) FROM files WHERE state = 'done'")
        quarantined, = _one(self.con, "SELECT count(*) FROM quarantine WHERE file_id IN "
                                        "(SELECT file_id FROM files WHERE state = 'done')")
        by_source = dict(_run(
            self.con, "SELECT source, sum(sessions) FROM files WHERE state = 'done' GROUP BY source ORDER BY source"))
        by_vendor = _run(self.con, "SELECT concat_ws(' ', EventVendor, EventProduct), count(*) FROM ingested "
                                   "GROUP BY ALL ORDER BY 2 DESC, 1")
        skipped_by: dict[str, int] = {}
        try:
            for (text,) in _run(self.con, "SELECT skipped_by FROM files WHERE state = 'done' AND skipped_by IS NOT NULL"):
                for reason, n in json.loads(text).items():
                    skipped_by[reason] = skipped_by.get(reason, 0) + int(n)
        except (duckdb.Error, ValueError, AttributeError):  # a store written before skip reasons were kept
            pass
        return {
            "sessions_by_vendor": {k or "-": int(v) for k, v in by_vendor},
            "skipped_by": dict(sorted(skipped_by.items(), key=lambda kv: -kv[1])),
            "db": self.path, "sessions": sessions, "files": files, "quarantined": quarantined,
            "first": first.isoformat() if first else None,
            "last": last.isoformat() if last else None,
            "sessions_by_source": {k: int(v) for k, v in by_source.items()},
            "schema_warnings": self.schema_warnings(),
        }

    def schema_warnings(self, examples: int = 5) -> list[dict]:
        """Values of the rule's key columns outside ASIM's vocabulary (kept verbatim from
        files that are already ASIM, and from imported summaries; the rule counts each as a
        series of its own): per column, the sessions concerned and the commonest values with
        their count and one file that holds them. Read from the summaries (every counted
        session is in one), so it stays cheap on a large store."""
        vocab = {"NetworkProtocol": asim.PROTOCOLS, "NetworkDirection": asim.NETWORK_DIRECTIONS,
                 "DvcAction": asim.DVC_ACTIONS}
        parts = " UNION ALL ".join(
            f"SELECT '{c}' AS col, s.\"{c}\" AS value, s.count_ AS n, f.path FROM summaries s "
            f"JOIN files f USING (file_id) WHERE f.state = 'done' AND s.\"{c}\" IS NOT NULL AND s.\"{c}\" "
            f"NOT IN ({', '.join(_quote(v) for v in values)})" for c, values in vocab.items())
        rows = _run(self.con, f"SELECT col, value, sum(n)::BIGINT AS n, min(path) FROM ({parts}) "
                              "GROUP BY col, value ORDER BY col, n DESC, value")
        out: dict[str, dict] = {}
        for col, value, n, path in rows:
            entry = out.setdefault(col, {"column": col, "sessions": 0, "values": 0, "examples": []})
            entry["sessions"] += n
            entry["values"] += 1
            if len(entry["examples"]) < examples:
                entry["examples"].append({"value": value, "sessions": n, "file": path})
        return list(out.values())


@dataclass
class _Rows:
    """A pending batch, conformed: its stored columns, `_skip`, `_reason`, `_line` and (for
    the records that go to quarantine) `_raw`, as Arrow."""
    batch: Batch
    rows: pa.Table


def _conformed_rows(batches: Iterator, lines: tuple[int, int] | None) -> Iterator:
    """Each pending batch conformed by one statement on this thread's compute engine, only
    the stored columns computed, as `_Rows`; other batches as they are. `lines` (after,
    through): keep only the records on those lines (a file read from its checkpoint). The
    result is Arrow, not a temp table: DuckDB compresses a table it writes, which measured
    twice the cost, and the rows are read three times then dropped."""
    with closing(batches):  # (stops the reading thread when this stage ends, also on a failure)
        for batch in batches:
            if batch.pending is None or batch.pending.reads_files:
                yield batch  # (one that reads files runs on the store's connection: _append_scanned)
                continue
            yield _Rows(batch, asim.query(_conformed_sql(batch.pending, lines), **batch.pending.inputs()))


def _conformed_sql(pending: Pending, lines: tuple[int, int] | None) -> str:
    """A pending batch's conform statement computing only the stored columns, `_skip`,
    `_reason`, `_line` and `_raw` (the raw text only for the records that go to quarantine);
    `lines` (after, through): only the records on those lines."""
    where = "" if lines is None else f" WHERE _line > {int(lines[0])} AND _line <= {int(lines[1])}"
    return (f"SELECT {_STORED_SQL}, _skip, _reason, _line, CASE WHEN _reason IS NOT NULL THEN _raw END AS _raw "
            f"FROM ({pending.sql(_KEEP)}){where}")


def _keep_lines(batch, lines: tuple[int, int], path: str) -> None:
    """Keep a finished batch's records on `lines` (after, through): its quarantine rows carry
    their line; its sessions and skipped records do not, so a batch with any cannot be read
    from a checkpoint (_CannotResume)."""
    if batch.table.num_rows or batch.skipped:
        raise _CannotResume(path)
    line = batch.quarantine["line"]
    batch.quarantine = batch.quarantine.filter(pc.and_(pc.greater(line, lines[0]), pc.less_equal(line, lines[1])))


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _bin_floor(t: datetime) -> datetime:
    return kql.bin_time(t, timedelta(minutes=summary.BIN_MINUTES))


def _summed(where: str) -> str:
    keys = ", ".join(f'"{k}"' for k in summary.KEYS)
    return f"SELECT {keys}, EventTime, sum(count_)::BIGINT AS count_ FROM {where} GROUP BY ALL"


def _run(con: duckdb.DuckDBPyConnection, text: str, params: list | None = None) -> list:
    """Execute and fetch everything (DuckDB 2 refuses new work while a result is pending)."""
    return con.execute(text, params or []).fetchall()


def _one(con: duckdb.DuckDBPyConnection, text: str, params: list | None = None):
    rows = _run(con, text, params)
    return rows[0] if rows else None


def _over(con: duckdb.DuckDBPyConnection, batch: pa.Table, text: str) -> None:
    """Run `text` with the Arrow table `batch` as `_batch`, which DuckDB finds as a local
    variable of this function (a replacement scan) for this statement only. Not a registration:
    a table registered inside a transaction stays alive until it commits, so a file's batches
    would pile up in memory. (Nor a relation, from_arrow(...).query(...): it plans twice.)"""
    _batch = batch  # noqa: F841  (DuckDB finds it by name: a replacement scan)
    con.execute(text).fetchall()


def _roll_back(con: duckdb.DuckDBPyConnection) -> None:
    """End the open transaction, if there is one (a failure may strike before or after it)."""
    try:
        _run(con, "ROLLBACK")
    except duckdb.TransactionException:
        pass
