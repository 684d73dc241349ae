"""Summary-tier benchmark: summary build throughput in DuckDB, and detect from summaries vs
from raw sessions over 14 days of generated traffic (default ~50M sessions), each with its
peak memory. Spark local-mode throughput on the same kind of files: bench/bench_spark.py.

    python bench/bench_tiers.py               # ~50M sessions (takes a while: the ingest)
    python bench/bench_tiers.py --scale 10    # ~2.7M sessions

Phases run in child processes so each peak RSS is its own; timings are medians of --repeat.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timedelta, timezone

from _phases import child, median_of, run_phase

END = datetime(2024, 5, 15, 6, 0, tzinfo=timezone.utc)


def phase_build(args) -> dict:
    """Generate one Parquet file per day and ingest them all (summaries built at ingest)."""
    import pyarrow.parquet as pq
    from portlens import demo
    from portlens.store import Store
    seconds, sessions = 0.0, 0
    with Store(args.db) as store:
        store.set_retention(raw_days=400, summary_days=400)
        for day in range(15):
            table = demo.generate(END - timedelta(days=14 - day), days=1, seed=day, scale=args.scale,
                                  inject=day == 14)
            path = f"{args.dir}/day{day:02d}.parquet"
            pq.write_table(table, path)
            del table
            t = time.perf_counter()
            sessions += store.ingest(path, apply_retention=False).sessions
            seconds += time.perf_counter() - t
    return {"seconds": seconds, "sessions": sessions}


def phase_summarize(args) -> dict:
    from portlens.store import Store
    with Store(args.db) as store:
        sessions = store.status()["sessions"]
        t = time.perf_counter()
        rows = store.summarize()
    return {"seconds": time.perf_counter() - t, "sessions": sessions, "summary_rows": rows}


def phase_detect(args) -> dict:
    import portlens
    from portlens import monitor
    from portlens.store import Store
    with Store(args.db, read_only=True) as store:
        t = time.perf_counter()
        # The anomaly rule alone, as the figures in bench/README were measured.
        result = portlens.detect(store, config=monitor.load_config(None), as_of=END, tier=args.tier,
                                 explain=False, static=False)
    return {"seconds": time.perf_counter() - t, "alerts": len(result.alerts), "series": result.series_count}


PHASES = {"build": phase_build, "summarize": phase_summarize, "detect": phase_detect}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--phase")
    ap.add_argument("--scale", type=float, default=190.0, help="demo traffic multiplier (190 = ~50M sessions)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--db"), ap.add_argument("--dir"), ap.add_argument("--tier")
    args = ap.parse_args()
    if args.phase:
        run_phase(PHASES, args.phase, args)
        return
    with tempfile.TemporaryDirectory(prefix="portlens-tiers-") as tmp:
        db = f"{tmp}/tiers.duckdb"
        built = child(__file__, "build", scale=args.scale, db=db, dir=tmp)
        print(f"ingest (with summaries) {built['sessions']:>12,} sessions  {built['seconds']:7.1f} s  "
              f"{built['sessions'] / built['seconds']:>10,.0f} sessions/s  peak {built['peak_mib']:,.0f} MiB")
        s = median_of(__file__, args.repeat, "summarize", db=db)
        print(f"summary rebuild         {s['sessions']:>12,} sessions  {s['seconds']:7.1f} s  "
              f"{s['sessions'] / s['seconds']:>10,.0f} sessions/s  peak {s['peak_mib']:,.0f} MiB  "
              f"({s['summary_rows']:,} rows)")
        tiers = {t: median_of(__file__, args.repeat, "detect", db=db, tier=t) for t in ("summaries", "raw")}
        for t, r in tiers.items():
            print(f"detect from {t:<10}  {r['series']:>12,} series    {r['seconds']:7.3f} s  "
                  f"alerts {r['alerts']}  peak {r['peak_mib']:,.0f} MiB")
        print(f"  ratio: detect from summaries is {tiers['raw']['seconds'] / tiers['summaries']['seconds']:.0f}x "
              f"faster than from raw sessions")


if __name__ == "__main__":
    main()
