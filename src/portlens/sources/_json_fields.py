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

`json_field_batches` yields `Fields`: SQL over Arrow inputs giving `_line`, `_raw`, `_error`
(the framing's reason, NULL for a record) and `_v`, the list of texts at the JSON paths the
source asks for (NULL when `_error` is set): the same records, numbers and reasons as
json_record_batches gives, and `_v` what `json_extract_string(rec, paths)` gives for its
`rec`. The paths are chosen when the statement is built, not when the batch is read, because
each path costs (about a tenth of a JSON parse): a source that is asked for fewer columns
(`Query.narrow`) reads fewer paths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterator

import pyarrow as pa
import pyarrow.compute as pc

from ._records import json_batches, json_lines_query
from ._sql import lit
from .base import BATCH_LINES, Query


@dataclass
class Fields:
    """A batch of JSON records: `sql(paths)` is the statement over `inputs` (see the module doc)."""
    inputs: dict
    sql: Callable[[list[str]], str]


def json_field_batches(path: str, batch_lines: int = BATCH_LINES, arrays: tuple[str, ...] = ("records",)
                       ) -> Iterator[Fields]:
    """The JSON records of a file (see json_record_batches), one `Fields` per batch of lines."""
    yield from json_batches(path, batch_lines,
                            lambda doc: record_fields(Query("SELECT * FROM _doc", {"_doc": doc})),
                            lambda lines, numbers: json_lines_fields(lines, numbers, arrays), arrays)


def record_fields(recs: Query) -> Fields:
    """Framed records (`_line`, `_raw`, `rec`, `_error`) as `Fields`."""
    return Fields(recs.inputs, lambda paths: (
        f"SELECT _line, _raw, _error, CASE WHEN _error IS NULL THEN json_extract_string(rec, {_path_list(paths)}) "
        f"END AS _v FROM ({recs.sql})"))


def json_lines_fields(lines: pa.Array, numbers: pa.Array, arrays: tuple[str, ...] = ("records",)) -> Fields:
    """One batch of JSON lines as `Fields` (see the module doc)."""
    plain = _plain(lines, arrays)

    def direct(paths: list[str]) -> str:
        # try(): a line that does not parse gives NULL instead of failing the statement
        return (f"SELECT n AS _line, line AS _raw, CASE WHEN _v IS NULL THEN 'invalid JSON' END AS _error, _v "
                f"FROM (SELECT n, line, try(json_extract_string(line, {_path_list(paths)})) AS _v FROM _plain)")
    if plain.true_count == len(lines):
        return Fields({"_plain": pa.table({"line": lines, "n": numbers})}, direct)
    rest = record_fields(json_lines_query(lines.filter(pc.invert(plain)), numbers.filter(pc.invert(plain)), arrays))
    if not plain.true_count:
        return rest
    inputs = {**rest.inputs, "_plain": pa.table({"line": lines.filter(plain), "n": numbers.filter(plain)})}
    return Fields(inputs, lambda paths: f"{direct(paths)} UNION ALL {rest.sql(paths)}")


def _plain(lines: pa.Array, arrays: tuple[str, ...]) -> pa.Array:
    """True for a line that, if it parses, is one JSON object and one record: it opens with
    `{`, names none of the wrapper keys `arrays` and has no `}{"` where json_lines_query would
    split objects run together. (Arrow searches one literal by regex several times faster
    than by its plain-substring search, or than an alternation of several.)"""
    plain = pc.starts_with(lines, "{")
    for pattern in [*(re.escape(f'"{key}"') for key in arrays), r'\}\s*\{\s*"']:
        plain = pc.and_(plain, pc.invert(pc.match_substring_regex(lines, pattern)))
    return plain


def _path_list(paths: list[str]) -> str:
    return f"[{', '.join(lit(p) for p in paths)}]"
