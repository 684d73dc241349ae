"""Forcepoint NGFW CEF: the fixture (written from the NGFW CEF layout and the parser, see FIXTURES.md), pinned values for the rule's keys (DstPortNumber,
NetworkProtocol, NetworkDirection, DvcAction), detection and hostile input."""

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlens.sources import detect, get
from sourcekit import checked_reasons, hostile_lines, no_internal_errors, one, parse, write

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "forcepoint"
SOURCE = get("forcepoint")
KEY = ("DstPortNumber", "NetworkProtocol", "NetworkDirection", "DvcAction")


def key(r):
    return tuple(r[k] for k in KEY)


def test_fixture():
    rows, quarantine, skipped, records = parse(FIXTURES / "cef.log", SOURCE)
    assert (records, rows.num_rows, skipped, quarantine.num_rows) == (5, 4, 1, 0)
    rows = rows.to_pylist()
    assert key(rows[0]) == (443, "TCP", None, "Allow") and rows[0]["NetworkRuleName"] == "Rule @2097152.1"
    assert key(rows[1]) == (3389, "TCP", None, "Drop")  # act Discard wins over event 70019 (Deny)
    assert key(rows[2]) == (22, "TCP", None, "Reset")  # event 70021
    assert (key(rows[3]), rows[3]["EventResult"], rows[3]["EventResultDetails"]) == \
        ((80, "TCP", None, None), "Success", "Timeout")  # 70026 gives the result first


def test_detect():
    for path in FIXTURES.iterdir():
        if path.suffix != ".md":
            assert detect(str(path)).name == "forcepoint", path


_GOOD = [line for path in sorted(FIXTURES.iterdir()) if path.suffix != ".md"
         for line in path.read_text().splitlines()]
_pieces = hostile_lines(_GOOD, ["CEF:0|FORCEPOINT|Firewall|6|70018|x|0|act=Allow src=1.1.1.1 dpt=-1", "CEF:0|FORCEPOINT|Firewall|6|x|x|0|msg=TCP state violation"], cut=2)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_pieces, max_size=20), endings=st.sampled_from(["\n", "\r\n"]))
def test_hostile_input_is_accounted_for(tmp_path, lines, endings):
    parsed = parse(write(tmp_path, endings.join(lines) or " ", "hostile.log"), SOURCE)
    no_internal_errors(parsed.quarantine)
    assert parsed.rows.num_rows + parsed.quarantine.num_rows + parsed.skipped == parsed.records
