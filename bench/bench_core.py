"""Core benchmark: ingest throughput and peak memory, and detect time over 100,000+ series,
each next to a straightforward baseline run in the same process on the same data.

    python bench/bench_core.py                 # 10M sessions, 1M JSON lines, 100k series
    python bench/bench_core.py --quick         # a small smoke run

Each phase runs in a child process so its peak memory (max RSS) is its own. Figures are
medians of --repeat runs; ratios compare portlens with the baseline on the same input.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from _phases import child, median_of, run_phase

END = datetime(2024, 5, 15, 6, 0, tzinfo=timezone.utc)


# ---- phases (each run in a child process) --------------------------------------------------

def phase_generate(args) -> dict:
    import pyarrow.parquet as pq
    from portlens import demo
    from portlens.cli import _write_jsonl
    table = demo.generate(END, scale=args.scale)
    pq.write_table(table, args.parquet)
    _write_jsonl(table.slice(0, args.json_rows), Path(args.jsonl))
    return {"sessions": table.num_rows, "json_rows": min(args.json_rows, table.num_rows)}


def phase_ingest(args) -> dict:
    from portlens.store import Store
    t = time.perf_counter()
    with Store(args.db) as store:
        r = store.ingest(args.input)
    return {"seconds": time.perf_counter() - t, "sessions": r.sessions}


def phase_naive_jsonl(args) -> dict:
    """The straightforward way: json.loads per line, validate in Python, batch insert."""
    import duckdb
    import pandas as pd
    from portlens import asim
    keep = list(asim.COLUMNS)
    actions = set(asim.DVC_ACTIONS)
    t = time.perf_counter()
    con = duckdb.connect(args.db)
    rows, bad = [], 0
    with open(args.input, encoding="utf-8") as f:
        for line in f:
            try:
                rec = json.loads(line)
                port = rec.get("DstPortNumber")
                if port is not None and not 0 <= int(port) <= 65535:
                    raise ValueError
                if rec.get("DvcAction") not in actions | {None}:
                    raise ValueError
                rec["TimeGenerated"] = datetime.fromisoformat(rec["TimeGenerated"].replace("Z", "+00:00"))
                rows.append({k: rec.get(k) for k in keep})
            except (ValueError, KeyError, TypeError):
                bad += 1
    frame = pd.DataFrame(rows, columns=keep)  # noqa: F841 (read by DuckDB by name below)
    con.execute("CREATE TABLE sessions AS SELECT * FROM frame")
    con.close()
    return {"seconds": time.perf_counter() - t, "sessions": len(rows)}


def _series_input(n_series: int, seed: int = 5):
    """Daily counts for n_series keys over 14 days, as the store's daily_counts returns them."""
    import pyarrow as pa
    rng = np.random.default_rng(seed)
    totals = rng.poisson(rng.gamma(2, 50, (n_series, 1)), (n_series, 14))
    totals[rng.random(n_series) < 0.01, -1] *= 20
    k, day = np.nonzero(totals)
    ports = 1 + k // 4
    combos = [("TCP", "Inbound", "Allow"), ("TCP", "Inbound", "Deny"), ("UDP", "Outbound", "Allow"),
              ("TCP", "Local", "Allow")]
    c = np.array(combos)[k % 4]
    return pa.table({"DstPortNumber": pa.array(ports, pa.int32()), "NetworkProtocol": c[:, 0],
                     "NetworkDirection": c[:, 1], "DvcAction": c[:, 2],
                     "bin": pa.array(day, pa.int32()), "n": pa.array(totals[k, day])})


def phase_detect(args) -> dict:
    import portlens
    from portlens import monitor
    from portlens.rules import port_anomaly as rule
    counts = _series_input(args.series)
    cfg = monitor.load_config(None)
    t = time.perf_counter()
    series = rule.daily_series(counts, rule.Window(END))
    result = portlens.detect(series, config=cfg)
    return {"seconds": time.perf_counter() - t, "series": series.totals.shape[0],
            "survivors": result.anomalous.num_rows}


def phase_naive_detect(args) -> dict:
    """pandas pivot, then one series at a time: OLS line, residual percentiles, ctukey score."""
    import pandas as pd
    frame = _series_input(args.series).to_pandas()
    t = time.perf_counter()
    wide = frame.pivot_table(index=["DstPortNumber", "NetworkProtocol", "NetworkDirection", "DvcAction"],
                             columns="bin", values="n", aggfunc="sum", fill_value=0)
    wide = wide.reindex(columns=range(14), fill_value=0)
    x = np.arange(1, 15)

    def last_score(row):
        y = row.to_numpy(float)
        slope, intercept = np.polyfit(x, y, 1)
        base = slope * x + intercept
        r = y - base
        lo, hi = np.percentile(r, [10, 90])
        s = 0.0
        if r[-1] > hi:
            s = 2.772605605507915 * (r[-1] - hi) / (hi - lo) if hi > lo else np.inf
        return pd.Series({"score": s, "baseline": base[-1]})

    scored = wide.apply(last_score, axis=1)
    survivors = int(((np.trunc(scored["score"]) >= 5) & (np.trunc(scored["baseline"]) > 0)).sum())
    return {"seconds": time.perf_counter() - t, "series": len(wide), "survivors": survivors}


PHASES = {"generate": phase_generate, "ingest": phase_ingest, "naive_jsonl": phase_naive_jsonl,
          "detect": phase_detect, "naive_detect": phase_naive_detect}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--phase")
    ap.add_argument("--scale", type=float, default=40.0, help="demo traffic multiplier (40 = ~10.5M sessions)")
    ap.add_argument("--json-rows", type=int, default=1_000_000)
    ap.add_argument("--series", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--parquet"), ap.add_argument("--jsonl"), ap.add_argument("--db"), ap.add_argument("--input")
    args = ap.parse_args()
    if args.phase:
        run_phase(PHASES, args.phase, args)
        return
    if args.quick:
        args.scale, args.json_rows, args.series, args.repeat = 1.0, 100_000, 10_000, 1
    with tempfile.TemporaryDirectory(prefix="portlens-bench-") as tmp:
        parquet, jsonl, db = f"{tmp}/sessions.parquet", f"{tmp}/sessions.jsonl", f"{tmp}/bench.duckdb"
        gen = child(__file__, "generate", scale=args.scale, json_rows=args.json_rows, parquet=parquet, jsonl=jsonl)
        print(f"workload: {gen['sessions']:,} sessions (Parquet), {gen['json_rows']:,} as JSON lines")
        big = median_of(__file__, 1, "ingest", fresh_db=True, db=db, input=parquet)
        print(f"ingest Parquet   {gen['sessions']:>12,} sessions  {big['seconds']:7.1f} s  "
              f"{big['sessions'] / big['seconds']:>10,.0f} sessions/s  peak {big['peak_mib']:,.0f} MiB")
        ours = median_of(__file__, args.repeat, "ingest", fresh_db=True, db=db, input=jsonl)
        naive = median_of(__file__, args.repeat, "naive_jsonl", fresh_db=True, db=db, input=jsonl)
        for label, r in (("ingest JSONL", ours), ("naive JSONL", naive)):
            print(f"{label:<16} {r['sessions']:>12,} sessions  {r['seconds']:7.1f} s  "
                  f"{r['sessions'] / r['seconds']:>10,.0f} sessions/s  peak {r['peak_mib']:,.0f} MiB")
        print(f"  ratio: portlens ingests JSON lines {naive['seconds'] / ours['seconds']:.1f}x faster than the per-line loop")
        det = median_of(__file__, args.repeat, "detect", series=args.series)
        ref = median_of(__file__, args.repeat, "naive_detect", series=args.series)
        for label, r in (("detect", det), ("pandas detect", ref)):
            print(f"{label:<16} {r['series']:>12,} series    {r['seconds']:7.3f} s  "
                  f"survivors {r['survivors']:,}  peak {r['peak_mib']:,.0f} MiB")
        print(f"  ratio: portlens detect is {ref['seconds'] / det['seconds']:.0f}x faster than pandas per series")


if __name__ == "__main__":
    main()
