"""The rule's filters and joins, on hand-made daily series (no store involved)."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pytest

import portlens
from portlens import asim, formats, monitor
from portlens.rules import port_anomaly as rule

AS_OF = datetime(2024, 5, 15, 6, 0, tzinfo=timezone.utc)
FLAT_SPIKE = [10, 11, 9, 10, 12, 10, 9, 11, 10, 10, 12, 9, 10, 200]   # score 5.9, baseline 59
SPIKE_BEFORE_LAST = [10, 11, 9, 10, 12, 10, 9, 11, 10, 10, 12, 9, 200, 10]
NEGATIVE_BASELINE = list(np.linspace(50, 0, 13)) + [0]                  # score 5.9, baseline -3.1
SMALL = [0] * 12 + [1, 5]                                              # score 5.08, baseline 1.51


def series(*rows) -> rule.Series:
    keys = {k: [] for k in rule.KEYS}
    totals = []
    for (port, proto, direction, action), values in rows:
        for k, v in zip(rule.KEYS, (port, proto, direction, action)):
            keys[k].append(v)
        totals.append(values)
    table = pa.table({k: pa.array(v, asim.COLUMNS[k]) for k, v in keys.items()})
    return rule.Series(rule.Window(AS_OF), table, np.array(totals, float))


def alerts(config, *rows):
    return portlens.detect(series(*rows), config=monitor.load_config(config)).alerts


def test_default_config_rdp_spike_is_a_typed_alert():
    [alert] = alerts(None, ((3389, "TCP", "Inbound", "Deny"), FLAT_SPIKE))
    assert isinstance(alert, portlens.Alert) and alert.kind == "anomaly"
    assert alert.port == 3389 and alert.name == "Suspicious Remote Desktop Network Traffic"
    assert alert.tactics == ["LateralMovement"] and alert.tactic == "Lateral Movement"
    assert (alert.protocols, alert.directions, alert.actions) == (["TCP"], ["Inbound"], ["Deny"])
    assert alert.window.end == AS_OF and alert.window.days == 14
    [s] = alert.series
    assert s.totals == FLAT_SPIKE and s.total == alert.total == 200
    assert int(s.score) == 5 and int(alert.baseline) == 59
    assert s.talkers is None and alert.raw_retained is None  # no sessions behind a bare series


def test_default_config_rdp_spike_alerts_with_kql_columns():
    [typed] = alerts(None, ((3389, "TCP", "Inbound", "Deny"), FLAT_SPIKE))
    alert = formats.to_record(typed)
    assert alert["Name"] == "Suspicious Remote Desktop Network Traffic"
    assert alert["title"] == "Detected Suspicious Remote Desktop Network Traffic"
    assert alert["Severity"] == "High" and alert["Tactic"] == "Lateral Movement"
    assert alert["DstPortNumber"] == "3389"
    assert alert["NetworkProtocols"] == ["TCP"]
    assert alert["NetworkDirections"] == ["Inbound"]
    assert alert["DvcActions"] == ["Deny"]
    assert alert["techniques"] == ["T1095", "T1059", "T1203", "T1190"]
    assert alert["tactics"] == ["LateralMovement"]
    assert alert["rule_id"] == rule.RULE_ID
    assert alert["window"] == {"start": "2024-05-01T06:00:00Z", "end": "2024-05-15T06:00:00Z",
                               "bin": "1d", "days": 14, "tiers": {},
                               "missing_days": "zero"}
    [s] = alert["series"]
    assert s["totals"] == FLAT_SPIKE and s["total"] == 200
    assert int(s["score"]) == 5 and int(s["baseline"]) == 59
    assert len(s["baselines"]) == len(s["scores"]) == 14
    assert s["outage_days"] == [] and s["quiet_days"] == []


def test_only_the_last_bin_counts():
    assert alerts(None, ((3389, "TCP", "Inbound", "Deny"), SPIKE_BEFORE_LAST)) == []


def test_baseline_must_be_positive():
    assert alerts(None, ((3389, "TCP", "Inbound", "Deny"), NEGATIVE_BASELINE)) == []
    [a] = alerts(None, ((3389, "TCP", "Inbound", "Deny"), SMALL))  # toint(1.51) = 1 > 0
    assert a.series[0].total == 5


def test_ports_not_configured_are_ignored():
    assert alerts(None, ((8080, "TCP", "Inbound", "Deny"), FLAT_SPIKE)) == []


def test_one_alert_per_name_and_port_with_sets(write_config):
    cfg = write_config('"389,636",*,*,*,*,Detection,Anomaly,,High,"InitialAccess,Execution",LDAP,ldap misuse')
    found = alerts(cfg,
                   ((389, "TCP", "Local", "Allow"), FLAT_SPIKE),
                   ((389, "UDP", "Inbound", "Deny"), FLAT_SPIKE),
                   ((389, None, None, None), FLAT_SPIKE),   # empty values never enter the sets
                   ((636, "TCP", "Local", "Allow"), FLAT_SPIKE))
    assert [(a.port, a.name) for a in found] in (
        [(389, "LDAP"), (636, "LDAP")], [(636, "LDAP"), (389, "LDAP")])
    ldap = next(a for a in found if a.port == 389)
    assert sorted(ldap.protocols) == ["TCP", "UDP"]
    assert sorted(ldap.directions) == ["Inbound", "Local"]
    assert sorted(ldap.actions) == ["Allow", "Deny"]
    assert len(ldap.series) == 3


def test_protocol_direction_action_match_case_insensitively(write_config):
    cfg = write_config("3389,*,tcp,INBOUND,deny,Detection,Anomaly,,Medium,Lateral Movement,RDP,rdp")
    assert len(alerts(cfg, ((3389, "TCP", "Inbound", "Deny"), FLAT_SPIKE))) == 1
    assert alerts(cfg, ((3389, "UDP", "Inbound", "Deny"), FLAT_SPIKE)) == []
    assert alerts(cfg, ((3389, "TCP", "Outbound", "Deny"), FLAT_SPIKE)) == []
    assert alerts(cfg, ((3389, "TCP", "Inbound", "Allow"), FLAT_SPIKE)) == []


def test_disabled_hunting_and_static_rows_do_not_alert(write_config):
    cfg = write_config(
        "3389,*,*,*,*,Detection,Anomaly,,Disabled,Lateral Movement,RDP off,x",
        "3389,*,*,*,*,Hunting,Anomaly,,High,Lateral Movement,RDP hunt,x",
        "3389,*,*,*,*,Detection,Static,100,High,Lateral Movement,RDP static,x")
    assert alerts(cfg, ((3389, "TCP", "Inbound", "Deny"), FLAT_SPIKE)) == []


def test_series_that_match_several_rows_alert_once_per_row(write_config):
    cfg = write_config("3389,*,*,*,*,Detection,Anomaly,,High,Lateral Movement,RDP,a",
                       "3389,*,TCP,*,*,Detection,Anomaly,,Low,Lateral Movement,RDP tcp,b")
    found = alerts(cfg, ((3389, "TCP", "Inbound", "Deny"), FLAT_SPIKE))
    assert sorted(a.name for a in found) == ["RDP", "RDP tcp"]


def test_toint_truncates_and_drops_non_finite():
    assert rule._toint(np.array([4.99, 5.0, -0.5, np.inf])).tolist()[:3] == [4, 5, 0]
    assert rule._toint(np.array([np.inf]))[0] < rule.MIN_SCORE


@pytest.mark.parametrize("n", [1000])
def test_many_series_at_once_match_one_by_one(n):
    rng = np.random.default_rng(3)
    totals = rng.poisson(50, (n, 14)).astype(float)
    totals[::97, -1] += 400
    keys = pa.table({"DstPortNumber": pa.array(np.full(n, 3389), pa.int32()),
                     "NetworkProtocol": pa.array([f"P{i}" for i in range(n)]),
                     "NetworkDirection": pa.array(["Inbound"] * n),
                     "DvcAction": pa.array(["Deny"] * n)})
    whole = rule.score_series(rule.Series(rule.Window(AS_OF), keys, totals))
    for i in range(0, n, 97):
        one = rule.score_series(rule.Series(rule.Window(AS_OF), keys.slice(i, 1), totals[i:i + 1]))
        assert np.allclose(whole["scores"][i], one["scores"][0])


def test_alert_table_keeps_each_tactic_whole(write_config):
    import io

    from rich.console import Console

    from portlens.alerts import render_table
    cfg = write_config('3389,*,*,*,*,Detection,Anomaly,,High,'
                       '"InitialAccess,CommandAndControl,LateralMovement,CredentialAccess",RDP,x')
    found = alerts(cfg, ((3389, "TCP", "Inbound", "Deny"), FLAT_SPIKE))
    text = io.StringIO()
    render_table(found, Console(file=text, width=100), as_of="2024-05-15T06:00:00Z", series_count=1)
    for tactic in ("InitialAccess", "CommandAndControl", "LateralMovement", "CredentialAccess"):
        assert tactic in text.getvalue()
