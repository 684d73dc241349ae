"""Progress reporting of long commands: what summarize and Spark runs tell the bar."""

from __future__ import annotations

import io
import threading
import time

from rich.console import Console

from portlens import summary
from portlens.progress import Progress, progress


class Recorder(Progress):
    def __init__(self):
        self.calls = []

    def file(self, path):
        self.calls.append(("file", path))

    def advance(self, records):
        self.calls.append(("advance", records))

    def done(self):
        self.calls.append(("done",))

    def tasks(self, done, total):
        self.calls.append(("tasks", done, total))


def _jsonl(path, n, bad=0):
    rows = ['{"TimeGenerated": "2024-05-01T00:00:00Z", "DstPortNumber": 443}'] * n + ["not json"] * bad
    path.write_text("\n".join(rows) + "\n")
    return str(path)


def test_summarize_reports_each_file_and_every_record_read(tmp_path):
    a, b = _jsonl(tmp_path / "a.jsonl", 30, bad=2), _jsonl(tmp_path / "b.jsonl", 5)
    seen = Recorder()
    _, stats = summary.from_raw_files([a, b], "asim", progress=seen)
    assert [c for c in seen.calls if c[0] != "advance"] == [("file", a), ("done",), ("file", b), ("done",)]
    assert sum(c[1] for c in seen.calls if c[0] == "advance") == 37  # rows + quarantined
    assert stats["sessions"] == 35 and stats["quarantined"] == 2


def test_no_bar_off_a_terminal_or_when_quiet():
    piped = Console(file=io.StringIO(), force_terminal=False)
    with progress(piped, 2) as bar:
        assert type(bar) is Progress
    terminal = Console(file=io.StringIO(), force_terminal=True)
    with progress(terminal, 2, quiet=True) as bar:
        assert type(bar) is Progress
    with progress(terminal, 2) as bar:
        assert type(bar) is not Progress
        bar.tasks(3, 8)  # (a Spark run's line: created on first report, then updated)
        bar.tasks(8, 8)


class _Stage:
    def __init__(self, done, total):
        self.numCompletedTasks, self.numTasks = done, total


class _Tracker:
    """Spark's status tracker as seen over a run: stage 1, then stage 2."""

    def __init__(self):
        self.t0 = time.monotonic()

    def getActiveStageIds(self):
        return [1] if time.monotonic() - self.t0 < 0.15 else [2]

    def getStageInfo(self, stage_id):
        return _Stage(4, 4) if stage_id == 1 else _Stage(1, 2)


class _Spark:
    """What _watch_tasks reads of a Spark session."""

    def __init__(self):
        tracker = _Tracker()
        self.sparkContext = type("Context", (), {"statusTracker": staticmethod(lambda: tracker)})()


def test_spark_runs_report_tasks_done_of_those_known():
    from portlens.engines.spark import _watch_tasks
    seen = Recorder()
    stop = _watch_tasks(_Spark(), seen, every=0.02)
    time.sleep(0.4)
    stop.set()
    time.sleep(0.05)
    reports = [c for c in seen.calls if c[0] == "tasks"]
    assert reports[0] == ("tasks", 4, 4)
    assert reports[-1] == ("tasks", 5, 6)  # stage 1's four tasks stay counted
    deadline = time.time() + 2
    while time.time() < deadline and any(t.name == "portlens-spark-progress" for t in threading.enumerate()):
        time.sleep(0.02)
    assert not any(t.name == "portlens-spark-progress" for t in threading.enumerate())
