"""portlens from Python: open a store, ingest logs, run the rule. Every front end (the CLI's
detect, report, demo, hunt and backtests, the `run --watch` service) goes through `detect` /
`backtest` here, so they all show the same alerts.

    import portlens
    with portlens.open_store("portlens.duckdb") as store:
        portlens.ingest(store, "logs/")
        result = portlens.detect(store)
    result.alerts          # typed portlens.Alert: kind, port (int), series, talkers, ...

`detect` reads a store, summary files (Parquet from portlens or Spark, Sentinel CSV/JSON
exports), or an in-memory table of ASIM rows (Arrow, pandas). Files and tables are loaded
into an in-memory store first, so the rule has one read path.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Union

import pyarrow as pa

from . import explain as explain_step
from . import files, monitor, summary
from .alerts import Alert, Detection
from .errors import NoData, UsageError
from .monitor import MonitorConfig
from .rules import improved, port_anomaly, port_static
from .rules.port_anomaly import KEYS, Series, Window
from .store import DEFAULT_DB, Forgotten, IngestResult, QuarantineListing, Store

__all__ = ["open_store", "ingest", "detect", "backtest", "hunt", "Hunting", "load_config", "Detection", "Alert",
           "forget", "quarantined"]

PathLike = Union[str, os.PathLike]
#: Detection profiles: "sentinel" is the rule exactly; "improved" is portlens' own model
#: (docs/improved.md) over the same daily counts, watchlist rows and alert shape.
PROFILES = ("sentinel", "improved")
Config = Union[MonitorConfig, PathLike, None]


def open_store(path: PathLike = DEFAULT_DB, read_only: bool = False) -> Store:
    """Open (or create) a store; use it as a context manager so it is closed."""
    return Store(os.fspath(path), read_only=read_only)


def load_config(config: Config = None) -> MonitorConfig:
    """A monitor configuration: None for the one Sentinel ships, a path, or one already loaded."""
    return config if isinstance(config, MonitorConfig) else monitor.load_config(config)


def ingest(store: Store, path_or_table: Any, source: str = "auto") -> list[IngestResult]:
    """Store logs: a file, a folder (recursively; portlens' own files such as a store or a
    report are left out), a glob, a list of those, or an in-memory table of ASIM rows.
    Returns one result per file (or one for the table)."""
    table = _as_table(path_or_table)
    if table is not None:
        return [store.ingest_table(table)]
    items = path_or_table if isinstance(path_or_table, (list, tuple)) else [path_or_table]
    return [store.ingest(path, source) for path in files.expand(items).files]


def forget(store: Store, path: PathLike | None = None, *, file_id: int | None = None) -> Forgotten:
    """Remove one ingested file (by path, content or ledger id) from the store: its sessions,
    quarantined records, summaries and ledger entry, in one transaction, so it can be
    ingested again (for example with the right source)."""
    return store.forget(None if path is None else os.fspath(path), file_id)


def quarantined(store: Store, *, file: PathLike | None = None, reason: str | None = None,
                limit: int | None = 50) -> QuarantineListing:
    """The records ingests quarantined (file, line, source, reason, raw text) with counts by
    reason; `file` and `reason` narrow it (reason: a case-insensitive part of it); `limit`
    caps the records listed (None: all), never the counts."""
    return store.quarantined(None if file is None else os.fspath(file), reason, limit)


def detect(data: Any, *, config: Config = None, as_of: datetime | None = None,
           explain: bool = True, static: bool = True, zero_spread: str = "inf",
           tier: str = "auto", missing_days: str = "zero", seasonality: str = "auto",
           profile: str = "sentinel") -> Detection:
    """The port-anomaly rule (and its static-threshold sibling) as of one time.

    data: a Store, a path to a store, summary files (a path, folder, glob or a list), an
    Arrow table / pandas DataFrame of ASIM rows, a prepared daily `Series`, or anything with
    the store's `window_counts` (then without static rows and talkers).
    as_of: end of the 14-day window; default: just after the newest data (next 20-minute
    boundary). explain: add the talkers behind each alert (needs raw sessions). static:
    also run the Detection rows with ThresholdType Static. zero_spread, tier, missing_days
    and seasonality: see `portlens detect --help`. profile: "sentinel" (the rule) or
    "improved" (portlens' own model, docs/improved.md; it reads 56 days of history before
    the day, from the summaries alone if need be)."""
    _check_profile(profile, zero_spread, missing_days, seasonality)
    with _reader(data, tier) as (reader, name):
        first = _as_of(as_of, reader, name)
        return _run(reader, load_config(config), first, 1, explain=explain, static=static,
                    zero_spread=zero_spread, tier=tier, missing_days=missing_days,
                    seasonality=seasonality, profile=profile)[0]


def backtest(data: Any, first_as_of: datetime, last_as_of: datetime, *, config: Config = None,
             explain: bool = True, static: bool = True, zero_spread: str = "inf",
             tier: str = "auto", missing_days: str = "zero", seasonality: str = "auto",
             profile: str = "sentinel") -> list[Detection]:
    """`detect` as of first_as_of and every day after it up to last_as_of (inclusive), from
    one pass over the data. Each as-of ends its window, so the last day scored in a run is
    the day before its as-of."""
    _check_profile(profile, zero_spread, missing_days, seasonality)
    days = (_utc(last_as_of) - _utc(first_as_of)).days + 1
    if days < 1:
        raise UsageError(f"the last as-of {last_as_of.isoformat()} is before the first {first_as_of.isoformat()}")
    with _reader(data, tier) as (reader, _):
        return _run(reader, load_config(config), _utc(first_as_of), days, explain=explain,
                    static=static, zero_spread=zero_spread, tier=tier, missing_days=missing_days,
                    seasonality=seasonality, profile=profile)


def _check_profile(profile: str, zero_spread: str, missing_days: str, seasonality: str) -> None:
    if profile not in PROFILES:
        raise UsageError(f"unknown profile {profile!r} (expected one of {', '.join(PROFILES)})")
    if profile == "improved":
        # These shape the rule's decomposition; the improved model has none of them.
        for name, value, default in (("zero_spread", zero_spread, "inf"), ("missing_days", missing_days, "zero"),
                                     ("seasonality", seasonality, "auto")):
            if value != default:
                raise UsageError(f"--{name.replace('_', '-')} {value} applies to the sentinel profile only "
                                 "(improved always leaves outage days out and finds weekly rhythms itself)")


@dataclass
class Hunting:
    """What the Hunting rows found as of one time (rows, not alerts)."""
    as_of: datetime
    rows: list[dict]


def hunt(data: Any, *, config: Config = None, as_of: datetime | None = None,
         days: int = 1) -> Hunting:
    """What the Hunting rows find (nothing is an alert): every day of the 14-day window where
    an Anomaly hunting row's series passes the score filter, and every 10-minute bin of the
    last `days` days above a Static hunting row's threshold."""
    cfg = load_config(config)
    with _reader(data, "auto") as (reader, name):
        when = _as_of(as_of, reader, name)
        # The same first steps as detect: counts -> daily series -> score.
        [series] = _series(reader, when, 1, "auto")
        [fit] = _score([series])
        rows = port_static.hunt_anomalies(series, cfg, fit) if fit is not None else []
        if isinstance(reader, Store):
            rows += port_static.hunt(reader, cfg, when, days)
        return Hunting(when, rows)


# ---- the pipeline --------------------------------------------------------------------------

def _run(reader, cfg: MonitorConfig, first_as_of: datetime, days: int, *, explain: bool,
         static: bool, zero_spread: str, tier: str, missing_days: str,
         seasonality: str = "auto", profile: str = "sentinel") -> list[Detection]:
    """The rule, step by step, for `days` consecutive as-of times."""
    if profile == "improved":
        # 1-3. the improved profile: daily counts over its history, scored by its model.
        windows, fits = _improved(reader, first_as_of, days, tier)
    else:
        # 1-2. counts -> daily series: one (keys x days) matrix over the whole span; every
        #      14-day window is a slice of it.
        windows = _series(reader, first_as_of, days, tier)
        # 3. score: series_decompose_anomalies on every series of every window at once.
        fits = _score(windows, zero_spread=zero_spread, missing_days=missing_days, seasonality=seasonality)
    stored = isinstance(reader, Store)  # a prepared series has no sessions behind it
    results = []
    for series, fit in zip(windows, fits):
        window = series.window
        present = int(series.totals.any(axis=1).sum()) if series.totals.size else 0
        if present == 0:
            results.append(Detection([], window, 0, series.keys.slice(0, 0), series.tiers, series, fit,
                                     profile=profile))
            continue
        rows = cfg.select("Detection", "Anomaly")
        outage = port_anomaly.outage_days(series)
        if profile == "improved":
            # 4-6. the model's alert flag, the same watchlist join and grouping, with the
            #      expected count, interval and why on every series.
            found = improved.survivors(series, fit)
            alerts = improved.group_alerts(port_anomaly.join_watchlist(found, rows), series, fit, outage)
        else:
            # 4. filter: toint(score) >= 5 and toint(baseline) > 0 on the last day.
            found = port_anomaly.survivors(series, fit)
            # 5. watchlist join: Detection/Anomaly rows on the port, protocol, direction, action.
            joined = port_anomaly.join_watchlist(found, rows)
            # 6. group: one alert per watchlist row and port, with its series.
            alerts = port_anomaly.group_alerts(joined, series, fit, outage, missing_days)
        results.append(Detection(alerts, window, present, found, series.tiers, series, fit, profile=profile))
    for result in results:
        # 7. static-threshold rows: Detection/Static rows on the last complete 10-minute bin.
        if static and stored:
            result.alerts += port_static.run(reader, cfg, result.window.as_of)
        # 8. talkers: who is behind each alert, from the raw sessions still retained.
        if explain and stored and result.alerts:
            explain_step.attach(reader, result.alerts)
        if result.empty and stored:
            result.newest = reader.newest_time()
    return results


def _series(reader, first_as_of: datetime, days: int, tier: str) -> list[Series]:
    if isinstance(reader, _Prepared):
        return [reader.series]
    # The KQL's data selection (selection.py) decides which counts enter each window.
    return port_anomaly.windows(reader.window_counts(first_as_of, days, KEYS, tier=tier), first_as_of, days)


def _improved(reader, first_as_of: datetime, days: int, tier: str) -> tuple[list[Series], list]:
    """The improved profile's daily series (its history and the day, per as-of) and fits: one
    read of daily counts over the whole span (improved.span_days), one scoring call."""
    if isinstance(reader, _Prepared):
        whole, length = reader.series, improved.Params().history_days + 1
        if whole.totals.shape[1] < length:
            raise UsageError(f"the improved profile needs a series of at least {length} days "
                             f"(this one has {whole.totals.shape[1]})")
        pairs = improved.score_windows(whole, whole.window.as_of, 1)
    elif not hasattr(reader, "daily_counts"):
        raise UsageError(f"the improved profile reads daily counts over weeks; "
                         f"{type(reader).__name__} has no daily_counts (use a store or summary files)")
    else:
        n = improved.span_days(days)
        span = Window(first_as_of + timedelta(days=days - 1), days=n)
        whole = port_anomaly.daily_series(reader.daily_counts(span.start, n, KEYS, tier=tier), span)
        pairs = improved.score_windows(whole, first_as_of, days)
    return [series for series, _ in pairs], [fit for _, fit in pairs]


def _score(windows: list[Series], *, zero_spread: str = "inf", missing_days: str = "zero",
           seasonality: str = "auto") -> list:
    """The scoring seam: daily series in, per series and day a fit (flags, scores,
    baselines) out."""
    return port_anomaly.score_windows(windows, zero_spread=zero_spread, missing_days=missing_days,
                                      seasonality=seasonality)


# ---- what detect reads ---------------------------------------------------------------------

class _Prepared:
    """A daily Series given directly: no store behind it (no static rows, no talkers)."""

    def __init__(self, series: Series):
        self.series = series

    def newest_time(self):
        return None


@contextmanager
def _reader(data: Any, tier: str) -> Iterator[tuple[Any, str]]:
    """The Store (or prepared series) the rule reads, and a name for messages."""
    if isinstance(data, Store):
        yield data, data.path
        return
    if isinstance(data, Series):
        yield _Prepared(data), "the series"
        return
    if hasattr(data, "window_counts") and not isinstance(data, summary.SummaryFiles):
        yield data, type(data).__name__  # any reader of the data selection (counts only)
        return
    table = _as_table(data)
    if table is not None:
        with Store(":memory:") as store:
            store.ingest_table(table)
            yield store, "the table"
        return
    if isinstance(data, summary.SummaryFiles):
        data = data.paths
    items = [os.fspath(p) for p in (data if isinstance(data, (list, tuple)) else [data])] \
        if isinstance(data, (str, os.PathLike, list, tuple)) else None
    if not items:
        raise UsageError(f"cannot read {type(data).__name__}: pass a Store, a path, or a table of ASIM rows")
    if len(items) == 1 and _is_duckdb(items[0]):
        with Store(items[0], read_only=True) as store:
            yield store, items[0]
        return
    if tier in ("raw", "sentinel-raw"):
        raise UsageError(f"the {tier} tier needs raw sessions; summary files hold none")
    with Store(":memory:") as store:
        for path in summary.expand(items):
            store.import_summaries(path)
        yield store, " ".join(items)


def _as_table(data: Any) -> pa.Table | None:
    """An Arrow table from Arrow or pandas (or anything with the Arrow stream interface)."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if type(data).__module__.split(".")[0] == "pandas" and hasattr(data, "columns"):
        return pa.Table.from_pandas(data, preserve_index=False)
    if hasattr(data, "__arrow_c_stream__") and not isinstance(data, (str, bytes, os.PathLike)):
        return pa.table(data)
    return None


def _is_duckdb(path: str) -> bool:
    """A DuckDB database file (its header carries 'DUCK' at byte 8)."""
    try:
        with open(path, "rb") as f:
            return f.read(12)[8:12] == b"DUCK"
    except OSError:
        return False


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def _as_of(as_of: datetime | None, reader, name: str) -> datetime:
    if as_of is not None:
        return _utc(as_of)
    if isinstance(reader, _Prepared):
        return reader.series.window.as_of
    newest = reader.newest_time()
    if newest is None:
        raise NoData(f"{name}: holds no sessions")
    return port_anomaly.default_as_of(newest)

