"""Check Point source: the public CEF / syslog key=value / structured-data samples, fixtures
for every Log Exporter form, detection and hostile input."""

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlens.sources import detect, get
from sourcekit import (assert_lines_accounted, checked_reasons as reasons, hostile_lines, one as row, parse,
                       sample_path, SAMPLES, utc, write)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "checkpoint"
SOURCE = get("checkpoint")


def run(path):
    return parse(path, SOURCE)


def sample(name):
    return run(sample_path("checkpoint", name, reason="shared Check Point sample not present"))


# ---- public samples --------------------------------------------------------------------------------

def test_cef_sample():
    table, quarantine, skipped, records = sample("checkpoint.log")
    # line 2 (e-mail blade, no addresses) is not a session; line 3 has IPv6 addresses but no
    # time at all (no rt, no syslog header): quarantined rather than given an invented time
    assert (records, table.num_rows, skipped, quarantine.num_rows) == (3, 1, 1, 1)
    assert reasons(quarantine) == {3: "TimeGenerated: missing"}
    r = table.to_pylist()[0]
    assert r["TimeGenerated"] == utc(2018, 11, 26, 22, 17, 32)
    assert (r["SrcIpAddr"], r["SrcPortNumber"], r["DstIpAddr"], r["DstPortNumber"]) == \
        ("192.168.101.100", 49363, "52.173.84.157", 443)
    assert (r["NetworkProtocol"], r["DvcAction"], r["DvcOriginalAction"], r["EventResult"]) == \
        ("TCP", "Allow", "Accept", "Success")
    assert r["NetworkDirection"] == "Outbound"  # inzone Internal -> outzone External
    assert (r["SrcNatIpAddr"], r["SrcNatPortNumber"]) == ("192.168.103.254", 35398)
    assert r["DstNatIpAddr"] is None  # 0.0.0.0 means none
    assert (r["Dvc"], r["DvcIpAddr"], r["DvcHostname"]) == ("192.168.101.254", "192.168.101.254", "R80")
    assert r["EventOriginalUid"] == "{0x5bfc70fc,0x1,0xfe65a8c0,0xc0000001}"
    assert r["NetworkRuleName"] == "9e5e6e74-aa9a-4693-b9fe-53712dd27bea"  # rule_uid (no cs2 value)
    assert r["DstAppName"] == "https"
    assert (r["EventVendor"], r["EventProduct"], r["EventCount"]) == ("Check Point", "Firewall", 1)


def test_syslog_kv_sample():
    table, quarantine, skipped, records = sample("checkpoint-syslog-kv-message.log")
    assert (records, table.num_rows, skipped, quarantine.num_rows) == (1, 1, 0, 0)
    r = table.to_pylist()[0]
    assert r["TimeGenerated"] == utc(2023, 6, 5, 19, 28, 16)
    assert (r["SrcIpAddr"], r["SrcPortNumber"], r["DstIpAddr"], r["DstPortNumber"]) == \
        ("192.168.14.10", 138, "192.168.14.255", 138)
    assert (r["NetworkProtocol"], r["DvcAction"], r["EventResult"]) == ("UDP", "Drop", "Failure")
    assert r["NetworkDirection"] == "Inbound"  # conn_direction=Incoming
    assert r["DvcHostname"] == "DEMOGW3"  # CN\=DEMOGW3 unescaped
    assert (r["SrcZone"], r["DstZone"]) == ("External", "Local")


def test_structured_data_sample():
    table, quarantine, skipped, records = sample("checkpoint-syslog-structured-data.log")
    assert (records, table.num_rows, skipped, quarantine.num_rows) == (1, 1, 0, 0)
    r = table.to_pylist()[0]
    assert r["TimeGenerated"] == utc(2026, 2, 18, 8, 14, 51)  # the log's own epoch `time`
    assert (r["SrcIpAddr"], r["SrcPortNumber"], r["DstIpAddr"], r["DstPortNumber"]) == \
        ("10.0.0.1", 12345, "10.0.0.2", 443)
    assert (r["NetworkProtocol"], r["DvcAction"], r["NetworkDirection"]) == ("TCP", "Allow", "Inbound")


# ---- fixtures ------------------------------------------------------------------------------------------

def test_cef_fixture():
    table, quarantine, skipped, records = run(FIXTURES / "cef.log")
    assert (records, table.num_rows, skipped, quarantine.num_rows) == (6, 3, 1, 2)
    assert reasons(quarantine) == {5: "not a Check Point log record", 6: "not a Check Point log record"}
    r = row(table, SrcIpAddr="10.1.1.5")  # CheckPoint without space, ICMP with labelled type/code
    assert r["TimeGenerated"] == utc(2024, 6, 12, 9, 0, 0)
    assert (r["NetworkProtocol"], r["SrcPortNumber"], r["DstPortNumber"]) == ("ICMP", None, None)
    assert (r["NetworkIcmpType"], r["NetworkIcmpCode"]) == ("Echo", 0)
    assert (r["NetworkDirection"], r["DvcHostname"]) == ("Outbound", "gw-east")
    r = row(table, DstPortNumber=22)  # IPv6 addresses in c6a2 / c6a3
    assert (r["SrcIpAddr"], r["DstIpAddr"], r["NetworkProtocolVersion"]) == ("2001:db8::a", "2001:db8:2::b", "IPv6")
    assert (r["DvcAction"], r["EventResult"]) == ("Deny", "Failure")  # Reject
    r = row(table, DstPortNumber=443)  # escapes in the labelled rule name, bytes, count, threat
    assert r["NetworkRuleName"] == "Allow=web \\ servers"
    assert (r["DvcAction"], r["EventResult"], r["EventSeverity"]) == ("Encrypt", "Success", "High")
    assert (r["SrcBytes"], r["DstBytes"], r["EventCount"]) == (700, 5000, 4)


def test_kv_fixture():
    table, quarantine, skipped, records = run(FIXTURES / "kv.log")
    assert (records, table.num_rows, skipped, quarantine.num_rows) == (4, 2, 0, 2)
    assert reasons(quarantine) == {2: "missing source or destination address", 4: "not a Check Point log record"}
    r = row(table, DstPortNumber=8080)
    assert (r["SrcBytes"], r["DstBytes"], r["NetworkBytes"]) == (1200, 34000, 35200)
    assert (r["SrcPackets"], r["DstPackets"], r["NetworkPackets"]) == (10, 30, 40)
    assert (r["DstNatIpAddr"], r["DstNatPortNumber"]) == ("10.1.1.81", 80)
    assert (r["DstAppName"], r["NetworkRuleName"]) == ("http|alt", "Publish web")  # \| unescaped
    r = row(table, DstPortNumber=53)  # no action: EventResult NA; zones Internal -> Internal
    assert (r["DvcAction"], r["EventResult"], r["NetworkDirection"]) == (None, "NA", "Local")
    assert r["TimeGenerated"] == utc(2024, 6, 12, 9, 10, 2)  # header time when there is no `time`


def test_structured_data_fixture():
    table, quarantine, skipped, records = run(FIXTURES / "sd.log")
    assert (records, table.num_rows, skipped, quarantine.num_rows) == (2, 2, 0, 0)
    r = row(table, DstPortNumber=3389)
    assert r["NetworkRuleName"] == 'no "rdp" inside'
    assert (r["DvcAction"], r["NetworkDirection"]) == ("Drop", "Local")
    r = row(table, SrcIpAddr="fe80::1")  # ICMPv6
    assert (r["NetworkProtocol"], r["NetworkIcmpType"], r["NetworkIcmpCode"]) == ("IPV6-ICMP", "Echo Request", 0)
    assert r["DstPortNumber"] is None


def test_json_fixture():
    table, quarantine, skipped, records = run(FIXTURES / "json.log")
    assert (records, table.num_rows, skipped, quarantine.num_rows) == (4, 1, 1, 2)
    assert reasons(quarantine) == {3: "not a Check Point log record", 4: "invalid destination address"}
    r = table.to_pylist()[0]
    assert r["TimeGenerated"] == utc(2024, 6, 12, 9, 30, 0)
    assert (r["SrcBytes"], r["DstBytes"], r["DstPortNumber"], r["NetworkProtocol"]) == (80, 200, 53, "UDP")
    assert (r["DvcHostname"], r["NetworkRuleName"], r["NetworkDirection"]) == ("gw-west", "DNS out", "Outbound")


# ---- detection --------------------------------------------------------------------------------------------

def test_detect_picks_checkpoint():
    paths = [FIXTURES / n for n in ("cef.log", "kv.log", "sd.log", "json.log")]
    if (SAMPLES / "checkpoint").exists():
        paths += sorted((SAMPLES / "checkpoint").iterdir())
    for path in paths:
        assert detect(str(path)).name == "checkpoint", path


# ---- hostile input ---------------------------------------------------------------------------------------------

_GOOD = [line for name in ("cef.log", "kv.log", "sd.log", "json.log")
         for line in (FIXTURES / name).read_text().splitlines()]
_pieces = hostile_lines(_GOOD, [
    '{"loguid":1,"src":{"x":[1,2]},"dst":"::1"}', '{"src":"1.1.1.1","src":"2.2.2.2"}',
    "[", "{}", '[action:"', "loguid=|||||src=|dst=", "a\\|b=c|origin=1.2.3.4",
    "CEF:0|Check Point|x|y|z|w|v|src=1.1.1.1 dst=1.1.1.2 rt=99999999999999999999"])


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_pieces, max_size=25), endings=st.sampled_from(["\n", "\r\n", "\r"]))
def test_hostile_input_is_accounted_for(tmp_path, lines, endings):
    assert_lines_accounted(write(tmp_path, endings.join(lines), "hostile.log"), SOURCE)
