"""Cisco FTD security events: the fixture (written from the FTD syslog guide and the parser, see FIXTURES.md), pinned values for the rule's keys (DstPortNumber,
NetworkProtocol, NetworkDirection, DvcAction), detection and hostile input."""

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlens.sources import detect, get
from sourcekit import checked_reasons, hostile_lines, no_internal_errors, one, parse, utc, write

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "cisco_ftd"
SOURCE = get("cisco-ftd")
KEY = ("DstPortNumber", "NetworkProtocol", "NetworkDirection", "DvcAction")


def key(r):
    return tuple(r[k] for k in KEY)


def test_fixture():
    rows, quarantine, skipped, records = parse(FIXTURES / "ftd.log", SOURCE)
    assert (records, rows.num_rows, skipped, quarantine.num_rows) == (5, 4, 0, 1)
    assert checked_reasons(quarantine) == {5: "FTD event 430002 without SrcIP or DstIP"}
    r = one(rows, EventOriginalUid="100")
    assert key(r) == (443, "TCP", None, "Allow")
    assert (r["EventSubType"], r["EventStartTime"], r["NetworkRuleName"], r["SrcBytes"]) == \
        ("Start", utc(2024, 5, 1, 13, 59, 59), "web-out", 74)
    r = one(rows, EventOriginalUid="101")
    assert key(r) == (445, "TCP", None, "Reset") and r["NetworkDuration"] == 3000
    r = one(rows, EventType="IDS")
    assert key(r) == (80, "TCP", None, "Deny") and r["EventSeverity"] == "High"
    r = one(rows, DstPortNumber=443, NetworkDirection="Inbound")  # an ASA-form line: cisco-asa's mapping
    assert (r["SrcIpAddr"], r["DstIpAddr"]) == ("203.0.113.42", "10.5.0.10")


def test_detect():
    for path in FIXTURES.iterdir():
        if path.suffix != ".md":
            assert detect(str(path)).name == "cisco-ftd", path


_GOOD = [line for path in sorted(FIXTURES.iterdir()) if path.suffix != ".md"
         for line in path.read_text().splitlines()]
_pieces = hostile_lines(_GOOD, ["%FTD-6-430002: SrcIP: 1.1.1.1, DstPort: 999999, Protocol: tcp", "%FTD-6-430003:", "%FTD-", "%FTD-6-302013: Built"], cut=2)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_pieces, max_size=20), endings=st.sampled_from(["\n", "\r\n"]))
def test_hostile_input_is_accounted_for(tmp_path, lines, endings):
    parsed = parse(write(tmp_path, endings.join(lines) or " ", "hostile.log"), SOURCE)
    no_internal_errors(parsed.quarantine)
    assert parsed.rows.num_rows + parsed.quarantine.num_rows + parsed.skipped == parsed.records
