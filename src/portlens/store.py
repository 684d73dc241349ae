"""The DuckDB store: normalized sessions, the file ledger, and the quarantine.

Ingest is atomic per file and idempotent:
- a file's rows are appended batch by batch under a ledger entry in state 'loading' and become
  visible only when one short transaction flips it to 'done'; every reader goes through the
  `ingested` view, which shows 'done' files only. An ingest that fails removes its rows, and
  rows left by a killed process are removed the next time the store is opened for writing.
  (One transaction around the whole file would be simpler, but DuckDB keeps uncommitted rows
  in memory, so memory would grow with the file; appending in autocommit keeps it bounded.)
- the ledger keys files by the SHA-256 of their content: the same bytes twice change nothing.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

import duckdb
import pyarrow as pa

from . import asim
from .sources import Source, SourceError, detect, get

DEFAULT_DB = "portlens.duckdb"

_SQL_TYPE = {asim.TIMESTAMP: "TIMESTAMPTZ", pa.int32(): "INTEGER", pa.int64(): "BIGINT",
             pa.string(): "VARCHAR"}

_DDL = [
    "CREATE SEQUENCE IF NOT EXISTS file_ids START 1",
    """CREATE TABLE IF NOT EXISTS files (
        file_id INTEGER PRIMARY KEY, path VARCHAR, sha256 VARCHAR, bytes BIGINT,
        source VARCHAR, ingested_at TIMESTAMPTZ, records BIGINT, sessions BIGINT,
        quarantined BIGINT, skipped BIGINT, state VARCHAR)""",
    "CREATE TABLE IF NOT EXISTS sessions ("
    + ", ".join(f'"{n}" {_SQL_TYPE[t]}' for n, t in asim.COLUMNS.items())
    + ", file_id INTEGER)",
    """CREATE TABLE IF NOT EXISTS quarantine (
        file_id INTEGER, file VARCHAR, line BIGINT, source VARCHAR, reason VARCHAR, raw VARCHAR)""",
    """CREATE VIEW IF NOT EXISTS ingested AS SELECT * FROM sessions
        WHERE file_id IN (SELECT file_id FROM files WHERE state = 'done')""",
]


class StoreError(RuntimeError):
    """The store cannot be opened or used (one line, for the user)."""


@dataclass
class IngestResult:
    path: str
    source: str
    sessions: int = 0
    quarantined: int = 0
    skipped: int = 0
    records: int = 0
    duplicate_of: str | None = None  # set when the same content was ingested before


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Store:
    def __init__(self, path: str = DEFAULT_DB, *, read_only: bool = False):
        self.path = path
        if read_only and not os.path.exists(path):
            raise StoreError(f"{path}: no such store; run 'portlens ingest' first or pass --db")
        try:
            self.con = duckdb.connect(path, read_only=read_only)
        except duckdb.Error as e:
            raise StoreError(f"{path}: cannot open store ({str(e).splitlines()[0]})") from None
        _run(self.con, "SET TimeZone = 'UTC'")
        if not read_only:
            for statement in _DDL:
                _run(self.con, statement)
            self._remove_unfinished()

    def _remove_unfinished(self) -> None:
        """Drop what an ingest killed mid-file left behind (its ledger entry is 'loading')."""
        stale = [r[0] for r in _run(self.con, "SELECT file_id FROM files WHERE state <> 'done'")]
        for file_id in stale:
            self._discard(file_id)

    def _discard(self, file_id: int) -> None:
        for table in ("sessions", "quarantine", "files"):
            _run(self.con, f"DELETE FROM {table} WHERE file_id = ?", [file_id])

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- ingest ------------------------------------------------------------------------

    def ingest(self, path: str, source: str = "auto",
               progress: Callable[[int], None] | None = None) -> IngestResult:
        """Parse and store one file, all or nothing; a file already in the ledger (same
        content hash) is not read again."""
        if not os.path.isfile(path):
            raise SourceError(f"{path}: no such file")
        parser: Source = detect(path) if source == "auto" else get(source)
        digest = file_sha256(path)
        seen = _one(self.con, "SELECT path FROM files WHERE sha256 = ? AND state = 'done'", [digest])
        if seen:
            return IngestResult(path, parser.name, duplicate_of=seen[0])
        result = IngestResult(path, parser.name)
        con = self.con
        file_id = _one(con, "SELECT nextval('file_ids')")[0]
        _run(con, "INSERT INTO files (file_id, path, sha256, bytes, source, state) "
                  "VALUES (?, ?, ?, ?, ?, 'loading')",
             [file_id, os.path.abspath(path), digest, os.path.getsize(path), parser.name])
        in_transaction = False
        try:
            for batch in parser.parse(path):
                if batch.table.num_rows:
                    _append(con, "sessions", batch.table, file_id)
                if batch.quarantine.num_rows:
                    _append(con, "quarantine", batch.quarantine, file_id, first=True)
                result.sessions += batch.table.num_rows
                result.quarantined += batch.quarantine.num_rows
                result.skipped += batch.skipped
                result.records += batch.records
                if progress:
                    progress(batch.records)
            _run(con, "BEGIN TRANSACTION")
            in_transaction = True
            _run(con, "UPDATE files SET state = 'done', ingested_at = ?, records = ?, sessions = ?, "
                      "quarantined = ?, skipped = ? WHERE file_id = ?",
                 [datetime.now(timezone.utc), result.records, result.sessions,
                  result.quarantined, result.skipped, file_id])
            _run(con, "COMMIT")
        except BaseException:
            if in_transaction:
                _run(con, "ROLLBACK")
            self._discard(file_id)
            raise
        return result

    # ---- reading -----------------------------------------------------------------------

    def query(self, text: str, params: list | None = None) -> pa.Table:
        return self.con.sql(text, params=params or None).to_arrow_table()

    def daily_counts(self, start: datetime, days: int, keys: tuple[str, ...]) -> pa.Table:
        """Session rows (KQL count()) per key and per daily bin anchored at `start`:
        bin = floor((TimeGenerated - start) / 1 day), rows outside [start, start + days) and
        rows without a destination port excluded (the rule's isnotempty(DstPortNumber))."""
        cols = ", ".join(f'"{k}"' for k in keys)
        return self.query(
            f"SELECT {cols}, CAST(floor(epoch_us(TimeGenerated - ?::TIMESTAMPTZ) / 86400e6) AS INTEGER) AS bin, "
            f"count(*) AS n FROM ingested "
            f"WHERE TimeGenerated >= ?::TIMESTAMPTZ AND TimeGenerated < ?::TIMESTAMPTZ + to_days(?) "
            f"AND DstPortNumber IS NOT NULL GROUP BY ALL",
            [start, start, start, days])

    def newest_time(self) -> datetime | None:
        return _one(self.con, "SELECT max(TimeGenerated) FROM ingested")[0]

    def status(self) -> dict:
        sessions, first, last = _one(
            self.con, "SELECT count(*), min(TimeGenerated), max(TimeGenerated) FROM ingested")
        files, = _one(self.con, "SELECT count(*) FROM files WHERE state = 'done'")
        quarantined, = _one(self.con, "SELECT count(*) FROM quarantine WHERE file_id IN "
                                        "(SELECT file_id FROM files WHERE state = 'done')")
        by_source = dict(_run(
            self.con, "SELECT source, sum(sessions) FROM files WHERE state = 'done' GROUP BY source ORDER BY source"))
        return {
            "db": self.path, "sessions": sessions, "files": files, "quarantined": quarantined,
            "first": first.isoformat() if first else None,
            "last": last.isoformat() if last else None,
            "sessions_by_source": {k: int(v) for k, v in by_source.items()},
        }


def _run(con: duckdb.DuckDBPyConnection, text: str, params: list | None = None) -> list:
    """Execute and fetch everything (DuckDB 2 refuses new work while a result is pending)."""
    return con.execute(text, params or []).fetchall()


def _one(con: duckdb.DuckDBPyConnection, text: str, params: list | None = None):
    rows = _run(con, text, params)
    return rows[0] if rows else None


def _append(con: duckdb.DuckDBPyConnection, table: str, batch: pa.Table, file_id: int,
            first: bool = False) -> None:
    con.register("_batch", batch)
    try:
        columns = "? AS file_id, *" if first else "*, ? AS file_id"
        _run(con, f"INSERT INTO {table} SELECT {columns} FROM _batch", [file_id])
    finally:
        con.unregister("_batch")
