"""Ingest is atomic and idempotent; the window is anchored at as-of; status reports."""

from __future__ import annotations

import errno
import io
import json
import os
from datetime import datetime, timedelta, timezone

import pytest

from portlens import sources
from portlens.errors import SourceError
from portlens.rules import port_anomaly as rule
from portlens.sources import native
from portlens.store import Store

AS_OF = datetime(2024, 5, 15, 6, 30, tzinfo=timezone.utc)


def jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def session(t: datetime, port=3389, **extra):
    return {"TimeGenerated": t.isoformat().replace("+00:00", "Z"), "DstPortNumber": port,
            "NetworkProtocol": "TCP", "NetworkDirection": "Inbound", "DvcAction": "Deny", **extra}


def test_reingesting_the_same_content_changes_nothing(tmp_path):
    path = jsonl(tmp_path / "a.jsonl", [session(AS_OF - timedelta(hours=h)) for h in range(5)])
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(open(path, "rb").read())
    with Store(str(tmp_path / "s.duckdb")) as store:
        first = store.ingest(path)
        again = store.ingest(str(copy))
        assert first.sessions == 5 and first.duplicate_of is None
        assert again.duplicate_of and again.sessions == 0
        assert store.status()["sessions"] == 5 and store.status()["files"] == 1


def test_a_crash_mid_file_leaves_the_store_as_before(tmp_path, monkeypatch):
    db = str(tmp_path / "s.duckdb")
    good = jsonl(tmp_path / "good.jsonl", [session(AS_OF - timedelta(hours=1))])
    big = jsonl(tmp_path / "big.jsonl", [session(AS_OF - timedelta(minutes=m)) for m in range(50)])
    with Store(db) as store:
        store.ingest(good)
    real_parse = native.NativeAsim.parse

    def crashing(self, path, batch_lines=10):
        for i, batch in enumerate(real_parse(self, path, 10)):
            if i == 2:
                raise KeyboardInterrupt("power cut")
            yield batch

    monkeypatch.setattr(native.NativeAsim, "parse", crashing)
    with Store(db) as store:
        with pytest.raises(KeyboardInterrupt):
            store.ingest(big)
        assert store.status()["sessions"] == 1 and store.status()["files"] == 1
    monkeypatch.setattr(native.NativeAsim, "parse", real_parse)
    with Store(db) as store:  # the interrupted file is not in the ledger: it can be ingested again
        assert store.ingest(big).sessions == 50
        assert store.status()["sessions"] == 51


class _FailsAfter(io.RawIOBase):
    """A file that reads like `path` up to `limit` bytes, then fails as a bad disk does."""

    def __init__(self, path, limit):
        self.f, self.limit = open(path, "rb"), limit

    def readable(self):
        return True

    def readinto(self, buffer):
        if self.f.tell() >= self.limit:
            raise OSError(errno.EIO, "Input/output error")
        return self.f.readinto(memoryview(buffer)[: self.limit - self.f.tell()])

    def close(self):
        self.f.close()
        super().close()


def _vpc_lines(path, n):
    start = int(AS_OF.timestamp()) - 3600
    path.write_text("".join(f"2 123456789010 eni-1 10.0.0.{i % 250} 10.0.1.1 {40000 + i % 999} 3389 6 1 40 "
                            f"{start + i} {start + i + 1} ACCEPT OK\n" for i in range(n)))
    return str(path)


@pytest.mark.parametrize("kind", ["aws-vpc", "asim"])
def test_a_read_error_mid_file_fails_it_and_lands_nothing(tmp_path, monkeypatch, kind):
    """The one read-error policy (sources.base.parse_file): an I/O error that is not a cut
    compressed stream fails the file with one line; nothing of it lands, and the next ingest
    reads it whole. (AWS VPC flow logs used to land what was read before the error.)"""
    from portlens import storage
    from portlens.sources import base
    path = _vpc_lines(tmp_path / "flows.log", 5000) if kind == "aws-vpc" else \
        jsonl(tmp_path / "rows.jsonl", [session(AS_OF - timedelta(seconds=s)) for s in range(5000)])
    real_open = storage.open_input
    monkeypatch.setattr(storage, "open_input", lambda p: io.BufferedReader(
        _FailsAfter(p, os.path.getsize(p) * 2 // 3), buffer_size=4096))
    monkeypatch.setattr(base, "_CHUNK_BYTES", 8192)  # (several batches before the error)
    batches = base.parse_file(sources.get(kind), path, 500)
    assert next(batches).table.num_rows > 0  # batches are read before the error ...
    with pytest.raises(SourceError, match=r"(flows\.log|rows\.jsonl): cannot read it: Input/output error"):
        list(batches)  # ... and the error is one line, not a quarantine record
    db = str(tmp_path / "s.duckdb")
    with Store(db) as store:
        with pytest.raises(SourceError, match="cannot read it: Input/output error"):
            store.ingest(path, kind)
        assert store.status()["sessions"] == 0 and store.status()["quarantined"] == 0
    monkeypatch.setattr(storage, "open_input", real_open)
    with Store(db) as store:  # the file is not in the ledger: it is read whole next time
        assert store.ingest(path, kind).sessions == 5000


def test_quarantine_keeps_file_and_line(tmp_path):
    rows = [json.dumps(session(AS_OF)), "{broken", json.dumps(session(AS_OF, port=99999)),
            json.dumps(session(AS_OF, DvcAction="Permit"))]
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(rows) + "\n")
    with Store(str(tmp_path / "s.duckdb")) as store:
        r = store.ingest(str(path))
        # "Permit" is outside ASIM's vocabulary but a native row keeps it (the KQL counts it).
        assert (r.sessions, r.quarantined) == (2, 2)
        q = store.query("SELECT file, line, reason FROM quarantine ORDER BY line").to_pylist()
    assert [x["line"] for x in q] == [2, 3]
    assert q[0]["file"] == str(path)
    assert "port outside 0-65535" in q[1]["reason"]


def test_a_parquet_file_lands_as_the_same_rows_do_from_json_lines(tmp_path, monkeypatch):
    """DuckDB reads a local Parquet file into the store itself (a statement per run of row
    groups); what lands is what the same rows land as from JSON lines."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    rows = [session(AS_OF - timedelta(minutes=7 * i), port=[22, 3389, 443][i % 3], SrcIpAddr=f"10.0.0.{i % 9}")
            for i in range(400)]
    rows[5]["DstPortNumber"] = 70000
    rows[150]["TimeGenerated"] = "not a time"
    rows[333]["TimeGenerated"] = None
    rows[334]["SrcIpAddr"] = "host-7"  # not an address: kept aside in AdditionalFields
    parquet = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet, row_group_size=64)
    monkeypatch.setattr(native, "PARQUET_SCAN_BATCHES", 0)  # (a statement per row group)
    landed = {}
    for path in (str(parquet), jsonl(tmp_path / "rows.jsonl", rows)):
        with Store(str(tmp_path / f"{os.path.basename(path)}.duckdb")) as store:
            r = store.ingest(path)
            landed[path.rsplit(".", 1)[1]] = (
                (r.records, r.sessions, r.quarantined, r.skipped),
                store.query('SELECT "TimeGenerated", "DstPortNumber", "SrcIpAddr", "DvcAction" FROM sessions '
                            "ORDER BY ALL").to_pylist(),
                store.query("SELECT line, reason FROM quarantine ORDER BY line").to_pylist(),
                store.query("SELECT * EXCLUDE (file_id) FROM summaries ORDER BY ALL").to_pylist())
    assert landed["parquet"] == landed["jsonl"]
    counts, sessions, quarantine, summaries = landed["parquet"]
    assert counts == (400, 397, 3, 0) and len(sessions) == 397
    assert [q["line"] for q in quarantine] == [6, 151, 334]
    assert sum(row["count_"] for row in summaries) == 397


def test_window_is_anchored_at_as_of(tmp_path):
    start = AS_OF - timedelta(days=14)
    times = {
        "before window": start - timedelta(microseconds=1),
        "first instant": start,
        "end of bin 0": start + timedelta(days=1) - timedelta(microseconds=1),
        "start of bin 1": start + timedelta(days=1),
        "last instant": AS_OF - timedelta(microseconds=1),
        "at as-of": AS_OF,
        "after": AS_OF + timedelta(hours=2),
    }
    path = jsonl(tmp_path / "w.jsonl", [session(t) for t in times.values()]
                 + [session(AS_OF - timedelta(hours=1), port=None)])  # no port: not counted
    with Store(str(tmp_path / "s.duckdb")) as store:
        store.ingest(path)
        window = rule.Window(AS_OF)
        s = rule.daily_series(store.daily_counts(window.start, window.days, rule.KEYS, tier="raw"), window)
    assert s.totals.shape == (1, 14)
    assert s.totals[0].tolist() == [2, 1] + [0] * 11 + [1]


def test_default_as_of_is_just_after_the_newest_session():
    newest = datetime(2024, 5, 15, 6, 29, 59, 999999, tzinfo=timezone.utc)
    assert rule.default_as_of(newest) == datetime(2024, 5, 15, 6, 40, tzinfo=timezone.utc)
    on_boundary = datetime(2024, 5, 15, 6, 40, tzinfo=timezone.utc)
    assert rule.default_as_of(on_boundary) == datetime(2024, 5, 15, 7, 0, tzinfo=timezone.utc)


def test_status_reports_range_and_sources(tmp_path):
    path = jsonl(tmp_path / "a.jsonl", [session(AS_OF - timedelta(days=d)) for d in range(3)])
    with Store(str(tmp_path / "s.duckdb")) as store:
        store.ingest(path)
        info = store.status()
    assert info["sessions"] == 3 and info["quarantined"] == 0
    assert info["first"].startswith("2024-05-13T06:30") and info["last"].startswith("2024-05-15T06:30")
    assert info["sessions_by_source"] == {"asim": 3}


def test_rows_left_by_a_killed_ingest_are_invisible_then_removed(tmp_path):
    """A process killed mid-file leaves a 'loading' ledger entry: readers never see its rows
    and the next writer removes them."""
    db = str(tmp_path / "s.duckdb")
    with Store(db) as store:
        store.ingest(jsonl(tmp_path / "done.jsonl", [session(AS_OF - timedelta(hours=1))]))
        store.con.execute("INSERT INTO files (file_id, path, sha256, state) VALUES (99, 'x', 'y', 'loading')").fetchall()
        store.con.execute("INSERT INTO sessions (TimeGenerated, DstPortNumber, file_id) "
                          "VALUES (TIMESTAMPTZ '2024-05-15 01:00:00+00', 3389, 99)").fetchall()
        assert store.status()["sessions"] == 1
    with Store(db, read_only=True) as reader:
        assert reader.status()["sessions"] == 1
    with Store(db) as store:
        assert store.query("SELECT count(*) AS n FROM sessions")["n"][0].as_py() == 1
        assert store.query("SELECT count(*) AS n FROM files")["n"][0].as_py() == 1



def test_duckdb_cache_is_capped_while_a_file_is_ingested(tmp_path, monkeypatch):
    """DuckDB caches the blocks an ingest writes up to its memory limit (by default most of
    the RAM), so the store caps it while a file is ingested, also after letting readers in
    mid-file, and gives queries the default back; it caps it again for the checkpoint when the
    store closes. A store in memory is never capped."""
    import duckdb

    from portlens import sharing
    from portlens import store as store_module
    from portlens.sources.base import parse_file

    def limit(con):
        return con.execute("SELECT current_setting('memory_limit')").fetchone()[0]

    def ordered(con):
        return con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0]
    scratch = duckdb.connect()
    default = limit(scratch)
    scratch.execute(f"SET memory_limit = '{store_module.INGEST_MEMORY_LIMIT}'")
    capped = limit(scratch)
    assert capped != default
    path = jsonl(tmp_path / "a.jsonl", [session(AS_OF - timedelta(minutes=m)) for m in range(30)])
    monkeypatch.setattr(store_module, "parse_file", lambda parser, p: parse_file(parser, p, batch_lines=10))
    monkeypatch.setattr(sharing, "readers_waiting", lambda path: True)  # (let readers in after each batch)
    seen, statements = [], []
    real_run = store_module._run
    monkeypatch.setattr(store_module, "_run", lambda con, text, params=None: (
        statements.append(text), real_run(con, text, params))[1])
    with Store(str(tmp_path / "s.duckdb")) as store:
        store._handed_over_at = 0.0
        result = store.ingest(path, progress=lambda n: seen.append((limit(store.con), ordered(store.con))))
        assert result.sessions == 30 and len(seen) == 3
        assert seen == [(capped, False)] * 3  # (rows inserted in any order meanwhile)
        assert limit(store.con) == default and ordered(store.con)
        statements.clear()
        seen.clear()
    # (and for the checkpoint when the store closes)
    assert statements[0] == f"SET memory_limit = '{store_module.INGEST_MEMORY_LIMIT}'"
    with Store(":memory:") as store:
        store.ingest(path, progress=lambda n: seen.append(limit(store.con)))
        assert seen == [default] * 3


def test_a_files_batches_are_not_kept_alive_by_its_transaction(tmp_path, monkeypatch):
    # A file's batches go into one transaction; the Arrow memory of each must be let go when
    # its statements end, not when the file commits, or memory grows with the file.
    import pyarrow as pa

    from portlens import store as store_module

    fields = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto"]
    head = ["#separator \\x09", "#path\tconn", "#fields\t" + "\t".join(fields)]
    rows = [f"{1714521600 + s}.5\tC{s:017d}\t10.0.{s % 250}.{s % 199}\t{1024 + s % 60000}\t"
            f"192.168.{s % 7}.{s % 251}\t{1 + s % 5000}\ttcp" for s in range(40_000)]
    path = tmp_path / "conn.log"
    path.write_text("\n".join(head + rows) + "\n")
    real_parse_file = store_module.parse_file
    monkeypatch.setattr(store_module, "parse_file", lambda source, p: real_parse_file(source, p, 2_000))
    held = []
    with Store(str(tmp_path / "s.duckdb")) as store:
        result = store.ingest(str(path), progress=lambda n: held.append(pa.total_allocated_bytes()))
        assert result.sessions == 40_000 and len(held) >= 20
    # (the file's text is read ahead and let go batch by batch, so what is held shrinks; a batch
    # kept registered until the commit would add its text and columns, about 1 MiB each, so the
    # second half of the file would hold about 10 MiB more than its start. Which of the batches
    # in flight between the stages are alive at a given moment varies by a batch or two.)
    assert max(held[len(held) // 2:]) < max(held[2:6]) + (1 << 20)
