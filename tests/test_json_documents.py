"""Every JSON source accepts a JSON document (one pretty-printed object, or an array of records)
as well as JSON lines: sources that read JSON lines get the document's records as lines
(`sources._documents`), detection sniffs them, and the rows are the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from portlens.sources import detect
from sourcekit import parse, write

FIXTURES = Path(__file__).resolve().parent / "fixtures"
JSON_LINES = ["mde/device_network_events.json", "vmconnection/vmconnection.json", "vectra/isession.json",
              "zeek/corelight_conn.json", "illumio/flows.jsonl", "defender_iot/raw_events.jsonl"]


def _records(rel: str) -> list:
    out = []
    for line in (FIXTURES / rel).read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def _summary(parsed) -> tuple:
    rows = sorted((r["SrcIpAddr"] or "", r["DstPortNumber"] or -1, r["DvcAction"] or "")
                  for r in parsed.rows.to_pylist())
    return rows, parsed.skipped


@pytest.mark.parametrize("rel", JSON_LINES)
def test_array_and_pretty_object_read_like_json_lines(tmp_path, rel):
    records = _records(rel)
    name = detect(str(FIXTURES / rel)).name
    lines = write(tmp_path, "".join(json.dumps(r) + "\n" for r in records), "lines.json")
    array = write(tmp_path, json.dumps(records, indent=2), "array.json")
    assert detect(str(array)).name == name
    assert _summary(parse(array)) == _summary(parse(lines))
    first = write(tmp_path, json.dumps(records[0], indent=4), "one.json")
    single = write(tmp_path, json.dumps(records[0]) + "\n", "single.json")
    assert detect(str(first)).name == name
    assert _summary(parse(first)) == _summary(parse(single))


def test_document_records_keep_their_ordinal_and_the_users_file(tmp_path):
    records = _records("zeek/corelight_conn.json")[:2] + [{"ts": "not a time", "id.orig_h": "x"}]
    path = write(tmp_path, json.dumps(records, indent=2), "conn.json")
    parsed = parse(path)
    assert parsed.records == 3
    assert [(q["file"], q["line"], q["reason"]) for q in parsed.quarantine.to_pylist()] == \
        [(str(path), 3, "ts: not a timestamp: not a time")]
