"""_json_fields: JSON lines to the texts at JSON paths, plain objects without the framing
statement, must give what the framing (json_lines_query) then json_extract_string give."""

import json

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlens import asim
from portlens.sources._json_fields import _plain, json_field_batches, json_lines_fields, record_fields
from portlens.sources._records import json_lines_query
from portlens.sources.base import Query, materialize

PATHS = ["$.a", "$.properties.b", '$."records"', "$.c"]


def _rows(fields) -> list[tuple]:
    t = materialize(Query(fields.sql(PATHS), fields.inputs))
    return sorted(zip(t["_line"].to_pylist(), t["_raw"].to_pylist(), t["_error"].to_pylist(),
                      [tuple(v) if v is not None else None for v in t["_v"].to_pylist()]),
                  key=repr)


def _framed(lines: list[str], arrays=("records",)) -> list[tuple]:
    """What the full framing then extraction gives."""
    numbers = pa.array(range(1, len(lines) + 1), pa.int64())
    return _rows(record_fields(json_lines_query(pa.array(lines, pa.string()), numbers, arrays)))


def _fields(lines: list[str], arrays=("records",)) -> list[tuple]:
    numbers = pa.array(range(1, len(lines) + 1), pa.int64())
    return _rows(json_lines_fields(pa.array(lines, pa.string()), numbers, arrays))


def test_plain_lines_are_read_directly():
    lines = ['{"a": "x", "properties": {"b": 2}}', '{"c": null}', '{"a": [1, 2]}', ' {"a": 1}']
    assert _plain(pa.array(lines), ("records",)).to_pylist() == [True, True, True, False]
    assert _fields(lines) == sorted([
        (1, lines[0], None, ("x", "2", None, None)),
        (2, lines[1], None, (None, None, None, None)),
        (3, lines[2], None, ("[1,2]", None, None, None)),
        (4, lines[3], None, ("1", None, None, None)),  # (framed: a blank before the object)
    ], key=repr)


def test_unusual_lines_go_through_the_framing():
    lines = ['{"records": [{"a": 1}, 2]}', '{"a": 1}{"a": 2}', '[1]', '{"a": 1', 'x', '{"a": "x}{"}']
    assert _plain(pa.array(lines), ("records",)).to_pylist() == [False, False, False, True, False, False]
    got = _fields(lines)
    assert got == _framed(lines)
    assert (4, '{"a": 1', "invalid JSON", None) in got  # a plain-looking line that does not parse
    assert (1, '{"a":1}', None, ("1", None, None, None)) in got  # a wrapper's element
    assert (1, "2", "record is not a JSON object", None) in got


def test_other_wrapper_keys():
    lines = ['{"events": [{"a": 1}]}', '{"records": 5}']
    assert _fields(lines, ("events",)) == _framed(lines, ("events",))


def test_file_of_lines_and_document(tmp_path):
    lines = tmp_path / "l.json"
    lines.write_text('{"a": 1}\n\n{"records": [{"a": 2}]}\n')
    got = [r for q in json_field_batches(str(lines)) for r in _rows(q)]
    assert sorted(got, key=repr) == sorted([(1, '{"a": 1}', None, ("1", None, None, None)),
                                            (3, '{"a":2}', None, ("2", None, None, None))], key=repr)
    doc = tmp_path / "d.json"
    doc.write_text(json.dumps({"records": [{"a": 1}, {"a": 2}]}, indent=2))
    got = [r for q in json_field_batches(str(doc)) for r in _rows(q)]
    assert [(r[0], r[3]) for r in sorted(got)] == [(1, ("1", None, None, None)), (2, ("2", None, None, None))]


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.sampled_from(["a", "b", "c", "properties", "records"]), inner,
                                             max_size=3), max_leaves=8)
pieces = st.sampled_from(["{", "}", "}{", '} {"', '"records"', "[", "]", ",", ":", '"a"', " ", "\t", "1", '"x"'])
lines_st = st.one_of(json_values.map(lambda v: json.dumps(v)),
                     st.lists(json_values, min_size=2, max_size=3).map(lambda vs: "".join(json.dumps(v) for v in vs)),
                     st.lists(pieces, max_size=12).map("".join))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(lines_st.filter(lambda s: s.strip() != ""), min_size=1, max_size=6))
def test_same_as_framing_then_extraction(lines):
    assert _fields(lines) == _framed(lines)


def test_engine_validity_matches_json_type():
    """The direct path takes a parse error of json_extract_string as invalid JSON, where the
    framing asks json_type: both must reject the same text."""
    texts = ['{"a": 1,}', "{'a': 1}", '{"a": NaN}', '{"a": 1} x', '{"a": 01}', '{"a": "\\x"}', '{"a": 1}']
    t = asim.query("SELECT try(json_type(s)) IS NOT NULL AS a, "
                   "try(json_extract_string(s, ['$.a'])) IS NOT NULL AS b FROM t", t=pa.table({"s": texts}))
    assert t["a"].to_pylist() == t["b"].to_pylist()
