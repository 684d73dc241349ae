"""The alert model: what the rules raise, typed. An `Alert` holds Python values (int port,
datetimes, floats); the KQL shape (port as text, ISO times), OCSF, Sentinel and CEF are made
from it only at the edge, in `formats`. `render_table` draws alerts for people (Rich).

One builder (`AlertBuilder`) groups matching series into alerts for both rules, the way the KQL
`summarize make_set_if(...) by Name, Severity, Tactic, DstPortNumber, Description` does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from .attack import split_tactics
from .terminal import safe

if TYPE_CHECKING:  # the rule module pulls in numpy/pyarrow; only its types are needed here
    import pyarrow as pa

    from .rules.port_anomaly import Series, Window

# The KQL make_set_if limits of both rules.
SET_LIMITS = {"protocols": 20, "directions": 5, "actions": 10}
TALKER_FIELDS = ("SrcIpAddr", "DstIpAddr", "Dvc")


def iso(t: datetime) -> str:
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def alert_id(rule_id: str, name: str, port: int | str, as_of: datetime) -> str:
    """Stable id of one alert: the same rule, monitor name, port and window give the same id,
    so a re-run of the same day can be recognised."""
    text = "|".join([rule_id, name, str(port), iso(as_of)])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class Talker:
    """One value (an address or a device) behind a series on the alert's last bin."""
    value: str
    count: int
    share: float                # of the series' sessions in the alert's bin
    usual_share: float | None   # of its sessions earlier in the window; None: none earlier
    new: bool                   # not seen earlier in the window


@dataclass
class AlertSeries:
    """One (protocol, direction, action) series behind an alert, with its numbers."""
    protocol: str | None
    direction: str | None
    action: str | None
    total: int                                   # sessions in the alert's bin
    baseline: float | None = None                # anomaly rule: linefit baseline of the last day
    score: float | None = None
    totals: list[int] = field(default_factory=list)           # per day of the window
    baselines: list[float | None] = field(default_factory=list)
    scores: list[float | None] = field(default_factory=list)
    outage_days: list[datetime] = field(default_factory=list)  # no data at all that day
    quiet_days: list[datetime] = field(default_factory=list)   # other traffic, none here
    threshold: int | None = None                 # static rule: the row's threshold
    talkers: dict[str, list[Talker]] | None = None  # field -> top values; None: not computed
    raw_sessions_today: int | None = None        # raw sessions behind `total` still retained
    model: dict | None = None                    # improved profile: expected, interval, why


@dataclass
class AlertWindow:
    start: datetime
    end: datetime
    bin: timedelta                       # the alert's bin: 1 day (anomaly) or 10 minutes (static)
    days: int | None = None              # daily bins in the window (anomaly)
    tiers: dict[str, list[int]] | None = None   # sessions per day per origin (anomaly)
    missing_days: str | None = None      # "zero" or "skip" (anomaly)
    counted_from: str | None = None      # which tier the counts came from (static)


@dataclass
class Alert:
    """One alert: a watchlist row (name, severity, tactic, description) on one port, with the
    protocols, directions and actions of the series that fired and those series themselves."""
    id: str
    kind: str                            # "anomaly" or "static"
    name: str
    severity: str
    tactic: str                          # as the watchlist writes it (the KQL column)
    tactics: list[str]                   # Sentinel spellings
    description: str
    port: int
    protocols: list[str]
    directions: list[str]
    actions: list[str]
    window: AlertWindow
    series: list[AlertSeries]
    score: float | None                  # highest series score (anomaly)
    baseline: float | None               # sum of the series' baselines (anomaly)
    total: int                           # sessions in the alert's bin, over its series
    rule_id: str
    rule_name: str
    rule_version: str
    techniques: list[str]
    threshold: int | None = None         # static rule
    notes: list[str] = field(default_factory=list)  # what limits the explanation
    raw_retained: bool | None = None     # None: talkers not computed
    profile: str = "sentinel"            # detection profile that raised it (anomaly)

    @property
    def title(self) -> str:
        return f"Detected {self.name}"

    @property
    def talkers(self) -> dict[str, list[Talker]]:
        """Top talkers per field, merged over the series (counts added), most first; empty
        lists when talkers were not computed."""
        merged: dict[str, dict[str, Talker]] = {f: {} for f in TALKER_FIELDS}
        total = sum(s.total for s in self.series if s.talkers is not None) or 0
        for s in self.series:
            for f, found in (s.talkers or {}).items():
                for t in found:
                    seen = merged.setdefault(f, {}).get(t.value)
                    if seen is None:
                        merged[f][t.value] = Talker(t.value, t.count, 0.0, t.usual_share, t.new)
                    else:
                        seen.count += t.count
                        seen.new = seen.new and t.new
        for values in merged.values():
            for t in values.values():
                t.share = round(t.count / total, 4) if total else 0.0
        return {f: sorted(v.values(), key=lambda t: (-t.count, t.value)) for f, v in merged.items()}


@dataclass
class Detection:
    """The rule's result as of one time: alerts (anomaly, then static), the 14-day window and
    the scored series (keys, totals and fit) they came from."""
    alerts: list[Alert]
    window: "Window"
    series_count: int                    # series with sessions in the window (scored)
    anomalous: "pa.Table" = field(repr=False)  # last-day survivors of the score filter
    tiers: dict[str, list[int]] = field(default_factory=dict)
    series: "Series | None" = field(default=None, repr=False)
    fit: dict | None = field(default=None, repr=False)  # flags/scores/baselines per series and day
    newest: datetime | None = None       # newest data time, when the rule looked it up
    profile: str = "sentinel"            # "sentinel" (the rule) or "improved" (docs/improved.md)

    @property
    def empty(self) -> bool:
        """No sessions at all in the window: nothing was scored."""
        return self.series_count == 0


class AlertBuilder:
    """Groups matched rows into alerts: one per (Name, Severity, Tactic, DstPortNumber,
    Description), with the KQL sets (protocols/directions/actions, capped like make_set_if)."""

    def __init__(self, kind: str, rule: tuple[str, str, str], techniques: tuple[str, ...],
                 window: AlertWindow, profile: str = "sentinel"):
        self.kind, self.rule, self.techniques, self.window = kind, rule, techniques, window
        self.profile = profile
        self.alerts: dict[tuple, Alert] = {}
        self._seen: dict[tuple, set] = {}  # series keys already in each alert

    def add(self, row: dict[str, Any], series: AlertSeries, key: Any = None) -> Alert:
        """Add one matched row (Name, Severity, Tactic, DstPortNumber, Description and the
        series keys); `key` identifies the series so a series matched twice counts once."""
        group = (row["Name"], row["Severity"], row["Tactic"], int(row["DstPortNumber"]), row["Description"])
        alert = self.alerts.get(group)
        if alert is None:
            name, severity, tactic, port, description = group
            rule_id, rule_name, rule_version = self.rule
            alert = self.alerts[group] = Alert(
                id=alert_id(rule_id, name, port, self.window.end), kind=self.kind, name=name,
                severity=severity, tactic=tactic, tactics=split_tactics(tactic),
                description=description, port=port, protocols=[], directions=[], actions=[],
                window=self.window, series=[], score=None, baseline=None, total=0,
                rule_id=rule_id, rule_name=rule_name, rule_version=rule_version,
                techniques=list(self.techniques), threshold=row.get("Threshold"), profile=self.profile)
        for values, value, limit in ((alert.protocols, series.protocol, SET_LIMITS["protocols"]),
                                     (alert.directions, series.direction, SET_LIMITS["directions"]),
                                     (alert.actions, series.action, SET_LIMITS["actions"])):
            if value and value not in values and len(values) < limit:
                values.append(value)
        seen = self._seen.setdefault(group, set())
        if key not in seen:
            seen.add(key)
            alert.series.append(series)
        return alert

    def done(self) -> list[Alert]:
        out = []
        for alert in self.alerts.values():
            alert.total = sum(s.total for s in alert.series)
            if self.kind == "anomaly":
                alert.series.sort(key=lambda s: -s.score)
                alert.score = max(s.score for s in alert.series)
                alert.baseline = sum(s.baseline for s in alert.series)
            out.append(alert)
        return out


# ---- the table for people ------------------------------------------------------------------

_SEVERITY_STYLE = {"High": "bold red", "Medium": "yellow", "Low": "cyan", "Informational": "dim"}


def _severity(value: str) -> str:
    # A watchlist may carry any Severity (Sentinel runs every row but "Disabled").
    style = _SEVERITY_STYLE.get(value)
    return f"[{style}]{safe(value)}[/]" if style else safe(value)


def render_table(alerts: list[Alert], console, *, as_of: str, series_count: int) -> None:
    """The alerts as a Rich table. Every value that comes from logs or the watchlist (talkers,
    protocols, names) goes through terminal.safe: markup and control characters in data are
    shown, never acted on."""
    from rich.table import Table
    if not alerts:
        console.print(f"No alerts as of {as_of} ({series_count} series scored).")
        return
    table = Table(title=f"portlens alerts as of {as_of} ({series_count} series scored)",
                  show_lines=True)
    # The Alert column is never narrower than its longest tactic, so none wraps mid-word.
    widest = max((len(t) for a in alerts for t in a.tactics), default=0)
    for column in ("Severity", "Alert", "Port", "Protocols / directions / actions",
                   "Today", "Baseline", "Score", "Last 14 days", "Top sources today"):
        table.add_column(column, overflow="fold", min_width=widest if column == "Alert" else None)
    for a in alerts:
        top = a.series[0]
        table.add_row(
            _severity(a.severity),
            # One tactic per line: a long list wraps between tactics, never inside one.
            f"{safe(a.title)}\n[dim]{chr(10).join(safe(t) for t in a.tactics) or safe(a.tactic)}[/]",
            str(a.port),
            " / ".join(", ".join(safe(x) for x in v) or "-" for v in (a.protocols, a.directions, a.actions)),
            f"{a.total:,}",
            _baseline(a),
            "-" if a.score is None else f"{a.score:.1f}",
            # The improved profile's series span its whole history; the column shows 14 days.
            sparkline(top.totals[-14:]) if top.totals else f"> {a.threshold:,} in {_minutes(a.window.bin)}",
            _talkers((top.talkers or {}).get("SrcIpAddr", [])),
        )
    console.print(table)
    for a in alerts:
        for s in a.series:  # the improved profile says why each series alerted
            if s.model and s.model.get("explanation"):
                console.print(f"[bold]why[/] {safe(a.title)} ({safe(_series_name(s))}): "
                              f"{safe(s.model['explanation'])}")
        for note in a.notes:
            console.print(f"[yellow]note[/] {safe(a.title)}: {safe(note)}")


def _baseline(a: Alert) -> str:
    """The rule's baseline; for the improved profile the expected count and, below it, the
    interval of counts that would not have alerted (the top series')."""
    if a.baseline is None:
        return "-"
    model = a.series[0].model if a.series else None
    if not model:
        return f"{a.baseline:,.0f}"
    upper = "-" if model.get("upper") is None else f"{model['upper']:,.0f}"
    return f"{a.baseline:,.0f}\n[dim]interval {model['lower'] or 0:,.0f}-{upper}[/]"


def _series_name(s: AlertSeries) -> str:
    return "/".join(v or "-" for v in (s.protocol, s.direction, s.action))


def _minutes(step: timedelta) -> str:
    return f"{int(step.total_seconds() // 60)} min"


def _talkers(talkers: list[Talker], top: int = 3) -> str:
    """'203.0.113.45 32% (new)' lines: share of the day, and 'new' or the usual share."""
    def pct(x: float) -> str:
        return "<1%" if 0 < x < 0.005 else f"{x:.0%}"

    lines = []
    for t in talkers[:top]:
        usual = "new" if t.new else f"usually {pct(t.usual_share or 0)}"
        lines.append(f"{safe(t.value)} {pct(t.share)} ({usual})")
    return "\n".join(lines) or "-"


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    top = max(values) if values else 0
    if top <= 0:
        return _BARS[0] * len(values)
    return "".join(_BARS[min(7, int(v / top * 7.999))] for v in values)
