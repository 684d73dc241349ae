import json
from datetime import datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlens import sources
from sourcekit import by_uid, parse, parse_text, reasons, sample_path, SAMPLES, tuple_of, UTC

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "mde"
SOURCE = sources.get("mde")


def run(path, source=SOURCE, batch_lines=100_000):
    return parse(path, source, batch_lines)


# ---------------------------------------------------------------- sample


def test_sample_streaming_api():
    path = sample_path("mde_devicenetworkevents", "test-device.log", reason="sample not present")
    rows, quarantine, skipped, records = run(path)
    # NetworkSignatureInspected and DnsConnectionInspected are not in the spec's mapping
    assert (rows.num_rows, quarantine.num_rows, skipped, records) == (1, 0, 2, 3)
    r = rows.to_pylist()[0]
    assert r["TimeGenerated"] == r["EventStartTime"] == datetime(2023, 7, 19, 12, 17, 42, 778236, tzinfo=UTC)
    assert tuple_of(r) == ("89.160.20.112", 50258, "175.16.199.0", 80)
    assert (r["NetworkProtocol"], r["NetworkDirection"], r["EventResult"], r["DvcAction"]) == \
        ("TCP", "Outbound", "Failure", None)
    assert (r["EventType"], r["EventOriginalType"], r["EventOriginalUid"], r["EventCount"]) == \
        ("EndpointNetworkSession", "ConnectionFailed", "110313", 1)
    assert (r["Dvc"], r["DvcHostname"], r["DvcId"], r["DvcIdType"], r["DvcIpAddr"]) == \
        ("janeslaptop1.corporatedomain", "janeslaptop1", "22bb10ffe3104214b20fc7de339a2b053e915e5c", "MDEid",
         "89.160.20.112")
    assert (r["SrcAppName"], r["SrcUsername"], r["DstHostname"]) == \
        ("msedgewebview2.exe", "corporatedomain\\username", "subdomain")
    assert (r["EventVendor"], r["EventProduct"]) == ("Microsoft", "Microsoft Defender XDR for Endpoint")
    assert json.loads(r["AdditionalFields"])["DstFQDN"] == "subdomain.domain.tld"


# ---------------------------------------------------------------- own fixtures


def test_streaming_fixture():
    rows, quarantine, skipped, records = run(FIXTURES / "streaming.json")
    assert (rows.num_rows, quarantine.num_rows, skipped, records) == (8, 3, 3, 14)
    assert reasons(quarantine) == {10: "not a JSON object", 11: "Timestamp: missing or not a timestamp",
                                   13: "DstPortNumber: port outside 0-65535"}
    r = by_uid(rows)
    out = r["1"]
    assert out["TimeGenerated"] == datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert tuple_of(out) == ("10.20.0.7", 51515, "203.0.113.80", 443)
    assert (out["DstHostname"], out["SrcHostname"], out["SrcUsername"]) == ("login", "laptop7", "contoso\\alice")
    extra = json.loads(out["AdditionalFields"])
    assert extra["MdeAdditionalFields"] == {"direction": "Out"} and extra["DstFQDN"] == "login.example.com"
    inbound = r["2"]  # reversed: the remote peer is the source
    assert tuple_of(inbound) == ("198.51.100.9", 60123, "10.20.0.7", 3389)
    assert (inbound["NetworkDirection"], inbound["DstAppName"], inbound["DstUsername"], inbound["SrcHostname"]) == \
        ("Inbound", "svchost.exe", "network service", "attacker")
    listen = r["3"]
    assert tuple_of(listen) == (None, None, "0.0.0.0", 8081)
    assert (listen["NetworkDirection"], listen["DstAppName"]) == ("Listen", "node.exe")
    found = r["4"]
    assert found["NetworkDirection"] == "NA"
    assert json.loads(found["AdditionalFields"])["MdeAdditionalFields"] == {"uid": "C1"}
    v6 = r["5"]
    assert (v6["NetworkProtocol"], v6["NetworkProtocolVersion"], v6["DstIpAddr"]) == ("TCP", "IPv6", "2001:db8::443")
    icmp = r["6"]
    assert (icmp["NetworkProtocol"], icmp["SrcPortNumber"], icmp["DstPortNumber"]) == ("ICMP", None, None)
    assert r["8"]["DstPortNumber"] == 8443  # from a {"records": [...]} wrapper
    assert r["12"]["NetworkProtocol"] is None  # "Unknown"


def test_advanced_hunting_csv():
    rows, quarantine, skipped, records = run(FIXTURES / "advanced_hunting.csv")
    assert (rows.num_rows, quarantine.num_rows, skipped, records) == (3, 1, 1, 5)
    assert reasons(quarantine) == {4: "expected 17 CSV fields, found 4"}
    r = by_uid(rows)
    ssh = r["101"]
    assert ssh["TimeGenerated"] == datetime(2024, 5, 1, 13, 0, 0, 500000, tzinfo=UTC)
    assert tuple_of(ssh) == ("192.0.2.50", 52000, "10.20.0.3", 22)
    assert (ssh["NetworkDirection"], ssh["DstUsername"], ssh["DstAppName"]) == ("Inbound", "system", "sshd.exe")
    assert json.loads(ssh["AdditionalFields"])["MdeAdditionalFields"] == {"note": "x, y"}
    failed = r["102"]
    assert (failed["EventResult"], failed["EventSeverity"], failed["DstPortNumber"]) == ("Failure", "Low", 5985)
    dns = r["105"]
    assert (dns["NetworkProtocol"], dns["NetworkProtocolVersion"], dns["DstPortNumber"]) == ("UDP", "IPv6", 53)


def test_flat_table_export():
    rows, quarantine, skipped, records = run(FIXTURES / "device_network_events.json")
    assert (rows.num_rows, quarantine.num_rows, skipped, records) == (1, 0, 1, 2)  # ConnectionAttempt skipped
    r = rows.to_pylist()[0]
    assert r["TimeGenerated"] == datetime(2024, 5, 1, 13, 59, 59, 500000, tzinfo=UTC)  # Timestamp, not ingestion
    assert tuple_of(r) == ("10.0.0.9", 50000, "198.51.100.1", 25)


# ---------------------------------------------------------------- detection


def test_detect():
    for path in list(FIXTURES.iterdir()) + [SAMPLES / "mde_devicenetworkevents" / "test-device.log"]:
        if path.exists():
            assert sources.detect(str(path)).name == "mde", path


# ---------------------------------------------------------------- hostile input

LINES = (FIXTURES / "streaming.json").read_text().splitlines() if (FIXTURES / "streaming.json").exists() else ["{}"]
CSV_LINES = (FIXTURES / "advanced_hunting.csv").read_text().splitlines() \
    if (FIXTURES / "advanced_hunting.csv").exists() else ["a,b"]
value = st.one_of(st.none(), st.booleans(), st.integers(-2**65, 2**65), st.floats(), st.text(max_size=10),
                  st.sampled_from(["ConnectionSuccess", "InboundConnectionAccepted", "ListeningConnectionCreated",
                                   "Tcp", "IcmpV6", "2024-05-01T00:00:00Z", "10.0.0.1", "::1", "99999"]))
record = st.dictionaries(st.sampled_from(["Timestamp", "ActionType", "LocalIP", "LocalPort", "RemoteIP", "RemotePort",
                                          "Protocol", "RemoteUrl", "AdditionalFields", "DeviceName"]), value, max_size=10)
json_line = st.one_of(
    record.map(lambda p: json.dumps({"category": "AdvancedHunting-DeviceNetworkEvents", "properties": p})),
    st.lists(record, max_size=3).map(lambda ps: json.dumps({"records": [
        {"category": "AdvancedHunting-DeviceNetworkEvents", "properties": p} for p in ps]})),
    st.sampled_from(LINES), st.integers(0, 300).map(lambda i: LINES[0][:i]), st.text(max_size=30))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(json_line, max_size=10), st.sampled_from([4, 1000]))
def test_property_json(tmp_path, lines, batch_lines):
    parse_text(tmp_path, LINES[0] + "\n" + "\n".join(lines), SOURCE, "mde.json", batch_lines)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.sampled_from(CSV_LINES[1:]), st.text(max_size=40),
                          st.lists(st.sampled_from(['"', ",", "x", '""', "\n"]), max_size=12).map("".join)),
                max_size=10), st.sampled_from([3, 1000]))
def test_property_csv(tmp_path, lines, batch_lines):
    parse_text(tmp_path, CSV_LINES[0] + "\n" + "\n".join(lines), SOURCE, "mde.csv", batch_lines)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400))
def test_property_bytes(tmp_path, data):
    parse_text(tmp_path, b'{"category":"AdvancedHunting-DeviceNetworkEvents"}\n' + data, SOURCE, "mde.bin", 5)
