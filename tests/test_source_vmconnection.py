import json
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlens import sources
from sourcekit import parse, parse_text, reasons, UTC

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "vmconnection"
SOURCE = sources.get("vmconnection")


def run(path, source=SOURCE, batch_lines=100_000):
    return parse(path, source, batch_lines)


def by_id(rows):
    return {r["NetworkSessionId"]: r for r in rows.to_pylist()}


@pytest.mark.parametrize("batch_lines", [100_000, 2])
def test_csv_export(batch_lines):
    rows, quarantine, skipped, records = run(FIXTURES / "vmconnection.csv", batch_lines=batch_lines)
    assert (rows.num_rows, quarantine.num_rows, skipped, records) == (4, 3, 0, 7)
    assert reasons(quarantine) == {6: "expected 38 CSV fields, found 4",
                                   7: "TimeGenerated: missing or not a timestamp",
                                   8: "DstPortNumber: port outside 0-65535"}
    r = by_id(rows)
    out = r["c-1"]
    assert out["TimeGenerated"] == out["EventStartTime"] == out["EventEndTime"] == datetime(2024, 5, 1, 10, 1, tzinfo=UTC)
    assert (out["SrcIpAddr"], out["SrcPortNumber"], out["DstIpAddr"], out["DstPortNumber"]) == \
        ("10.1.0.4", None, "52.1.2.3", 443)
    assert (out["NetworkDirection"], out["NetworkProtocol"], out["EventType"]) == ("Outbound", "TCP", "EndpointNetworkSession")
    assert (out["SrcBytes"], out["DstBytes"], out["NetworkBytes"]) == (1200, 64000, 65200)  # sent by the VM = Src
    assert (out["EventCount"], out["EventResult"], out["DvcAction"], out["NetworkDuration"]) == (3, "Success", None, None)
    assert (out["SrcHostname"], out["DstHostname"], out["SrcAppName"]) == ("web01", "api", "nginx")
    assert (out["Dvc"], out["DvcId"], out["DvcIdType"], out["DvcIpAddr"]) == \
        ("web01.contoso.com", "m-0a1b2c3d-aaaa", "VMConnectionId", "10.1.0.4")
    extra = json.loads(out["AdditionalFields"])
    assert extra["ResponseTimeMax"] == 60 and extra["DstFQDN"] == "api.partner.example"
    inbound = r["c-2"]  # bytes swap: the VM is the destination
    assert (inbound["SrcIpAddr"], inbound["DstIpAddr"], inbound["DstPortNumber"]) == ("198.51.100.77", "10.1.0.4", 22)
    assert (inbound["SrcBytes"], inbound["DstBytes"]) == (300, 5000)
    assert (inbound["NetworkDirection"], inbound["DstAppName"], inbound["DstHostname"]) == ("Inbound", "sshd", "web01")
    assert (inbound["EventCount"], inbound["EventResult"], inbound["EventSeverity"]) == (4, "Failure", "Medium")
    assert r["c-3"]["EventCount"] == 1  # only a live link
    v6 = r["c-4"]
    assert (v6["NetworkProtocol"], v6["NetworkProtocolVersion"], v6["EventCount"], v6["EventResult"]) == \
        ("UDP", "IPv6", 3, "Partial")
    assert {x["EventVendor"] + "/" + x["EventProduct"] for x in rows.to_pylist()} == {"Microsoft/VMConnection"}


def test_json_lines():
    rows, quarantine, skipped, records = run(FIXTURES / "vmconnection.json")
    assert (rows.num_rows, quarantine.num_rows, skipped, records) == (2, 1, 0, 3)
    assert reasons(quarantine) == {3: "SourceIp/DestinationIp: missing"}
    rdp = by_id(rows)["j-2"]
    assert (rdp["SrcIpAddr"], rdp["DstIpAddr"], rdp["DstPortNumber"], rdp["NetworkDirection"]) == \
        ("203.0.113.5", "10.1.0.4", 3389, "Inbound")
    assert (rdp["SrcBytes"], rdp["DstBytes"]) == (20, 10)


def test_detect():
    for path in FIXTURES.iterdir():
        assert sources.detect(str(path)).name == "vmconnection", path


CSV_LINES = (FIXTURES / "vmconnection.csv").read_text().splitlines() \
    if (FIXTURES / "vmconnection.csv").exists() else ["a"]
JSON_LINES = (FIXTURES / "vmconnection.json").read_text().splitlines() \
    if (FIXTURES / "vmconnection.json").exists() else ["{}"]
junk = st.lists(st.sampled_from(['"', ",", "x", '""', "\n", "inbound", "-1", "1e400", "{", "}"]), max_size=15).map("".join)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["csv", "json"]),
       st.lists(st.one_of(st.sampled_from(CSV_LINES[1:] + JSON_LINES), st.text(max_size=40), junk,
                          st.integers(0, 300).map(lambda i: CSV_LINES[1][:i] if len(CSV_LINES) > 1 else "")),
                max_size=10), st.sampled_from([3, 1000]))
def test_property_hostile(tmp_path, kind, lines, batch_lines):
    path = tmp_path / f"vm.{kind}"
    head = CSV_LINES[0] if kind == "csv" else JSON_LINES[0]
    path.write_text(head + "\n" + "\n".join(lines), encoding="utf-8")
    run(path, batch_lines=batch_lines)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400))
def test_property_bytes(tmp_path, data):
    parse_text(tmp_path, CSV_LINES[0].encode() + b"\n" + data, SOURCE, "vm.bin", 4)
