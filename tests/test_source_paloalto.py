"""PAN-OS TRAFFIC source: the public native-CSV sample, CEF fixtures written from PAN's
documented CEF template, detection and a hostile-input property."""

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlens.sources import all_sources, detect, get
from sourcekit import (assert_lines_accounted, hostile_lines, no_internal_errors, one as row, parse,
                       sample_path, SAMPLES, utc, write)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "paloalto"
SOURCE = get("paloalto")


def run(path):
    return parse(path, SOURCE)


# ---- the public sample -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample():
    return run(sample_path("paloalto", "traffic.log", reason="shared PAN-OS sample not present"))


def test_sample_counts(sample):
    table, quarantine, skipped, records = sample
    assert (records, table.num_rows, skipped, quarantine.num_rows) == (20, 20, 0, 0)
    assert set(table.column("EventVendor").to_pylist()) == {"Palo Alto"}
    assert set(table.column("EventProduct").to_pylist()) == {"PanOS"}


def test_sample_tcp_row(sample):
    r = row(sample[0], NetworkSessionId="22751")
    assert r["TimeGenerated"] == utc(2018, 11, 30, 16, 9, 7)
    assert r["EventStartTime"] == utc(2018, 11, 30, 15, 59, 4)
    assert r["EventEndTime"] == utc(2018, 11, 30, 16, 9, 7)
    assert (r["SrcIpAddr"], r["SrcPortNumber"], r["DstIpAddr"], r["DstPortNumber"]) == \
        ("192.168.15.207", 55113, "184.51.253.152", 443)
    assert (r["SrcNatIpAddr"], r["SrcNatPortNumber"]) == ("192.168.1.63", 16418)
    assert r["NetworkProtocol"] == "TCP" and r["NetworkProtocolVersion"] == "IPv4"
    assert (r["DvcAction"], r["DvcOriginalAction"], r["EventResult"]) == ("Allow", "allow", "Success")
    assert r["NetworkDirection"] is None
    # bytes_sent is client->server: SrcBytes (spec part 3, item 2)
    assert (r["NetworkBytes"], r["SrcBytes"], r["DstBytes"]) == (7734, 1758, 5976)
    assert (r["NetworkPackets"], r["SrcPackets"], r["DstPackets"]) == (36, 16, 20)
    assert r["NetworkDuration"] == 586_000
    assert r["EventCount"] == 1
    assert r["EventSubType"] == "End" and r["EventOriginalResultDetails"] == "tcp-fin"
    assert (r["Dvc"], r["DvcId"], r["DvcIdType"]) == ("PA-220", "012801096514", "Other")
    assert (r["SrcZone"], r["DstZone"]) == ("trust", "untrust")
    assert r["NetworkApplicationProtocol"] == "APPLE-MAPS"
    assert r["NetworkRuleName"] == "new_outbound_from_trust"


def test_sample_icmp_row_has_no_ports_and_repeat_count(sample):
    r = row(sample[0], NetworkSessionId="24223")
    assert r["NetworkProtocol"] == "ICMP"
    assert r["SrcPortNumber"] is None and r["DstPortNumber"] is None
    assert r["SrcNatPortNumber"] is None
    assert r["EventCount"] == 6
    assert r["EventResultDetails"] == "Timeout"
    assert (r["SrcBytes"], r["DstBytes"]) == (588, 588)


def test_sample_udp_dns_row(sample):
    r = row(sample[0], NetworkSessionId="24179")
    assert (r["NetworkProtocol"], r["DstPortNumber"], r["SrcPortNumber"]) == ("UDP", 53, 49728)
    assert (r["SrcBytes"], r["DstBytes"], r["NetworkDuration"]) == (80, 221, 0)
    assert r["TimeGenerated"] == utc(2018, 11, 30, 16, 9, 22)


# ---- CEF fixtures (PAN's documented template) ----------------------------------------------------

@pytest.fixture(scope="module")
def cef():
    return run(FIXTURES / "cef.log")


def test_cef_counts_and_quarantine_lines(cef):
    table, quarantine, skipped, records = cef
    assert (records, table.num_rows, skipped, quarantine.num_rows) == (8, 4, 2, 2)
    reasons = dict(zip(quarantine.column("line").to_pylist(), quarantine.column("reason").to_pylist()))
    assert reasons == {6: "missing source or destination address", 7: "not a PAN-OS log record"}
    no_internal_errors(quarantine)


def test_cef_tcp_bytes_direction_and_labels(cef):
    r = row(cef[0], NetworkSessionId="33301")
    assert r["TimeGenerated"] == utc(2024, 8, 12, 15, 31, 19)
    assert r["EventStartTime"] == utc(2024, 8, 12, 15, 30, 37)  # start= minus cn3 elapsed
    assert (r["SrcBytes"], r["DstBytes"], r["NetworkBytes"]) == (1200, 7800, 9000)  # in = bytes_sent
    assert (r["SrcPackets"], r["DstPackets"], r["NetworkPackets"]) == (8, 12, 20)
    assert r["NetworkDuration"] == 42_000
    assert (r["NetworkRuleName"], r["SrcZone"], r["DstZone"]) == ("allow-web", "trust", "untrust")
    assert r["SrcUsername"] == "corp\\alice"
    assert (r["DstPortNumber"], r["NetworkProtocol"], r["DvcAction"]) == (443, "TCP", "Allow")
    assert r["EventProductVersion"] == "10.2.9-h1"
    assert (r["Dvc"], r["DvcHostname"]) == ("PA-3220", "PA-3220")


def test_cef_icmp_without_ports(cef):
    r = row(cef[0], NetworkSessionId="33302")
    assert r["NetworkProtocol"] == "ICMP"
    assert (r["SrcPortNumber"], r["DstPortNumber"]) == (None, None)
    assert r["SrcNatIpAddr"] is None and r["DstNatIpAddr"] is None
    assert (r["SrcBytes"], r["DstBytes"], r["EventCount"]) == (98, 0, 3)


def test_cef_ipv6_reset_both_and_escapes(cef):
    r = row(cef[0], EventOriginalUid="7003")
    assert (r["SrcIpAddr"], r["DstIpAddr"]) == ("2001:db8::10", "2001:db8:1::53")
    assert r["NetworkProtocolVersion"] == "IPv6"
    assert (r["DvcAction"], r["DvcOriginalAction"], r["EventResult"]) == ("Reset", "reset-both", "Failure")
    assert r["NetworkRuleName"] == "block = dns \\ v6"
    assert r["EventOriginalType"] == "drop"


def test_cef_cortex_lf_epoch_rt(cef):
    # Cortex Data Lake: TRAFFIC in the signature field, subtype in the name, out = bytes_sent
    r = row(cef[0], DstPortNumber=3389)
    assert r["TimeGenerated"] == utc(2024, 8, 12, 15, 33, 20)
    assert (r["DvcAction"], r["EventResult"], r["EventSeverity"]) == ("Deny", "Failure", "Low")
    assert (r["SrcBytes"], r["DstBytes"], r["EventOriginalType"]) == (74, 0, "deny")


# ---- native fixtures -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def native():
    return run(FIXTURES / "native.log")


def test_native_counts(native):
    table, quarantine, skipped, records = native
    assert (records, table.num_rows, skipped, quarantine.num_rows) == (10, 4, 3, 3)
    reasons = dict(zip(quarantine.column("line").to_pylist(), quarantine.column("reason").to_pylist()))
    assert reasons == {7: "truncated TRAFFIC record: 17 fields", 8: "invalid source address",
                       9: "not a PAN-OS log record"}
    no_internal_errors(quarantine)


def test_native_ipv6_start_and_quoted_rule(native):
    table = native[0]
    r = row(table, SrcIpAddr="2001:db8::5")
    assert (r["EventSubType"], r["NetworkProtocolVersion"], r["DstPortNumber"]) == ("Start", "IPv6", 8080)
    assert r["SrcNatIpAddr"] is None
    r = row(table, SrcIpAddr="10.0.0.5")
    assert r["NetworkRuleName"] == "deny, all"
    assert (r["DvcAction"], r["EventResult"], r["NetworkProtocol"]) == ("Deny", "Failure", "UDP")
    r = row(table, SrcIpAddr="10.0.0.6")
    assert (r["DvcAction"], r["NetworkProtocol"], r["DstPortNumber"]) == ("Drop ICMP", "ICMP", None)


def test_native_high_resolution_timestamp_gives_the_zone(native):
    r = row(native[0], NetworkSessionId="72568134")
    # generated 18:54:24 local, the field-102 timestamp says +08:00
    assert r["TimeGenerated"] == utc(2023, 10, 4, 10, 54, 24)
    assert r["EventStartTime"] == utc(2023, 10, 4, 10, 53, 52)
    assert (r["SrcBytes"], r["DstBytes"], r["NetworkDuration"]) == (2228, 5084, 16_000)
    assert r["DvcHostname"] == "b309-fu-fw"


# ---- detection ----------------------------------------------------------------------------------------

def test_detect_picks_paloalto_for_its_files():
    for path in [FIXTURES / "cef.log", FIXTURES / "native.log"] + \
            ([SAMPLES / "paloalto" / "traffic.log"] if (SAMPLES / "paloalto").exists() else []):
        assert detect(str(path)).name == "paloalto", path


def test_source_is_registered():
    assert "paloalto" in all_sources()


# ---- hostile input ---------------------------------------------------------------------------------------

_GOOD = (FIXTURES / "native.log").read_text().splitlines() + (FIXTURES / "cef.log").read_text().splitlines()
_pieces = hostile_lines(_GOOD, [
    "1,,,TRAFFIC,end", "CEF:0|Palo Alto Networks|PAN-OS|1|end|TRAFFIC|1|src=1.2.3.4 dst=::1",
    ",,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,", '"' * 5, "\x00\x01\x02", "=" * 300])


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_pieces, max_size=25), endings=st.sampled_from(["\n", "\r\n", "\r"]))
def test_hostile_input_is_accounted_for(tmp_path, lines, endings):
    assert_lines_accounted(write(tmp_path, endings.join(lines), "hostile.log"), SOURCE)
