"""JSON records straight to the text at chosen JSON paths, one parse per record.

`_records.json_record_batches` frames records first (is the line JSON, an object, a
`{"records": [...]}` wrapper, objects run together `}{`?) and a source then extracts its
fields from each record: the text is parsed twice, and the framing statement's shared
intermediate is materialised. Almost every line of a JSON-lines file is a plain object,
though, and for those the framing is the identity: `_line` is the line number, `_raw` and the
record are the line. So a line that is plainly one object (it opens with `{` and holds no
wrapper key and no `}{"` join; `_plain`, Arrow, in the reading thread) has its fields
extracted directly, a parse error there meaning invalid JSON (JSON that opens with `{` and
parses is an object). The other lines, few or none, go through the full framing, in the
same statement.

`json_field_batches` yields Queries of `_line`, `_raw`, `_error` (the framing's reason, NULL
for a record) and `_v`, the list of texts at `paths` (NULL when `_error` is set): the same
records, numbers and reasons as json_record_batches gives, and `_v` what
`json_extract_string(rec, paths)` gives for its `rec`.
"""

from __future__ import annotations

import re
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from ._kv_sql import chunked
from ._records import _document, _is_document, json_lines_query, tracked_lines
from ._sql import lit
from .base import BATCH_LINES, Query


def json_field_batches(path: str, paths: list[str], batch_lines: int = BATCH_LINES,
                       arrays: tuple[str, ...] = ("records",), progress: dict | None = None) -> Iterator[Query]:
    """The JSON records of a file (see json_record_batches) as `_line`, `_raw`, `_error`, `_v`
    (the texts at `paths`), one Query per batch of lines."""
    it = tracked_lines(path, batch_lines, progress)
    first = next(it, None)
    if first is None:
        return
    lines, numbers = first
    if _is_document(lines):
        yield record_fields(Query("SELECT * FROM _doc", {"_doc": _document(path, arrays)}), paths)
        return
    yield json_lines_fields(lines, numbers, paths, arrays)
    for lines, numbers in it:
        yield json_lines_fields(lines, numbers, paths, arrays)


def record_fields(recs: Query, paths: list[str]) -> Query:
    """Framed records (`_line`, `_raw`, `rec`, `_error`) -> `_line`, `_raw`, `_error`, `_v`."""
    return Query(f"SELECT _line, _raw, _error, CASE WHEN _error IS NULL THEN "
                 f"json_extract_string(rec, {_path_list(paths)}) END AS _v FROM ({recs.sql})", recs.inputs)


def json_lines_fields(lines: pa.Array, numbers: pa.Array, paths: list[str],
                      arrays: tuple[str, ...] = ("records",)) -> Query:
    """One batch of JSON lines -> `_line`, `_raw`, `_error`, `_v` (see the module doc)."""
    plain = _plain(lines, arrays)
    # try(): a line that does not parse gives NULL instead of failing the statement
    sql = (f"SELECT n AS _line, line AS _raw, CASE WHEN _v IS NULL THEN 'invalid JSON' END AS _error, _v "
           f"FROM (SELECT n, line, try(json_extract_string(line, {_path_list(paths)})) AS _v FROM _plain)")
    if plain.true_count == len(lines):
        return Query(sql, {"_plain": chunked(pa.table({"line": lines, "n": numbers}))})
    rest = record_fields(json_lines_query(lines.filter(pc.invert(plain)), numbers.filter(pc.invert(plain)),
                                          arrays), paths)
    inputs = {**rest.inputs}
    if plain.true_count:
        inputs["_plain"] = chunked(pa.table({"line": lines.filter(plain), "n": numbers.filter(plain)}))
        return Query(f"{sql} UNION ALL {rest.sql}", inputs)
    return rest


def _plain(lines: pa.Array, arrays: tuple[str, ...]) -> pa.Array:
    """True for a line that, if it parses, is one JSON object and one record: it opens with
    `{` (after JSON blanks), names none of the wrapper keys `arrays` and has no `}{"` where
    json_lines_query would split objects run together. (Arrow's regex search is several times
    faster than its plain-substring one.)"""
    unusual = "|".join([*(re.escape(f'"{key}"') for key in arrays), r'\}\s*\{\s*"'])
    return pc.and_(pc.match_substring_regex(lines, r"^[ \t]*\{"),
                   pc.invert(pc.match_substring_regex(lines, unusual)))


def _path_list(paths: list[str]) -> str:
    return f"[{', '.join(lit(p) for p in paths)}]"
