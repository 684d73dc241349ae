"""Shared by the benchmarks: run a named phase of a benchmark script in a fresh interpreter
(so its peak RSS is its own) and take medians over repeats."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys


def run_phase(phases: dict, name: str, args) -> None:
    """In the child: run the phase and print its figures plus peak RSS (MiB) as JSON."""
    result = phases[name](args)
    result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps(result))


def child(script: str, name: str, **kw) -> dict:
    """In the parent: run `script --phase name --k=v ...`; its figures, or exit with its error."""
    cmd = [sys.executable, script, "--phase", name] + [f"--{k.replace('_', '-')}={v}" for k, v in kw.items()]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"phase {name} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def median_of(script: str, repeat: int, name: str, fresh_db: bool = False, **kw) -> dict:
    """Median seconds and max peak memory over `repeat` child runs (a fresh store each time
    with fresh_db)."""
    runs = []
    for _ in range(repeat):
        if fresh_db:
            for p in (kw["db"], kw["db"] + ".wal"):
                if os.path.exists(p):
                    os.remove(p)
        runs.append(child(script, name, **kw))
    out = dict(runs[0])
    out["seconds"] = statistics.median(r["seconds"] for r in runs)
    out["peak_mib"] = max(r["peak_mib"] for r in runs)
    return out
