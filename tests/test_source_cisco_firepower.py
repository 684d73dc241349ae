"""Cisco Firepower eStreamer CEF: the fixture (written from the eStreamer CEF layout and the parser, see FIXTURES.md), pinned values for the rule's keys (DstPortNumber,
NetworkProtocol, NetworkDirection, DvcAction), detection and hostile input."""

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlens.sources import detect, get
from sourcekit import checked_reasons, hostile_lines, no_internal_errors, one, parse, utc, write

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "cisco_firepower"
SOURCE = get("cisco-firepower")
KEY = ("DstPortNumber", "NetworkProtocol", "NetworkDirection", "DvcAction")


def key(r):
    return tuple(r[k] for k in KEY)


def test_fixture():
    rows, quarantine, skipped, records = parse(FIXTURES / "cef.log", SOURCE)
    assert (records, rows.num_rows, skipped, quarantine.num_rows) == (4, 3, 1, 0)
    rows = rows.to_pylist()
    r = rows[0]
    assert key(r) == (443, "TCP", None, "Allow")
    assert (r["EventStartTime"], r["EventEndTime"], r["SrcBytes"], r["DstBytes"]) == \
        (utc(2024, 5, 1, 16, 59, 50), utc(2024, 5, 1, 17), 900, 12000)
    assert (r["NetworkRuleName"], r["SrcZone"], r["DvcIpAddr"], r["EventResultDetails"]) == ("web-out", "Inside", "10.50.3.1", "NA")
    assert key(rows[1]) == (None, "ICMP", None, "Deny") and rows[1]["EventResultDetails"] == "Terminated"
    assert key(rows[2]) == (80, "TCP", None, "Drop") and rows[2]["EventResult"] == "Partial"


def test_detect():
    for path in FIXTURES.iterdir():
        if path.suffix != ".md":
            assert detect(str(path)).name == "cisco-firepower", path


_GOOD = [line for path in sorted(FIXTURES.iterdir()) if path.suffix != ".md"
         for line in path.read_text().splitlines()]
_pieces = hostile_lines(_GOOD, ["CEF:0|Cisco|Firepower|6|RNA:1003:1|x|3|proto=1 spt=999 dpt=x src=1.1.1.1", "CEF:0|Cisco|Firepower|6|INTRUSION:400|x|3|start=nope"], cut=2)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_pieces, max_size=20), endings=st.sampled_from(["\n", "\r\n"]))
def test_hostile_input_is_accounted_for(tmp_path, lines, endings):
    parsed = parse(write(tmp_path, endings.join(lines) or " ", "hostile.log"), SOURCE)
    no_internal_errors(parsed.quarantine)
    assert parsed.rows.num_rows + parsed.quarantine.num_rows + parsed.skipped == parsed.records
