"""KQL time-series functions used by the Sentinel port-anomaly rule, in vectorized NumPy.

Implements ``make-series``, ``series_fit_line``, ``series_outliers``,
``series_periods_detect`` / ``series_periods_validate``, ``series_seasonal``,
``series_decompose`` and ``series_decompose_anomalies`` as specified in
``shared/spec/kql-anomaly.md``. Every ``series_*`` function takes one series (1-D) or
one series per row (2-D) and returns arrays of the same layout.

Kusto's period-detection scorer is not public; ``HarmonicAcfDetector`` is our own
design and can be replaced through the ``detector=`` keyword (see ``PeriodDetector``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from statistics import NormalDist
from typing import NamedTuple, Protocol

import numpy as np

__all__ = [
    "CTUKEY_NF",
    "Anomalies",
    "Decomposition",
    "HarmonicAcfDetector",
    "KqlConformanceWarning",
    "LineFit",
    "MadeSeries",
    "PeriodDetector",
    "bin_time",
    "Periods",
    "make_series",
    "series_decompose",
    "series_decompose_anomalies",
    "series_fit_line",
    "series_outliers",
    "series_periods_detect",
    "series_periods_validate",
    "series_seasonal",
]

#: ctukey normalisation factor for the default 10/90 percentiles, recovered from real
#: Kusto output (spec §3.2); its closed form is unknown.
CTUKEY_NF = 2.772605605507915
#: Kusto refuses to generate arrays longer than this (spec §1.2).
MAX_SERIES_LEN = 2**20
#: Kusto cannot find periods shorter than this many bins (spec §4).
MIN_PERIOD = 4
#: Deviations below this fraction of a row's largest |value| are rounding noise. Left
#: alone, the noise of an exactly fitted line looks periodic to the detector and gets
#: large ctukey scores (the score is scale-free), even ±inf through a zero spread.
_NOISE_FLOOR = 1e-12


class KqlConformanceWarning(UserWarning):
    """The result relies on a guess where Kusto's exact behaviour is unknown."""


class MadeSeries(NamedTuple):
    axis: np.ndarray  # bin starts, datetime64
    series: np.ndarray  # 1-D without keys, else one row per key
    keys: np.ndarray | None  # sorted keys that had rows in range (None without keys)


class LineFit(NamedTuple):
    rsquare: np.ndarray
    slope: np.ndarray
    variance: np.ndarray
    rvariance: np.ndarray
    interception: np.ndarray
    line_fit: np.ndarray


class Periods(NamedTuple):
    periods: np.ndarray
    scores: np.ndarray


class Decomposition(NamedTuple):
    baseline: np.ndarray
    seasonal: np.ndarray
    trend: np.ndarray
    residual: np.ndarray


class Anomalies(NamedTuple):
    ad_flag: np.ndarray
    ad_score: np.ndarray
    baseline: np.ndarray


def _rows(series) -> tuple[np.ndarray, bool]:
    """Return ``series`` as a float 2-D array (one series per row) and whether it was 1-D."""
    x = np.asarray(series, dtype=float)
    if x.ndim == 1:
        return x[None, :], True
    if x.ndim == 2:
        return x, False
    raise ValueError("expected one series (1-D) or one series per row (2-D)")


def _unrow(a: np.ndarray, one: bool) -> np.ndarray:
    return a[0] if one else a


# ---------------------------------------------------------------------------------------
# bin()

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def bin_time(t: datetime, step: timedelta) -> datetime:
    """KQL bin(t, step) for a UTC time: the start of its step-long bin, bins aligned to the
    epoch. The one place portlens floors times (summary bins, static bins, as-of)."""
    return _EPOCH + ((t - _EPOCH) // step) * step


# ---------------------------------------------------------------------------------------
# make-series


def make_series(
    times,
    values=None,
    *,
    start,
    end,
    step,
    agg: str = "count",
    default: float = 0,
    keys=None,
) -> MadeSeries:
    """KQL ``make-series agg on times from start to end step step [by keys]``.

    Bins are anchored at ``start``; there are ``ceil((end - start) / step)`` of them, rows
    with ``t < start`` or ``t >= end`` are dropped and empty bins get ``default``.
    ``agg`` is ``"count"``, ``"sum"`` or ``"avg"`` (the latter two aggregate ``values``).
    With ``keys`` there is one row per key that has at least one row in range.
    """
    start, end, step = np.datetime64(start), np.datetime64(end), np.timedelta64(step)
    if step <= np.timedelta64(0, "s"):
        raise ValueError("step must be positive")
    if agg not in ("count", "sum", "avg"):
        raise ValueError(f"unsupported aggregation {agg!r}")
    if agg != "count" and values is None:
        raise ValueError(f"agg={agg!r} needs values")
    nbins = max(0, int(-((start - end) // step)))  # ceil division on timedeltas
    if nbins > MAX_SERIES_LEN:
        raise ValueError(f"{nbins} bins exceed Kusto's limit of {MAX_SERIES_LEN}")

    t = np.asarray(times, dtype="datetime64")
    inside = (t >= start) & (t < end)
    bins = ((t[inside] - start) // step).astype(np.intp)
    if keys is None:
        key_values, row = None, np.zeros(bins.size, dtype=np.intp)
        nrows = 1
    else:
        key_values, row = np.unique(np.asarray(keys)[inside], return_inverse=True)
        nrows = key_values.size
    cell = row.reshape(-1) * nbins + bins
    size = nrows * nbins
    counts = np.bincount(cell, minlength=size).reshape(nrows, nbins)
    if agg == "count":
        agg_values = counts.astype(float)
    else:
        sums = np.bincount(
            cell, weights=np.asarray(values, dtype=float)[inside], minlength=size
        ).reshape(nrows, nbins)
        agg_values = sums if agg == "sum" else sums / np.maximum(counts, 1)
    series = np.where(counts > 0, agg_values, float(default))
    axis = start + np.arange(nbins) * step
    return MadeSeries(axis, series[0] if keys is None else series, key_values)


# ---------------------------------------------------------------------------------------
# series_fit_line


def _ols(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row OLS slope and intercept of y on x = 1..n (slope 0 when n == 1)."""
    n = rows.shape[1]
    x = np.arange(1, n + 1, dtype=float)
    xc = x - x.mean()
    mean = rows.mean(axis=1)
    sxx = xc @ xc
    # Centring y first keeps precision for large counts with a small trend; an explicit
    # row sum (not BLAS) makes a row's result independent of the other rows.
    slope = ((rows - mean[:, None]) * xc).sum(axis=1) / sxx if sxx > 0 else np.zeros_like(mean)
    return slope, mean - slope * x.mean()


def series_fit_line(series) -> LineFit:
    """KQL ``series_fit_line``: OLS on x = 1..n; variances use the n - 1 denominator."""
    y, one = _rows(series)
    n = y.shape[1]
    if n == 0:
        nan = np.full(y.shape[0], np.nan)
        return LineFit(*(_unrow(a, one) for a in (nan, nan, nan, nan, nan, y.copy())))
    slope, intercept = _ols(y)
    fit = intercept[:, None] + slope[:, None] * np.arange(1, n + 1)
    ss_tot = ((y - y.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    ss_res = ((y - fit) ** 2).sum(axis=1)
    dof = max(n - 1, 1)  # a single point has zero variance, not 0/0
    with np.errstate(divide="ignore", invalid="ignore"):
        # R² is undefined for constant y; report 0 (spec §2 leaves it open).
        rsquare = np.where(ss_tot > 0, 1.0 - ss_res / ss_tot, 0.0)
    parts = (rsquare, slope, ss_tot / dof, ss_res / dof, intercept, fit)
    return LineFit(*(_unrow(a, one) for a in parts))


# ---------------------------------------------------------------------------------------
# series_outliers


def _approximate_nf(lo_pct: float, hi_pct: float) -> float:
    """NF for an unverified percentile pair (spec §3.2): the Kusto team's "score 1.5 at
    the normal Tukey fence" formula, rescaled so that 10/90 would give CTUKEY_NF."""
    z = NormalDist().inv_cdf

    def derived(lo: float, hi: float) -> float:
        return 1.5 * (z(hi / 100) - z(lo / 100)) / (4 * z(0.75) - z(hi / 100))

    return derived(lo_pct, hi_pct) * CTUKEY_NF / derived(10, 90)


def _outlier_params(kind: str, min_pct: float, max_pct: float) -> tuple[float, float, float]:
    if kind == "tukey":
        return 25.0, 75.0, 1.0  # custom percentiles are not supported by tukey
    if kind != "ctukey":
        raise ValueError(f"unknown outlier kind {kind!r}")
    if not (2 <= min_pct <= 98 and 2 <= max_pct <= 98):
        raise ValueError("ctukey percentiles must lie in [2, 98]")
    if min_pct >= max_pct:
        raise ValueError("min_percentile must be below max_percentile")
    if (min_pct, max_pct) == (10, 90):
        return 10.0, 90.0, CTUKEY_NF
    warnings.warn(
        f"ctukey {min_pct}/{max_pct}: Kusto's normalisation factor is only known for "
        "10/90; using an approximation",
        KqlConformanceWarning,
        stacklevel=3,
    )
    return float(min_pct), float(max_pct), _approximate_nf(min_pct, max_pct)


def _row_percentiles(x: np.ndarray, valid: np.ndarray, pcts) -> list[np.ndarray]:
    """Linear-interpolation (type 7) percentiles of each row's valid values (NaN if none)."""
    ordered = np.sort(np.where(valid, x, np.inf), axis=1)  # valid values first
    m = valid.sum(axis=1)
    last = np.maximum(m - 1, 0)
    out = []
    for pct in pcts:
        h = (m - 1) * pct / 100
        floor = np.clip(np.floor(h), 0, None).astype(np.intp)
        below = np.take_along_axis(ordered, floor[:, None], axis=1)[:, 0]
        above = np.take_along_axis(ordered, np.minimum(floor + 1, last)[:, None], axis=1)[:, 0]
        with np.errstate(invalid="ignore"):
            value = below + (h - floor) * (above - below)
        out.append(np.where(m > 0, value, np.nan))
    return out


def _outlier_scores(x, valid, kind, min_pct, max_pct, zero_spread) -> np.ndarray:
    if zero_spread not in ("inf", "zero"):
        raise ValueError("zero_spread must be 'inf' or 'zero'")
    lo_pct, hi_pct, nf = _outlier_params(kind, min_pct, max_pct)
    if x.shape[1] == 0:
        return np.zeros_like(x)
    lo, hi = (p[:, None] for p in _row_percentiles(x, valid, (lo_pct, hi_pct)))
    spread = hi - lo
    # A zero spread with points outside it divides by zero; .NET doubles give ±inf.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        score = np.where(
            x > hi, nf * (x - hi) / spread, np.where(x < lo, nf * (x - lo) / spread, 0.0)
        )
    if zero_spread == "zero":
        score = np.where(spread == 0, 0.0, score)
    return np.where(valid, score, 0.0)


def series_outliers(
    series,
    kind: str = "ctukey",
    ignore_val=None,
    min_percentile: float = 10,
    max_percentile: float = 90,
    *,
    zero_spread: str = "inf",
) -> np.ndarray:
    """KQL ``series_outliers``: Tukey-fence scores, 0 inside [P_lo, P_hi].

    NaNs and values equal to ``ignore_val`` are left out of the percentiles and score 0.
    ``zero_spread`` decides rows where P_hi == P_lo but some point lies outside:
    ``"inf"`` gives ±inf scores, ``"zero"`` gives all-zero scores.
    """
    x, one = _rows(series)
    valid = ~np.isnan(x)
    if ignore_val is not None:
        valid &= x != ignore_val
    score = _outlier_scores(x, valid, kind, min_percentile, max_percentile, zero_spread)
    return _unrow(score, one)


# ---------------------------------------------------------------------------------------
# Period detection


class PeriodDetector(Protocol):
    """What ``detector=`` must provide; rows are a float 2-D array, one series per row."""

    def validate(self, rows: np.ndarray, periods: np.ndarray) -> np.ndarray:
        """Scores in [0, 1], shape (rows, len(periods))."""

    def detect(
        self, rows: np.ndarray, min_period: float, max_period: float, num_periods: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(periods, scores), each (rows, num_periods), best first, unused slots 0.
        The first slot must hold the best-scoring candidate whenever it scores above 0:
        seasonality auto-detection compares that score with its own threshold."""


@dataclass(frozen=True)
class HarmonicAcfDetector:
    """Default detector: a period is as strong as its weakest harmonic.

    ``score(p) = clip(min_k r(round(k·p)), 0, 1)`` over the lags ``k·p <= n/2``, where ``r``
    is the unbiased autocorrelation (mean lagged product over the global variance). A
    true period must repeat at every multiple, so aliases that only match once score low.
    On the 60-point doc series this gives 0.841 for period 14 (Kusto prints 0.84).

    A multiple of a period never scores lower than the period itself (it checks a subset
    of the same lags), which matches Kusto preferring 168 over 24 on hourly data.

    * ``min_cycles``: periods spanning fewer cycles of the series score 0 (spec §4.1).
    * ``harmonic_tolerance``: a divisor of the top period that scores within this much
      of it is reported instead, so sampling noise does not turn 4 into 16.
    * ``resolution``: a further period closer than this fraction to an already reported
      one is the same peak and is not reported again.
    * ``secondary_min_score``: weakest score reported after the best period.
    """

    min_cycles: float = 3.0
    harmonic_tolerance: float = 0.03
    resolution: float = 0.2
    secondary_min_score: float = 0.5

    def validate(self, rows: np.ndarray, periods: np.ndarray) -> np.ndarray:
        n = rows.shape[1]
        scores = np.zeros((rows.shape[0], len(periods)))
        centred = rows - rows.mean(axis=1, keepdims=True)
        power = (centred**2).mean(axis=1)
        flat = np.ptp(rows, axis=1) == 0 if n else np.ones(rows.shape[0], bool)
        acf: dict[int, np.ndarray] = {}  # lag -> per-row autocorrelation, computed once
        for j, p in enumerate(np.asarray(periods, dtype=float)):
            if not (MIN_PERIOD <= p <= n / 2 and n >= self.min_cycles * p):
                continue
            harmonics = []
            for lag in {int(round(k * p)) for k in range(1, int(n / 2 / p) + 1)}:
                if lag not in acf:
                    with np.errstate(divide="ignore", invalid="ignore"):
                        acf[lag] = (centred[:, :-lag] * centred[:, lag:]).mean(axis=1) / power
                harmonics.append(acf[lag])
            scores[:, j] = np.min(harmonics, axis=0)
        scores[flat] = 0.0
        return np.clip(scores, 0.0, 1.0)

    def detect(self, rows, min_period, max_period, num_periods):
        n = rows.shape[1]
        periods = np.zeros((rows.shape[0], num_periods))
        scores = np.zeros_like(periods)
        longest = min(max_period, n / 2, n / self.min_cycles)
        candidates = np.arange(math.ceil(max(MIN_PERIOD, min_period)), math.floor(longest) + 1.0)
        if candidates.size == 0 or num_periods == 0:
            return periods, scores
        cand_scores = self.validate(rows, candidates)
        alive = cand_scores > 0
        everyone = np.arange(rows.shape[0])
        # Greedy peak picking, all rows at once.
        for slot in range(num_periods):
            masked = np.where(alive, cand_scores, -1.0)
            top = masked.argmax(axis=1)
            near_tie = masked >= masked[everyone, top][:, None] - self.harmonic_tolerance
            divides = candidates[top][:, None] % candidates == 0
            best = (near_tie & divides).argmax(axis=1)  # shortest such candidate
            found = alive[everyone, best]
            chosen = candidates[best]
            periods[found, slot] = chosen[found]
            scores[found, slot] = cand_scores[everyone, best][found]
            alive &= np.abs(candidates - chosen[:, None]) >= self.resolution * chosen[:, None]
            alive &= cand_scores >= self.secondary_min_score
        return periods, scores


DEFAULT_DETECTOR = HarmonicAcfDetector()


def series_periods_detect(
    series,
    min_period: float,
    max_period: float,
    num_periods: int,
    *,
    detector: PeriodDetector = DEFAULT_DETECTOR,
) -> Periods:
    """KQL ``series_periods_detect``: up to ``num_periods`` periods, best first, 0-padded.

    The search range is clipped to [4, n/2] as in Kusto; the detector may narrow it.
    """
    x, one = _rows(series)
    periods, scores = detector.detect(x, float(min_period), float(max_period), int(num_periods))
    return Periods(_unrow(periods, one), _unrow(scores, one))


def series_periods_validate(
    series, *periods: float, detector: PeriodDetector = DEFAULT_DETECTOR
) -> Periods:
    """KQL ``series_periods_validate``: a score for each of 1..16 given periods
    (0 outside [4, n/2])."""
    if not 1 <= len(periods) <= 16:
        raise ValueError("series_periods_validate takes 1 to 16 periods")
    x, one = _rows(series)
    wanted = np.asarray(periods, dtype=float)
    scores = detector.validate(x, wanted)
    return Periods(_unrow(np.broadcast_to(wanted, scores.shape).copy(), one), _unrow(scores, one))


# ---------------------------------------------------------------------------------------
# Seasonality and decomposition


def _auto_periods(rows: np.ndarray, threshold: float, detector: PeriodDetector) -> np.ndarray:
    """Best period per row if its score reaches ``threshold``, else 0 (no seasonality)."""
    periods, scores = detector.detect(rows, MIN_PERIOD, rows.shape[1] / 2, 1)
    return np.where(scores[:, 0] >= threshold, np.rint(periods[:, 0]), 0).astype(np.intp)


def _phase_profile(learn: np.ndarray, p: int) -> np.ndarray:
    """Median of each phase (i mod p) over the learning prefix; empty phases get 0."""
    rows, m = learn.shape
    full, rem = divmod(m, p)
    cycles = learn[:, : full * p].reshape(rows, full, p)
    profile = np.zeros((rows, p))
    # Phases below ``rem`` also have a sample in the trailing partial cycle.
    head = np.concatenate([cycles[:, :, :rem], learn[:, None, full * p :]], axis=1)
    profile[:, :rem] = np.median(head, axis=1)
    if full:
        profile[:, rem:] = np.median(cycles[:, :, rem:], axis=1)
    return profile


def _seasonal(x: np.ndarray, periods: np.ndarray, m: int) -> np.ndarray:
    """Seasonal component of each row for its own period (0 = none), learned on x[:, :m]."""
    seasonal = np.zeros_like(x)
    phase = np.arange(x.shape[1])
    for p in np.unique(periods[periods > 0]):  # one vectorized pass per distinct period
        group = periods == p
        seasonal[group] = _phase_profile(x[group, :m], int(p))[:, phase % p]
    return seasonal


def _trend(d: np.ndarray, kind: str, n: int) -> np.ndarray:
    """Trend learned on ``d`` (rows, m), evaluated on n >= m points."""
    if kind == "avg":
        return np.repeat(d.mean(axis=1, keepdims=True), n, axis=1)
    if kind == "linefit":
        slope, intercept = _ols(d)
        return intercept[:, None] + slope[:, None] * np.arange(1, n + 1)
    return np.zeros((d.shape[0], n))


def _noise_level(x: np.ndarray) -> np.ndarray:
    return _NOISE_FLOOR * np.abs(x).max(axis=1, keepdims=True)


def _resolve_periods(x, seasonality, m, threshold, detector, detrend_for, detrend_detection):
    if seasonality == -1:
        probe = x[:, :m]
        if detrend_detection:
            # Detect on what the trend model leaves: a trend otherwise drags down the
            # long-lag autocorrelation (weekly period of the 840-point vector).
            probe = probe - _trend(probe, detrend_for, m)
            noise = np.abs(probe).max(axis=1, keepdims=True) <= _noise_level(x[:, :m])
            probe = np.where(noise, 0.0, probe)
        return _auto_periods(probe, threshold, detector)
    if seasonality == 0:
        return np.zeros(x.shape[0], dtype=np.intp)
    if seasonality > 0:
        return np.full(x.shape[0], int(round(seasonality)), dtype=np.intp)
    raise ValueError("seasonality must be -1 (auto), 0 (none) or a positive period")


def series_seasonal(
    series, period: float = -1, threshold: float = 0.7, *, detector: PeriodDetector = DEFAULT_DETECTOR
) -> np.ndarray:
    """KQL ``series_seasonal``: phase medians of the raw values for ``period``
    (-1 = detect with ``threshold``; 0 or undetected = zeros)."""
    x, one = _rows(series)
    if period == -1:
        periods = _auto_periods(x, threshold, detector)
    else:
        periods = np.full(x.shape[0], int(round(period)) if period > 0 else 0, dtype=np.intp)
    return _unrow(_seasonal(x, periods, x.shape[1]), one)


def _decompose(x, seasonality, trend, test_points, threshold, detector, detrend_detection):
    if trend not in ("avg", "linefit", "none"):
        raise ValueError(f"unknown trend {trend!r}")
    n = x.shape[1]
    t = int(test_points)
    if t < 0 or (n and t >= n):
        raise ValueError("test_points must be in [0, n)")
    if n == 0:
        return (x.copy(),) * 4
    m = n - t
    periods = _resolve_periods(x, seasonality, m, threshold, detector, trend, detrend_detection)
    seasonal = _seasonal(x, periods, m)
    trend_part = _trend(x[:, :m] - seasonal[:, :m], trend, n)
    baseline = seasonal + trend_part
    residual = x - baseline
    return baseline, seasonal, trend_part, np.where(
        np.abs(residual) <= _noise_level(x), 0.0, residual
    )


def series_decompose(
    series,
    seasonality: float = -1,
    trend: str = "avg",
    test_points: int = 0,
    seasonality_threshold: float = 0.6,
    *,
    detector: PeriodDetector = DEFAULT_DETECTOR,
    detrend_detection: bool = True,
) -> Decomposition:
    """KQL ``series_decompose`` → (baseline, seasonal, trend, residual).

    Seasonal phase medians and the trend are learned on the first n - test_points points
    and extended to all n. With ``seasonality=-1`` the period is detected on that prefix,
    after removing the ``trend`` model when ``detrend_detection`` is true. Residuals
    within 1e-12 of a row's largest |value| are rounding noise and reported as 0.
    """
    x, one = _rows(series)
    parts = _decompose(
        x, seasonality, trend, test_points, seasonality_threshold, detector, detrend_detection
    )
    return Decomposition(*(_unrow(a, one) for a in parts))


def series_decompose_anomalies(
    series,
    threshold: float = 1.5,
    seasonality: float = -1,
    trend: str = "avg",
    test_points: int = 0,
    ad_method: str = "ctukey",
    seasonality_threshold: float = 0.6,
    *,
    zero_spread: str = "inf",
    detector: PeriodDetector = DEFAULT_DETECTOR,
    detrend_detection: bool = True,
) -> Anomalies:
    """KQL ``series_decompose_anomalies`` → (ad_flag, ad_score, baseline).

    Scores are ``series_outliers(residual, ad_method)`` over all n residuals; flags are
    +1 where score > threshold, -1 where score < -threshold, else 0.
    """
    if ad_method not in ("ctukey", "tukey"):
        raise ValueError(f"unknown ad_method {ad_method!r}")
    x, one = _rows(series)
    baseline, _, _, residual = _decompose(
        x, seasonality, trend, test_points, seasonality_threshold, detector, detrend_detection
    )
    valid = np.ones(residual.shape, dtype=bool)
    score = _outlier_scores(residual, valid, ad_method, 10, 90, zero_spread)
    flag = np.where(score > threshold, 1, np.where(score < -threshold, -1, 0))
    return Anomalies(_unrow(flag, one), _unrow(score, one), _unrow(baseline, one))
