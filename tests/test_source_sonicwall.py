"""SonicWall CEF: the fixture (written from SonicOS CEF and the parser, see FIXTURES.md), pinned values for the rule's keys (DstPortNumber,
NetworkProtocol, NetworkDirection, DvcAction); detection and hostile input are in test_new_sources.py."""

from pathlib import Path

from portlens.sources import get
from sourcekit import checked_reasons, one, parse, write

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
