"""Spark engine benchmark: summary-build throughput (sessions/s) of `engines.spark` in local
mode, next to the DuckDB path on the same files, run in the same process.

    python bench/bench_spark.py             # 8 files x 250k sessions, median of 3
    python bench/bench_spark.py --quick     # 2 files x 20k sessions, a smoke run
    python bench/bench_spark.py --cluster   # also on a standalone master + worker (127.0.0.1)

With --cluster the same engine also runs on a Spark standalone cluster started here from
PySpark's own bin/spark-class (one master, one worker with --cores cores, on 127.0.0.1): the
same files, the same summary. On one 2-core machine this measures the cluster's overhead (a
separate executor JVM, task scheduling over the network stack), not a speed-up: the worker has
the same cores local[N] has. With W workers of C cores each, the file-parallel part scales with
W*C until the driver's listing or the final groupBy dominate.

Inputs are ASIM JSON-lines files generated with `portlens.demo.generate` (one seed a file,
so files overlap in time like several sensors). Both paths parse every file with the same
source parser and `summary.summarize`; the DuckDB path adds the partials up with
`summary.combine` in this process, Spark with a groupBy across its executors (local[N],
N = --cores). Both write the summary as Parquet and must agree on it. Spark session
start-up is timed apart and not in the throughput.

Memory: ru_maxrss of this process (RUSAGE_SELF, read after the DuckDB runs and again after
the Spark runs; it is a high-water mark, so the second figure covers both) and of reaped
children (RUSAGE_CHILDREN; the JVM outlives spark.stop(), so it is ended and reaped first,
at the very end). The peak RSS of the Spark process tree (JVM + Python workers) is also sampled
from /proc while Spark runs.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

END = datetime(2024, 5, 15, 6, 0, tzinfo=timezone.utc)


def generate(folder: Path, files: int, rows: int) -> list[str]:
    """`files` ASIM JSON-lines files of `rows` sessions each (kept if already there)."""
    from portlens import demo
    from portlens.cli import _write_jsonl
    paths = []
    for i in range(files):
        path = folder / f"sessions_{i:02d}_{rows}.jsonl"
        if not path.exists():
            # scale 1 gives ~274k sessions over 15 days; ask for a little more and cut
            table = demo.generate(END, days=15, seed=100 + i, scale=rows / 240_000)
            _write_jsonl(table.slice(0, rows), path)
        paths.append(str(path))
    return paths


# ---- the two paths -------------------------------------------------------------------------

def duckdb_path(paths: list[str], output: str) -> tuple[int, "object"]:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from portlens import sources, summary
    parts, sessions = [], 0
    for path in paths:
        for batch in sources.detect(path).parse(path):
            sessions += batch.table.num_rows
            parts.append(summary.summarize(batch.table))
    combined = summary.combine(pa.concat_tables(parts))
    pq.write_table(combined, output)
    return sessions, combined


@contextmanager
def standalone_cluster(cores: int):
    """A Spark standalone master and one worker on 127.0.0.1; yields the master URL."""
    import pyspark
    home = os.path.dirname(pyspark.__file__)
    spark_class = os.path.join(home, "bin", "spark-class")
    env = {**os.environ, "SPARK_HOME": home, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_NO_DAEMONIZE": "1",
           "PYSPARK_PYTHON": sys.executable}
    port = _free_port()
    log = tempfile.NamedTemporaryFile(prefix="portlens-bench-master-", suffix=".log", delete=False)
    procs = [subprocess.Popen([spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                               "--port", str(port), "--webui-port", str(_free_port())],
                              stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)]
    try:
        _wait(lambda: _listening(port), 120, "the master")
        procs.append(subprocess.Popen(
            [spark_class, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", str(cores),
             "--memory", "4g", "--webui-port", str(_free_port()), f"spark://127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True))
        _wait(lambda: "Registering worker" in open(log.name, errors="replace").read(), 120, "the worker")
        yield f"spark://127.0.0.1:{port}"
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(30)
        os.unlink(log.name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait(ready, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start within {seconds:.0f}s")
        time.sleep(0.2)


def spark_path(spark, paths: list[str], output: str):
    from portlens.engines import spark as engine
    return engine.summarize_files(paths, "auto", output, spark=spark)


def timed_runs(spark, paths: list[str], output: str, repeat: int):
    """(seconds of each run, the last result, the summary it wrote)."""
    import pyarrow.parquet as pq
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = spark_path(spark, paths, output)
        times.append(time.perf_counter() - t)
    return times, result, pq.read_table(output)


# ---- memory --------------------------------------------------------------------------------

def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreePeak:
    """Samples the summed RSS of this process's descendants (the JVM and its Python workers)."""

    def __init__(self, every: float = 0.2):
        self.every, self.peak_kib, self._stop = every, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, sum(_rss_kib(p) for p in _descendants(me)))
            self._stop.wait(self.every)

    def __enter__(self) -> "TreePeak":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def stop_jvm() -> float:
    """End the JVM PySpark started (it outlives spark.stop()), reap it, and return the
    RUSAGE_CHILDREN high-water mark in MiB (the largest reaped child: the JVM)."""
    from pyspark import SparkContext
    gateway = SparkContext._gateway
    proc = getattr(gateway, "proc", None)
    if gateway is not None:
        gateway.shutdown()
        SparkContext._gateway = SparkContext._jvm = None
    if proc is not None:
        if proc.stdin:
            proc.stdin.close()  # the JVM exits when its stdin closes
        try:
            proc.wait(timeout=60)
        except Exception:
            pass
    return maxrss_mib(resource.RUSAGE_CHILDREN)


def maxrss_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


# ---- main ----------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--rows", type=int, default=250_000, help="sessions per file")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2, help="Spark local[N]")
    parser.add_argument("--dir", help="keep the generated files here (reused when present)")
    parser.add_argument("--quick", action="store_true", help="2 files x 20k sessions")
    parser.add_argument("--cluster", action="store_true",
                        help="also run on a standalone master + one worker with --cores cores")
    args = parser.parse_args()
    if args.quick:
        args.files, args.rows = 2, 20_000

    with tempfile.TemporaryDirectory(prefix="portlens-bench-spark-") as tmp:
        folder = Path(args.dir) if args.dir else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        paths = generate(folder, args.files, args.rows)
        size = sum(os.path.getsize(p) for p in paths)
        print(f"inputs: {args.files} ASIM JSON-lines files x {args.rows:,} sessions "
              f"({size / 2**20:,.0f} MiB) ready in {time.perf_counter() - t:.1f}s; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")

        # DuckDB path
        duck_times, sessions, expected = [], 0, None
        for _ in range(args.repeat):
            t = time.perf_counter()
            sessions, expected = duckdb_path(paths, os.path.join(tmp, "duckdb.parquet"))
            duck_times.append(time.perf_counter() - t)
        rss_after_duckdb = maxrss_mib(resource.RUSAGE_SELF)

        # Spark path
        from portlens.engines import spark as engine
        with TreePeak() as tree:
            t = time.perf_counter()
            spark = engine.local_session(f"local[{args.cores}]", "portlens-bench")
            startup = time.perf_counter() - t
            try:
                spark_times, result, got = timed_runs(spark, paths, os.path.join(tmp, "spark-summary"),
                                                      args.repeat)
            finally:
                spark.stop()
        rss_after_spark = maxrss_mib(resource.RUSAGE_SELF)

        cluster_times, cluster_same, cluster_startup = [], None, 0.0
        if args.cluster:
            t = time.perf_counter()
            with standalone_cluster(args.cores) as master:
                spark = engine.local_session(master, "portlens-bench-cluster")
                cluster_startup = time.perf_counter() - t
                try:
                    cluster_times, r, on_cluster = timed_runs(
                        spark, paths, os.path.join(tmp, "cluster-summary"), args.repeat)
                finally:
                    spark.stop()
            key = [(c, "ascending") for c in expected.column_names]
            cluster_same = (r.sessions == sessions and not r.errors and on_cluster.select(
                expected.column_names).sort_by(key).equals(expected.sort_by(key)))

    key = [(c, "ascending") for c in expected.column_names]
    same = (result.sessions == sessions and not result.errors
            and got.select(expected.column_names).sort_by(key).equals(expected.sort_by(key)))

    def line(name: str, times: list[float]) -> float:
        median = statistics.median(times)
        rate = sessions / median
        print(f"  {name:<22} median {median:7.2f}s  {rate:>12,.0f} sessions/s   "
              f"(runs: {', '.join(f'{x:.2f}' for x in times)})")
        return rate

    print(f"summary build, {sessions:,} sessions -> {expected.num_rows:,} summary rows, "
          f"median of {args.repeat}:")
    duck_rate = line("DuckDB (in process)", duck_times)
    spark_rate = line(f"Spark local[{args.cores}]", spark_times)
    print(f"  Spark / DuckDB throughput: {spark_rate / duck_rate:.2f}x   "
          f"(Spark session start-up {startup:.1f}s, not included)")
    print(f"  same summary: {'yes' if same else 'NO'}")
    if cluster_times:
        cluster_rate = line(f"Spark standalone ({args.cores} cores)", cluster_times)
        print(f"  cluster / local[{args.cores}] throughput: {cluster_rate / spark_rate:.2f}x   "
              f"(master + worker + session start-up {cluster_startup:.1f}s, not included); "
              f"same summary: {'yes' if cluster_same else 'NO'}")
    print("peak memory:")
    print(f"  this process, after DuckDB runs (RUSAGE_SELF)   {rss_after_duckdb:8.0f} MiB")
    print(f"  this process, after Spark runs (RUSAGE_SELF)    {rss_after_spark:8.0f} MiB")
    print(f"  Spark process tree, sampled (JVM + workers)     {tree.peak_kib / 1024:8.0f} MiB")
    print(f"  JVM and its workers, once reaped (RUSAGE_CHILDREN) {stop_jvm():5.0f} MiB")
    if not same or cluster_same is False:
        raise SystemExit("Spark and DuckDB summaries differ")


if __name__ == "__main__":
    main()
