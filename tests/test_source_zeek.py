import json
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlens import asim, sources
from sourcekit import by_uid, parse, parse_text, sample_path, SAMPLES, UTC

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "zeek"
SOURCE = sources.get("zeek")


# The core.ppp baseline counts time from the epoch (ts 0.0): outside the default plausible range
# (not before 1990), so these tests widen it, as a user replaying such logs would.
FROM_EPOCH = asim.TimeBounds(not_before=datetime(1970, 1, 1, tzinfo=UTC))


def run(path, source=SOURCE, batch_lines=100_000):
    with asim.plausible_times(FROM_EPOCH):
        return parse(path, source, batch_lines)


def test_epoch_clock_baseline_is_quarantined_by_default():
    parsed = parse(sample_path("zeek/core.ppp/conn.log"), SOURCE)
    assert (parsed.rows.num_rows, parsed.quarantine.num_rows) == (0, 3)
    assert all("plausible range" in r for r in parsed.quarantine["reason"].to_pylist())


# ---------------------------------------------------------------- samples

# (file, rows, quarantined, skipped): btest baselines mask ts -> quarantined by design.
SAMPLE_COUNTS = [
    ("zeek/core.ppp/conn.log", 3, 0, 0),
    ("zeek/elastic-integrations/test-conn.log", 18, 0, 0),
    ("zeek/opt.basic/conn.log", 0, 34, 0),
    ("zeek/scripts.base.protocols.pop3.basic/conn.log", 0, 11, 0),
    ("zeek/core.cisco-fabric-path/conn.log", 0, 64, 0),
    ("zeek/scripts.base.protocols.ftp.ftp-ipv6/conn.log", 0, 6, 0),
    ("zeek/core.tunnels.gre/conn.log", 0, 7, 0),
]


@pytest.mark.parametrize("rel,n_rows,n_quarantined,n_skipped", SAMPLE_COUNTS)
def test_sample_counts(rel, n_rows, n_quarantined, n_skipped):
    path = sample_path(rel)
    rows, quarantine, skipped, records = run(path)
    assert (rows.num_rows, quarantine.num_rows, skipped) == (n_rows, n_quarantined, n_skipped)
    assert records == n_rows + n_quarantined + n_skipped
    # the only quarantine reason in the samples is the btest masking
    assert set(quarantine["reason"].to_pylist()) <= {
        "ts: masked timestamp XXXXXXXXXX.XXXXXX (btest baseline); no event time"}


def test_masked_sample_lines_and_parse_values():
    path = sample_path("zeek/scripts.base.protocols.pop3.basic/conn.log")
    _, quarantine, _, _ = run(path)
    assert quarantine["line"].to_pylist() == list(range(10, 21))
    # the parsed (pre-conform) columns are right even though the time is masked
    state = SOURCE.start(str(path))
    lines = path.read_text().splitlines()
    parsed = SOURCE.parse_lines(pa.array(lines), pa.array(range(1, len(lines) + 1), pa.int64()),
                                state).to_pylist()
    first, pop3 = parsed[0], parsed[6]
    assert first["_line"] == 10
    assert (first["SrcIpAddr"], first["SrcPortNumber"], first["DstIpAddr"], first["DstPortNumber"]) \
        == ("192.168.0.4", "26242", "212.227.15.188", "110")
    assert (first["EventResult"], first["EventResultDetails"], first["NetworkDirection"]) \
        == ("Failure", "Reset", "Outbound")  # REJ, local_orig T / local_resp F
    assert pop3["NetworkApplicationProtocol"] == "POP3" and pop3["NetworkDuration"] == 164


def test_ppp_icmpv6_is_not_ports():
    rows, _, _, _ = run(sample_path("zeek/core.ppp/conn.log"))
    r = by_uid(rows)
    ns = r["CHhAvVGS1DHFjwGM9"]
    assert ns["NetworkProtocol"] == "IPV6-ICMP"
    assert ns["SrcPortNumber"] is None and ns["DstPortNumber"] is None  # 135/136 are ICMP types
    assert ns["NetworkIcmpType"] == "Neighbor Solicitation"
    assert ns["NetworkProtocolVersion"] == "IPv6"
    assert json.loads(ns["AdditionalFields"])["icmp_counterpart_type"] == 136
    assert ns["TimeGenerated"] == datetime(1970, 1, 1, tzinfo=UTC)  # relative btest clock
    udp = r["C4J4Th3PJpwUYZZ6gc"]
    assert (udp["SrcIpAddr"], udp["SrcPortNumber"], udp["DstIpAddr"], udp["DstPortNumber"]) == \
        ("193.167.0.100", 42834, "193.167.100.100", 443)
    assert (udp["NetworkProtocol"], udp["NetworkDirection"], udp["NetworkDuration"]) == ("UDP", "External", 112)
    assert (udp["SrcBytes"], udp["DstBytes"], udp["NetworkBytes"]) == (4039, 11996, 16035)
    assert (udp["SrcPackets"], udp["DstPackets"], udp["NetworkPackets"]) == (10, 12, 22)
    assert (udp["EventResult"], udp["EventResultDetails"], udp["EventType"]) == ("Success", "Terminated", "Flow")
    assert udp["DvcAction"] is None and udp["EventCount"] == 1


def test_elastic_json_sample_values():
    rows, _, _, _ = run(sample_path("zeek/elastic-integrations/test-conn.log"))
    r = by_uid(rows)
    dns = r["CAcJw21BbVedgFnYH3"]
    assert dns["TimeGenerated"] == datetime(2019, 1, 11, 6, 33, 35, 857497, tzinfo=UTC)
    assert dns["EventEndTime"] == datetime(2019, 1, 11, 6, 33, 35, 934464, tzinfo=UTC)
    assert (dns["DstPortNumber"], dns["NetworkProtocol"], dns["NetworkDirection"]) == (53, "UDP", "Local")
    assert (dns["NetworkDuration"], dns["NetworkApplicationProtocol"]) == (77, "DNS")
    assert r["CAcJw21BbVedgFnYH4"]["NetworkDirection"] == "Outbound"
    assert r["CAcJw21BbVedgFnYH5"]["NetworkDirection"] == "External"  # F,F
    icmp = r["Cc6NJ3GRlfjE44I3h"]
    assert (icmp["NetworkProtocol"], icmp["DstPortNumber"], icmp["NetworkIcmpType"]) == \
        ("ICMP", None, "Destination Unreachable")
    shr = r["C52mXBCPJ4pPGkhr1"]
    assert (shr["EventResult"], shr["EventResultDetails"], shr["EventSeverity"]) == ("Failure", "Timeout", "Low")
    assert shr["EventOriginalResultDetails"] == "SHR" and shr["NetworkDuration"] == 104
    iso = r["C2KP1V3alRLoxl4JB9"]
    assert iso["TimeGenerated"] == datetime(2021, 6, 9, 20, 55, 13, 160328, tzinfo=UTC)
    assert iso["NetworkDuration"] is None and iso["SrcBytes"] is None  # optional fields absent
    assert {row["EventVendor"] + "/" + row["EventProduct"] for row in rows.to_pylist()} == {"Corelight/Zeek"}


# ---------------------------------------------------------------- own fixtures


def test_tsv_fixture():
    rows, quarantine, skipped, records = run(FIXTURES / "conn_mixed.log")
    assert (rows.num_rows, quarantine.num_rows, skipped, records) == (8, 3, 2, 13)
    reasons = dict(zip(quarantine["line"].to_pylist(), quarantine["reason"].to_pylist()))
    assert reasons[15] == "expected 22 fields as in #fields, found 5"
    assert reasons[16] == "DstPortNumber: port outside 0-65535"
    assert reasons[17].startswith("ts: masked timestamp")
    r = by_uid(rows)
    assert r["CAAAAA1"]["NetworkDuration"] == 3158  # round(3.1575 s * 1000)
    inbound = r["CAAAAA2"]  # remote originator: orig stays Src
    assert (inbound["SrcIpAddr"], inbound["DstIpAddr"], inbound["DstPortNumber"],
            inbound["NetworkDirection"], inbound["EventResult"]) == \
        ("203.0.113.9", "10.0.0.5", 3389, "Inbound", "Failure")
    icmp = r["CAAAAA3"]
    assert (icmp["NetworkProtocol"], icmp["SrcPortNumber"], icmp["DstPortNumber"], icmp["NetworkIcmpType"]) \
        == ("ICMP", None, None, "Echo")
    v6 = r["CAAAAA4"]
    assert (v6["NetworkProtocolVersion"], v6["NetworkDirection"], v6["DstPortNumber"]) == ("IPv6", "Local", 21)
    nd = r["CAAAAA5"]
    assert (nd["NetworkProtocol"], nd["NetworkDirection"]) == ("IPV6-ICMP", None)  # local_* unset
    gre = r["CAAAAA6"]
    assert (gre["NetworkProtocol"], gre["DstPortNumber"]) == ("GRE", None)
    rsto = r["CAAAA10"]
    assert (rsto["NetworkApplicationProtocol"], rsto["NetworkDuration"], rsto["SrcBytes"]) == (None, None, None)
    assert (rsto["EventResult"], rsto["EventResultDetails"]) == ("Failure", "Reset")
    reordered = r["CBBBBB1"]  # second #fields block with another column order
    assert (reordered["SrcIpAddr"], reordered["SrcPortNumber"], reordered["DstIpAddr"],
            reordered["DstPortNumber"], reordered["NetworkDuration"]) == ("10.0.0.6", 52000, "198.51.100.8", 8443, 500)


def test_json_millisecond_timestamps(tmp_path):
    path = tmp_path / "conn.json"
    path.write_text(json.dumps({"ts": 1714521600123, "uid": "CM1", "id.orig_h": "10.0.0.1", "id.orig_p": 1,
                                "id.resp_h": "10.0.0.2", "id.resp_p": 22, "proto": "tcp", "conn_state": "S0"}) + "\n")
    rows, _, _, _ = run(path)
    assert rows["TimeGenerated"].to_pylist() == [datetime(2024, 5, 1, 0, 0, 0, 123000, tzinfo=UTC)]


def test_tsv_fixture_small_batches_keep_header_state():
    rows, quarantine, skipped, _ = run(FIXTURES / "conn_mixed.log", batch_lines=3)
    assert (rows.num_rows, quarantine.num_rows, skipped) == (8, 3, 2)
    assert sorted(quarantine["line"].to_pylist()) == [15, 16, 17]


def test_json_fixture():
    rows, quarantine, skipped, records = run(FIXTURES / "corelight_conn.json")
    assert (rows.num_rows, quarantine.num_rows, skipped, records) == (4, 5, 2, 11)
    reasons = dict(zip(quarantine["line"].to_pylist(), quarantine["reason"].to_pylist()))
    assert reasons == {6: "not a JSON object", 7: "not a JSON object", 8: "ts: missing",
                       9: "id.orig_h/id.resp_h: missing", 11: "NetworkProtocol: unknown protocol"}
    r = by_uid(rows)
    c = r["CJ1"]
    assert c["TimeGenerated"] == datetime(2024, 5, 1, 0, 0, 0, 250000, tzinfo=UTC)
    assert (c["Dvc"], c["SrcMacAddr"], c["DstMacAddr"]) == ("sensor-01", "00:11:22:33:44:55", "66:77:88:99:aa:bb")
    assert c["NetworkSessionId"] == "1:abcdefghijklmnopqrstuvwxyz0="
    assert (c["NetworkApplicationProtocol"], c["NetworkDuration"]) == ("SSL,HTTP", 1235)
    assert json.loads(c["AdditionalFields"])["vlan"] == 20
    v6 = r["CJ3"]
    assert (v6["SrcIpAddr"], v6["DstIpAddr"], v6["NetworkDirection"], v6["NetworkProtocolVersion"]) == \
        ("2001:db8:ffff::1", "2001:db8:1::53", "Inbound", "IPv6")
    assert r["CJ4"]["DstPortNumber"] is None and r["CJ4"]["NetworkIcmpType"] == "Destination Unreachable"
    nested = r["CJ5"]
    assert (nested["SrcIpAddr"], nested["DstPortNumber"]) == ("10.1.1.11", 5985)


# ---------------------------------------------------------------- detection


def test_detect_picks_zeek_for_zeek_files():
    for path in [FIXTURES / "conn_mixed.log", FIXTURES / "corelight_conn.json"] + \
            sorted((SAMPLES / "zeek").glob("*/*")):
        assert sources.detect(str(path)).name == "zeek", path


def test_sniff_rejects_vectra_and_dns_tsv():
    vectra = b'{"metadata_type":"metadata_isession","id.orig_h":"10.0.0.1","uid":"C1"}\n'
    assert not SOURCE.sniff(vectra, "x.json")
    dns = b"#separator \\x09\n#path\tdns\n#fields\tts\tuid\tid.orig_h\tquery\n"
    assert not SOURCE.sniff(dns, "dns.log")


def test_separator_from_header_splits_fields(tmp_path):
    """A #separator other than a tab splits the records (and #fields); a tab is then part of
    a field, and a record with another number of fields is quarantined with its count."""
    text = ("#separator \\x7c\n#fields|ts|uid|id.orig_h|id.orig_p|id.resp_h|id.resp_p|proto|conn_state\n"
            "1714521600.5|C1\tx|10.0.0.1|5000|10.0.0.2|443|tcp|SF\n"
            "1714521601.0|C2|10.0.0.3|5001|10.0.0.4|22\ttcp|SF\n")
    rows, quarantine, skipped, records = parse_text(tmp_path, text, SOURCE, "conn.log")
    assert records == 2 and skipped == 0
    (row,) = rows.to_pylist()
    assert (row["SrcIpAddr"], row["DstPortNumber"], row["NetworkProtocol"]) == ("10.0.0.1", 443, "TCP")
    (bad,) = quarantine.to_pylist()
    assert bad["line"] == 4 and "found 7" in bad["reason"]


# ---------------------------------------------------------------- hostile input

TSV_HEADER = ("#separator \\x09\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto"
              "\tduration\tconn_state\tlocal_orig\tlocal_resp\n")
cell = st.one_of(st.text(max_size=12), st.sampled_from(["-", "(empty)", "1714521600.5", "tcp", "icmp",
                                                        "10.0.0.1", "::1", "80", "99999", "T", "F", "SF",
                                                        "1e308", "nan", "-5", "XXXXXXXXXX.XXXXXX"]))
tsv_line = st.lists(cell, min_size=0, max_size=14).map("\t".join)
json_line = st.dictionaries(st.sampled_from(["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p",
                                             "proto", "duration", "conn_state", "_path", "orig_bytes"]),
                            st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=True), st.text(max_size=8),
                                      st.booleans(), st.none()), max_size=11).map(json.dumps)
any_line = st.one_of(tsv_line, json_line, st.text(max_size=40),
                     st.sampled_from(["#fields\tts\tid.orig_h", "#path\tdns", "#path\tconn", "{", "[1]"]))


def _expected_records(text):
    lines = pa.array(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    keep = pc.and_(pc.not_equal(pc.utf8_length(pc.utf8_trim_whitespace(lines)), 0),
                   pc.invert(pc.starts_with(lines, "#")))
    return pc.sum(keep).as_py() or 0


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(any_line, max_size=25), st.booleans(), st.sampled_from(["\n", "\r\n", "\r"]))
def test_property_text(tmp_path, lines, header, newline):
    text = (TSV_HEADER if header else "") + newline.join(lines)
    rows, quarantine, skipped, records = parse_text(tmp_path, text, SOURCE, "conn.log", 7)
    assert rows.num_rows + quarantine.num_rows + skipped == records == _expected_records(text.removeprefix("\ufeff"))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=600))
def test_property_bytes(tmp_path, data):
    parse_text(tmp_path, TSV_HEADER.encode() + data, SOURCE, "conn.log", 5)  # every batch accounted for
