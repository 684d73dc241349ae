import json
from datetime import datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlens import sources
from sourcekit import parse, parse_text, tuple_of, UTC

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "vectra"
SOURCE = sources.get("vectra")


def run(path, source=SOURCE, batch_lines=100_000):
    return parse(path, source, batch_lines)


def test_isession_fixture():
    rows, quarantine, skipped, records = run(FIXTURES / "isession.json")
    assert (rows.num_rows, quarantine.num_rows, skipped, records) == (5, 3, 1, 9)  # httpsessioninfo skipped
    assert dict(zip(quarantine["line"].to_pylist(), quarantine["reason"].to_pylist())) == {
        5: "not a JSON object", 6: "ts/session_start_time: missing or not a timestamp",
        7: "DstPortNumber: port outside 0-65535"}
    r = {x["EventOriginalUid"]: x for x in rows.to_pylist()}
    out = r["CVx1"]
    assert out["TimeGenerated"] == out["EventEndTime"] == datetime(2024, 5, 1, 10, 0, 5, 250000, tzinfo=UTC)
    assert out["EventStartTime"] == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert tuple_of(out) == ("10.50.1.20", 52344, "104.16.1.10", 443)
    assert (out["NetworkProtocol"], out["NetworkProtocolVersion"], out["NetworkApplicationProtocol"]) == \
        ("TCP", "IPv4", "SSL")
    assert (out["NetworkDirection"], out["EventResult"], out["EventResultDetails"], out["EventType"]) == \
        ("Outbound", "Success", "Terminated", "NetworkSession")
    assert (out["SrcBytes"], out["DstBytes"], out["NetworkBytes"], out["SrcPackets"], out["NetworkPackets"]) == \
        (1840, 24000, 25840, 12, 32)
    assert out["NetworkDuration"] == 5250  # ts - session_start_time
    assert (out["SrcHostname"], out["DstHostname"], out["Dvc"], out["DvcHostname"], out["DvcId"], out["DvcIdType"]) == \
        ("laptop-ann", None, "vsensor-01", "vsensor-01", "s-777", "VectraId")  # "IP-..." is not a hostname
    assert out["NetworkSessionId"] == "1:Zz0abc="
    extra = json.loads(out["AdditionalFields"])
    assert (extra["SrcDvcId"], extra["DstDescription"], extra["SrcVlanId"]) == ("h-100", "IP-104.16.1.10", 10)
    assert (out["EventVendor"], out["EventProduct"], out["EventCount"]) == ("Vectra AI", "Vectra Stream", 1)
    inbound = r["CVx2"]
    assert tuple_of(inbound) == ("198.51.100.44", 40000, "10.50.1.5", 3389)
    assert (inbound["NetworkDirection"], inbound["EventResult"], inbound["EventResultDetails"]) == \
        ("Inbound", "Failure", "Reset")
    assert inbound["NetworkDuration"] == 12  # no session_start_time: duration taken as ms
    icmp = r["CVx3"]
    assert (icmp["NetworkProtocol"], icmp["NetworkProtocolVersion"], icmp["SrcPortNumber"], icmp["DstPortNumber"],
            icmp["NetworkIcmpType"]) == ("IPV6-ICMP", "IPv6", None, None, "Echo Request")
    la = r["CLA1"]  # VectraStream_CL export with type suffixes
    assert tuple_of(la) == ("10.50.1.21", 50000, "10.50.2.2", 445)
    assert (la["NetworkDirection"], la["NetworkDuration"], la["NetworkProtocolVersion"], la["Dvc"]) == \
        ("Local", 500, "IPv4", "s-778")
    ama = r["CAMA1"]  # vectra_isession_CL export: no metadata_type, ISO session_start_time
    assert (ama["DstPortNumber"], ama["NetworkProtocol"], ama["NetworkDuration"], ama["NetworkDirection"]) == \
        (53, "UDP", 30, None)


def test_detect():
    assert sources.detect(str(FIXTURES / "isession.json")).name == "vectra"


def test_zeek_and_vectra_do_not_overlap(tmp_path):
    path = tmp_path / "v.json"
    path.write_text(json.dumps({"metadata_type": "metadata_isession", "id.orig_h": "10.0.0.1", "uid": "C1",
                                "conn_state": "SF", "ts": 1714557605000}) + "\n")
    assert sources.detect(str(path)).name == "vectra"
    assert not sources.get("zeek").sniff(path.read_bytes(), str(path))


LINES = (FIXTURES / "isession.json").read_text().splitlines() if (FIXTURES / "isession.json").exists() else ["{}"]
value = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), st.text(max_size=10),
                  st.sampled_from(["metadata_isession", "tcp", "icmp", "10.0.0.1", "::1", "2024-05-01T00:00:00Z"]))
record = st.dictionaries(st.sampled_from(list(json.loads(LINES[0]).keys()) + ["id_orig_h_s", "ts_d", "id"]),
                         value, max_size=12).map(json.dumps)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(record, st.sampled_from(LINES), st.text(max_size=30),
                          st.integers(0, 400).map(lambda i: LINES[0][:i])), max_size=12), st.sampled_from([3, 1000]))
def test_property_hostile(tmp_path, lines, batch_lines):
    parse_text(tmp_path, LINES[0] + "\n" + "\n".join(lines), SOURCE, "v.json", batch_lines)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400))
def test_property_bytes(tmp_path, data):
    parse_text(tmp_path, LINES[0].encode() + b"\n" + data, SOURCE, "v.bin", 4)


def test_json_lines_framing_one_parse_keeps_what_is_an_object(tmp_path):
    # json_object_values: a line is a record when it starts with `{` (after spaces) and parses
    from portlens.sources._records import json_columns
    lines = ['{"a": 1}', '   {"a": "x"}', '\t{"a": 2}', '{"a": 3} trailing', '[1, 2]', '"s"', '{"a": ', '{"b": {"c": [1]}}']
    path = tmp_path / "lines.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (t,) = list(json_columns(str(path), {"a": ['$."a"'], "c": ["$.b.c"]}))
    assert t["_error"].to_pylist() == [None, None, "not a JSON object", "not a JSON object",
                                       "not a JSON object", "not a JSON object", "not a JSON object", None]
    assert t["a"].to_pylist() == ["1", "x", None, None, None, None, None, None]
    assert t["c"].to_pylist()[-1] == "[1]"
