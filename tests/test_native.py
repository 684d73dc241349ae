"""Already-normalized ASIM files: JSON lines, CSV, Parquet; conform's mapping and rejects."""

from __future__ import annotations

import pyarrow as pa
import pytest
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlens import asim, sources

HEADER = "TimeGenerated,DstPortNumber,NetworkProtocol,NetworkDirection,DvcAction,SrcIpAddr,Vendor_Extra\n"


def parse(path):
    batches = list(sources.get("asim").parse(str(path)))
    rows = pa.concat_tables([b.table for b in batches]) if batches else asim.empty_table()
    quarantine = pa.concat_tables([b.quarantine for b in batches]) if batches else asim.QUARANTINE_SCHEMA.empty_table()
    return rows, quarantine, batches


def test_csv_export_with_extra_columns_and_locale_times(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(HEADER
                    + "2024-05-01T10:00:00Z,3389,tcp,inbound,allow,10.0.0.1,x\n"
                    + "8/25/2025 8:11:21.937 PM,389,6,Local,Deny,10.0.0.2,y\n"
                    + "\n"
                    + "2024-05-01T10:00:00Z,3389,TCP\n"
                    + "2024-05-01T10:00:00Z,65536,TCP,Inbound,Allow,10.0.0.3,z\n")
    assert sources.detect(str(path)).name == "asim"
    rows, q, _ = parse(path)
    got = rows.select(["TimeGenerated", "DstPortNumber", "NetworkProtocol", "NetworkDirection",
                       "DvcAction", "EventResult", "EventSeverity", "EventCount"]).to_pylist()
    assert [(r["DstPortNumber"], r["NetworkProtocol"], r["NetworkDirection"], r["DvcAction"],
             r["EventResult"], r["EventSeverity"], r["EventCount"]) for r in got] == [
        (3389, "tcp", "inbound", "allow", "Success", "Informational", 1),  # verbatim, as KQL counts them
        (389, "6", "Local", "Deny", "Failure", "Low", 1)]
    assert got[1]["TimeGenerated"].isoformat() == "2025-08-25T20:11:21.937000+00:00"
    assert sorted(q["line"].to_pylist()) == [5, 6]


def test_json_lines_rejects_with_reasons(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(
        '{"TimeGenerated": "2024-05-01T10:00:00Z", "DstPortNumber": 22, "NetworkProtocol": 17, "EventCount": 4}\n'
        '{"TimeGenerated": "not a time", "DstPortNumber": 22}\n'
        '{"TimeGenerated": "2024-05-01T10:00:00Z", "DstPortNumber": -1}\n'
        '{"TimeGenerated": "2024-05-01T10:00:00Z", "DstPortNumber": 22, "NetworkDirection": "sideways"}\n'
        '{"TimeGenerated": "2024-05-01T10:00:00Z", "DstPortNumber": 22, "NetworkProtocol": "warp"}\n'
        '{"DstPortNumber": 22}\n'
        '[1, 2]\n')
    rows, q, batches = parse(path)
    # Values outside ASIM's vocabulary are stored verbatim (the KQL counts them); only rows
    # without a usable time or with an impossible port are quarantined.
    assert rows["NetworkProtocol"].to_pylist() == ["17", None, "warp"]
    assert rows["NetworkDirection"].to_pylist() == [None, "sideways", None]
    assert rows["EventCount"][0].as_py() == 4
    reasons = dict(zip(q["line"].to_pylist(), q["reason"].to_pylist()))
    assert sorted(reasons) == [2, 3, 6, 7]
    assert reasons[2] == "TimeGenerated: not a timestamp"
    assert reasons[3] == "DstPortNumber: port outside 0-65535"
    assert reasons[6] == "TimeGenerated: missing"
    assert reasons[7] == "not a JSON object"
    assert sum(b.records for b in batches) == 7


def test_parquet_round_trip(tmp_path):
    table = pa.table({"TimeGenerated": pa.array(["2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"]),
                      "DstPortNumber": pa.array([443, 70000]), "Other": pa.array([1, 2])})
    path = tmp_path / "rows.parquet"
    pq.write_table(table, path)
    assert sources.detect(str(path)).name == "asim"
    rows, q, _ = parse(path)
    assert rows["DstPortNumber"].to_pylist() == [443]
    assert q["line"].to_pylist() == [2]
    assert rows.schema == asim.SCHEMA


def test_local_parquet_is_read_in_runs_of_whole_row_groups(tmp_path, monkeypatch):
    from portlens.sources import native
    n = 1000
    table = pa.table({"TimeGenerated": pa.array([f"2024-05-01T10:{i % 60:02d}:00Z" for i in range(n)]),
                      "DstPortNumber": pa.array([i * 70 for i in range(n)])})
    path = tmp_path / "rows.parquet"
    pq.write_table(table, path, row_group_size=128)
    monkeypatch.setattr(native, "PARQUET_SCAN_BATCHES", 3)  # runs of >= 300 rows: 3 row groups
    batches = list(sources.get("asim").parse(str(path), batch_lines=100))
    assert [b.records for b in batches] == [384, 384, 232]
    assert all(b.pending.reads_files for b in batches)  # (DuckDB reads the file: no Arrow input)
    rows = pa.concat_tables([b.table for b in batches])
    lines = pa.concat_tables([b.quarantine for b in batches])["line"].to_pylist()
    assert rows.num_rows + len(lines) == n
    assert lines == [i + 1 for i in range(n) if i * 70 > 65535] and lines  # each keeps its row number
    assert rows["DstPortNumber"].to_pylist() == [i * 70 for i in range(n) if i * 70 <= 65535]


def test_parquet_read_through_arrow_takes_several_text_batches_or_a_byte_bound(monkeypatch):
    from portlens.sources import native
    record_batches = pa.table({"DstPortNumber": list(range(1000))}).to_batches(max_chunksize=100)
    assert [sum(b.num_rows for b in g) for g in native._parquet_groups(record_batches, 400)] == [400, 400, 200]
    monkeypatch.setattr(native, "PARQUET_BATCH_BYTES", 1)  # the byte bound: one read batch each
    assert [len(g) for g in native._parquet_groups(record_batches, 400)] == [1] * 10


@pytest.mark.parametrize("damage", ["cut", "pages"])
def test_an_unreadable_parquet_file_is_one_line(tmp_path, damage):
    table = pa.table({"TimeGenerated": ["2024-05-01T10:00:00Z"] * 5000,
                      "SrcIpAddr": [f"10.0.{i % 256}.{i % 200}" for i in range(5000)]})
    path = tmp_path / "rows.parquet"
    pq.write_table(table, path)
    data = bytearray(path.read_bytes())
    if damage == "cut":
        data = data[: len(data) // 2]
    else:  # the footer is whole, a data page is not
        data[200:2000] = b"U" * 1800
    path.write_bytes(bytes(data))
    with pytest.raises(sources.SourceError) as e:
        parse(path)
    assert str(e.value).startswith(f"{path}: ") and "\n" not in str(e.value)


def test_iana_numbers_and_vendor_spellings():
    t = pa.table({"TimeGenerated": ["2024-01-01T00:00:00Z"] * 7,
                  "NetworkProtocol": ["1", "58", "tcp/ip", "TcpV6", "icmp6", "47", "udp"]})
    got = asim.conform(t).table["NetworkProtocol"].to_pylist()
    assert got == ["ICMP", "IPV6-ICMP", "TCP", "TCP", "IPV6-ICMP", "GRE", "UDP"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2000), st.sampled_from([b"\n", b"\r\n", b"\r"]))
def test_hostile_bytes_never_raise(tmp_path, blob, eol):
    path = tmp_path / "hostile.jsonl"
    good = b'{"TimeGenerated": "2024-05-01T10:00:00Z", "DstPortNumber": 22}'
    path.write_bytes(good + eol + blob.replace(b"\n", eol) + eol + good[: len(blob) % len(good)])
    rows, q, batches = parse(path)
    assert rows.num_rows >= 1
    assert sum(b.records for b in batches) == rows.num_rows + q.num_rows + sum(b.skipped for b in batches)


def test_gzip_is_read_and_a_cut_gzip_is_one_clear_error(tmp_path):
    import gzip

    import pytest

    from portlens.sources import SourceError
    line = b'{"TimeGenerated": "2024-05-01T10:00:00Z", "DstPortNumber": 22}\n'
    whole = tmp_path / "rows.jsonl.gz"
    whole.write_bytes(gzip.compress(line * 1000))
    assert sources.detect(str(whole)).name == "asim"
    assert parse(whole)[0].num_rows == 1000
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(gzip.compress(line * 300000)[:-50])
    from portlens.sources.base import parse_file
    batches = list(parse_file(sources.get("asim"), str(cut)))
    landed = sum(b.table.num_rows for b in batches)
    [q] = [r for b in batches for r in b.quarantine.to_pylist()]
    assert 200000 < landed < 300000 and q["line"] == landed + 1
    assert "cut short or corrupt after line" in q["reason"]
    (tmp_path / "magic.gz").write_bytes(b"\x1f\x8b")
    with pytest.raises(SourceError, match="cannot read"):
        sources.detect(str(tmp_path / "magic.gz"))


_FIELD_VALUES = {
    "TimeGenerated": ["2024-05-01T00:00:00Z", "yesterday", "", None, 5],
    "DstPortNumber": [443, "80", 70000, -1, "http", None],
    "SrcBytes": [10, "lots", -3, None],
    "EventCount": [1, "x", None],
    "SrcIpAddr": ["10.0.0.1", "not-an-ip", None],
    "DvcAction": ["Allow", "allowed", None],
    "SrcUsername": ["alice", "  ", None],
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.fixed_dictionaries({}, optional={k: st.sampled_from(v) for k, v in _FIELD_VALUES.items()}),
                min_size=1, max_size=12))
def test_json_lines_read_for_the_store_keep_and_reject_as_read_whole(records):
    """The store asks the JSON-lines reader for the columns it keeps only (Query.narrow); every
    record must still be kept or rejected, with the same reason and values, as when every
    ASIM field is read."""
    import json
    import duckdb
    from portlens.store import STORED_COLUMNS
    lines = pa.array([json.dumps(r) for r in records])
    from portlens.sources.native import _finish, _json_lines_sql, _JSON_LINES_SQL
    from portlens.sources.base import Query
    query = Query(_JSON_LINES_SQL, {"_lines": pa.table({"line": lines, "n": pa.array(range(1, len(lines) + 1))})},
                  _json_lines_sql)
    pending = _finish(query, "x.jsonl", "asim").pending
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name, table in pending.inputs().items():
        con.register(name, table)
    cols = ", ".join(f'"{c}"' for c in STORED_COLUMNS)
    whole = con.execute(f"SELECT _line, _reason, _skip, {cols} FROM ({pending.sql()}) ORDER BY _line").fetchall()
    narrow = con.execute(f"SELECT _line, _reason, _skip, {cols} FROM ({pending.sql(frozenset(STORED_COLUMNS))}) "
                         "ORDER BY _line").fetchall()
    assert narrow == whole


@pytest.mark.parametrize("lines", [200, 40000])
def test_a_cut_gzip_lands_every_complete_line_before_the_break(tmp_path, lines):
    """Compressed input is read up to the break (base.readable), not up to the last whole read
    chunk before it: a gzip cut within its first megabyte used to land nothing. The ledger
    counts the same lines, so a checkpoint names what landed."""
    import gzip
    import zlib
    from portlens import ledger
    from portlens.sources.base import parse_file
    text = "".join(f'{{"TimeGenerated": "2024-05-01T10:00:00Z", "DstPortNumber": {i % 65536}}}\n'
                   for i in range(lines)).encode()
    packed = gzip.compress(text)
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(packed[: len(packed) * 3 // 4])
    readable = zlib.decompressobj(wbits=31).decompress(packed[: len(packed) * 3 // 4])
    complete = readable.count(b"\n")
    assert 0 < complete < lines
    batches = list(parse_file(sources.get("asim"), str(cut)))
    landed = sum(b.table.num_rows for b in batches)
    [q] = [r for b in batches for r in b.quarantine.to_pylist()]
    assert landed == complete and q["line"] == complete + 1
    assert f"cut short or corrupt after line {complete} " in q["reason"]
    reading = ledger.measure(str(cut), set(), tail=False)
    assert reading.cut and reading.end_lines == complete + (not readable.endswith(b"\n"))
