"""Framing of Windows event XML into records (`_records.xml_records`): a batch whose every line
is one whole `<Event>` record takes a shortcut (the line is the record), and it must give what
the general framing gives."""

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portlens.sources import _records
from portlens.sources._records import _frame, _one_event_per_line

EVENT = '<Event xmlns="x"><System><EventID>3</EventID></System><EventData><Data Name="a">1</Data></EventData></Event>'


def frame(lines):
    table, carry = _frame(pa.array(lines, pa.string()), pa.array(range(1, len(lines) + 1), pa.int64()))
    return table.to_pylist(), carry


def test_one_whole_event_per_line_is_recognised():
    assert _one_event_per_line(pa.array([EVENT, "<Event>x</Event>"]))


def test_lines_that_are_not_one_whole_event_are_not():
    for line in (EVENT + EVENT,                      # two records on a line
                 EVENT + " ",                        # something after the record
                 "<Events>" + EVENT,                 # an export's framing before it
                 EVENT[:-8],                         # an open record
                 "<EventData>x</Event>",             # not an event start
                 EVENT.replace("<System>", "<Event><System>")):  # a start inside
        assert not _one_event_per_line(pa.array([EVENT, line])), line


_LINES = st.lists(st.sampled_from([
    EVENT, EVENT, EVENT, "<Event>a</Event>", EVENT + EVENT, EVENT[:40], EVENT[40:], "<Events>", "</Events>",
    "  ", "garbage", "<?xml version='1.0'?>", "<Event>", "</Event>", "<!-- c -->",
]), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(_LINES)
def test_the_shortcut_gives_what_the_general_framing_gives(lines):
    fast = frame(lines)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(_records, "_one_event_per_line", lambda lines: False)
        assert frame(lines) == fast
