"""Files that already hold ASIM Network Session rows: JSON lines, CSV with a header (for
example an export of Sentinel's ASimNetworkSessionLogs table) and Parquet.

Columns that are not ASIM are ignored (listed in `state["ignored"]`), never an error.
Vocabulary columns (NetworkProtocol, NetworkDirection, DvcAction, ...) are kept verbatim, as
the Sentinel rule counts them: a workspace's ASIM table can hold "tcp" or "Allowed", and the
KQL makes a series of each (conform's strict_vocabulary=False). Only rows with no usable time
or an impossible number (a port outside 0-65535) are quarantined.
"""

from __future__ import annotations

import codecs
import csv
import json
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .. import asim, limits
from .base import BATCH_LINES, Batch, Query, Source, SourceError, finish, open_binary, read_lines

_KEYS = ("TimeGenerated", "EventStartTime", "DstPortNumber", "DstIpAddr")


def _json_lines_sql(columns) -> str:
    """JSON lines -> one row per line, the given ASIM fields as text (numbers keep their JSON
    text), `_error` for a line that is not a JSON object. json_transform's cost grows with
    the fields it looks up, so the store asks only for those it uses (Query.narrow)."""
    fields = ", ".join(f'"{c}": "VARCHAR"' for c in asim.COLUMNS if c in columns)
    # try(): a line that is not valid JSON (or not an object) gives NULL. That parses each
    # line once, where json_valid() first parsed every line twice.
    return ("SELECT n AS _line, line AS _raw, CASE WHEN j IS NULL THEN 'not a JSON object' END AS _error, "
            "unnest(j) FROM (SELECT n, line, CASE WHEN starts_with(ltrim(line), '{') "
            f"THEN try(json_transform(line, '{{{fields}}}')) END AS j FROM _lines)")


_JSON_LINES_SQL = _json_lines_sql(asim.COLUMNS)


class NativeAsim(Source):
    def sniff(self, head: bytes, path: str) -> bool:
        if head[:4] == b"PAR1":
            return True
        text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
        first = text.split("\n", 1)[0]
        if first.lstrip().startswith("{"):
            try:
                keys = set(json.loads(first))
            except ValueError:
                keys = {k for k in _KEYS if f'"{k}"' in first}
            return "DstPortNumber" in keys and ("TimeGenerated" in keys or "EventStartTime" in keys)
        header = {c.strip().strip('"') for c in first.split(",")}
        return "DstPortNumber" in header and ("TimeGenerated" in header or "EventStartTime" in header)

    def parse(self, path: str, batch_lines: int = BATCH_LINES) -> Iterator[Batch]:
        with open_binary(path) as f:
            head = f.peek(4)[:4] if hasattr(f, "peek") else b""
        if head == b"PAR1":
            yield from self._parquet(path, batch_lines)
            return
        with open_binary(path) as f:
            first = f.read(4096).lstrip(b"\xef\xbb\xbf").lstrip()
        if first.startswith(b"{"):
            yield from self._json_lines(path, batch_lines)
        else:
            yield from self._csv(path, batch_lines)

    # JSON lines: one object per line. Parsing (each line once, into a struct of text fields;
    # numbers keep their JSON text) and validation are one SQL statement (base.Query).
    def _json_lines(self, path: str, batch_lines: int) -> Iterator[Batch]:
        for lines, numbers in read_lines(path, batch_lines):
            yield _finish(Query(_JSON_LINES_SQL, {"_lines": pa.table({"line": lines, "n": numbers})},
                                _json_lines_sql), path, self.name)

    def _csv(self, path: str, batch_lines: int) -> Iterator[Batch]:
        invalid: list[tuple[int, str]] = []

        def on_invalid(row):
            if row.text and row.text.strip():
                invalid.append((row.number, row.text))
            return "skip"

        names = _csv_header(path)
        wanted = [n for n in names if n in asim.COLUMNS]
        try:
            reader = pacsv.open_csv(
                open_binary(path),
                read_options=pacsv.ReadOptions(block_size=1 << 22, use_threads=False, encoding=_LENIENT_UTF8),
                parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid, ignore_empty_lines=False),
                convert_options=pacsv.ConvertOptions(
                    column_types={n: pa.string() for n in names}, include_columns=wanted,
                    strings_can_be_null=True))
        except pa.ArrowInvalid as e:
            raise _unreadable(path, e) from None
        next_line = 2  # line 1 is the header
        for record_batch in _csv_batches(reader, path):
            table = pa.Table.from_batches([record_batch])
            # Valid rows take the line numbers that invalid rows (reported by now) did not.
            skip = np.array([n for n, _ in invalid], np.int64)
            candidates = np.arange(next_line, next_line + table.num_rows + len(skip), dtype=np.int64)
            lines = candidates[~np.isin(candidates, skip)][: table.num_rows]
            if len(lines):
                next_line = int(lines[-1]) + 1
            table = table.append_column("_line", pa.array(lines, pa.int64()))
            if wanted:  # a blank line parses as a row of nulls: it is not a record
                table = table.filter(_any_valid(table, wanted))
            raw = pc.binary_join_element_wise(*[pc.fill_null(table[c], "") for c in wanted], ",") \
                if wanted else pa.nulls(table.num_rows, pa.string())
            table = table.append_column("_raw", raw)
            batch = _finish(table, path, self.name)
            yield self._with_invalid(batch, path, invalid, names)
            invalid.clear()
        if invalid:
            yield self._with_invalid(Batch(asim.empty_table(), asim.QUARANTINE_SCHEMA.empty_table()),
                                     path, invalid, names)

    def _with_invalid(self, batch: Batch, path: str, invalid: list, names: list) -> Batch:
        if not invalid:
            return batch
        bad = asim.quarantine_rows(
            path, self.name, [n for n, _ in invalid],
            [f"expected {len(names)} CSV fields" for _ in invalid], [t for _, t in invalid])
        return Batch(batch.table, pa.concat_tables([batch.quarantine, bad]),
                     batch.skipped, batch.records + len(invalid))

    def _parquet(self, path: str, batch_lines: int) -> Iterator[Batch]:
        from .. import storage  # storage hook (issue 14): Parquet objects in cloud storage
        try:
            pf = pq.ParquetFile(storage.arrow_file(path))
        except (pa.ArrowException, OSError) as e:
            raise SourceError(f"{path}: not a readable Parquet file ({e})") from None
        wanted = [n for n in pf.schema_arrow.names if n in asim.COLUMNS]
        if not storage.is_url(path):
            yield from self._parquet_scans(path, storage.reading_path(path), pf.metadata, wanted, batch_lines)
            return
        offset = 0
        try:
            for group in _parquet_groups(pf.iter_batches(batch_size=batch_lines, columns=wanted),
                                         PARQUET_BATCHES * batch_lines):
                table = pa.Table.from_batches(group)
                n = table.num_rows
                table = table.append_column("_line", pa.array(range(offset + 1, offset + n + 1), pa.int64()))
                table = table.append_column("_raw", pa.nulls(n, pa.string()))
                offset += n
                yield _finish(table, path, self.name)
        except (pa.ArrowException, OSError) as e:
            raise SourceError(f"{path}: not a readable Parquet file ({e})") from None

    def _parquet_scans(self, path: str, name: str, metadata, wanted: list[str],
                       batch_lines: int) -> Iterator[Batch]:
        """A local Parquet file (opened by `name`) as statements over DuckDB's own reader,
        whole row groups at a time. The store runs each on its own connection (a Query
        without Arrow inputs), so rows go from the file into the store in one statement, on
        both cores when the file has several row groups; other readers run it on the compute
        engine. A row's line is its row number in the file (1-based)."""
        columns = "".join(f'"{c}", ' for c in wanted)
        scan = f"read_parquet('{name.replace(chr(39), chr(39) * 2)}', file_row_number = true)"
        first = 0
        for last in _row_group_ends(metadata, PARQUET_SCAN_BATCHES * batch_lines):
            batch = _finish(Query(f"SELECT {columns}file_row_number + 1 AS _line, NULL::VARCHAR AS _raw "
                                  f"FROM {scan} WHERE file_row_number BETWEEN {first} AND {last - 1}", {}),
                            path, self.name)
            batch.records = last - first
            first = last
            yield batch


# A local Parquet file is read by DuckDB in statements of whole row groups, each up to this many
# text batches of rows (DuckDB skips the row groups outside a statement's row numbers): its
# threads take separate row groups, and a statement costs about 0.1 s to plan and start.
PARQUET_SCAN_BATCHES = 10


def _row_group_ends(metadata, rows: int) -> Iterator[int]:
    """Row numbers (exclusive) where the file's runs of whole row groups, each of about `rows`
    rows or one row group, end."""
    end = held = 0
    for i in range(metadata.num_row_groups):
        n = metadata.row_group(i).num_rows
        end += n
        held += n
        if held >= rows:
            yield end
            held = 0
    if held:
        yield end


# A Parquet batch read through Arrow (an object in cloud storage) holds typed columns, no text
# to split: it takes the rows of several text batches (fewer statements to plan and run; 1M
# sessions ingested in 2.5 s instead of 3.2, at 540 instead of 390 MiB peak), as long as its
# Arrow data stays under PARQUET_BATCH_BYTES.
PARQUET_BATCHES = 4
PARQUET_BATCH_BYTES = 64 << 20


def _parquet_groups(record_batches, rows: int) -> Iterator[list]:
    """Record batches grouped into lists of about `rows` rows, or PARQUET_BATCH_BYTES."""
    group, held_rows, held_bytes = [], 0, 0
    for record_batch in record_batches:
        group.append(record_batch)
        held_rows += record_batch.num_rows
        held_bytes += record_batch.nbytes
        if held_rows >= rows or held_bytes >= PARQUET_BATCH_BYTES:
            yield group
            group, held_rows, held_bytes = [], 0, 0
    if group:
        yield group


# Arrow's CSV reader hands an invalid row to our handler as text, and a row that is not valid
# UTF-8 makes that decode fail inside Arrow (printed as an ignored exception, then the file
# fails). Decoding the input as UTF-8 with replacement first (a BOM dropped), as the line reader
# does, makes every row text. Registered as a codec because that is what Arrow's reader takes.
_LENIENT_UTF8 = "portlens_utf8_replace"


def _lenient_codec(name: str):
    if name != _LENIENT_UTF8:
        return None
    utf8 = codecs.lookup("utf-8-sig")

    class Decoder(codecs.IncrementalDecoder):
        def __init__(self, errors: str = "replace"):
            super().__init__("replace")
            self._decoder = utf8.incrementaldecoder("replace")

        def decode(self, data, final=False):
            return self._decoder.decode(data, final)

        def reset(self):
            self._decoder.reset()

    return codecs.CodecInfo(utf8.encode, lambda data, errors="replace": utf8.decode(data, "replace"),
                            incrementaldecoder=Decoder, incrementalencoder=utf8.incrementalencoder,
                            name=_LENIENT_UTF8)


codecs.register(_lenient_codec)


def _csv_header(path: str) -> list[str]:
    """The column names of an ASIM CSV file; a first line that names no ASIM column (binary
    junk, another format forced to this source) is a one-line SourceError."""
    limit = limits.current().max_record_bytes
    with open_binary(path) as f:
        line = f.readline(limit + 1)
    if len(line) > limit:
        raise SourceError(f"{path}: not ASIM rows: the first line is longer than {limit:,} bytes")
    try:
        names = next(csv.reader([line.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")]))
    except (csv.Error, StopIteration):
        names = []
    if not any(n in asim.COLUMNS for n in names):
        raise SourceError(f"{path}: not ASIM rows: neither JSON lines nor CSV whose header names ASIM "
                          "columns (TimeGenerated, DstPortNumber, ...)")
    return names


def _csv_batches(reader, path: str):
    """The CSV reader's batches; a parse error Arrow cannot skip (a row longer than a block,
    a broken quote) ends the file with a one-line SourceError."""
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as e:
            raise _unreadable(path, e) from None
        yield batch


def _unreadable(path: str, e: Exception) -> SourceError:
    detail = str(e).splitlines()[0] if str(e) else type(e).__name__
    return SourceError(f"{path}: not readable as ASIM CSV ({detail[:160]})")


def _finish(parsed: "pa.Table | Query", path: str, source: str) -> Batch:
    return finish(parsed, path, source, strict_vocabulary=False)


def _any_valid(table: pa.Table, columns: list[str]) -> pa.Array:
    mask = pc.is_valid(table[columns[0]])
    for c in columns[1:]:
        mask = pc.or_(mask, pc.is_valid(table[c]))
    return mask


SOURCE = NativeAsim(
    name="asim", vendor="", product="", priority=-10,
    forms=("ASIM NetworkSession rows as JSON lines", "CSV with a header row (e.g. an "
           "ASimNetworkSessionLogs export)", "Parquet"),
)
