"""base.mapped_ahead: batches mapped in other threads come out in order, in this context,
with a bounded look-ahead, and a failure reaches the consumer."""

import threading
import time
from contextvars import ContextVar

import pytest

from portlens.sources.base import mapped_ahead

_WHO = ContextVar("who", default="nobody")


def test_results_keep_the_input_order_even_when_later_items_finish_first():
    def slow_first(i):
        time.sleep(0.05 if i == 0 else 0)
        return i * 10
    assert list(mapped_ahead(iter(range(6)), slow_first)) == [0, 10, 20, 30, 40, 50]


def test_the_mapping_runs_in_other_threads_in_the_callers_context():
    token = _WHO.set("ingest")
    try:
        seen = list(mapped_ahead(iter(range(3)), lambda i: (_WHO.get(), threading.current_thread().name)))
    finally:
        _WHO.reset(token)
    assert {who for who, _ in seen} == {"ingest"}
    assert all(name.startswith("portlens-map") for _, name in seen)


def test_at_most_ahead_plus_one_items_are_taken_before_the_first_result_is_used():
    taken = []

    def items():
        for i in range(10):
            taken.append(i)
            yield i
    out = mapped_ahead(items(), lambda i: i, ahead=1)
    assert next(out) == 0
    assert len(taken) == 2
    out.close()


def test_a_failure_in_the_mapping_is_raised_to_the_consumer_in_order():
    def fail_on_two(i):
        if i == 2:
            raise ValueError("bad batch 2")
        return i
    out = mapped_ahead(iter(range(5)), fail_on_two)
    assert [next(out), next(out)] == [0, 1]
    with pytest.raises(ValueError, match="bad batch 2"):
        next(out)
