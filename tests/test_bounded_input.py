"""Issue 13 item 10: one-line errors and bounded resources. Binary junk forced to a source is
a one-line error; a record over the size limit is quarantined (truncated) and the rest lands;
a gzip bomb stops with a one-line error without inflating; every output path is checked
before work starts (exit 2, one line, nothing written)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

from portlens import limits
from portlens.errors import SourceError
from portlens.sources import base, get
from portlens.store import Store

from test_repair import cli

ROW = {"TimeGenerated": "2026-11-30T10:00:00Z", "DstPortNumber": 3389, "SrcIpAddr": "10.0.0.1",
       "DstIpAddr": "10.0.0.2", "NetworkProtocol": "TCP"}


def _one_line_error(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("portlens: error:"), err
    for w in words:
        assert w in lines[0], err


# ---- binary junk ---------------------------------------------------------------------------

@pytest.mark.parametrize("junk", [os.urandom(1 << 16), b"\x00" * 5000, b'a,"b\n' + os.urandom(300_000),
                                  b"x" * 200_000 + b"\n1,2,3\n"])
def test_binary_junk_forced_to_asim_is_one_line(tmp_path, capsys, junk):
    path = tmp_path / "junk.bin"
    path.write_bytes(junk)
    db = tmp_path / "s.duckdb"
    code, _, err = cli(capsys, "ingest", "--db", db, "--source", "asim", path)
    _one_line_error(code, err, "junk.bin", "not ASIM rows")
    with Store(str(db)) as store:
        assert store.status()["files"] == 0
    code, _, err = cli(capsys, "normalize", "--source", "asim", path)
    _one_line_error(code, err, "not ASIM rows")


def test_csv_with_a_broken_row_is_one_line_or_quarantine(tmp_path, capsys):
    path = tmp_path / "rows.csv"
    path.write_bytes(b"TimeGenerated,DstPortNumber\n2026-11-30T10:00:00Z,22\n" + b'"' + os.urandom(5 << 20) + b"\n")
    code, _, err = cli(capsys, "ingest", "--db", tmp_path / "s.duckdb", "--source", "asim", path)
    assert "Traceback" not in err
    if code:
        _one_line_error(code, err, "rows.csv")


# ---- record size ---------------------------------------------------------------------------

def _ingest(tmp_path, path, **kw):
    with limits.applied(limits.InputLimits(**kw)), Store(str(tmp_path / "s.duckdb")) as store:
        result = store.ingest(str(path))
        rows = store.query("SELECT line, reason, raw FROM quarantine ORDER BY line").to_pylist()
        lines = store.query("SELECT SrcPortNumber FROM sessions ORDER BY 1").column(0).to_pylist()
    return result, rows, lines


@pytest.mark.parametrize("big, end", [(3 << 20, b"\n"), (3 << 20, b""), (20 << 20, b"\n"), ((1 << 20) + 1, b"\n")])
def test_long_record_is_quarantined_truncated_and_the_rest_lands(tmp_path, big, end):
    first = json.dumps({**ROW, "SrcPortNumber": 1}).encode()
    last = json.dumps({**ROW, "SrcPortNumber": 3}).encode()
    huge = b'{"junk": "' + b"A" * big + b'"}'
    path = tmp_path / "big.jsonl"
    tail = b"" if not end else b"\n" + last + b"\n"
    path.write_bytes(first + b"\n" + huge + tail)
    result, rows, ports = _ingest(tmp_path, path)
    assert result.sessions == (2 if end else 1) and result.quarantined == 1
    [q] = rows
    assert q["line"] == 2
    assert f"record of {len(huge):,} bytes is longer than the 1,048,576-byte limit" in q["reason"]
    assert q["raw"] == huge[:limits.RAW_KEPT].decode()
    assert ports == ([1, 3] if end else [1])


def test_record_limit_is_configurable(tmp_path, capsys):
    path = tmp_path / "f.jsonl"
    path.write_text(json.dumps(ROW) + "\n" + json.dumps({**ROW, "EventVendor": "v" * 500}) + "\n")
    code, out, err = cli(capsys, "ingest", "--db", tmp_path / "s.duckdb", "--max-record-bytes", 300, path)
    assert code == 0 and "1 sessions" in out and "1 quarantined" in out
    code, _, err = cli(capsys, "ingest", "--db", tmp_path / "t.duckdb", "--max-record-bytes", 0, path)
    _one_line_error(code, err, "--max-record-bytes")


def test_without_a_collector_a_long_line_is_an_error(tmp_path):
    path = tmp_path / "f.log"
    path.write_bytes(b"a\n" + b"b" * 300 + b"\nc\n")
    with limits.applied(limits.InputLimits(max_record_bytes=100)):
        with pytest.raises(SourceError, match=r"f.log:2: record of 300 bytes"):
            list(base.read_lines(str(path)))


def read_limited(path, limit: int, chunk: int, batch_lines: int):
    """(text, line number) of every line the reader yields under a record-size limit, reading
    `chunk` bytes at a time, and the over-long records it collected."""
    old = base._CHUNK_BYTES
    base._CHUNK_BYTES = chunk
    try:
        with limits.applied(limits.InputLimits(max_record_bytes=limit)), limits.collecting(str(path)) as long:
            got = [(t, n) for a, b in base.read_lines(str(path), batch_lines)
                   for t, n in zip(a.to_pylist(), b.to_pylist())]
    finally:
        base._CHUNK_BYTES = old
    return got, long


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 60), max_size=40), st.integers(1, 50), st.integers(1, 40), st.booleans())
def test_read_lines_cuts_out_exactly_the_long_lines(tmp_path_factory, sizes, limit, chunk, final_newline):
    """Any line lengths, limit and read size: lines within the limit come out with their
    numbers, every longer one is reported once with its number, size and head; blank lines
    keep their numbers."""
    folder = tmp_path_factory.mktemp("lines")
    lines = [("x" * n if i % 2 else "y" * n) for i, n in enumerate(sizes)]
    path = folder / "f.log"
    path.write_text("\n".join(lines) + ("\n" if final_newline and lines else ""))
    got, long = read_limited(path, limit, chunk, batch_lines=7)
    assert got == [(t, i + 1) for i, t in enumerate(lines) if t and len(t) <= limit]
    assert [(r.line, r.size) for r in long] == [(i + 1, len(t)) for i, t in enumerate(lines) if len(t) > limit]
    for r in long:  # the head is what was held when the limit was passed (real limits >> RAW_KEPT)
        assert lines[r.line - 1].startswith(r.head) and len(r.head) >= min(limit + 1, limits.RAW_KEPT)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="xy\r\n", max_size=120), st.integers(1, 30), st.integers(1, 25))
def test_long_lines_with_any_line_ends(tmp_path_factory, text, limit, chunk):
    """LF, CRLF and lone CR end lines for the size limit as for the line reader, wherever a
    read stops (also between the CR and the LF of a CRLF)."""
    import re
    path = tmp_path_factory.mktemp("ends") / "f.log"
    path.write_bytes(text.encode())
    got, long = read_limited(path, limit, chunk, batch_lines=5)
    lines = re.split(r"\r\n|\r|\n", text)
    if text.endswith(("\n", "\r")):
        lines = lines[:-1]
    assert got == [(t, i + 1) for i, t in enumerate(lines) if t and len(t) <= limit]
    assert [(r.line, r.size) for r in long] == [(i + 1, len(t)) for i, t in enumerate(lines) if len(t) > limit]


# ---- decompression bomb --------------------------------------------------------------------

def _bomb(path, mib: int):
    with gzip.open(path, "wb", compresslevel=9) as f:
        block = b"\0" * (1 << 20)
        for _ in range(mib):
            f.write(block)
    return path


def test_gzip_bomb_stops_with_one_line_and_bounded_memory(tmp_path):
    bomb = _bomb(tmp_path / "bomb.log.gz", 1024)  # 1 GiB of zeros in about 1 MB
    for source in ("asim", "zeek"):
        code = ("import resource, sys\nfrom portlens.cli import main\n"
                f"sys.argv = ['portlens', 'ingest', '--db', {str(tmp_path / 's.duckdb')!r}, '--source', {source!r}, {str(bomb)!r}]\n"
                "try:\n    main()\nfinally:\n"
                "    print('peak', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        err = [line for line in r.stderr.splitlines() if not line.startswith("peak ")]
        assert r.returncode == 2 and len(err) == 1 and err[0].startswith("portlens: error: "), r.stderr
        assert "bomb.log.gz" in err[0]
        peak_kib = int(r.stderr.rsplit("peak ", 1)[1].split()[0])
        assert peak_kib < 600 * 1024, r.stderr  # the file inflates to 1 GiB; we never hold it


def test_inflation_limit_is_configurable(tmp_path):
    bomb = _bomb(tmp_path / "z.gz", 8)
    tight = limits.InputLimits(max_inflation=50, inflation_floor=1 << 20)
    with limits.applied(tight):
        with pytest.raises(limits.InflationLimit, match="inflates more than 50 times"):
            with base.open_binary(str(bomb)) as f:
                f.read()
        with pytest.raises(limits.InflationLimit):
            with base.open_binary(str(bomb)) as f:
                f.readline()
        with pytest.raises(limits.InflationLimit):  # a large bounded read (a JSON document's)
            with base.open_binary(str(bomb)) as f:
                f.read(1 << 30)
    with base.open_binary(str(bomb)) as f:  # the default floor (64 MiB) lets 8 MiB through
        assert len(f.read()) == 8 << 20
    with base.open_binary(str(bomb)) as f:
        assert len(f.read(3 << 20)) == 3 << 20 and len(f.read(100)) == 100
        assert len(f.read((5 << 20) - 100 + 7)) == (5 << 20) - 100


def test_a_json_document_bomb_stops_too(tmp_path, capsys):
    path = tmp_path / "doc.json.gz"
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(b'[\n  {"TimeGenerated": "')
        for _ in range(100):
            f.write(b" " * (1 << 20))
        f.write(b'"}\n]\n')
    code, _, err = cli(capsys, "ingest", "--db", tmp_path / "s.duckdb", "--source", "zeek", path)
    _one_line_error(code, err, "doc.json.gz", "inflates more than 200 times")


def test_ordinary_gzip_logs_are_untouched(tmp_path):
    path = tmp_path / "f.jsonl.gz"
    with gzip.open(path, "wt") as f:
        for i in range(20000):
            f.write(json.dumps({**ROW, "SrcPortNumber": i % 60000}) + "\n")
    with limits.applied(limits.InputLimits(inflation_floor=1 << 16)):  # judged early: still fine
        result, rows, _ = _ingest(tmp_path, path, inflation_floor=1 << 16)
    assert result.sessions == 20000 and rows == []


# ---- output paths --------------------------------------------------------------------------

@pytest.fixture
def store_db(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "f.jsonl").write_text(json.dumps(ROW) + "\n")
    db = tmp_path / "s.duckdb"
    with Store(str(db)) as store:
        store.ingest(str(logs / "f.jsonl"))
    return db, logs


def _commands(db, logs, target):
    return {
        "detect": ["detect", "--db", db, "-o", target],
        "report": ["report", "--db", db, "--output", target],
        "normalize": ["normalize", logs / "f.jsonl", "-o", target],
        "export-summaries": ["export-summaries", target, "--db", db],
        "run": ["run", "--watch", logs, "--db", db, "--once", "--alerts", target],
    }


@pytest.mark.parametrize("command", ["detect", "report", "normalize", "export-summaries", "run"])
def test_a_folder_as_output_is_one_line_and_nothing_is_written(tmp_path, capsys, store_db, command):
    db, logs = store_db
    target = tmp_path / "out"
    target.mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = cli(capsys, *_commands(db, logs, target)[command])
    _one_line_error(code, err, str(target), "is a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no out.tmp, nothing new
    assert list(target.iterdir()) == []


@pytest.mark.parametrize("command", ["detect", "report", "normalize", "export-summaries", "run"])
def test_a_read_only_or_missing_place_is_one_line(tmp_path, capsys, store_db, command):
    db, logs = store_db
    code, _, err = cli(capsys, *_commands(db, logs, tmp_path / "no" / "such" / "out.x")[command])
    _one_line_error(code, err, "no such folder")
    if os.geteuid() == 0:
        target = "/proc/portlens-out.x"  # not writable even for root
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        target = str(ro / "out.x")
    code, _, err = cli(capsys, *_commands(db, logs, target)[command])
    _one_line_error(code, err, "cannot write")
    assert not os.path.exists(target)


def test_spark_byte_range_splits_quarantine_long_records(tmp_path):
    """The Spark engine's byte-range splits read lines as parse_file does: a long record in a
    range is quarantined there, the range's other records are parsed."""
    pytest.importorskip("pyspark")
    from portlens.engines.spark import _split_parse
    asa = "Nov 30 2026 10:00:00 fw1 : %ASA-6-106100: access-list in permitted tcp inside/10.0.0.1(1234) -> outside/10.0.0.2(22) hit-cnt 1 first hit"
    path = tmp_path / "asa.log"
    path.write_text(asa + "\n" + "x" * 5000 + "\n" + asa + "\n" + asa + "\n")
    size = path.stat().st_size
    parser = get("cisco-asa")
    with limits.applied(limits.InputLimits(max_record_bytes=1000)):
        batches = [b for start, end in ((0, 200), (200, size)) for b in _split_parse(parser, str(path), (start, end), {})]
    quarantined = [q for b in batches for q in b.quarantine.to_pylist()]
    assert [q["reason"].split(" is ")[0] for q in quarantined] == ["record of 5,000 bytes"]
    assert sum(b.table.num_rows + b.quarantine.num_rows + b.skipped for b in batches) == 4


def test_asim_csv_row_that_is_not_utf8_is_quarantined(tmp_path, capsys):
    path = tmp_path / "rows.csv"
    path.write_bytes(b"\xef\xbb\xbfTimeGenerated,DstPortNumber\n2026-11-30T10:00:00Z,22\n"
                     b"1,2,3,\xff\xfe\n2026-11-30T10:00:00Z,23\n")
    result, rows, _ = _ingest(tmp_path, path)
    assert (result.sessions, result.quarantined) == (2, 1)
    assert rows == [{"line": 3, "reason": "expected 2 CSV fields", "raw": "1,2,3,\ufffd\ufffd"}]
    assert "Exception ignored" not in capsys.readouterr().err
