"""Illumio flow summaries: the fixture (JSON lines written from the parser; the real export sample is tested in test_source_sentinel), pinned values for the rule's keys (DstPortNumber,
NetworkProtocol, NetworkDirection, DvcAction), detection and hostile input."""

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlens.sources import detect, get
from sourcekit import checked_reasons, hostile_lines, no_internal_errors, one, parse, utc, write

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "illumio"
SOURCE = get("illumio")
KEY = ("DstPortNumber", "NetworkProtocol", "NetworkDirection", "DvcAction")


def key(r):
    return tuple(r[k] for k in KEY)


def test_fixture():
    rows, quarantine, skipped, records = parse(FIXTURES / "flows.jsonl", SOURCE)
    assert (records, rows.num_rows, skipped, quarantine.num_rows) == (5, 3, 0, 2)
    assert checked_reasons(quarantine) == {4: "DstPortNumber: port outside 0-65535",
                                           5: "flow record without src_ip or dst_ip"}
    r = one(rows, SrcIpAddr="10.0.1.5")
    assert key(r) == (3389, "TCP", "Inbound", "Deny")
    assert (r["TimeGenerated"], r["EventCount"], r["EventResult"], r["EventSeverity"]) == \
        (utc(2024, 5, 1, 10), 4, "Success", "Low")
    assert (r["SrcBytes"], r["DstBytes"], r["NetworkDuration"], r["Dvc"]) == (100, 2000, 600_000, "pce.example.com")
    assert key(one(rows, SrcIpAddr="fd00::1")) == (0, "IPV6-ICMP", "Outbound", "Allow")  # pd 1
    assert key(one(rows, SrcIpAddr="10.0.1.6")) == (67, "UDP", "Outbound", "Allow")


def test_detect():
    for path in FIXTURES.iterdir():
        if path.suffix != ".md":
            assert detect(str(path)).name == "illumio", path


_GOOD = [line for path in sorted(FIXTURES.iterdir()) if path.suffix != ".md"
         for line in path.read_text().splitlines()]
_pieces = hostile_lines(_GOOD, ["{}", "[", '{"src_ip": 5, "dst_port": "x", "proto": "tcp"}', '{"pd": 3, "dir": "Z", "src_ip": "::1"}'], cut=2)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_pieces, max_size=20), endings=st.sampled_from(["\n", "\r\n"]))
def test_hostile_input_is_accounted_for(tmp_path, lines, endings):
    parsed = parse(write(tmp_path, endings.join(lines) or " ", "hostile.log"), SOURCE)
    no_internal_errors(parsed.quarantine)
    assert parsed.rows.num_rows + parsed.quarantine.num_rows + parsed.skipped == parsed.records
