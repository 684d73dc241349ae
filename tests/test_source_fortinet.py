"""FortiGate source: the public key=value samples, CEF fixtures
written from Fortinet's documented FortiOS CEF mapping, detection and hostile input."""

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlens.sources import detect, get
from sourcekit import (assert_lines_accounted, checked_reasons as reasons, hostile_lines, one as row, parse,
                       sample_path, SAMPLES, utc, write)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "fortinet"
SOURCE = get("fortinet")
KV_SAMPLES = ["traffic_forward_1.txt", "traffic_forward_2.txt", "traffic_forward_3.txt",
              "traffic_forward_4.txt", "traffic_forward_5.txt", "traffic_forward_6.txt",
              "traffic_forward_9.txt", "traffic_local.txt", "traffic_sniffer.txt"]


def run(path):
    return parse(path, SOURCE)


def sample(name):
    return run(sample_path("fortinet", name, reason="shared Fortinet sample not present"))


# ---- public key=value samples ----------------------------------------------------------------------

@pytest.mark.parametrize("name", KV_SAMPLES)
def test_kv_samples_normalize_without_quarantine(name):
    table, quarantine, skipped, records = sample(name)
    assert (records, table.num_rows, skipped, quarantine.num_rows) == (1, 1, 0, 0)
    r = table.to_pylist()[0]
    assert (r["EventVendor"], r["EventProduct"], r["EventType"]) == ("Fortinet", "FortiGate", "NetworkSession")
    assert r["NetworkProtocol"] == "TCP" or r["DstPortNumber"] == 53


def test_kv_forward_close_utm_allow():
    r = sample("traffic_forward_1.txt")[0].to_pylist()[0]
    assert r["TimeGenerated"] == datetime(2019, 5, 10, 18, 37, 47, 369913, tzinfo=timezone.utc)  # eventtime (ns)
    assert r["EventStartTime"] == datetime(2019, 5, 10, 18, 35, 51, 369913, tzinfo=timezone.utc)
    assert (r["SrcIpAddr"], r["SrcPortNumber"], r["DstIpAddr"], r["DstPortNumber"]) == \
        ("10.1.100.11", 58012, "23.59.154.35", 80)
    assert (r["DvcAction"], r["DvcOriginalAction"], r["EventResult"]) == (None, "close", "Success")
    assert r["NetworkDuration"] == 116_000  # seconds -> ms
    assert (r["SrcBytes"], r["DstBytes"], r["NetworkBytes"]) == (1188, 1224, 2412)
    assert (r["SrcPackets"], r["DstPackets"], r["NetworkPackets"]) == (17, 16, 33)
    assert (r["SrcNatIpAddr"], r["SrcNatPortNumber"]) == ("172.16.200.2", 58012)
    assert r["NetworkDirection"] is None  # interface roles are "undefined"
    assert (r["NetworkSessionId"], r["NetworkRuleName"]) == ("105048", "1")
    assert r["NetworkApplicationProtocol"] == "HTTP"
    assert r["EventCount"] == 1


def test_kv_close_with_utm_block_is_partial():
    r = sample("traffic_forward_2.txt")[0].to_pylist()[0]
    assert (r["DvcAction"], r["EventResult"]) == (None, "Partial")


def test_kv_client_reset_outbound():
    r = sample("traffic_forward_5.txt")[0].to_pylist()[0]
    assert (r["DvcAction"], r["EventResult"], r["NetworkDirection"]) == ("Reset Source", "Failure", "Outbound")
    assert r["TimeGenerated"] == utc(2019, 5, 16, 1, 3, 39)  # 10-digit eventtime
    assert (r["SrcZone"], r["DstZone"]) == ("lan", "wan")
    assert r["DstPackets"] is None and r["NetworkPackets"] is None  # rcvdpkt missing


def test_kv_server_reset_and_accept():
    r = sample("traffic_forward_9.txt")[0].to_pylist()[0]
    assert (r["DvcAction"], r["EventResult"], r["DstPortNumber"]) == ("Reset Destination", "Failure", 443)
    r = sample("traffic_forward_4.txt")[0].to_pylist()[0]
    assert (r["DvcAction"], r["EventResult"], r["NetworkProtocol"], r["DstPortNumber"]) == \
        ("Allow", "Success", "UDP", 53)
    assert r["NetworkDuration"] == 180_000


# ---- fixtures ---------------------------------------------------------------------------------------------

def test_kv_fixture():
    table, quarantine, skipped, records = run(FIXTURES / "kv.log")
    assert (records, table.num_rows, skipped, quarantine.num_rows) == (9, 4, 3, 2)
    assert reasons(quarantine) == {6: "missing source or destination address", 7: "not a FortiGate log record"}
    r = row(table, NetworkSessionId="1001")  # ICMP with hex type/code, syslog header, tz
    assert r["TimeGenerated"] == utc(2024, 6, 10, 8, 0, 1)
    assert (r["NetworkProtocol"], r["SrcPortNumber"], r["DstPortNumber"]) == ("ICMP", None, None)
    assert (r["NetworkIcmpType"], r["NetworkIcmpCode"]) == ("Echo", 0)
    assert (r["SrcNatIpAddr"], r["SrcNatPortNumber"]) == ("203.0.113.2", None)
    assert (r["NetworkRuleName"], r["Dvc"], r["DvcId"]) == ("LAN to WAN", "fgt-branch", "FGT60F0000000001")
    r = row(table, NetworkSessionId="1002")  # IPv6, date/time with tz, no eventtime
    assert r["TimeGenerated"] == utc(2024, 6, 10, 15, 0, 2)
    assert (r["NetworkProtocolVersion"], r["DvcAction"], r["NetworkDirection"]) == ("IPv6", "Deny", "Inbound")
    assert r["EventSeverity"] == "Low"
    r = row(table, NetworkSessionId="1008")  # quoted value with spaces and escaped quotes
    assert r["NetworkRuleName"] == 'web "strict" out'
    assert (r["EventResult"], r["EventResultDetails"]) == ("Failure", "Timeout")
    r = row(table, NetworkSessionId="1009")  # DNAT, close + utm block
    assert (r["DstNatIpAddr"], r["DstNatPortNumber"], r["EventResult"]) == ("10.2.0.5", 8443, "Partial")


def test_cef_fixture_prefix_variants():
    table, quarantine, skipped, records = run(FIXTURES / "cef.log")
    assert (records, table.num_rows, skipped, quarantine.num_rows) == (7, 4, 1, 2)
    assert reasons(quarantine) == {5: "not a FortiGate log record", 6: "not a FortiGate log record"}
    r = row(table, NetworkSessionId="402")  # FTNTFGT prefix
    assert r["TimeGenerated"] == utc(2024, 6, 10, 8, 0, 10)
    assert (r["SrcBytes"], r["DstBytes"]) == (3652, 146668)  # out = sentbyte
    assert (r["SrcPackets"], r["DstPackets"], r["NetworkDuration"]) == (58, 105, 2000)
    assert (r["NetworkDirection"], r["DvcId"], r["NetworkApplicationProtocol"]) == ("Outbound", "FGT5HD3915800610", "HTTPS")
    assert (r["DvcInboundInterface"], r["DvcOutboundInterface"]) == ("port12", "port11")
    r = row(table, NetworkSessionId="7002")  # unprefixed, rt epoch ms, escapes
    assert r["TimeGenerated"] == utc(2024, 6, 10, 10, 0, 11)
    assert r["NetworkRuleName"] == "Block = RDP \\ all"
    assert (r["DvcAction"], r["EventSeverity"], r["Dvc"]) == ("Deny", "High", "faz01")
    r = row(table, SrcIpAddr="2001:db8::5")  # FortinetFortiGate prefix, action from the name
    assert (r["DvcAction"], r["NetworkDirection"], r["NetworkProtocol"]) == ("Allow", "Local", "UDP")
    assert r["EventOriginalType"] == "local"
    r = row(table, NetworkSessionId="56633")  # FortiOS 5.6 doc line: `CEF: 0`, policy id by label
    now = datetime.now(timezone.utc)  # header without a year: this year unless in the future
    year = now.year if utc(now.year, 2, 12, 11, 11, 30) <= now + timedelta(days=1) else now.year - 1
    assert r["TimeGenerated"] == utc(year, 2, 12, 11, 11, 30)
    assert (r["NetworkRuleName"], r["SrcHostname"], r["DstHostname"]) == ("10", "192.168.1.183", "192.168.70.184")
    assert (r["SrcBytes"], r["DstBytes"], r["EventResult"], r["NetworkDuration"]) == (398, 1605, "Partial", 7000)


# ---- detection --------------------------------------------------------------------------------------------

def test_detect_picks_fortinet():
    paths = [FIXTURES / "kv.log", FIXTURES / "cef.log"]
    if (SAMPLES / "fortinet").exists():  # (the CommonSecurityLog export there is `sentinel`'s)
        paths += sorted(p for p in (SAMPLES / "fortinet").iterdir() if p.suffix != ".csv")
    for path in paths:
        assert detect(str(path)).name == "fortinet", path


# ---- hostile input ---------------------------------------------------------------------------------------------

_GOOD = [line for name in ("kv.log", "cef.log") for line in (FIXTURES / name).read_text().splitlines()]
_pieces = hostile_lines(_GOOD, [
    'type="traffic" srcip=1.1.1.1 dstip=', 'logid="', 'a="""" b=\\" type=traffic',
    "CEF:0|Fortinet|Fortigate|1|2|traffic:forward accept|3|src=::1 dst=::2 act=",
    "x=" * 100, "\x00", "srcip=" + "9" * 500], cut=3)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_pieces, max_size=25), endings=st.sampled_from(["\n", "\r\n", "\r"]))
def test_hostile_input_is_accounted_for(tmp_path, lines, endings):
    assert_lines_accounted(write(tmp_path, endings.join(lines), "hostile.log"), SOURCE)
