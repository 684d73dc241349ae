import string

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portlens.monitor import (
    EXPANDED_SCHEMA, ConfigError, describe, expanded, load_config, match_mask, matches,
)

HEADER = "Ports,App,Protocol,Direction,Action,Type,ThresholdType,Threshold,Severity,Tactic,Name,Description"
GOOD = '"389,636",*,*,*,*,Detection,Anomaly,,High,"InitialAccess,Execution",LDAP,Some text'


def write(tmp_path, *lines, name="config.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


@pytest.fixture(scope="module")
def default():
    return load_config()


# ---------------------------------------------------------------- packaged default


def test_default_loads_all_rows(default):
    assert default.path == "<default>"
    assert len(default.rows) == 72
    assert [r.line for r in default.rows] == list(range(2, 74))


def test_default_selection_counts(default):
    # Counted from the CSV: lines 2 (LDAP) and 3 (RDP) are Detection/Anomaly,
    # 4-5 Detection/Static, 7 Hunting/Anomaly (VNC), the other 67 Hunting/Static.
    assert [r.line for r in default.select("Detection", "Anomaly")] == [2, 3]
    assert len(default.select("Detection", "Static")) == 2
    assert [r.line for r in default.select("Hunting", "Anomaly")] == [7]
    assert len(default.select("Hunting", "Static")) == 67
    assert default.select("detection", "anomaly") == []  # KQL == is case-sensitive


def test_default_rows_parsed(default):
    ldap, rdp = default.select("Detection", "Anomaly")
    assert ldap.ports == (389, 636)
    assert ldap.apps is ldap.protocols is ldap.directions is ldap.actions is None
    assert ldap.threshold is None and ldap.enabled
    assert ldap.tactic == "InitialAccess,Execution"
    assert ldap.tactics == ("InitialAccess", "Execution")
    assert rdp.tactics == ("LateralMovement",)
    assert rdp.description.startswith(" TCP/3389")  # raw, untrimmed
    telnet = default.rows[4]
    assert telnet.tactics == ("CommandAndControl", "LateralMovement", "InitialAccess")
    assert default.rows[5].ports == tuple(range(5800, 5811))  # line 7, VNC
    assert default.rows[7].threshold == 0  # line 9, first High-risk Ports row
    assert default.rows[7].protocols == ("UDP",)
    assert default.rows[7].actions == ("Allow",)


def test_default_expanded(default):
    table = expanded(default.select("Detection", "Anomaly"))
    assert table.schema == EXPANDED_SCHEMA
    assert table.column("DstPortNumber").to_pylist() == [389, 636, 3389]
    assert table.column("Name").to_pylist() == ["Suspicious LDAP Traffic"] * 2 + [
        "Suspicious Remote Desktop Network Traffic"]
    assert set(table.column("Protocol").to_pylist()) == {"*"}
    assert table.column("Threshold").null_count == 3
    assert table.column("DstPortNumber").null_count == 0


def test_default_warnings(default):
    text = "\n".join(default.warnings)
    assert "line 6, column Description: 'earch' looks like a typo for 'search'" in text
    for line in (6, 7, 8):  # "Initial Access" after "InitialAccess" on line 2
        assert f"line {line}, column Tactic: 'Initial Access'" in text
    assert "line 2, column Ports: port(s) 389, 636 also in Static" in text
    assert "line 3, column Ports: port(s) 3389 also in Static" in text
    assert len(default.warnings) == 7


def test_describe(default):
    rows = describe(default)
    assert len(rows) == 72
    assert rows[0] == {
        "line": 2, "name": "Suspicious LDAP Traffic", "severity": "High", "type": "Detection",
        "threshold_type": "Anomaly", "ports": [389, 636], "protocols": "*", "directions": "*",
        "actions": "*", "threshold": None, "in_anomaly_rule": True,
    }
    assert sum(r["in_anomaly_rule"] for r in rows) == 2


# ---------------------------------------------------------------- other files


def test_bom_quotes_extra_columns_and_multiline(tmp_path):
    path = write(tmp_path, "SearchKey," + HEADER, "k1," + GOOD,
                 'k2,22,*," TCP ,UDP",Inbound,"Allow,Drop ICMP",Hunting,Static,5,Disabled,,SSH,"a, b\nc"',
                 "k3,53,*,UDP,*,*,Detection,Anomaly,,Low,Discovery,DNS,x", encoding="utf-8-sig")
    config = load_config(path)
    assert config.path == str(path)
    assert [r.line for r in config.rows] == [2, 3, 5]
    ssh = config.rows[1]
    assert ssh.protocols == (" TCP ", "UDP") and ssh.actions == ("Allow", "Drop ICMP")  # as split() gives them
    assert ssh.description == "a, b\nc" and not ssh.enabled
    assert [r.line for r in config.select("Detection", "Anomaly")] == [2, 5]
    # " TCP " still has "TCP" (a whole-term match): nothing to warn about.
    assert not any("column Protocol" in w for w in config.warnings)


def test_expanded_cross_product_and_wildcard_ports(tmp_path):
    config = load_config(write(
        tmp_path, HEADER,
        '"80,443",*,"TCP,UDP",*,"Allow,Deny",Detection,Anomaly,,Low,Discovery,Web,x',
        "*,*,*,*,*,Detection,Anomaly,,Low,Discovery,Any,x",
        '"25, 25",*,*,*,*,Detection,Anomaly,,Low,Discovery,Mail,x'))
    table = expanded(config.rows)
    assert table.num_rows == 2 * 2 * 2 + 0 + 1
    assert table.column("line").to_pylist() == [2] * 8 + [4]
    assert config.rows[1].ports is None
    text = "\n".join(config.warnings)
    assert "line 3, column Ports: '*' matches no port" in text
    assert "line 4, column Ports: ' 25' is not written as '25' (the KQL compares the text): Sentinel never matches it" in text


@pytest.mark.parametrize("row, line_col, msg", [
    ("33x,*,*,*,*,Detection,Anomaly,,High,,N,D", "line 3, column Ports", "'33x' is not a port number"),
    ("65536,*,*,*,*,Detection,Anomaly,,High,,N,D", "line 3, column Ports", "'65536'"),
    ('"1,,2",*,*,*,*,Detection,Anomaly,,High,,N,D', "line 3, column Ports", "'' is not a port"),
    ("1,*,*,*,*,Alert,Anomaly,,High,,N,D", "line 3, column Type", "unknown Type 'Alert'"),
    ("1,*,*,*,*,detection,Anomaly,,High,,N,D", "line 3, column Type", "did you mean 'Detection'"),
    ("1,*,*,*,*,Detection,Dynamic,,High,,N,D", "line 3, column ThresholdType", "'Dynamic'"),
    ("1,*,*,*,*,Detection,Anomaly,,Critical,,N,D", "line 3, column Severity", "'Critical'"),
    ("1,*,*,*,*,Detection,Static,ten,High,,N,D", "line 3, column Threshold", "'ten' is not"),
    ("1,*,*,*,*,Detection,Static,,High,,N,D", "line 3, column Threshold", "without a Threshold never fires"),
    ("1,*,*,*,*,Detection,Anomaly,,High,, ,D", "line 3, column Name", "Name is empty"),
    ("1,*,*,*,*,Detection,Anomaly", "line 3, column Threshold", "row has 7 fields"),
])
def test_bad_row_is_a_warning_and_the_rest_loads(tmp_path, row, line_col, msg):
    # Issue 10 item 6: Sentinel's filter reads such a row (or skips it); the run goes on.
    path = write(tmp_path, HEADER, GOOD, row)
    config = load_config(path)
    [warning] = [w for w in config.warnings if w.startswith(f"{path} {line_col}: ")]
    assert msg in warning and "\n" not in warning
    assert config.rows[0].line == 2


def test_line_numbers_count_blank_and_multiline(tmp_path):
    path = write(tmp_path, HEADER, "", '1,*,*,*,*,Detection,Anomaly,,High,,N,"two\nlines"',
                 "x,*,*,*,*,Detection,Anomaly,,High,,N,D")
    assert any("line 5, column Ports: 'x'" in w for w in load_config(path).warnings)


def test_missing_column(tmp_path):
    path = write(tmp_path, HEADER.replace(",Protocol", ""), GOOD)
    with pytest.raises(ConfigError, match=r"config\.csv line 1, column Protocol: required column"):
        load_config(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.csv: cannot read file"):
        load_config(tmp_path / "nope.csv")


def test_not_utf8(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes((HEADER + "\n1,*,*,*,*,Detection,Anomaly,,High,,Caf\xe9,D\n").encode("latin-1"))
    with pytest.raises(ConfigError, match="cannot read file"):
        load_config(path)


def test_row_warnings(tmp_path):
    config = load_config(write(
        tmp_path, HEADER,
        "1,smb,*,*,*,Detection,Anomaly,10,High,Initial Access,N,D",
        "2,*,TCP,Inbound,Allowed,Hunting,Static,1,Low,Sideways,N,D",
        "2,*,TCP,Inbound,Allowed,Hunting,Static,5,Low,Discovery,M,D",
        '1,*,"TCP,*",*,*,Hunting,Static,1,Low,,N,D'))
    text = "\n".join(config.warnings)
    assert "line 2, column Threshold: 10 is ignored" in text
    assert "line 2, column App: is ignored by the anomaly rule" in text
    assert "line 3, column Action: 'Allowed' is not an ASIM DvcAction" in text
    assert "line 3, column Tactic: 'Sideways' is not a MITRE" in text
    assert "line 4: selects the same traffic as line 3" in text
    assert "line 5, column Protocol: '*' makes the other items redundant" in text
    assert "line 2, column Ports: port(s) 1 also in Static row(s) on line(s) 5" in text
    assert config.rows[3].protocols is None


# ---------------------------------------------------------------- matches


@pytest.mark.parametrize("config_value, event_value, expected", [
    ("*", "TCP", True),
    ("*", None, True),
    ("*", "", True),
    ("TCP", "tcp", True),
    ("tcp", "TCP", True),
    ("TCPX", "TCP", False),
    ("TCP", "TC", False),
    ("TCP,UDP", "udp", True),
    ("Drop ICMP", "Drop", True),
    ("Drop ICMP", "drop icmp", True),
    ("Drop ICMP", "ICMP Drop", False),
    ("Reset Source", "Reset Destination", False),
    ("TCP", None, False),
    ("TCP", "", False),
    ("TCP", "--", False),
])
def test_matches(config_value, event_value, expected):
    assert matches(config_value, event_value) is expected


def test_match_mask():
    cfg = ["TCP", "*", "Drop ICMP", "TCPX", "TCP", "TCP"]
    ev = ["tcp", None, "drop icmp", "TCP", None, "tcp"]
    mask = match_mask(cfg, ev)
    assert mask.dtype == np.bool_
    assert mask.tolist() == [True, True, True, False, False, True]
    assert mask.tolist() == [matches(c, e) for c, e in zip(cfg, ev)]
    assert match_mask(pa.chunked_array([["TCP"], ["UDP"]]), np.array(["tcp", "x"], dtype=object)).tolist() == [True, False]
    assert match_mask([], []).tolist() == []
    with pytest.raises(ValueError):
        match_mask(["TCP"], [])


ALNUM = st.text(string.ascii_letters + string.digits, min_size=1, max_size=12)
# ASCII only: str.upper() of some non-ASCII letters yields ASCII ones ("ß" -> "SS").
ASCII = st.text(string.printable, max_size=16)


@settings(max_examples=200, deadline=None)
@given(ALNUM)
def test_matches_itself(x):
    assert matches(x, x)


@settings(max_examples=200, deadline=None)
@given(ASCII, ASCII)
def test_matches_case_insensitive(a, b):
    assert matches(a, b) == matches(a.upper(), b.lower())


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["*", "TCP", "Drop ICMP", "tcp,udp"]),
                          st.sampled_from([None, "", "TCP", "udp", "drop", "icmp drop"]))))
def test_match_mask_agrees_with_matches(pairs):
    cfg, ev = [p[0] for p in pairs], [p[1] for p in pairs]
    assert match_mask(cfg, ev).tolist() == [matches(c, e) for c, e in pairs]
