"""Detection quality on a labeled benchmark: the `sentinel` profile against `improved`.

    python bench/quality.py                      # 1,000 keys x 140 days, 3 seeds; table + plot
    python bench/quality.py --keys 300 --seeds 1 # a quick run
    python bench/quality.py --out bench/quality  # where quality.md / quality.png / quality.json go
    python bench/quality.py --first-seed 3 --out /tmp/held-out   # other seeds (3-5): a check

The generator writes realistic daily session counts per key (one key = port, protocol,
direction, action): office-hours rhythms (quiet weekends), machine-like flat traffic and
mixes of both, holidays, slow trends and level shifts, over-dispersed noise (a gamma-Poisson,
i.e. negative binomial, draw per day), two sensor outages (no data at all) and a day of
partial data loss, keys that appear part-way and keys that go quiet, and quiet keys with a
few sessions a day. Into it go labeled incidents: one-day surges of x1.5, x2, x3, x5 and x10
(extra sessions on top of the day's normal traffic), five-day ramps, and bursts on quiet keys.

Both profiles are backtested day by day over the same evaluation days: `sentinel` through
portlens' own vectorised rule code (port_anomaly.score_series + port_anomaly.passes, the
14-day `series_decompose_anomalies(Total, 2.5, -1, 'linefit')` and its `toint(score) >= 5 and
toint(baseline) > 0` filter), `improved` through portlens.rules.improved.score_last_day. Each
evaluated key-day is either an incident day (an alert there is a hit) or normal (an alert is
a false alert), except the first 14 days of a key that just appeared, whose alerts are counted
apart ("new-key alerts": a new service is news, but not one of the injected incidents).
Outage days are read from the data as the rule reads them (no key has any session).

A third column, `ceiling`, is what a detector that knew each key's true mean and day-to-day
variation (the generator's own) would catch at the same threshold and minimum volume: the
score of the day's count on the negative binomial's variance-stabilising scale. No detector
that learns from the counts can do better on average; it tells what the benchmark allows.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

from portlens.rules import improved, port_anomaly

SURGE_SIZES = (1.5, 2.0, 3.0, 5.0, 10.0)
RAMP = (1.3, 1.6, 2.0, 2.5, 3.0)          # multipliers of a five-day ramp, day by day
QUIET_BURSTS = (10, 30, 100)              # extra sessions on a key that sees 0-3 a day
MIN_SURGE_LEVEL = 20                      # surges go on keys with >= 20 sessions on that day
EVAL_START = 63                           # first evaluated day: 9 weeks of history before it
NEW_KEY_GRACE = 14                        # days after a key appears whose alerts count apart


@dataclass
class Bench:
    counts: np.ndarray                    # (keys, days) daily session counts
    active: np.ndarray                    # (keys, days) the key exists (appeared, not gone)
    new_key: np.ndarray                   # (keys, days) within NEW_KEY_GRACE of appearing
    incidents: list[dict] = field(default_factory=list)  # kind, size, key, days
    truth: dict = field(default_factory=dict)            # what the generator did (for the text)
    mean: np.ndarray | None = None        # (keys, days) the traffic's intended mean, before noise
    cv: np.ndarray | None = None          # (keys,) its day-to-day variation (gamma factor CV)


def generate(n_keys: int = 1000, days: int = 140, seed: int = 0) -> Bench:
    """Daily counts for n_keys keys over `days` days with labeled incidents."""
    rng = np.random.default_rng(seed)
    day = np.arange(days)
    weekday = (day + 2) % 7                           # day 0 is a Wednesday; 5, 6 = Sat, Sun

    quiet = rng.random(n_keys) < 0.12
    level = np.where(quiet, np.exp(rng.uniform(np.log(0.2), np.log(3), n_keys)),
                     np.exp(rng.uniform(np.log(5), np.log(50_000), n_keys)))
    kind = rng.choice(["office", "machine", "mixed"], n_keys, p=[0.45, 0.35, 0.20])
    kind[quiet] = "machine"
    profile = np.ones((n_keys, 7))
    weekend = {"office": rng.uniform(0.12, 0.5, n_keys), "mixed": rng.uniform(0.55, 0.9, n_keys)}
    for k, low in weekend.items():
        rows = kind == k
        profile[rows, 5] = low[rows]
        profile[rows, 6] = low[rows] * rng.uniform(0.7, 1.0, rows.sum())
        profile[rows, 0] = rng.uniform(1.0, 1.15, rows.sum())     # Monday catch-up
        profile[rows, 4] = rng.uniform(0.8, 1.0, rows.sum())      # Friday afternoon
    profile *= rng.uniform(0.95, 1.05, (n_keys, 7))               # no weekday is exactly flat
    rhythm = profile[:, weekday]

    holidays = rng.choice(day[(weekday < 5) & (day > 7)], 3, replace=False)
    for h in holidays:
        rhythm[kind == "office", h] = profile[kind == "office", 6]
        rhythm[kind == "mixed", h] *= 0.8

    growth = np.clip(rng.normal(0, 0.003, n_keys), -0.008, 0.008)
    trend = np.exp(growth[:, None] * (day - days / 2))
    shifted = rng.random(n_keys) < 0.10                            # a config change: a step
    shift_day = rng.integers(10, days - 5, n_keys)
    step = np.where(shifted[:, None] & (day >= shift_day[:, None]),
                    rng.uniform(0.7, 1.3, n_keys)[:, None], 1.0)
    mean = level[:, None] * rhythm * trend * step                   # (keys, days) expected

    active = np.ones((n_keys, days), bool)
    appears = rng.random(n_keys) < 0.08
    start = np.where(appears, rng.integers(20, days - 10, n_keys), 0)
    gone = (rng.random(n_keys) < 0.05) & ~appears
    end = np.where(gone, rng.integers(30, days - 5, n_keys), days)
    active &= (day >= start[:, None]) & (day < end[:, None])
    new_key = appears[:, None] & (day >= start[:, None]) & (day < start[:, None] + NEW_KEY_GRACE)

    # Over-dispersion: a gamma-distributed day-to-day factor (CV c) under a Poisson draw,
    # i.e. a negative binomial count with variance mu + c^2 mu^2.
    cv = np.clip(np.exp(rng.normal(np.log(0.10), 0.45, n_keys)), 0.03, 0.35)
    shape = 1 / cv**2
    factor = rng.gamma(shape[:, None], 1 / shape[:, None], (n_keys, days))
    counts = rng.poisson(mean * factor * active).astype(np.int64)

    # Two sensor outages (no data for any key) and a day of partial loss (40-60% of every
    # key's sessions lost). Incidents are placed around them, not on them.
    candidates = day[EVAL_START - 30:]
    outages = rng.choice(candidates, 2, replace=False)
    counts[:, outages] = 0
    partial = int(rng.choice(np.setdiff1d(candidates, outages)))
    counts[:, partial] = rng.binomial(counts[:, partial], rng.uniform(0.4, 0.6))
    avoid = np.concatenate([holidays, outages, [partial]])

    incidents: list[dict] = []
    busy = np.zeros((n_keys, days), bool)                         # keep incidents apart

    def place(kinds_ok: np.ndarray, length: int, min_mean: float = 0.0) -> tuple[int, int] | None:
        for _ in range(200):
            key = int(rng.choice(np.flatnonzero(kinds_ok)))
            d0 = int(rng.integers(EVAL_START, days - length + 1))
            span = slice(d0, d0 + length)
            lo, hi = max(d0 - 14, 0), min(d0 + length + 14, days)
            if (active[key, max(d0 - 28, 0):d0 + length].all() and not busy[key, lo:hi].any()
                    and mean[key, span].min() >= min_mean
                    and not np.isin(np.arange(d0, d0 + length), avoid).any()):
                busy[key, span] = True
                return key, d0
        return None

    n_each = max(n_keys // 16, 4)
    for size in SURGE_SIZES:
        for _ in range(n_each):
            spot = place(~quiet, 1, MIN_SURGE_LEVEL)
            if spot:
                key, d0 = spot
                counts[key, d0] += rng.poisson((size - 1) * mean[key, d0])
                incidents.append({"kind": "surge", "size": size, "key": key, "days": [d0]})
    for _ in range(max(n_keys // 25, 4)):
        spot = place(~quiet, len(RAMP), MIN_SURGE_LEVEL)
        if spot:
            key, d0 = spot
            for i, m in enumerate(RAMP):
                counts[key, d0 + i] += rng.poisson((m - 1) * mean[key, d0 + i])
            incidents.append({"kind": "ramp", "size": RAMP[-1], "key": key,
                              "days": list(range(d0, d0 + len(RAMP)))})
    for size in QUIET_BURSTS:
        for _ in range(max(n_keys // 50, 3)):
            spot = place(quiet, 1)
            if spot:
                key, d0 = spot
                counts[key, d0] += size
                incidents.append({"kind": "quiet-burst", "size": size, "key": key, "days": [d0]})

    truth = {"holidays": sorted(int(h) for h in holidays), "outages": sorted(int(o) for o in outages),
             "partial_loss": partial, "quiet_keys": int(quiet.sum()), "new_keys": int(appears.sum()),
             "gone_keys": int(gone.sum()), "level_shifts": int(shifted.sum()),
             "cv_median": float(np.median(cv))}
    return Bench(counts, active, new_key, incidents, truth, mean * active, cv)


# ---- the two profiles, backtested over every evaluation day at once -------------------------

def windows(counts: np.ndarray, length: int, first: int) -> np.ndarray:
    """(keys * eval_days, length): for every evaluated day d >= first (day-major), the
    `length` days ending with d."""
    view = np.lib.stride_tricks.sliding_window_view(counts, length, axis=1)[:, first - length + 1:]
    return np.ascontiguousarray(view.transpose(1, 0, 2)).reshape(-1, length)


def outage_days(counts: np.ndarray) -> np.ndarray:
    """The rule's definition: a day on which no key has any session."""
    return counts.sum(axis=0) == 0


def sentinel(counts: np.ndarray, first: int) -> dict:
    """The rule as shipped over every evaluated day: score and baseline of the last bin of
    each 14-day window (day-major), and whether the key has a series at all."""
    days = port_anomaly.LOOKBACK_DAYS
    totals = windows(counts, days, first).astype(float)
    window = port_anomaly.Window(datetime(2024, 1, 1, tzinfo=timezone.utc), days)
    fit = port_anomaly.score_series(port_anomaly.Series(window, pa.table({}), totals))
    return {"score": fit["scores"][:, -1], "baseline": fit["baselines"][:, -1],
            "present": totals.any(axis=1)}          # KQL makes no series for an empty key


def sentinel_alerts(fit: dict, min_score: float = port_anomaly.MIN_SCORE) -> np.ndarray:
    """The rule's filter, toint(score) >= min_score and toint(baseline) > 0 (port_anomaly.passes
    at the shipped 5; other values sweep the threshold for the plot)."""
    if min_score == port_anomaly.MIN_SCORE:
        alert = port_anomaly.passes(fit["score"], fit["baseline"])
    else:
        score = np.trunc(np.nan_to_num(fit["score"], nan=-np.inf, posinf=-np.inf))
        alert = (score >= min_score) & port_anomaly.passes(np.full_like(score, 1e9), fit["baseline"])
    return alert & fit["present"]


def ceiling(bench: Bench, first: int, threshold: float, min_volume: int) -> np.ndarray:
    """Alert flags per evaluated key-day (day-major) of a detector that knows the generator's
    true mean and over-dispersion (theta = CV^2): the count's distance from the mean on the
    scale improved scores on, at improved's threshold and minimum volume."""
    days = np.arange(first, bench.counts.shape[1])
    count = bench.counts[:, days].T.astype(float)
    mean = bench.mean[:, days].T
    theta = np.broadcast_to(bench.cv[None, :] ** 2, mean.shape)
    score = improved._stabilise(count, theta) - improved._stabilise(mean, theta)
    return ((mean > 0) & (score >= threshold) & (count >= min_volume)).ravel()


def run_improved(counts: np.ndarray, first: int, params: improved.Params) -> improved.Scores:
    """improved.score_last_day over every evaluated day; Scores arrays are day-major. Outage
    days and collective dips (holidays, partial loss) are left out of each day's history;
    the day scored is silent only on an outage."""
    length = params.history_days + 1
    pad = max(length - first, 0)                      # not needed with EVAL_START >= history
    padded = np.pad(counts, ((0, 0), (pad, 0)))
    outage = outage_days(counts)
    left_out = np.pad(outage | improved.collective_dips(counts, outage), (pad, 0), constant_values=True)
    masks = np.lib.stride_tricks.sliding_window_view(left_out, length)[first + pad - length + 1:].copy()
    masks[:, -1] = outage[first:]
    totals = windows(padded, length, first + pad)
    n_keys = counts.shape[0]
    # Each evaluated day's keys are scored together (one as-of: group_size = the keys).
    return improved.score_last_day(totals, np.repeat(masks, n_keys, axis=0), params, group_size=n_keys)


# ---- scoring -------------------------------------------------------------------------------

def evaluate(bench: Bench, alerts: np.ndarray, first: int = EVAL_START) -> dict:
    """Hits per incident kind and size; false alerts on established keys' normal days; alerts
    in a new key's first days, counted apart."""
    days = bench.counts.shape[1]
    flags = np.zeros(bench.counts.shape, bool)
    flags[:, first:] = alerts.reshape(-1, bench.counts.shape[0]).T
    labeled = np.zeros(bench.counts.shape, bool)
    hits: dict[str, list[bool]] = {}
    two_plus = []
    for inc in bench.incidents:
        labeled[inc["key"], inc["days"]] = True
        caught = bool(flags[inc["key"], inc["days"]].any())
        name = (f"quiet-burst +{inc['size']:g}" if inc["kind"] == "quiet-burst"
                else f"{inc['kind']} x{inc['size']:g}")
        hits.setdefault(name, []).append(caught)
        if inc["kind"] == "surge" and inc["size"] >= 2:
            two_plus.append(caught)
    span = np.zeros(days, bool)
    span[first:] = True
    seen = bench.active & span & ~outage_days(bench.counts) & ~labeled
    normal = seen & ~bench.new_key
    return {
        "hits": {k: [int(sum(v)), len(v)] for k, v in sorted(hits.items(), key=_order)},
        "surge_2x_plus": [int(sum(two_plus)), len(two_plus)],
        "false_alerts": int((flags & normal).sum()),
        "normal_key_days": int(normal.sum()),
        "new_key_alerts": int((flags & seen & bench.new_key).sum()),
        "new_key_days": int((seen & bench.new_key).sum()),
    }


def _order(item):
    name = item[0]
    kind, size = name.split(" ")
    return (["surge", "ramp", "quiet-burst"].index(kind), float(size.strip("x+")))


def merge(results: list[dict]) -> dict:
    """Sum the per-seed results."""
    out = {"hits": {}}
    for r in results:
        for k, (h, n) in r["hits"].items():
            a = out["hits"].setdefault(k, [0, 0])
            a[0] += h
            a[1] += n
        for k in ("surge_2x_plus",):
            a = out.setdefault(k, [0, 0])
            a[0] += r[k][0]
            a[1] += r[k][1]
        for k in ("false_alerts", "normal_key_days", "new_key_alerts", "new_key_days"):
            out[k] = out.get(k, 0) + r[k]
    out["false_per_1000"] = 1000 * out["false_alerts"] / max(out["normal_key_days"], 1)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keys", type=int, default=1000)
    ap.add_argument("--days", type=int, default=140)
    ap.add_argument("--seeds", type=int, default=3, help="benchmarks generated (seeds FIRST..FIRST+N-1), summed")
    ap.add_argument("--first-seed", type=int, default=0, help="the first seed (0; 3 gives benchmarks not "
                    "looked at while the model was tuned)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "quality",
                    help="writes OUT.md (the table), OUT.png (the plot), OUT.json (every figure)")
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args(argv)
    if args.days < EVAL_START + 7:
        ap.error(f"--days must be at least {EVAL_START + 7}")

    params = improved.Params()
    sweeps = {"sentinel": (3, 4, 5, 6, 7), "improved": (3.0, 3.5, 3.8, 4.1, 4.5, 5.0, 6.0)}
    runs: dict[str, list[dict]] = {"sentinel": [], "improved": [], "ceiling": []}
    curves: dict[str, dict[float, list[dict]]] = {"sentinel": {}, "improved": {}}
    cpu = {"sentinel": 0.0, "improved": 0.0, "series": 0}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        bench = generate(args.keys, args.days, seed)
        t = time.process_time()
        fit = sentinel(bench.counts, EVAL_START)
        cpu["sentinel"] += time.process_time() - t
        t = time.process_time()
        scored = run_improved(bench.counts, EVAL_START, params)
        cpu["improved"] += time.process_time() - t
        cpu["series"] += scored.score.size
        runs["sentinel"].append(evaluate(bench, sentinel_alerts(fit)))
        runs["improved"].append(evaluate(bench, scored.alert))
        runs["ceiling"].append(evaluate(bench, ceiling(bench, EVAL_START, params.threshold, params.min_volume)))
        for th in sweeps["sentinel"]:
            curves["sentinel"].setdefault(th, []).append(evaluate(bench, sentinel_alerts(fit, th)))
        for th in sweeps["improved"]:
            curves["improved"].setdefault(th, []).append(
                evaluate(bench, improved.alerts(scored, th, params.min_volume)))
    result = {name: merge(r) for name, r in runs.items()}
    curve = {name: {th: merge(r) for th, r in c.items()} for name, c in curves.items()}
    table = render(result, args, bench.truth, cpu, params) + speed(bench, params)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.md").write_text(table)
    Path(f"{args.out}.json").write_text(json.dumps(
        {"args": {k: str(v) for k, v in vars(args).items()}, "params": params.__dict__, "result": result,
         "curve": {name: {str(th): v for th, v in c.items()} for name, c in curve.items()}}, indent=1))
    if not args.no_plot:
        plot(curve, result, Path(f"{args.out}.png"))
        print(f"table: {args.out}.md, plot: {args.out}.png")


def speed(bench: Bench, params: improved.Params, n: int = 100_000, repeat: int = 5) -> str:
    """Both scoring steps over n series in the same run (medians of `repeat`): the rule's
    14-day decomposition and filter, and improved on params.history_days + 1 days."""
    days = bench.counts.shape[1]
    rows = np.resize(np.arange(bench.counts.shape[0]), n)
    long = bench.counts[rows, days - params.history_days - 1:]
    short = long[:, -port_anomaly.LOOKBACK_DAYS:].astype(float)
    outage = outage_days(bench.counts)[days - params.history_days - 1:]
    window = port_anomaly.Window(datetime(2024, 1, 1, tzinfo=timezone.utc))
    steps = {
        "sentinel": lambda: _rule_last(port_anomaly.score_series(
            port_anomaly.Series(window, pa.table({}), short))),
        "improved": lambda: improved.score_last_day(long, outage, params),
    }
    out = {}
    for name, step in steps.items():
        wall, cpu = [], []
        for _ in range(repeat):
            w, c = time.perf_counter(), time.process_time()
            step()
            wall.append(time.perf_counter() - w)
            cpu.append(time.process_time() - c)
        out[name] = (float(np.median(wall)), float(np.median(cpu)))
    return (f"scoring {n:,} series (inner step, median of {repeat}, same run): sentinel "
            f"{out['sentinel'][0]:.3f} s wall / {out['sentinel'][1]:.3f} s CPU (14 days); improved "
            f"{out['improved'][0]:.3f} s wall / {out['improved'][1]:.3f} s CPU "
            f"({params.history_days + 1} days)\n")


def _rule_last(fit: dict) -> np.ndarray:
    return port_anomaly.passes(fit["scores"][:, -1], fit["baselines"][:, -1])


def _pct(hn) -> str:
    h, n = hn
    return f"{100 * h / n:.0f}% ({h}/{n})" if n else "-"


def render(result: dict, args, truth: dict, cpu: dict, params: improved.Params) -> str:
    s, m, c = result["sentinel"], result["improved"], result["ceiling"]

    def rate(r, key, days):
        return f"{1000 * r[key] / max(r[days], 1):.2f} ({r[key]})"

    lines = [f"{args.keys:,} keys x {args.days} days x {args.seeds} seeds; evaluated days "
             f"{EVAL_START}-{args.days - 1}: {s['normal_key_days']:,} normal key-days on established "
             f"keys, {s['new_key_days']:,} in new keys' first {NEW_KEY_GRACE} days; improved at "
             f"threshold {params.threshold:g}, min volume {params.min_volume}, {params.history_days} "
             f"days of history; seeds {args.first_seed}-{args.first_seed + args.seeds - 1}", "",
             "| incident (recall) | sentinel | improved | ceiling (true mean and noise known) |",
             "|---|---:|---:|---:|"]
    for k in s["hits"]:
        lines.append(f"| {k} | {_pct(s['hits'][k])} | {_pct(m['hits'][k])} | {_pct(c['hits'][k])} |")
    lines += [f"| **one-day surges x2 or more** | **{_pct(s['surge_2x_plus'])}** | "
              f"**{_pct(m['surge_2x_plus'])}** | {_pct(c['surge_2x_plus'])} |",
              f"| **false alerts per 1,000 key-days** (established keys) | "
              f"**{rate(s, 'false_alerts', 'normal_key_days')}** | **{rate(m, 'false_alerts', 'normal_key_days')}** | "
              f"{rate(c, 'false_alerts', 'normal_key_days')} |",
              f"| alerts per 1,000 key-days in a new key's first {NEW_KEY_GRACE} days | "
              f"{rate(s, 'new_key_alerts', 'new_key_days')} | {rate(m, 'new_key_alerts', 'new_key_days')} | "
              f"{rate(c, 'new_key_alerts', 'new_key_days')} |",
              "", f"CPU time of the scoring step (all {cpu['series']:,} evaluated key-days, inner step): "
              f"sentinel {cpu['sentinel']:.2f} s (14 days each), improved {cpu['improved']:.2f} s "
              f"({params.history_days} days each)",
              f"generator, last seed: {json.dumps(truth)}", ""]
    return "\n".join(lines)


def plot(curve: dict, result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for name, c, mark in (("sentinel", curve["sentinel"], "o"), ("improved", curve["improved"], "s")):
        th = sorted(c)
        fa = [c[t]["false_per_1000"] for t in th]
        rec = [100 * c[t]["surge_2x_plus"][0] / max(c[t]["surge_2x_plus"][1], 1) for t in th]
        ax.plot(fa, rec, marker=mark, label=f"{name} (threshold swept)")
        for t, x, y in zip(th, fa, rec):
            ax.annotate(f"{t:g}", (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
        r = result[name]
        ax.plot([r["false_per_1000"]], [100 * r["surge_2x_plus"][0] / r["surge_2x_plus"][1]],
                marker="*", markersize=14, color="black")
    ax.axhline(90, color="grey", lw=0.6, ls="--")
    ax.axvline(1, color="grey", lw=0.6, ls="--")
    ax.set_xscale("symlog", linthresh=0.1)
    ax.set_xlabel("false alerts per 1,000 key-days")
    ax.set_ylabel("recall of one-day surges x2 or more (%)")
    ax.set_title("sentinel vs improved (stars: shipped thresholds)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
