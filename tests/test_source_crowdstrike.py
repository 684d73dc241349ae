"""CrowdStrike Falcon host firewall CEF: the fixture (written from the Falcon SIEM connector's CEF and the parser, see FIXTURES.md), pinned values for the rule's keys (DstPortNumber,
NetworkProtocol, NetworkDirection, DvcAction), detection and hostile input."""

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlens.sources import detect, get
from sourcekit import checked_reasons, hostile_lines, no_internal_errors, one, parse, utc, write

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "crowdstrike"
SOURCE = get("crowdstrike")
KEY = ("DstPortNumber", "NetworkProtocol", "NetworkDirection", "DvcAction")


def key(r):
    return tuple(r[k] for k in KEY)


def test_fixture():
    rows, quarantine, skipped, records = parse(FIXTURES / "cef.log", SOURCE)
    assert (records, rows.num_rows, skipped, quarantine.num_rows) == (5, 3, 1, 1)
    assert checked_reasons(quarantine) == {5: "FirewallMatchEvent without connectionDirection 1 or 2"}
    rows = rows.to_pylist()
    r = rows[0]  # inbound block: remote -> local (the parser would set both addresses to the remote one)
    assert key(r) == (445, "TCP", "Inbound", "Deny")
    assert (r["SrcIpAddr"], r["SrcPortNumber"], r["DstIpAddr"], r["EventCount"]) == ("198.51.100.3", 50001, "10.6.0.12", 3)
    assert (r["TimeGenerated"], r["NetworkRuleName"], r["DvcHostname"]) == (utc(2024, 5, 1, 16), "Block SMB in", "WS-12")
    assert key(rows[1]) == (53, "UDP", "Outbound", "Allow") and rows[1]["DvcIpAddr"] == "10.6.0.12"
    assert key(rows[2]) == (4444, "TCP", None, "Deny")  # detection summary, outcome 1024 (prevention)


def test_detect():
    for path in FIXTURES.iterdir():
        if path.suffix != ".md":
            assert detect(str(path)).name == "crowdstrike", path


_GOOD = [line for path in sorted(FIXTURES.iterdir()) if path.suffix != ".md"
         for line in path.read_text().splitlines()]
_pieces = hostile_lines(_GOOD, ["CEF:0|CrowdStrike|FalconHost|1|FirewallMatchEvent|x|1|connectionDirection=1 localPort=99999 remoteAddress=1.1.1.1", "CEF:0|CrowdStrike|FalconHost|1|FirewallMatchEvent|x|1|connectionDirection=7"], cut=2)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_pieces, max_size=20), endings=st.sampled_from(["\n", "\r\n"]))
def test_hostile_input_is_accounted_for(tmp_path, lines, endings):
    parsed = parse(write(tmp_path, endings.join(lines) or " ", "hostile.log"), SOURCE)
    no_internal_errors(parsed.quarantine)
    assert parsed.rows.num_rows + parsed.quarantine.num_rows + parsed.skipped == parsed.records
