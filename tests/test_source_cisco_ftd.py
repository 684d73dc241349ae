"""Cisco FTD security events: the fixture (written from the FTD syslog guide and the parser, see FIXTURES.md), pinned values for the rule's keys (DstPortNumber,
NetworkProtocol, NetworkDirection, DvcAction); detection and hostile input are in test_new_sources.py."""

from pathlib import Path

from portlens.sources import get
from sourcekit import checked_reasons, one, parse, utc, write

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
