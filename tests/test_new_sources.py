"""The vendor sources added for issue 11, all at once: each fixture is detected as its own source,
and hostile input (fixture lines cut, arbitrary text and bytes, hand-picked nasties) is always
accounted for (rows + quarantine + skipped = records) without an internal error."""

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlens.sources import detect, get
from sourcekit import hostile_lines, no_internal_errors, parse, write

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# source -> (fixture folder, hand-picked hostile lines)
SOURCES = {
    "illumio": ("illumio", ["{}", "[", '{"src_ip": 5, "dst_port": "x", "proto": "tcp"}', '{"pd": 3, "dir": "Z", "src_ip": "::1"}']),
    "carbonblack": ("carbonblack", ["{}", '{"type": "endpoint.event.netconn", "remote_port": 1e99}', '{"type": "endpoint.event.netconn", "netconn_inbound": "maybe", "local_ip": "x"}']),
    "sentinelone": ("sentinelone", ["{}", '{"data": 5}', '{"alertInfo": {"eventType": "TCPV4", "dstPort": "70000", "srcIp": "1.1.1.1"}}']),
    "defender-iot": ("defender_iot", ["{}", '{"RawEventName": "NetworkActivity", "EventDetails": {"LocalPort": "x"}}', '{"RawEventName": "NetworkActivity", "EventDetails": "{\\"LocalAddress\\": 5"}']),
    "watchguard": ("watchguard", ['msg_id="3000-0148" Allow a b 60 tcp 20 64 1.1.1.1 2.2.2.2 99999 1', 'msg_id="3000-0148" Deny', 'msg_id="']),
    "cisco-ftd": ("cisco_ftd", ["%FTD-6-430002: SrcIP: 1.1.1.1, DstPort: 999999, Protocol: tcp", "%FTD-6-430003:", "%FTD-", "%FTD-6-302013: Built"]),
    "sonicwall": ("sonicwall", ["CEF:0|SonicWall|X|1|98|x|4|gcat=6 src=1.1.1.1 dst=2.2.2.2 dpt=70000", "CEF:0|SonicWall|", "CEF:0|SonicWall|X|1|98|x|99|gcat=6 src=a dst=b proto=/"]),
    "crowdstrike": ("crowdstrike", ["CEF:0|CrowdStrike|FalconHost|1|FirewallMatchEvent|x|1|connectionDirection=1 localPort=99999 remoteAddress=1.1.1.1", "CEF:0|CrowdStrike|FalconHost|1|FirewallMatchEvent|x|1|connectionDirection=7"]),
    "cisco-firepower": ("cisco_firepower", ["CEF:0|Cisco|Firepower|6|RNA:1003:1|x|3|proto=1 spt=999 dpt=x src=1.1.1.1", "CEF:0|Cisco|Firepower|6|INTRUSION:400|x|3|start=nope"]),
    "forcepoint": ("forcepoint", ["CEF:0|FORCEPOINT|Firewall|6|70018|x|0|act=Allow src=1.1.1.1 dpt=-1", "CEF:0|FORCEPOINT|Firewall|6|x|x|0|msg=TCP state violation"]),
    "barracuda": ("barracuda", ["CEF:0|Barracuda|WAF|1|1|x|9|cat=NF src=1.1.1.1 dpt=999999", '{"LogType": "NF"}', "CEF:0|Barracuda|WAF|"]),
}


def _fixtures(folder: str) -> list[Path]:
    return sorted(p for p in (FIXTURES / folder).iterdir() if p.suffix != ".md")


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_fixtures_are_detected_as_their_source(name):
    for path in _fixtures(SOURCES[name][0]):
        assert detect(str(path)).name == name, path


@pytest.mark.parametrize("name", sorted(SOURCES))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_hostile_input_is_accounted_for(tmp_path, name, data):
    folder, extra = SOURCES[name]
    good = [line for path in _fixtures(folder) for line in path.read_text().splitlines()]
    lines = data.draw(st.lists(hostile_lines(good, extra, cut=2), max_size=20))
    ending = data.draw(st.sampled_from(["\n", "\r\n"]))
    parsed = parse(write(tmp_path, ending.join(lines) or " ", "hostile.log"), get(name))
    no_internal_errors(parsed.quarantine)
    assert parsed.rows.num_rows + parsed.quarantine.num_rows + parsed.skipped == parsed.records
