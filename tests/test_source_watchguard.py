"""WatchGuard Fireware traffic logs: the fixture (written from the parser and Fireware's log layout: no public sample, see FIXTURES.md), pinned values for the rule's keys (DstPortNumber,
NetworkProtocol, NetworkDirection, DvcAction); detection and hostile input are in test_new_sources.py."""

from pathlib import Path

from portlens.sources import get
from sourcekit import checked_reasons, one, parse, utc, write

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "watchguard"
SOURCE = get("watchguard")
KEY = ("DstPortNumber", "NetworkProtocol", "NetworkDirection", "DvcAction")


def key(r):
    return tuple(r[k] for k in KEY)


def test_fixture():
    rows, quarantine, skipped, records = parse(FIXTURES / "fireware.log", SOURCE)
    assert (records, rows.num_rows, skipped, quarantine.num_rows) == (6, 4, 1, 1)
    assert checked_reasons(quarantine) == {6: "not a WatchGuard Fireware log record (no msg_id)"}
    rows = rows.to_pylist()
    assert key(rows[0]) == (443, "TCP", None, "Allow")
    assert (rows[0]["TimeGenerated"], rows[0]["NetworkRuleName"], rows[0]["DvcInboundInterface"], rows[0]["Dvc"]) == \
        (utc(2024, 5, 1, 13), "HTTPS-proxy-00", "1-Trusted", "M370-HQ")
    assert key(rows[1]) == (3389, "TCP", None, "Deny") and rows[1]["EventResult"] == "Failure"
    r = rows[2]  # 3000-0151: no length / TTL before the tuple; duration and bytes
    assert key(r) == (53, "UDP", None, "Allow")
    assert (r["NetworkDuration"], r["SrcBytes"], r["DstBytes"], r["SrcUsername"]) == (2000, 70, 180, "alice@corp.example")
    assert key(rows[3]) == (None, "ICMP", None, "Deny") and rows[3]["EventCount"] == 3
