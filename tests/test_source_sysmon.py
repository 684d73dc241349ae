import json
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlens import sources
from sourcekit import by_uid, parse, parse_text, reasons, sample_path, SAMPLES, UTC

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sysmon"
SOURCE = sources.get("sysmon")


def run(path, source=SOURCE, batch_lines=100_000):
    return parse(path, source, batch_lines)


# ---------------------------------------------------------------- sample


def test_sample_windows_event_3():
    path = sample_path("sysmon", "03-NetworkConnect.xml", reason="sample not present")
    rows, quarantine, skipped, records = run(path)
    assert (rows.num_rows, quarantine.num_rows, skipped, records) == (1, 0, 0, 1)
    r = rows.to_pylist()[0]
    assert r["TimeGenerated"] == r["EventStartTime"] == r["EventEndTime"] == \
        datetime(2025, 3, 22, 10, 16, 5, 738000, tzinfo=UTC)
    assert (r["SrcIpAddr"], r["SrcPortNumber"], r["DstIpAddr"], r["DstPortNumber"]) == \
        ("192.168.1.45", 54321, "185.220.101.47", 443)
    assert (r["NetworkProtocol"], r["NetworkDirection"], r["EventResult"], r["DvcAction"]) == \
        ("TCP", "Outbound", "Success", None)
    assert (r["EventType"], r["EventCount"], r["EventOriginalType"], r["EventOriginalUid"]) == \
        ("EndpointNetworkSession", 1, "3", "1003")
    assert (r["SrcAppName"], r["SrcUsername"]) == ("C:\\Users\\jdoe\\AppData\\Local\\Temp\\payload.exe", "CORP\\jdoe")
    assert (r["Dvc"], r["DvcHostname"], r["DvcIpAddr"], r["SrcHostname"]) == \
        ("WORKSTATION01.corp.local", "WORKSTATION01", "192.168.1.45", "WORKSTATION01")
    assert (r["NetworkApplicationProtocol"], r["NetworkProtocolVersion"]) == ("HTTPS", "IPv4")
    assert (r["EventVendor"], r["EventProduct"]) == ("Microsoft", "Sysmon")
    extra = json.loads(r["AdditionalFields"])
    assert extra["DvcOs"] == "Windows" and extra["ProcessId"] == 4812


# ---------------------------------------------------------------- own fixtures


def test_linux_syslog_fixture():
    rows, quarantine, skipped, records = run(FIXTURES / "linux_syslog.log")
    assert (rows.num_rows, quarantine.num_rows, skipped, records) == (3, 3, 2, 8)
    assert reasons(quarantine) == {5: "truncated: <Event> with no </Event>",
                                   6: "SourceIp/DestinationIp: missing",
                                   8: "DstPortNumber: port outside 0-65535"}
    r = by_uid(rows)
    plain = r["62099"]  # the real Linux line: no Image, no User
    assert (plain["SrcIpAddr"], plain["SrcPortNumber"], plain["DstIpAddr"], plain["DstPortNumber"]) == \
        ("192.168.2.2", 37678, "192.168.2.3", 3307)
    assert (plain["SrcAppName"], plain["SrcUsername"], plain["NetworkDirection"]) == (None, None, "Outbound")
    assert plain["TimeGenerated"] == datetime(2026, 1, 22, 13, 17, 16, 412000, tzinfo=UTC)
    assert json.loads(plain["AdditionalFields"])["DvcOs"] == "Linux"
    inbound = r["62100"]  # fields in reverse order, IPv6, Initiated=false
    assert (inbound["SrcIpAddr"], inbound["SrcPortNumber"], inbound["DstIpAddr"], inbound["DstPortNumber"]) == \
        ("2001:db8::99", 51515, "2001:db8::2", 22)
    assert (inbound["NetworkDirection"], inbound["NetworkProtocolVersion"], inbound["DvcIpAddr"]) == \
        ("Inbound", "IPv6", "2001:db8::2")
    assert (inbound["DstAppName"], inbound["DstUsername"], inbound["SrcAppName"]) == ("/usr/sbin/sshd", "root", None)
    assert inbound["SrcHostname"] == "attacker"
    assert json.loads(inbound["AdditionalFields"])["SrcFQDN"] == "attacker.example.net"
    udp = r["62104"]
    assert (udp["NetworkProtocol"], udp["SrcPortNumber"], udp["DstPortNumber"], udp["SrcAppName"]) == \
        ("UDP", None, 53, "/usr/lib/a&b")


@pytest.mark.parametrize("name", ["events_export.xml", "events_utf16.xml"])
@pytest.mark.parametrize("batch_lines", [100_000, 2])
def test_windows_export_fixture(name, batch_lines):
    rows, quarantine, skipped, records = run(FIXTURES / name, batch_lines=batch_lines)
    # two events on line 2 (one is EventID 22: skipped), one pretty-printed from line 3,
    # a Security-Auditing event (skipped); comments and <Events> framing are not records
    assert (rows.num_rows, quarantine.num_rows, skipped, records) == (2, 0, 2, 4)
    r = by_uid(rows)
    smb = r["2001"]
    assert (smb["SrcIpAddr"], smb["DstIpAddr"], smb["DstPortNumber"], smb["NetworkDirection"]) == \
        ("10.9.9.9", "10.1.1.20", 445, "Inbound")
    assert (smb["DstAppName"], smb["DstHostname"], smb["NetworkApplicationProtocol"]) == \
        ("System", "WS02", "MICROSOFT-DS")
    pretty = r["2003"]
    assert (pretty["SrcIpAddr"], pretty["SrcPortNumber"], pretty["DstIpAddr"], pretty["DstPortNumber"]) == \
        ("10.1.1.20", 49999, "52.1.2.3", 8443)
    assert (pretty["SrcAppName"], pretty["SrcUsername"], pretty["DstHostname"]) == \
        ("C:\\Tools\\x.exe", "CORP\\bob", "api")


def test_truncated_pretty_event_at_end_of_file(tmp_path):
    text = (FIXTURES / "events_export.xml").read_text().splitlines()
    path = tmp_path / "cut.xml"
    path.write_text("\n".join(text[:20]) + "\n")  # the pretty-printed event (line 3) is cut
    rows, quarantine, skipped, records = run(path, batch_lines=4)
    assert (rows.num_rows, skipped) == (1, 1)
    assert reasons(quarantine) == {3: "truncated: <Event> with no </Event> before the end of the file"}


# ---------------------------------------------------------------- detection


def test_detect():
    for path in [FIXTURES / "linux_syslog.log", FIXTURES / "events_export.xml", FIXTURES / "events_utf16.xml",
                 SAMPLES / "sysmon" / "03-NetworkConnect.xml"]:
        if path.exists():
            assert sources.detect(str(path)).name == "sysmon", path


# ---------------------------------------------------------------- hostile input

EVENT = (FIXTURES / "linux_syslog.log").read_text().splitlines()[0] if (FIXTURES / "linux_syslog.log").exists() else ""
pieces = st.one_of(
    st.just(EVENT), st.text(max_size=30),
    st.integers(0, max(len(EVENT) - 1, 0)).map(lambda i: EVENT[:i]),
    st.integers(0, max(len(EVENT) - 1, 0)).map(lambda i: EVENT[i:]),
    st.sampled_from(["<Events>", "</Events>", "<Event>", "</Event>", "<!-- c -->", "<?xml version='1.0'?>",
                     '<Event><System><EventID>3</EventID></System><EventData><Data Name="SourceIp">x</Data>'
                     '</EventData></Event>', "<Event xmlns='x'>", '<Data Name="DestinationPort">7</Data>']),
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(pieces, min_size=1, max_size=3).map("".join), max_size=20),
       st.sampled_from(["\n", "\r\n", "\r"]), st.integers(1, 6))
def test_property_text(tmp_path, lines, newline, batch_lines):
    rows, quarantine, skipped, records = parse_text(tmp_path, newline.join(lines), SOURCE, "events.xml", batch_lines)
    assert rows.num_rows + quarantine.num_rows + skipped == records
    assert records >= sum(1 for line in lines if line == EVENT)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=600), st.booleans())
def test_property_bytes(tmp_path, data, utf16):
    parse_text(tmp_path, (b"\xff\xfe" if utf16 else b"") + data, SOURCE, "events.xml", 3)
