"""Sentinel table exports (source `sentinel`): every public export sample normalizes, auto-
detected, into ASIM rows routed to its vendor's parser, with pinned values; the export framing
(CSV zones and locales, `null`, suffixes, JSON arrays / lines / query API responses, trailing
commas); skip reasons; `--timezone`; hostile input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlens.sources import detect, get
from portlens.sources._tables import export_time_sql, normal_name, parse_times
from portlens.sources.base import parse_file
from portlens.sources.sentinel import LOCAL_TIMEZONE
from sourcekit import (assert_accounted, checked_reasons, hostile_lines, no_internal_errors, one, parse,
                       parse_text, sample_path, utc, write)

import pyarrow as pa

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sentinel"
SOURCE = get("sentinel")
KEY = ("DstPortNumber", "NetworkProtocol", "NetworkDirection", "DvcAction")


def sample(folder: str) -> tuple:
    folder_path = sample_path("sentinel", folder, reason="shared Sentinel export samples not present")
    path = next(p for p in sorted(folder_path.iterdir()) if p.is_file())
    assert detect(str(path)).name == "sentinel"
    parsed = parse(path)
    no_internal_errors(parsed.quarantine)
    return parsed


def key(r: dict) -> tuple:
    return tuple(r[k] for k in KEY)


def batches(path, **kw):
    return assert_accounted(parse_file(SOURCE, str(path)))


# ---- every public export sample ----------------------------------------------------------------

EXPECTED_COUNTS = {  # folder -> (rows, quarantined, skipped, vendor)
    "azure-firewall": (10, 0, 0, "Microsoft"), "barracuda": (15, 0, 0, "Barracuda"),
    "carbonblack": (21, 0, 0, "VMware"), "cisco-asa": (2, 0, 0, "Cisco"),
    "cisco-firepower": (10, 0, 0, "Cisco"), "cisco-ftd": (5, 0, 0, "Cisco"), "cisco-meraki": (9, 0, 0, "Cisco"),
    "crowdstrike": (4, 0, 0, "CrowdStrike"), "forcepoint": (3, 0, 0, "Forcepoint"),
    "fortinet": (10, 0, 0, "Fortinet"), "illumio": (75, 0, 0, "Illumio"), "sentinelone": (1, 0, 0, "SentinelOne"),
    "sonicwall": (10, 0, 0, "SonicWall"), "sysmon-windows": (5, 0, 0, "Microsoft"),
}


@pytest.mark.parametrize("folder", sorted(EXPECTED_COUNTS))
def test_every_export_sample_is_routed_to_its_vendor(folder):
    rows, quarantine, skipped, records = sample(folder)
    n, q, s, vendor = EXPECTED_COUNTS[folder]
    assert (rows.num_rows, quarantine.num_rows, skipped, records) == (n, q, s, n + q + s)
    assert set(rows.column("EventVendor").to_pylist()) == {vendor}


def test_illumio_sample():
    rows = sample("illumio").rows.to_pylist()
    first = rows[0]  # "10/7/2024, 5:35:42.000 PM" [Local Time], read as UTC without --timezone
    assert first["TimeGenerated"] == utc(2024, 10, 7, 17, 35, 42)
    assert key(first) == (5353, "UDP", "Inbound", "Allow")
    assert (first["SrcIpAddr"], first["DstIpAddr"], first["EventCount"]) == ("10.2.56.2", "224.0.0.251", 1)
    assert (first["Dvc"], first["EventType"], first["NetworkDuration"]) == ("2x2testvc308.ilabs.io", "Flow", 600_000)
    assert json.loads(first["AdditionalFields"])["Class"] == "Multicast"
    denied = [r for r in rows if r["DvcAction"] == "Deny"]
    assert len(denied) == 25 and {r["EventSeverity"] for r in denied} == {"Low"}
    assert sum(r["NetworkDirection"] == "Outbound" for r in rows) == 14  # dir O in the export
    r = one(rows, DstPortNumber=59054)  # IPv6, pd 2
    assert (r["NetworkProtocolVersion"], r["SrcIpAddr"], r["EventCount"]) == ("IPv6", "fd00::200:a:0:3b", 10)


def test_illumio_sample_in_a_time_zone():
    path = sample_path("sentinel", "illumio", reason="shared Sentinel export samples not present")
    token = LOCAL_TIMEZONE.set("Asia/Kolkata")
    try:
        rows = parse(next(path.iterdir())).rows.to_pylist()
    finally:
        LOCAL_TIMEZONE.reset(token)
    assert rows[0]["TimeGenerated"] == utc(2024, 10, 7, 12, 5, 42)


def test_local_time_without_timezone_says_so():
    path = sample_path("sentinel", "sysmon-windows", reason="shared Sentinel export samples not present")
    found = batches(next(path.iterdir()))
    notes = [n for b in found for n in b.notes]
    assert len(notes) == 1 and "[Local Time] read as UTC" in notes[0] and "--timezone" in notes[0]


def test_carbonblack_sample():
    rows = sample("carbonblack").rows.to_pylist()
    assert sum(r["NetworkDirection"] == "Listen" for r in rows) == 4
    r = one(rows, DstIpAddr="14.220.250.40")  # inbound: sides as the parser, initiator noted
    assert key(r) == (51658, "TCP", "Inbound", "Allow")
    assert (r["SrcIpAddr"], r["SrcPortNumber"], r["EventOriginalType"]) == ("10.0.14.120", 22, "ACTION_CONNECTION_ESTABLISHED")
    assert json.loads(r["AdditionalFields"])["Initiator"] == "remote"
    assert r["TimeGenerated"] == utc(2023, 8, 18, 3, 36, 39, 138000)
    assert r["EventStartTime"] == utc(2023, 8, 18, 3, 32, 15)
    failed = [r for r in rows if r["EventResult"] == "Failure"]
    assert len(failed) == 4 and {key(r) for r in failed} == {(80, "TCP", None, "Allow")}


def test_sentinelone_sample_trailing_comma_and_zoned_keys():
    r = sample("sentinelone").rows.to_pylist()[0]
    assert key(r) == (21, "TCP", "Outbound", "Allow")
    assert (r["SrcIpAddr"], r["SrcPortNumber"], r["DstIpAddr"]) == ("2.2.2.1", 11, "1.1.1.1")
    assert r["TimeGenerated"] == utc(2023, 7, 25, 5, 10, 3)
    assert r["EventStartTime"] == utc(2023, 7, 25, 4, 52, 24)  # alertInfo_createdAt [UTC]
    assert (r["EventSeverity"], r["DvcHostname"]) == ("Low", "cent7")


def test_barracuda_sample_reads_the_typed_columns():
    rows = sample("barracuda").rows.to_pylist()
    r = one(rows, SrcIpAddr="10.40.1.89")  # the CEF text in Message says ICMP 10.40.1.88 port 0
    assert key(r) == (8002, "TCP", None, "Allow")
    assert (r["SrcPortNumber"], r["Dvc"], r["DvcIpAddr"]) == (17000, "barracuda", "10.50.7.88")
    assert r["EventStartTime"] == utc(2023, 6, 11, 17, 39, 39, 273000)
    assert sum(r["NetworkProtocol"] == "ICMP" for r in rows) == 11  # Protocol_s


def test_sonicwall_sample():
    rows = sample("sonicwall").rows.to_pylist()
    r = rows[1]  # Connection Opened, LAN -> WAN, udp/dns
    assert key(r) == (53, "UDP", "Outbound", None)  # fw_action "NA": no DvcAction, EventResult NA
    assert (r["EventResult"], r["NetworkApplicationProtocol"], r["Dvc"]) == ("NA", "DNS", "18CAA1A5A8AA")
    assert (r["NetworkRuleName"], r["SrcNatIpAddr"]) == ("Bypass DPI HOST2", "1.2.3.4")
    assert key(rows[0]) == (1900, "UDP", "NA", None)  # LAN -> MULTICAST
    assert {r["NetworkProtocol"] for r in rows} == {"UDP", "TCP", "IGMP"}


def test_crowdstrike_sample_sides_fixed():
    rows = sample("crowdstrike").rows.to_pylist()
    r = rows[0]  # inbound, blocked NetBIOS: remote -> local (the parser sets both to remote)
    assert key(r) == (138, "UDP", "Inbound", "Deny")
    assert (r["SrcIpAddr"], r["DstIpAddr"], r["SrcPortNumber"]) == ("170.15.10.240", "170.10.20.250", 138)
    assert (r["EventResult"], r["NetworkRuleName"], r["DvcId"]) == ("Failure", "NetBIOS/IP TCP 137-139",
                                                                     "2a611bc1add148e4a61eb0ecb8c33896")
    assert r["TimeGenerated"] == utc(2023, 9, 11, 10, 33, 5)


def test_firepower_sample_icmp_types_are_not_ports():
    rows = sample("cisco-firepower").rows.to_pylist()
    r = one(rows, SrcIpAddr="110.50.6.91")
    assert key(r) == (None, "ICMP", None, "Allow")
    assert (r["SrcPortNumber"], r["NetworkIcmpType"], r["NetworkRuleName"]) == (None, "Echo", "TEST")
    assert r["EventStartTime"] == utc(2023, 6, 27, 8, 42, 45)
    assert key(one(rows, SrcIpAddr="110.50.6.93")) == (12, "UDP", None, "Allow")
    assert sum(r["NetworkProtocol"] == "ICMP" for r in rows) == 5


def test_ftd_sample_day_first_times():
    rows = sample("cisco-ftd").rows.to_pylist()
    r = rows[0]  # "25/06/2026, 11:32:29.479": a day-first locale
    assert r["TimeGenerated"] == utc(2026, 6, 25, 11, 32, 29, 479000)
    assert key(r) == (161, "UDP", None, "Allow")
    assert (r["EventSubType"], r["NetworkDuration"], r["SrcBytes"], r["DstBytes"]) == ("End", 127_000, 3990, 8524)
    assert (r["NetworkRuleName"], r["DvcInboundInterface"]) == ("Interconnect-to-SD-WAN", "Interconnect")
    assert key(rows[1]) == (23, "TCP", None, "Deny")


def test_forcepoint_sample():
    rows = sample("forcepoint").rows.to_pylist()
    assert {key(r) for r in rows} == {(8585, "TCP", None, "Allow")}
    assert rows[0]["NetworkRuleName"] == "2097162.2, 260076.1"


def test_csl_vendors_of_raw_parsers():
    r = one(sample("fortinet").rows, NetworkSessionId="12345")
    assert r["TimeGenerated"] == utc(2025, 11, 5, 10, 30)
    assert r["EventStartTime"] == utc(2025, 11, 5, 10, 29, 58)  # FTNTFGTstart
    assert (r["SrcBytes"], r["DstBytes"], r["NetworkDuration"]) == (4096, 2048, 120_000)
    assert key(r) == (443, "TCP", "Outbound", "Allow")
    assert (r["Dvc"], r["DvcId"], r["EventProductVersion"]) == ("FortiGate-VM64", "FG-VM64-001", "v7.2.0")
    r = one(sample("fortinet").rows, NetworkSessionId="12351")  # ip-conn, ICMP without ports
    assert (r["NetworkProtocol"], r["DstPortNumber"], r["EventResultDetails"]) == ("ICMP", None, "Unknown")
    asa = sample("cisco-asa").rows.to_pylist()
    assert key(asa[0]) == (443, "TCP", None, "Allow") and asa[0]["Dvc"] == "ASA-01"
    assert (asa[1]["DstPortNumber"], asa[1]["NetworkProtocol"]) == (53, "UDP")


def test_syslog_event_and_azure_tables():
    rows = sample("cisco-meraki").rows.to_pylist()
    assert rows[0]["TimeGenerated"] == utc(2025, 1, 15, 12, 0)  # "15-01-25 12:00", the table's time
    assert rows[0]["EventStartTime"] == utc(2023, 6, 17, 14, 32, 46, 347759)  # the record's own
    assert {key(r) for r in rows} >= {(8009, "TCP", None, "Deny"), (8011, "TCP", None, "Allow")}
    sysmon = sample("sysmon-windows").rows.to_pylist()
    assert key(sysmon[0]) == (5985, "TCP", "Outbound", None)  # Initiated TRUE
    assert sysmon[0]["TimeGenerated"] == utc(2023, 11, 17, 11, 32, 4, 819000)
    azfw = sample("azure-firewall").rows.to_pylist()
    assert key(azfw[0]) == (53, "UDP", None, "Allow")
    assert azfw[0]["TimeGenerated"] == utc(2025, 11, 21, 20, 14, 51, 213253)


def test_zscaler_json_export_rows_are_skipped_with_reasons():
    path = sample_path("zscaler", "ZScaler.json", reason="shared Zscaler sample not present")
    assert detect(str(path)).name == "sentinel"
    found = batches(path)
    skipped_by = {k: v for b in found for k, v in b.skipped_by.items()}
    assert sum(b.table.num_rows for b in found) == 0
    assert skipped_by == {"Fortinet FortiGate: records that are not network sessions": 1,
                          "Zscaler web/DNS log (NSS feed other than NSSFWlog): not a network session": 1}


# ---- fixtures: framing and routing --------------------------------------------------------------

def test_csl_csv_mixed_vendors_short_row_and_event_row():
    rows, quarantine, skipped, records = parse(FIXTURES / "commonsecuritylog_fortinet_paloalto.csv")
    assert (records, rows.num_rows, skipped, quarantine.num_rows) == (4, 2, 1, 1)
    assert checked_reasons(quarantine) == {4: "expected 22 CSV fields, found 12"}
    fortinet = one(rows, EventVendor="Fortinet")
    assert (fortinet["NetworkSessionId"], fortinet["NetworkDirection"], fortinet["NetworkDuration"]) == \
        ("9001", "Local", 4000)
    pan = one(rows, EventVendor="Palo Alto")
    assert (pan["SrcIpAddr"], pan["DstPortNumber"], pan["DvcAction"]) == ("10.0.0.2", 443, "Allow")


def test_query_api_response_dispatches_tables_and_vendors():
    found = batches(FIXTURES / "query_api_mixed.json")
    rows = [r for b in found for r in b.table.to_pylist()]
    skipped_by = {k: v for b in found for k, v in b.skipped_by.items()}
    assert sum(b.records for b in found) == 6
    r = one(rows, EventVendor="SonicWall")
    assert key(r) == (443, "TCP", "Outbound", "Allow")
    assert (r["NetworkRuleName"], r["Dvc"], r["NetworkApplicationProtocol"]) == ("Allow LAN to WAN", "C0EAE4A1B2C3", "HTTPS")
    r = one(rows, EventVendor="Cisco")  # a Syslog row: the Meraki message
    assert key(r) == (3389, "TCP", None, "Deny") and r["TimeGenerated"] == utc(2024, 5, 1, 10, 0, 4)
    assert skipped_by == {
        "SonicWall Firewall: records that are not network sessions": 1,  # gcat 7 (VPN)
        "Zscaler web/DNS log (NSS feed other than NSSFWlog): not a network session": 1,
        "CommonSecurityLog: Acme Widget is not a network-session vendor portlens maps": 1,
        "Event: Service Control Manager events are not network sessions": 1}


def test_json_lines_local_time_suffixes_nulls_and_timezone():
    path = FIXTURES / "illumio_local_time.jsonl"
    token = LOCAL_TIMEZONE.set("America/New_York")
    try:
        rows, quarantine, skipped, records = parse(path)
    finally:
        LOCAL_TIMEZONE.reset(token)
    assert (records, rows.num_rows, quarantine.num_rows) == (4, 3, 1)
    assert checked_reasons(quarantine) == {4: "invalid JSON"}
    r = one(rows, SrcIpAddr="10.1.0.5")
    assert r["TimeGenerated"] == utc(2024, 5, 1, 16, 0)  # noon in New York (EDT)
    assert key(r) == (445, "TCP", "Outbound", "Deny")
    assert (r["EventCount"], r["DstHostname"], r["SrcHostname"]) == (3, None, "ws-5")  # "null" literal
    assert one(rows, SrcIpAddr="10.1.0.7")["NetworkDirection"] is None  # dir X: no direction


def test_json_document_with_trailing_commas():
    rows, quarantine, skipped, records = parse(FIXTURES / "trailing_comma.json")
    assert (records, rows.num_rows, skipped, quarantine.num_rows) == (2, 1, 1, 0)
    r = rows.to_pylist()[0]
    assert key(r) == (4444, "TCP", "Outbound", "Allow") and r["EventSeverity"] == "High"


def test_unreadable_document_is_one_quarantine_record(tmp_path):
    parsed = parse_text(tmp_path, '[{"TimeGenerated": "2024-05-01T00:00:00Z", "Type": "Syslog", "x": }]',
                        name="broken.json")
    assert (parsed.records, parsed.rows.num_rows, parsed.quarantine.num_rows) == (1, 0, 1)
    assert checked_reasons(parsed.quarantine)[1].startswith("invalid JSON document")


# ---- export times and names ---------------------------------------------------------------------------

def test_export_times():
    values = pa.array(["9/24/2024, 7:27:24.000 PM", "6/11/2023, 5:40 PM", "25/06/2026, 11:32:29.479",
                       "15-01-25 12:00", "2025-11-21 20:14:51.2132530", "2025-11-05T10:30:00.000+02:00",
                       "17.11.2023 11:32:04", "yesterday", None])
    assert parse_times(values).to_pylist() == [
        utc(2024, 9, 24, 19, 27, 24), utc(2023, 6, 11, 17, 40), utc(2026, 6, 25, 11, 32, 29, 479000),
        utc(2025, 1, 15, 12, 0), utc(2025, 11, 21, 20, 14, 51, 213253), utc(2025, 11, 5, 8, 30),
        utc(2023, 11, 17, 11, 32, 4), None, None]
    # a wall-clock time in a zone; an explicit offset is kept
    assert parse_times(pa.array(["1/15/2024, 9:00:00 AM", "2024-01-15T09:00:00Z"]), "Europe/Paris").to_pylist() == \
        [utc(2024, 1, 15, 8, 0), utc(2024, 1, 15, 9, 0)]
    assert "timezone" in export_time_sql("x", "Europe/Paris")


def test_normal_names():
    assert normal_name("TimeGenerated [Local Time]") == ("TimeGenerated", "Local Time")
    assert normal_name('"DestinationPort_d"') == ("DestinationPort", None)
    assert normal_name("alertInfo_createdAt [UTC]") == ("alertInfo_createdAt", "UTC")
    assert normal_name("_ResourceId") == ("_ResourceId", None)
    assert normal_name("SourceIP") == ("SourceIP", None)


# ---- hostile input ----------------------------------------------------------------------------------------

_CSL_HEADER = (FIXTURES / "commonsecuritylog_fortinet_paloalto.csv").read_text().splitlines()[0]
_CSL_GOOD = (FIXTURES / "commonsecuritylog_fortinet_paloalto.csv").read_text().splitlines()[1:]
_pieces = hostile_lines(_CSL_GOOD, ['"', '""', ',,,,', 'null,' * 30, '"a\nb",c', "x" * 300,
                                    "t1,2025-11-05T10:30:00Z,h,,Fortinet,FortiGate,1,1,a,3,TCP,1.1.1.1,99999999999,"
                                    "2.2.2.2,-5,accept,a,b,1,1,,x"], cut=3)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_pieces, max_size=20), endings=st.sampled_from(["\n", "\r\n"]))
def test_hostile_csv_export_is_accounted_for(tmp_path, lines, endings):
    path = write(tmp_path, endings.join([_CSL_HEADER] + lines), "hostile.csv")
    assert detect(str(path)).name == "sentinel"
    parsed = parse(path, SOURCE)
    no_internal_errors(parsed.quarantine)
    assert parsed.rows.num_rows + parsed.quarantine.num_rows + parsed.skipped == parsed.records


_JSON_GOOD = [json.dumps(r) for r in (
    {"TimeGenerated": "2024-05-01T00:00:00Z", "Type": "CommonSecurityLog", "DeviceVendor": "SonicWall",
     "DeviceProduct": "NSA", "AdditionalExtensions": "gcat=6;fw_action=allow", "SourceIP": "1.1.1.1",
     "DestinationIP": "2.2.2.2", "DestinationPort": 443, "Protocol": "tcp/https"},
    {"TimeGenerated": "not a time", "Type": "Illumio_Flow_Events_CL", "src_ip": "1.1.1.1", "dst_port": 70000},
    {"TimeGenerated": "2024-05-01T00:00:00Z", "Type": "SentinelOne_CL", "event_name": "Alerts.",
     "alertInfo_eventType": "TCPV4", "alertInfo_dstPort": "x"},
    {"TimeGenerated": "2024-05-01T00:00:00Z", "Type": "Syslog", "SyslogMessage": "%FTD-7-430003: SrcIP: ,"},
    {"TimeGenerated": "2024-05-01T00:00:00Z", "Type": "Event", "Source": "Microsoft-Windows-Sysmon",
     "EventID": 3, "EventData": "<Data Name=\"SourceIp\">1.1.1.1</Data"},
    {"TimeGenerated": "2024-05-01T00:00:00Z", "Type": "CarbonBlackEvents_CL", "eventType": "endpoint.event.netconn",
     "remote_port": -1, "local_ip": "::1"})]
_json_pieces = hostile_lines(_JSON_GOOD, ["[", "{}", "null", '{"Type": 5}', '{"TimeGenerated": []}', "]"], cut=2)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_json_pieces, max_size=15))
def test_hostile_json_lines_export_is_accounted_for(tmp_path, lines):
    path = write(tmp_path, "\n".join([_JSON_GOOD[0]] + lines), "hostile.jsonl")
    parsed = parse(path, SOURCE)
    no_internal_errors(parsed.quarantine)
    assert parsed.rows.num_rows + parsed.quarantine.num_rows + parsed.skipped == parsed.records


# ---- the command line: --timezone, skip reasons, status ---------------------------------------------

def _portlens(*args):
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "portlens", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_cli_normalize_timezone_and_skip_reasons(tmp_path):
    path = FIXTURES / "illumio_local_time.jsonl"
    r = _portlens("normalize", path, "--timezone", "America/New_York")
    assert r.returncode == 0 and json.loads(r.stdout.splitlines()[0])["TimeGenerated"] == "2024-05-01T16:00:00.000000Z"
    assert "read as UTC" not in r.stderr
    r = _portlens("normalize", path)
    assert r.returncode == 0 and json.loads(r.stdout.splitlines()[0])["TimeGenerated"] == "2024-05-01T12:00:00.000000Z"
    assert r.stderr.count("[Local Time] read as UTC") == 1
    r = _portlens("normalize", path, "--timezone", "Mars/Olympus")
    assert r.returncode == 2 and r.stderr.strip().startswith("portlens: error: --timezone") and "Traceback" not in r.stderr
    r = _portlens("normalize", FIXTURES / "query_api_mixed.json", "-o", tmp_path / "rows.parquet")
    assert "skipped 1: CommonSecurityLog: Acme Widget is not a network-session vendor portlens maps" in r.stderr
    assert "rows 1: SonicWall Firewall" in r.stderr


def test_status_names_vendors_seen_and_skip_reasons(tmp_path):
    from portlens.store import Store
    db = tmp_path / "s.duckdb"
    with Store(str(db)) as store:
        result = store.ingest(str(FIXTURES / "query_api_mixed.json"))
        assert result.skipped_by["Event: Service Control Manager events are not network sessions"] == 1
        info = store.status()
    assert info["sessions_by_vendor"] == {"Cisco Meraki": 1, "SonicWall Firewall": 1}
    assert info["skipped_by"] == {
        "SonicWall Firewall: records that are not network sessions": 1,
        "Zscaler web/DNS log (NSS feed other than NSSFWlog): not a network session": 1,
        "CommonSecurityLog: Acme Widget is not a network-session vendor portlens maps": 1,
        "Event: Service Control Manager events are not network sessions": 1}
    r = _portlens("status", "--db", db)
    assert r.returncode == 0 and "vendors seen" in r.stdout and "Acme Widget" in r.stdout
