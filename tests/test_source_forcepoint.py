"""Forcepoint NGFW CEF: the fixture (written from the NGFW CEF layout and the parser, see FIXTURES.md), pinned values for the rule's keys (DstPortNumber,
NetworkProtocol, NetworkDirection, DvcAction); detection and hostile input are in test_new_sources.py."""

from pathlib import Path

from portlens.sources import get
from sourcekit import checked_reasons, one, parse, write

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "forcepoint"
SOURCE = get("forcepoint")
KEY = ("DstPortNumber", "NetworkProtocol", "NetworkDirection", "DvcAction")


def key(r):
    return tuple(r[k] for k in KEY)


def test_fixture():
    rows, quarantine, skipped, records = parse(FIXTURES / "cef.log", SOURCE)
    assert (records, rows.num_rows, skipped, quarantine.num_rows) == (5, 4, 1, 0)
    rows = rows.to_pylist()
    assert key(rows[0]) == (443, "TCP", None, "Allow") and rows[0]["NetworkRuleName"] == "Rule @2097152.1"
    assert key(rows[1]) == (3389, "TCP", None, "Drop")  # act Discard wins over event 70019 (Deny)
    assert key(rows[2]) == (22, "TCP", None, "Reset")  # event 70021
    assert (key(rows[3]), rows[3]["EventResult"], rows[3]["EventResultDetails"]) == \
        ((80, "TCP", None, None), "Success", "Timeout")  # 70026 gives the result first
