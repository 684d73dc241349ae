"""Output formats: OCSF 1.3.0 Detection Finding, the Sentinel alert shape, CEF (escaping
round-trips), and render() over alerts the rule really produces."""

from __future__ import annotations

import copy
import io
import json
import math
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

import portlens
from portlens import __version__, asim, formats, monitor
from portlens.rules import port_anomaly as rule

AS_OF = datetime(2024, 5, 15, 6, 0, tzinfo=timezone.utc)
FLAT_SPIKE = [10, 11, 9, 10, 12, 10, 9, 11, 10, 10, 12, 9, 10, 200]


def detect_typed(config, *rows) -> list[portlens.Alert]:
    keys = {k: [] for k in rule.KEYS}
    totals = []
    for key, values in rows:
        for k, v in zip(rule.KEYS, key):
            keys[k].append(v)
        totals.append(values)
    table = pa.table({k: pa.array(v, asim.COLUMNS[k]) for k, v in keys.items()})
    series = rule.Series(rule.Window(AS_OF), table, np.array(totals, float))
    return portlens.detect(series, config=monitor.load_config(config)).alerts


def detect(config, *rows) -> list[dict]:
    """The alerts as records (the KQL shape the converters also accept)."""
    return [formats.to_record(a) for a in detect_typed(config, *rows)]


@pytest.fixture(scope="module")
def rdp() -> dict:
    [alert] = detect(None, ((3389, "TCP", "Inbound", "Deny"), FLAT_SPIKE))
    return alert


@pytest.fixture
def ldap(write_config) -> dict:
    cfg = write_config('389,*,*,*,*,Detection,Anomaly,,Medium,"InitialAccess,Execution",LDAP,ldap | misuse')
    [alert] = detect(cfg, ((389, "TCP", "Local", "Allow"), FLAT_SPIKE),
                     ((389, "UDP", "Inbound", "Deny"), FLAT_SPIKE))
    return alert


@pytest.fixture
def explained(rdp) -> dict:
    """The RDP alert with the explanation the lead adds: talkers per series and a note."""
    alert = copy.deepcopy(rdp)
    alert["series"][0]["talkers"] = {
        "SrcIpAddr": [{"value": "198.51.100.7", "count": 150, "share": 0.75, "usual_share": 0.0, "new": True},
                      {"value": "2001:db8::5", "count": 40, "share": 0.2, "usual_share": 0.1, "new": False}],
        "DstIpAddr": [{"value": "10.1.0.12", "count": 190, "share": 0.95, "usual_share": 0.9, "new": False}],
        "Dvc": [{"value": "fw-edge-01", "count": 200, "share": 1.0, "usual_share": 1.0, "new": False}],
    }
    alert["explanation"] = {"raw_retained": True, "notes": []}
    alert["something_new"] = {"x": 1}
    return alert


# ---- OCSF ----------------------------------------------------------------------------------

# Attributes of class detection_finding in OCSF 1.3.0 (base_event + finding + detection_finding
# with their includes and profiles), from the schema repository at tag 1.3.0.
OCSF_130_CLASS_ATTRIBUTES = {
    "action", "action_id", "activity_id", "activity_name", "actor", "api", "attacks",
    "authorizations", "category_name", "category_uid", "class_name", "class_uid", "cloud",
    "comment", "confidence", "confidence_id", "confidence_score", "count", "device",
    "disposition", "disposition_id", "duration", "end_time", "enrichments", "evidences",
    "finding_info", "firewall_rule", "impact", "impact_id", "impact_score", "malware", "message",
    "metadata", "observables", "osint", "raw_data", "remediation", "resources", "risk_details",
    "risk_level", "risk_level_id", "risk_score", "severity", "severity_id", "start_time",
    "status", "status_code", "status_detail", "status_id", "time", "timezone_offset",
    "type_name", "type_uid", "unmapped", "vulnerabilities",
}
EVIDENCE_AT_LEAST_ONE = {"actor", "api", "connection_info", "data", "database", "databucket",
                         "device", "dst_endpoint", "email", "file", "process", "query",
                         "src_endpoint", "url", "user", "job"}
ENDPOINT_AT_LEAST_ONE = {"ip", "uid", "name", "hostname", "svc_name", "instance_uid",
                         "interface_uid", "interface_name"}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_ocsf(f: dict) -> None:
    """Required attributes of Detection Finding (2004) present and typed per OCSF 1.3.0."""
    assert set(f) <= OCSF_130_CLASS_ATTRIBUTES, set(f) - OCSF_130_CLASS_ATTRIBUTES
    for key in ("activity_id", "category_uid", "class_uid", "type_uid", "time", "severity_id"):
        assert _is_int(f[key]), key
    assert f["class_uid"] == 2004 and f["category_uid"] == 2 and f["activity_id"] == 1
    assert f["type_uid"] == f["class_uid"] * 100 + f["activity_id"] == 200401
    assert f["severity_id"] in (0, 1, 2, 3, 4, 5, 6, 99)
    assert f["time"] > 10 ** 12  # epoch milliseconds
    meta = f["metadata"]
    assert meta["version"] == formats.OCSF_VERSION == "1.3.0"
    assert isinstance(meta["product"]["vendor_name"], str) and meta["product"]["name"] == "portlens"
    info = f["finding_info"]
    assert isinstance(info["uid"], str) and info["uid"]
    assert isinstance(info["title"], str) and info["title"]
    assert all(isinstance(t, str) for t in info.get("types", []))
    assert info["analytic"]["type_id"] in range(0, 12) or info["analytic"]["type_id"] == 99
    for attack in info.get("attacks", []):
        assert {"tactic", "technique", "sub_technique"} & set(attack)
    for o in f.get("observables", []):
        assert isinstance(o["name"], str) and _is_int(o["type_id"]) and isinstance(o["value"], str)
    for e in f.get("evidences", []):
        assert EVIDENCE_AT_LEAST_ONE & set(e)
        for ep in ("src_endpoint", "dst_endpoint", "device"):
            if ep in e:
                assert ENDPOINT_AT_LEAST_ONE & set(e[ep])
        if "device" in e:
            assert _is_int(e["device"]["type_id"])
        if "connection_info" in e:
            assert _is_int(e["connection_info"]["direction_id"])
    for key in ("start_time", "end_time"):
        if key in f:
            assert _is_int(f[key])
    json.dumps(f, allow_nan=False)


def test_ocsf_detection_finding_required_attributes(rdp):
    f = formats.to_ocsf(rdp)
    check_ocsf(f)
    assert f["time"] == int(AS_OF.timestamp() * 1000) == f["end_time"]
    assert f["start_time"] == int(datetime(2024, 5, 1, 6, tzinfo=timezone.utc).timestamp() * 1000)
    assert (f["severity_id"], f["severity"]) == (4, "High")
    assert f["message"] == rdp["title"] == f["finding_info"]["title"]
    assert f["finding_info"]["uid"] == rdp["id"]
    assert f["finding_info"]["desc"] == rdp["Description"]
    analytic = f["finding_info"]["analytic"]
    assert analytic["uid"] == rule.RULE_ID and analytic["name"] == rule.RULE_NAME
    assert analytic["version"] == rule.RULE_VERSION
    assert f["metadata"]["product"]["version"] == __version__
    # the port observable, the series evidence with its numbers
    assert {"name": "evidences.data.DstPortNumber", "type_id": 11, "type": "Port",
            "value": "3389"} in f["observables"]
    [evidence] = f["evidences"]
    assert evidence["connection_info"] == {"protocol_name": "tcp", "protocol_num": 6,
                                           "direction_id": 1, "direction": "Inbound"}
    assert evidence["data"]["totals"] == FLAT_SPIKE and evidence["data"]["DvcAction"] == "Deny"
    assert f["unmapped"]["portlens"]["Tactic"] == "Lateral Movement"


def test_ocsf_attacks_one_per_tactic_and_technique(ldap):
    f = formats.to_ocsf(ldap)
    check_ocsf(f)
    pairs = [(a["tactic"]["uid"], a["tactic"]["name"], a["technique"]["uid"], a["technique"]["name"])
             for a in f["finding_info"]["attacks"]]
    assert len(pairs) == 8
    assert ("TA0001", "Initial Access", "T1190", "Exploit Public-Facing Application") in pairs
    assert ("TA0002", "Execution", "T1059", "Command and Scripting Interpreter") in pairs
    assert ("TA0002", "Execution", "T1095", "Non-Application Layer Protocol") in pairs
    assert ("TA0001", "Initial Access", "T1203", "Exploitation for Client Execution") in pairs
    assert (f["severity_id"], f["severity"]) == (3, "Medium")
    directions = sorted(e["connection_info"]["direction_id"] for e in f["evidences"])
    assert directions == [1, 3]  # Inbound, Local -> Lateral


@pytest.mark.parametrize("tactic, uid", [("Command and Control", "TA0011"), ("CommandAndControl", "TA0011"),
                                         ("Discovery", "TA0007"), ("lateral movement", "TA0008")])
def test_tactic_ids(tactic, uid):
    assert formats.ocsf_tactic(tactic)["uid"] == uid
    assert formats.ocsf_tactic("Something Else") == {"name": "Something Else"}


@pytest.mark.parametrize("severity, expected", [("Informational", (1, "Informational")), ("Low", (2, "Low")),
                                                ("Medium", (3, "Medium")), ("high", (4, "High")),
                                                ("", (0, "Unknown")), ("Weird", (99, "Weird"))])
def test_ocsf_severity(severity, expected):
    assert formats.ocsf_severity(severity) == expected


def test_ocsf_observables_and_evidence_from_explanation(explained):
    f = formats.to_ocsf(explained)
    check_ocsf(f)
    obs = {(o["name"], o["value"]): o["type_id"] for o in f["observables"]}
    assert obs[("evidences.src_endpoint.ip", "198.51.100.7")] == 2
    assert obs[("evidences.src_endpoint.ip", "2001:db8::5")] == 2
    assert obs[("evidences.dst_endpoint.ip", "10.1.0.12")] == 2
    assert obs[("evidences.device.hostname", "fw-edge-01")] == 1
    assert obs[("evidences.dst_endpoint.port", "3389")] == 11
    dst = [e for e in f["evidences"] if "dst_endpoint" in e]
    assert dst[0]["dst_endpoint"] == {"ip": "10.1.0.12", "port": 3389}
    assert dst[0]["data"]["count"] == 190
    # unknown keys pass through
    assert f["unmapped"]["portlens"]["something_new"] == {"x": 1}
    assert f["unmapped"]["portlens"]["explanation"] == {"raw_retained": True, "notes": []}


def test_non_finite_numbers_become_null(rdp):
    alert = copy.deepcopy(rdp)
    alert["series"][0]["baselines"][0] = float("nan")
    alert["series"][0]["scores"][1] = float("inf")
    for fmt in formats.FORMATS:
        [line] = formats.render([alert], fmt)
        if fmt != "cef":
            json.loads(line)
    f = formats.to_ocsf(alert)
    assert f["evidences"][0]["data"]["baselines"][0] is None
    alert["score"] = float("nan")
    assert "cfp1=" not in formats.to_cef(alert)


def test_minimal_alert_does_not_break_converters():
    alert = {"id": "x1", "Name": "Odd", "Severity": "Low", "DstPortNumber": "7"}
    check_ocsf(formats.to_ocsf({**alert, "window": {"end": "2024-01-02T00:00:00Z"}}))
    assert formats.to_sentinel(alert)["AlertDisplayName"] == "Detected Odd"
    assert formats.parse_cef(formats.to_cef(alert))[1]["dpt"] == "7"


# ---- Sentinel ------------------------------------------------------------------------------

def test_sentinel_shape(ldap):
    s = formats.to_sentinel(ldap)
    assert s["AlertDisplayName"] == "Detected LDAP"
    assert s["Description"] == "ldap | misuse"
    assert s["Severity"] == "Medium"
    assert s["Tactics"] == ["InitialAccess", "Execution"]
    assert s["Techniques"] == ["T1095", "T1059", "T1203", "T1190"]
    assert s["ProductName"] == "Azure Sentinel"
    assert s["AlertType"] == rule.RULE_NAME
    assert s["SystemAlertId"] == ldap["id"]
    assert (s["StartTime"], s["EndTime"]) == ("2024-05-01T06:00:00Z", "2024-05-15T06:00:00Z")
    assert set(s["ExtendedProperties"]) == {"AllNetworkProtocols", "AllNetworkDirections",
                                            "AllDvcAction", "DstPortNumber"}
    assert sorted(s["ExtendedProperties"]["AllNetworkProtocols"]) == ["TCP", "UDP"]
    assert sorted(s["ExtendedProperties"]["AllNetworkDirections"]) == ["Inbound", "Local"]
    assert sorted(s["ExtendedProperties"]["AllDvcAction"]) == ["Allow", "Deny"]
    assert s["ExtendedProperties"]["DstPortNumber"] == "389"
    assert len(s["portlens"]["series"]) == 2


def test_sentinel_passes_unknown_keys(explained):
    s = formats.to_sentinel(explained)
    assert s["portlens"]["something_new"] == {"x": 1}
    assert "explanation" in s["portlens"]
    assert set(s["ExtendedProperties"]) == {"AllNetworkProtocols", "AllNetworkDirections",
                                            "AllDvcAction", "DstPortNumber"}


# ---- CEF -----------------------------------------------------------------------------------

def test_cef_line(explained):
    line = formats.to_cef(explained)
    assert "\n" not in line and "\r" not in line
    header, ext = formats.parse_cef(line)
    assert header == ["0", "portlens", "portlens", __version__, rule.RULE_ID,
                      "Detected Suspicious Remote Desktop Network Traffic", "8"]
    assert ext["externalId"] == explained["id"]
    assert ext["dpt"] == "3389" and ext["proto"] == "TCP" and ext["deviceDirection"] == "0"
    assert ext["src"] == "198.51.100.7" and ext["dst"] == "10.1.0.12"
    assert ext["rt"] == str(int(AS_OF.timestamp() * 1000))
    labels = {ext[k + "Label"]: ext[k] for k in ("cs1", "cs2", "cs3", "cs4", "cs5")}
    assert labels == {"AllNetworkProtocols": "TCP", "AllNetworkDirections": "Inbound",
                      "AllDvcAction": "Deny", "Tactic": "Lateral Movement",
                      "Techniques": "T1095,T1059,T1203,T1190"}
    assert float(ext["cfp1"]) == pytest.approx(explained["score"], rel=1e-5)


@pytest.mark.parametrize("severity, number", [("Informational", "1"), ("Low", "3"), ("Medium", "5"),
                                              ("High", "8"), ("nope", "0")])
def test_cef_severity(rdp, severity, number):
    assert formats.parse_cef(formats.to_cef({**rdp, "Severity": severity}))[0][6] == number


def test_cef_escaping_examples(rdp):
    alert = {**rdp, "title": "a|b\\c\nd", "Description": "x=1 \\ y|z\r\nnext line"}
    line = formats.to_cef(alert)
    assert "|a\\|b\\\\c d|" in line
    assert "msg=x\\=1 \\\\ y|z\\r\\nnext line" in line
    header, ext = formats.parse_cef(line)
    assert header[5] == "a|b\\c d"
    assert ext["msg"] == alert["Description"]


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_cef_extension_value_round_trips(value):
    escaped = formats.cef_escape(value)
    assert "\n" not in escaped and "\r" not in escaped
    assert formats.cef_unescape(escaped) == value
    text = formats.cef_extension([("msg", value), ("cs1", "after"), ("dpt", 1)])
    parsed = formats.parse_cef_extension(text)
    if value:
        assert parsed["msg"] == value
    assert parsed["cs1"] == "after" and parsed["dpt"] == "1"


@settings(max_examples=150, deadline=None)
@given(title=st.text(min_size=1), description=st.text(), name=st.text())
def test_cef_line_round_trips(rdp, title, description, name):
    alert = {**rdp, "title": title, "Description": description, "Tactic": name}
    line = formats.to_cef(alert)
    assert "\n" not in line and "\r" not in line
    header, ext = formats.parse_cef(line)
    assert len(header) == 7
    assert header[5] == title.replace("\r", " ").replace("\n", " ")
    assert ext.get("msg", "") == description
    assert ext.get("cs4", "") == name
    assert ext["externalId"] == rdp["id"]


# ---- render --------------------------------------------------------------------------------

def test_render_one_line_per_alert(rdp, ldap):
    for fmt in formats.FORMATS:
        lines = list(formats.render([rdp, ldap], fmt))
        assert len(lines) == 2
        assert all("\n" not in line for line in lines)
    assert json.loads(next(formats.render([rdp], "ocsf")))["class_uid"] == 2004
    assert json.loads(next(formats.render([rdp], "sentinel")))["SystemAlertId"] == rdp["id"]
    assert next(formats.render([rdp], "cef")).startswith("CEF:0|portlens|")


def test_typed_alerts_render_as_their_records():
    typed = detect_typed(None, ((3389, "TCP", "Inbound", "Deny"), FLAT_SPIKE))
    for fmt in formats.FORMATS:
        assert list(formats.render(typed, fmt)) == list(formats.render(map(formats.to_record, typed), fmt))
    record = formats.to_record(typed[0])
    assert record["DstPortNumber"] == "3389" and record["kind"] == "anomaly"
    assert record["window"]["end"] == "2024-05-15T06:00:00Z"


def test_render_jsonl_matches_alerts_writer(rdp, ldap):
    out = io.StringIO()
    formats.write_jsonl([rdp, ldap], out)
    assert "".join(line + "\n" for line in formats.render([rdp, ldap], "jsonl")) == out.getvalue()


def test_render_unknown_format():
    with pytest.raises(ValueError, match="unknown format"):
        list(formats.render([], "xml"))


def test_clean_replaces_non_finite():
    assert formats.clean({"a": [math.nan, 1.5, math.inf], "b": (1, 2)}) == {"a": [None, 1.5, None], "b": [1, 2]}
