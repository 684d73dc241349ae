"""Record framing shared by the source parsers: JSON records and
documents, JSON lines to columns, CSV exports with a header, Windows event XML records and
their fields, UTF-16 text lines, error rows, regex extraction and oversized batches."""

from __future__ import annotations

import codecs
import io
import json
import re
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .. import asim
from ._sql import col, lit
from .base import (BATCH_LINES, Query, materialize, open_binary,
                   read_head, read_lines, with_rows)

_NULL = pa.scalar(None, pa.string())


# ---- JSON lines split and error rows --------------------------------------------------------

def json_split(lines: pa.Array, numbers: pa.Array) -> tuple[pa.Table, pa.Table]:
    """(JSON objects, everything else) as tables of (line, n)."""
    batch = pa.table({"line": lines, "n": numbers})
    ok = asim.query("SELECT coalesce(CASE WHEN starts_with(ltrim(line), '{') AND json_valid(line) "
                    "THEN json_type(line) = 'OBJECT' END, false) AS ok FROM b", b=batch)["ok"]
    return batch.filter(ok), batch.filter(pc.invert(ok))


def error_rows(bad: pa.Table, reason: str) -> pa.Table:
    return pa.table({"_line": bad["n"], "_raw": bad["line"],
                     "_error": pa.repeat(pa.scalar(reason), bad.num_rows)})


# ---- JSON records: JSON lines or one (multi-line) document ---------------------------------

_MAX_RAW = 1 << 16  # quarantine keeps at most this much of an invalid whole document
_EMPTY_RECORDS = pa.schema([("_line", pa.int64()), ("_raw", pa.string()), ("rec", pa.string()),
                            ("_error", pa.string())])


def json_records(path: str, batch_lines: int = BATCH_LINES, arrays: tuple[str, ...] = ("records",)
                 ) -> Iterator[pa.Table]:
    """`json_record_batches` as Arrow tables (see there)."""
    for recs in json_record_batches(path, batch_lines, arrays):
        yield materialize(recs)


def json_record_batches(path: str, batch_lines: int = BATCH_LINES, arrays: tuple[str, ...] = ("records",)
                        ) -> Iterator["pa.Table | Query"]:
    """Yield tables of JSON records (`_line`, `_raw`, `rec` = the record's JSON text, `_error`).

    Accepts JSON lines (one object per line; objects concatenated on one line `}{` are split;
    an object holding one of `arrays` as an array is unwrapped into its elements) and one JSON
    document spread over several lines (pretty-printed): then `_line` is the record's ordinal.
    A line or document that is not a JSON object yields one row with `_error` set.
    """
    yield from json_batches(path, batch_lines, lambda doc: doc,
                            lambda lines, numbers: json_lines_query(lines, numbers, arrays), arrays)


def json_batches(path: str, batch_lines: int, of_document: Callable,
                 of_lines: Callable, arrays: tuple[str, ...] = ("records",)) -> Iterator:
    """A JSON file batch by batch: `of_lines(lines, numbers)` for each batch of JSON lines, or
    `of_document(table)` once for a document spread over several lines (its records' table:
    `_document`); the first lines decide which it is."""
    it = read_lines(path, batch_lines)
    first = next(it, None)
    if first is None:
        return
    if _is_document(first[0]):
        yield of_document(_document(path, arrays))
        return
    yield of_lines(*first)
    for lines, numbers in it:
        yield of_lines(lines, numbers)


def _is_document(lines: pa.Array) -> bool:
    """A multi-line document: the first line opens JSON but is not JSON by itself, and it is
    a bare bracket or the second line is not JSON either (else: JSON lines, first one broken)."""
    head = lines.slice(0, 2)
    valid = asim.query("SELECT json_valid(l) AS ok, trim(l) AS l FROM t", t=pa.table({"l": head}))
    ok = valid["ok"].to_pylist()
    first = valid["l"][0].as_py() or ""
    if ok[0] or not first.startswith(("{", "[")):
        return False
    return first in ("{", "[") or len(ok) < 2 or not ok[1]


def _unwrap_sql(arrays: tuple[str, ...]) -> str:
    """SQL: the elements of the first of `arrays` that is a JSON array in `doc` (else NULL)."""
    paths = ", ".join(f"'$.\"{k}\"'" for k in arrays)
    types = f"json_type(doc, [{paths}])"
    parts = [f"WHEN {types}[{i}] = 'ARRAY' THEN json_extract(doc, '$.\"{k}\"[*]')"
             for i, k in enumerate(arrays, start=1)]
    return f"CASE WHEN regexp_matches(doc, '\"({'|'.join(arrays)})\"') THEN CASE {' '.join(parts)} END END"


def json_lines_query(lines: pa.Array, numbers: pa.Array, arrays: tuple[str, ...]) -> Query:
    """The JSON records of a batch of lines (`_line`, `_raw`, `rec`, `_error`; see json_records)
    as one SQL statement, so a source can map and conform them in the same statement."""
    unwrap = _unwrap_sql(arrays)
    # try(json_type(...)): one parse gives validity and type (json_type alone raises on bad JSON)
    sql = f"""
        WITH l AS (SELECT n, line, try(json_type(line)) AS ty FROM _lines),
        p AS (SELECT n, line, ty, CASE WHEN ty IS NOT NULL THEN [line] ELSE
          string_split(regexp_replace(line, '\\}}\\s*\\{{\\s*"', '}}' || chr(30) || '{{"', 'g'), chr(30))
          END AS parts FROM l),
        q AS (SELECT n, line, ty, len(parts) AS np, unnest(parts) AS doc FROM p),
        v AS (SELECT n, line, np, doc, CASE WHEN np = 1 THEN ty ELSE try(json_type(doc)) END AS ty FROM q),
        docs AS (SELECT n AS _line, CASE WHEN np = 1 THEN line ELSE doc END AS _raw, doc,
                   coalesce(ty = 'OBJECT', false) AS obj, ty IS NOT NULL AS valid FROM v),
        w AS (SELECT _line, _raw, doc, {unwrap} AS arr FROM docs WHERE obj)
        SELECT _line, _raw, doc AS rec, NULL::VARCHAR AS _error FROM w WHERE arr IS NULL
        UNION ALL
        SELECT _line, _raw, CASE WHEN _error IS NULL THEN _raw END, _error FROM (
          SELECT _line, CAST(r AS VARCHAR) AS _raw,
            CASE WHEN coalesce(json_type(r), '') <> 'OBJECT' THEN 'record is not a JSON object' END AS _error
          FROM (SELECT _line, unnest(arr) AS r FROM w WHERE arr IS NOT NULL))
        UNION ALL
        SELECT _line, _raw, NULL::VARCHAR,
          CASE WHEN valid THEN 'not a JSON object' ELSE 'invalid JSON' END FROM docs WHERE NOT obj"""
    return Query(sql, {"_lines": pa.table({"line": lines, "n": numbers})})


def records_query(recs: "pa.Table | Query", sql: str, name: str = "g") -> "pa.Table | Query":
    """A mapping `sql` over the good JSON records (table `name`: `_line`, `_raw`, `rec`), plus the
    records framing rejected (their `_error`), as one Query."""
    if not isinstance(recs, Query):
        ok = pc.is_null(recs["_error"])
        bad = recs.filter(pc.invert(ok)).select(["_line", "_raw", "_error"])
        good = recs.filter(ok).select(["_line", "_raw", "rec"])
        if good.num_rows == 0:
            return bad
        return with_rows(Query(sql, {name: good}), bad)
    return Query(f"WITH _recs AS ({recs.sql}), {name} AS (SELECT _line, _raw, rec FROM _recs WHERE _error IS NULL) "
                 f"SELECT * FROM ({sql}) UNION ALL BY NAME SELECT _line, _raw, _error FROM _recs "
                 f"WHERE _error IS NOT NULL", recs.inputs)


def _document(path: str, arrays: tuple[str, ...]) -> pa.Table:
    """A whole (multi-line) JSON document: records numbered by their ordinal."""
    with open_binary(path) as f:
        data = f.read().decode("utf-8", errors="replace").lstrip("\ufeff")
    table = pa.table({"doc": [data]})
    ok = asim.query("SELECT json_valid(doc) AS ok, "
                    "coalesce(CASE WHEN json_valid(doc) THEN json_type(doc) IN ('OBJECT', 'ARRAY') END, false) AS s "
                    "FROM t", t=table)
    if not ok["ok"][0].as_py():
        line, reason = _json_error(data)
        return pa.table({"_line": [line], "_raw": [data[:_MAX_RAW]], "rec": [None], "_error": [reason]},
                        schema=_EMPTY_RECORDS)
    if not ok["s"][0].as_py():
        return pa.table({"_line": [1], "_raw": [data[:_MAX_RAW]], "rec": [None],
                         "_error": ["JSON document is not an object or array"]}, schema=_EMPTY_RECORDS)
    unwrap = _unwrap_sql(arrays)
    recs = asim.query(
        f"WITH w AS (SELECT doc, CASE WHEN json_type(doc) = 'ARRAY' THEN json_extract(doc, '$[*]') "
        f"  ELSE {unwrap} END AS arr FROM t) "
        "SELECT 1::BIGINT AS _line, doc AS _raw, doc AS rec, NULL::VARCHAR AS _error FROM w WHERE arr IS NULL "
        "UNION ALL "
        "SELECT i::BIGINT AS _line, CAST(r AS VARCHAR), CAST(r AS VARCHAR), "
        "  CASE WHEN coalesce(json_type(r), '') <> 'OBJECT' THEN 'record is not a JSON object' END "
        "FROM (SELECT unnest(arr) AS r, unnest(range(1, len(arr) + 1)) AS i FROM w WHERE arr IS NOT NULL)",
        t=table).cast(_EMPTY_RECORDS)
    return recs.set_column(2, "rec", pc.if_else(pc.is_valid(recs["_error"]),
                                                pa.scalar(None, pa.string()), recs["rec"]))


def _json_error(data: str) -> tuple[int, str]:
    try:
        json.loads(data)
    except json.JSONDecodeError as e:
        return e.lineno, f"invalid JSON document: {e.msg} at line {e.lineno} column {e.colno} (char {e.pos})"
    except (RecursionError, ValueError) as e:  # pragma: no cover - depth or number limits
        return 1, f"invalid JSON document: {type(e).__name__}"
    return 1, "invalid JSON document (rejected by the JSON reader)"


# ---- CSV with a header, quoted values may span lines (Windows exports) -----------------------

MAX_CSV_RECORD_CHARS = 1 << 20


def header_name(name: str) -> str:
    """Normalize an export header: quotes, BOM, and a ` [UTC]`-style suffix removed."""
    name = name.strip().lstrip("\ufeff").strip().strip('"').strip()
    return re.sub(r"\s*\[[^\]]*\]$", "", name)


def csv_records(path: str, wanted: tuple[str, ...], batch_lines: int = BATCH_LINES) -> Iterator[pa.Table]:
    """Yield tables of `_line`, `_raw`, `_error` and one text column per name in `wanted`
    (matched case-insensitively against the header; NULL when the header lacks it or the
    value is empty). A record whose quotes are unbalanced or whose field count differs from
    the header's is returned with `_error` set."""
    header: list[str] | None = None
    carry: tuple[str, int] | None = None
    for lines, numbers in read_text_lines(path, batch_lines):
        carried = carry is not None  # (a record carried over may hold line breaks)
        if carried:
            lines = pa.concat_arrays([pa.array([carry[0]], pa.string()), lines])
            numbers = pa.concat_arrays([pa.array([carry[1]], pa.int64()), numbers])
            carry = None
        # (Arrow's regex count is several times faster than its plain-substring count)
        quotes = pc.count_substring_regex(lines, '"').to_numpy(zero_copy_only=False).astype(np.int64)
        total = np.cumsum(quotes)
        starts = ((total - quotes) % 2) == 0  # even number of quotes before: a new record
        group = np.cumsum(starts)
        extra = []
        if len(total) and total[-1] % 2:  # the last record has an open quoted value
            tail = group == group[-1]
            idx = np.flatnonzero(tail)
            text = "\n".join(pc.take(lines, pa.array(idx)).to_pylist())
            first = int(numbers[int(idx[0])].as_py())
            if len(text) > MAX_CSV_RECORD_CHARS:
                extra.append(error_rows(pa.table({"n": [first], "line": [text[:65536]]}),
                                        "unterminated quoted value (record longer than 1 MiB)"))
            else:
                carry = (text, first)
            keep = pa.array(~tail)
            lines, numbers, group, starts = lines.filter(keep), numbers.filter(keep), group[~tail], starts[~tail]
        records = _join_groups(lines, numbers, group, starts)
        if header is None and records.num_rows:
            header = [header_name(h) for h in _split_csv(records.slice(0, 1))["_f"][0].as_py() or []]
            records = records.slice(1)
        if header is not None and records.num_rows:
            yield _csv_columns(records, header, wanted, one_line=not carried and bool(starts.all()))
        for e in extra:
            yield e
    if carry is not None:
        yield error_rows(pa.table({"n": [carry[1]], "line": [carry[0][:65536]]}),
                         "unterminated quoted value at the end of the file")


def _join_groups(lines, numbers, group, starts) -> pa.Table:
    if starts.all():
        return pa.table({"_line": numbers, "_raw": lines})
    t = pa.table({"line": lines, "n": numbers, "g": pa.array(group)})
    return asim.query("SELECT min(n) AS _line, string_agg(line, e'\\n' ORDER BY n) AS _raw "
                      "FROM t GROUP BY g ORDER BY _line", t=t)


def _split_csv(records: pa.Table) -> pa.Table:
    return asim.query(
        "SELECT *, array_to_string(_m, '') = ',' || _raw AS _ok, "
        "list_transform(_m, lambda x: CASE WHEN starts_with(x, ',\"') "
        "THEN replace(x[3:-2], '\"\"', '\"') ELSE x[2:] END) AS _f "
        "FROM (SELECT *, regexp_extract_all(',' || _raw, ',(\"(?:[^\"]|\"\")*\"|[^,\"]*)', 0) AS _m "
        "FROM records)", records=records)


def _csv_columns(records: pa.Table, header: list[str], wanted: tuple[str, ...], one_line: bool = False) -> pa.Table:
    """Split framed CSV records into the wanted columns: Arrow's CSV reader when it stays
    aligned with the records (the usual case), the regex splitter otherwise. one_line: every
    record is one line, so no value holds a line break (Arrow's reader is then about a fifth
    faster, told so)."""
    fast = _csv_columns_arrow(records, header, wanted, one_line)
    return fast if fast is not None else _csv_columns_regex(records, header, wanted)


def _csv_columns_arrow(records: pa.Table, header: list[str], wanted: tuple[str, ...],
                       one_line: bool = False) -> pa.Table | None:
    raws = records["_raw"].combine_chunks() if isinstance(records["_raw"], pa.ChunkedArray) else records["_raw"]
    n, width = records.num_rows, len(header)
    if not n or not width:
        return None
    # the batch's records as one UTF-8 buffer for Arrow's reader (no Python str in between)
    block = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, n], pa.int32()), raws), "\n")[0].as_buffer()
    invalid: list[tuple[int, int]] = []

    def on_invalid(row):
        invalid.append((row.number, row.actual_columns))
        return "skip"

    names = [f"f{i}" for i in range(width)]
    try:
        table = pacsv.read_csv(
            pa.BufferReader(block),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=False, block_size=1 << 26),
            parse_options=pacsv.ParseOptions(newlines_in_values=not one_line, invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in names},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, UnicodeError, OverflowError):
        return None
    bad = np.array([i for i, _ in invalid], np.int64) - 1
    if table.num_rows + len(bad) != n or (len(bad) and (bad.min() < 0 or bad.max() >= n)):
        return None  # Arrow's quoting disagreed with the record framing: use the regex path
    position = {}
    for i, name in enumerate(header):
        position.setdefault(name.lower(), i)
    if len(bad):
        good = pa.array(np.setdiff1d(np.arange(n), bad))
        out = {"_line": pc.take(records["_line"], good), "_raw": pc.take(raws, good)}
    else:  # every record read: no copies
        good = range(n)
        out = {"_line": records["_line"], "_raw": raws}
    out["_error"] = pa.nulls(len(good), pa.string())
    for name in wanted:
        i = position.get(name.lower())
        if i is None:
            out[name] = pa.nulls(len(good), pa.string())
        else:
            values = pc.utf8_trim_whitespace(table[f"f{i}"].combine_chunks())
            out[name] = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
    result = pa.table(out)
    if len(bad):
        errors = pa.table({
            "_line": pc.take(records["_line"], pa.array(bad)), "_raw": pc.take(raws, pa.array(bad)),
            "_error": pa.array([f"expected {width} CSV fields, found {k}" for _, k in invalid], pa.string())})
        result = pa.concat_tables([result, errors], promote_options="default")
    return result


def _csv_columns_regex(records: pa.Table, header: list[str], wanted: tuple[str, ...]) -> pa.Table:
    position = {}
    for i, name in enumerate(header):
        position.setdefault(name.lower(), i + 1)
    cols = []
    for name in wanted:
        i = position.get(name.lower())
        cols.append(f"NULLIF(trim(_f[{i}]), '') AS {col(name)}" if i else f"NULL::VARCHAR AS {col(name)}")
    n = len(header)
    return asim.query(
        f"SELECT _line, _raw, CASE WHEN NOT _ok THEN 'malformed CSV quoting' "
        f"WHEN len(_f) <> {n} THEN 'expected {n} CSV fields, found ' || len(_f) END AS _error, "
        f"{', '.join(cols)} FROM s", s=_split_csv(records))


# ---- JSON lines -> columns by JSON path -------------------------------------------------------

def json_columns(path: str, paths: dict[str, list[str]], batch_lines: int = BATCH_LINES) -> Iterator[pa.Table]:
    """JSON lines: yield tables of `_line`, `_raw`, `_error` and one text column per key of
    `paths`, the first non-NULL of its JSON paths (objects and arrays come back as JSON text)."""
    for lines, numbers in read_text_lines(path, batch_lines):
        yield materialize(json_columns_query(lines, numbers, paths))


def json_columns_query(lines: pa.Array, numbers: pa.Array, paths: dict[str, list[str]]) -> Query:
    """`json_columns` for one batch of lines, as SQL (a source maps it in the same statement)."""
    flat = [p for ps in paths.values() for p in ps]
    plist = ", ".join(lit(p) for p in flat)
    cols, i = [], 1
    for name, ps in paths.items():
        cols.append(f"NULLIF(trim(coalesce({', '.join(f'_v[{i + k}]' for k in range(len(ps)))})), '') AS {col(name)}")
        i += len(ps)
    sql = (f"SELECT n AS _line, line AS _raw, CASE WHEN _v IS NULL THEN 'not a JSON object' END AS _error, "
           f"{', '.join(cols)} FROM (SELECT n, line, {json_object_values(plist)} AS _v FROM _lines)")
    return Query(sql, {"_lines": pa.table({"line": lines, "n": numbers})})


def json_object_values(paths: str) -> str:
    """SQL over `line`: the text at each JSON path of `paths` (SQL list items) when the line is
    a JSON object (what json_split keeps), else NULL. One parse of the line instead of three: a
    line that starts with `{` and parses is an object, and try() turns a parse error into NULL."""
    return f"CASE WHEN starts_with(ltrim(line), '{{') THEN try(json_extract_string(line, [{paths}])) END"


def file_kind(path: str) -> str:
    """'xml', 'json' or 'csv' from the first non-blank characters of the file."""
    text = head_text(read_head(path, 4096)).lstrip()
    if text.startswith("{"):
        return "json"
    if text.startswith("<") or "<Event" in text.split("\n", 1)[0]:
        return "xml"
    return "csv"


# ---- reading: UTF-8 or UTF-16 text, as (lines, numbers) batches --------------------------------

def read_text_lines(path: str, batch_lines: int = BATCH_LINES) -> Iterator[tuple[pa.Array, pa.Array]]:
    """base.read_lines, plus UTF-16 files (Windows event exports) detected by their BOM."""
    with open_binary(path) as f:
        bom = f.read(2)
    if bom not in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        yield from read_lines(path, batch_lines)
        return
    number = 0
    carry = ""
    with io.TextIOWrapper(open_binary(path), encoding="utf-16", errors="replace", newline="") as f:
        while True:
            chunk = f.read(4 << 20)
            data = carry + chunk
            if chunk:
                cut = max(data.rfind("\n"), data.rfind("\r"))
                if cut < 0 or (data[cut] == "\r" and cut == len(data) - 1):
                    carry = data
                    continue
                text, carry = data[:cut + 1], data[cut + 1:]
            else:
                text, carry = data, ""
            text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
            if text.endswith("\n") and chunk:
                text = text[:-1]
            lines = pc.split_pattern(pa.array([text], pa.large_string()), "\n").flatten().cast(pa.string())
            numbers = pa.array(np.arange(number + 1, number + 1 + len(lines), dtype=np.int64))
            number += len(lines)
            keep = pc.not_equal(pc.utf8_length(pc.utf8_trim_whitespace(lines)), 0)
            lines, numbers = lines.filter(keep), numbers.filter(keep)
            for start in range(0, len(lines), batch_lines):
                yield lines.slice(start, batch_lines), numbers.slice(start, batch_lines)
            if not chunk:
                break


def head_text(head: bytes) -> str:
    if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return head[: len(head) // 2 * 2].decode("utf-16", errors="replace")
    return head.decode("utf-8", errors="replace").lstrip("\ufeff")


# ---- Windows event XML: lines -> one row per <Event>...</Event> record ------------------------

MAX_RECORD_CHARS = 4 << 20
_START = r"<Event[\s>]"
_EVENT = r"(?s)<Event[\s>].*?</Event>"
_FRAMING = r"(?s)<\?xml.*?\?>|<!--.*?-->|</?Events\b[^>]*>|\s+"


def xml_records(path: str, batch_lines: int = BATCH_LINES) -> Iterator[pa.Table]:
    """Yield tables of `_line` (the line where the record starts), `_raw` (the record text),
    `_error` (truncated record) and `_skip` (a line outside any record that is not framing).

    A line belongs to the record open before it (a running count of `<Event` starts minus
    `</Event>` ends, floored at zero); a record that is still open at the end of a batch is
    carried to the next one as a single pseudo-line."""
    carry: tuple[str, int] | None = None
    for lines, numbers in read_text_lines(path, batch_lines):
        if carry is not None:
            lines = pa.concat_arrays([pa.array([carry[0]], pa.string()), lines])
            numbers = pa.concat_arrays([pa.array([carry[1]], pa.int64()), numbers])
            carry = None
        table, carry = _frame(lines, numbers)
        if carry is not None and len(carry[0]) > MAX_RECORD_CHARS:
            table = pa.concat_tables([table, _framing_error(carry, "truncated: <Event> record "
                                      "longer than 4 MiB with no </Event>")], promote_options="default")
            carry = None
        if table.num_rows:
            yield table
    if carry is not None:
        yield _framing_error(carry, "truncated: <Event> with no </Event> before the end of the file")


def _framing_error(carry: tuple[str, int], reason: str) -> pa.Table:
    return pa.table({"_line": pa.array([carry[1]], pa.int64()),
                     "_raw": pa.array([carry[0][:65536]], pa.string()),
                     "_error": pa.array([reason], pa.string()),
                     "_skip": pa.array([False])})


def _frame(lines: pa.Array, numbers: pa.Array) -> tuple[pa.Table, tuple[str, int] | None]:
    if _one_event_per_line(lines):  # (how wevtutil and most collectors write: the line is the record)
        return pa.table({"_line": numbers, "_raw": lines, "_error": pa.nulls(len(lines), pa.string()),
                         "_skip": pa.repeat(pa.scalar(False), len(lines))}), None
    starts = pc.count_substring_regex(lines, _START).to_numpy(zero_copy_only=False).astype(np.int64)
    # (Arrow's regex count is about 4x faster than its plain-substring count here)
    ends = pc.count_substring_regex(lines, "</Event>").to_numpy(zero_copy_only=False).astype(np.int64)
    # Every line with an `<Event` start begins a record (records do not nest: an unclosed one
    # before it was truncated); the following lines belong to it while it is open.
    has_start = starts > 0
    group = np.cumsum(has_start)
    running = np.cumsum(starts - ends)
    before = np.concatenate([[0], running[:-1]])
    start_idx = np.flatnonzero(has_start)
    base = np.where(group > 0, before[start_idx[np.maximum(group - 1, 0)]] if len(start_idx) else 0, 0)
    inside = has_start | ((group > 0) & (before - base > 0))
    carry = None
    if len(lines) and group[-1] > 0 and running[-1] - base[-1] > 0:  # last record still open
        tail = inside & (group == group[-1])
        idx = np.flatnonzero(tail)
        carry = ("\n".join(pc.take(lines, pa.array(idx)).to_pylist()), int(numbers[int(idx[0])].as_py()))
        inside &= ~tail
    parts = []
    # the common case, one whole event on its own line: the line is the record
    size = np.bincount(group[inside], minlength=group[-1] + 1 if len(group) else 1)
    single = has_start & inside & (starts == 1) & (ends >= 1) & (size[group] == 1)
    if single.any():
        keep = pa.array(single)
        parts.append(pa.table({"_line": numbers.filter(keep), "_raw": lines.filter(keep)}))
    multi = inside & ~single
    if multi.any():
        keep = pa.array(multi)
        t = pa.table({"line": lines.filter(keep), "n": numbers.filter(keep),
                      "g": pa.array(group[multi]), "starts": pa.array(starts[multi])})
        parts.append(asim.query(f"""
            WITH recs AS (
              SELECT min(n) AS n, string_agg(line, e'\\n' ORDER BY n) AS text, sum(starts) AS starts
              FROM t GROUP BY g),
            events AS (SELECT n, text, starts, regexp_extract_all(text, {lit(_EVENT)}) AS ev FROM recs)
            SELECT n AS _line, unnest(ev) AS _raw, NULL::VARCHAR AS _error FROM events WHERE len(ev) > 0
            UNION ALL
            SELECT n, left(text, 65536), 'truncated: <Event> with no </Event>'
            FROM (SELECT n, text, unnest(range(CAST(starts - len(ev) AS BIGINT))) FROM events
                  WHERE starts > len(ev))""", t=t))
    outside = ~inside
    if carry is not None:
        outside &= ~tail
    if outside.any():
        keep = pa.array(outside)
        rest = pc.replace_substring_regex(lines.filter(keep), _FRAMING, "")
        garbage = pc.not_equal(pc.utf8_length(rest), 0)
        parts.append(pa.table({"_line": numbers.filter(keep).filter(garbage),
                               "_raw": lines.filter(keep).filter(garbage)})
                     .append_column("_skip", pa.repeat(pa.scalar(True), pc.sum(garbage).as_py() or 0)))
    if not parts:
        return pa.table({"_line": pa.array([], pa.int64()), "_raw": pa.array([], pa.string()),
                         "_error": pa.array([], pa.string()), "_skip": pa.array([], pa.bool_())}), carry
    out = pa.concat_tables(parts, promote_options="default")
    for name, typ in (("_error", pa.string()), ("_skip", pa.bool_())):
        if name not in out.column_names:
            out = out.append_column(name, pa.nulls(out.num_rows, typ))
    out = out.set_column(out.schema.get_field_index("_skip"), "_skip", pc.fill_null(out["_skip"], False))
    order = out["_line"].to_numpy()
    if np.all(order[1:] >= order[:-1]):  # in line order already (the usual case): no copy
        return out, carry
    return out.take(pc.sort_indices(out["_line"])), carry


def _one_event_per_line(lines: pa.Array) -> bool:
    """Does every line hold exactly one whole `<Event>` record and nothing else? Then framing
    is the identity. One scan of the text: a line that opens with an event start and closes
    with an end holds at least those two tags, and exactly two means no other record is in it."""
    if not len(lines):
        return False
    framed = pc.and_(pc.match_substring_regex(lines, "^" + _START), pc.ends_with(lines, "</Event>"))
    if not pc.all(framed).as_py():
        return False
    return pc.all(pc.equal(pc.count_substring_regex(lines, f"{_START}|</Event>"), 2)).as_py()


# ---- event XML field extraction ------------------------------------------------------------------

_DATA = r"""^Name\s*=\s*["'](?P<k>[^"']*)["']\s*(?:/>|>(?P<v>[^<]*)</Data>)"""  # after "<Data "
# The form Windows writes, `Name="K">V</Data>`, by a pattern without alternatives: about half
# the cost per piece. Where it matches, _DATA matches with the same groups (the name excludes
# both quote characters in both); the other pieces are matched by _DATA.
_DATA_USUAL = r"""^Name="(?P<k>[^"']*)">(?P<v>[^<]*)</Data>"""
_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&amp;", "&"))


def _clean(values: pa.Array) -> pa.Array:
    """XML-unescape and trim a text column; empty -> NULL."""
    values = pc.utf8_trim_whitespace(values)
    if pc.any(pc.fill_null(pc.match_substring(values, "&"), False)).as_py():
        for entity, char in _ENTITIES:
            values = pc.replace_substring(values, entity, char)
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)


def event_fields(t: pa.Table, data: tuple[str, ...], system: tuple[str, ...] = (),
                 attributes: tuple[tuple[str, str], ...] = (), record: str = "_raw") -> pa.Table:
    """Add to `t` one text column per `<Data Name=...>` in `data` (names matched
    case-insensitively, first occurrence wins, NULL when absent or empty), per `<System>`
    child tag in `system` and per (tag, attribute) in `attributes` (column `tag@attribute`).

    Vectorized with Arrow: the records are split on `<Data ` once, every piece is matched by
    one anchored regex, the pieces' names are looked up among the wanted ones in one pass,
    and each wanted name's first piece per record is found with NumPy."""
    raw = t[record].combine_chunks() if isinstance(t[record], pa.ChunkedArray) else t[record]
    for name, column in zip(data, _data_fields(raw, data)):
        t = t.append_column(name, column)
    for tag in system:
        m = pc.extract_regex(raw, rf"<{tag}(?:\s[^>]*)?>(?P<x>[^<]*)</{tag}>")
        t = t.append_column(tag, _clean(m.field("x")))
    for tag, attr in attributes:
        m = pc.extract_regex(raw, rf"""<{tag}\s[^>]*?\b{attr}\s*=\s*["'](?P<x>[^"']*)["']""")
        t = t.append_column(f"{tag}@{attr}", _clean(m.field("x")))
    return t


def _data_fields(raw: pa.Array, data: tuple[str, ...]) -> list[pa.Array]:
    """event_fields' `<Data>` columns, in the order of `data`."""
    n = len(raw)
    if not data:
        return []
    parts = pc.split_pattern(raw, "<Data ")
    parent = pc.list_parent_indices(parts).to_numpy()
    pieces = parts.flatten()
    kv = pc.extract_regex(pieces, _DATA_USUAL)
    keys, values = kv.field("k"), kv.field("v")
    other = pc.and_(pc.is_null(kv), pc.starts_with(pieces, "Name"))
    if pc.any(other).as_py():
        rest = pc.extract_regex(pieces.filter(other), _DATA)
        matched = pc.is_valid(rest)
        keys = pc.replace_with_mask(keys, other, pc.if_else(matched, rest.field("k"), ""))
        values = pc.replace_with_mask(values, other, rest.field("v"))
    # which wanted name each piece gives: exact spelling first, then trimmed and in any case
    code = _index_in(keys, data)
    unsure = np.flatnonzero((code < 0) & pc.not_equal(pc.fill_null(keys, ""), "").to_numpy(zero_copy_only=False))
    if len(unsure):
        folded = pc.utf8_lower(pc.utf8_trim_whitespace(keys.take(pa.array(unsure))))
        code[unsure] = _index_in(folded, tuple(d.lower() for d in data))
    values = _clean(values)
    hit = np.flatnonzero(code >= 0)
    hit_code, hit_row = code[hit], parent[hit]
    columns = []
    for i in range(len(data)):
        mine = hit_code == i
        h, rows = hit[mine], hit_row[mine]  # (both ascending: pieces are in record order)
        first = np.ones(len(rows), bool)
        first[1:] = rows[1:] != rows[:-1]
        index = np.zeros(n, np.int64)
        present = np.zeros(n, bool)
        index[rows[first]] = h[first]
        present[rows[first]] = True
        columns.append(pc.take(values, pa.array(index, mask=~present)))
    return columns


def _index_in(values: pa.Array, names: tuple[str, ...]) -> np.ndarray:
    """The position of each value in `names`, -1 where it is not one of them."""
    found = pc.index_in(values, value_set=pa.array(names, pa.string()))
    return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)


# ---- regex extraction and batches too large for 32-bit offsets --------------------------------

def extract_groups(values: pa.Array, pattern: str) -> tuple[pa.Array, dict[str, pa.Array]]:
    """Named groups of `pattern` as columns ("" -> NULL; `name2`, `name3` merge into `name`) and
    the mask of values that matched."""
    struct = pc.extract_regex(values, pattern)
    matched = pc.fill_null(pc.is_valid(struct), False)
    out: dict[str, pa.Array] = {}
    for i, fld in enumerate(struct.type):
        col = struct.field(i)
        col = pc.if_else(pc.equal(col, ""), _NULL, col)
        name = fld.name.rstrip("0123456789")
        out[name] = pc.coalesce(out[name], col) if name in out else col
    return matched, out
