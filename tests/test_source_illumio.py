"""Illumio flow summaries: the fixture (JSON lines written from the parser; the real export sample is tested in test_source_sentinel), pinned values for the rule's keys (DstPortNumber,
NetworkProtocol, NetworkDirection, DvcAction); detection and hostile input are in test_new_sources.py."""

from pathlib import Path

from portlens.sources import get
from sourcekit import checked_reasons, one, parse, utc, write

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "illumio"
SOURCE = get("illumio")
KEY = ("DstPortNumber", "NetworkProtocol", "NetworkDirection", "DvcAction")


def key(r):
    return tuple(r[k] for k in KEY)


def test_fixture():
    rows, quarantine, skipped, records = parse(FIXTURES / "flows.jsonl", SOURCE)
    assert (records, rows.num_rows, skipped, quarantine.num_rows) == (5, 3, 0, 2)
    assert checked_reasons(quarantine) == {4: "DstPortNumber: port outside 0-65535",
                                           5: "flow record without src_ip or dst_ip"}
    r = one(rows, SrcIpAddr="10.0.1.5")
    assert key(r) == (3389, "TCP", "Inbound", "Deny")
    assert (r["TimeGenerated"], r["EventCount"], r["EventResult"], r["EventSeverity"]) == \
        (utc(2024, 5, 1, 10), 4, "Success", "Low")
    assert (r["SrcBytes"], r["DstBytes"], r["NetworkDuration"], r["Dvc"]) == (100, 2000, 600_000, "pce.example.com")
    assert key(one(rows, SrcIpAddr="fd00::1")) == (0, "IPV6-ICMP", "Outbound", "Allow")  # pd 1
    assert key(one(rows, SrcIpAddr="10.0.1.6")) == (67, "UDP", "Outbound", "Allow")
