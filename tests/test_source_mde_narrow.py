"""mde's narrowed statement (the store's columns) reads no detail field: it must keep, reject
and skip the same records with the same values in the columns it yields."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlens import store
from portlens.sources.mde import _DETAIL_COLUMNS, FIELDS, LEAN_FIELDS, SOURCE
from portlens.sources.base import parse_file
from narrowing import assert_narrowed_same_as_full, full_and_narrow
from test_source_mde import FIXTURES, LINES, json_line


def test_stored_columns_need_no_detail(tmp_path):
    assert store._KEEP.isdisjoint(_DETAIL_COLUMNS) and len(LEAN_FIELDS) < len(FIELDS)
    path = tmp_path / "m.json"  # (the fixture has a records wrapper: that batch is parsed in Arrow)
    path.write_text("\n".join(line for line in LINES if '"records"' not in line) + "\n")
    batch = next(parse_file(SOURCE, str(path)))
    path_text = "'$.properties.\"ReportId\"'"
    assert path_text in batch.pending.sql() and path_text not in batch.pending.parsed.narrow(store._KEEP)
    full, narrow = full_and_narrow(SOURCE, str(path), store._KEEP)
    assert full.num_rows and full.equals(narrow)
    full, narrow = full_and_narrow(SOURCE, str(FIXTURES / "streaming.json"), store._KEEP)
    assert full.equals(narrow)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(json_line, st.sampled_from(LINES)), min_size=1, max_size=10))
def test_narrowed_same_as_full(tmp_path, lines):
    assert_narrowed_same_as_full(SOURCE, tmp_path / "m.json", lines)
