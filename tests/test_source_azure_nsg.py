import gzip
import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlens import sources
from portlens.sources.azure_nsg import SOURCE
from sourcekit import parse, parse_text, sample_path, SAMPLES, utc

MINE = SAMPLES / "azure_nsg"
FIXTURES = Path(__file__).parent / "fixtures" / "azure_nsg"
NTA_AZURE = "Microsoft_Azure NSG flows_NetworkSession_IngestedLogs.csv"
NTA_NSGFLOW = "Microsoft_NSGFlow_NetworkSession_IngestedLogs.csv"


def run(path):
    return parse(path, SOURCE).lists()[:3]


def sample(name):
    return sample_path(MINE.name, name)


# ---------------------------------------------------------------- samples


def test_sample_single_nsg_record():
    rows, quarantine, skipped = run(sample("test-nsg.log"))
    assert (len(rows), len(quarantine), skipped) == (1, 0, 0)
    r = rows[0]
    assert (r["SrcIpAddr"], r["SrcPortNumber"], r["DstIpAddr"], r["DstPortNumber"]) == \
        ("1.128.0.0", 59932, "1.128.0.1", 443)
    assert (r["NetworkProtocol"], r["NetworkDirection"], r["DvcAction"], r["EventResult"]) == \
        ("TCP", "Outbound", "Allow", "Success")
    assert (r["SrcPackets"], r["SrcBytes"], r["DstPackets"], r["DstBytes"]) == (1, 66, 1, 66)
    assert (r["NetworkBytes"], r["NetworkPackets"], r["EventCount"]) == (132, 2, 1)
    assert r["TimeGenerated"] == r["EventStartTime"] == r["EventEndTime"] == utc(2018, 11, 13, 11, 59, 39)
    assert (r["EventType"], r["EventVendor"], r["EventProduct"]) == ("Flow", "Microsoft", "Azure NSG flows")
    assert r["NetworkRuleName"] == "DefaultRule_AllowInternetOutBound"
    assert r["SrcMacAddr"] == "00:0D:3A:F8:78:56" and r["DstMacAddr"] is None
    assert (r["Dvc"], r["DvcIdType"]) == ("FABRIAKMVM1-NSG", "AzureResourceId")
    assert r["DvcOriginalAction"] == "A" and json.loads(r["AdditionalFields"])["FlowState"] == "E"


def test_sample_nta_us_locale_public_peers():
    rows, quarantine, skipped = run(sample(NTA_AZURE))
    assert (len(rows), len(quarantine), skipped) == (5, 0, 0)
    inbound, outbound, denied = rows[0], rows[1], rows[2]
    assert inbound["TimeGenerated"] == utc(2025, 8, 25, 20, 11, 21, 937000)
    assert inbound["EventStartTime"] == utc(2025, 8, 25, 19, 6, 57, 584000)
    assert inbound["EventEndTime"] == utc(2025, 8, 25, 19, 7, 3, 373000)
    assert inbound["NetworkDuration"] == 5789
    # SrcIp is empty for the Internet peer: the first SrcPublicIps entry is the source
    assert (inbound["SrcIpAddr"], inbound["DstIpAddr"], inbound["DstPortNumber"]) == \
        ("40.87.172.0", "10.222.0.4", 21893)
    assert (inbound["NetworkDirection"], inbound["DvcAction"], inbound["NetworkProtocol"]) == \
        ("Inbound", "Allow", "TCP")
    assert (inbound["SrcBytes"], inbound["DstBytes"], inbound["EventCount"]) == (128, 60, 1)
    assert (outbound["SrcIpAddr"], outbound["DstIpAddr"], outbound["DstPortNumber"]) == \
        ("10.222.0.4", "23.39.174.184", 443)
    assert (outbound["EventCount"], outbound["SrcBytes"], outbound["DstBytes"]) == (4, 7554, 24627)
    assert outbound["NetworkApplicationProtocol"] == "HTTPS"
    assert "23.212.251.198" in json.loads(outbound["AdditionalFields"])["DestPublicIps"]
    assert [r["DvcAction"] for r in rows[2:]] == ["Deny", "Deny", "Deny"]
    assert [r["DstPortNumber"] for r in rows[2:]] == [10002, 10003, 10013]
    assert (denied["SrcIpAddr"], denied["EventResult"], denied["EventCount"]) == ("35.203.210.116", "Failure", 1)
    assert denied["NetworkRuleName"] == "denyallinbound" and denied["DstHostname"] == "ch1-retailvm01"


def test_sample_nta_excel_timestamps():
    rows, quarantine, skipped = run(sample(NTA_NSGFLOW))
    assert (len(rows), len(quarantine), skipped) == (9, 0, 0)
    first = rows[0]
    assert first["TimeGenerated"] == utc(2025, 6, 14, 7, 17)
    assert (first["SrcIpAddr"], first["DstIpAddr"], first["DstPortNumber"]) == ("10.123.33.4", "11.210.68.169", 120)
    assert (first["NetworkDirection"], first["DvcAction"], first["EventCount"]) == ("Outbound", "Allow", 48)
    assert first["NetworkDuration"] == 57 * 60 * 1000
    assert rows[-1]["NetworkProtocol"] == "UDP" and rows[-1]["SrcIpAddr"] == "40.90.32.0"
    assert all(r["DvcAction"] == "Allow" for r in rows)
    # a synthetic invalid address is not an address (ASIM's IP type): it leaves DstIpAddr and
    # is kept in AdditionalFields (issue 13 item 8)
    assert rows[2]["DstIpAddr"] is None
    assert json.loads(rows[2]["AdditionalFields"])["InvalidDstIpAddr"] == "33.778.136.777"


# ---------------------------------------------------------------- detection


@pytest.mark.parametrize("name", ["test-nsg.log", NTA_AZURE, NTA_NSGFLOW])
def test_detect_samples(name):
    assert sources.detect(str(sample(name))).name == "azure-nsg"


def test_detect_fixtures():
    for path in FIXTURES.iterdir():
        assert sources.detect(str(path)).name == "azure-nsg", path.name


# ---------------------------------------------------------------- fixtures


def test_vnet_flow_log_ms_tuples_and_denied_state():
    rows, quarantine, skipped = run(FIXTURES / "vnet-flowlog-pt1h.json")
    assert (len(rows), len(quarantine), skipped) == (19, 0, 0)
    assert rows[0]["TimeGenerated"] == utc(2022, 9, 14, 9, 0, 3, 599000)
    end = rows[1]
    assert (end["SrcBytes"], end["DstBytes"], end["SrcPackets"], end["DstPackets"]) == (767, 1580, 3, 2)
    assert end["SrcMacAddr"] == "00:22:48:71:C2:05"
    denied = [r for r in rows if r["DvcAction"] == "Deny"]
    assert len(denied) == 9
    assert {r["DvcOriginalAction"] for r in denied} == {"D"}
    assert {r["NetworkDirection"] for r in denied} == {"Inbound"}
    assert denied[0]["DstPortNumber"] == 22 and denied[0]["NetworkRuleName"] == "BlockHighRiskTCPPortsFromInternet"
    assert denied[0]["DvcId"].endswith("/virtualNetworks/myVNet") and denied[0]["Dvc"] == "myVNet"
    assert denied[0]["EventOriginalType"] == "FlowLogFlowEvent"
    bag = json.loads(denied[0]["AdditionalFields"])
    assert bag["FlowEncryption"] == "NX" and bag["NetworkProtocolNumber"] == "6"


def test_nsg_v2_blob_states_and_non_flow_records():
    rows, quarantine, skipped = run(FIXTURES / "nsg-v2-blob.json")
    # 5 tuples; the empty interval record and the rule-counter record are skipped
    assert (len(rows), len(quarantine), skipped) == (5, 0, 2)
    states = [json.loads(r["AdditionalFields"])["FlowState"] for r in rows]
    assert states == ["B", "B", "B", "C", "E"]
    assert [r["DvcAction"] for r in rows] == ["Deny", "Deny", "Allow", "Allow", "Allow"]
    assert rows[0]["SrcBytes"] is None  # begin tuples carry no counters
    assert (rows[3]["SrcBytes"], rows[3]["DstBytes"], rows[3]["NetworkBytes"]) == (588096, 4610880, 5198976)


def test_nsg_v1_pretty_document_ipv6_and_bad_tuples():
    rows, quarantine, skipped = run(FIXTURES / "nsg-v1-pretty.json")
    assert len(rows) == 3
    v6 = rows[2]
    assert (v6["SrcIpAddr"], v6["NetworkProtocol"], v6["NetworkProtocolVersion"], v6["DstPortNumber"]) == \
        ("2001:db8::4", "UDP", "IPv6", 53)
    assert rows[0]["SrcBytes"] is None and rows[0]["DvcAction"] == "Deny"
    # pretty-printed document: line = record ordinal
    assert [(q["line"], q["reason"]) for q in quarantine] == [
        (1, "flow tuple has 7 fields, expected 8 (v1) or 13 (v2, VNet)"),
        (1, "protocol is not T or U: X"),
        (2, "flow tuple time is not epoch seconds or milliseconds: notatime"),
    ]
    assert quarantine[1]["raw"] == "1487282530,10.1.0.4,13.107.4.50,49714,443,X,O,A"


def test_json_lines_wrappers_and_malformed_lines():
    rows, quarantine, skipped = run(FIXTURES / "nsg-records.jsonl")
    assert [r["DstPortNumber"] for r in rows] == [443, 22, 22, 53]
    assert [r["DvcAction"] for r in rows] == ["Allow", "Allow", "Deny", "Allow"]
    assert sorted((q["line"], q["reason"]) for q in quarantine) == [
        (3, "invalid JSON"), (4, "not a JSON object"), (5, "DstPortNumber: port outside 0-65535")]


def test_truncated_document_is_one_quarantine_entry():
    rows, quarantine, skipped = run(FIXTURES / "truncated-pt1h.json")
    assert rows == [] and skipped == 0 and len(quarantine) == 1
    q = quarantine[0]
    assert q["reason"].startswith("invalid JSON document: ") and "line 45 column" in q["reason"]
    assert q["line"] == 45 and q["file"].endswith("truncated-pt1h.json")


def test_traffic_analytics_legacy_columns():
    rows, quarantine, skipped = run(FIXTURES / "traffic-analytics-legacy.csv")
    assert (len(rows), skipped) == (2, 1)  # the Topology row is not a flow
    allowed, denied = rows
    # inbound legacy counters are from the VM side: InboundBytes -> SrcBytes
    assert (allowed["SrcBytes"], allowed["DstBytes"], allowed["EventCount"]) == (5000, 12000, 3)
    assert (allowed["SrcHostname"], allowed["DstHostname"]) == ("jump", "web")
    assert allowed["TimeGenerated"] == utc(2024, 3, 1, 10, 5)  # "TimeGenerated [UTC]" header
    assert (denied["SrcIpAddr"], denied["DvcAction"], denied["DstPortNumber"], denied["EventCount"]) == \
        ("198.51.100.7", "Deny", 3389, 2)
    assert [(q["line"], q["reason"]) for q in quarantine] == [(5, "expected 29 CSV fields, got 7")]


def test_gzip_blob(tmp_path):
    path = tmp_path / "PT1H.json"
    path.write_bytes(gzip.compress((FIXTURES / "vnet-flowlog-pt1h.json").read_bytes()))
    assert sources.detect(str(path)).name == "azure-nsg"
    rows, quarantine, skipped = run(path)
    assert (len(rows), len(quarantine)) == (19, 0)


def test_truncated_gzip_is_quarantined_not_raised(tmp_path):
    data = gzip.compress((FIXTURES / "nsg-records.jsonl").read_bytes())
    path = tmp_path / "cut.json.gz"
    path.write_bytes(data[: len(data) - 20])
    rows, quarantine, _ = run(path)
    # the one read-error policy (base.parse_file): one record after the last readable line
    after = int(re.search(r"cut short or corrupt after line (\d+)", quarantine[-1]["reason"])[1])
    assert quarantine[-1]["line"] == after + 1


def test_unknown_csv_is_quarantined(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    rows, quarantine, _ = run(path)
    assert rows == [] and [q["line"] for q in quarantine] == [1, 2]


# ---------------------------------------------------------------- hostile input

TUPLE = "1542110379,10.0.0.4,1.128.0.1,59932,443,T,O,A,E,1,66,1,66"


def _parse_bytes(data: bytes, suffix=".json"):
    return parse_text(None, data, SOURCE, name="hostile" + suffix)


tuples = st.lists(st.one_of(
    st.just(TUPLE), st.text(max_size=40),
    st.lists(st.sampled_from(TUPLE.split(",") + ["", "-1", "99999999999", "X", "D", "::1", "1e9"]),
             max_size=14).map(",".join)), max_size=6)
records = st.builds(
    lambda ts, cat, version: {"category": cat, "properties": {"Version": version, "flows": [
        {"rule": "r", "flows": [{"mac": "000D3AF87856", "flowTuples": ts}]}]}},
    tuples, st.sampled_from(["NetworkSecurityGroupFlowEvent", "Other", None]), st.sampled_from([1, 2, "x"]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records, max_size=5), st.sampled_from(["lines", "blob", "pretty"]), st.integers(0, 400))
def test_hostile_records_never_raise(recs, layout, cut):
    if layout == "lines":
        text = "\n".join(json.dumps(r) for r in recs)
    elif layout == "blob":
        text = json.dumps({"records": recs})
    else:
        text = json.dumps({"records": recs}, indent=2)
    if cut and cut < len(text):
        text = text[:-cut]  # truncated blob (PT1H.json being written)
    total = _parse_bytes(text.encode()).records
    if layout != "lines" and cut == 0:
        assert total >= len(recs)  # every record yields at least one row, skip or quarantine


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000))
def test_random_bytes_never_raise(data):
    _parse_bytes(data)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.sampled_from(["-", "", '"x,y"', "Inbound", "I", "Denied", "A", "T", "22",
                                          "8/25/2025 8:11:21.937 PM", "99999999999", '"', "a|b c"]),
                         max_size=8).map(",".join), max_size=10))
def test_hostile_traffic_analytics_csv_never_raises(lines):
    header = "TimeGenerated,FlowType,SrcIp,DestIp,DestPort,L4Protocol,FlowDirection,FlowStatus"
    _parse_bytes(("\n".join([header] + lines)).encode(), suffix=".csv")
