"""VMware Carbon Black Cloud netconn events: the fixture (an array written from the parser and the event fields), pinned values for the rule's keys (DstPortNumber,
NetworkProtocol, NetworkDirection, DvcAction); detection and hostile input are in test_new_sources.py."""

from pathlib import Path

from portlens.sources import get
from sourcekit import checked_reasons, one, parse, utc, write

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "carbonblack"
SOURCE = get("carbonblack")
KEY = ("DstPortNumber", "NetworkProtocol", "NetworkDirection", "DvcAction")


def key(r):
    return tuple(r[k] for k in KEY)


def test_fixture():
    rows, quarantine, skipped, records = parse(FIXTURES / "events.json", SOURCE)
    assert (records, rows.num_rows, skipped, quarantine.num_rows) == (5, 3, 1, 1)
    assert checked_reasons(quarantine) == {5: "netconn event without local_ip or remote_ip"}
    r = one(rows, EventOriginalUid="e-1")
    assert key(r) == (443, "TCP", None, "Allow")  # outbound: the parser's "Unknown" -> none
    assert (r["SrcIpAddr"], r["SrcPortNumber"], r["DstIpAddr"], r["EventResult"]) == \
        ("10.0.0.7", 51000, "203.0.113.9", "Success")
    assert (r["TimeGenerated"], r["DvcIpAddr"], r["SrcAppName"]) == \
        (utc(2024, 5, 1, 10), "198.51.100.4", "c:\\windows\\system32\\curl.exe")
    r = one(rows, EventOriginalUid="e-2")
    assert key(r) == (8443, "TCP", None, "Deny") and r["EventResult"] == "Failure"
    r = one(rows, EventOriginalUid="e-3")  # inbound: local stays Src (DstPortNumber is the remote port)
    assert key(r) == (40000, "UDP", "Inbound", None)
