"""Defender for IoT network activity: the fixture (written from the parser: no public sample exists, see FIXTURES.md), pinned values for the rule's keys (DstPortNumber,
NetworkProtocol, NetworkDirection, DvcAction); detection and hostile input are in test_new_sources.py."""

from pathlib import Path

from portlens.sources import get
from sourcekit import checked_reasons, one, parse, utc, write

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "defender_iot"
SOURCE = get("defender-iot")
KEY = ("DstPortNumber", "NetworkProtocol", "NetworkDirection", "DvcAction")


def key(r):
    return tuple(r[k] for k in KEY)


def test_fixture():
    rows, quarantine, skipped, records = parse(FIXTURES / "raw_events.jsonl", SOURCE)
    assert (records, rows.num_rows, skipped, quarantine.num_rows) == (4, 2, 1, 1)
    assert checked_reasons(quarantine) == {4: "NetworkActivity without EventDetails"}
    r = one(rows, EventOriginalUid="ev-1")  # local port above the remote one: outbound
    assert key(r) == (8883, "TCP", None, None)
    assert (r["SrcIpAddr"], r["DstIpAddr"], r["SrcBytes"], r["DstBytes"]) == ("10.4.0.7", "52.10.0.1", 800, 1200)
    assert (r["TimeGenerated"], r["DvcId"], r["NetworkApplicationProtocol"]) == (utc(2024, 5, 1, 12), "iot-7", "MQTT")
    r = one(rows, EventOriginalUid="ev-2")  # EventDetails as a JSON string; inbound
    assert key(r) == (22, "TCP", None, None)
    assert (r["SrcIpAddr"], r["SrcPortNumber"], r["SrcBytes"]) == ("10.4.0.1", 51515, 300)
