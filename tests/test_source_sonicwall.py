"""SonicWall CEF: the fixture (written from SonicOS CEF and the parser, see FIXTURES.md), pinned values for the rule's keys (DstPortNumber,
NetworkProtocol, NetworkDirection, DvcAction), detection and hostile input."""

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlens.sources import detect, get
from sourcekit import checked_reasons, hostile_lines, no_internal_errors, one, parse, write

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sonicwall"
SOURCE = get("sonicwall")
KEY = ("DstPortNumber", "NetworkProtocol", "NetworkDirection", "DvcAction")


def key(r):
    return tuple(r[k] for k in KEY)


def test_fixture():
    rows, quarantine, skipped, records = parse(FIXTURES / "cef.log", SOURCE)
    assert (records, rows.num_rows, skipped, quarantine.num_rows) == (6, 3, 2, 1)
    assert checked_reasons(quarantine) == {6: "not a SonicWall CEF record"}
    rows = rows.to_pylist()
    assert key(rows[0]) == (443, "TCP", "Outbound", "Allow")  # "forward"
    assert (rows[0]["NetworkRuleName"], rows[0]["SrcBytes"], rows[0]["NetworkApplicationProtocol"]) == \
        ("LAN to WAN", 1200, "HTTPS")
    assert key(rows[1]) == (3389, "TCP", "Inbound", "Drop")  # WAN -> WAN, not a broadcast
    assert key(rows[2]) == (5353, "UDP", "NA", None)  # IPv6 from srcV6/dstV6, to MULTICAST


def test_detect():
    for path in FIXTURES.iterdir():
        if path.suffix != ".md":
            assert detect(str(path)).name == "sonicwall", path


_GOOD = [line for path in sorted(FIXTURES.iterdir()) if path.suffix != ".md"
         for line in path.read_text().splitlines()]
_pieces = hostile_lines(_GOOD, ["CEF:0|SonicWall|X|1|98|x|4|gcat=6 src=1.1.1.1 dst=2.2.2.2 dpt=70000", "CEF:0|SonicWall|", "CEF:0|SonicWall|X|1|98|x|99|gcat=6 src=a dst=b proto=/"], cut=2)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_pieces, max_size=20), endings=st.sampled_from(["\n", "\r\n"]))
def test_hostile_input_is_accounted_for(tmp_path, lines, endings):
    parsed = parse(write(tmp_path, endings.join(lines) or " ", "hostile.log"), SOURCE)
    no_internal_errors(parsed.quarantine)
    assert parsed.rows.num_rows + parsed.quarantine.num_rows + parsed.skipped == parsed.records
