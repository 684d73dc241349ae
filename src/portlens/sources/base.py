"""The interface every source parser implements, and the shared steps around it.

A source turns one raw file into a stream of `Batch`es: valid ASIM rows, quarantined records
(file, line, reason, raw text) and a count of records that are not network sessions. The unit
of work is a file, so the same `parse` runs in the local ingest and inside a Spark task.

Line-oriented parsers only write `parse_lines`: given a batch of lines, return a table of
ASIM-named columns (text or typed) plus bookkeeping columns:
  `_line`  int64  1-based line number in the file (required)
  `_raw`   string the record text (required; kept in quarantine)
  `_error` string why a record that is a session is malformed (optional, NULL when fine)
  `_skip`  bool   the record is not a network session: counted, neither stored nor quarantined
`finish` then conforms the columns to the schema (asim.conform) and routes the failures.
"""

from __future__ import annotations

import gzip
import zlib
import io
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import asim

BATCH_LINES = 100_000
_CHUNK_BYTES = 8 << 20


class SourceError(ValueError):
    """A file cannot be read as the requested source (one line, for the user)."""


class TruncatedInput(SourceError):
    """The file's compressed stream breaks off after `line` readable lines."""

    def __init__(self, path: str, line: int, detail: str):
        super().__init__(f"{path}: compressed data is cut short or corrupt after line {line} ({detail})")
        self.line = line


_READ_ERRORS = (TruncatedInput, EOFError, zlib.error, gzip.BadGzipFile)


def parse_file(source: "Source", path: str, batch_lines: int = BATCH_LINES) -> Iterator["Batch"]:
    """`source.parse(path)`, with a file that breaks off (a cut or corrupt gzip) ending in one
    quarantine record after the last readable line, so what was readable still lands. A JSON
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


def _parse_file(source: "Source", path: str, batch_lines: int) -> Iterator["Batch"]:
    try:
        yield from source.parse(path, batch_lines)
    except _READ_ERRORS as e:
        line = e.line if isinstance(e, TruncatedInput) else None
        reason = str(e) if line is not None else f"{path}: unreadable input ({type(e).__name__}: {e})"
        q = asim.quarantine_rows(path, source.name, [line + 1 if line is not None else 0], [reason], [None])
        yield Batch(asim.empty_table(), q, 0, 1)


@dataclass
class Batch:
    table: pa.Table
    quarantine: pa.Table
    skipped: int = 0
    records: int = 0  # records read (rows + quarantined + skipped)
    skipped_by: dict = field(default_factory=dict)  # why records were skipped -> count (when known)
    notes: list = field(default_factory=list)  # one-line notes for the user (e.g. a time zone assumed)


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
    reads_json_documents = False  # (not a field) True: parse() reads pretty JSON documents itself

    def sniff(self, head: bytes, path: str) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def parse(self, path: str, batch_lines: int = BATCH_LINES) -> Iterator[Batch]:
        """Default for line-oriented formats: read lines in batches, parse each batch."""
        state = self.start(path)
        for lines, numbers in read_lines(path, batch_lines):
            yield self.finish(self.parse_lines(lines, numbers, state), path)

    def start(self, path: str) -> dict:
        """Per-file state for parsers that need it (a header line, a field list)."""
        return {}

    def parse_lines(self, lines: pa.Array, numbers: pa.Array, state: dict) -> pa.Table:  # pragma: no cover
        raise NotImplementedError

    def finish(self, parsed: pa.Table, path: str) -> Batch:
        return finish(parsed, path, self.name, {"EventVendor": self.vendor,
                                                "EventProduct": self.product, **self.defaults})


def finish(parsed: pa.Table, path: str, source: str, defaults: dict | None = None, *,
           strict_vocabulary: bool = True) -> Batch:
    """Route a parsed batch: skipped records are counted, records with a parser `_error` or a
    schema violation go to quarantine with their line, the rest become ASIM rows.
    strict_vocabulary: see asim.conform (False only for rows that are already ASIM)."""
    records = parsed.num_rows
    names = parsed.column_names
    skipped = 0
    if "_skip" in names:
        skip = pc.fill_null(parsed["_skip"], False)
        skipped = pc.sum(skip).as_py() or 0
        parsed = parsed.filter(pc.invert(skip))
    quarantined = []
    if "_error" in names:
        err = pc.is_valid(parsed["_error"])
        bad = parsed.filter(err)
        if bad.num_rows:
            quarantined.append(asim.quarantine_rows(path, source, bad["_line"], bad["_error"], bad["_raw"]))
        parsed = parsed.filter(pc.invert(err))
    columns = parsed.drop_columns([c for c in parsed.column_names if c.startswith("_")])
    result = asim.conform(columns, defaults=defaults, strict_vocabulary=strict_vocabulary)
    if len(result.rejected_index):
        lines = pc.take(parsed["_line"], result.rejected_index)
        raws = pc.take(parsed["_raw"], result.rejected_index)
        quarantined.append(asim.quarantine_rows(path, source, lines, result.rejected_reason, raws))
    quarantine = (pa.concat_tables(quarantined) if quarantined
                  else asim.QUARANTINE_SCHEMA.empty_table())
    return Batch(result.table, quarantine, skipped, records)


def open_binary(path: str) -> io.BufferedIOBase:
    """Open a file, transparently decompressing gzip (detected by magic bytes, not name)."""
    f = open(path, "rb")
    if f.peek(2)[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=f)  # type: ignore[return-value]
    return f


def read_head(path: str, size: int = 4096) -> bytes:
    with open_binary(path) as f:
        return f.read(size)


def read_lines(path: str, batch_lines: int = BATCH_LINES) -> Iterator[tuple[pa.Array, pa.Array]]:
    """Yield (lines, 1-based line numbers) in batches of `batch_lines` (the last may be
    shorter); bounded memory whatever the file size.

    Bytes are decoded as UTF-8 with replacement (a wrongly encoded line still lands, marked
    with U+FFFD), a BOM is dropped, and LF, CRLF and lone CR all end a line. Blank lines are
    not records: they keep their number but are not yielded. Splitting is done by Arrow.
    """
    pending: list[tuple[pa.Array, pa.Array]] = []
    held = 0
    try:
        for lines, numbers in _line_pieces(path):
            pending.append((lines, numbers))
            held += len(lines)
            while held >= batch_lines:
                lines = pa.concat_arrays([p[0] for p in pending])
                numbers = pa.concat_arrays([p[1] for p in pending])
                yield lines.slice(0, batch_lines), numbers.slice(0, batch_lines)
                pending = [(lines.slice(batch_lines), numbers.slice(batch_lines))]
                held -= batch_lines
    except TruncatedInput:  # the input breaks off: what was read still goes out first
        if held:
            yield pa.concat_arrays([p[0] for p in pending]), pa.concat_arrays([p[1] for p in pending])
        raise
    if held:
        yield pa.concat_arrays([p[0] for p in pending]), pa.concat_arrays([p[1] for p in pending])


def _line_pieces(path: str) -> Iterator[tuple[pa.Array, pa.Array]]:
    """The file's non-blank lines and their numbers, one read chunk at a time."""
    number = 0
    carry = b""
    first = True
    with open_binary(path) as f:
        # Compressed input is read in small pieces so that, if the stream breaks off, the
        # lines before the break are still handed out (TruncatedInput follows them).
        size = _CHUNK_BYTES if isinstance(f, io.BufferedReader) else 1 << 20
        while True:
            try:
                chunk = f.read(size)
            except (EOFError, zlib.error, gzip.BadGzipFile) as e:
                raise TruncatedInput(path, number, str(e)) from None
            data = carry + chunk
            if not chunk:
                cut = len(data)
                carry = b""
            else:
                cut = data.rfind(b"\n")
                if cut < 0:
                    carry = data
                    continue
                carry = data[cut + 1:]
            if cut or data:
                lines, numbers, number = _split_lines(data[:cut], number, first)
                first = False
                if len(lines):
                    yield lines, numbers
            if not chunk:
                break


def _split_lines(text: bytes, number: int, first: bool) -> tuple[pa.Array, pa.Array, int]:
    """Bytes of whole lines -> (non-blank lines, their 1-based numbers, last number used)."""
    if b"\r" in text:  # CRLF and lone CR both end a line (concatenated captures)
        text = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    decoded = text.decode("utf-8", errors="replace")
    if first:
        decoded = decoded.removeprefix("\ufeff")
    lines = pc.split_pattern(pa.array([decoded], pa.large_string()), "\n").flatten()
    lines = lines.cast(pa.string()) if lines.nbytes < (1 << 31) - 1 else lines
    numbers = pa.array(np.arange(number + 1, number + 1 + len(lines), dtype=np.int64))
    keep = pc.not_equal(pc.utf8_length(pc.utf8_trim_whitespace(lines)), 0)
    return lines.filter(keep), numbers.filter(keep), number + len(lines)
