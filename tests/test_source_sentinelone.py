"""SentinelOne network alerts: the fixture (the API's nested form, written from the parser), pinned values for the rule's keys (DstPortNumber,
NetworkProtocol, NetworkDirection, DvcAction); detection and hostile input are in test_new_sources.py."""

from pathlib import Path

from portlens.sources import get
from sourcekit import checked_reasons, one, parse, utc, write

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
