import gzip
import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlens import sources
from portlens.sources.azure_firewall import SOURCE
from sourcekit import parse, parse_text, sample_path, SAMPLES, utc

MINE = SAMPLES / "azure_firewall"
FIXTURES = Path(__file__).parent / "fixtures" / "azure_firewall"
FW_ID = "/SUBSCRIPTIONS/23103928-B2CF-472A-8CDB-0146E2849129/RESOURCEGROUPS/TEST-FW-RG/PROVIDERS/" \
        "MICROSOFT.NETWORK/AZUREFIREWALLS/TEST-FW01"


def run(path):
    return parse(path, SOURCE).lists()[:3]


def sample(name):
    return sample_path(MINE.name, name)


def key(r):
    return (r["NetworkProtocol"], r["SrcIpAddr"], r["SrcPortNumber"], r["DstIpAddr"], r["DstHostname"],
            r["DstPortNumber"], r["DvcAction"])


# ---------------------------------------------------------------- samples


def test_sample_legacy_network_rules():
    rows, quarantine, skipped = run(sample("test-networkrules-raw.log"))
    # 12 lines: 10 sessions, the 2 IDPS "Action: alert" lines skipped, nothing quarantined
    assert (len(rows), len(quarantine), skipped) == (10, 0, 2)
    assert [key(r) for r in rows] == [
        ("ICMP", "192.168.0.2", None, "89.160.20.156", None, None, "Deny"),
        ("UDP", "192.168.0.2", 51106, "89.160.20.156", None, 53, "Allow"),
        ("TCP", "192.168.0.2", 49680, "89.160.20.156", None, 1688, "Deny"),
        ("TCP", "192.168.0.2", 50306, "89.160.20.156", None, 3389, "Allow"),  # DNAT
        ("TCP", "192.168.0.2", 50306, "89.160.20.156", None, 3389, "Allow"),  # DNAT with policy
        ("TCP", "192.168.0.2", 51890, "175.16.199.1", None, 443, "Drop"),  # IDPS drop
        ("TCP", "192.168.0.2", 54314, None, "ocsp.sca1b.amazontrust.com", 80, "Deny"),  # ThreatIntel
        ("TCP", "192.168.0.2", 50306, "89.160.20.156", None, 3389, "Allow"),  # "Allow.."
        ("TCP", "192.168.0.2", 50306, "89.160.20.156", None, 3388, "Allow"),  # DNAT
        ("ICMP", "192.168.0.2", None, "89.160.20.156", None, None, "Deny"),
    ]
    # the firewall logs no direction and no byte counters; every record is one session
    assert {(r["NetworkDirection"], r["NetworkBytes"], r["EventCount"]) for r in rows} == {(None, None, 1)}
    icmp = rows[0]
    assert (icmp["NetworkIcmpType"], icmp["NetworkIcmpCode"], icmp["EventResult"]) == ("Echo", None, "Failure")
    assert icmp["TimeGenerated"] == icmp["EventStartTime"] == utc(2022, 6, 8, 16, 54, 58, 849256)
    assert (icmp["DvcId"], icmp["Dvc"], icmp["DvcIdType"]) == (FW_ID, "TEST-FW01", "AzureResourceId")
    assert (icmp["EventVendor"], icmp["EventProduct"], icmp["EventType"], icmp["EventCount"]) == \
        ("Microsoft", "Azure Firewall", "NetworkSession", 1)
    dnat = rows[4]
    assert (dnat["DstNatIpAddr"], dnat["DstNatPortNumber"], dnat["NetworkRuleName"]) == ("10.0.0.2", 3389, "rule")
    assert dnat["DvcOriginalAction"] is None and dnat["EventOriginalType"] == "AzureFirewallNatRuleLog"
    assert json.loads(dnat["AdditionalFields"]) == {
        "Policy": "policy-01", "RuleCollectionGroup": "DefaultDnatRuleCollectionGroup", "RuleCollection": "DNAT"}
    drop = rows[5]
    assert (drop["DvcOriginalAction"], drop["EventResult"], drop["EventSeverity"]) == ("drop", "Failure", "Low")
    assert json.loads(drop["AdditionalFields"])["SignatureId"] == "2028816"
    threat = rows[6]
    assert (threat["EventSeverity"], threat["NetworkApplicationProtocol"]) == ("Medium", "HTTP")
    assert json.loads(threat["AdditionalFields"])["ThreatIntel"] == "Bot Networks"
    double_dot = rows[7]
    assert (double_dot["NetworkRuleName"], double_dot["TimeGenerated"]) == \
        ("Permit_RFC1918", utc(2025, 3, 13, 7, 11, 59, 992099))


def test_sample_structured_network_rule():
    rows, quarantine, skipped = run(sample("test-azfw-network-rule-structured-raw.log"))
    assert (len(rows), len(quarantine), skipped) == (1, 0, 0)
    r = rows[0]
    assert key(r) == ("TCP", "127.0.0.1", 1234, "127.0.0.1", None, 1234, "Allow")
    assert (r["NetworkRuleName"], r["EventOriginalResultDetails"], r["EventResult"]) == \
        ("rule", "action reason", "Success")
    assert r["TimeGenerated"] == utc(2024, 3, 20, 23, 39, 59, 849437)
    assert r["EventOriginalType"] == "AZFWNetworkRule" and r["Dvc"] == "TEST-FW01"
    assert json.loads(r["AdditionalFields"])["RuleCollectionGroup"] == "rule collection group"


# ---------------------------------------------------------------- detection


@pytest.mark.parametrize("name", ["test-networkrules-raw.log", "test-azfw-network-rule-structured-raw.log"])
def test_detect_samples(name):
    assert sources.detect(str(sample(name))).name == "azure-firewall"


def test_detect_fixtures():
    for path in FIXTURES.iterdir():
        assert sources.detect(str(path)).name == "azure-firewall", path.name


# ---------------------------------------------------------------- fixtures


def test_event_hub_wrappers_out_of_scope_and_malformed():
    rows, quarantine, skipped = run(FIXTURES / "eventhub-legacy.jsonl")
    # application rule and DNS proxy records are skipped; two network-rule messages are not sessions
    assert (len(rows), skipped) == (3, 2)
    threat, v6, icmp = sorted(rows, key=lambda r: r["TimeGenerated"])
    assert (threat["EventSeverity"], threat["EventOriginalType"], threat["DvcAction"]) == \
        ("Medium", "AzureFirewallThreatIntelLog", "Deny")
    assert (v6["SrcIpAddr"], v6["SrcPortNumber"], v6["DstIpAddr"], v6["DstPortNumber"]) == \
        ("2001:db8::5", 50001, "2001:db8:1::443", 443)
    assert v6["NetworkProtocolVersion"] == "IPv6" and v6["NetworkRuleName"] == "v6"
    assert (icmp["NetworkIcmpType"], icmp["DvcAction"]) == ("Echo Reply", "Allow")
    assert sorted((q["line"], q["reason"]) for q in quarantine) == [
        (2, "firewall message has no Action: UDP request from 10.1.0.4:123 to 192.0.2.1:123"),
        (2, "firewall message not understood: TCP connection reset by peer"),
    ]


def test_resource_specific_tables_and_exports():
    rows, quarantine, skipped = run(FIXTURES / "resource-specific.jsonl")
    assert (len(rows), skipped) == (6, 2)  # IDPS alert and application rule skipped
    by_type = {r["EventOriginalType"]: r for r in rows}
    nat = by_type["AZFWNatRule"]
    assert (nat["DvcAction"], nat["DstNatIpAddr"], nat["DstNatPortNumber"], nat["NetworkRuleName"]) == \
        ("Allow", "10.0.0.4", 3389, "rdp-in")
    idps = by_type["AZFWIdpsSignature"]
    assert (idps["DvcAction"], idps["EventSeverity"], idps["DstPortNumber"]) == ("Drop", "High", 1433)
    assert json.loads(idps["AdditionalFields"])["IdpsCategory"] == "Attempted Information Leak"
    ti = by_type["AZFWThreatIntel"]
    assert (ti["DvcAction"], ti["EventSeverity"], ti["DstPortNumber"]) == ("Deny", "Medium", 4444)
    legacy_export = by_type["AzureFirewallNetworkRuleLog"]  # AzureDiagnostics export, msg_s
    assert key(legacy_export) == ("UDP", "10.0.0.5", 5353, "10.0.1.5", None, 53, "Allow")
    exported = [r for r in rows if r["EventOriginalUid"] == "5f1a"][0]  # Log Analytics export
    assert key(exported) == ("TCP", "10.0.0.5", 51000, "10.0.1.5", None, 445, "Deny")
    assert exported["Dvc"] == "fw-b" and exported["TimeGenerated"] == utc(2024, 3, 20, 23, 40, 6)
    assert [(q["line"], q["reason"]) for q in quarantine] == [(9, "SrcPortNumber: port outside 0-65535")]


def test_pretty_document_line_is_record_ordinal():
    rows, quarantine, skipped = run(FIXTURES / "pretty-records.json")
    assert (len(rows), len(quarantine), skipped) == (1, 0, 1)
    assert key(rows[0]) == ("TCP", "10.2.0.4", 51000, "10.3.0.4", None, 22, "Deny")


def test_malformed_lines_keep_their_line(tmp_path):
    good = (FIXTURES / "pretty-records.json")
    record = json.loads(good.read_text())["records"][0]
    path = tmp_path / "fw.json"
    path.write_text("\n".join([json.dumps(record), '{"category": "AzureFirewallNetworkRule", "prop',
                               "[]", json.dumps(record)]) + "\n")
    rows, quarantine, _ = run(path)
    assert len(rows) == 2
    assert sorted((q["line"], q["reason"]) for q in quarantine) == [(2, "invalid JSON"), (3, "not a JSON object")]


def test_gzip_and_truncated_gzip(tmp_path):
    data = gzip.compress(sample("test-networkrules-raw.log").read_bytes())
    path = tmp_path / "PT1H.json"
    path.write_bytes(data)
    assert sources.detect(str(path)).name == "azure-firewall"
    assert len(run(path)[0]) == 10
    path.write_bytes(data[:-30])
    rows, quarantine, _ = run(path)
    # the one read-error policy (base.parse_file): one record after the last readable line
    after = int(re.search(r"cut short or corrupt after line (\d+)", quarantine[-1]["reason"])[1])
    assert quarantine[-1]["line"] == after + 1


# ---------------------------------------------------------------- hostile input

MSGS = ["TCP request from 1.2.3.4:1 to 5.6.7.8:22. Action: Allow.",
        "ICMP Type=8 request from 1.2.3.4 to 5.6.7.8. Action: Deny. ",
        "TCP request from 1.2.3.4:1 to 5.6.7.8:22 was DNAT'ed to 10.0.0.1:22",
        "TCP request from 1.2.3.4: to 5.6.7.8:. Action: alert. Signature: 1. IDS: x. Priority: 9",
        "UDP request from [::1]:99999999999 to h.example:53. Action: Drop. Rule: r",
        "request from to", ". Action: Allow.. Rule: ", ""]


def _parse_bytes(data: bytes, suffix=".json"):
    return parse_text(None, data, SOURCE, name="hostile" + suffix)


legacy = st.builds(lambda m, c, t: {"category": c, "properties": {"msg": m}, "time": t},
                   st.one_of(st.sampled_from(MSGS), st.text(max_size=60),
                             st.lists(st.sampled_from(" ".join(MSGS).split()), max_size=15).map(" ".join)),
                   st.sampled_from(["AzureFirewallNetworkRule", "AzureFirewallApplicationRule", "x"]),
                   st.sampled_from(["2022-06-08T16:54:58.8492560Z", "nope", "", "8/25/2025 8:11:21 PM"]))
structured = st.builds(
    lambda c, a, p, sp: {"category": c, "properties": {"Action": a, "Protocol": p, "SourceIp": "1.2.3.4",
                                                       "SourcePort": sp, "DestinationIp": "5.6.7.8",
                                                       "DestinationPort": 80}, "time": "2024-01-01T00:00:00Z"},
    st.sampled_from(["AZFWNetworkRule", "AZFWNatRule", "AZFWIdpsSignature", "AZFWDnsQuery"]),
    st.sampled_from(["Allow", "alert", "DENY", None, 5, "Log"]),
    st.sampled_from(["TCP", "ICMP Type=3", "HTTPS", "Unknown", None, 17]),
    st.sampled_from([1, -1, "x", 1e30, None, 70000]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(legacy, structured), max_size=8), st.booleans(), st.integers(0, 60))
def test_hostile_records_never_raise(recs, wrapped, cut):
    text = json.dumps({"records": recs}) if wrapped else "\n".join(json.dumps(r) for r in recs)
    if cut and cut < len(text):
        text = text[:-cut]
    parsed = _parse_bytes(text.encode())
    if not cut and recs:
        assert parsed.records == len(recs)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000))
def test_random_bytes_never_raise(data):
    _parse_bytes(data)
