"""The interface every source parser implements, and the shared steps around it.

A source turns one raw file into a stream of `Batch`es: valid ASIM rows, quarantined records
(file, line, reason, raw text) and a count of records that are not network sessions. The unit
of work is a file, so the same `parse` runs in the local ingest and inside a Spark task.

Line-oriented parsers only write `map_lines` (the mapping step, one name in every vendor):
given a batch of lines, return a table of ASIM-named columns (text or typed) plus bookkeeping
columns:
  `_line`  int64  1-based line number in the file (required)
  `_raw`   string the record text (required; kept in quarantine)
  `_error` string why a record that is a session is malformed (optional, NULL when fine)
  `_skip`  bool   the record is not a network session: counted, neither stored nor quarantined
`finish` then conforms the columns to the schema (asim.conform_sql) and routes the failures.
The base frames the file into batches of lines (`read_lines`) and runs `map_lines` under one
safety net (`guarded`): a parser bug costs the record that triggers it, never the run.

A source whose mapping is SQL hands `finish` a `Query` (its SQL over Arrow inputs) instead of
an Arrow table: framing where it is SQL (JSON lines, `_records.json_lines_query`), the vendor
mapping, the 32-bit guard and conform then run as one statement, computing only the columns
its reader keeps (the store's: mapped columns nothing reads are never computed). Such a
batch counts its records from the statement's rows (one row per record).
"""

from __future__ import annotations

import contextlib
import contextvars
import gzip
import io
import queue
import re
import threading
import zlib
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Callable, ClassVar, Iterator

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import asim, limits
from ..errors import SourceError  # noqa: F401  (sources raise it; re-exported)

BATCH_LINES = 100_000
# A batch also ends at about this much text, so that memory stays bounded for formats with long
# records (XML events, JSON records with many flows): what a batch costs in memory grows with
# its text, several times over, through parsing.
BATCH_BYTES = 24 << 20
_CHUNK_BYTES = 8 << 20


class TruncatedInput(SourceError):
    """The file's compressed stream breaks off after `line` readable lines."""

    def __init__(self, path: str, line: int, detail: str):
        super().__init__(f"{path}: compressed data is cut short or corrupt after line {line} ({detail})")
        self.line = line


# The one read-error policy of every source (`parse_file`): a compressed stream that is cut
# short or corrupt ends the file with one quarantine record after its last readable line, and
# what was readable lands (the bytes will not get better). Any other read error (a failing
# disk, an object store that stops answering) fails the file: nothing of it lands, and the
# next ingest reads it again.
_READ_ERRORS = (TruncatedInput, EOFError, zlib.error, gzip.BadGzipFile)


def parse_file(source: "Source", path: str, batch_lines: int = BATCH_LINES) -> Iterator["Batch"]:
    """`source.parse(path)` under the read-error policy (`_READ_ERRORS`): a file that breaks
    off (a cut or corrupt gzip) ends in one quarantine record after the last readable line, so
    what was readable still lands; another read error is a SourceError. A JSON
    document (pretty-printed object, array) given to a source that reads JSON lines is read as
    the JSON lines of its records (`_documents`)."""
    if not source.reads_json_documents:
        from ._documents import as_json_lines
        with as_json_lines(path) as lines_path:
            if lines_path is not None:
                for batch in _parse_file(source, lines_path, batch_lines):
                    if batch.quarantine.num_rows:  # quarantine names the user's file
                        q = batch.quarantine
                        batch.quarantine = q.set_column(q.schema.get_field_index("file"), "file",
                                                        pa.repeat(pa.scalar(path, q.schema.field("file").type),
                                                                  q.num_rows))
                    yield batch
                return
    yield from _parse_file(source, path, batch_lines)


def read_ahead(items: Iterator) -> Iterator:
    """`items`, the next one produced in a thread while the consumer works on this one, in
    this context (the pinned file, read limits, record limits). Reading and splitting the next
    batch (file reads, Arrow kernels, DuckDB on the thread's own compute engine: all release
    the GIL for their heavy parts) then overlaps the store's SQL on this one, so an ingest uses
    both cores. At most two batches are alive: the producer starts the next only once the
    consumer has taken the last. An exception in the producer is raised here; leaving early
    stops the producer."""
    handoff: queue.Queue = queue.Queue(maxsize=1)
    taken = threading.Semaphore(0)
    stop = threading.Event()
    end = object()

    def put(entry) -> bool:
        """Hand `entry` over and wait until the consumer has taken it (False: stopped)."""
        handoff.put(entry)  # (never blocks: the queue is empty whenever the producer puts)
        while not stop.is_set():
            if taken.acquire(timeout=0.1):
                return True
        return False

    def produce():
        try:
            for item in items:
                if not put((item, None)):
                    break
            else:
                put((end, None))
        except BaseException as e:  # (raised in the consumer)
            put((end, e))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=contextvars.copy_context().run, args=(produce,),
                              name="portlens-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item, error = handoff.get()
            taken.release()
            if error is not None:
                raise error
            if item is end:
                break
            yield item
    finally:
        stop.set()
    worker.join()


def mapped_ahead(items: Iterator, fn: Callable, ahead: int = 1) -> Iterator:
    """fn(item) for each item, in order, with up to `ahead` later items mapped meanwhile in
    other threads (in this context). For a source whose framing is cheap and whose mapping of
    a batch is not (Windows event XML): framing goes on in the reading thread while the
    batches before are mapped, so a reading-bound ingest uses the core the store leaves idle.
    `fn` must not depend on the batches before, unless it waits for them itself (`Turns`)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=ahead + 1, thread_name_prefix="portlens-map") as pool:
        pending: list = []
        try:
            for item in items:
                pending.append(pool.submit(contextvars.copy_context().run, fn, item))
                if len(pending) > ahead:
                    yield pending.pop(0).result()
            while pending:
                yield pending.pop(0).result()
        finally:
            for future in pending:
                future.cancel()


class Turns:
    """Turns at a state carried from batch to batch (`Source.CARRIES_STATE`) while batches are
    mapped at once: batch k's turn begins once batch k-1's has ended, so the state sees the
    batches in file order. A turn ends on leaving `turn(k)` (unless release=False) or with
    `end(k)`, which the mapping calls in any case when it is done with the batch."""

    def __init__(self) -> None:
        self._ended = -1  # every batch up to this number has ended its turn
        self._early: set[int] = set()  # batches that ended theirs before one before them did
        self._changed = threading.Condition()

    def end(self, number: int) -> None:
        with self._changed:
            self._early.add(number)
            while self._ended + 1 in self._early:
                self._ended += 1
                self._early.discard(self._ended)
            self._changed.notify_all()

    @contextlib.contextmanager
    def turn(self, number: int, release: bool = True) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: self._ended >= number - 1)
        try:
            yield
        finally:
            if release:
                self.end(number)


def conformed(batches: Iterator["Batch"]) -> Iterator["Batch"]:
    """The batches, each conformed (its pending statement run) before it is handed on: with
    read_ahead, in the reading thread."""
    for batch in batches:
        batch.table  # noqa: B018  (resolves the batch)
        yield batch


def _parse_file(source: "Source", path: str, batch_lines: int) -> Iterator["Batch"]:
    with limits.collecting(path) as long:  # records over the size limit (limits.LineGuard)
        try:
            for batch in source.parse(path, batch_lines):
                yield batch
                yield from long_records(long, path, source.name)
        except _READ_ERRORS as e:
            line = e.line if isinstance(e, TruncatedInput) else None
            reason = str(e) if line is not None else f"{path}: unreadable input ({type(e).__name__}: {e})"
            q = asim.quarantine_rows(path, source.name, [line + 1 if line is not None else 0], [reason], [None])
            yield Batch(asim.empty_table(), q, 0, 1)
        except OSError as e:
            raise SourceError(f"{path}: cannot read it: {e.strerror or e}") from None
        yield from long_records(long, path, source.name)


def long_records(long: list, path: str, source: str) -> Iterator["Batch"]:
    """Quarantine the oversized records found so far (and forget them)."""
    if long:
        limit = limits.current().max_record_bytes
        q = asim.quarantine_rows(path, source, [r.line for r in long], [r.reason(limit) for r in long],
                                 [r.head for r in long])
        long.clear()
        yield Batch(asim.empty_table(), q, 0, q.num_rows)


class Batch:
    """One batch of a file: valid ASIM rows (`table`), quarantined records (`quarantine`), the
    number of records that are not sessions (`skipped`) and of records read (`records`).

    A batch made by `finish` is *pending* until first used: it holds the parsed columns and the
    conform statement (`pending`), so the store can run that one statement for the columns it
    keeps, in a thread of its own; any other reader gets the Arrow results on first access of
    `table`, `quarantine` or `skipped`.

    `skip_reason`: why a pending batch's skipped records are skipped. Their number is known
    once the statement has run (`counted_skipped`), so it is credited to `skipped_by` then
    rather than counted by a statement of its own."""

    def __init__(self, table: pa.Table | None = None, quarantine: pa.Table | None = None,
                 skipped: int = 0, records: int = 0, skipped_by: dict | None = None,
                 notes: list | None = None, *, pending: "Pending | None" = None):
        self._table, self._quarantine, self._skipped = table, quarantine, skipped
        self._records = records  # records read (rows + quarantined + skipped); None: counted when run
        self.skipped_by = skipped_by if skipped_by is not None else {}  # why skipped -> count (when known)
        self.notes = notes if notes is not None else []  # one-line notes for the user (e.g. a zone assumed)
        self.pending = pending
        self.skip_reason: str | None = None

    def counted_skipped(self, n: int) -> None:
        """The statement skipped `n` records: credit them to `skip_reason`, if it is set."""
        if n and self.skip_reason:
            self.skipped_by[self.skip_reason] = self.skipped_by.get(self.skip_reason, 0) + n

    def _resolve(self) -> None:
        if self.pending is not None:
            self._table, self._quarantine, self._skipped = self.pending.to_arrow()
            if self._records is None:
                self._records = self._table.num_rows + self._quarantine.num_rows + self._skipped
            self.pending = None
            self.counted_skipped(self._skipped)

    @property
    def records(self) -> int:
        if self._records is None:
            self._resolve()
        return self._records

    @records.setter
    def records(self, value: int) -> None:
        self._records = value

    @property
    def table(self) -> pa.Table:
        self._resolve()
        return self._table

    @table.setter
    def table(self, value: pa.Table) -> None:
        self._resolve()
        self._table = value

    @property
    def quarantine(self) -> pa.Table:
        self._resolve()
        return self._quarantine

    @quarantine.setter
    def quarantine(self, value: pa.Table) -> None:
        self._resolve()
        self._quarantine = value

    @property
    def skipped(self) -> int:
        self._resolve()
        return self._skipped

    @skipped.setter
    def skipped(self, value: int) -> None:
        self._resolve()
        self._skipped = value


@dataclass
class Query:
    """Parsed columns as SQL rather than Arrow: `sql` over the Arrow `inputs` (by name). A
    source that maps its records in SQL hands this to `finish`, so mapping and validation are
    one statement."""
    sql: str
    inputs: dict
    # The same query computing only the given ASIM columns (and the bookkeeping ones), for a
    # source whose cost grows with the columns it extracts (JSON into a struct of every ASIM
    # field); see Pending.sql(keep=...).
    narrow: Callable[[frozenset], str] | None = None


def materialize(parsed: "pa.Table | Query") -> pa.Table:
    """The Arrow table of parsed columns (a Query run on the compute engine)."""
    return asim.query(parsed.sql, **parsed.inputs) if isinstance(parsed, Query) else parsed


def over(sql: str, name: str, rows: "pa.Table | Query") -> Query:
    """`sql`, a query over the table `name`, run over `rows` (an Arrow table, or the rows a
    Query gives: then both are one statement)."""
    if isinstance(rows, Query):
        return Query(f"WITH {name} AS ({rows.sql}) SELECT * FROM ({sql})", rows.inputs)
    return Query(sql, {name: rows})


def with_rows(parsed: "pa.Table | Query", *tables: pa.Table) -> "pa.Table | Query":
    """Parsed columns plus more rows (e.g. the records framing rejected, with `_error`):
    columns are matched by name, a column one side lacks is NULL there."""
    tables = tuple(t for t in tables if t.num_rows)
    if not tables:
        return parsed
    if not isinstance(parsed, Query):
        return pa.concat_tables([parsed, *tables], promote_options="default")
    names = [f"_rows{i}" for i in range(len(tables))]
    sql = f"SELECT * FROM ({parsed.sql})" + "".join(f" UNION ALL BY NAME SELECT * FROM {n}" for n in names)
    return Query(sql, {**parsed.inputs, **dict(zip(names, tables))})


@dataclass
class Pending:
    """Parsed columns of one batch (ASIM-named, typed or text, plus `_line`, `_raw` and the
    optional `_error`, `_skip`; an Arrow table or a `Query`) and what conforming them needs."""
    parsed: "pa.Table | Query"
    path: str
    source: str
    defaults: dict
    strict_vocabulary: bool = True  # see asim.conform_sql

    def inputs(self) -> dict:
        """The Arrow tables the statement reads, by name (register them, then run it)."""
        return self.parsed.inputs if isinstance(self.parsed, Query) else {"_parsed": self.parsed}

    @property
    def reads_files(self) -> bool:
        """The statement reads files only (DuckDB's own reader, no Arrow input): it can run on
        any connection, the store's included."""
        return isinstance(self.parsed, Query) and not self.parsed.inputs

    @contextlib.contextmanager
    def reading(self):
        """Where the statement runs: DuckDB's failure to read the file (a corrupt Parquet
        page) as one line, a SourceError, like every other read error."""
        try:
            yield
        except (duckdb.IOException, duckdb.InvalidInputException) as e:
            if not self.reads_files:
                raise
            detail = re.sub(r'^.*Failed to read file "[^"]*": ', "", str(e).splitlines()[0])
            raise SourceError(f"{self.path}: cannot read it: {detail}") from None

    def sql(self, keep: frozenset | None = None) -> str:
        """The conform statement over the parsed columns (built per batch: the plausible time
        window moves with the clock; a Query's column types are looked up once).
        keep: the ASIM columns the caller uses; the others may be left NULL, as long as every
        row is accepted or rejected exactly as with all of them (asim.rejecting_columns)."""
        if isinstance(self.parsed, Query):
            query = self.parsed
            if keep is not None and query.narrow is not None:
                query = Query(query.narrow(keep | asim.rejecting_columns(self.strict_vocabulary)), query.inputs)
            relation, kinds = f"({query.sql})", query_kinds(query)
        else:
            relation, kinds = "_parsed", asim.arrow_kinds(self.parsed.schema)
        return asim.conform_sql(relation, kinds, self.defaults, strict_vocabulary=self.strict_vocabulary,
                                outputs=keep)

    def to_arrow(self) -> tuple[pa.Table, pa.Table, int]:
        """(ASIM rows, quarantine rows, records skipped), conformed on the compute engine."""
        with self.reading():
            out = asim.query(self.sql(), **self.inputs())
        skip = out["_skip"]
        skipped = int(pc.sum(skip).as_py() or 0)
        bad = pc.is_valid(out["_reason"])
        good = out.filter(pc.and_(pc.invert(bad), pc.invert(skip))).select(list(asim.COLUMNS)).cast(asim.SCHEMA)
        rejected = out.filter(bad)
        quarantine = asim.quarantine_rows(self.path, self.source, rejected["_line"], rejected["_reason"],
                                          rejected["_raw"])
        return good, quarantine, skipped


_QUERY_KINDS: dict = {}


def query_kinds(query: Query) -> dict[str, str]:
    """The column kinds a Query yields (DuckDB's DESCRIBE), once per query and input types."""
    key = (query.sql, tuple((name, t.schema) for name, t in query.inputs.items()))
    if key not in _QUERY_KINDS:
        con = asim.sql()
        for name, table in query.inputs.items():
            con.register(name, table.schema.empty_table())
        try:
            described = [(r[0], r[1]) for r in con.execute(f"DESCRIBE {query.sql}").fetchall()]
        finally:
            for name in query.inputs:
                con.unregister(name)
        if len(_QUERY_KINDS) > 256:
            _QUERY_KINDS.clear()
        _QUERY_KINDS[key] = asim.sql_kinds(described)
    return _QUERY_KINDS[key]


# ---- the safety net around a source's mapping step ------------------------------------------

def guarded(parse, lines, numbers, state: dict, name: str = "parser", *,
            isolate: bool = True) -> "pa.Table | Query":
    """Run a source's `parse(lines, numbers, state) -> table or Query` so that no input can
    crash it. Chunked input, or text too large for one string array, is parsed in pieces (a
    single record over 2 GiB is quarantined with its first 64 KiB). isolate: when a batch
    raises, it is halved until the offending record is alone; that record is quarantined
    (`_error` names the exception) and the rest parses normally, so a parser bug costs rows,
    not the run (tests should assert that no `_error` starts with "internal error"); without
    it, the error propagates. A Query comes back as it is when the batch parses in one piece
    (the store runs it with conform); pieces are materialized to be joined."""
    if isinstance(lines, pa.ChunkedArray) or isinstance(numbers, pa.ChunkedArray):
        lines = lines.combine_chunks() if lines.type == pa.string() and lines.nbytes < (1 << 30) else lines
    if isinstance(lines, pa.ChunkedArray):
        parts, at = [], 0
        for chunk in lines.chunks:
            parts.append(materialize(guarded(parse, chunk, _slice(numbers, at, len(chunk)), state, name,
                                             isolate=isolate)))
            at += len(chunk)
        return pa.concat_tables(parts, promote_options="default") if parts else materialize(parse(
            pa.array([], pa.string()), pa.array([], pa.int64()), state))
    if isinstance(numbers, pa.ChunkedArray):
        numbers = numbers.combine_chunks()
    if lines.type != pa.string():
        try:
            lines = lines.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowCapacityError, OverflowError):  # (over 2 GiB of text)
            if len(lines) == 1:
                return _quarantined(lines, numbers, "record larger than 2 GiB")
            return _halves(parse, lines, numbers, state, name, isolate)
    if not isolate:
        return parse(lines, numbers, state)
    try:
        return parse(lines, numbers, state)
    except Exception as exc:  # noqa: BLE001 - the safety net itself
        if len(lines) <= 1:
            return _quarantined(lines, numbers, f"internal error in {name}: {type(exc).__name__}: {str(exc)[:200]}")
        return _halves(parse, lines, numbers, state, name, isolate)


def _halves(parse, lines, numbers, state: dict, name: str, isolate: bool) -> pa.Table:
    half = len(lines) // 2
    return pa.concat_tables([
        materialize(guarded(parse, lines.slice(0, half), numbers.slice(0, half), state, name, isolate=isolate)),
        materialize(guarded(parse, lines.slice(half), numbers.slice(half), state, name, isolate=isolate))],
        promote_options="default")


def _quarantined(lines, numbers, reason: str) -> pa.Table:
    """Records as parsed columns that only say why they are malformed (their first 64 KiB kept)."""
    raw = pc.utf8_slice_codeunits(lines.cast(pa.large_string()), 0, 65536).cast(pa.string()) \
        if len(lines) else pa.array([], pa.string())
    return pa.table({"_line": numbers, "_raw": raw, "_error": pa.array([reason] * len(lines), pa.string())})


def _slice(arr, offset: int, length: int):
    out = arr.slice(offset, length)
    return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out


@dataclass
class Source:
    """Base class: `name`, `forms` (the raw forms accepted, for `portlens sources`) and
    `priority` (higher wins when several sources recognise the same head)."""
    name: str = ""
    forms: tuple[str, ...] = ()
    vendor: str = ""
    product: str = ""
    priority: int = 0
    defaults: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)  # values of OPTIONS given for this run
    reads_json_documents = False  # (not a field) True: parse() reads pretty JSON documents itself
    OPTIONS: ClassVar[dict[str, str]] = {}  # option name -> what it does (`--source-option`)
    # True: map_lines reads what it wrote to its state on a batch before (cisco-asa pairs a
    # connection's teardown with its earlier built message), so the part of a batch's mapping
    # that reads or writes the state waits for the batch before (`map_lines_in_turn`).
    # Otherwise the state is set by start() only.
    CARRIES_STATE: ClassVar[bool] = False
    # True: the default parse maps two batches at once (mapped_ahead), where that pays (framing
    # cheap, mapping not); a source that CARRIES_STATE then takes turns at its state.
    MAP_AHEAD: ClassVar[bool] = False

    def with_options(self, options: dict) -> "Source":
        """This source with `options` (names from OPTIONS) set; an unknown name is an error."""
        unknown = sorted(set(options) - set(self.OPTIONS))
        if unknown:
            known = ", ".join(self.OPTIONS) or "none"
            raise SourceError(f"source {self.name} has no option {', '.join(unknown)} (its options: {known})")
        return replace(self, options={**self.options, **options})

    def sniff(self, head: bytes, path: str) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def parse(self, path: str, batch_lines: int = BATCH_LINES) -> Iterator[Batch]:
        """Default for line-oriented formats: read lines in batches, parse each batch (the
        next one meanwhile, when MAP_AHEAD)."""
        state = self.start(path)
        if self.MAP_AHEAD and not self.CARRIES_STATE:
            yield from mapped_ahead(read_lines(path, batch_lines), lambda batch: self.finish(
                self.mapped(*batch, state), path))
            return
        if self.MAP_AHEAD:
            # Batches of two thirds the lines: with two mapped at once, cisco-asa's peak memory
            # stays where one full batch at a time had it (760 -> 770 MiB on 1M lines, 965 MiB
            # with full batches), at the same wall time.
            batch_lines = max(1, batch_lines * 2 // 3)
            turns = Turns()

            def mapped(item: tuple) -> Batch:
                number, (lines, numbers) = item
                try:
                    return self.finish(self.map_lines_in_turn(lines, numbers, state, turns.turn(number)), path)
                finally:
                    turns.end(number)  # (also when the batch never took its turn)
            yield from mapped_ahead(enumerate(read_lines(path, batch_lines)), mapped)
            return
        for lines, numbers in read_lines(path, batch_lines):
            yield self.finish(self.mapped(lines, numbers, state), path)

    def start(self, path: str) -> dict:
        """Per-file state for parsers that need it (a header line, a field list)."""
        return {}

    def map_lines(self, lines: pa.Array, numbers: pa.Array, state: dict) -> "pa.Table | Query":  # pragma: no cover
        """The mapping step of a line-oriented source: a batch of lines (a string array) ->
        the parsed columns (see the module doc), or a `Query` that computes them, so that
        conform runs in the same statement."""
        raise NotImplementedError

    def mapped(self, lines: pa.Array, numbers: pa.Array, state: dict) -> "pa.Table | Query":
        """`map_lines` under the safety net (`guarded`). A source that CARRIES_STATE is only
        split where its text does not fit one string array: re-running part of a batch that
        failed would apply its state twice."""
        return guarded(self.map_lines, lines, numbers, state, self.name, isolate=not self.CARRIES_STATE)

    def parse_lines(self, lines: pa.Array, numbers: pa.Array, state: dict) -> pa.Table:
        """The parsed columns of a batch of lines, as Arrow."""
        return materialize(self.mapped(lines, numbers, state))

    def map_lines_in_turn(self, lines: pa.Array, numbers: pa.Array, state: dict,
                          turn: contextlib.AbstractContextManager) -> "pa.Table | Query":
        """`map_lines` for a source that CARRIES_STATE, mapped while other batches are: the
        part that reads or writes `state` runs inside `turn`, which batches enter one at a
        time in file order. By default the whole mapping does; a source overrides this to
        keep the rest out of it."""
        with turn:
            return self.mapped(lines, numbers, state)

    def finish(self, parsed: pa.Table, path: str) -> Batch:
        return finish(parsed, path, self.name, {"EventVendor": self.vendor,
                                                "EventProduct": self.product, **self.defaults})


def finish(parsed: "pa.Table | Query", path: str, source: str, defaults: dict | None = None, *,
           strict_vocabulary: bool = True) -> Batch:
    """Route a parsed batch: skipped records are counted, records with a parser `_error` or a
    schema violation go to quarantine with their line, the rest become ASIM rows. The work
    is one SQL statement (asim.conform_sql), run when the batch is first used.
    strict_vocabulary: see asim.conform_sql (False only for rows that are already ASIM)."""
    if isinstance(parsed, Query):
        records = None  # one output row per record: counted when the statement runs
    else:
        if "_raw" not in parsed.column_names:
            parsed = parsed.append_column("_raw", pa.nulls(parsed.num_rows, pa.string()))
        records = parsed.num_rows
    return Batch(records=records, pending=Pending(parsed, path, source, defaults or {}, strict_vocabulary))


# ledger hook (issue 13): path -> how many decompressed bytes a source may read of it. The
# store sets it while it ingests a growing file, so the source sees the file as it was when
# its complete lines were counted (ledger.py), not a line still being written.
READ_LIMITS: ContextVar[dict] = ContextVar("read_limits", default={})
# path -> how many bytes of the file (as stored, compressed or not) to read: the store bounds
# a file's parse and its ledger measuring, which run side by side, to the size it had.
RAW_LIMITS: ContextVar[dict] = ContextVar("raw_limits", default={})


def open_binary(path: str) -> io.BufferedIOBase:
    """Open a file, transparently decompressing gzip (detected by magic bytes, not name)."""
    # storage hook (issue 14): object-storage URLs (s3://, az://, ...) open as streams too.
    from .. import storage
    f = storage.open_input(path)
    raw = RAW_LIMITS.get().get(path)
    if raw is not None:
        f = io.BufferedReader(_Limited(f, raw))
    if f.peek(2)[:2] == b"\x1f\x8b":
        f = limits.GuardedGzip(f, path)  # type: ignore[assignment]  (stops a decompression bomb)
    limit = READ_LIMITS.get().get(path)
    return f if limit is None else io.BufferedReader(_Limited(f, limit))  # type: ignore[return-value]


class _Limited(io.RawIOBase):
    """The first `limit` bytes of a stream (see READ_LIMITS, RAW_LIMITS)."""

    def __init__(self, f, limit: int):
        self.f, self.left, self.pos = f, limit, 0

    def readable(self) -> bool:
        return True

    def tell(self) -> int:  # (the bomb guard reads how much compressed input went in)
        return self.pos

    def readinto(self, buffer) -> int:
        data = self.f.read(min(len(buffer), self.left))
        self.left -= len(data)
        self.pos += len(data)
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self.f.close()
        super().close()


def read_head(path: str, size: int = 4096) -> bytes:
    """The file's first `size` bytes (decompressed), or what can be read of them: the head of a
    compressed stream cut short is still read, and the parse reports the cut where it is. A
    stream with nothing readable raises its error."""
    with open_binary(path) as f:
        head, broken = readable(f, size)
    if broken is not None and not head:
        raise broken
    return head


def read_lines(path: str, batch_lines: int = BATCH_LINES, byte_range: tuple[int, int] | None = None,
               stats: dict | None = None) -> Iterator[tuple[pa.Array, pa.Array]]:
    """Yield (lines, 1-based line numbers) in batches of `batch_lines` or of about
    BATCH_BYTES of text, whichever comes first (the last may be shorter); bounded memory
    whatever the file size.

    Bytes are decoded as UTF-8 with replacement (a wrongly encoded line still lands, marked
    with U+FFFD), a BOM is dropped, and LF, CRLF and lone CR all end a line. Blank lines are
    not records: they keep their number but are not yielded. Splitting is done by Arrow.

    storage hook (issue 14), for Spark's splits of one large plain-text file:
    `byte_range=(start, end)` reads only the lines that start in [start, end), numbered from 1
    within the range; `stats["lines"]` is then the number of lines the range held.
    """
    pending: list[tuple[pa.Array, pa.Array]] = []
    held = held_bytes = 0
    try:
        for lines, numbers in _line_pieces(path, byte_range, stats):
            pending.append((lines, numbers))
            held += len(lines)
            held_bytes += lines.nbytes
            if held_bytes >= BATCH_BYTES and held < batch_lines:  # long records: a batch by size
                yield pa.concat_arrays([p[0] for p in pending]), pa.concat_arrays([p[1] for p in pending])
                pending, held, held_bytes = [], 0, 0
            while held >= batch_lines:
                lines = pa.concat_arrays([p[0] for p in pending])
                numbers = pa.concat_arrays([p[1] for p in pending])
                yield lines.slice(0, batch_lines), numbers.slice(0, batch_lines)
                pending = [(lines.slice(batch_lines), numbers.slice(batch_lines))]
                held -= batch_lines
                held_bytes = pending[0][0].nbytes
    except TruncatedInput:  # the input breaks off: what was read still goes out first
        if held:
            yield pa.concat_arrays([p[0] for p in pending]), pa.concat_arrays([p[1] for p in pending])
        raise
    if held:
        yield pa.concat_arrays([p[0] for p in pending]), pa.concat_arrays([p[1] for p in pending])


def _line_pieces(path: str, byte_range: tuple[int, int] | None = None,
                 stats: dict | None = None) -> Iterator[tuple[pa.Array, pa.Array]]:
    """The file's non-blank lines and their numbers, one read chunk at a time."""
    number = 0
    carry = b""
    first = not byte_range or byte_range[0] == 0
    guard = limits.LineGuard(path)  # records over the size limit are cut out and reported
    with open_binary(path) as f:
        read = f.read if byte_range is None else _range_reader(f, *byte_range)
        # Compressed input is read in small pieces, and up to the break when the stream breaks
        # off, so that the lines before the break are still handed out (TruncatedInput follows).
        compressed = not isinstance(f, io.BufferedReader)
        size = 1 << 20 if compressed else _CHUNK_BYTES
        broken = None
        while True:
            if broken is not None:
                raise TruncatedInput(path, number, str(broken))
            if compressed:
                chunk, broken = readable(f, size)
                if broken is not None and not chunk:
                    continue
            else:
                try:
                    chunk = read(size)
                except (EOFError, zlib.error, gzip.BadGzipFile) as e:
                    raise TruncatedInput(path, number, str(e)) from None
            if guard.skipping:
                if not chunk:
                    guard.end()
                    break
                chunk = guard.skip(chunk)
                if guard.skipping or not chunk:
                    continue
            data = carry + chunk
            if not chunk:
                cut = len(data)
                carry = b""
            else:
                cut = data.rfind(b"\n")
                if cut < 0 and len(data) > guard.limit:
                    # lone-CR line ends (a final CR may be half of a CRLF: it waits)
                    cut = data.rfind(b"\r", 0, len(data) - 1)
                    if cut < 0 and not data.endswith(b"\r"):  # one record over the limit
                        number = guard.too_long(data, number)
                        carry = b""
                        continue
                if cut < 0:
                    carry = data
                    continue
                carry = data[cut + 1:]
            if cut or data:
                end = cut - 1 if data[cut:cut + 1] == b"\n" and data[cut - 1:cut] == b"\r" else cut
                # (a CRLF cut at its LF: the CR is no line of its own; a view, not a copy)
                lines, numbers, number = _split_lines(data, end, number, first)
                if end > guard.limit:
                    lines, numbers = guard.drop_long(lines, numbers)
                first = False
                if len(lines):
                    yield lines, numbers
            if not chunk:
                break
    if stats is not None:
        stats["lines"] = number


def readable(f, size: int) -> tuple[bytes, Exception | None]:
    """Up to `size` bytes of a stream, and the error that broke it off if it is compressed and
    broke off: (what was read before the break, the error)."""
    pieces, n = [], 0
    try:
        while n < size and (piece := f.read1(size - n)):
            pieces.append(piece)
            n += len(piece)
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        return b"".join(pieces), e
    return b"".join(pieces), None


def _range_reader(f, start: int, end: int):
    """read(n) over the lines of an uncompressed file that start in [start, end): the line
    running into `start` belongs to the range before, the one running past `end` to this one."""
    if start > 0:
        f.seek(start - 1)
        f.readline()
    pos = f.tell()

    def read(n: int) -> bytes:
        nonlocal pos
        if pos >= end:
            return b""
        chunk = f.read(min(n, end - pos))
        pos += len(chunk)
        if pos >= end and chunk and not chunk.endswith(b"\n"):
            chunk += f.readline()
            pos = end
        return chunk
    return read


def _split_lines(data: bytes, end: int, number: int, first: bool) -> tuple[pa.Array, pa.Array, int]:
    """data[:end], bytes of whole lines -> (non-blank lines, their 1-based numbers, last
    number used). The lines are views of `data`, not copies, where no CR needs rewriting."""
    ascii = data.isascii()
    if data.find(b"\r", 0, end) >= 0:  # CRLF and lone CR both end a line (concatenated captures)
        data = data[:end].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = len(data)
    text = memoryview(data)[:end]
    if first and text[:3] == b"\xef\xbb\xbf":
        text, ascii = text[3:], False
    # Valid UTF-8 (the usual case) goes to Arrow in place, with no round trip through str.
    # It is checked by Python, which is fast where Arrow's cast is not (isascii about 15 GB/s,
    # a strict decode about 3 GB/s, Arrow's cast to string about 0.4 GB/s, measured here).
    try:
        if not ascii:
            str(text, "utf-8")
        whole = pa.LargeStringArray.from_buffers(
            1, pa.py_buffer(np.array([0, len(text)], np.int64)), pa.py_buffer(text))
    except UnicodeDecodeError:
        whole = pa.array([str(text, "utf-8", errors="replace")], pa.large_string())
    lines = pc.split_pattern(whole, "\n").flatten()
    lines = lines.cast(pa.string()) if lines.nbytes < (1 << 31) - 1 else lines
    numbers = pa.array(np.arange(number + 1, number + 1 + len(lines), dtype=np.int64))
    # blank: empty or whitespace only (utf8_is_space stops at the first other character)
    keep = pc.invert(pc.or_(pc.equal(pc.binary_length(lines), 0), pc.utf8_is_space(lines)))
    last = number + len(lines)
    if keep.false_count:
        lines, numbers = lines.filter(keep), numbers.filter(keep)
    return lines, numbers, last
