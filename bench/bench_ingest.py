"""End-to-end ingest benchmark: the whole `portlens ingest` command (a cold process, store and
summaries included) against the naive per-line Python script a user would write instead, on the
same generated file, in the same run.

    python bench/bench_ingest.py                         # every source, 1,000,000 lines, median of 3
    python bench/bench_ingest.py --lines 200000 --repeat 1 zeek fortinet asim-jsonl
    python bench/bench_ingest.py --detect                # + ASIM JSON lines ingest+detect vs pandas
    python bench/bench_ingest.py --growth 8 aws-vpc      # peak memory at 1M and at 8M lines

Workloads: every vendor source with a generator (bench/gen_<source>.py; its `baseline()` is the
naive parser), plus native ASIM rows from the demo generator as JSON lines (`asim-jsonl`), CSV
(`asim-csv`) and Parquet (`asim-parquet`, one row group per 1M rows as pyarrow writes by default;
`asim-parquet-groups`, row groups of 131,072 rows; no per-line baseline, the goal there is
sessions/s).
Each command runs in a fresh interpreter; its wall time, CPU time (user + system) and peak RSS
(max resident set size of the child, from wait4) are reported. The ratio is naive wall time /
portlens wall time: above 1 means `portlens ingest` is faster. portlens works on both cores, so
its CPU time can exceed its wall time. The machine is shared and noisy: read ratios and medians.

`--detect` adds the headline comparison: `portlens ingest` + `portlens detect` (two cold
commands) against one pandas script that reads the same JSON lines (`read_json`), counts per
day and key with `groupby` and fits each series in a loop, as a user would without portlens.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
END = datetime(2024, 5, 15, 6, 0, tzinfo=timezone.utc)
DEMO_SESSIONS_PER_SCALE = 262_000  # demo.generate(scale=1) yields about this many sessions
# workload -> file name; DuckDB reads a Parquet file's row groups on separate threads, so the
# row group size matters to Parquet's figure
ASIM = {"asim-jsonl": "sessions.jsonl", "asim-csv": "sessions.csv", "asim-parquet": "sessions.parquet",
        "asim-parquet-groups": "sessions-groups.parquet"}
PARQUET = ("asim-parquet", "asim-parquet-groups")


def generator(name: str):
    path = BENCH / f"gen_{name.replace('-', '_')}.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location(f"gen_{name.replace('-', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def vendor_sources() -> list[str]:
    return sorted(p.stem[4:].replace("_", "-") for p in BENCH.glob("gen_*.py"))


# ---- workloads --------------------------------------------------------------------------------

def write_vendor(name: str, path: str, n: int) -> None:
    gen = generator(name)
    with open(path, "w", encoding="utf-8") as f:
        for line in gen.lines(n, 7):
            f.write(line + "\n")


def write_asim(tmp: str, n: int) -> dict[str, str]:
    """The demo's 15 days of traffic (about n sessions) as JSON lines, CSV and Parquet."""
    import duckdb
    import pyarrow.parquet as pq
    from portlens import demo
    table = demo.generate(END, scale=n / DEMO_SESSIONS_PER_SCALE)
    paths = {k: f"{tmp}/{file}" for k, file in ASIM.items()}
    pq.write_table(table, paths["asim-parquet"])
    pq.write_table(table, paths["asim-parquet-groups"], row_group_size=131_072)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("t", table)
    times = ", ".join(f"strftime(\"{c}\", '%Y-%m-%dT%H:%M:%S.%fZ') AS \"{c}\""
                      for c in ("TimeGenerated", "EventStartTime", "EventEndTime") if c in table.column_names)
    con.execute(f"COPY (SELECT * REPLACE ({times}) FROM t) TO '{paths['asim-jsonl']}' (FORMAT json)")
    con.execute(f"COPY (SELECT * REPLACE ({times}) FROM t) TO '{paths['asim-csv']}' (FORMAT csv, HEADER)")
    return paths


# ---- naive baselines (run in a child process) -------------------------------------------------

def naive_asim_jsonl(path: str) -> int:
    """json.loads per line, validate the keys, count per day/port/protocol/direction/action."""
    counts: Counter = Counter()
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                r = json.loads(line)
                day = r["TimeGenerated"][:10]
                port = int(r["DstPortNumber"]) if r.get("DstPortNumber") is not None else None
            except (ValueError, KeyError, TypeError):
                continue
            counts[day, port, r.get("NetworkProtocol"), r.get("NetworkDirection"), r.get("DvcAction")] += 1
    return sum(counts.values())


def naive_asim_csv(path: str) -> int:
    """csv.DictReader, count per day/port/protocol/direction/action."""
    import csv
    counts: Counter = Counter()
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        for r in csv.DictReader(f):
            try:
                port = int(r["DstPortNumber"]) if r.get("DstPortNumber") else None
                day = r["TimeGenerated"][:10]
            except (ValueError, KeyError, TypeError):
                continue
            counts[day, port, r.get("NetworkProtocol"), r.get("NetworkDirection"), r.get("DvcAction")] += 1
    return sum(counts.values())


def pandas_detect(path: str) -> int:
    """What a user writes without portlens: read_json, daily counts per key with groupby, then
    one series at a time: a least-squares line, residual percentiles, the ctukey-style score."""
    import numpy as np
    import pandas as pd
    frame = pd.read_json(path, lines=True, dtype=False,
                         convert_dates=["TimeGenerated"])
    t = pd.to_datetime(frame["TimeGenerated"], utc=True)
    as_of = t.max().ceil("20min")
    frame["bin"] = ((t - (as_of - pd.Timedelta(days=14))) // pd.Timedelta(days=1)).astype("int64")
    frame = frame[(frame["bin"] >= 0) & (frame["bin"] < 14) & frame["DstPortNumber"].notna()]
    wide = frame.groupby(["DstPortNumber", "NetworkProtocol", "NetworkDirection", "DvcAction", "bin"]) \
        .size().unstack("bin", fill_value=0).reindex(columns=range(14), fill_value=0)
    x = np.arange(1, 15)
    alerts = 0
    for _, row in wide.iterrows():
        y = row.to_numpy(float)
        slope, intercept = np.polyfit(x, y, 1)
        base = slope * x + intercept
        r = y - base
        lo, hi = np.percentile(r, [10, 90])
        score = 1.5 * (r[-1] - hi) / (hi - lo) if r[-1] > hi and hi > lo else 0.0
        alerts += int(score >= 5 and base[-1] >= 1)
    return alerts


# ---- timing children --------------------------------------------------------------------------

def timed(cmd_for_run, repeat: int, fresh: list[str] = ()) -> dict:
    """Median wall time and max peak RSS over `repeat` cold runs (files in `fresh` removed first)."""
    runs = []
    for _ in range(repeat):
        for p in fresh:
            for q in (p, p + ".wal"):
                if os.path.exists(q):
                    os.remove(q)
        runs.append(run(cmd_for_run()))
    return {"seconds": statistics.median(r[0] for r in runs), "peak_mib": max(r[1] for r in runs),
            "cpu": statistics.median(r[3] for r in runs),
            "out": runs[-1][2]}


def child_env() -> dict:
    """The children's environment: Python's bytecode cache on (in a private folder), as in an
    installed package. With PYTHONDONTWRITEBYTECODE set (some shells and containers set it),
    every command would compile portlens' sources afresh, about 0.4 s that no installed copy
    pays. `warm_up` fills the cache once before anything is timed."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "portlens-bench-pycache")
    return env


def warm_up() -> None:
    """Compile every module a command imports into the bytecode cache (untimed)."""
    subprocess.run([sys.executable, "-c", "import portlens.cli, portlens.sources as s; s.all_sources()"],
                   env=child_env(), check=True)


def run(cmd: list[str]) -> tuple[float, float, str, float]:
    """Run a command in a fresh process: (wall seconds, its own peak RSS in MiB from wait4,
    stdout, its CPU seconds (user + system) from wait4)."""
    t = time.perf_counter()
    with tempfile.TemporaryFile() as errfile:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errfile, env=child_env())
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        errfile.seek(0)
        errtext = errfile.read()
    seconds = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"failed: {' '.join(cmd)}\n{errtext.decode(errors='replace')}")
    return seconds, usage.ru_maxrss / 1024, out.decode(errors="replace"), usage.ru_utime + usage.ru_stime



def naive_cmd(name: str, path: str) -> list[str]:
    return [sys.executable, __file__, "--naive", name, path]


def portlens_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "portlens", *args]


def growth(names: list[str], lines: int, k: int) -> None:
    """Memory flat in file size: the whole ingest's peak RSS on a file of `lines` lines and on
    one of k times as many (one cold run each)."""
    print(f"{'workload':<17}{'lines':>12}{'s':>8}{'peak MiB':>10}", flush=True)
    with tempfile.TemporaryDirectory(prefix="portlens-growth-") as tmp:
        db = f"{tmp}/bench.duckdb"
        for name in names:
            if generator(name) is None:
                continue
            for n in (lines, k * lines):
                path = f"{tmp}/{name}.log"
                write_vendor(name, path, n)
                # (--max-future: Azure NSG's generator steps 30 s a record on average, so past
                # about 3M records its times run beyond the clock and would be quarantined,
                # not stored; growth measures storing)
                ours = timed(lambda: portlens_cmd("ingest", path, "--db", db, "--max-future", "1e6"), 1, [db])
                print(f"{name:<17}{n:>12,}{ours['seconds']:>8.2f}{ours['peak_mib']:>10,.0f}", flush=True)
                os.remove(path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*", help="workloads (default: every vendor source and asim-*)")
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--detect", action="store_true", help="also ASIM JSON lines ingest+detect vs pandas")
    ap.add_argument("--growth", type=int, metavar="K",
                    help="instead: each vendor workload's peak memory at --lines and at K times as many")
    ap.add_argument("--naive", nargs=2, metavar=("NAME", "PATH"), help=argparse.SUPPRESS)
    ap.add_argument("--write-asim", nargs=2, metavar=("DIR", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.write_asim:
        write_asim(args.write_asim[0], int(args.write_asim[1]))
        return
    if args.naive:
        name, path = args.naive
        fn = {"asim-jsonl": naive_asim_jsonl, "asim-csv": naive_asim_csv,
              "pandas-detect": pandas_detect}.get(name) or generator(name).baseline
        print(json.dumps({"result": fn(path)}))
        return
    names = args.names or [*vendor_sources(), *ASIM]
    warm_up()
    if args.growth:
        growth(names, args.lines, args.growth)
        return
    print(f"{'workload':<20}{'lines':>10}{'portlens s':>11}{'cpu s':>7}{'lines/s':>11}{'MiB':>6}"
          f"{'naive s':>9}{'cpu s':>7}{'lines/s':>11}{'MiB':>6}{'ratio':>7}", flush=True)
    with tempfile.TemporaryDirectory(prefix="portlens-ingest-") as tmp:
        db = f"{tmp}/bench.duckdb"
        asim_paths = {k: f"{tmp}/{file}" for k, file in ASIM.items()}
        if any(n in ASIM for n in names) or args.detect:
            # Generated in a child: Linux carries a parent's peak RSS into the children it
            # starts, so this process must stay small for the children's figures to be theirs.
            run([sys.executable, __file__, "--write-asim", tmp, str(args.lines)])
        for name in names:
            if name in ASIM:
                path = asim_paths[name]
                with open(path, "rb") as f:
                    lines = sum(1 for _ in f) - (name == "asim-csv") if name not in PARQUET else None
                if lines is None:
                    import pyarrow.parquet as pq
                    lines = pq.ParquetFile(path).metadata.num_rows
            else:
                if generator(name) is None:
                    print(f"{name:<17} no generator")
                    continue
                path, lines = f"{tmp}/{name}.log", args.lines
                write_vendor(name, path, lines)
            ours = timed(lambda: portlens_cmd("ingest", path, "--db", db), args.repeat, [db])
            row = (f"{name:<20}{lines:>10,}{ours['seconds']:>11.2f}{ours['cpu']:>7.2f}"
                   f"{lines / ours['seconds']:>11,.0f}{ours['peak_mib']:>6,.0f}")
            if name in PARQUET:
                print(row + f"{'':>9}{'':>7}{'':>11}{'':>6}{'':>7}", flush=True)
            else:
                naive = timed(lambda: naive_cmd(name, path), args.repeat)
                print(row + f"{naive['seconds']:>9.2f}{naive['cpu']:>7.2f}{lines / naive['seconds']:>11,.0f}"
                      f"{naive['peak_mib']:>6,.0f}{naive['seconds'] / ours['seconds']:>7.2f}", flush=True)
            if name not in ASIM:
                os.remove(path)
        if args.detect:
            path = asim_paths["asim-jsonl"]
            ingest_runs, detect_runs, total = [], [], []
            for _ in range(args.repeat):
                for q in (db, db + ".wal"):
                    if os.path.exists(q):
                        os.remove(q)
                a = run(portlens_cmd("ingest", path, "--db", db))
                b = run(portlens_cmd("detect", "--db", db, "--format", "jsonl", "--output", f"{tmp}/alerts.jsonl"))
                ingest_runs.append(a), detect_runs.append(b), total.append(a[0] + b[0])
            pandas = timed(lambda: naive_cmd("pandas-detect", path), args.repeat)
            ours_s = statistics.median(total)
            ours_peak = max(r[1] for r in ingest_runs + detect_runs)
            print(f"\nASIM JSON lines ingest+detect: portlens {ours_s:.2f} s "
                  f"(ingest {statistics.median(r[0] for r in ingest_runs):.2f} s + detect "
                  f"{statistics.median(r[0] for r in detect_runs):.2f} s), peak {ours_peak:,.0f} MiB; "
                  f"pandas script {pandas['seconds']:.2f} s, peak {pandas['peak_mib']:,.0f} MiB; "
                  f"{pandas['seconds'] / ours_s:.2f}x faster at {ours_peak / pandas['peak_mib']:.2f} of its memory")


if __name__ == "__main__":
    sys.exit(main())
