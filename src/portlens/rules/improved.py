"""The `improved` profile: portlens' own detector over the same daily counts as the rule.

The Sentinel rule fits a line through all 14 days with the day under test included and scores
the residuals with ctukey, so one end spike scores about 5.9 however large it is, and quiet
weekends widen the spread. This model scores the last day against what the days *before* it
predict (KQL's `test_points` idea), with everything a count series needs:

  weeks     the history is cut into 7-day blocks ending yesterday; a block's level is the
            mean of its de-seasonalised days (blocks with 4 usable days or more).
  weekday   each weekday's factor is the median over the blocks of (count / block level),
            used once every weekday has season_weeks values, normalised to a mean of 1 and
            pulled towards 1 by its own estimation noise (James-Stein): a flat key keeps a
            flat profile, an office key its quiet weekends.
  level     a robust mean (Huber: clipped at huber MADs) of the de-seasonalised last
            level_days days, moved to today by the growth since the oldest days (capped).
  noise     negative binomial: Var = mu + theta mu^2. On the square-root scale a Poisson
            count has variance ~1 whatever its size (Anscombe), so what the residuals
            against block level x weekday factor show beyond 1 is over-dispersion (a clipped
            mean of squares). Each key's theta is then moderated towards the median theta of
            the keys scored with it (empirical Bayes, as limma moderates variances): a key
            whose history happens to look calm is not taken for a noiseless one.
  score     the difference between today and expected on the negative binomial's variance-
            stabilising scale, over its standard deviation (today's noise plus the
            uncertainty of the expected value); theta is itself estimated, so the score is a
            Student t (residual degrees of freedom plus the prior's), reported as the normal
            score with the same tail: short histories score lower.
  alert     score >= threshold, today's count >= min_volume, >= min_history usable days,
            and the day is not an outage.

Outage days (no data at all) and the days before a key was first seen are left out of the
fit; so are collective dips (holidays, partial data loss: `collective_dips`) when the caller
marks them. A few vectorised NumPy passes over an (n_series, days) array.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from statistics import NormalDist

import numpy as np
import pyarrow as pa

from ..alerts import Alert, AlertBuilder, AlertSeries, AlertWindow
from .port_anomaly import TECHNIQUES, Series, Window, outage_days

# An improved alert is portlens' own, not the Sentinel rule's: its own rule identity (and so
# its own alert ids: a store's outbox keeps both profiles' alerts of the same day apart).
RULE_ID = "portlens-port-anomaly-improved"
RULE_NAME = "Detect port misuse by anomaly (portlens improved profile)"
RULE_VERSION = "1.0"

#: Median of a squared standard normal: median(Z^2) = 0.4549 * Var(Z).
_MEDIAN_CHI2_1 = 0.454936
#: Squared residuals are clipped at this many (first, median-based) standard deviations;
#: E[min(Z^2, c^2)] for a standard normal Z keeps the clipped mean consistent.
_CLIP = 2.5
_CLIPPED_CHI2_1 = ((1 - 2 * NormalDist().cdf(-_CLIP)) - 2 * _CLIP * NormalDist().pdf(_CLIP)
                   + 2 * _CLIP ** 2 * NormalDist().cdf(-_CLIP))
#: Growth per day is capped at 2% (x1.8 a month): beyond that it is a change, not a trend.
_MAX_GROWTH = 0.02
#: The variance of a median of n normal values is about pi/2 / n of one value's; of a
#: Huber mean about 1.1 / n.
_MEDIAN_EFFICIENCY = np.pi / 2
_HUBER_EFFICIENCY = 1.1
#: A block (week) counts towards the profile and the noise with this many usable days.
_BLOCK_DAYS = 4
#: Keys with more usable days than this set the over-dispersion prior of their group.
_PRIOR_MIN_DAYS = 14

# Why a series did or did not alert on its last day (Scores.reason).
ALERT, WITHIN, LOW_VOLUME, SHORT_HISTORY, OUTAGE = 0, 1, 2, 3, 4
REASONS = {
    ALERT: "above the expected interval",
    WITHIN: "within the expected interval",
    LOW_VOLUME: "below the minimum volume",
    SHORT_HISTORY: "too little history",
    OUTAGE: "no data that day (outage)",
}


@dataclass(frozen=True)
class Params:
    history_days: int = 56      # days before the scored day the model may learn from
    min_history: int = 7        # usable days (seen, not outage) needed to score at all
    season_weeks: int = 2       # values per weekday needed for a weekly profile
    level_days: int = 14        # the level is read from this many most recent days
    threshold: float = 4.1      # score needed to alert (normal-equivalent)
    min_volume: int = 10        # today's count needed to alert
    smoothing: float = 1.0      # added to counts and levels so tiny counts give a flat profile
    trend: bool = True          # carry the level by its growth over the history
    huber: float = 2.5          # the level's days are clipped at this many MADs from their median
    prior_days: float = 16.0    # days of evidence the group's median over-dispersion counts for
    prior_theta: float | None = None  # that prior itself; None: the median of the group


@dataclass
class Scores:
    """Per series (the last day of each row): score, expected count and its interval (the
    counts whose score stays below the threshold), the alert flag and why."""
    count: np.ndarray           # today's count
    score: np.ndarray           # NaN where the model is silent for lack of history / outage
    expected: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    alert: np.ndarray           # bool
    reason: np.ndarray          # one of REASONS' keys
    history: np.ndarray         # usable history days
    seasonal: np.ndarray        # bool: a weekly profile was used
    weekday_factor: np.ndarray  # the scored weekday's factor (1 without a profile)
    variance: np.ndarray        # of the score's numerator, on the stabilised scale
    theta: np.ndarray           # negative binomial over-dispersion: Var = mu + theta mu^2


def score_last_day(counts, outage=None, params: Params = Params(), group_size: int | None = None) -> Scores:
    """Score the last column of `counts` (n_series, days) against the columns before it.

    `outage` marks days without data (True = left out): shape (days,) for all series or
    (n_series, days). Only the last params.history_days days before the scored day are used.
    `group_size`: the rows are consecutive groups of this many series scored together (the
    keys of one as-of); each group's median over-dispersion is its prior (params.prior_theta
    fixes it instead). None: all rows are one group.
    """
    x = np.asarray(counts, dtype=float)
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError("counts must be (series, days) with at least one day of history")
    if not np.isfinite(x).all() or (x < 0).any():
        raise ValueError("counts must be finite and not negative")
    out = np.zeros(x.shape, bool) if outage is None else np.broadcast_to(np.asarray(outage, bool), x.shape)
    today, today_out = x[:, -1], out[:, -1]
    hist, hist_out = x[:, :-1][:, -params.history_days:], out[:, :-1][:, -params.history_days:]
    n, h = hist.shape
    lag = h - np.arange(h)                                 # 1 = yesterday
    usable = ~hist_out
    usable &= np.logical_or.accumulate((hist > 0) & usable, axis=1)   # not before first seen
    n_usable = usable.sum(axis=1)

    # Blocks of 7 days ending yesterday: (n, 7, weeks) by weekday (0 = today's) and block.
    weekday, week = lag % 7, (lag - 1) // 7
    weeks = int(week.max()) + 1 if h else 0
    grid = np.full((7, weeks), -1)
    grid[weekday, week] = np.arange(h)
    cols = np.maximum(grid, 0)
    by_day = hist[:, cols]
    ok = usable[:, cols] & (grid >= 0)
    in_week = ok.sum(axis=1)                                        # (n, weeks)
    full = in_week >= _BLOCK_DAYS
    ratio_ok = ok & full[:, None, :]
    per_weekday = ratio_ok.sum(axis=2)                              # (n, 7)
    seasonal = per_weekday.min(axis=1) >= params.season_weeks

    # Weekly profile: each weekday's median ratio to its block's level; the block levels are
    # read twice, the second time de-seasonalised by the first profile. (Ratios and residuals
    # are worked in single precision: half the memory to move and sort, and a median or a
    # mean of squares needs no more digits.)
    counted = np.where(ok, by_day, 0.0)
    days_in = np.maximum(in_week, 1)
    shifted = (by_day + params.smoothing).astype(np.float32)
    block = counted.sum(axis=1) / days_in
    for second in (False, True):
        ratio = shifted / (block[:, None, :] + params.smoothing).astype(np.float32)
        medians = np.where(seasonal[:, None], _median(ratio, ratio_ok).astype(float), 1.0)
        factor = medians / medians.mean(axis=1, keepdims=True)
        if not second:
            block = (counted / factor[:, :, None]).sum(axis=1) / days_in
    # Noise. On the square-root scale a Poisson count has variance ~1 whatever its size
    # (Anscombe); what the residuals against block level x weekday factor show beyond that is
    # over-dispersion, the negative binomial's theta in Var = mu + theta mu^2. A block's level
    # is fitted from its own days, and each weekday factor from that weekday's own ratios,
    # which shrinks the residuals by (1 - 1/days - 1/weeks).
    fitted = (block[:, None, :] * factor[:, :, None]).astype(np.float32)
    root = np.sqrt(by_day.astype(np.float32) + np.float32(0.375))
    square = np.square(root - np.sqrt(fitted + np.float32(0.375)), out=root) * np.float32(4)
    square /= np.maximum(1 - 1 / days_in[:, None, :]
                         - np.where(seasonal[:, None], 1 / np.maximum(per_weekday, 1), 0.0)[:, :, None],
                         0.25).astype(np.float32)
    square, used = square.reshape(n, -1), ratio_ok.reshape(n, -1)
    first = _median(square, used) / np.float32(_MEDIAN_CHI2_1)                 # a first scale
    residuals = used.sum(axis=1)
    mean_square = (np.where(used, np.minimum(square, np.float32(_CLIP ** 2) * first[:, None]), 0.0)
                   .sum(axis=1, dtype=float) / np.maximum(residuals, 1) / _CLIPPED_CHI2_1)
    level_now = (block * full).sum(axis=1) / np.maximum(full.sum(axis=1), 1)   # of the full blocks
    theta = np.where(residuals > 0, np.maximum(mean_square - 1.0, 0.0) / np.maximum(level_now, 1.0), 0.0)
    df = np.maximum(residuals - full.sum(axis=1) - 6 * seasonal, 1.0)
    # Moderated towards the group's typical over-dispersion, worth prior_days residuals.
    prior = _prior(theta, n_usable > _PRIOR_MIN_DAYS, n if group_size is None else group_size, params)
    weight = params.prior_days * (prior > 0)                        # no prior, no moderation
    theta = np.maximum((df * theta + weight * prior) / (df + weight), 1e-9)
    df = df + weight

    # The weekday factors, pulled towards 1 by their own noise (James-Stein): each is a median
    # of per_weekday ratios of relative variance theta + 1/level.
    noise = _MEDIAN_EFFICIENCY * (theta + 1 / np.maximum(level_now, 1.0))[:, None] / np.maximum(per_weekday, 1)
    signal = ((factor - 1) ** 2).sum(axis=1)
    keep = np.where(seasonal, np.clip(1 - noise.sum(axis=1) / np.maximum(signal, 1e-12), 0.0, 1.0), 0.0)
    factor = 1 + (factor - 1) * keep[:, None]
    factor /= factor.mean(axis=1, keepdims=True)
    flat = hist / factor[:, weekday]                                 # de-seasonalised

    # Level: a Huber mean of the most recent days (all usable days if few), moved to today
    # by the growth since the oldest blocks of the history.
    k = min(params.level_days, h)
    recent_count = usable[:, -k:].sum(axis=1)
    enough_recent = recent_count >= min(params.min_history, params.level_days)
    level = _huber_mean(flat[:, -k:], usable[:, -k:], params.huber)
    few = np.flatnonzero(~enough_recent)
    level[few] = _huber_mean(flat[few], usable[few], params.huber)
    n_level = np.where(enough_recent, recent_count, n_usable)
    old = -(-params.level_days // 7)                                 # blocks as long as the level's days
    if params.trend and weeks >= 3 * old:
        older_full = full[:, -old:]
        older = (block[:, -old:] * older_full).sum(axis=1) / np.maximum(older_full.sum(axis=1), 1)
        grown = older_full.all(axis=1) & (older > 0) & (level > 0)
        distance = 7 * (weeks - old) - (params.level_days - 7 * old) / 2   # between their centres
        growth = np.log(np.where(grown, level, 1.0) / np.where(grown, older, 1.0)) / distance
        level = level * np.exp(np.clip(growth, -_MAX_GROWTH, _MAX_GROWTH) * (params.level_days + 1) / 2)
    expected = level * factor[:, 0]

    # The expected value carries the level's uncertainty (a Huber mean of n_level days) and
    # the weekday factor's (a median of per_weekday ratios, each against a block level).
    variance = (1.0 + _HUBER_EFFICIENCY / np.maximum(n_level, 1)
                + keep * _MEDIAN_EFFICIENCY * (1 + 1 / 7) / np.maximum(per_weekday[:, 0], 1))
    enough = (n_usable >= params.min_history) & np.isfinite(expected) & ~today_out
    sd = np.sqrt(variance)
    centre = _stabilise(np.where(enough, expected, 0.0), theta)
    t = (_stabilise(today, theta) - centre) / sd
    # theta is an estimate: t is a Student t with df degrees of freedom, given as the normal
    # score with the same tail (Wallace's approximation).
    score = np.where(enough, np.sign(t) * np.sqrt((df - 0.5) * np.log1p(t * t / df)), np.nan)
    width = np.sqrt(df * np.expm1(params.threshold ** 2 / (df - 0.5))) * sd
    upper = np.where(enough, _unstabilise(centre + width, theta), np.nan)
    lower = np.where(enough, _unstabilise(np.maximum(centre - width, 0.0), theta), np.nan)
    scores = Scores(count=today, score=score, expected=np.where(enough, expected, np.nan),
                    lower=np.maximum(lower, 0.0), upper=upper, alert=np.zeros(n, bool),
                    reason=np.zeros(n, np.int8), history=n_usable, seasonal=seasonal & (keep > 0),
                    weekday_factor=factor[:, 0], variance=variance, theta=theta)
    scores.alert, scores.reason = _decide(scores, params.threshold, params.min_volume,
                                          n_usable >= params.min_history, today_out)
    return scores


def _prior(theta: np.ndarray, counted: np.ndarray, group_size: int, params: Params) -> np.ndarray:
    """Per row, the over-dispersion its estimate is moderated towards: params.prior_theta, or
    the median theta of the rows of its group with enough history (0, no moderation, in a
    group without any)."""
    if params.prior_theta is not None:
        return np.full(theta.shape, float(params.prior_theta))
    size = max(int(group_size), 1)
    if len(theta) % size:
        raise ValueError(f"{len(theta)} series are not groups of {size}")
    groups = theta.reshape(-1, size)
    median = np.nan_to_num(_median(groups, counted.reshape(-1, size)), nan=0.0)
    return np.repeat(median, size)


def collective_dips(counts, outage=None, *, ratio: float = 0.6, share: float = 0.2,
                    min_typical: float = 20.0) -> np.ndarray:
    """Days (of a (series, days) matrix) on which many series dip together: a holiday, or a
    day of partial data loss. A series dips when it has under `ratio` of its median for that
    weekday over the four weeks before; a day is a collective dip when at least `share` of
    the series with a typical day of min_typical or more dip on it. Only earlier days are
    read, so a backtest sees what a run on that day saw. Such days are best left out of the
    fit like outages (they would drag a weekday's profile down), but still scored."""
    x = np.asarray(counts, dtype=float)
    out = np.zeros(x.shape[1], bool) if outage is None else np.asarray(outage, bool)
    days = x.shape[1]
    lags = np.stack([np.pad(x, ((0, 0), (7 * w, 0)), constant_values=np.nan)[:, :days]
                     for w in range(1, 5)], axis=-1)                 # (series, days, 4)
    ok = np.isfinite(lags) & ~np.stack([np.pad(out, (7 * w, 0), constant_values=True)[:days]
                                        for w in range(1, 5)], axis=-1)[None]
    typical = _median(np.nan_to_num(lags), ok)
    counted = typical >= min_typical
    dipped = counted & (x < ratio * typical)
    voters = counted.sum(axis=0)
    return ~out & (voters > 0) & (dipped.sum(axis=0) >= share * np.maximum(voters, 1))


def alerts(scores: Scores, threshold: float, min_volume: int) -> np.ndarray:
    """The alert flags of already computed scores at another threshold / minimum volume
    (a threshold sweep costs no second fit)."""
    return (np.nan_to_num(scores.score, nan=-np.inf) >= threshold) & (scores.count >= min_volume)


def _decide(s: Scores, threshold: float, min_volume: int, enough: np.ndarray,
            today_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    above = np.nan_to_num(s.score, nan=-np.inf) >= threshold
    loud = s.count >= min_volume
    reason = np.select([today_out, ~enough, above & ~loud, above], [OUTAGE, SHORT_HISTORY, LOW_VOLUME, ALERT],
                       WITHIN).astype(np.int8)
    return above & loud & enough & ~today_out, reason


def explain(s: Scores, i: int) -> str:
    """One line saying why series i did or did not alert."""
    reason = REASONS[int(s.reason[i])]
    if not np.isfinite(s.expected[i]):
        return f"{int(s.count[i])} sessions: silent, {reason} ({int(s.history[i])} usable days)"
    basis = (f"weekly profile, this weekday x{s.weekday_factor[i]:.2f}" if s.seasonal[i]
             else "no weekly profile")
    return (f"{int(s.count[i])} sessions vs {s.expected[i]:.1f} expected "
            f"(interval {s.lower[i]:.1f}-{s.upper[i]:.1f}, score {s.score[i]:.1f}; "
            f"{int(s.history[i])} days of history, {basis}): {reason}")


def _median(values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Median along the last axis over the entries where ok is True (NaN where none)."""
    shape, m = values.shape[:-1], values.shape[-1]
    if m == 0:
        return np.full(shape, np.nan)
    v = np.where(ok, values, np.inf).reshape(-1, m)
    v.sort(axis=1)
    k = ok.reshape(-1, m).sum(axis=1)
    rows = np.arange(len(k))                     # the middle one or two of the k sorted values
    med = (v[rows, np.maximum((k - 1) // 2, 0)] + v[rows, k // 2]) / 2
    return np.where(k > 0, med, np.nan).reshape(shape)


def _huber_mean(values: np.ndarray, ok: np.ndarray, c: float) -> np.ndarray:
    """Mean over the entries where ok is True after clipping them at median +- c MADs (a
    one-step Huber estimate: an odd day counts as a large one, not as a huge one)."""
    med = _median(values, ok)
    mad = 1.4826 * _median(np.abs(values - med[:, None]), ok)
    clipped = np.clip(values, (med - c * mad)[:, None], (med + c * mad)[:, None])
    k = ok.sum(axis=1)
    return np.where(k > 0, np.where(ok, clipped, 0.0).sum(axis=1) / np.maximum(k, 1), np.nan)


def _stabilise(x, theta):
    """The negative binomial's variance-stabilising transform (unit variance whatever the
    mean): 2 sqrt(x + 3/8) for small counts, sqrt(1/theta) log(x) for large ones."""
    return 2 / np.sqrt(theta) * np.arcsinh(np.sqrt(theta * (x + 0.375)))


def _unstabilise(t, theta):
    """The count whose stabilised value is t (inf where that is beyond any count)."""
    with np.errstate(over="ignore"):
        return np.maximum(np.sinh(t * np.sqrt(theta) / 2) ** 2 / theta - 0.375, 0.0)


# ---- the profile over the rule's daily series ------------------------------------------------
# The rule's pipeline (counts -> daily Series -> score -> filter -> watchlist join -> alerts)
# stays the same; `improved` needs a longer span of daily counts and replaces the scoring and
# the filter. Each as-of gets a Series of history_days + 1 days (the scored day last) and a
# fit with the same "scores"/"baselines" arrays as the rule's (NaN before the last day;
# baseline = the expected count) plus the model's per-series results.

#: collective_dips reads the four weeks before each day it judges.
_DIP_LOOKBACK = 28
#: Backtests score this many series per call at most (memory: rows x (history + 1) floats).
_ROWS_PER_CALL = 200_000


def span_days(days: int, params: Params = Params()) -> int:
    """Daily bins to read for `days` consecutive as-of times: every scored day's history and
    the weeks collective_dips reads before it."""
    return days + params.history_days + _DIP_LOOKBACK


def score_windows(whole, first_as_of, days: int, params: Params = Params()) -> list[tuple]:
    """(Series, fit) for each of `days` as-of times from first_as_of, from `whole`: a
    port_anomaly.Series over span_days(days) days ending at the last as-of. All scored days
    of all keys go through score_last_day in one call."""
    n, total = whole.totals.shape
    length = params.history_days + 1
    first = total - days                                   # column of the first scored day
    if first < length - 1:
        raise ValueError(f"a span of {total} days is too short for {days} scored days")
    outage = outage_days(whole)
    left_out = outage | collective_dips(whole.totals, outage)
    cols = np.arange(first, total)[:, None] + np.arange(1 - length, 1)[None, :]   # (days, length)
    mask = left_out[cols]
    mask[:, -1] = outage[first:]                           # the scored day: silent only on an outage
    out = []
    step = max(1, _ROWS_PER_CALL // max(n, 1))            # as-of times scored per call
    for d0 in range(0, days, step):
        chunk = cols[d0:d0 + step]
        scored = score_last_day(whole.totals[:, chunk].transpose(1, 0, 2).reshape(-1, length),
                                np.repeat(mask[d0:d0 + step], n, axis=0), params, group_size=n) if n else None
        for i, part in enumerate(chunk):
            series = Series(Window(first_as_of + timedelta(days=d0 + i), days=length), whole.keys,
                            whole.totals[:, part], {t: [v[c] for c in part] for t, v in whole.tiers.items()})
            out.append((series, None if scored is None else _fit(scored, slice(i * n, (i + 1) * n), length)))
    return out


def _fit(s: Scores, rows: slice, length: int) -> dict:
    """One as-of's results, with the rule's fit arrays (scores and baselines per day)."""
    part = {name: getattr(s, name)[rows] for name in Scores.__dataclass_fields__}
    scores = np.full((len(part["score"]), length), np.nan)
    baselines = scores.copy()
    scores[:, -1], baselines[:, -1] = part["score"], part["expected"]
    return {"scores": scores, "baselines": baselines, **part}


def survivors(series, fit: dict | None):
    """The filter: keys whose last day alerts (`_row` = the key's row), as the rule's
    port_anomaly.survivors gives them."""
    keep = np.flatnonzero(fit["alert"]) if fit is not None else np.zeros(0, np.int64)
    return series.keys.take(pa.array(keep, pa.int64())).append_column("_row", pa.array(keep, pa.int64()))


def extras(fit: dict, row: int) -> dict:
    """What an alert's series carries beyond the rule's numbers: the expected count for the
    day, the interval that would not have alerted, and why, in words."""
    s = Scores(**{name: fit[name][row:row + 1] for name in Scores.__dataclass_fields__})
    return {"expected": _number(s.expected[0]), "lower": _number(s.lower[0]), "upper": _number(s.upper[0]),
            "history_days": int(s.history[0]), "weekly_profile": bool(s.seasonal[0]),
            "weekday_factor": _number(s.weekday_factor[0]), "reason": REASONS[int(s.reason[0])],
            "explanation": explain(s, 0)}


def _number(v) -> float | None:
    """Rounded for JSON; NaN and inf (no bound) become None."""
    return round(float(v), 3) if np.isfinite(v) else None


def group_alerts(joined: pa.Table, series: Series, fit: dict, outage: np.ndarray) -> list[Alert]:
    """One alert per (Name, Severity, Tactic, DstPortNumber, Description), as the rule groups
    them (port_anomaly.group_alerts), each series carrying the model's expected count,
    interval and explanation (`model`). Its window is the model's: the history and the day."""
    window = series.window
    builder = AlertBuilder("anomaly", (RULE_ID, RULE_NAME, RULE_VERSION), TECHNIQUES, AlertWindow(
        window.start, window.as_of, timedelta(days=1), days=window.days, tiers=series.tiers,
        missing_days="skip"), profile="improved")
    bins = window.bins()
    for r in joined.to_pylist():                          # a handful of alerting series
        i = r["_row"]
        model = extras(fit, i)
        builder.add(r, AlertSeries(
            r["NetworkProtocol"], r["NetworkDirection"], r["DvcAction"],
            total=int(series.totals[i, -1]), baseline=model["expected"], score=_number(fit["score"][i]),
            totals=[int(v) for v in series.totals[i]],
            baselines=[_number(v) for v in fit["baselines"][i]],
            scores=[_number(v) for v in fit["scores"][i]],
            outage_days=[d for d, out in zip(bins, outage) if out],
            quiet_days=[d for d, out, v in zip(bins, outage, series.totals[i]) if not out and v == 0],
            model=model), key=i)
    return sorted(builder.done(), key=lambda a: (-a.score, a.name, a.port))
