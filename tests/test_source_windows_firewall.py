import csv
import io
import json
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlens import sources
from sourcekit import parse, parse_text, reasons, tuple_of, UTC

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "windows_firewall"
SOURCE = sources.get("windows-firewall")


def run(path, source=SOURCE, batch_lines=100_000):
    return parse(path, source, batch_lines)


# ---------------------------------------------------------------- XML


@pytest.mark.parametrize("batch_lines", [100_000, 7])
def test_security_xml(batch_lines):
    rows, quarantine, skipped, records = run(FIXTURES / "security_events.xml", batch_lines=batch_lines)
    # 5158 (bind) and 4624 skipped; one event with no SourceAddress; one cut at the end
    assert (rows.num_rows, quarantine.num_rows, skipped, records) == (6, 2, 2, 10)
    assert reasons(quarantine) == {159: "SourceAddress: missing",
                                   160: "truncated: <Event> with no </Event> before the end of the file"}
    r = {x["EventOriginalUid"]: x for x in rows.to_pylist()}
    doc = r["308129"]  # Microsoft's 5156 example: inbound, local host reported as Source
    assert tuple_of(doc) == ("10.0.0.100", 49278, "10.0.0.10", 3333)
    assert (doc["NetworkDirection"], doc["DvcAction"], doc["EventResult"], doc["NetworkProtocol"]) == \
        ("Inbound", "Allow", "Success", "TCP")
    assert doc["TimeGenerated"] == datetime(2015, 9, 22, 5, 24, 22, 622090, tzinfo=UTC)
    assert (doc["DstAppName"], doc["SrcAppName"]) == ("\\device\\harddiskvolume2\\documents\\listener.exe", None)
    assert (doc["Dvc"], doc["DvcHostname"], doc["DvcIpAddr"], doc["EventType"]) == \
        ("DC01.contoso.local", "DC01", "10.0.0.10", "EndpointNetworkSession")
    assert (doc["EventVendor"], doc["EventProduct"], doc["EventOriginalType"]) == ("Microsoft", "Windows Firewall", "5156")
    out = r["308130"]  # outbound UDP, no swap, hex ProcessID
    assert tuple_of(out) == ("10.0.0.10", 53211, "8.8.8.8", 53)
    assert (out["NetworkDirection"], out["NetworkProtocol"]) == ("Outbound", "UDP")
    assert out["SrcAppName"].endswith("svchost.exe")
    extra = json.loads(out["AdditionalFields"])
    assert extra["ProcessId"] == 0x3A8 and extra["LayerName"] == "Connect"
    blocked = r["308131"]
    assert tuple_of(blocked) == ("2001:db8::10", 50000, "2001:db8::99", 445)
    assert (blocked["DvcAction"], blocked["EventResult"], blocked["EventSeverity"], blocked["NetworkRuleName"],
            blocked["NetworkProtocolVersion"]) == ("Deny", "Failure", "Low", "70312", "IPv6")
    icmp = r["308132"]  # 5152 dropped inbound ICMP: no ports
    assert tuple_of(icmp) == ("203.0.113.5", None, "10.0.0.10", None)
    assert (icmp["NetworkProtocol"], icmp["DvcAction"], icmp["DstAppName"]) == ("ICMP", "Deny", None)
    listen = r["308133"]
    assert tuple_of(listen) == (None, None, "0.0.0.0", 8080)
    assert (listen["NetworkDirection"], listen["DvcAction"]) == ("Listen", "Allow")
    forward = r["308136"]
    assert forward["NetworkDirection"] == "NA" and tuple_of(forward) == ("10.0.0.10", 1000, "10.0.1.10", 2000)


def test_utf16_xml(tmp_path):
    text = (FIXTURES / "security_events.xml").read_text()
    path = tmp_path / "export.xml"
    path.write_bytes(b"\xff\xfe" + text.replace("\n", "\r\n").encode("utf-16-le"))
    rows, quarantine, skipped, _ = run(path)
    assert (rows.num_rows, quarantine.num_rows, skipped) == (6, 2, 2)
    assert sources.detect(str(path)).name == "windows-firewall"


# ---------------------------------------------------------------- JSON and CSV exports


def test_json_exports():
    rows, quarantine, skipped, records = run(FIXTURES / "windows_events.json")
    assert (rows.num_rows, quarantine.num_rows, skipped, records) == (3, 2, 1, 6)
    assert reasons(quarantine) == {4: "not a JSON object", 6: "time: missing or not a timestamp"}
    r = {x["Dvc"]: x for x in rows.to_pylist()}
    wev = r["WS01.contoso.local"]  # WindowsEvent: EventData object
    assert tuple_of(wev) == ("10.1.1.5", 50123, "93.184.216.34", 443)
    assert (wev["NetworkDirection"], wev["EventOriginalUid"]) == ("Outbound", "a1")
    sev = r["FS01.contoso.local"]  # SecurityEvent: EventData XML string, inbound swap
    assert tuple_of(sev) == ("10.1.1.99", 51000, "10.1.1.6", 445)
    assert sev["TimeGenerated"] == datetime(2024, 5, 1, 11, 0, 1, 500000, tzinfo=UTC)
    assert json.loads(sev["AdditionalFields"])["RemoteUserID"] == "S-1-5-21-1-2-3-1104"
    wlb = r["WS02.contoso.local"]  # Winlogbeat
    assert tuple_of(wlb) == ("198.51.100.23", 60001, "10.1.1.7", 3389)
    assert (wlb["DvcAction"], wlb["EventOriginalUid"], wlb["DstAppName"]) == \
        ("Deny", "777", "\\device\\harddiskvolume3\\x\\rdp.exe")


def test_csv_export_multiline_values():
    rows, quarantine, skipped, records = run(FIXTURES / "security_event.csv")
    assert (rows.num_rows, quarantine.num_rows, skipped, records) == (2, 1, 1, 4)
    assert reasons(quarantine) == {18: "expected 5 CSV fields, found 4"}
    first, second = rows.to_pylist()
    assert first["TimeGenerated"] == datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)
    assert tuple_of(first) == ("10.1.1.99", 51000, "10.1.1.6", 445)
    assert (second["NetworkDirection"], second["DvcAction"]) == ("Outbound", "Deny")
    assert tuple_of(second) == ("10.1.1.6", 51001, "10.1.1.99", 23)


def test_csv_line_numbers_and_unterminated_quote(tmp_path):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["TimeGenerated", "Computer", "EventID", "EventData"])
    ed = json.dumps({"Direction": "%%14593", "SourceAddress": "10.0.0.1", "SourcePort": "5",
                     "DestAddress": "10.0.0.2", "DestPort": "6", "Protocol": "6"})
    w.writerow(["2024-05-01T00:00:00Z", "H1", "5156", ed])
    w.writerow(["2024-05-01T00:00:01Z", "H1", "5156", "multi\nline\n" + ed])
    w.writerow(["2024-05-01T00:00:02Z", "H1", "5156", ed])
    buf.write('2024-05-01T00:00:03Z,H1,5156,"never closed\nand more\n')
    path = tmp_path / "wev.csv"
    path.write_text(buf.getvalue())
    for batch_lines in (100_000, 2):
        rows, quarantine, skipped, _ = run(path, batch_lines=batch_lines)
        assert rows.num_rows == 2  # the multi-line value is not an object: no SourceAddress
        assert reasons(quarantine) == {3: "SourceAddress: missing",
                                       7: "unterminated quoted value at the end of the file"}


# ---------------------------------------------------------------- detection


def test_detect():
    for path in FIXTURES.iterdir():
        assert sources.detect(str(path)).name == "windows-firewall", path


# ---------------------------------------------------------------- hostile input

XML_LINE = (FIXTURES / "security_events.xml").read_text().splitlines()[-4] \
    if (FIXTURES / "security_events.xml").exists() else "<Event>"
JSON_LINE = (FIXTURES / "windows_events.json").read_text().splitlines()[0] \
    if (FIXTURES / "windows_events.json").exists() else "{}"
fragments = st.one_of(st.text(max_size=20), st.sampled_from(['"', '""', ",", "\n", "<Event>", "</Event>", "{", "}",
                                                             "%%14592", "5156", "S-1-0-0", "\r"]))
hostile = st.lists(fragments, max_size=30).map("".join)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["xml", "json", "csv"]), st.lists(st.one_of(hostile, st.just(XML_LINE), st.just(JSON_LINE),
                                                                   st.integers(0, 400).map(lambda i: JSON_LINE[:i])),
                                                         max_size=12), st.integers(1, 5))
def test_property_hostile(tmp_path, kind, lines, batch_lines):
    head = {"xml": '<?xml version="1.0"?>\n<Events>\n', "json": JSON_LINE + "\n",
            "csv": "TimeGenerated,Computer,EventID,EventData\n"}[kind]
    text = head + "\n".join(lines)
    rows, quarantine, skipped, records = parse_text(tmp_path, text, SOURCE, f"f.{kind}", batch_lines)
    assert rows.num_rows + quarantine.num_rows + skipped == records


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=500), st.sampled_from([b"", b"{", b"EventID,EventData\n", b"<Events>"]))
def test_property_bytes(tmp_path, data, prefix):
    parse_text(tmp_path, prefix + data, SOURCE, "f.bin", 3)
