"""Cisco Meraki MX syslog source: the public sample, fixtures, detection and hostile input."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlens.sources import detect, get
from sourcekit import assert_lines_accounted, one, parse, sample_path, SAMPLES, write

SAMPLE = SAMPLES / "cisco_meraki" / "test-flows.log"
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "meraki" / "mx.log"
SOURCE = get("meraki")
UTC = timezone.utc


def run(path, batch_lines: int = 100_000):
    return parse(path, SOURCE, batch_lines).lists()


def pick(row, *names):
    return {n: row[n] for n in names}


KEYS = ("TimeGenerated", "EventOriginalType", "DvcAction", "EventResult", "NetworkProtocol", "SrcIpAddr",
        "SrcPortNumber", "DstIpAddr", "DstPortNumber", "NetworkDirection", "Dvc")


@pytest.fixture(scope="module")
def sample():
    return run(sample_path("cisco_meraki", "test-flows.log"))


def test_sample_counts(sample):
    rows, quarantine, skipped, records = sample
    assert (len(rows), skipped, len(quarantine), records) == (17, 0, 0, 17)
    assert all((r["EventVendor"], r["EventProduct"], r["EventType"]) == ("Cisco", "Meraki", "Flow") for r in rows)
    assert sorted({r["EventOriginalType"] for r in rows}) == [
        "bridge_anyconnect_client_vpn_firewall", "cellular_firewall", "firewall", "flows", "vpn_firewall"]
    assert sum(r["DvcAction"] == "Allow" for r in rows) == 14
    assert sum(r["DvcAction"] == "Deny" for r in rows) == 2


def test_sample_values(sample):
    rows = sample[0]
    old = one(rows, SrcIpAddr="10.0.2.170")
    assert pick(old, *KEYS, "SrcMacAddr", "DvcOriginalAction", "NetworkRuleName") == {
        "TimeGenerated": datetime(2022, 3, 17, 1, 3, 8, 289402, tzinfo=UTC), "EventOriginalType": "flows",
        "DvcAction": "Allow", "EventResult": "Success", "NetworkProtocol": "UDP", "SrcIpAddr": "10.0.2.170",
        "SrcPortNumber": 54841, "DstIpAddr": "10.0.0.34", "DstPortNumber": 15600, "NetworkDirection": None,
        "Dvc": "MX84_4", "SrcMacAddr": "00:7C:2D:BD:76:F2", "DvcOriginalAction": "allow",
        "NetworkRuleName": None}
    no_action = one(rows, SrcIpAddr="216.160.83.57")
    assert pick(no_action, "DvcAction", "EventResult", "NetworkRuleName", "DstPortNumber", "EventSeverity") == {
        "DvcAction": None, "EventResult": "NA", "NetworkRuleName": "1 all", "DstPortNumber": 44210,
        "EventSeverity": "Informational"}
    icmp6 = one(rows, SrcIpAddr="fe80::1021:83ca:b68:4cd8")
    assert pick(icmp6, "NetworkProtocol", "NetworkProtocolVersion", "NetworkIcmpType", "NetworkIcmpCode",
                "DstIpAddr", "DstPortNumber", "TimeGenerated") == {
        "NetworkProtocol": "IPV6-ICMP", "NetworkProtocolVersion": "IPv6", "NetworkIcmpType": "Neighbor Solicitation",
        "NetworkIcmpCode": None, "DstIpAddr": "ff02::1:ffb6:a227", "DstPortNumber": None,
        "TimeGenerated": datetime(2022, 9, 28, 16, 34, 39, 496990, tzinfo=UTC)}
    assert one(rows, DstIpAddr="224.0.0.2")["NetworkProtocol"] == "IGMP"  # protocol=2
    assert one(rows, SrcIpAddr="172.16.10.14")["NetworkIcmpType"] == "Echo"
    policy = one(rows, DstPortNumber=9998)
    assert (policy["DvcAction"], policy["NetworkRuleName"]) == ("Allow", "Group Policy Allow")
    deny = one(rows, DstPortNumber=3289)
    assert pick(deny, "DvcAction", "EventResult", "NetworkRuleName", "EventSeverity") == {
        "DvcAction": "Deny", "EventResult": "Failure", "NetworkRuleName": "deny (src 10.10.0.0/16)",
        "EventSeverity": "Low"}
    cell = one(rows, EventOriginalType="cellular_firewall")
    assert pick(cell, *KEYS) == {
        "TimeGenerated": datetime(2000, 1, 17, 19, 14, 46, 721741, tzinfo=UTC),
        "EventOriginalType": "cellular_firewall", "DvcAction": "Allow", "EventResult": "Success",
        "NetworkProtocol": "UDP", "SrcIpAddr": "10.10.10.11", "SrcPortNumber": 9562,
        "DstIpAddr": "10.241.77.255", "DstPortNumber": 53, "NetworkDirection": None, "Dvc": "MX60"}


@pytest.fixture(scope="module")
def fixture():
    return run(FIXTURE)


def test_fixture_counts_and_quarantine(fixture):
    rows, quarantine, skipped, records = fixture
    assert (len(rows), skipped, len(quarantine), records) == (9, 3, 5, 17)  # events, urls, security_event
    assert [(q["line"], q["reason"]) for q in sorted(quarantine, key=lambda q: q["line"])] == [
        (13, "flows record without src= or dst="),
        (14, "not a Cisco Meraki syslog record"),
        (15, "not a Cisco Meraki syslog record"),
        (16, "SrcPortNumber: port outside 0-65535"),
        (17, "NetworkProtocol: unknown protocol"),
    ]
    assert all(q["source"] == "meraki" for q in quarantine)


def test_fixture_nat_ipv6_and_forms(fixture):
    rows = fixture[0]
    start = one(rows, EventOriginalType="ip_flow_start")
    assert pick(start, "SrcIpAddr", "SrcPortNumber", "DstIpAddr", "DstPortNumber", "SrcNatIpAddr",
                "SrcNatPortNumber", "DstNatIpAddr", "DvcAction", "EventResult") == {
        "SrcIpAddr": "10.0.0.234", "SrcPortNumber": 34294, "DstIpAddr": "81.2.69.145", "DstPortNumber": 80,
        "SrcNatIpAddr": "1.128.3.4", "SrcNatPortNumber": 34294, "DstNatIpAddr": None, "DvcAction": None,
        "EventResult": "NA"}
    end = one(rows, EventOriginalType="ip_flow_end")
    assert pick(end, "DstIpAddr", "DstPortNumber", "DstNatIpAddr", "DstNatPortNumber", "SrcNatIpAddr") == {
        "DstIpAddr": "10.0.0.1", "DstPortNumber": 53, "DstNatIpAddr": "89.160.20.112", "DstNatPortNumber": 53,
        "SrcNatIpAddr": None}
    v6 = one(rows, SrcIpAddr="2001:db8::5")
    assert pick(v6, "SrcPortNumber", "DstIpAddr", "DstPortNumber", "NetworkProtocolVersion", "DvcAction",
                "TimeGenerated") == {
        "SrcPortNumber": 51000, "DstIpAddr": "2001:db8::80", "DstPortNumber": 443,
        "NetworkProtocolVersion": "IPv6", "DvcAction": "Allow",
        "TimeGenerated": datetime(2023, 11, 14, 22, 13, 20, 1, tzinfo=UTC)}
    colon = one(rows, SrcIpAddr="10.0.0.5")
    assert pick(colon, "SrcPortNumber", "DstIpAddr", "DstPortNumber", "DvcAction") == {
        "SrcPortNumber": 1234, "DstIpAddr": "93.184.216.34", "DstPortNumber": 8443, "DvcAction": "Deny"}
    assert pick(one(rows, SrcIpAddr="10.0.0.6"), "DvcAction", "EventResult", "NetworkRuleName") == {
        "DvcAction": None, "EventResult": "NA", "NetworkRuleName": "0 all"}
    assert one(rows, EventOriginalType="vpn_firewall")["NetworkIcmpType"] == "Destination Unreachable"
    blocked = one(rows, EventOriginalType="cellular_firewall")
    assert (blocked["DvcAction"], blocked["NetworkProtocol"]) == ("Deny", "UDP")  # protocol=17
    relayed = one(rows, SrcIpAddr="10.0.0.9")
    assert (relayed["DvcAction"], relayed["DstPortNumber"], relayed["Dvc"]) == ("Allow", 22, "MX450")
    assert one(rows, SrcIpAddr="10.0.0.10")["TimeGenerated"] == datetime(2023, 11, 14, 22, 13, 26, 750000, tzinfo=UTC)


def test_batches_do_not_change_results(fixture):
    rows, quarantine, skipped, records = run(FIXTURE, batch_lines=4)
    assert (rows, skipped, records) == (fixture[0], fixture[2], fixture[3])
    assert sorted(q["line"] for q in quarantine) == sorted(q["line"] for q in fixture[1])


def test_detect():
    assert detect(str(FIXTURE)).name == "meraki"
    if SAMPLE.is_file():
        assert detect(str(SAMPLE)).name == "meraki"


_TEMPLATES = [line for line in FIXTURE.read_text().splitlines() if line]
_fragment = st.one_of(
    st.sampled_from(_TEMPLATES),
    st.builds(lambda t, n: t[:n], st.sampled_from(_TEMPLATES), st.integers(0, 160)),
    st.builds(lambda t, a, b: t.replace(a, b, 1), st.sampled_from(_TEMPLATES),
              st.sampled_from(["src=", "dst=", "sport=", "dport=", "protocol=", "pattern:", "1 17", "[", ":"]),
              st.one_of(st.text(max_size=12), st.integers(-10, 10**12).map(str))),
    st.text(max_size=80),
    st.binary(max_size=80).map(lambda b: b.decode("latin-1")),
)
_ending = st.sampled_from(["\n", "\r\n", "\r", "\n\n"])


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(_fragment, _ending), max_size=20), st.sampled_from([4, 10_000]), st.booleans())
def test_hostile_input_never_raises(tmp_path, parts, batch_lines, raw_bytes):
    text = "".join(f + e for f, e in parts)
    path = write(tmp_path, text.encode("latin-1", errors="replace") if raw_bytes else text, "hostile.log")
    assert_lines_accounted(path, SOURCE, batch_lines, internal_errors_ok=True)
