"""Tests for portlens.kql: shared conformance vectors, hand-made exact cases, edge cases."""

import json
from pathlib import Path

import numpy as np
import pytest

from portlens import kql

VECTORS_PATH = Path(__file__).resolve().parents[2] / "shared" / "spec" / "kql-vectors.json"
NF = kql.CTUKEY_NF

# series_seasonal doc example 2 (20 points, period 5); not part of the shared vectors.
PERIOD5_20PT = [8, 12, 14, 12, 10, 10, 12, 14, 12, 10, 10, 12, 14, 12, 10, 10, 12, 14, 12, 10]


def _load_vectors() -> list[dict]:
    return json.loads(VECTORS_PATH.read_text()) if VECTORS_PATH.exists() else []


VECTORS = _load_vectors()


@pytest.fixture(scope="module")
def vectors() -> dict:
    if not VECTORS:
        pytest.skip(f"shared vectors not found at {VECTORS_PATH}")
    return {v["id"]: v for v in VECTORS}


# --------------------------------------------------------------------------- shared vectors
# One check per KQL function; every vector in the shared file runs through the check of its
# `function`, so a new vector is tested without new code (and a vector for a function with no
# check fails, asking for one). Tolerances follow how the sources print their numbers.


def _check_decompose_anomalies(v):
    p = v["params"]
    flags, scores, baseline = kql.series_decompose_anomalies(
        v["input"], p["threshold"], p["seasonality"], p["trend"], p["test_points"], p["ad_method"],
        p["seasonality_threshold"])
    e = v["expected"]
    np.testing.assert_allclose(scores, e["score"], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(flags, e["anomalies"])
    expected_baseline = np.asarray(e["baseline"], float)
    if np.all(expected_baseline == np.trunc(expected_baseline)):  # exported cast to long
        np.testing.assert_array_equal(np.trunc(baseline), expected_baseline)
    else:
        np.testing.assert_allclose(baseline, expected_baseline, rtol=0, atol=1e-9)


def _check_outliers(v):
    p = v["params"]
    got = kql.series_outliers(v["input"], p.get("kind", "ctukey"),
                              min_percentile=p.get("min_percentile", 10),
                              max_percentile=p.get("max_percentile", 90))
    np.testing.assert_allclose(got, v["expected"]["score"], rtol=0, atol=1e-12)


def _check_seasonal(v):
    p = v["params"]
    got = kql.series_seasonal(v["input"], p["period"], p["autodetect_threshold_if_period_minus_1"])
    np.testing.assert_array_equal(got, v["expected"]["seasonal"])


def _check_periods_detect(v):
    p = v["params"]
    periods, scores = kql.series_periods_detect(v["input"], p["min_period"], p["max_period"], p["num_periods"])
    np.testing.assert_array_equal(periods, v["expected"]["periods"])
    # The docs print scores to 2 decimals; the harmonic-ACF scorer is our own (0.8412 vs 0.84).
    np.testing.assert_allclose(scores, v["expected"]["scores"], atol=0.005)


def _check_periods_validate(v):
    periods, scores = kql.series_periods_validate(v["input"], *v["params"]["periods"])
    np.testing.assert_array_equal(periods, v["expected"]["periods"])
    np.testing.assert_allclose(scores, v["expected"]["scores"], atol=0.005)


def _check_fit_line(v):
    got = kql.series_fit_line(v["input"])
    e = v["expected"]
    for name in ("rsquare", "slope", "variance", "rvariance", "interception"):
        assert getattr(got, name) == pytest.approx(e[name], abs=1e-3), name
    np.testing.assert_allclose(got.line_fit, e["line_fit"], atol=1e-3)


def _check_make_series(v):
    p = v["params"]
    agg, _, _ = p["aggregation"].partition("(")
    step = {"d": "D", "h": "h", "m": "m", "s": "s"}[p["step"][-1]]
    times = np.array([t.rstrip("Z") for t, _ in v["input"]], dtype="datetime64[s]")
    got = kql.make_series(
        times, [value for _, value in v["input"]],
        start=np.datetime64(p["from"].rstrip("Z")), end=np.datetime64(p["to"].rstrip("Z")),
        step=np.timedelta64(int(p["step"][:-1]), step), agg=agg, default=p["default"])
    np.testing.assert_array_equal(got.series, v["expected"]["series"])
    expected_axis = np.array([t.rstrip("Z") for t in v["expected"]["axis"]], dtype="datetime64[s]")
    np.testing.assert_array_equal(got.axis, expected_axis)
    assert got.keys is None


CHECKS = {
    "series_decompose_anomalies": _check_decompose_anomalies,
    "series_outliers": _check_outliers,
    "series_seasonal": _check_seasonal,
    "series_periods_detect": _check_periods_detect,
    "series_periods_validate": _check_periods_validate,
    "series_fit_line": _check_fit_line,
    "make-series": _check_make_series,
}


@pytest.mark.parametrize(
    "vector", VECTORS or [pytest.param(None, marks=pytest.mark.skip(reason=f"no {VECTORS_PATH}"))],
    ids=[v["id"] for v in VECTORS] or ["absent"])
def test_shared_vector(vector):
    assert vector["function"] in CHECKS, f"no check for {vector['function']}: add one to CHECKS"
    if vector.get("legacy"):
        # Marked legacy: from an older Kusto, not the current algorithm (spec §9).
        with pytest.raises(AssertionError):
            CHECKS[vector["function"]](vector)
        return
    CHECKS[vector["function"]](vector)


def test_msticpy_840h_detects_weekly_period(vectors):
    x = np.asarray(vectors["msticpy-timeseriesdemo-840h"]["input"], float)
    seasonal = kql.series_decompose(x, trend="linefit").seasonal
    np.testing.assert_array_equal(seasonal[168:], seasonal[:-168])
    assert not np.array_equal(seasonal[24:], seasonal[:-24])


def test_legacy_outlier_vector_scores_only_the_extremes(vectors):
    v = vectors["legacy-doc-series-outliers-11pt"]
    assert v["legacy"] is True
    got = kql.series_outliers(v["input"])
    assert not np.allclose(got, v["expected"]["score"], atol=1e-3)
    assert np.flatnonzero(got).tolist() == [2, 7]


def test_periods_detect_60pt_single_period(vectors):
    v = vectors["doc-series-periods-detect-60pt"]
    p = v["params"]
    single = kql.series_periods_detect(v["input"], p["min_period"], p["max_period"], 1)
    assert single.periods.tolist() == [14.0]


# --------------------------------------------------------------- self-contained exact cases


def test_decompose_anomalies_hand_computed():
    # Period 2: phase 0 = 1,2,3,4,5,50 -> median 3.5; phase 1 = 10. Residuals sorted:
    # -2.5 -1.5 -0.5 0 0 0 0 0 0.5 1.5 46.5 -> P10 = s[1] = -1.5, P90 = s[9] = 1.5.
    x = [1, 10, 2, 10, 3, 10, 4, 10, 5, 10, 50]
    flags, scores, baseline = kql.series_decompose_anomalies(x, 1.5, 2, "none")
    np.testing.assert_array_equal(baseline, [3.5, 10] * 5 + [3.5])
    expected = np.zeros(11)
    expected[0] = NF * (-2.5 + 1.5) / 3
    expected[10] = NF * (46.5 - 1.5) / 3
    np.testing.assert_allclose(scores, expected, rtol=1e-15, atol=0)
    np.testing.assert_array_equal(flags, [0] * 10 + [1])


def test_flags_are_strict():
    x = [1, 10, 2, 10, 3, 10, 4, 10, 5, 10, 50]
    top = kql.series_decompose_anomalies(x, 1.5, 2, "none").ad_score[-1]
    assert kql.series_decompose_anomalies(x, top, 2, "none").ad_flag[-1] == 0
    assert kql.series_decompose_anomalies(x, np.nextafter(top, 0), 2, "none").ad_flag[-1] == 1


def test_outliers_hand_computed_and_tukey():
    x = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 30]  # n = 11: P10 = 1, P90 = 9 exactly
    expected = np.zeros(11)
    expected[0], expected[10] = NF * -1 / 8, NF * 21 / 8
    np.testing.assert_allclose(kql.series_outliers(x), expected, rtol=1e-15)
    # tukey: P25 = s[2.5] = 2.5, P75 = s[7.5] = 7.5, NF = 1
    tukey = kql.series_outliers(x, "tukey")
    np.testing.assert_allclose(tukey[[0, 1, 2, 8, 9, 10]], [-0.5, -0.3, -0.1, 0.1, 0.3, 4.5])
    assert not tukey[3:8].any()


def test_linefit_with_test_points_extrapolates():
    x = [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 100]
    d = kql.series_decompose(x, 0, "linefit", test_points=1)
    np.testing.assert_array_equal(d.baseline, np.arange(1, 23, 2))
    np.testing.assert_array_equal(d.residual, [0] * 10 + [79])


def test_seasonal_learns_only_on_prefix():
    x = [1, 2, 3, 1, 2, 3, 50, 60, 70, 80]
    got = kql.series_decompose(x, 3, "none", test_points=4).seasonal
    np.testing.assert_array_equal(got, [1, 2, 3] * 3 + [1])


def test_even_phase_count_median_and_partial_cycle():
    # Phase 0 gets the extra sample 9 from the partial cycle: median(1, 2, 1, 2, 9) = 2.
    got = kql.series_seasonal([1, 3, 5, 2, 4, 6, 1, 3, 5, 2, 4, 6, 9], 3)
    np.testing.assert_array_equal(got, [2, 3.5, 5.5] * 4 + [2])


def test_period_five_doc_example_detected():
    got = kql.series_seasonal(PERIOD5_20PT)
    np.testing.assert_array_equal(got, [10, 12, 14, 12, 10] * 4)


def test_fit_line_exact_small():
    got = kql.series_fit_line([2, 4, 6, 9])  # slope 2.3, intercept -0.5
    assert got.slope == pytest.approx(2.3)
    assert got.interception == pytest.approx(-0.5)
    np.testing.assert_allclose(got.line_fit, [1.8, 4.1, 6.4, 8.7])
    assert got.variance == pytest.approx(np.var([2, 4, 6, 9], ddof=1))
    assert got.rvariance == pytest.approx(0.3 / 3)
    assert got.rsquare == pytest.approx(1 - 0.3 / 26.75)


# --------------------------------------------------------------------- period detection


def test_min_cycles_rule_is_what_rejects_two_cycles():
    two_cycles = [1, 3, 5, 2, 4, 6, 1, 3, 5, 2, 4, 6]
    assert kql.series_periods_detect(two_cycles, 4, 6, 1).periods.tolist() == [0.0]
    lenient = kql.HarmonicAcfDetector(min_cycles=2.0)
    got = kql.series_periods_detect(two_cycles, 4, 6, 1, detector=lenient)
    assert got.periods.tolist() == [6.0]
    assert kql.series_seasonal(two_cycles, detector=lenient).tolist() == two_cycles


def test_fourteen_daily_points():
    weekly = np.tile([5, 9, 9, 9, 9, 9, 2], 2).astype(float)
    assert not kql.series_decompose(weekly).seasonal.any()  # 2 cycles: no period
    # Period 4 spans 3.5 cycles of 14 points, so it stays detectable (spec §4.1).
    four = np.tile([1.0, 5, 9, 5], 4)[:14]
    assert kql.series_periods_detect(four, 0, 7, 1).periods.tolist() == [4.0]


def test_validate_out_of_range_and_argument_count():
    y = np.tile([1.0, 4, 9], 12)  # truly periodic at 3, but periods below 4 score 0
    assert kql.series_periods_validate(y, 3, 6).scores.tolist() == [0.0, 1.0]
    lenient = kql.HarmonicAcfDetector(min_cycles=1.0)  # leaves only the n/2 bound
    assert kql.series_periods_validate(y, 18, 21, detector=lenient).scores.tolist() == [1.0, 0.0]
    flat = kql.series_periods_validate(np.full(36, 0.1), 4, 6)
    assert flat.scores.tolist() == [0.0, 0.0]
    with pytest.raises(ValueError):
        kql.series_periods_validate(y)
    with pytest.raises(ValueError):
        kql.series_periods_validate(y, *range(4, 21))


def test_pluggable_detector():
    class AlwaysSeven:
        def validate(self, rows, periods):
            return np.ones((rows.shape[0], len(periods)))

        def detect(self, rows, min_period, max_period, num_periods):
            periods = np.zeros((rows.shape[0], num_periods))
            periods[:, 0] = 7
            return periods, (periods > 0).astype(float)

    x = np.tile([5.0, 9, 9, 9, 9, 9, 2], 2)
    d = kql.series_decompose(x, detector=AlwaysSeven(), trend="none")
    np.testing.assert_array_equal(d.seasonal, x)
    assert kql.series_periods_detect(x, 4, 7, 2, detector=AlwaysSeven()).periods.tolist() == [7, 0]


# ----------------------------------------------------------------------------- 2-D input


def _mixed_rows() -> np.ndarray:
    rng = np.random.default_rng(7)
    n = 48
    rows = [
        np.tile([3.0, 9, 4, 1], 12) + rng.normal(0, 0.3, n),  # period 4
        np.tile([1.0, 2, 8, 8, 2, 1], 8) * 10 + np.arange(n),  # period 6 + trend
        rng.poisson(30, n).astype(float),  # no period
        np.full(n, 7.0),  # constant
        np.tile([0.0, 0, 0, 0, 0, 0, 0, 50], 6),  # period 8, sparse
    ]
    return np.vstack(rows)


@pytest.mark.parametrize("trend", ["avg", "linefit", "none"])
@pytest.mark.parametrize("test_points", [0, 5])
def test_2d_matches_row_by_row(trend, test_points):
    x = _mixed_rows()
    got = kql.series_decompose_anomalies(x, 1.5, -1, trend, test_points)
    for i, row in enumerate(x):
        one = kql.series_decompose_anomalies(row, 1.5, -1, trend, test_points)
        for a, b in zip(got, one):
            np.testing.assert_array_equal(a[i], b)
    # Rows really took different periods, so the per-period grouping was exercised.
    seasonal = kql.series_decompose(x, trend=trend, test_points=test_points).seasonal
    def repeats(s, period):
        return np.array_equal(s[period:], s[:-period])

    assert repeats(seasonal[0], 4) and not repeats(seasonal[0], 2)
    assert repeats(seasonal[1], 12) and not repeats(seasonal[1], 4)  # 6 or 12 by prefix
    assert repeats(seasonal[4], 8) and not repeats(seasonal[4], 4)
    assert seasonal[[0, 1, 4]].any(axis=1).all() and not seasonal[2:4].any()


def test_2d_other_functions_match_row_by_row():
    x = _mixed_rows()
    x_nan = x.copy()
    x_nan[2, [3, 10]] = np.nan
    scores = kql.series_outliers(x_nan, ignore_val=0.0)
    seasonal = kql.series_seasonal(x)
    fits = kql.series_fit_line(x)
    detected = kql.series_periods_detect(x, 0, 20, 3)
    validated = kql.series_periods_validate(x, 4, 6, 8)
    for i, row in enumerate(x):
        np.testing.assert_array_equal(scores[i], kql.series_outliers(x_nan[i], ignore_val=0.0))
        np.testing.assert_array_equal(seasonal[i], kql.series_seasonal(row))
        for name, value in kql.series_fit_line(row)._asdict().items():
            np.testing.assert_array_equal(getattr(fits, name)[i], value)
        for many, one in [(detected, kql.series_periods_detect(row, 0, 20, 3)),
                          (validated, kql.series_periods_validate(row, 4, 6, 8))]:
            np.testing.assert_array_equal(many.periods[i], one.periods)
            np.testing.assert_array_equal(many.scores[i], one.scores)


def test_noisy_period_prefers_fundamental_over_multiples():
    row = _mixed_rows()[0]  # period 4 plus noise; 16 scores marginally higher
    scores = kql.series_periods_validate(row, 4, 16).scores
    assert scores[1] > scores[0] > scores[1] - 0.03
    assert kql.series_periods_detect(row, 0, 24, 1).periods.tolist() == [4.0]
    strict = kql.HarmonicAcfDetector(harmonic_tolerance=0.0)
    assert kql.series_periods_detect(row, 0, 24, 1, detector=strict).periods.tolist() == [16.0]


# ---------------------------------------------------------------------------- make-series


def test_make_series_keys_count_sum_and_anchor():
    start = np.datetime64("2024-01-01T06:00")
    times = np.array(
        ["2024-01-01T05:59", "2024-01-01T06:00", "2024-01-02T05:59", "2024-01-02T06:00",
         "2024-01-03T12:00", "2024-01-04T06:00", "2024-01-01T10:00"],
        dtype="datetime64[m]",
    )
    keys = np.array(["a", "a", "a", "b", "a", "c", "b"])
    values = np.array([100, 1, 2, 3, 4, 5, 6])
    common = dict(start=start, end=start + np.timedelta64(3, "D"), step=np.timedelta64(1, "D"))
    counts = kql.make_series(times, keys=keys, **common)
    assert counts.keys.tolist() == ["a", "b"]  # "c" only has a row at the exclusive end
    np.testing.assert_array_equal(counts.series, [[2, 0, 1], [1, 1, 0]])
    np.testing.assert_array_equal(counts.axis, start + np.arange(3) * np.timedelta64(1, "D"))
    sums = kql.make_series(times, values, agg="sum", keys=keys, default=-1, **common)
    np.testing.assert_array_equal(sums.series, [[3, -1, 4], [6, 3, -1]])
    partial = kql.make_series(times, start=start, end=start + np.timedelta64(30, "h"),
                              step=np.timedelta64(1, "D"))
    assert partial.series.tolist() == [3, 1]  # ceil(30h / 24h) = 2 bins


def test_make_series_rejects_bad_arguments():
    t = np.array(["2024-01-01"], dtype="datetime64[D]")
    day = np.timedelta64(1, "D")
    with pytest.raises(ValueError):
        kql.make_series(t, start=t[0], end=t[0] + day, step=np.timedelta64(0, "D"))
    with pytest.raises(ValueError):
        kql.make_series(t, start=t[0], end=t[0] + day, step=day, agg="sum")
    with pytest.raises(ValueError):
        kql.make_series(t, start=t[0], end=t[0] + np.timedelta64(2**21, "s"),
                        step=np.timedelta64(1, "s"))


# ------------------------------------------------------------------------- spec §8 edges


@pytest.mark.parametrize("value", [0.0, 3.0, 1e9 + 0.1])
@pytest.mark.parametrize("trend", ["avg", "linefit"])
def test_constant_series_scores_zero(value, trend):
    x = np.full(14, value)
    flags, scores, _ = kql.series_decompose_anomalies(x, 1.5, -1, trend)
    assert not scores.any() and not flags.any()


@pytest.mark.parametrize("n, slope, intercept", [(20, 0.3, 1e9), (15, 1e6 + 0.7, 0.0), (40, -1 / 3, 7.3)])
def test_exact_line_is_not_anomalous(n, slope, intercept):
    # Rounding noise of the fit must neither look periodic nor be scored.
    x = slope * np.arange(n) + intercept
    d = kql.series_decompose(x, trend="linefit")
    assert not d.seasonal.any() and not d.residual.any()
    assert not kql.series_decompose_anomalies(x, 1.5, -1, "linefit").ad_score.any()


def test_zero_spread_option():
    x = [5.0] * 13 + [9.0]
    flags, scores, _ = kql.series_decompose_anomalies(x, 1.5, 0, "none")
    assert scores[-1] == np.inf and flags[-1] == 1 and not scores[:-1].any()
    flags, scores, _ = kql.series_decompose_anomalies(x, 1.5, 0, "none", zero_spread="zero")
    assert not scores.any() and not flags.any()
    assert kql.series_outliers([1.0] * 12 + [0.0], zero_spread="inf")[-1] == -np.inf
    with pytest.raises(ValueError):
        kql.series_outliers(x, zero_spread="nan")


def test_test_points_must_leave_learning_data():
    for t in (3, 4, -1):
        with pytest.raises(ValueError, match="test_points"):
            kql.series_decompose_anomalies([1.0, 2, 3], test_points=t)


@pytest.mark.parametrize("x", [[4.0], [4.0, 9.0]])
def test_tiny_linefit_has_zero_residual(x):
    d = kql.series_decompose(x, trend="linefit")
    np.testing.assert_array_equal(d.residual, 0)
    assert not kql.series_decompose_anomalies(x, trend="linefit").ad_score.any()


def test_percentile_bounds_and_approximation():
    x = np.arange(20.0)
    for lo, hi in [(1, 90), (10, 99), (50, 40)]:
        with pytest.raises(ValueError):
            kql.series_outliers(x, min_percentile=lo, max_percentile=hi)
    with pytest.raises(ValueError):
        kql.series_outliers(x, kind="zscore")
    with pytest.warns(kql.KqlConformanceWarning):
        kql.series_outliers(x, min_percentile=5, max_percentile=95)
    assert kql._approximate_nf(10, 90) == pytest.approx(NF, rel=1e-12)


def test_nulls_and_ignore_val_are_excluded_and_score_zero():
    x = [np.nan, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 30, -1]
    got = kql.series_outliers(x, ignore_val=-1)
    assert got[0] == 0 and got[-1] == 0
    np.testing.assert_allclose(got[1:-1], kql.series_outliers(x[1:-1]))


def test_empty_and_bad_shapes():
    assert kql.series_decompose_anomalies([]).ad_score.shape == (0,)
    assert kql.series_outliers(np.zeros((3, 0))).shape == (3, 0)
    with pytest.raises(ValueError):
        kql.series_outliers(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError):
        kql.series_decompose([1.0, 2, 3], seasonality=-2)
    with pytest.raises(ValueError):
        kql.series_decompose([1.0, 2, 3], trend="poly")
