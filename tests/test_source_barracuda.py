"""Barracuda WAF network-firewall logs: the fixtures (CEF and barracuda_CL JSON, written from the parser, see FIXTURES.md), pinned values for the rule's keys (DstPortNumber,
NetworkProtocol, NetworkDirection, DvcAction); detection and hostile input are in test_new_sources.py."""

from pathlib import Path

from portlens.sources import get
from sourcekit import checked_reasons, one, parse, utc, write

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "barracuda"
SOURCE = get("barracuda")
KEY = ("DstPortNumber", "NetworkProtocol", "NetworkDirection", "DvcAction")


def key(r):
    return tuple(r[k] for k in KEY)


def test_cef_fixture():
    rows, quarantine, skipped, records = parse(FIXTURES / "cef.log", SOURCE)
    assert (records, rows.num_rows, skipped, quarantine.num_rows) == (3, 2, 1, 0)
    rows = rows.to_pylist()
    assert key(rows[0]) == (8000, "TCP", None, "Allow")
    assert (rows[0]["TimeGenerated"], rows[0]["Dvc"], rows[0]["EventSeverity"]) == (utc(2024, 5, 1, 19), "waf-1", "Informational")
    assert key(rows[1]) == (161, "UDP", None, "Deny") and rows[1]["EventSeverity"] == "Low"


def test_table_fixture():
    rows, quarantine, skipped, records = parse(FIXTURES / "barracuda_cl.json", SOURCE)
    assert (records, rows.num_rows, skipped, quarantine.num_rows) == (2, 1, 1, 0)
    r = rows.to_pylist()[0]
    assert key(r) == (22, "TCP", None, "Deny")  # TCP/ip
    assert (r["EventStartTime"], r["DvcIpAddr"], r["Dvc"]) == (utc(2024, 5, 1, 19, 1, 39, 900000), "10.9.0.2", "waf-2")
