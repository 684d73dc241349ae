"""The analyst report: what fired, the spike that made it fire, and the hosts behind it.

`write_html` writes ONE self-contained page: inline CSS, every chart an inline SVG drawn here,
no scripts, no web fonts, no images or styles fetched from anywhere, so it opens offline and can
be mailed or attached to a ticket. `write_pngs` draws one PNG per alert with matplotlib (the
optional extra `plot`), for places that take images only.

Both read a `Detection` from `api.detect`, whose explanation step adds the talkers and notes
(with explain=False the page says the talkers were not computed).
"""

from __future__ import annotations

import html
import math
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__

if TYPE_CHECKING:
    from .alerts import Alert, AlertSeries, Detection

# Colours: ordinary days, the anomalous day (the marker), the baseline, days without any data.
BAR = "#7393b8"
ANOMALY = "#d7301f"
ANOMALY_BAND = "#fde3df"
BASELINE = "#1d6b66"
OUTAGE = "#e4e4e4"

TIER_NOTES = {
    "summary": "20-minute summaries built when log files were ingested",
    "raw": "raw sessions (the rule's raw fallback, or --tier raw)",
    "imported": "NetworkSummary_Protocol_CL rows imported from Sentinel exports",
    "legacy": "NetworkCustomAnalytics_protocol_CL rows (counted only without recent summaries)",
}
TALKER_FIELDS = (("SrcIpAddr", "Top sources"), ("DstIpAddr", "Top destinations"),
                 ("Dvc", "Reporting devices"))
_SEVERITY_CLASS = {"high": "sev-high", "medium": "sev-medium", "low": "sev-low",
                   "informational": "sev-info"}


# ---------------------------------------------------------------------------------------------
# small formatting helpers

def _e(value: Any) -> str:
    """Escaped text for element content and quoted attribute values."""
    return "" if value is None else html.escape(str(value), quote=True)


def _finite(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _num(value: Any, digits: int | None = None) -> str:
    """1,234 for counts; floats keep one decimal below 100 (or `digits`); missing -> an em dash."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    v = _finite(value)
    if v is None:
        return "—"
    if digits is not None:
        return f"{v:,.{digits}f}"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.1f}"


def _pct(share: Any) -> str:
    v = _finite(share)
    if v is None:
        return "—"
    if 0 < v < 0.001:
        return "&lt;0.1%"
    return f"{v * 100:.1f}%"


def _when(t: datetime) -> str:
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _figure_value(value: Any) -> str:
    if isinstance(value, float):
        return _e(_num(value, 2))
    if isinstance(value, int) and not isinstance(value, bool):
        return _e(f"{value:,}")
    if isinstance(value, datetime):
        return _e(_when(value))
    return _e(value)


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round axis ticks covering [lo, hi] (steps of 1, 2, 2.5 or 5 times a power of ten)."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    last = math.ceil(hi / step) * step
    n = int(round((last - first) / step))
    return [first + i * step for i in range(n + 1)]


def _tick_label(v: float) -> str:
    if abs(v) >= 10_000:
        return f"{v / 1000:,.0f}k"
    if abs(v) >= 1000 and v % 1000:
        return f"{v / 1000:,.1f}k"
    if abs(v) >= 1000:
        return f"{v / 1000:,.0f}k"
    return f"{v:g}"


def _series_label(s: dict) -> str:
    return " · ".join(str(v or "(none)") for v in (s.protocol, s.direction, s.action))


def _day_index(window, days: list[datetime]) -> set[int]:
    """Bin numbers of day starts (outage_days / quiet_days of a series)."""
    out = set()
    for t in days:
        i = round((t - window.start).total_seconds() / 86400)
        if 0 <= i < window.days:
            out.add(int(i))
    return out


# ---------------------------------------------------------------------------------------------
# the SVG chart of one series

def _svg_chart(alert: dict, series: dict, window, number: int) -> str:
    totals = [int(v) for v in series.totals or []]
    days = len(totals)
    if not days:
        return '<p class="muted">No daily totals for this series.</p>'
    baselines = list(series.baselines or [])
    baselines = [_finite(b) for b in baselines] + [None] * (days - len(baselines))
    scores = list(series.scores or [])
    scores = [_finite(v) for v in scores] + [None] * (days - len(scores))
    bins = [window.start + timedelta(days=i) for i in range(days)]
    outage = _day_index(window, series.outage_days)
    last = days - 1
    model = series.model or {}

    width, height = 1060, 300
    left, right, top, bottom = 62, 18, 46, 46
    pw, ph = width - left - right, height - top - bottom
    values = totals + [b for b in baselines if b is not None] + \
        [v for v in (_finite(model.get("lower")), _finite(model.get("upper"))) if v is not None]
    ticks = _nice_ticks(min(0.0, min(values)), max(1.0, max(values)) * 1.18)
    y_lo, y_hi = ticks[0], ticks[-1]

    def y(v: float) -> float:
        return top + ph * (y_hi - v) / (y_hi - y_lo)

    slot = pw / days
    bar_w = slot * 0.66

    def x(i: int) -> float:
        return left + i * slot + (slot - bar_w) / 2

    aid = _e(alert.id)
    title_id = f"chart-{aid}-{number}"
    today = series.total
    summary = (f"{alert.title}, {_series_label(series)}: daily sessions over {days} days; "
               f"the last day has {_num(today)} sessions against a baseline of "
               f"{_num(series.baseline)} (score {_num(series.score, 1)}).")
    out = [f'<svg class="series-chart" data-alert-id="{aid}" data-series="{_e(_series_label(series))}" '
           f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
           f'aria-labelledby="{title_id}" font-family="inherit">',
           f'<title id="{title_id}">{_e(summary)}</title>',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>']

    # legend (top row)
    lx, ly = left, 16
    legend = [("rect", BAR, "daily sessions"), ("rect", ANOMALY, "anomalous last day"),
              ("line", BASELINE, "expected count and interval (improved model)" if model
               else "baseline (linefit trend)")]
    if outage:
        legend.append(("rect", OUTAGE, "no data at all (outage)"))
    for kind, colour, text in legend:
        if kind == "rect":
            out.append(f'<rect x="{lx}" y="{ly - 9}" width="12" height="12" fill="{colour}"/>')
        else:
            out.append(f'<line x1="{lx}" y1="{ly - 3}" x2="{lx + 14}" y2="{ly - 3}" stroke="{colour}" '
                       f'stroke-width="2.5" stroke-dasharray="5 3"/>')
        out.append(f'<text x="{lx + 18}" y="{ly + 1}" font-size="12" fill="#333">{_e(text)}</text>')
        lx += 26 + 7 * len(text)

    # grid and y axis
    for t in ticks:
        yy = y(t)
        colour, w = ("#888", 1.2) if t == 0 else ("#e6e6e6", 1)
        out.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{left + pw}" y2="{yy:.1f}" stroke="{colour}" '
                   f'stroke-width="{w}"/>')
        out.append(f'<text x="{left - 8}" y="{yy + 4:.1f}" font-size="11" fill="#555" '
                   f'text-anchor="end">{_e(_tick_label(t))}</text>')
    out.append(f'<text x="14" y="{top + ph / 2:.1f}" font-size="11" fill="#555" text-anchor="middle" '
               f'transform="rotate(-90 14 {top + ph / 2:.1f})">sessions per day</text>')

    # outage days: shaded, since missing data is not the same as a quiet day
    for i in sorted(outage):
        out.append(f'<rect class="outage-day" x="{left + i * slot:.1f}" y="{top}" width="{slot:.1f}" '
                   f'height="{ph}" fill="{OUTAGE}"><title>{_e(_when(bins[i]))}: no data at all</title></rect>')
        out.append(f'<text x="{left + (i + 0.5) * slot:.1f}" y="{top + 14}" font-size="10" fill="#666" '
                   f'text-anchor="middle">no data</text>')

    # the anomalous day's band goes under the bars
    out.append(f'<g class="anomaly-marker" data-day="{last}" data-count="{today}" '
               f'data-score="{_e(_num(series.score, 2))}">')
    out.append(f'<rect x="{left + last * slot:.1f}" y="{top}" width="{slot:.1f}" height="{ph}" '
               f'fill="{ANOMALY_BAND}"/>')

    def bar(i: int, colour: str) -> str:
        v = totals[i]
        y_top, y_zero = y(max(v, 0)), y(0)
        span = f"{_when(bins[i])} to {_when(bins[i] + timedelta(days=1))}"
        tip = f"{span}: {v:,} sessions; baseline {_num(baselines[i])}; score {_num(scores[i], 2)}"
        return (f'<rect class="day-bar" x="{x(i):.1f}" y="{y_top:.1f}" width="{bar_w:.1f}" '
                f'height="{max(y_zero - y_top, 0.0):.1f}" fill="{colour}"><title>{_e(tip)}</title></rect>')

    out.append(bar(last, ANOMALY))
    if model:  # the improved model's interval: counts that would not have alerted
        lo, hi = _finite(model.get("lower")) or 0.0, _finite(model.get("upper"))
        cx = left + (last + 0.5) * slot
        bottom_y, top_y = y(lo), (y(hi) if hi is not None else top)   # no upper bound: to the top
        out.append(f'<g class="model-interval"><line x1="{cx:.1f}" y1="{bottom_y:.1f}" x2="{cx:.1f}" '
                   f'y2="{top_y:.1f}" stroke="{BASELINE}" stroke-width="2"/>'
                   + "".join(f'<line x1="{cx - slot * 0.4:.1f}" y1="{yy:.1f}" x2="{cx + slot * 0.4:.1f}" '
                             f'y2="{yy:.1f}" stroke="{BASELINE}" stroke-width="2"/>' for yy in (bottom_y, top_y))
                   + f'<title>{_e(f"expected {_num(series.baseline)}, interval {_num(lo)} to {_num(hi)}")}'
                   '</title></g>')
    bar_top = y(max(totals[last], 0))
    label_x = left + pw - 2
    ratio = ""
    base_last = _finite(series.baseline)
    if base_last and base_last > 0:
        ratio = f" · {totals[last] / base_last:.1f}× baseline"
    out.append(f'<text x="{label_x:.1f}" y="{bar_top - 21:.1f}" font-size="13" font-weight="700" '
               f'fill="{ANOMALY}" text-anchor="end">▲ {_e(f"{totals[last]:,}")} sessions</text>')
    basis = "expected" if model else "baseline"
    out.append(f'<text x="{label_x:.1f}" y="{bar_top - 7:.1f}" font-size="11.5" fill="{ANOMALY}" '
               f'text-anchor="end">score {_e(_num(series.score, 1))} · {basis} '
               f'{_e(_num(series.baseline))}{_e(ratio.replace("baseline", basis))}</text>')
    out.append('</g>')

    # ordinary days, with their counts above the bars
    crowded = days > 21  # a long history: counts and dates only where they fit
    for i in range(last):
        out.append(bar(i, BAR))
        if crowded:
            continue
        out.append(f'<text x="{x(i) + bar_w / 2:.1f}" y="{y(max(totals[i], 0)) - 4:.1f}" font-size="10" '
                   f'fill="#445" text-anchor="middle" stroke="#fff" stroke-width="3" paint-order="stroke">{_e(_tick_label(totals[i]) if totals[i] >= 10_000 else f"{totals[i]:,}")}</text>')

    # baseline: a dashed line through the bin centres, broken where it is undefined
    runs, run = [], []
    for i, b in enumerate(baselines):
        if b is None:
            if run:
                runs.append(run)
            run = []
        else:
            run.append(f"{left + (i + 0.5) * slot:.1f},{y(b):.1f}")
    if run:
        runs.append(run)
    for r in runs:
        if len(r) == 1:
            cx, cy = r[0].split(",")
            out.append(f'<circle class="baseline" cx="{cx}" cy="{cy}" r="2.5" fill="{BASELINE}"/>')
        else:
            out.append(f'<polyline class="baseline" points="{" ".join(r)}" fill="none" stroke="{BASELINE}" '
                       f'stroke-width="2.2" stroke-dasharray="6 4"/>')

    # day labels: weekday and date of each bin's start
    for i, t in enumerate(bins):
        if crowded and (last - i) % 7:
            continue
        cx = left + (i + 0.5) * slot
        style = f'fill="{ANOMALY}" font-weight="700"' if i == last else 'fill="#444"'
        out.append(f'<text class="day-label" x="{cx:.1f}" y="{top + ph + 16}" font-size="11" '
                   f'text-anchor="middle" {style}>{_e(t.strftime("%a"))}</text>')
        out.append(f'<text class="day-label" x="{cx:.1f}" y="{top + ph + 30}" font-size="11" '
                   f'text-anchor="middle" {style}>{_e(t.strftime("%m-%d"))}</text>')
    out.append('</svg>')
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# page sections

def _talkers_html(series: "AlertSeries") -> str:
    talkers = series.talkers
    if talkers is None:
        return ('<p class="muted">Talkers were not computed for this series '
                '(the report was built without the explanation step).</p>')
    parts = ['<div class="talkers">']
    for field, heading in TALKER_FIELDS:
        rows = talkers.get(field) or []  # Talker entries
        parts.append(f'<table class="talker-table" data-field="{_e(field)}"><caption>{_e(heading)} '
                     f'<code>{_e(field)}</code></caption>'
                     '<thead><tr><th>Value</th><th class="n">Sessions</th><th>Share today</th>'
                     '<th class="n">Usual share</th></tr></thead><tbody>')
        if not rows:
            parts.append('<tr><td colspan="4" class="muted">No retained sessions on the day.</td></tr>')
        for t in rows:
            new = bool(t.new)
            share = _finite(t.share) or 0.0
            badge = ' <span class="badge-new" title="not seen in this series on the earlier days of the window">new</span>' if new else ""
            parts.append(
                f'<tr class="{"is-new" if new else ""}"><td class="value"><code>{_e(t.value)}</code>{badge}</td>'
                f'<td class="n">{_e(_num(t.count))}</td>'
                f'<td><span class="share"><span class="share-bar" style="width:{min(max(share, 0), 1) * 100:.1f}%"></span></span>'
                f'<span class="share-text">{_pct(t.share)}</span></td>'
                f'<td class="n">{_pct(t.usual_share)}</td></tr>')
        parts.append('</tbody></table>')
    parts.append('</div>')
    return "".join(parts)


def _series_html(alert: "Alert", series: "AlertSeries", window, number: int) -> str:
    if alert.kind == "static":
        w = alert.window
        head = (f'<h3>{_e(_series_label(series))}</h3>'
                f'<p class="series-facts"><strong class="hot">{_e(_num(series.total))} sessions</strong> '
                f'from {_e(_when(w.start))} to {_e(_when(w.end))}, over the threshold of '
                f'{_e(_num(series.threshold))} (counted from {_e(w.counted_from)}).</p>')
        return f'<div class="series">{head}{_talkers_html(series)}</div>'
    base = _finite(series.baseline)
    ratio = f" ({series.total / base:.1f}× baseline)" if base and base > 0 else ""
    if series.model:
        m = series.model
        head = (f'<h3>{_e(_series_label(series))}</h3>'
                f'<p class="series-facts"><strong class="hot">{_e(_num(series.total))} sessions</strong> '
                f'on the last day against an expected {_e(_num(series.baseline))} (interval '
                f'{_e(_num(m.get("lower")))} to {_e(_num(m.get("upper")))}{_e(ratio.replace("baseline", "expected").replace(" (", "; ").rstrip(")"))}), '
                f'score <strong>{_e(_num(series.score, 2))}</strong>.</p>'
                f'<p class="series-why">Why: {_e(m.get("explanation"))}</p>')
    else:
        head = (f'<h3>{_e(_series_label(series))}</h3>'
                f'<p class="series-facts"><strong class="hot">{_e(_num(series.total))} sessions</strong> '
                f'on the last day against a baseline of {_e(_num(series.baseline))}{_e(ratio)}, '
                f'anomaly score <strong>{_e(_num(series.score, 2))}</strong>.</p>')
    facts = []
    outage, quiet = series.outage_days or [], series.quiet_days or []
    if outage:
        facts.append(f"No data at all on {len(outage)} day(s) of the window (shaded): "
                     + ", ".join(d.strftime("%Y-%m-%d") for d in outage) + ".")
    if quiet:
        facts.append(f"No sessions for this series on {len(quiet)} day(s) while other traffic was "
                     "seen: " + ", ".join(d.strftime("%Y-%m-%d") for d in quiet) + ".")
    raw_today = series.raw_sessions_today
    if raw_today is not None and raw_today < series.total:
        facts.append(f"Talkers below come from {raw_today:,} retained raw sessions of the "
                     f"{'day' if alert.kind == 'anomaly' else 'bin'}'s {series.total:,}.")
    extra = "".join(f'<p class="series-note">{_e(f)}</p>' for f in facts)
    return (f'<div class="series">{head}<div class="chart">{_svg_chart(alert, series, window, number)}</div>'
            f'{extra}{_talkers_html(series)}</div>')


def _alert_html(alert: "Alert", window, index: int) -> str:
    severity = str(alert.severity or "")
    sev_class = _SEVERITY_CLASS.get(severity.lower(), "sev-info")
    tactics = alert.tactics
    rows = [
        ("Severity", f'<span class="sev {sev_class}">{_e(severity)}</span>'),
        ("Tactics", " ".join(f'<span class="tag">{_e(t)}</span>' for t in tactics) or "—"),
        ("Destination port", f'<strong>{_e(alert.port)}</strong>'),
        ("Protocols", _e(", ".join(alert.protocols) or "—")),
        ("Directions", _e(", ".join(alert.directions) or "—")),
        ("Device actions", _e(", ".join(alert.actions) or "—")),
        ("Last day", f'{_e(_num(alert.total))} sessions; {"expected" if alert.profile == "improved" else "baseline"} '
                     f'{_e(_num(alert.baseline))}; score {_e(_num(alert.score, 2))}') if alert.kind == "anomaly" else
        ("Static threshold", f'{_e(_num(alert.total))} sessions in 10 minutes; threshold '
                             f'{_e(_num(alert.threshold))}'),
    ]
    if alert.techniques:
        rows.append(("Techniques", _e(", ".join(alert.techniques))))
    missing = alert.window.missing_days
    if alert.profile == "improved":
        rows.append(("Profile", "improved: portlens' own model (the day against the weeks before it), "
                                "not the Sentinel rule; outage days are left out of its history"))
    elif missing and missing != "zero":
        rows.append(("Missing days", _e(f"{missing} (outage days left out of the decomposition)")))
    rows.append(("Alert id", f'<code>{_e(alert.id)}</code>'))
    meta = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows)

    if alert.raw_retained is None:
        notes_html = ('<div class="notes"><p>Talkers were not computed for this alert '
                      '(the report was built without the explanation step).</p></div>')
    else:
        notes = alert.notes
        if notes or alert.raw_retained is False:
            head = ("<strong>Raw sessions not fully retained.</strong> " if alert.raw_retained is False
                    else "")
            notes_html = (f'<div class="notes">{head}<ul>'
                          + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul></div>")
        else:
            notes_html = (f'<p class="muted notes-ok">All of the {"day" if alert.kind == "anomaly" else "bin"}\'s '
                          'sessions are retained raw; the talkers below cover them all.</p>')

    series = alert.series or []
    body = "".join(_series_html(alert, s, window, n) for n, s in enumerate(series))
    aid = _e(alert.id)
    return (f'<section class="alert {sev_class}" id="alert-{aid}" data-alert-id="{aid}">'
            f'<h2><span class="alert-no">{index}</span> {_e(alert.title)}</h2>'
            f'<p class="description">{_e(str(alert.description or "").strip())}</p>'
            f'<table class="meta">{meta}</table>{notes_html}'
            f'<p class="muted">{len(series)} matching series.</p>{body}</section>')


def _tiers_html(tiers: dict, window) -> str:
    if not tiers:
        return '<p class="muted">No per-tier counts were recorded for this run.</p>'
    rows = []
    for tier, per_day in tiers.items():
        per_day = [int(v) for v in per_day]
        covered = [i for i, v in enumerate(per_day) if v]
        span = (f"{(window.start + timedelta(days=covered[0])).strftime('%m-%d')} to "
                f"{(window.start + timedelta(days=covered[-1])).strftime('%m-%d')} "
                f"({len(covered)} of {len(per_day)} days)") if covered else "none"
        rows.append(f'<tr><th>{_e(tier)}</th><td>{_e(TIER_NOTES.get(tier, ""))}</td>'
                    f'<td class="n">{sum(per_day):,}</td><td class="n">{per_day[-1] if per_day else 0:,}</td>'
                    f'<td>{_e(span)}</td></tr>')
    return ('<table class="tiers"><caption>Where the window\'s counts came from</caption>'
            '<thead><tr><th>Tier</th><th>Meaning</th><th class="n">Sessions in window</th>'
            '<th class="n">On the last day</th><th>Days with data</th></tr></thead><tbody>'
            + "".join(rows) + "</tbody></table>")


_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f4f5f7;color:#1d2330;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans","Liberation Sans",Arial,sans-serif}
main{max-width:1180px;margin:0 auto;padding:20px 24px 48px}
header.page{background:#1d2330;color:#fff;padding:18px 24px}
header.page h1{margin:0;font-size:22px}
header.page p{margin:4px 0 0;color:#c9cfdb}
h2{font-size:19px;margin:0 0 6px}
h3{font-size:15px;margin:18px 0 2px}
code{font-family:"DejaVu Sans Mono","Liberation Mono",Menlo,Consolas,monospace;font-size:12.5px}
.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(210px,1fr));gap:10px;margin:16px 0}
.figure{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:10px 12px}
.figure .k{color:#5b6578;font-size:12px;text-transform:uppercase;letter-spacing:.03em}
.figure .v{font-size:17px;font-weight:600;word-break:break-word}
.figure.wide{grid-column:span 2}
table{border-collapse:collapse}
.tiers,.overview{background:#fff;border:1px solid #dde1e8;width:100%;margin:10px 0 18px}
caption{text-align:left;font-weight:600;padding:6px 0}
th,td{padding:5px 9px;text-align:left;vertical-align:top}
.tiers td,.tiers th,.overview td,.overview th{border-top:1px solid #eceef2}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.no-alerts{background:#e9f6ec;border:1px solid #9fd3ab;border-left:6px solid #2e8b47;border-radius:6px;padding:16px 18px;font-size:16px}
section.alert{background:#fff;border:1px solid #dde1e8;border-left:6px solid #888;border-radius:6px;padding:16px 20px;margin:22px 0}
section.alert.sev-high{border-left-color:#c0392b}
section.alert.sev-medium{border-left-color:#e08e0b}
section.alert.sev-low{border-left-color:#2f6fb3}
.alert-no{display:inline-block;min-width:26px;text-align:center;background:#1d2330;color:#fff;border-radius:13px;font-size:14px;padding:1px 7px;margin-right:4px}
.description{margin:4px 0 10px;color:#333;max-width:900px}
.meta th{color:#5b6578;font-weight:500;width:150px;padding:2px 9px 2px 0}
.meta td{padding:2px 9px}
.sev{display:inline-block;border-radius:4px;padding:0 8px;font-weight:700;color:#fff;background:#777}
.sev.sev-high{background:#c0392b}.sev.sev-medium{background:#e08e0b}.sev.sev-low{background:#2f6fb3}
.tag{display:inline-block;background:#eef1f6;border:1px solid #d5dbe5;border-radius:4px;padding:0 6px;margin-right:4px}
.notes{background:#fff7e0;border:1px solid #f0d58a;border-radius:6px;padding:8px 12px;margin:10px 0}
.notes ul{margin:4px 0 0 18px;padding:0}
.muted{color:#6b7385}
.series{border-top:1px solid #eceef2;margin-top:14px}
.series-facts{margin:2px 0 6px}
.series-note{margin:2px 0;color:#6b5a1e}
.series-why{margin:2px 0 6px;color:#1d6b66}
.hot{color:#d7301f}
.chart{overflow-x:auto}
svg.series-chart{display:block;max-width:100%;height:auto}
.talkers{display:flex;flex-wrap:wrap;gap:14px;margin-top:6px;align-items:flex-start}
.talker-table{flex:1 1 300px;font-size:12.5px;border:1px solid #e3e6ec}
.talker-table caption{font-size:13px}
.talker-table th{background:#f3f5f8;font-weight:600;font-size:12px}
.talker-table td{border-top:1px solid #eef0f4}
.talker-table th,.talker-table td{padding:4px 6px}
.talker-table td.value{white-space:nowrap}
.talker-table td:nth-child(3){white-space:nowrap}
tr.is-new td{background:#fff1ef}
.badge-new{display:inline-block;background:#d7301f;color:#fff;border-radius:3px;font-size:10.5px;font-weight:700;padding:0 5px;margin-left:4px;text-transform:uppercase;letter-spacing:.04em}
.share{display:inline-block;width:40px;height:8px;background:#e8ebf0;border-radius:2px;margin-right:6px;vertical-align:middle;overflow:hidden}
.share-bar{display:block;height:100%;background:#7393b8}
tr.is-new .share-bar{background:#d7301f}
.share-text{font-variant-numeric:tabular-nums}
footer{color:#6b7385;font-size:12px;margin-top:30px}
@media print{body{background:#fff}section.alert{break-inside:avoid-page}}
"""


def render_html(result: "Detection", *, figures: dict | None = None) -> str:
    """The report page as a string (see write_html)."""
    from .rules import improved, port_anomaly

    rule = improved if result.profile == "improved" else port_anomaly
    window = result.window
    alerts = list(result.alerts or [])
    as_of = _when(window.as_of)
    cards = [("As of", as_of),
             ("Window", f"{_when(window.start)} → {_when(window.as_of)} ({window.days} daily bins)"),
             ("Series scored", f"{result.series_count:,}"),
             ("Alerts", f"{len(alerts):,}")]
    figures_html = "".join(f'<div class="figure{" wide" if k == "Window" else ""}"><div class="k">{_e(k)}</div>'
                           f'<div class="v">{_e(v)}</div></div>' for k, v in cards)
    figures_html += "".join(f'<div class="figure extra"><div class="k">{_e(k)}</div>'
                            f'<div class="v">{_figure_value(v)}</div></div>'
                            for k, v in (figures or {}).items())

    if alerts:
        overview_rows = "".join(
            f'<tr><td class="n">{i}</td><td><span class="sev {_SEVERITY_CLASS.get(str(a.severity or "").lower(), "sev-info")}">'
            f'{_e(a.severity)}</span></td><td><a href="#alert-{_e(a.id)}">{_e(a.title)}</a></td>'
            f'<td class="n">{_e(a.port)}</td><td class="n">{_e(_num(a.total))}</td>'
            f'<td class="n">{_e(_num(a.baseline))}</td><td class="n">{_e(_num(a.score, 2))}</td></tr>'
            for i, a in enumerate(alerts, 1))
        overview = ('<table class="overview"><caption>Alerts</caption><thead><tr><th class="n">#</th>'
                    '<th>Severity</th><th>Alert</th><th class="n">Port</th><th class="n">Sessions on last day</th>'
                    '<th class="n">Baseline</th><th class="n">Score</th></tr></thead><tbody>'
                    + overview_rows + "</tbody></table>")
        body = overview + "".join(_alert_html(a, window, i) for i, a in enumerate(alerts, 1))
    else:
        test = ("a count above the improved model's interval" if result.profile == "improved"
                else "score ≥ 5 over a positive baseline")
        body = (f'<div class="no-alerts" id="no-alerts"><strong>No alerts.</strong> None of the '
                f'{result.series_count:,} series scored had an anomalous last day ({test}) '
                f'on a port the monitor configuration watches, as of {_e(as_of)}.</div>')
    if result.profile == "improved":
        method = ("The expected count is the improved model's: what the days before the last one "
                  "predict for it (weekly profile, level and trend, count-aware noise; docs/improved.md); "
                  "the interval holds the counts that would not have alerted, and the score says how far "
                  "outside it the last day sits.")
    else:
        method = (f"The baseline is the rule's linefit trend over the {window.days} days; the score "
                  "measures how far the last day sits from it.")

    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="portlens {_e(__version__)}">
<title>portlens report as of {_e(as_of)} ({len(alerts)} alert{"" if len(alerts) == 1 else "s"})</title>
<style>{_CSS}</style>
</head>
<body>
<header class="page"><h1>Port misuse report as of {_e(as_of)}</h1>
<p>{_e(rule.RULE_NAME)} · v{_e(rule.RULE_VERSION)} · rule {_e(rule.RULE_ID)}</p></header>
<main>
<div class="figures">{figures_html}</div>
{_tiers_html(result.tiers or {}, window)}
<p class="muted">Each day is the 24 hours starting at {_e(window.start.astimezone(timezone.utc).strftime("%H:%M"))} UTC
on the date shown; the last day ends at the as-of time. {_e(method)} Share of the day is a talker's part of the
series' sessions on the last day, usual share its part on the earlier days; "new" talkers were not seen earlier in the window.</p>
{body}
<footer>Generated {_e(generated)} by portlens {_e(__version__)}. Self-contained page: no scripts, no network.</footer>
</main>
</body>
</html>
"""


def write_html(result: "Detection", path, *, figures: dict | None = None) -> None:
    """Write the analyst report for `result` to `path` as one self-contained HTML file.

    `figures` adds run facts at the top (label -> value, e.g. {"Sessions in store": 270409,
    "Elapsed": "4.7 s"}); ints get thousands separators, floats two decimals."""
    target = Path(path)
    text = render_html(result, figures=figures)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)


# ---------------------------------------------------------------------------------------------
# PNG charts (matplotlib, optional)

def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")[:48] or "alert"


def _plain(text: Any) -> str:
    """Text for matplotlib: a '$' pair would start mathtext."""
    return str(text).replace("$", r"\$")


def write_pngs(result: "Detection", folder) -> list[Path]:
    """One PNG per anomaly alert (one panel per matching series) in `folder`; returns the
    paths in alert order (static-threshold alerts have no daily series to draw). Needs matplotlib (the `plot` extra); drawn with the Agg canvas, no display."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch
    except ImportError as exc:
        raise RuntimeError("PNG charts need matplotlib: pip install 'portlens[plot]'") from exc

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    window = result.window
    paths: list[Path] = []
    for n, alert in enumerate(a for a in result.alerts if a.kind == "anomaly"):  # static: no days
        n += 1
        series = alert.series or []
        panels = max(len(series), 1)
        fig = Figure(figsize=(10, 1.0 + 3.0 * panels), dpi=100)
        FigureCanvasAgg(fig)
        axes = fig.subplots(panels, 1, squeeze=False)[:, 0]
        fig.suptitle(_plain(f"{alert.title} — port {alert.port} "
                            f"({alert.severity}) as of {_when(window.as_of)}"),
                     fontsize=12, fontweight="bold")
        for ax, s in zip(axes, series):
            totals = [int(v) for v in s.totals or []]
            days = len(totals)
            bins = [window.start + timedelta(days=i) for i in range(days)]
            xs = list(range(days))
            colours = [BAR] * days
            if days:
                colours[-1] = ANOMALY
            outage = _day_index(window, s.outage_days)
            for i in outage:
                ax.axvspan(i - 0.5, i + 0.5, color=OUTAGE, zorder=0)
            if days:
                ax.axvspan(days - 1.5, days - 0.5, color=ANOMALY_BAND, zorder=0)
            ax.bar(xs, totals, color=colours, width=0.66, zorder=2, label="daily sessions")
            base = [_finite(b) for b in (s.baselines or [])]
            base = [math.nan if b is None else b for b in base]
            if base:
                ax.plot(xs[:len(base)], base, color=BASELINE, linestyle="--", linewidth=2, marker=".",
                        zorder=3, label="expected (improved model)" if s.model else "baseline (linefit trend)")
            if days:
                ax.annotate(_plain(f"{totals[-1]:,} sessions\nscore {_num(s.score, 1)}, "
                                   f"{'expected' if s.model else 'baseline'} {_num(s.baseline)}"),
                            xy=(days - 1, totals[-1]), xytext=(-8, 4), textcoords="offset points",
                            ha="right", va="bottom", color=ANOMALY, fontweight="bold", fontsize=10)
                top = max(totals + [b for b in base if math.isfinite(b)] + [1])
                bottom = min([0.0] + [b for b in base if math.isfinite(b)])
                ax.set_ylim(bottom, top * 1.25)
            if s.model and days:  # the improved model's interval on the last day
                lo, hi = _finite(s.model.get("lower")) or 0.0, _finite(s.model.get("upper"))
                ax.vlines(days - 1, lo, hi if hi is not None else ax.get_ylim()[1], color=BASELINE,
                          linewidth=2, zorder=4)
            ticks = [i for i in xs if days <= 21 or (days - 1 - i) % 7 == 0]  # a long history: weekly
            ax.set_xticks(ticks)
            ax.set_xticklabels([bins[i].strftime("%a\n%m-%d") for i in ticks], fontsize=8)
            for label in ax.get_xticklabels()[-1:]:
                label.set_color(ANOMALY)
                label.set_fontweight("bold")
            ax.set_xlim(-0.6, max(days, 1) - 0.4)
            ax.set_ylabel("sessions per day")
            ax.grid(axis="y", color="#e6e6e6", zorder=0)
            ax.set_axisbelow(True)
            for side in ("top", "right"):
                ax.spines[side].set_visible(False)
            ax.set_title(_plain(_series_label(s)), loc="left", fontsize=10)
            handles, labels = ax.get_legend_handles_labels()
            handles.append(Patch(color=ANOMALY))
            labels.append("anomalous last day")
            ax.legend(handles, labels, loc="upper left", fontsize=8, frameon=False)
        if not series:
            axes[0].text(0.5, 0.5, "no series", ha="center", va="center")
        fig.tight_layout()
        path = folder / f"{n:02d}-port{_slug(alert.port)}-{_slug(alert.name)}-" \
                        f"{alert.id[:8]}.png"
        fig.savefig(path, format="png")
        paths.append(path)
    return paths
