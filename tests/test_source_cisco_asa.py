"""Cisco ASA source: the public sample, fixtures written from Cisco's message formats, format
detection and hostile input."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlens.sources import detect, get
from sourcekit import assert_lines_accounted, one, parse, sample_path, SAMPLES, write

SAMPLE = SAMPLES / "cisco_asa" / "sample.log"
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "cisco_asa" / "messages.log"
SOURCE = get("cisco-asa")
UTC = timezone.utc


def run(path, batch_lines: int = 100_000):
    return parse(path, SOURCE, batch_lines).lists()


def pick(row, *names):
    return {n: row[n] for n in names}


# ---- the public sample -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample():
    return run(sample_path("cisco_asa", "sample.log"))


def test_sample_counts(sample):
    rows, quarantine, skipped, records = sample
    assert (len(rows), skipped, len(quarantine), records) == (40, 4, 0, 44)  # 4 x 305011 skipped
    assert sorted({r["EventOriginalType"] for r in rows}) == [
        "106006", "106007", "106023", "106100", "302013", "302015", "302016", "302021"]
    assert all((r["EventVendor"], r["EventProduct"]) == ("Cisco", "ASA") for r in rows)


def test_sample_deny_and_acl(sample):
    rows = sample[0]
    r = one(rows, EventOriginalType="106023", SrcPortNumber=63016, NetworkIcmpCode=None)
    assert pick(r, "TimeGenerated", "DvcAction", "EventResult", "NetworkProtocol", "SrcIpAddr", "DstIpAddr",
                "DstPortNumber", "NetworkRuleName", "DvcInboundInterface", "DvcOutboundInterface") == {
        "TimeGenerated": datetime(2013, 4, 15, 9, 36, 50, tzinfo=UTC), "DvcAction": "Deny",
        "EventResult": "Failure", "NetworkProtocol": "TCP", "SrcIpAddr": "10.1.2.30",
        "DstIpAddr": "192.0.0.8", "DstPortNumber": 53, "NetworkRuleName": "acl_dmz",
        "DvcInboundInterface": "dmz", "DvcOutboundInterface": "outside"}
    icmp = one(rows, EventOriginalType="106023", SrcPortNumber=63016, NetworkIcmpCode=0)
    assert icmp["NetworkIcmpType"] == "Destination Unreachable"
    # EDT header -> UTC; 106100 hit-cnt -> EventCount
    edt = one(rows, EventOriginalType="106100", DstIpAddr="192.0.0.89", SrcPortNumber=2241, SrcIpAddr="10.1.2.16")
    assert edt["TimeGenerated"] == datetime(2014, 4, 15, 13, 34, 34, tzinfo=UTC)
    agg = one(rows, EventOriginalType="106100", SrcPortNumber=1065)
    assert pick(agg, "EventCount", "DvcAction", "EventResult", "NetworkProtocol", "DstPortNumber", "Dvc",
                "NetworkRuleName") == {"EventCount": 144, "DvcAction": "Allow", "EventResult": "Success",
                                       "NetworkProtocol": "UDP", "DstPortNumber": 53, "Dvc": "INT-FW01",
                                       "NetworkRuleName": "inside"}
    denied = [r for r in rows if r["EventOriginalType"] == "106100" and r["DvcAction"] == "Deny"]
    assert len(denied) == 3 and all(r["EventResult"] == "Failure" for r in denied)
    assert sum(r["EventOriginalType"] == "106100" for r in rows) == 21
    dns = one(rows, EventOriginalType="106007", DstIpAddr="10.1.2.60")
    assert pick(dns, "DvcAction", "SrcIpAddr", "SrcPortNumber", "DstPortNumber", "EventOriginalResultDetails",
                "NetworkApplicationProtocol") == {
        "DvcAction": "Deny", "SrcIpAddr": "192.0.0.66", "SrcPortNumber": 12981, "DstPortNumber": 53,
        "EventOriginalResultDetails": "DNS Query", "NetworkApplicationProtocol": "DNS"}


def test_sample_outbound_swap_nat_and_teardown(sample):
    rows = sample[0]
    built = one(rows, EventOriginalType="302013", NetworkSessionId="89743274")
    assert pick(built, "SrcIpAddr", "SrcPortNumber", "DstIpAddr", "DstPortNumber", "SrcNatIpAddr",
                "SrcNatPortNumber", "DstNatIpAddr", "NetworkDirection", "EventSubType", "DvcAction",
                "EventResult") == {
        "SrcIpAddr": "10.123.3.42", "SrcPortNumber": 4952, "DstIpAddr": "192.0.2.43", "DstPortNumber": 443,
        "SrcNatIpAddr": "10.123.3.42", "SrcNatPortNumber": 12834, "DstNatIpAddr": None,
        "NetworkDirection": "Outbound", "EventSubType": "Start", "DvcAction": "Allow", "EventResult": "Success"}
    udp = one(rows, EventOriginalType="302015", NetworkSessionId="89743275")
    assert pick(udp, "SrcIpAddr", "SrcPortNumber", "DstIpAddr", "DstPortNumber", "DstNatIpAddr") == {
        "SrcIpAddr": "10.123.1.35", "SrcPortNumber": 52925, "DstIpAddr": "192.0.2.222",
        "DstPortNumber": 53, "DstNatIpAddr": "192.0.2.43"}
    # the teardown of 89743275 takes the orientation of its Built message
    down = one(rows, EventOriginalType="302016", NetworkSessionId="89743275")
    assert pick(down, "SrcIpAddr", "DstIpAddr", "DstPortNumber", "NetworkDirection", "NetworkBytes",
                "NetworkDuration", "EventSubType", "DvcAction") == {
        "SrcIpAddr": "10.123.1.35", "DstIpAddr": "192.0.2.222", "DstPortNumber": 53,
        "NetworkDirection": "Outbound", "NetworkBytes": 140, "NetworkDuration": (3600 + 23 * 60 + 45) * 1000,
        "EventSubType": "End", "DvcAction": "Allow"}
    # no Built in the file: kept as logged, bare usernames after the tuples
    lone = one(rows, EventOriginalType="302016", NetworkSessionId="666")
    assert pick(lone, "SrcIpAddr", "SrcPortNumber", "DstPortNumber", "NetworkDirection", "NetworkBytes",
                "NetworkDuration", "SrcUsername", "DstUsername") == {
        "SrcIpAddr": "192.0.2.222", "SrcPortNumber": 53, "DstPortNumber": 52925, "NetworkDirection": None,
        "NetworkBytes": 9999999, "NetworkDuration": 36_000_000, "SrcUsername": "user1", "DstUsername": "user2"}
    icmp = one(rows, EventOriginalType="302021")
    assert pick(icmp, "NetworkProtocol", "SrcIpAddr", "DstIpAddr", "SrcPortNumber", "DstPortNumber",
                "EventSubType", "Dvc", "TimeGenerated") == {
        "NetworkProtocol": "ICMP", "SrcIpAddr": "172.24.177.29", "DstIpAddr": "192.168.132.46",
        "SrcPortNumber": None, "DstPortNumber": None, "EventSubType": "End", "Dvc": "FJSG2NRFW01",
        "TimeGenerated": datetime(2011, 6, 4, 21, 59, 52, tzinfo=UTC)}
    named = [r for r in rows if r["EventOriginalType"] == "302013" and r["NetworkSessionId"] == "447236"]
    assert len(named) == 2 and all(r["SrcHostname"] == "OCSP_Server" and r["SrcIpAddr"] is None
                                   and r["SrcPortNumber"] == 5678 and r["DstIpAddr"] == "192.0.2.222"
                                   and r["DstPortNumber"] == 1234 for r in named)
    assert all(r["Dvc"] is None for r in named)  # `<IP>` placeholder host


# ---- fixtures from Cisco's documented formats ----------------------------------------------------

@pytest.fixture(scope="module")
def fixture():
    return run(FIXTURE)


def test_fixture_counts_and_quarantine(fixture):
    rows, quarantine, skipped, records = fixture
    assert (len(rows), skipped, len(quarantine), records) == (35, 3, 6, 44)
    assert [(q["line"], q["reason"]) for q in sorted(quarantine, key=lambda q: q["line"])] == [
        (38, "CEF record from Palo Alto Networks|PAN-OS, not Cisco ASA"),
        (39, "ASA 302013: message text does not match the documented format"),
        (40, "not a Cisco ASA syslog or CEF record"),
        (41, "not a Cisco ASA syslog or CEF record"),
        (42, "TimeGenerated: missing"),
        (43, "SrcPortNumber: port outside 0-65535"),
    ]
    assert all(q["source"] == "cisco-asa" and q["file"] == str(FIXTURE) for q in quarantine)
    ids = {r["EventOriginalType"] for r in rows}
    assert ids == {"106001", "106006", "106007", "106010", "106014", "106015", "106016", "106018", "106021",
                   "106023", "106100", "302013", "302014", "302015", "302016", "302020", "302021",
                   "710002", "710003", "710005"}


def test_fixture_deny_families(fixture):
    rows = fixture[0]
    keys = ("DvcAction", "EventResult", "NetworkProtocol", "SrcIpAddr", "SrcPortNumber", "DstIpAddr",
            "DstPortNumber", "DvcInboundInterface")
    assert pick(one(rows, EventOriginalType="106001"), *keys, "AdditionalFields") == {
        "DvcAction": "Deny", "EventResult": "Failure", "NetworkProtocol": "TCP", "SrcIpAddr": "198.51.100.7",
        "SrcPortNumber": 43803, "DstIpAddr": "10.10.10.10", "DstPortNumber": 22,
        "DvcInboundInterface": "outside", "AdditionalFields": '{"TcpFlags":"SYN"}'}
    assert pick(one(rows, EventOriginalType="106006"), "NetworkProtocol", "DstPortNumber") == {
        "NetworkProtocol": "UDP", "DstPortNumber": 161}
    assert one(rows, EventOriginalType="106007")["EventOriginalResultDetails"] == "DNS Response"
    sctp = one(rows, EventOriginalType="106010")
    assert pick(sctp, "NetworkProtocol", "DstPortNumber", "DvcOutboundInterface") == {
        "NetworkProtocol": "SCTP", "DstPortNumber": 2905, "DvcOutboundInterface": "inside"}
    icmp = one(rows, EventOriginalType="106014")
    assert pick(icmp, "NetworkProtocol", "NetworkIcmpType", "NetworkIcmpCode", "SrcPortNumber",
                "DstPortNumber") == {"NetworkProtocol": "ICMP", "NetworkIcmpType": "Echo",
                                     "NetworkIcmpCode": 0, "SrcPortNumber": None, "DstPortNumber": None}
    nc = one(rows, EventOriginalType="106015")
    assert pick(nc, "SrcIpAddr", "SrcPortNumber", "DstPortNumber", "AdditionalFields", "DvcAction") == {
        "SrcIpAddr": "10.10.10.10", "SrcPortNumber": 443, "DstPortNumber": 53089,
        "AdditionalFields": '{"TcpFlags":"FIN PSH ACK"}', "DvcAction": "Deny"}
    spoof = one(rows, EventOriginalType="106016")
    assert pick(spoof, "SrcIpAddr", "DstIpAddr", "NetworkProtocol", "DvcAction") == {
        "SrcIpAddr": "10.1.1.1", "DstIpAddr": "10.10.10.10", "NetworkProtocol": None, "DvcAction": "Deny"}
    assert pick(one(rows, EventOriginalType="106018"), "NetworkIcmpType", "NetworkRuleName", "DstIpAddr") == {
        "NetworkIcmpType": "Echo", "NetworkRuleName": "acl_out", "DstIpAddr": "198.51.100.7"}
    assert one(rows, EventOriginalType="106021")["EventOriginalResultDetails"] == "reverse path check"


def test_fixture_106023_ipv6_protocol_number_and_acl_icmp(fixture):
    rows = fixture[0]
    v6 = one(rows, EventOriginalType="106023", NetworkProtocol="IPV6-ICMP")
    assert pick(v6, "SrcIpAddr", "DstIpAddr", "NetworkIcmpType", "NetworkIcmpCode", "NetworkProtocolVersion",
                "NetworkRuleName") == {
        "SrcIpAddr": "2001:db8::7", "DstIpAddr": "2001:db8:1::10", "NetworkIcmpType": "Echo Request",
        "NetworkIcmpCode": 0, "NetworkProtocolVersion": "IPv6", "NetworkRuleName": "outside_in"}
    rdp = one(rows, EventOriginalType="106023", DstPortNumber=3389)
    assert pick(rdp, "SrcIpAddr", "SrcPortNumber", "NetworkProtocol") == {
        "SrcIpAddr": "2001:db8::7", "SrcPortNumber": 51000, "NetworkProtocol": "TCP"}
    assert one(rows, EventOriginalType="106023", NetworkProtocol="GRE")["DstPortNumber"] is None
    fqdn = one(rows, EventOriginalType="106023", DstPortNumber=51635)
    assert pick(fqdn, "DstIpAddr", "DstHostname", "TimeGenerated") == {
        "DstIpAddr": "192.168.2.2", "DstHostname": "testhostname.example",
        "TimeGenerated": datetime(2012, 1, 13, 12, 51, 28, tzinfo=UTC)}  # MSK = UTC+3
    iso = one(rows, EventOriginalType="106023", DstPortNumber=5353)
    assert (iso["TimeGenerated"], iso["Dvc"]) == (datetime(2023, 3, 1, 12, 0, tzinfo=UTC), "asa02")
    acl = one(rows, EventOriginalType="106100")
    assert pick(acl, "NetworkProtocol", "NetworkIcmpType", "NetworkIcmpCode", "SrcPortNumber", "DstPortNumber",
                "EventCount", "DvcAction", "AdditionalFields") == {
        "NetworkProtocol": "ICMP", "NetworkIcmpType": "Echo", "NetworkIcmpCode": 0, "SrcPortNumber": None,
        "DstPortNumber": None, "EventCount": 3, "DvcAction": "Deny",
        "AdditionalFields": '{"AclHitInterval":"300-second interval"}'}


def test_fixture_connections_and_teardown_reasons(fixture):
    rows = fixture[0]
    inbound = one(rows, EventOriginalType="302013", NetworkSessionId="1001")
    assert pick(inbound, "SrcIpAddr", "SrcPortNumber", "DstIpAddr", "DstPortNumber", "DstNatIpAddr",
                "DstNatPortNumber", "SrcNatIpAddr", "NetworkDirection", "DstUsername") == {
        "SrcIpAddr": "198.51.100.7", "SrcPortNumber": 51234, "DstIpAddr": "10.10.10.10", "DstPortNumber": 443,
        "DstNatIpAddr": "203.0.113.10", "DstNatPortNumber": 443, "SrcNatIpAddr": None,
        "NetworkDirection": "Inbound", "DstUsername": "LOCAL\\alice"}
    fins = one(rows, EventOriginalType="302014", NetworkSessionId="1001")
    assert pick(fins, "DvcAction", "EventResult", "EventResultDetails", "EventOriginalResultDetails",
                "NetworkDuration", "NetworkBytes", "NetworkDirection", "DstPortNumber", "AdditionalFields") == {
        "DvcAction": None, "EventResult": "Success", "EventResultDetails": None,
        "EventOriginalResultDetails": "TCP FINs", "NetworkDuration": 3_723_000, "NetworkBytes": 123456,
        "NetworkDirection": "Inbound", "DstPortNumber": 443, "AdditionalFields": '{"TeardownInitiator":"outside"}'}
    out = one(rows, EventOriginalType="302014", NetworkSessionId="1002")
    assert pick(out, "SrcIpAddr", "SrcPortNumber", "DstIpAddr", "DstPortNumber", "NetworkDirection",
                "EventResult", "EventResultDetails", "NetworkDuration", "EventSeverity") == {
        "SrcIpAddr": "10.10.10.20", "SrcPortNumber": 50001, "DstIpAddr": "203.0.113.80", "DstPortNumber": 80,
        "NetworkDirection": "Outbound", "EventResult": "Failure", "EventResultDetails": "Reset",
        "NetworkDuration": 90_001_000, "EventSeverity": "Low"}  # 25 hours
    expected = {"1003": (None, "Failure", "Timeout"), "1004": ("Drop", "Failure", "Terminated"),
                "1005": ("Deny", "Failure", "Terminated"), "1006": (None, "NA", None)}
    for sid, (action, result, details) in expected.items():
        r = one(rows, EventOriginalType="302014", NetworkSessionId=sid)
        assert (r["DvcAction"], r["EventResult"], r["EventResultDetails"]) == (action, result, details), sid
        assert r["NetworkDirection"] is None and r["DstPortNumber"] > 50000  # no Built: as logged
    assert one(rows, EventOriginalType="302014", NetworkSessionId="1005")["SrcUsername"] == "LOCAL\\bob"
    udp6 = one(rows, EventOriginalType="302016", NetworkSessionId="2001")
    assert pick(udp6, "SrcIpAddr", "SrcPortNumber", "DstIpAddr", "DstPortNumber", "NetworkProtocolVersion",
                "NetworkDirection", "NetworkDuration") == {
        "SrcIpAddr": "2001:db8:1::20", "SrcPortNumber": 40000, "DstIpAddr": "2001:db8::53", "DstPortNumber": 53,
        "NetworkProtocolVersion": "IPv6", "NetworkDirection": "Outbound", "NetworkDuration": 0}


def test_fixture_icmp_connections(fixture):
    rows = fixture[0]
    keys = ("SrcIpAddr", "SrcNatIpAddr", "DstIpAddr", "DstNatIpAddr", "SrcPortNumber", "DstPortNumber",
            "NetworkDirection", "NetworkIcmpType", "NetworkIcmpCode", "EventSubType")
    start = one(rows, EventOriginalType="302020", NetworkDirection="Outbound")
    end = one(rows, EventOriginalType="302021")
    assert pick(start, *keys) == {
        "SrcIpAddr": "10.10.10.30", "SrcNatIpAddr": "203.0.113.10", "DstIpAddr": "198.51.100.9",
        "DstNatIpAddr": None, "SrcPortNumber": None, "DstPortNumber": None, "NetworkDirection": "Outbound",
        "NetworkIcmpType": "Echo", "NetworkIcmpCode": 0, "EventSubType": "Start"}
    assert pick(end, *keys) == {**pick(start, *keys), "EventSubType": "End"}
    inbound = one(rows, EventOriginalType="302020", NetworkDirection="Inbound")
    assert pick(inbound, "SrcIpAddr", "DstIpAddr", "DstNatIpAddr", "SrcNatIpAddr") == {
        "SrcIpAddr": "198.51.100.7", "DstIpAddr": "10.10.10.10", "DstNatIpAddr": "203.0.113.10",
        "SrcNatIpAddr": None}


def test_fixture_to_the_box_ftd_and_cef(fixture):
    rows = fixture[0]
    assert pick(one(rows, EventOriginalType="710002"), "DvcAction", "DstPortNumber") == {
        "DvcAction": "Allow", "DstPortNumber": 443}
    assert pick(one(rows, EventOriginalType="710003"), "DvcAction", "DstPortNumber", "EventResult") == {
        "DvcAction": "Deny", "DstPortNumber": 23, "EventResult": "Failure"}
    drops = [r for r in rows if r["EventOriginalType"] == "710005"]
    assert [(r["DvcAction"], r["DstPortNumber"]) for r in drops] == [("Drop", 137), ("Drop", None)]
    assert drops[1]["AdditionalFields"] == '{"DstService":"weird-svc"}'
    ftd = one(rows, EventOriginalType="302013", NetworkSessionId="3001")
    now = datetime.now(UTC)
    year = now.year if datetime(now.year, 5, 5, 17, 51, 17, tzinfo=UTC) <= now + timedelta(days=1) else now.year - 1
    assert ftd["TimeGenerated"] == datetime(year, 5, 5, 17, 51, 17, tzinfo=UTC)  # year-less header
    assert (ftd["Dvc"], ftd["AdditionalFields"]) == ("ftd01", '{"SyslogFacility":"FTD"}')
    cef_msg = one(rows, EventOriginalType="302013", NetworkSessionId="4001")
    assert pick(cef_msg, "TimeGenerated", "SrcIpAddr", "DstIpAddr", "DstPortNumber", "NetworkDirection", "Dvc",
                "EventProductVersion") == {
        "TimeGenerated": datetime(2023, 3, 1, 12, 0, 5, tzinfo=UTC), "SrcIpAddr": "10.10.10.40",
        "DstIpAddr": "203.0.113.90", "DstPortNumber": 443, "NetworkDirection": "Outbound", "Dvc": "asa03",
        "EventProductVersion": "9.16"}
    cef_keys = one(rows, EventOriginalType="106023", DstPortNumber=445)
    assert pick(cef_keys, "TimeGenerated", "SrcIpAddr", "SrcPortNumber", "DstIpAddr", "NetworkProtocol",
                "DvcAction", "DvcOriginalAction", "NetworkRuleName", "Dvc") == {
        "TimeGenerated": datetime(2023, 3, 1, 12, 0, 6, tzinfo=UTC), "SrcIpAddr": "198.51.100.7",
        "SrcPortNumber": 4444, "DstIpAddr": "10.10.10.10", "NetworkProtocol": "TCP", "DvcAction": "Deny",
        "DvcOriginalAction": "Deny", "NetworkRuleName": "outside_in", "Dvc": "asa03"}


def test_batches_do_not_change_results(fixture):
    rows, quarantine, skipped, records = run(FIXTURE, batch_lines=3)
    assert (rows, skipped, records) == (fixture[0], fixture[2], fixture[3])
    assert sorted(q["line"] for q in quarantine) == sorted(q["line"] for q in fixture[1])


def test_mixed_line_endings_and_encoding(tmp_path):
    good = FIXTURE.read_bytes().splitlines()
    path = tmp_path / "mixed.log"
    path.write_bytes(b"\xef\xbb\xbf" + good[0] + b"\r\n" + good[1] + b"\r" + b"\xff\xfe bad \x00\n\n"
                     + good[13] + b"\n" + good[14][:60] + b"\n" + good[15])
    rows, quarantine, skipped, records = run(path)
    assert (len(rows), skipped, records) == (4, 0, 6)
    assert sorted(q["line"] for q in quarantine) == [3, 6]


# ---- detection ---------------------------------------------------------------------------------

def test_detect_picks_asa():
    assert detect(str(FIXTURE)).name == "cisco-asa"
    if SAMPLE.is_file():
        assert detect(str(SAMPLE)).name == "cisco-asa"


# ---- hostile input -----------------------------------------------------------------------------

_TEMPLATES = [line for line in FIXTURE.read_text().splitlines() if line]
_fragment = st.one_of(
    st.sampled_from(_TEMPLATES),
    st.builds(lambda t, n: t[:n], st.sampled_from(_TEMPLATES), st.integers(0, 200)),
    st.builds(lambda t, a, b: t.replace(a, b, 1), st.sampled_from(_TEMPLATES),
              st.sampled_from(["10.10.10.10", "443", "1001", "Jun", "outside:", "TCP", "(", "%ASA-", "|"]),
              st.one_of(st.text(max_size=12), st.integers(-10, 10**12).map(str))),
    st.text(max_size=80),
    st.binary(max_size=80).map(lambda b: b.decode("latin-1")),
)
_ending = st.sampled_from(["\n", "\r\n", "\r", "\n\n"])


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(_fragment, _ending), max_size=15), st.sampled_from([6, 10_000]), st.booleans())
def test_hostile_input_never_raises(tmp_path, parts, batch_lines, raw_bytes):
    text = "".join(f + e for f, e in parts)
    path = write(tmp_path, text.encode("latin-1", errors="replace") if raw_bytes else text, "hostile.log")
    assert_lines_accounted(path, SOURCE, batch_lines, internal_errors_ok=True)


def test_batches_read_at_once_pair_a_teardown_with_an_earlier_batch(tmp_path, monkeypatch):
    """Two batches are read at once (MAP_AHEAD), but pairing a teardown with its built
    message takes turns in file order: the batch of the teardown waits for the batch of the
    built message, however slowly that one is read."""
    import threading
    import time

    from portlens.sources import get
    from portlens.sources.base import parse_file
    asa = type(get("cisco-asa"))
    messages = asa._messages
    built_read = threading.Event()

    def slow_on_built(self, lines, numbers):
        text = " ".join(lines.to_pylist())
        if "Built" in text:
            built_read.set()
            time.sleep(0.5)  # (the next batch is read meanwhile)
        elif "Teardown" in text:
            assert built_read.wait(5)
        return messages(self, lines, numbers)

    monkeypatch.setattr(asa, "_messages", slow_on_built)
    path = tmp_path / "asa.log"
    path.write_text(
        "<166>May 01 2024 00:00:00 fw-1 : %ASA-6-302015: Built outbound UDP connection 89743275 for "
        "outside:192.0.2.222/53 (192.0.2.43/53) to outside:10.123.1.35/52925 (10.123.1.35/25882)\n"
        "<166>May 01 2024 00:00:01 fw-1 : %ASA-6-111008: User 'enable_15' executed the 'write' command.\n"
        "<166>May 01 2024 00:00:02 fw-1 : %ASA-6-302016: Teardown UDP connection 89743275 for "
        "outside:192.0.2.222/53 to inside:10.123.1.35/52925 duration 1:23:45 bytes 140\n")
    rows = [r for b in parse_file(get("cisco-asa"), str(path), 2) for r in b.table.to_pylist()]
    down = [r for r in rows if r["EventOriginalType"] == "302016"]
    assert (down[0]["NetworkDirection"], down[0]["SrcIpAddr"], down[0]["DstPortNumber"]) == \
        ("Outbound", "10.123.1.35", 53)
