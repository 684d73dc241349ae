"""SentinelOne network alerts: the fixture (the API's nested form, written from the parser), pinned values for the rule's keys (DstPortNumber,
NetworkProtocol, NetworkDirection, DvcAction), detection and hostile input."""

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlens.sources import detect, get
from sourcekit import checked_reasons, hostile_lines, no_internal_errors, one, parse, utc, write

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sentinelone"
SOURCE = get("sentinelone")
KEY = ("DstPortNumber", "NetworkProtocol", "NetworkDirection", "DvcAction")


def key(r):
    return tuple(r[k] for k in KEY)


def test_fixture():
    rows, quarantine, skipped, records = parse(FIXTURES / "alerts.json", SOURCE)
    assert (records, rows.num_rows, skipped, quarantine.num_rows) == (4, 2, 1, 1)
    assert checked_reasons(quarantine) == {4: "TCPV4 alert without srcIp or dstIp"}
    r = one(rows, EventOriginalUid="EV1")
    assert key(r) == (3389, "TCP", "Outbound", "Allow")
    assert (r["TimeGenerated"], r["SrcAppName"], r["SrcUsername"], r["EventSeverity"]) == \
        (utc(2024, 5, 1, 11), "mstsc.exe", "CORP\\bob", "Medium")
    r = one(rows, EventOriginalUid="EV2")
    assert key(r) == (22, "TCP", "Inbound", "Allow") and r["EventSeverity"] == "High"  # Critical


def test_detect():
    for path in FIXTURES.iterdir():
        if path.suffix != ".md":
            assert detect(str(path)).name == "sentinelone", path


_GOOD = [line for path in sorted(FIXTURES.iterdir()) if path.suffix != ".md"
         for line in path.read_text().splitlines()]
_pieces = hostile_lines(_GOOD, ["{}", '{"data": 5}', '{"alertInfo": {"eventType": "TCPV4", "dstPort": "70000", "srcIp": "1.1.1.1"}}'], cut=2)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_pieces, max_size=20), endings=st.sampled_from(["\n", "\r\n"]))
def test_hostile_input_is_accounted_for(tmp_path, lines, endings):
    parsed = parse(write(tmp_path, endings.join(lines) or " ", "hostile.log"), SOURCE)
    no_internal_errors(parsed.quarantine)
    assert parsed.rows.num_rows + parsed.quarantine.num_rows + parsed.skipped == parsed.records
