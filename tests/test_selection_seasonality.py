"""Issue 10 item 8: the seasonality guess is a named option.

The rule calls series_decompose_anomalies(Total, 2.5, -1, 'linefit'): -1 asks Kusto to detect a
period, and how Kusto scores periods is unpublished. portlens' detector can find period 4 in
14 daily points; spec 4.1 expects 14 daily points to get no seasonal component. Which one
Kusto matches is unknown, so both are selectable (--seasonality auto|none) and documented.
"""

from __future__ import annotations

from selectionkit import SURGE, anomaly_row, config, daily, fired, write_jsonl

from portlens.store import Store

# A strict 4-day rhythm, broken on the last day (phase 1 of the rhythm is a quiet day).
RHYTHM = [10, 10, 10, 40] * 3 + [10, 40]


def test_period_four_in_fourteen_days_depends_on_the_named_guess(tmp_path):
    cfg = config(tmp_path, anomaly_row(3389, "RDP"), anomaly_row(22, "SSH"))
    rows = daily(RHYTHM, port=3389) + daily(SURGE, port=22)
    with Store(str(tmp_path / "s.duckdb")) as store:
        store.ingest(write_jsonl(tmp_path / "a.jsonl", rows))
        # auto: period 4 is found, the seasonal baseline for the last day is 10, 40 is an outlier.
        assert fired(store, cfg) == fired(store, cfg, seasonality="auto") == {("RDP", "3389"), ("SSH", "22")}
        # none: a line through the rhythm; 40 is one of its usual peaks.
        assert fired(store, cfg, seasonality="none") == {("SSH", "22")}
