"""base.read_ahead: a file's batches produced in a thread one ahead of the store."""

from __future__ import annotations

import threading
import time
from contextvars import ContextVar

import pytest

from portlens.sources.base import read_ahead

_SEEN: ContextVar[str] = ContextVar("seen", default="unset")


def test_items_arrive_in_order_and_the_producer_sees_the_callers_context():
    token = _SEEN.set("caller")
    try:
        def produce():
            for i in range(5):
                yield i, _SEEN.get(), threading.current_thread().name
        got = list(read_ahead(produce()))
    finally:
        _SEEN.reset(token)
    assert [g[0] for g in got] == [0, 1, 2, 3, 4]
    assert {g[1] for g in got} == {"caller"}
    assert {g[2] for g in got} == {"portlens-read-ahead"}


def test_the_producer_is_at_most_one_item_ahead():
    """Two batches alive at most: the one being stored and the one being read."""
    produced = []

    def produce():
        for i in range(6):
            produced.append(i)
            yield i
    for i in read_ahead(produce()):
        time.sleep(0.05)  # (the store's work on item i)
        assert len(produced) <= i + 2


def test_an_error_in_the_producer_is_raised_in_the_consumer_after_the_items_before_it():
    def produce():
        yield 1
        yield 2
        raise ValueError("line 3: broken")
    got = []
    with pytest.raises(ValueError, match="line 3: broken"):
        for item in read_ahead(produce()):
            got.append(item)
    assert got == [1, 2]


def test_leaving_early_stops_and_closes_the_producer():
    produced, closed = [], threading.Event()

    def produce():
        try:
            for i in range(1000):
                produced.append(i)
                yield i
        finally:
            closed.set()
    for item in read_ahead(produce()):
        if item == 2:
            break
    assert closed.wait(5)
    time.sleep(0.2)
    assert len(produced) <= 4  # (one ahead, not the whole file)


def test_a_failed_ingest_stops_its_reading_thread(tmp_path, monkeypatch):
    """A file whose store work fails leaves no reading thread behind (the service goes on)."""
    from portlens.store import Store
    path = tmp_path / "s.jsonl"
    path.write_text("".join('{"TimeGenerated": "2024-05-01T00:00:00Z", "DstPortNumber": 443}\n'
                            for _ in range(50)))

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")
    from portlens import store as store_module
    from portlens.sources.base import parse_file
    store = Store(str(tmp_path / "s.duckdb"))
    monkeypatch.setattr(store, "_append_rows", fail)
    # small batches: the reading thread is still producing when the store fails
    monkeypatch.setattr(store_module, "parse_file", lambda parser, p: parse_file(parser, p, batch_lines=5))
    with pytest.raises(RuntimeError, match="disk full") as failure:
        store.ingest(str(path))
    assert failure.value  # (the traceback, which keeps the failed frame alive, is still held)
    deadline = time.time() + 5
    while time.time() < deadline and any(t.name == "portlens-read-ahead" for t in threading.enumerate()):
        time.sleep(0.05)
    assert not any(t.name == "portlens-read-ahead" for t in threading.enumerate())


def test_a_failed_conform_statement_stops_both_reading_threads(tmp_path, monkeypatch):
    """The conform statement runs in a stage of its own between reading and the inserts: when
    it fails, the ingest fails with its error, lands nothing, and leaves no thread behind,
    even while the error (and the failed frames it holds) is kept."""
    from portlens.sources.base import Pending, parse_file
    from portlens import store as store_module
    from portlens.store import Store
    path = tmp_path / "s.jsonl"
    path.write_text("".join('{"TimeGenerated": "2024-05-01T00:00:00Z", "DstPortNumber": 443}\n'
                            for _ in range(50)))
    calls = []

    def fail(self, keep=None):
        calls.append(threading.current_thread().name)
        if len(calls) == 3:
            raise RuntimeError("statement failed")
        return original(self, keep)
    original = Pending.sql
    monkeypatch.setattr(Pending, "sql", fail)
    monkeypatch.setattr(store_module, "parse_file", lambda parser, p: parse_file(parser, p, batch_lines=5))
    store = Store(str(tmp_path / "s.duckdb"))
    with pytest.raises(RuntimeError, match="statement failed") as failure:
        store.ingest(str(path))
    assert failure.value.__traceback__ is not None
    assert calls and not any(name == "MainThread" for name in calls)  # (a stage of its own)
    deadline = time.time() + 5
    while time.time() < deadline and any(t.name == "portlens-read-ahead" for t in threading.enumerate()):
        time.sleep(0.05)
    assert not any(t.name == "portlens-read-ahead" for t in threading.enumerate())
    assert store.status()["sessions"] == 0


def test_long_records_make_smaller_batches(tmp_path, monkeypatch):
    """A batch ends at about BATCH_BYTES of text as well as at batch_lines lines, with every
    line kept once, in order, with its number."""
    from portlens.sources import base
    monkeypatch.setattr(base, "BATCH_BYTES", 10_000)
    monkeypatch.setattr(base, "_CHUNK_BYTES", 4096)
    path = tmp_path / "long.log"
    path.write_text("".join(f"{i:04d} " + "x" * 995 + "\n" for i in range(100)))
    batches = list(base.read_lines(str(path), batch_lines=1000))
    assert len(batches) > 5 and all(len(lines) < 20 for lines, _ in batches)
    assert [n for _, numbers in batches for n in numbers.to_pylist()] == list(range(1, 101))
    assert [int(s[:4]) for lines, _ in batches for s in lines.to_pylist()] == list(range(100))
