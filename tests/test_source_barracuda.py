"""Barracuda WAF network-firewall logs: the fixtures (CEF and barracuda_CL JSON, written from the parser, see FIXTURES.md), pinned values for the rule's keys (DstPortNumber,
NetworkProtocol, NetworkDirection, DvcAction), detection and hostile input."""

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlens.sources import detect, get
from sourcekit import checked_reasons, hostile_lines, no_internal_errors, one, parse, utc, write

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "barracuda"
SOURCE = get("barracuda")
KEY = ("DstPortNumber", "NetworkProtocol", "NetworkDirection", "DvcAction")


def key(r):
    return tuple(r[k] for k in KEY)


def test_cef_fixture():
    rows, quarantine, skipped, records = parse(FIXTURES / "cef.log", SOURCE)
    assert (records, rows.num_rows, skipped, quarantine.num_rows) == (3, 2, 1, 0)
    rows = rows.to_pylist()
    assert key(rows[0]) == (8000, "TCP", None, "Allow")
    assert (rows[0]["TimeGenerated"], rows[0]["Dvc"], rows[0]["EventSeverity"]) == (utc(2024, 5, 1, 19), "waf-1", "Informational")
    assert key(rows[1]) == (161, "UDP", None, "Deny") and rows[1]["EventSeverity"] == "Low"


def test_table_fixture():
    rows, quarantine, skipped, records = parse(FIXTURES / "barracuda_cl.json", SOURCE)
    assert (records, rows.num_rows, skipped, quarantine.num_rows) == (2, 1, 1, 0)
    r = rows.to_pylist()[0]
    assert key(r) == (22, "TCP", None, "Deny")  # TCP/ip
    assert (r["EventStartTime"], r["DvcIpAddr"], r["Dvc"]) == (utc(2024, 5, 1, 19, 1, 39, 900000), "10.9.0.2", "waf-2")


def test_detect():
    for path in FIXTURES.iterdir():
        if path.suffix != ".md":
            assert detect(str(path)).name == "barracuda", path


_GOOD = [line for path in sorted(FIXTURES.iterdir()) if path.suffix != ".md"
         for line in path.read_text().splitlines()]
_pieces = hostile_lines(_GOOD, ["CEF:0|Barracuda|WAF|1|1|x|9|cat=NF src=1.1.1.1 dpt=999999", '{"LogType": "NF"}', "CEF:0|Barracuda|WAF|"], cut=2)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_pieces, max_size=20), endings=st.sampled_from(["\n", "\r\n"]))
def test_hostile_input_is_accounted_for(tmp_path, lines, endings):
    parsed = parse(write(tmp_path, endings.join(lines) or " ", "hostile.log"), SOURCE)
    no_internal_errors(parsed.quarantine)
    assert parsed.rows.num_rows + parsed.quarantine.num_rows + parsed.skipped == parsed.records
