"""The `improved` profile's model (portlens.rules.improved): small exact cases, properties,
and a small run of the labeled benchmark (bench/quality.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portlens.rules import improved
from portlens.rules.improved import ALERT, LOW_VOLUME, OUTAGE, SHORT_HISTORY, WITHIN, Params

prop = settings(max_examples=60, deadline=None)


def score(history, today, outage=None, **params):
    """Score one series: history days then today."""
    counts = np.array([list(history) + [today]], dtype=float)
    return improved.score_last_day(counts, outage, Params(**params))


def steady(days=56, level=200, seed=0):
    """A steady series with Poisson noise."""
    return np.random.default_rng(seed).poisson(level, days).tolist()


# ---- small exact cases ----------------------------------------------------------------------

def test_constant_series_expects_itself_and_stays_silent():
    s = score([100] * 56, 100)
    assert s.expected[0] == 100 and s.score[0] == 0 and not s.alert[0]
    assert s.reason[0] == WITHIN and s.lower[0] < 100 < s.upper[0]


def test_a_tenfold_day_alerts_and_says_why():
    s = score(steady(), 2000)
    assert s.alert[0] and s.reason[0] == ALERT
    assert 180 < s.expected[0] < 220 and s.upper[0] < 2000
    text = improved.explain(s, 0)
    assert "2000 sessions vs" in text and "above the expected interval" in text


def test_poisson_noise_floor_a_steady_key_is_not_overconfident():
    # An exactly regular key (variance 0) is still given Poisson's noise: +10% is not news.
    s = score([1000] * 56, 1100)
    assert not s.alert[0] and s.theta[0] < 1e-6


def test_weekly_profile_weekend_surge_alerts_weekday_level_does_not():
    week = [1000, 1000, 1000, 1000, 1000, 100, 100]  # today (index 56) is a Monday-like day 0
    history = (week * 9)[:56]
    weekday = score(history, 1000)                     # history[56 % 7] = week[0]
    assert weekday.seasonal[0] and abs(weekday.expected[0] - 1000) < 20 and not weekday.alert[0]
    seq = week * 9
    assert seq[61] == 100                              # day 61 is a weekend day
    weekend = score(seq[5:61], 400)
    assert weekend.seasonal[0] and abs(weekend.expected[0] - 100) < 3
    assert weekend.weekday_factor[0] < 0.2 and weekend.alert[0]
    # the same 400 on a key without weekly rhythm and a ~740 level is nothing
    assert not score([743] * 56, 400).alert[0]


def test_silent_below_minimum_volume():
    s = score([1] * 56, 9, threshold=2.5)
    assert s.score[0] > 2.5 and not s.alert[0] and s.reason[0] == LOW_VOLUME
    assert score([1] * 56, 9, threshold=2.5, min_volume=5).alert[0]


def test_outage_today_is_silent():
    outage = np.zeros(57, bool)
    outage[-1] = True
    s = score(steady(), 0, outage)
    assert not s.alert[0] and s.reason[0] == OUTAGE and np.isnan(s.score[0])


def test_short_history_is_silent_and_leading_zeros_are_not_history():
    s = score([0] * 50 + [100] * 6, 5000)
    assert s.history[0] == 6 and s.reason[0] == SHORT_HISTORY and not s.alert[0]
    assert "too little history" in improved.explain(s, 0)
    s = score([0] * 49 + [100] * 7, 5000)
    assert s.history[0] == 7 and s.alert[0]


def test_only_history_days_count_and_older_days_are_ignored():
    history = steady(80)
    history[:24] = [10**6] * 24                      # beyond the 56-day history
    assert score(history, 200).expected[0] == score(history[24:], 200).expected[0]


def test_growth_carries_the_level_forward():
    grow = [round(100 * 1.01 ** d) for d in range(56)]
    with_trend, without = score(grow, 175), score(grow, 175, trend=False)
    assert with_trend.expected[0] > without.expected[0]
    assert abs(with_trend.expected[0] - 100 * 1.01 ** 56) / (100 * 1.01 ** 56) < 0.05


def test_shorter_history_scores_lower_for_the_same_day():
    long, short = score(steady(56), 320), score(steady(56)[-14:], 320)
    assert long.score[0] > short.score[0] > 0


def test_bad_counts_are_refused():
    with pytest.raises(ValueError, match="not negative"):
        improved.score_last_day(np.array([[1.0, -1.0, 2.0]]))
    with pytest.raises(ValueError, match="series, days"):
        improved.score_last_day(np.array([1.0, 2.0]))


def test_alerts_at_another_threshold_reuses_the_scores():
    counts = np.array([steady(56, seed=i) + [v] for i, v in enumerate((200, 280, 400, 3000))], float)
    s = improved.score_last_day(counts)
    assert s.alert.tolist() == improved.alerts(s, Params().threshold, Params().min_volume).tolist()
    assert improved.alerts(s, 100.0, 10).sum() <= improved.alerts(s, 3.0, 10).sum()


def test_collective_dips_find_a_holiday_and_partial_loss_but_not_one_key():
    rng = np.random.default_rng(1)
    counts = rng.poisson(500, (40, 70)).astype(float)
    counts[:20, 50] *= 0.3                            # half the keys: a holiday
    counts[:, 60] *= 0.5                              # every key: partial loss
    counts[0, 65] = 0                                 # one key quiet: not collective
    dips = improved.collective_dips(counts)
    assert np.flatnonzero(dips).tolist() == [50, 60]
    outage = np.zeros(70, bool)
    outage[60] = True
    assert np.flatnonzero(improved.collective_dips(counts, outage)).tolist() == [50]


# ---- properties -----------------------------------------------------------------------------

histories = st.builds(lambda level, days, seed: np.random.default_rng(seed).poisson(level, days).tolist(),
                      st.integers(1, 5000), st.integers(8, 70), st.integers(0, 2**32 - 1))


@prop
@given(st.integers(0, 10**7), st.integers(2, 80))
def test_no_alert_on_a_constant_series(level, days):
    s = score([level] * (days - 1), level)
    assert not s.alert[0]
    assert (s.score[0] == 0) if level and days > 7 else np.isnan(s.score[0])


@prop
@given(histories, st.integers(0, 10**6), st.integers(0, 10**6))
def test_monotone_in_surge_size(history, a, b):
    lo, hi = sorted((a, b))
    counts = np.array([history + [lo], history + [hi]], dtype=float)
    s = improved.score_last_day(counts)
    if np.isfinite(s.score[0]):
        assert s.score[0] <= s.score[1] + 1e-9
    assert s.alert[1] or not s.alert[0]


@prop
@given(histories, st.integers(0, 9))
def test_silent_below_the_minimum_volume(history, today):
    assert not score(history, today, min_volume=10).alert[0]


@prop
@given(histories, st.integers(0, 2**32 - 1), st.integers(0, 10**6))
def test_outage_days_are_ignored(history, seed, today):
    rng = np.random.default_rng(seed)
    outage = rng.random(len(history) + 1) < 0.2
    outage[-1] = False
    other = np.array(history, dtype=float)
    other[outage[:-1]] = rng.integers(0, 10**6, outage[:-1].sum())
    a, b = score(history, today, outage), score(other.tolist(), today, outage)
    for name in ("score", "expected", "lower", "upper", "alert", "reason", "history"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


@prop
@given(st.lists(histories, min_size=2, max_size=6), st.integers(0, 10**5), st.floats(0, 0.2))
def test_each_row_scores_as_if_alone_under_a_fixed_prior(rows, today, prior):
    days = min(len(r) for r in rows)
    counts = np.array([r[-days:] + [today] for r in rows], dtype=float)
    params = Params(prior_theta=prior)
    together = improved.score_last_day(counts, params=params)
    for i in range(len(rows)):
        alone = improved.score_last_day(counts[i:i + 1], params=params)
        # the same up to the order NumPy sums in (a last bit)
        np.testing.assert_allclose(together.score[i:i + 1], alone.score, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(together.expected[i:i + 1], alone.expected, rtol=1e-12)


@prop
@given(st.lists(histories, min_size=4, max_size=4), st.integers(0, 10**5))
def test_groups_score_as_if_alone(rows, today):
    # A backtest scores many as-of days in one call: each day's keys are one group, and
    # its prior (the group's median over-dispersion) is the one a run on that day has.
    days = min(len(r) for r in rows)
    counts = np.array([r[-days:] + [today] for r in rows], dtype=float)
    together = improved.score_last_day(counts, group_size=2)
    for g in (0, 2):
        alone = improved.score_last_day(counts[g:g + 2])
        np.testing.assert_allclose(together.score[g:g + 2], alone.score, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(together.theta[g:g + 2], alone.theta, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="not groups of 3"):
        improved.score_last_day(counts, group_size=3)


def test_a_calm_looking_key_is_moderated_towards_its_group():
    rng = np.random.default_rng(4)
    noisy = (1000 * rng.gamma(25, 1 / 25, (30, 57))).round()      # day-to-day CV 20%
    calm = np.full((1, 57), 1000.0)                               # a history without noise
    counts = np.vstack([noisy, calm])
    counts[:, -1] = calm[:, -1] = 1300
    together = improved.score_last_day(counts)
    alone = improved.score_last_day(calm)
    assert alone.theta[0] < 1e-6 < together.theta[-1]
    assert together.score[-1] < alone.score[-1]                   # +30% is news only alone
    assert improved.score_last_day(counts, params=Params(prior_days=0)).theta[-1] < 1e-6


# ---- the labeled benchmark, small ----------------------------------------------------------

def _quality():
    path = Path(__file__).resolve().parents[1] / "bench" / "quality.py"
    spec = importlib.util.spec_from_file_location("bench_quality", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module                  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def test_benchmark_labels_and_both_profiles_score_it(tmp_path):
    q = _quality()
    bench = q.generate(200, 100, seed=3)
    kinds = {i["kind"] for i in bench.incidents}
    assert kinds == {"surge", "ramp", "quiet-burst"}
    outage = q.outage_days(bench.counts)
    assert outage.sum() == 2
    assert not any(outage[i["days"]].any() for i in bench.incidents)
    sentinel = q.evaluate(bench, q.sentinel_alerts(q.sentinel(bench.counts, q.EVAL_START)))
    mine = q.evaluate(bench, q.run_improved(bench.counts, q.EVAL_START, Params()).alert)
    assert mine["surge_2x_plus"][1] == sentinel["surge_2x_plus"][1] > 0
    assert mine["surge_2x_plus"][0] > sentinel["surge_2x_plus"][0]
    assert mine["normal_key_days"] == sentinel["normal_key_days"] > 0
    q.main(["--keys", "120", "--days", "80", "--seeds", "1", "--out", str(tmp_path / "q")])
    assert (tmp_path / "q.md").read_text().count("| surge x") == 5
    assert (tmp_path / "q.png").stat().st_size > 0


# ---- the profile over a store's daily counts (the summary tier alone) -----------------------

def _summary_export(path, end, days=90, surge=None):
    """A NetworkSummary_Protocol_CL-shaped CSV: one row per key and day. Port 3389 follows
    office hours (quiet weekends); port 445 is flat. `surge` multiplies 3389's last day."""
    from datetime import timedelta
    rng = np.random.default_rng(5)
    lines = ["NetworkProtocol,DstPortNumber,DstAppName,NetworkDirection,DvcAction,EventTime,count_"]
    for d in range(days):
        day = end - timedelta(days=days - d)
        weekend = day.weekday() >= 5
        rdp = rng.poisson(60 if weekend else 900) * (surge if surge and d == days - 1 else 1)
        lines.append(f"tcp,3389,,Inbound,Allow,{day.isoformat()},{int(rdp)}")
        lines.append(f"tcp,445,,Inbound,Allow,{day.isoformat()},{rng.poisson(400)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _profile_run(tmp_path, surge, days=1):
    from datetime import datetime, timedelta, timezone

    from portlens.rules import port_anomaly
    from portlens.store import Store
    end = datetime(2024, 6, 5, tzinfo=timezone.utc)          # a Wednesday: the last day is a Tuesday
    store = Store(str(tmp_path / "s.duckdb"))
    store.import_summaries(str(_summary_export(tmp_path / "export.csv", end, surge=surge)))
    first = end - timedelta(days=days - 1)
    n = improved.span_days(days)
    span = port_anomaly.Window(end, days=n)
    whole = port_anomaly.daily_series(store.daily_counts(span.start, n, port_anomaly.KEYS), span)
    store.close()
    return improved.score_windows(whole, first, days)


def test_profile_scores_the_store_summaries_and_explains(tmp_path):
    [(series, fit)] = _profile_run(tmp_path, surge=2)
    assert series.totals.shape[1] == Params().history_days + 1
    found = improved.survivors(series, fit).to_pylist()
    assert [r["DstPortNumber"] for r in found] == [3389]
    extra = improved.extras(fit, found[0]["_row"])
    assert 800 < extra["expected"] < 1000 and extra["upper"] < series.totals[found[0]["_row"], -1]
    assert extra["weekly_profile"] and extra["reason"] == "above the expected interval"
    assert "sessions vs" in extra["explanation"]
    # the rule's arrays are there too: the baseline is the expected value, NaN before the day
    assert np.isnan(fit["baselines"][0, :-1]).all() and fit["baselines"][found[0]["_row"], -1] > 0


def test_profile_backtest_days_match_single_runs(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    three, one = _profile_run(tmp_path / "a", surge=None, days=3), _profile_run(tmp_path / "b", surge=None)
    (last_series, last_fit), (only_series, only_fit) = three[-1], one[0]
    assert last_series.window.as_of == only_series.window.as_of
    np.testing.assert_array_equal(last_series.totals, only_series.totals)
    np.testing.assert_allclose(last_fit["score"], only_fit["score"], rtol=1e-12)
    assert not any(f["alert"].any() for _, f in three)


# ---- --profile improved through the front ends ----------------------------------------------
# The same labeled export (3389 doubled on its last day) through the Python API, `detect`
# (one day, a backtest, from summary files and from a store), `report` and `run --watch
# --once`: the same improved alerts everywhere, each saying why; `sentinel` stays the rule.

import json
import os
import subprocess
from datetime import datetime, timedelta, timezone

import portlens
from portlens.errors import UsageError

END = datetime(2024, 6, 5, tzinfo=timezone.utc)


def cli(*args, ok=True):
    r = subprocess.run([sys.executable, "-m", "portlens", *map(str, args)], capture_output=True,
                       text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert (r.returncode == 0) == ok, r.stderr
    assert "Traceback" not in r.stderr
    return r


def records(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    return _summary_export(tmp_path_factory.mktemp("profile") / "export.csv", END, surge=2)


@pytest.fixture(scope="module")
def store_db(export, tmp_path_factory):
    db = tmp_path_factory.mktemp("profile-store") / "s.duckdb"
    cli("import-summaries", export, "--db", db)
    return db


def test_api_improved_alerts_with_the_model_sentinel_unchanged(export):
    mine = portlens.detect(export, profile="improved")
    rule = portlens.detect(export)
    assert mine.profile == "improved" and rule.profile == "sentinel"
    assert rule.window.days == 14 and mine.window.days == Params().history_days + 1
    [alert] = mine.alerts
    assert alert.port == 3389 and alert.profile == "improved" and alert.rule_id == improved.RULE_ID
    assert all(a.rule_id != improved.RULE_ID and a.profile == "sentinel" for a in rule.alerts)
    assert alert.id not in {a.id for a in rule.alerts}
    [s] = alert.series
    assert s.model["lower"] < s.baseline == s.model["expected"] < s.model["upper"] < s.total
    assert s.model["reason"] == "above the expected interval" and s.model["weekly_profile"]
    assert s.model["explanation"].startswith(f"{s.total} sessions vs")
    assert len(s.totals) == len(s.scores) == len(s.baselines) == Params().history_days + 1
    assert portlens.detect(export, profile="sentinel").alerts == rule.alerts


def test_api_improved_backtest_last_day_is_the_single_run(export):
    as_of = portlens.detect(export, profile="improved").window.as_of
    days = portlens.backtest(export, as_of - timedelta(days=6), as_of, profile="improved")
    assert len(days) == 7 and all(d.profile == "improved" for d in days)
    assert [a.id for a in days[-1].alerts] == [a.id for a in portlens.detect(export, profile="improved").alerts]
    assert not any(d.alerts for d in days[:-1])


def test_api_profile_usage_errors(export):
    with pytest.raises(UsageError, match="unknown profile 'fancy'"):
        portlens.detect(export, profile="fancy")
    with pytest.raises(UsageError, match="--missing-days skip applies to the sentinel profile"):
        portlens.detect(export, profile="improved", missing_days="skip")
    short = portlens.detect(export).series                          # the rule's 14 days
    with pytest.raises(UsageError, match="at least 57 days"):
        portlens.detect(short, profile="improved")


def test_cli_detect_improved_jsonl_table_and_backtest(export, store_db):
    from_files = records(cli("detect", "--summaries", export, "--profile", "improved", "--format", "jsonl").stdout)
    from_store = records(cli("detect", "--db", store_db, "--profile", "improved", "--format", "jsonl").stdout)
    api_ids = [a.id for a in portlens.detect(export, profile="improved").alerts]
    assert [a["id"] for a in from_files] == [a["id"] for a in from_store] == api_ids
    [a] = from_files
    assert a["profile"] == "improved" and a["rule_id"] == improved.RULE_ID
    model = a["series"][0]["model"]
    assert model["lower"] < model["expected"] < model["upper"] < a["total"]
    assert a["explanation"]["model"] == [model["explanation"]]
    # the rule's output keeps exactly its shape: no profile key, no model
    rule = records(cli("detect", "--summaries", export, "--format", "jsonl").stdout)
    assert rule == records(cli("detect", "--summaries", export, "--profile", "sentinel", "--format", "jsonl").stdout)
    assert all("profile" not in r and all("model" not in s for s in r["series"]) for r in rule)
    table = cli("detect", "--summaries", export, "--profile", "improved").stdout
    assert "interval" in table and "why Detected Suspicious Remote Desktop" in table
    assert "above the expected interval" in table
    as_of = datetime.fromisoformat(a["window"]["end"].replace("Z", "+00:00"))
    back = records(cli("detect", "--db", store_db, "--profile", "improved", "--format", "jsonl",
                       "--from", (as_of - timedelta(days=3)).isoformat(), "--to", as_of.isoformat()).stdout)
    assert [b["id"] for b in back] == api_ids
    err = cli("detect", "--summaries", export, "--profile", "improved", "--missing-days", "skip", ok=False)
    assert err.stderr.startswith("portlens: error: --missing-days skip applies")


def test_cli_report_and_watch_improved(export, store_db, tmp_path):
    [alert_id] = [a.id for a in portlens.detect(export, profile="improved").alerts]
    cli("report", "--db", store_db, "--profile", "improved", "--output", tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert f'data-alert-id="{alert_id}"' in page and improved.RULE_NAME in page
    assert '<p class="series-why">Why: ' in page
    # the interval is drawn on the day, inside the chart (an SVG 300 units high)
    import re
    interval = re.search(r'<g class="model-interval"><line x1="[\d.]+" y1="([\d.-]+)" x2="[\d.]+" '
                         r'y2="([\d.-]+)"', page)
    low, high = map(float, interval.groups())
    assert 0 < high < low < 300
    cli("report", "--db", store_db, "--output", tmp_path / "rule.html")
    assert alert_id not in (tmp_path / "rule.html").read_text(encoding="utf-8")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    cli("run", "--watch", inbox, "--db", store_db, "--alerts", tmp_path / "a.jsonl", "--once",
        "--profile", "improved")
    [written] = records((tmp_path / "a.jsonl").read_text())
    assert written["id"] == alert_id and written["series"][0]["model"]["expected"] > 0
