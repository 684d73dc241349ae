"""Property tests for portlens.kql (hypothesis)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from portlens import kql

settings.register_profile("kql", max_examples=60, deadline=None)
settings.load_profile("kql")

counts = arrays(np.float64, st.integers(1, 40), elements=st.integers(0, 10_000).map(float))
reals = arrays(
    np.float64,
    st.integers(1, 40),
    elements=st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False),
)


@given(reals)
def test_scores_zero_inside_fences_and_signed_outside(x):
    lo, hi = np.percentile(x, [10, 90])
    score = kql.series_outliers(x)
    inside = (x >= lo) & (x <= hi)
    assert not score[inside].any()
    assert (score[x > hi] >= 0).all() and (score[x < lo] <= 0).all()
    assert np.array_equal(np.sign(score[~inside]) != 0, np.abs(score[~inside]) > 0)


@given(counts, st.integers(-4, 4))
def test_scores_invariant_under_positive_scaling(x, power):
    c = 2.0**power  # powers of two scale exactly, so every comparison is preserved
    np.testing.assert_array_equal(kql.series_outliers(x * c), kql.series_outliers(x))


@given(counts, st.integers(-10_000, 10_000))
def test_scores_invariant_under_shift(x, shift):
    np.testing.assert_allclose(kql.series_outliers(x + shift), kql.series_outliers(x), atol=1e-9)


@given(counts, st.randoms(use_true_random=False))
def test_scores_follow_permutations(x, rnd):
    order = np.arange(x.size)
    rnd.shuffle(order)
    np.testing.assert_array_equal(kql.series_outliers(x[order]), kql.series_outliers(x)[order])


@given(
    counts,
    st.sampled_from([-1, 0, 3, 7]),
    st.sampled_from(["avg", "linefit", "none"]),
    st.integers(0, 3),
)
def test_decompose_baseline_plus_residual_is_input(x, seasonality, trend, test_points):
    test_points = min(test_points, x.size - 1)
    d = kql.series_decompose(x, seasonality, trend, test_points)
    np.testing.assert_allclose(d.baseline + d.residual, x, rtol=0, atol=1e-6)
    np.testing.assert_allclose(d.seasonal + d.trend, d.baseline, rtol=0, atol=1e-6)


@given(
    st.integers(2, 60),
    st.floats(-1e3, 1e3, allow_nan=False),
    st.floats(-1e3, 1e3, allow_nan=False),
)
def test_fit_line_recovers_exact_lines(n, slope, intercept):
    x = np.arange(1, n + 1)
    y = slope * x + intercept
    fit = kql.series_fit_line(y)
    scale = 1e-9 * (abs(slope) * n + abs(intercept) + 1)
    np.testing.assert_allclose(fit.line_fit, y, atol=scale)
    assert abs(fit.slope - slope) <= scale
    assert abs(fit.interception - intercept) <= scale * n
    assert fit.rvariance <= scale**2 * n


@given(arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 30)),
              elements=st.integers(0, 50).map(float)))
def test_2d_outliers_and_anomalies_match_rows(x):
    scores = kql.series_outliers(x)
    flags, ad_scores, baseline = kql.series_decompose_anomalies(x, 1.5, -1, "linefit")
    for i, row in enumerate(x):
        np.testing.assert_array_equal(scores[i], kql.series_outliers(row))
        one = kql.series_decompose_anomalies(row, 1.5, -1, "linefit")
        np.testing.assert_array_equal(flags[i], one.ad_flag)
        np.testing.assert_array_equal(ad_scores[i], one.ad_score)
        np.testing.assert_array_equal(baseline[i], one.baseline)
