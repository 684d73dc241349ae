"""Cisco Firepower eStreamer CEF: the fixture (written from the eStreamer CEF layout and the parser, see FIXTURES.md), pinned values for the rule's keys (DstPortNumber,
NetworkProtocol, NetworkDirection, DvcAction); detection and hostile input are in test_new_sources.py."""

from pathlib import Path

from portlens.sources import get
from sourcekit import checked_reasons, one, parse, utc, write

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
