"""Issue 13, item 3: log rotation and growing files, as log shippers handle them. A file is
known by a fingerprint of its first decompressed bytes and a checkpoint of how far it was
read (portlens.ledger): nothing is counted twice, nothing complete is left out."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings, strategies as st

from portlens import ledger
from portlens.sources.base import read_lines
from portlens.store import Store

T0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=1)


def line(i: int, port: int = 3389) -> bytes:
    return (json.dumps({"TimeGenerated": (T0 + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
                        "DstPortNumber": port, "NetworkProtocol": "TCP", "NetworkDirection": "Inbound",
                        "DvcAction": "Deny", "SrcIpAddr": "10.0.0.1"}) + "\n").encode()


def lines(a: int, b: int) -> bytes:
    return b"".join(line(i) for i in range(a, b))


def sessions(store: Store) -> int:
    return store.status()["sessions"]


def test_rotated_then_compressed_copy_is_not_counted_again(tmp_path):
    log = tmp_path / "fw.log"
    log.write_bytes(lines(0, 100))
    with Store(str(tmp_path / "s.duckdb")) as store:
        assert store.ingest(str(log)).sessions == 100
        os.rename(log, tmp_path / "fw.log.1")
        again = store.ingest(str(tmp_path / "fw.log.1"))
        assert again.duplicate_of == str(log) and again.sessions == 0
        with open(tmp_path / "fw.log.1", "rb") as src, gzip.open(tmp_path / "fw.log.1.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.remove(tmp_path / "fw.log.1")
        packed = store.ingest(str(tmp_path / "fw.log.1.gz"))
        assert packed.duplicate_of and packed.sessions == 0
        log.write_bytes(lines(100, 130))  # the new fw.log: a new file
        fresh = store.ingest(str(log))
        assert fresh.sessions == 30 and fresh.continues is None
        assert sessions(store) == 130
        # summaries agree with the raw sessions (each session counted once)
        assert store.query("SELECT sum(count_) AS n FROM summaries")["n"][0].as_py() == 130


def test_lines_written_before_rotation_but_after_the_last_read_are_ingested(tmp_path):
    log = tmp_path / "fw.log"
    log.write_bytes(lines(0, 50))
    with Store(str(tmp_path / "s.duckdb")) as store:
        store.ingest(str(log))
        with open(log, "ab") as f:
            f.write(lines(50, 60))  # written after the read, then rotated and compressed
        with open(log, "rb") as src, gzip.open(tmp_path / "fw.log.1.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.remove(log)
        r = store.ingest(str(tmp_path / "fw.log.1.gz"))
        assert (r.sessions, r.records, r.lines, r.continues) == (10, 10, (51, 60), str(log))
        assert sessions(store) == 60
        times = store.query("SELECT count(DISTINCT TimeGenerated) AS n FROM ingested")["n"][0].as_py()
        assert times == 60  # each line once


def test_an_appended_file_adds_only_its_new_lines(tmp_path):
    log = tmp_path / "fw.log"
    log.write_bytes(lines(0, 10))
    with Store(str(tmp_path / "s.duckdb")) as store:
        assert store.ingest(str(log)).sessions == 10
        with open(log, "ab") as f:
            f.write(lines(10, 15))
        r = store.ingest(str(log))
        assert (r.sessions, r.lines, r.continues) == (5, (11, 15), str(log))
        assert store.ingest(str(log)).duplicate_of == str(log)  # re-ingesting: a no-op
        assert sessions(store) == 15
        files = store.query("SELECT first_line, read_lines, continues FROM files ORDER BY file_id").to_pylist()
        assert [(f["first_line"], f["read_lines"]) for f in files] == [(1, 10), (11, 15)]
        assert files[1]["continues"] is not None


def test_quarantined_lines_of_an_appended_file_are_counted_once(tmp_path):
    log = tmp_path / "fw.log"
    log.write_bytes(lines(0, 3) + b"{broken\n")
    with Store(str(tmp_path / "s.duckdb")) as store:
        assert store.ingest(str(log)).quarantined == 1
        with open(log, "ab") as f:
            f.write(b"{also broken\n" + lines(3, 4))
        r = store.ingest(str(log))
        assert (r.sessions, r.quarantined, r.records) == (1, 1, 2)
        q = store.query("SELECT line FROM quarantine ORDER BY line")["line"].to_pylist()
        assert q == [4, 5]


def test_a_truncated_or_replaced_file_is_a_new_file(tmp_path):
    log = tmp_path / "fw.log"
    log.write_bytes(lines(0, 20))
    with Store(str(tmp_path / "s.duckdb")) as store:
        store.ingest(str(log))
        log.write_bytes(lines(1000, 1005))  # truncated, then written afresh (copytruncate)
        r = store.ingest(str(log))
        assert (r.sessions, r.continues, r.lines) == (5, None, (1, 5))
        assert sessions(store) == 25


def test_shorter_content_than_the_checkpoint_is_a_new_file(tmp_path):
    """Truncated to a prefix of what was read: not the same lineage (the checkpoint's hash is
    over more bytes than the file has), so its lines are new."""
    log = tmp_path / "fw.log"
    log.write_bytes(lines(0, 20))
    with Store(str(tmp_path / "s.duckdb")) as store:
        store.ingest(str(log))
        log.write_bytes(lines(0, 5) + lines(500, 502))
        r = store.ingest(str(log))
        assert r.sessions == 7 and r.continues is None


def test_a_shared_long_header_does_not_make_two_files_one(tmp_path):
    """Two CSV logs whose first kilobyte is the same header are different files."""
    header = "TimeGenerated,DstPortNumber,NetworkProtocol,NetworkDirection,DvcAction," + ",".join(
        f"Extra{i}" for i in range(200)) + "\n"
    assert len(header) > ledger.FINGERPRINT_BYTES

    def csv(i0):
        return header + "".join(f"{(T0 + timedelta(seconds=i)).isoformat()},3389,TCP,Inbound,Deny" + "," * 200 + "\n"
                                for i in range(i0, i0 + 5))
    (tmp_path / "a.csv").write_text(csv(0))
    (tmp_path / "b.csv").write_text(csv(100))
    with Store(str(tmp_path / "s.duckdb")) as store:
        assert store.ingest(str(tmp_path / "a.csv")).sessions == 5
        r = store.ingest(str(tmp_path / "b.csv"))
        assert r.sessions == 5 and r.continues is None and not r.duplicate_of


def test_tail_mode_leaves_a_partial_last_line_for_its_newline(tmp_path):
    log = tmp_path / "fw.log"
    whole = line(1)
    log.write_bytes(line(0) + whole[:25])  # the writer is in the middle of line 2
    with Store(str(tmp_path / "s.duckdb")) as store:
        r = store.ingest(str(log), tail=True)
        assert (r.sessions, r.waiting, r.lines) == (1, True, (1, 1))
        assert store.ingest(str(log), tail=True).sessions == 0  # still waiting: nothing new
        with open(log, "ab") as f:
            f.write(whole[25:])
        r = store.ingest(str(log), tail=True)
        assert (r.sessions, r.quarantined, r.waiting, r.lines) == (1, 0, False, (2, 2))
        assert sessions(store) == 2


def test_tail_mode_waits_for_the_first_complete_line(tmp_path):
    log = tmp_path / "fw.log"
    log.write_bytes(line(0)[:10])
    with Store(str(tmp_path / "s.duckdb")) as store:
        r = store.ingest(str(log), tail=True)
        assert r.waiting and r.sessions == 0
        assert store.status()["files"] == 0  # no ledger entry until a line is complete


def test_read_mode_takes_a_last_line_without_newline(tmp_path):
    log = tmp_path / "export.jsonl"
    log.write_bytes(line(0) + line(1).rstrip(b"\n"))
    with Store(str(tmp_path / "s.duckdb")) as store:
        r = store.ingest(str(log))
        assert r.sessions == 2 and not r.waiting
        assert store.ingest(str(log)).duplicate_of == str(log)


def test_a_file_growing_while_it_is_read_is_read_to_its_measured_end(tmp_path, monkeypatch):
    """Lines appended between the measuring pass and the parse wait for the next ingest."""
    log = tmp_path / "fw.log"
    log.write_bytes(lines(0, 10))
    real = ledger.measure

    def measure_then_grow(path, offsets, tail):
        reading = real(path, offsets, tail)
        with open(log, "ab") as f:
            f.write(lines(10, 13) + line(13)[:7])
        return reading
    monkeypatch.setattr(ledger, "measure", measure_then_grow)
    with Store(str(tmp_path / "s.duckdb")) as store:
        assert store.ingest(str(log), tail=True).sessions == 10
        monkeypatch.setattr(ledger, "measure", real)
        r = store.ingest(str(log), tail=True)
        assert (r.sessions, r.lines, r.waiting) == (3, (11, 13), True)
        assert sessions(store) == 13


def test_a_crash_mid_continuation_leaves_the_checkpoint_where_it_was(tmp_path, monkeypatch):
    from portlens.sources import native
    log = tmp_path / "fw.log"
    log.write_bytes(lines(0, 10))
    with Store(str(tmp_path / "s.duckdb")) as store:
        store.ingest(str(log))
        with open(log, "ab") as f:
            f.write(lines(10, 40))
        real_parse = native.NativeAsim.parse

        def crashing(self, path, batch_lines=10):
            for i, batch in enumerate(real_parse(self, path, 10)):
                if i == 3:
                    raise KeyboardInterrupt("power cut")
                yield batch
        monkeypatch.setattr(native.NativeAsim, "parse", crashing)
        try:
            store.ingest(str(log))
        except KeyboardInterrupt:
            pass
        monkeypatch.setattr(native.NativeAsim, "parse", real_parse)
        assert sessions(store) == 10
        assert store.ingest(str(log)).sessions == 30
        assert sessions(store) == 40


def test_a_source_without_line_numbers_reads_a_grown_file_whole_and_replaces_it(tmp_path, monkeypatch):
    """Some sources hand back finished batches (Sentinel table exports, native CSV with bad
    rows): their sessions carry no line number to filter on, so a grown file is read whole
    and replaces the entries it grew from."""
    from portlens.sources import native
    from portlens.sources.base import Batch
    real_parse = native.NativeAsim.parse

    def finished(self, path, batch_lines=10):
        for b in real_parse(self, path, batch_lines):
            yield Batch(b.table, b.quarantine, b.skipped, b.records)
    monkeypatch.setattr(native.NativeAsim, "parse", finished)
    log = tmp_path / "fw.log"
    log.write_bytes(lines(0, 5))
    with Store(str(tmp_path / "s.duckdb")) as store:
        assert store.ingest(str(log)).sessions == 5
        with open(log, "ab") as f:
            f.write(lines(5, 8))
        r = store.ingest(str(log))
        assert (r.sessions, r.replaced, r.continues) == (8, 1, None)
        assert sessions(store) == 8 and store.status()["files"] == 1
        with open(log, "ab") as f:
            f.write(lines(8, 9))
        assert store.ingest(str(log)).sessions == 9  # the replacement is itself a lineage
        assert sessions(store) == 9 and store.status()["files"] == 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([b"a", b"bc", b"\n", b"\r", b"\r\n", b" ", b"\xef\xbb\xbf"]), max_size=30))
def test_measure_counts_lines_as_the_line_reader_numbers_them(tmp_path_factory, parts):
    path = tmp_path_factory.mktemp("m") / "f.log"
    data = b"".join(parts)
    path.write_bytes(data)
    stats: dict = {}
    for _ in read_lines(str(path), 7, None, stats):
        pass
    whole = ledger.measure(str(path), {len(data)}, tail=False)
    assert whole.end_lines == stats["lines"] and whole.end_bytes == len(data)
    tail = ledger.measure(str(path), set(), tail=True)
    assert tail.end_bytes == data.rfind(b"\n") + 1
    stats = {}
    path.write_bytes(data[:tail.end_bytes])
    for _ in read_lines(str(path), 7, None, stats):
        pass
    assert tail.end_lines == stats["lines"]


def test_an_incomplete_copy_of_content_read_further_adds_nothing(tmp_path):
    """A rotated file caught while it is being compressed holds fewer lines than were read:
    the service waits for the rest; a copy that stops between two checkpoints of its lineage
    adds nothing either."""
    log = tmp_path / "fw.log"
    log.write_bytes(lines(0, 100))
    with Store(str(tmp_path / "s.duckdb")) as store:
        store.ingest(str(log))
        with open(log, "ab") as f:
            f.write(lines(100, 200))
        assert store.ingest(str(log)).sessions == 100
        packed = gzip.compress(log.read_bytes())
        (tmp_path / "fw.log.1.gz").write_bytes(packed[:len(packed) * 3 // 4])  # compression in progress
        r = store.ingest(str(tmp_path / "fw.log.1.gz"), tail=True)
        assert r.sessions == 0 and r.waiting  # a compressed file that breaks off is not complete yet
        assert store.status()["files"] == 2
        (tmp_path / "fw.log.1.gz").write_bytes(packed)
        assert store.ingest(str(tmp_path / "fw.log.1.gz"), tail=True).sessions == 0
        assert sessions(store) == 200
        shorter = tmp_path / "copy.log"
        shorter.write_bytes(lines(0, 150))  # between the two checkpoints (100 and 200 lines)
        r = store.ingest(str(shorter))
        assert r.sessions == 0 and r.duplicate_of
        assert sessions(store) == 200


def test_read_mode_reports_a_cut_compressed_file_and_keeps_what_was_readable(tmp_path):
    packed = gzip.compress(lines(0, 20000))  # (the reader meets the cut after its first 1 MiB)
    cut = tmp_path / "cut.log.gz"
    cut.write_bytes(packed[:len(packed) // 2])
    with Store(str(tmp_path / "s.duckdb")) as store:
        r = store.ingest(str(cut))
        assert r.sessions > 0 and r.quarantined == 1
        reason = store.query("SELECT reason FROM quarantine")["reason"][0].as_py()
        assert "cut short" in reason


def test_later_entries_of_a_lineage_are_found_for_forget(tmp_path):
    """What `portlens forget` must remove with an entry: the entries that continue it."""
    from portlens.store import _run
    log = tmp_path / "fw.log"
    log.write_bytes(lines(0, 5))
    with Store(str(tmp_path / "s.duckdb")) as store:
        store.ingest(str(log))
        for a in (5, 8):
            with open(log, "ab") as f:
                f.write(lines(a, a + 3))
            store.ingest(str(log))
        other = tmp_path / "other.log"
        other.write_bytes(lines(100, 101))
        store.ingest(str(other))
        ids = store.query("SELECT file_id FROM files ORDER BY file_id")["file_id"].to_pylist()
        assert ledger.later_entries(store.con, _run, [ids[0]]) == ids[1:3]
        assert ledger.later_entries(store.con, _run, [ids[2]]) == []


@settings(max_examples=12, deadline=None)
@given(cuts=st.lists(st.integers(1, 2400), min_size=1, max_size=6), rotate_at=st.integers(0, 6),
       compress=st.booleans())
def test_any_sequence_of_partial_writes_and_a_rotation_counts_each_line_once(tmp_path_factory, cuts,
                                                                             rotate_at, compress):
    """The writer stops anywhere (mid-line too); after each stop the file is ingested in tail
    mode; at some point it is rotated (renamed, maybe gzipped) and a new file begins."""
    folder = tmp_path_factory.mktemp("w")
    text = lines(0, 20)
    fresh = lines(500, 505)
    stops = sorted({min(c, len(text)) for c in cuts} | {len(text)})
    with Store(str(folder / "s.duckdb")) as store:
        log, done = folder / "fw.log", 0
        for i, stop in enumerate(stops):
            with open(log, "ab") as f:
                f.write(text[done:stop])
            done = stop
            store.ingest(str(log), tail=True)
            if i == rotate_at:
                break
        with open(log, "ab") as f:  # the rest goes to the old file before the writer reopens
            f.write(text[done:])
        rotated = folder / "fw.log.1"
        os.rename(log, rotated)
        if compress:
            rotated.with_suffix(".1.gz").write_bytes(gzip.compress(rotated.read_bytes()))
            os.remove(rotated)
            rotated = rotated.with_suffix(".1.gz")
        log.write_bytes(fresh)
        for path in (rotated, log, rotated, log):
            store.ingest(str(path), tail=True)
        assert sessions(store) == 25
        assert store.status()["quarantined"] == 0


def test_a_rotated_gzip_copy_of_demo_traffic_raises_no_false_alert(tmp_path):
    """The issue's reproduction: the demo's traffic, then a gzip copy of its log (as logrotate
    leaves it) ingested too: detect finds the same alerts as before, not two more."""
    import subprocess
    import sys

    def portlens(*args):
        r = subprocess.run([sys.executable, "-m", "portlens", *map(str, args)], capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr
        return r.stdout
    portlens("demo", "--dir", tmp_path, "--scale", "0.2")
    db = tmp_path / "demo.duckdb"
    before = portlens("detect", "--db", db, "--format", "jsonl")
    log = tmp_path / "demo-sessions.jsonl"
    (tmp_path / "demo-sessions.jsonl.1.gz").write_bytes(gzip.compress(log.read_bytes()))
    out = portlens("ingest", tmp_path / "demo-sessions.jsonl.1.gz", "--db", db)
    assert "already ingested" in out
    after = portlens("detect", "--db", db, "--format", "jsonl")
    assert [json.loads(a)["id"] for a in after.splitlines()] == [json.loads(b)["id"] for b in before.splitlines()]
    assert after == before


def test_a_file_rotated_while_it_is_ingested_is_read_whole_as_measured(tmp_path, monkeypatch):
    """fw.log is renamed and a new fw.log begins between measuring and parsing: the ingest
    still parses the file it measured (held open), so its checkpoint describes what it read."""
    from portlens.sources import native
    log = tmp_path / "fw.log"
    log.write_bytes(lines(0, 50))
    real_parse = native.NativeAsim.parse
    rotated = []

    def rotate_then_parse(self, path, batch_lines=10):
        if not rotated:
            os.rename(log, tmp_path / "fw.log.1")
            log.write_bytes(lines(500, 505) + line(505)[:9])
            rotated.append(True)
        yield from real_parse(self, path, batch_lines)
    monkeypatch.setattr(native.NativeAsim, "parse", rotate_then_parse)
    with Store(str(tmp_path / "s.duckdb")) as store:
        r = store.ingest(str(log), tail=True)
        assert (r.sessions, r.quarantined, r.lines) == (50, 0, (1, 50))
        assert store.ingest(str(tmp_path / "fw.log.1"), tail=True).duplicate_of
        r = store.ingest(str(log), tail=True)
        assert (r.sessions, r.continues, r.waiting) == (5, None, True)
        assert sessions(store) == 55


def test_forgetting_a_file_forgets_the_copies_that_continue_it(tmp_path):
    """`portlens forget fw.log` also removes the entry of fw.log.1, which was read from
    fw.log's checkpoint: ingesting fw.log.1 again then brings every line back, once."""
    log = tmp_path / "fw.log"
    log.write_bytes(lines(0, 10))
    with Store(str(tmp_path / "s.duckdb")) as store:
        store.ingest(str(log))
        with open(log, "ab") as f:
            f.write(lines(10, 15))
        store.ingest(str(log))
        os.rename(log, tmp_path / "fw.log.1")
        with open(tmp_path / "fw.log.1", "ab") as f:
            f.write(lines(15, 17))
        assert store.ingest(str(tmp_path / "fw.log.1")).sessions == 2
        gone = store.forget(str(log))
        assert gone.sessions == 17 and len(gone.files) == 3
        assert sessions(store) == 0 and store.status()["files"] == 0
        assert store.ingest(str(tmp_path / "fw.log.1")).sessions == 17
        assert sessions(store) == 17
