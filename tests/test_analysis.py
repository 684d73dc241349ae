"""Beyond the rule: talkers behind an alert, backtests equal to day-by-day runs, and the
missing-data report and option."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

import portlens
from portlens import demo, formats, monitor
from portlens.cli import _write_jsonl
from portlens.rules import port_anomaly as rule
from portlens.store import Store

END = datetime(2024, 5, 15, 6, 0, tzinfo=timezone.utc)
CONFIG = monitor.load_config(None)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("analysis")
    path = folder / "traffic.jsonl"
    _write_jsonl(demo.generate(END, days=20, scale=0.25), path)
    with Store(str(folder / "s.duckdb")) as s:
        s.ingest(str(path))
    with Store(str(folder / "s.duckdb"), read_only=True) as s:
        yield s


def test_talkers_name_the_injected_sources(store):
    result = portlens.detect(store, config=CONFIG, as_of=END)
    rdp = next(a for a in result.alerts if a.port == 3389)
    deny = next(s for s in rdp.series if s.action == "Deny")
    top = deny.talkers["SrcIpAddr"]
    injected = {"203.0.113.45", "203.0.113.46", "198.51.100.7"}
    assert {t.value for t in top[:3]} == injected
    assert all(t.new and t.usual_share == 0 for t in top[:3])
    assert sum(t.count for t in top[:3]) <= deny.total
    assert abs(sum(t.share for t in deny.talkers["Dvc"]) - 1) < 1e-6
    assert rdp.raw_retained is True and rdp.notes == []
    assert {t.value for t in rdp.talkers["SrcIpAddr"][:3]} == injected  # merged over the series
    json.dumps([formats.to_record(a) for a in result.alerts], allow_nan=False)


def test_backtest_equals_day_by_day_runs(store):
    first = END - timedelta(days=5)
    days = portlens.backtest(store, first, END, config=CONFIG)
    assert [d.window.as_of for d in days] == [first + timedelta(days=i) for i in range(6)]
    for i, got in enumerate(days):
        alone = portlens.detect(store, config=CONFIG, as_of=first + timedelta(days=i))
        assert got.series_count == alone.series_count
        assert [formats.to_record(a) for a in got.alerts] == [formats.to_record(a) for a in alone.alerts]
    assert sorted(a.kind for a in days[-1].alerts) == ["anomaly", "anomaly", "static"]
    assert all(not d.alerts for d in days[:-1])


def test_missing_days_are_reported_and_can_be_skipped(tmp_path):
    # Steady RDP traffic with a three-day sensor outage in the middle, then a spike.
    rows = []
    for day in range(14):
        if day in (4, 5, 6):
            continue  # nothing from any source
        n = 300 if day == 13 else 40
        for i in range(n):
            t = END - timedelta(days=14 - day) + timedelta(minutes=2 * i + 1)
            for port, action in ((3389, "Deny"), (443, "Allow")):
                if port == 443 or day != 9:  # day 9: traffic elsewhere, none on RDP
                    rows.append({"TimeGenerated": t.isoformat(), "DstPortNumber": port, "NetworkProtocol": "TCP",
                                 "NetworkDirection": "Inbound", "DvcAction": action})
    path = tmp_path / "gap.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with Store(str(tmp_path / "s.duckdb")) as s:
        s.ingest(str(path))
        zero = portlens.detect(s, config=CONFIG, as_of=END)
        skip = portlens.detect(s, config=CONFIG, as_of=END, missing_days="skip")
    [a] = zero.alerts
    series = a.series[0]
    bins = rule.Window(END).bins()
    assert series.outage_days == bins[4:7]
    assert series.quiet_days == [bins[9]]
    assert formats.to_record(a)["series"][0]["outage_days"] == [b.strftime("%Y-%m-%dT%H:%M:%SZ") for b in bins[4:7]]
    # Skipping the outage days changes the fit (here: 11 real days, no fake dip), so the
    # zero-filled alert does not survive; skipped days carry no baseline or score.
    assert skip.alerts == []
    window = rule.Window(END)
    with Store(str(tmp_path / "s.duckdb"), read_only=True) as s:
        series = rule.daily_series(s.daily_counts(window.start, window.days, rule.KEYS), window)
    outage = rule.outage_days(series)
    assert outage.tolist() == [False] * 4 + [True] * 3 + [False] * 7
    fit = rule.score_series(series, missing_days="skip", outage=outage)
    assert np.isnan(fit["scores"][:, 4:7]).all() and np.isfinite(fit["scores"][:, 7:]).all()
    zero_fit = rule.score_series(series, missing_days="zero", outage=outage)
    assert not np.allclose(zero_fit["baselines"][:, -1], fit["baselines"][:, -1])
