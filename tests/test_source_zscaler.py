"""Zscaler ZIA firewall source: the public NSS JSON sample, CEF fixtures written from the NSS
firewall feed template, detection (including the mislabelled CommonSecurityLog JSON sample)
and hostile input."""

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlens.sources import SourceError, base, detect, get
from sourcekit import (assert_lines_accounted, checked_reasons as reasons, hostile_lines, one as row, parse,
                       sample_path, SAMPLES, utc, write)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "zscaler"
SOURCE = get("zscaler")


def run(path):
    return parse(path, SOURCE)


def header_year(month, day, *hms):
    """The year the NSS CEF header (no year) is given: this year unless that is in the future."""
    now = datetime.now(timezone.utc)
    return now.year if utc(now.year, month, day, *hms) <= now + timedelta(days=1) else now.year - 1


# ---- the public JSON sample (test-firewall.log) -------------------------------------------------

def test_json_sample():
    path = sample_path("zscaler", "test-firewall.log", reason="shared Zscaler sample not present")
    table, quarantine, skipped, records = run(path)
    assert (records, table.num_rows, skipped, quarantine.num_rows) == (1, 1, 0, 0)
    r = table.to_pylist()[0]
    assert r["TimeGenerated"] == utc(2021, 12, 17, 7, 27, 54)
    assert (r["SrcIpAddr"], r["SrcPortNumber"], r["DstIpAddr"], r["DstPortNumber"]) == ("0.0.0.0", 55018, "0.0.0.0", 443)
    assert (r["NetworkProtocol"], r["DvcAction"], r["DvcOriginalAction"], r["EventResult"]) == \
        ("TCP", "Drop", "Drop", "Failure")
    assert (r["SrcBytes"], r["DstBytes"], r["NetworkBytes"]) == (1734, 19052, 20786)  # out / in
    assert (r["NetworkDuration"], r["EventCount"]) == (486, 1)  # durationms; numsessions
    assert r["NetworkRuleName"] == "Access Blocked"  # URL-decoded
    assert (r["NetworkApplicationProtocol"], r["DstAppName"]) == ("HTTPS", "http")
    assert (r["SrcUsername"], r["SrcHostname"]) == ("some_user@example.com", "Machine9000")
    assert r["SrcNatIpAddr"] is None and r["DstNatIpAddr"] is None  # 0.0.0.0
    assert r["NetworkDirection"] is None
    assert (r["EventVendor"], r["EventProduct"], r["Dvc"]) == ("Zscaler", "ZIA Firewall", "ZIA Firewall")


def test_commonsecuritylog_json_sample_is_not_claimed():
    # ZScaler.json is a CommonSecurityLog export (one FortiGate utm row, one NSSWeblog row, no
    # firewall row): no source reads it as Zscaler firewall data
    path = sample_path("zscaler", "ZScaler.json", reason="shared Zscaler sample not present")
    assert not SOURCE.sniff(base.read_head(str(path)), str(path))
    try:
        assert detect(str(path)).name != "zscaler"
    except SourceError:
        pass


# ---- fixtures ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fixture():
    return run(FIXTURES / "cef.log")


def test_fixture_counts(fixture):
    table, quarantine, skipped, records = fixture
    assert (records, table.num_rows, skipped, quarantine.num_rows) == (12, 7, 2, 3)
    assert reasons(quarantine) == {8: "missing source or destination address", 9: "not a Zscaler NSS record",
                                   12: "not a Zscaler NSS record"}


def test_cef_allow_row(fixture):
    r = row(fixture[0], DstPortNumber=443)
    assert r["TimeGenerated"] == utc(header_year(1, 15, 10, 0, 1), 1, 15, 10, 0, 1)
    assert (r["SrcIpAddr"], r["SrcPortNumber"], r["DstIpAddr"]) == ("10.20.30.40", 52000, "93.184.216.34")
    assert (r["DvcAction"], r["EventResult"], r["NetworkProtocol"]) == ("Allow", "Success", "TCP")
    assert (r["SrcBytes"], r["DstBytes"]) == (4100, 52000)  # out = client -> server
    assert (r["EventCount"], r["NetworkDuration"]) == (3, 1500)  # cn2 numsessions, cn1 durationms
    assert (r["SrcNatIpAddr"], r["SrcNatPortNumber"]) == ("198.51.100.200", 4500)  # tsip
    assert r["DstNatIpAddr"] is None
    assert (r["NetworkDirection"], r["Dvc"], r["DvcHostname"]) == ("Outbound", "zscaler-nss-fw", "zscaler-nss-fw")
    assert (r["NetworkApplicationProtocol"], r["DstAppName"], r["SrcUsername"]) == ("HTTPS", "ssl", "jdoe@example.com")
    assert '"ServerSourceIp":"165.225.10.1"' in r["AdditionalFields"]
    assert '"ThreatCategory"' not in r["AdditionalFields"]  # cs5 = None (first of the two cs5)


def test_cef_icmp_block_without_ports(fixture):
    r = row(fixture[0], DvcOriginalAction="Block/ICMP")
    assert (r["DvcAction"], r["NetworkProtocol"], r["SrcPortNumber"], r["DstPortNumber"]) == \
        ("Drop ICMP", "ICMP", None, None)
    assert r["SrcNatIpAddr"] is None


def test_cef_insufficient_app_data_is_an_allow(fixture):
    r = row(fixture[0], DstPortNumber=8443)
    assert (r["DvcAction"], r["EventResult"], r["EventCount"]) == ("Allow", "Success", 1)
    assert r["DvcOriginalAction"] == "Allow due to insufficient app data"


def test_cef_ipv6_reset(fixture):
    r = row(fixture[0], DstPortNumber=53)
    assert (r["SrcIpAddr"], r["DstIpAddr"], r["NetworkProtocolVersion"]) == ("2001:db8::40", "2001:db8:ffff::53", "IPv6")
    assert (r["DvcAction"], r["EventResult"], r["NetworkProtocol"]) == ("Reset", "Failure", "UDP")


def test_cef_login_equal_to_location_is_blanked(fixture):
    assert row(fixture[0], DstPortNumber=22)["SrcUsername"] is None


def test_cef_escapes(fixture):
    assert row(fixture[0], DstPortNumber=8080)["NetworkRuleName"] == "Allow = web \\ out"


def test_bare_json_event(fixture):
    r = row(fixture[0], DstPortNumber=3389)
    assert r["TimeGenerated"] == utc(2021, 1, 15, 10, 0, 11)  # epochtime
    assert (r["DvcAction"], r["DvcOriginalAction"], r["EventCount"], r["NetworkDuration"]) == ("Drop", "IPS Drop", 2, 20)
    assert r["NetworkRuleName"] == "Block RDP"
    assert '"Location":"Branch 1"' in r["AdditionalFields"] and '"ThreatName":"Zeus"' in r["AdditionalFields"]


# ---- detection --------------------------------------------------------------------------------------------

def test_detect_picks_zscaler():
    paths = [FIXTURES / "cef.log"]
    if (SAMPLES / "zscaler" / "test-firewall.log").exists():
        paths.append(SAMPLES / "zscaler" / "test-firewall.log")
    for path in paths:
        assert detect(str(path)).name == "zscaler", path


# ---- hostile input ---------------------------------------------------------------------------------------------

_GOOD = (FIXTURES / "cef.log").read_text().splitlines()
_pieces = hostile_lines(_GOOD, [
    '{"sourcetype":"zscalernss-fw","event":[1,2]}', '{"csip":"1.1.1.1","cdip":{}}', "{",
    '{"event":{"csip":"::1","cdip":"::2","datetime":"Feb 30 99:99:99 2021"}}',
    "Feb 29 01:00:00 h CEF:0|Zscaler|NSSFWlog|5.7|Allow|r|3| act=Allow src=1.1.1.1 dst=2.2.2.2",
    "%" * 50, "cn2=" * 40])


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_pieces, max_size=25), endings=st.sampled_from(["\n", "\r\n", "\r"]))
def test_hostile_input_is_accounted_for(tmp_path, lines, endings):
    assert_lines_accounted(write(tmp_path, endings.join(lines), "hostile.log"), SOURCE)
