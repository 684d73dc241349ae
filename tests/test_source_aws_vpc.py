import gzip
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlens import sources
from portlens.errors import SourceError
from portlens.sources.aws_vpc import FORMAT_ENV, SOURCE, infer_format
from sourcekit import parse, parse_text, sample_path, SAMPLES, utc

MINE = SAMPLES / "aws_vpc"
FIXTURES = Path(__file__).parent / "fixtures" / "aws_vpc"


def run(path, source=SOURCE):
    return parse(path, source).lists()[:3]


def sample(name):
    return sample_path(MINE.name, name)


# ---------------------------------------------------------------- samples


def test_sample_accept_reject_with_header():
    rows, quarantine, skipped = run(sample("accept-reject-traffic.log"))
    assert (len(rows), len(quarantine), skipped) == (4, 0, 0)
    ssh, rdp, ping, pong = rows
    assert ssh["SrcIpAddr"] == "78.24.182.42" and ssh["DstIpAddr"] == "158.109.0.1"
    assert (ssh["SrcPortNumber"], ssh["DstPortNumber"], ssh["NetworkProtocol"]) == (20641, 22, "TCP")
    assert (ssh["DvcAction"], ssh["DvcOriginalAction"], ssh["EventResult"]) == ("Allow", "ACCEPT", "Success")
    assert (ssh["NetworkBytes"], ssh["NetworkPackets"], ssh["EventCount"]) == (4249, 20, 1)
    assert ssh["TimeGenerated"] == ssh["EventStartTime"] == utc(2014, 12, 14, 4, 6, 50)
    assert ssh["EventEndTime"] == utc(2014, 12, 14, 4, 7, 50)
    assert ssh["NetworkDirection"] is None  # v2 has no flow-direction
    assert (ssh["EventVendor"], ssh["EventProduct"], ssh["EventType"]) == ("AWS", "VPC", "NetworkSession")
    assert ssh["DvcInboundInterface"] == "eni-1235b8ca123456789"
    assert (rdp["DstPortNumber"], rdp["DvcAction"], rdp["EventResult"], rdp["EventSeverity"]) == \
        (3389, "Deny", "Failure", "Low")
    assert (ping["NetworkProtocol"], ping["SrcPortNumber"], ping["DstPortNumber"]) == ("ICMP", 0, 0)
    assert pong["DvcAction"] == "Deny" and pong["TimeGenerated"] == utc(2015, 5, 29, 16, 31, 34)


def test_sample_cloudwatch_nodata_skipdata_skipped():
    rows, quarantine, skipped = run(sample("cloudwatch-v2.ndjson"))
    assert (len(rows), len(quarantine), skipped) == (2, 0, 2)
    assert [r["DstPortNumber"] for r in rows] == [22, 3389]
    assert [r["DvcAction"] for r in rows] == ["Allow", "Deny"]
    assert rows[0]["SrcIpAddr"] == "172.31.16.139" and rows[0]["TimeGenerated"] == utc(2014, 12, 14, 4, 6, 50)


def test_sample_transit_gateway_has_no_time():
    # The custom format of this sample has no start/end field and the file name carries no
    # S3 delivery time: the record is a session with no time, so it is quarantined (expected).
    rows, quarantine, skipped = run(sample("custom-transit-gateway.log"))
    assert (len(rows), len(quarantine), skipped) == (0, 1, 0)
    assert quarantine[0]["line"] == 1
    assert quarantine[0]["reason"] == "the flow-log format has no start/end time"


def test_sample_transit_gateway_layout_recognised():
    line = sample("custom-transit-gateway.log").read_text().strip()
    name, fields = infer_format([line])
    assert name == "AWS example: transit gateway" and fields[6:8] == ["srcaddr", "dstaddr"]


# ---------------------------------------------------------------- detection


@pytest.mark.parametrize("name", ["accept-reject-traffic.log", "cloudwatch-v2.ndjson", "custom-transit-gateway.log"])
def test_detect_picks_aws_vpc_for_samples(name):
    assert sources.detect(str(sample(name))).name == "aws-vpc"


def test_detect_picks_aws_vpc_for_fixtures():
    for path in FIXTURES.iterdir():
        assert sources.detect(str(path)).name == "aws-vpc", path.name


# ---------------------------------------------------------------- fixtures from AWS's examples


def test_default_format_icmp_ipv6_nodata():
    rows, quarantine, skipped = run(FIXTURES / "default-v2.log")
    assert (len(rows), len(quarantine), skipped) == (5, 0, 2)  # NODATA + SKIPDATA
    v6 = rows[-1]
    assert v6["SrcIpAddr"] == "2001:db8:1234:a100:8d6e:3477:df66:f105"
    assert (v6["NetworkProtocolVersion"], v6["DstPortNumber"], v6["NetworkBytes"]) == ("IPv6", 22, 8855)
    icmp = rows[2]
    assert (icmp["NetworkProtocol"], icmp["NetworkProtocolVersion"]) == ("ICMP", "IPv4")
    assert '"NetworkProtocolNumber":"1"' in icmp["AdditionalFields"]


def test_custom_order_from_header_tcp_flags():
    rows, quarantine, skipped = run(FIXTURES / "tcp-flags-v3.log")
    assert (len(rows), len(quarantine), skipped) == (8, 0, 0)
    first, last = rows[0], rows[-1]
    # bytes and packets come in the reverse order of the default format here
    assert (first["NetworkBytes"], first["NetworkPackets"]) == (568, 8)
    assert (first["SrcPortNumber"], first["DstPortNumber"]) == (43416, 5001)
    assert (first["DvcId"], first["DvcIdType"], first["Dvc"]) == \
        ("vpc-abcdefab012345678", "AwsVpcId", "vpc-abcdefab012345678")
    assert first["SrcNatIpAddr"] == "52.213.180.42" and first["NetworkProtocolVersion"] == "IPv4"
    assert '"TcpFlags":"2"' in first["AdditionalFields"]
    # the double space in AWS's last example line is tolerated
    assert (last["SrcPortNumber"], last["DstPortNumber"], last["NetworkBytes"]) == (5001, 43638, 967)


def test_v5_format_string_header_flow_direction_and_services():
    rows, quarantine, skipped = run(FIXTURES / "traffic-path-v5.log")
    assert (len(rows), len(quarantine)) == (2, 0)
    ingress, egress = rows
    assert (ingress["NetworkDirection"], ingress["SrcAppName"], ingress["DstPortNumber"]) == ("Inbound", "S3", 34210)
    assert (egress["NetworkDirection"], egress["DstAppName"], egress["DstPortNumber"]) == ("Outbound", "S3", 80)
    assert '"TrafficPath":"8"' in egress["AdditionalFields"]
    assert ingress["EventProductVersion"] == "5"


def test_s3_object_name_gives_time_to_formats_without_start():
    rows, quarantine, _ = run(FIXTURES / "123456789010_vpcflowlogs_us-east-1_fl-1234abcd_20190826T1945Z_fe123456.log")
    assert (len(rows), len(quarantine)) == (4, 0)
    assert {r["TimeGenerated"] for r in rows} == {utc(2019, 8, 26, 19, 45)}
    tgw = rows[2]
    assert (tgw["SrcIpAddr"], tgw["SrcNatIpAddr"], tgw["DstPortNumber"]) == ("10.40.1.175", "10.20.33.164", 80)


def test_nat_gateway_format_without_time_is_quarantined():
    rows, quarantine, _ = run(FIXTURES / "nat-gateway.log")
    assert rows == []
    assert [q["line"] for q in quarantine] == [2, 3, 4, 5]
    assert {q["reason"] for q in quarantine} == {"the flow-log format has no start/end time"}


def test_malformed_records_quarantined_with_their_line():
    rows, quarantine, _ = run(FIXTURES / "malformed.log")
    assert len(rows) == 3
    reasons = {q["line"]: q["reason"] for q in quarantine}
    assert reasons == {
        3: "expected 14 fields (header line 1), got 11",
        5: "action is not ACCEPT or REJECT: MAYBE",
        6: "DstPortNumber: port outside 0-65535",
        7: "srcaddr is not an IP address: not-an-ip",
        8: "protocol is not a protocol number: tcp",
    }
    unassigned = rows[1]  # protocol 200 is not assigned by IANA: no keyword, number kept
    assert unassigned["NetworkProtocol"] is None
    assert '"NetworkProtocolNumber":"200"' in unassigned["AdditionalFields"]


def test_cloudwatch_subscription_documents():
    rows, quarantine, skipped = run(FIXTURES / "cloudwatch-subscription.jsonl")
    assert (len(rows), len(quarantine), skipped) == (3, 0, 2)  # NODATA + control message
    assert [r["DstPortNumber"] for r in rows] == [22, 3389, 22]
    assert rows[2]["NetworkProtocolVersion"] == "IPv6"


def test_filter_log_events_pretty_document():
    rows, quarantine, _ = run(FIXTURES / "filter-log-events.json")
    assert [(r["NetworkProtocol"], r["DvcAction"]) for r in rows] == [("ICMP", "Allow"), ("ICMP", "Deny")]


def test_json_keyed_by_field_name():
    rows, quarantine, skipped = run(FIXTURES / "keyed.jsonl")
    assert (len(rows), len(quarantine), skipped) == (1, 0, 1)
    r = rows[0]
    assert (r["SrcIpAddr"], r["DstPortNumber"], r["NetworkDirection"], r["DvcId"]) == \
        ("52.95.128.179", 34210, "Inbound", "vpc-abcdefab012345678")


def test_gzip_and_crlf(tmp_path):
    data = (FIXTURES / "default-v2.log").read_bytes().replace(b"\n", b"\r\n")
    path = tmp_path / "flows.log.gz"
    path.write_bytes(gzip.compress(data))
    assert sources.detect(str(path)).name == "aws-vpc"
    rows, quarantine, skipped = run(path)
    assert (len(rows), len(quarantine), skipped) == (5, 0, 2)


def test_header_switches_layout_mid_file(tmp_path):
    default = (FIXTURES / "default-v2.log").read_text().splitlines()[0]
    tcp = (FIXTURES / "tcp-flags-v3.log").read_text().splitlines()
    path = tmp_path / "concat.log"
    path.write_text("\n".join(["version account-id interface-id srcaddr dstaddr srcport dstport protocol "
                               "packets bytes start end action log-status", default] + tcp[:2]) + "\n")
    rows, quarantine, _ = run(path)
    assert quarantine == []
    assert [r["DstPortNumber"] for r in rows] == [22, 5001]


def test_format_from_environment(tmp_path, monkeypatch):
    path = tmp_path / "custom.log"
    path.write_text("ACCEPT 10.0.0.1 10.0.0.2 6 5353 1600000000\n")
    rows, quarantine, _ = run(path)
    assert rows == [] and "layout not recognised" in quarantine[0]["reason"]
    monkeypatch.setenv(FORMAT_ENV, "${action} ${srcaddr} ${dstaddr} ${protocol} ${dstport} ${start}")
    rows, quarantine, _ = run(path)
    assert quarantine == []
    assert (rows[0]["DstPortNumber"], rows[0]["DvcAction"], rows[0]["TimeGenerated"]) == \
        (5353, "Allow", utc(2020, 9, 13, 12, 26, 40))


def test_format_as_source_option(tmp_path):
    path = tmp_path / "custom.log"
    path.write_text("ACCEPT 10.0.0.1 10.0.0.2 6 5353 1600000000\n")
    source = SOURCE.with_options({"format": "${action} ${srcaddr} ${dstaddr} ${protocol} ${dstport} ${start}"})
    rows, quarantine, _ = run(path, source)
    assert quarantine == [] and (rows[0]["DstPortNumber"], rows[0]["DvcAction"]) == (5353, "Allow")
    assert SOURCE.options == {}  # the shared source is unchanged
    with pytest.raises(SourceError, match="has no option fmt"):
        SOURCE.with_options({"fmt": "x"})


def test_truncated_gzip_is_quarantined_not_raised(tmp_path):
    data = gzip.compress((FIXTURES / "default-v2.log").read_bytes())
    path = tmp_path / "cut.log.gz"
    path.write_bytes(data[: len(data) // 2])
    rows, quarantine, _ = run(path)
    # the one read-error policy (base.parse_file): one record after the last readable line
    after = int(re.search(r"cut short or corrupt after line (\d+)", quarantine[-1]["reason"])[1])
    assert quarantine[-1]["line"] == after + 1


def test_port_beyond_32_bits_is_one_quarantined_row(tmp_path):
    # asim.conform casts ports to INTEGER without TRY: the source guards them per row
    path = tmp_path / "big.log"
    header = (FIXTURES / "malformed.log").read_text().splitlines()[0]
    path.write_text(header + "\n" + LINE.replace(" 443 ", " 99999999999 ") + "\n" + LINE + "\n")
    rows, quarantine, _ = run(path)
    assert len(rows) == 1
    assert [(q["line"], q["reason"]) for q in quarantine] == [(2, "SrcPortNumber: port outside 0-65535")]


def test_empty_and_blank_files(tmp_path):
    path = tmp_path / "blank.log"
    path.write_text("\n\n   \n")
    assert run(path) == ([], [], 0)


# ---------------------------------------------------------------- hostile input

LINE = "2 123456789010 eni-1235b8ca123456789 10.0.0.1 10.0.0.2 443 22 6 20 4249 1418530010 1418530070 ACCEPT OK"
TOKENS = LINE.split() + ["-", "NODATA", "SKIPDATA", "REJECT", "version", "srcaddr", "{", "}", '"message"',
                         "\x00", "é", "\ufffd", "99999999999999999999", "99999999999", "-7", "::", "1.2.3.4.5"]


def _write_and_parse(data: bytes, suffix: str = ".log"):
    return parse_text(None, data, SOURCE, name="hostile" + suffix)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(
    st.lists(st.sampled_from(TOKENS), min_size=0, max_size=20).map(" ".join),
    st.text(max_size=80),
    st.just(LINE), st.just(LINE[:40]),
), min_size=1, max_size=30), st.sampled_from(["\n", "\r\n", "\r"]))
def test_hostile_text_never_raises(lines, newline):
    data = newline.join(lines).encode("utf-8", errors="surrogatepass")
    parsed = _write_and_parse(data)
    nonblank = sum(1 for ln in newline.join(lines).replace("\r\n", "\n").replace("\r", "\n").split("\n")
                   if ln.strip())
    assert parsed.records <= nonblank


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000))
def test_random_bytes_never_raise(data):
    _write_and_parse(data)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(
    st.builds(lambda m, t: '{"message": %s, "timestamp": %s}' % (m, t),
              st.sampled_from(['"' + LINE + '"', '"x"', "1", "null", '"' + LINE[:30] + '"']),
              st.sampled_from(["1418530010000", '"x"', "-5", "99999999999999999999"])),
    st.just('{"logEvents": [{"message": "%s"}, 3]}' % LINE),
    st.just('{"events": "nope"}'), st.text(max_size=40).map(lambda t: "{" + t)),
    min_size=1, max_size=10))
def test_hostile_json_never_raises(lines):
    _write_and_parse(("\n".join(lines)).encode(), suffix=".json")


def test_default_fields_followed_by_unheaded_extra_fields():
    # held-out real logs: the default format with v3 / ECS fields appended and no header line
    path = FIXTURES / "default_plus_extra_fields.log"
    assert sources.detect(str(path)).name == "aws-vpc"
    assert infer_format([path.read_text().splitlines()[0]])[0] == "v2 default + unnamed extra fields"
    rows, quarantine, skipped, records = parse(path, SOURCE)
    assert (records, rows.num_rows, quarantine.num_rows) == (3, 2, 1)
    assert quarantine.column("reason").to_pylist() == [
        "expected at least 14 fields (v2 default + unnamed extra fields), got 5"]
    r = rows.to_pylist()
    assert (r[0]["SrcIpAddr"], r[0]["DstPortNumber"], r[0]["DvcAction"], r[0]["NetworkBytes"]) == \
        ("10.0.0.5", 443, "Allow", 8400)
    assert r[0]["TimeGenerated"] == utc(2024, 5, 1, 10)
    assert (r[1]["DstPortNumber"], r[1]["DvcAction"]) == (22, "Deny")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(list("ab1-: \t\r\v\f\x85\u3000")), min_size=1, max_size=12)
                .filter(lambda t: t.strip(" \t\r\v\f")), min_size=1, max_size=20))
def test_sql_whitespace_split_is_arrows(texts):
    """The statement's split of a record into fields (DuckDB) is Arrow's trim and split at
    ASCII whitespace: runs of it separate, either end is ignored, other whitespace (NEL,
    ideographic space) is part of a field."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from portlens import asim
    from portlens.sources._sql import split_whitespace_sql
    got = asim.query(f"SELECT {split_whitespace_sql('text')} AS f FROM t",
                     t=pa.table({"text": pa.array(texts, pa.string())}))["f"].to_pylist()
    assert got == pc.ascii_split_whitespace(pc.ascii_trim_whitespace(pa.array(texts, pa.string()))).to_pylist()
