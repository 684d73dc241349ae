"""Per-source parse throughput: for every source with a generator in bench/gen_<name>.py,
write N raw lines, then time portlens (source.parse -> ASIM rows + quarantine) and the
generator's naive per-line Python baseline on the same file, in the same process.

    python bench/bench_sources.py                  # 1,000,000 lines per source, median of 3
    python bench/bench_sources.py --lines 100000 --repeat 1 zeek cisco-asa

Prints lines/s and sessions/s for both and the ratio (naive time / portlens time; above 1
means portlens is faster). The machine is shared and noisy: compare ratios, not seconds.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

from portlens import sources
from portlens.sources.base import parse_file

BENCH = Path(__file__).resolve().parent


def generator(name: str):
    path = BENCH / f"gen_{name.replace('-', '_')}.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location(f"gen_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def portlens_parse(name: str, path: str) -> int:
    return sum(b.table.num_rows for b in parse_file(sources.get(name), path))


def timed(fn, repeat: int) -> tuple[float, int]:
    runs, result = [], 0
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs), result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*", help="sources to run (default: all with a generator)")
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    names = args.names or [n for n in sources.all_sources() if generator(n)]
    print(f"{'source':<17}{'lines':>10}{'rows':>10}{'portlens s':>12}{'lines/s':>11}"
          f"{'naive s':>9}{'lines/s':>11}{'ratio':>7}")
    with tempfile.TemporaryDirectory(prefix="portlens-src-") as tmp:
        for name in names:
            gen = generator(name)
            if gen is None:
                print(f"{name:<17} no generator")
                continue
            path = f"{tmp}/{name}.log"
            with open(path, "w", encoding="utf-8") as f:
                for line in gen.lines(args.lines, 7):
                    f.write(line + "\n")
            ours, rows = timed(lambda: portlens_parse(name, path), args.repeat)
            naive, _ = timed(lambda: gen.baseline(path), args.repeat)
            print(f"{name:<17}{args.lines:>10,}{rows:>10,}{ours:>12.2f}{args.lines / ours:>11,.0f}"
                  f"{naive:>9.2f}{args.lines / naive:>11,.0f}{naive / ours:>7.2f}", flush=True)
            Path(path).unlink()


if __name__ == "__main__":
    sys.exit(main())
