"""CSV exports framed into records and split into columns (`_records.csv_records`, used by the
Sentinel table exports, VMConnection, MDE and Windows event CSV): quoted values may span lines,
also across the reader's batches. A batch whose records are each one line is split by Arrow's
reader told that no value holds a line break; that must give what the general reading gives."""

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portlens.sources import _records
from portlens.sources._records import csv_records


def read(tmp_path, text, batch_lines):
    path = tmp_path / "export.csv"
    path.write_text(text, encoding="utf-8")
    tables = list(csv_records(str(path), ("a", "b", "c"), batch_lines))
    return pa.concat_tables(tables, promote_options="default").to_pylist() if tables else []


def test_a_value_spanning_lines_across_batches(tmp_path):
    text = 'a,b,c\n1,"x\ny",2\n3,"p\nq\nr",4\n5,6,7\n'
    rows = read(tmp_path, text, batch_lines=2)
    assert [(r["_line"], r["a"], r["b"], r["c"], r["_error"]) for r in rows] == [
        (2, "1", "x\ny", "2", None), (4, "3", "p\nq\nr", "4", None), (7, "5", "6", "7", None)]


_VALUE = st.sampled_from(["x", "", " y ", '"q,1"', '"two\nlines"', '"a ""b"""', '"\nz"', "z,extra", '"open'])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_VALUE, min_size=1, max_size=4).map(",".join), min_size=1, max_size=10),
       st.integers(1, 4))
def test_one_line_batches_read_as_the_general_reading_does(tmp_path_factory, records, batch_lines):
    tmp = tmp_path_factory.mktemp("csv")
    text = "a,b,c\n" + "\n".join(records) + "\n"
    fast = read(tmp, text, batch_lines)
    general = _records._csv_columns
    with pytest.MonkeyPatch.context() as m:
        m.setattr(_records, "_csv_columns", lambda records, header, wanted, one_line=False:
                  general(records, header, wanted, one_line=False))
        assert read(tmp, text, batch_lines) == fast
