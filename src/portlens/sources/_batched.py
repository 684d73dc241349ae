"""The framing stage of the line-oriented syslog sources: a file's lines in batches
(`read_lines`: up to BATCH_LINES lines or about BATCH_BYTES of text), each batch parsed
under a safety net (`guarded`: a parser bug costs the record, never the run), and the `BatchedSource` base that ties them to `Source`: its
`_parse(lines, numbers, state)` returns the parsed columns or a `Query` computing them, which
the store runs together with conform as one statement. Field extraction is `_syslog` (Arrow)
and `_kv_sql` (SQL); the mapping to ASIM is each vendor's module."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from . import _syslog as S
from .base import Query, Source, materialize


# ---- batch safety net --------------------------------------------------------------------------

def guarded(parse, lines, numbers, state: dict, name: str = "parser") -> "pa.Table | Query":
    """Run a source's `parse(lines, numbers, state) -> table or Query` so that no input can
    crash it: chunked or 64-bit-offset input is processed in pieces, and when a batch raises,
    it is halved until the offending record is alone; that record is quarantined (`_error`
    names the exception) and the rest parses normally. A parser bug therefore costs rows, not
    the run; tests should assert that no `_error` starts with "internal error". A Query comes
    back as it is when the batch parses in one piece (the store runs it with conform); pieces
    are materialized to be joined."""
    if isinstance(lines, pa.ChunkedArray) or isinstance(numbers, pa.ChunkedArray):
        lines = lines.combine_chunks() if lines.type == pa.string() and lines.nbytes < (1 << 30) else lines
    if isinstance(lines, pa.ChunkedArray):
        parts, at = [], 0
        for chunk in lines.chunks:
            parts.append(materialize(guarded(parse, chunk, _slice(numbers, at, len(chunk)), state, name)))
            at += len(chunk)
        return pa.concat_tables(parts, promote_options="default") if parts else materialize(parse(
            pa.array([], pa.string()), pa.array([], pa.int64()), state))
    if isinstance(numbers, pa.ChunkedArray):
        numbers = numbers.combine_chunks()
    try:
        if lines.type != pa.string():
            lines = lines.cast(pa.string())
        return parse(lines, numbers, state)
    except Exception as exc:  # noqa: BLE001 - the safety net itself
        if len(lines) <= 1:
            raw = pc.utf8_slice_codeunits(lines.cast(pa.large_string()), 0, 65536).cast(pa.string()) \
                if len(lines) else pa.array([], pa.string())
            reason = f"internal error in {name}: {type(exc).__name__}: {str(exc)[:200]}"
            return pa.table({"_line": numbers, "_raw": raw,
                             "_error": pa.array([reason] * len(lines), pa.string())})
        half = len(lines) // 2
        return pa.concat_tables([
            materialize(guarded(parse, lines.slice(0, half), numbers.slice(0, half), state, name)),
            materialize(guarded(parse, lines.slice(half), numbers.slice(half), state, name))],
            promote_options="default")


def _slice(arr, offset: int, length: int):
    out = arr.slice(offset, length)
    return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out


class BatchedSource(Source):
    """A syslog-borne source: lines batched by `Source.parse`, each batch parsed by
    `_parse(lines, numbers, state)` under `guarded`. `_parse` returns the parsed columns, or
    a `Query` that computes them, so that extraction, mapping and conform run as one SQL
    statement (`parse_lines` materializes it for other callers)."""

    def map_lines(self, lines: pa.Array, numbers: pa.Array, state: dict) -> "pa.Table | Query":
        return guarded(self._parse, lines, numbers, state, self.name)

    def parse_lines(self, lines: pa.Array, numbers: pa.Array, state: dict) -> pa.Table:
        return materialize(self.map_lines(lines, numbers, state))

    def _parse(self, lines: pa.Array, numbers: pa.Array, state: dict) -> "pa.Table | Query":
        """By default, lines of CEF records (see `map_cef_lines`)."""
        if not self.cef_keys():  # pragma: no cover - interface
            raise NotImplementedError
        return self.map_cef_lines(lines, numbers)

    # A source that reads CEF records maps them in two steps, the CEF fields (the syslog
    # header's `hostname` and `timestamp_text`, and `_syslog.parse_cef` of the message with
    # `cef_keys()`) and `map_cef` of those fields, so that the fields can also come from
    # elsewhere: `sentinel` reads them from a CommonSecurityLog export's columns.
    def map_cef_lines(self, lines: pa.Array, numbers: pa.Array, text: pa.Array | None = None) -> "pa.Table | Query":
        """`map_cef` of syslog lines; `text`: what their header and CEF are read from, when
        not the lines themselves."""
        head = S.arrays(S.syslog_header(lines if text is None else text, parse_time=False))
        return self.map_cef(head, S.parse_cef(head["message"], self.cef_keys()), lines, numbers)

    def cef_keys(self) -> tuple[str, ...]:
        """The CEF extension keys `map_cef` reads (none: the source reads no CEF)."""
        return ()

    def map_cef(self, head: dict, cef: pa.Table, lines: pa.Array,
                numbers: pa.Array) -> "pa.Table | Query":  # pragma: no cover
        """CEF records' fields (see `cef_keys`) -> the parsed columns; `lines` is the records' text."""
        raise NotImplementedError
