"""CrowdStrike Falcon host firewall CEF: the fixture (written from the Falcon SIEM connector's CEF and the parser, see FIXTURES.md), pinned values for the rule's keys (DstPortNumber,
NetworkProtocol, NetworkDirection, DvcAction); detection and hostile input are in test_new_sources.py."""

from pathlib import Path

from portlens.sources import get
from sourcekit import checked_reasons, one, parse, utc, write

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "crowdstrike"
SOURCE = get("crowdstrike")
KEY = ("DstPortNumber", "NetworkProtocol", "NetworkDirection", "DvcAction")


def key(r):
    return tuple(r[k] for k in KEY)


def test_fixture():
    rows, quarantine, skipped, records = parse(FIXTURES / "cef.log", SOURCE)
    assert (records, rows.num_rows, skipped, quarantine.num_rows) == (5, 3, 1, 1)
    assert checked_reasons(quarantine) == {5: "FirewallMatchEvent without connectionDirection 1 or 2"}
    rows = rows.to_pylist()
    r = rows[0]  # inbound block: remote -> local (the parser would set both addresses to the remote one)
    assert key(r) == (445, "TCP", "Inbound", "Deny")
    assert (r["SrcIpAddr"], r["SrcPortNumber"], r["DstIpAddr"], r["EventCount"]) == ("198.51.100.3", 50001, "10.6.0.12", 3)
    assert (r["TimeGenerated"], r["NetworkRuleName"], r["DvcHostname"]) == (utc(2024, 5, 1, 16), "Block SMB in", "WS-12")
    assert key(rows[1]) == (53, "UDP", "Outbound", "Allow") and rows[1]["DvcIpAddr"] == "10.6.0.12"
    assert key(rows[2]) == (4444, "TCP", None, "Deny")  # detection summary, outcome 1024 (prevention)
