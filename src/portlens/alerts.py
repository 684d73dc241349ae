"""The alert model and its renderers: JSON lines (KQL column names plus portlens extras) and a
Rich table for people."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone
from typing import IO, Iterable

from rich.console import Console
from rich.table import Table

# MITRE ATT&CK tactic names as Sentinel spells them (no spaces); the watchlist mixes styles.
_TACTIC_WORDS = re.compile(r"[A-Za-z]+")


def split_tactics(tactic: str) -> list[str]:
    """'InitialAccess,Execution' / 'Lateral Movement' -> ['InitialAccess', 'Execution'] ..."""
    out = []
    for part in (tactic or "").split(","):
        name = "".join(w[:1].upper() + w[1:] for w in _TACTIC_WORDS.findall(part))
        if name and name not in out:
            out.append(name)
    return out


def iso(t: datetime) -> str:
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def alert_id(rule_id: str, name: str, port: str, as_of: datetime) -> str:
    """Stable id of one alert: the same rule, monitor name, port and window give the same id,
    so a re-run of the same day can be recognised."""
    text = "|".join([rule_id, name, str(port), iso(as_of)])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def write_jsonl(alerts: Iterable[dict], out: IO[str], fmt: str = "jsonl") -> None:
    """One line per alert in an open format: jsonl (KQL columns + extras), ocsf, sentinel, cef."""
    from .formats import render
    for line in render(alerts, fmt):
        out.write(line + "\n")


_SEVERITY_STYLE = {"High": "bold red", "Medium": "yellow", "Low": "cyan", "Informational": "dim"}


def _severity(value: str) -> str:
    # A watchlist may carry any Severity (Sentinel runs every row but "Disabled").
    from rich.markup import escape
    style = _SEVERITY_STYLE.get(value)
    return f"[{style}]{escape(value)}[/]" if style else escape(value)


def render_table(alerts: list[dict], console: Console, *, as_of: str, series_count: int) -> None:
    if not alerts:
        console.print(f"No alerts as of {as_of} ({series_count} series scored).")
        return
    table = Table(title=f"portlens alerts as of {as_of} ({series_count} series scored)",
                  show_lines=True)
    for column in ("Severity", "Alert", "Port", "Protocols / directions / actions",
                   "Today", "Baseline", "Score", "Last 14 days", "Top sources today"):
        table.add_column(column, overflow="fold")
    for a in alerts:
        top = a["series"][0]
        table.add_row(
            _severity(a["Severity"]),
            f"{a['title']}\n[dim]{a['Tactic']}[/]",
            a["DstPortNumber"],
            " / ".join(", ".join(a[k]) or "-" for k in ("NetworkProtocols", "NetworkDirections", "DvcActions")),
            f"{a['total']:,}",
            f"{a['baseline']:,.0f}",
            f"{a['score']:.1f}",
            sparkline(top["totals"]),
            _talkers(top.get("talkers", {}).get("SrcIpAddr", [])),
        )
    console.print(table)
    for a in alerts:
        for note in a.get("explanation", {}).get("notes", []):
            console.print(f"[yellow]note[/] {a['title']}: {note}")


def _talkers(talkers: list[dict], top: int = 3) -> str:
    """'203.0.113.45 32% (new)' lines: share of the day, and 'new' or the usual share."""
    def pct(x: float) -> str:
        return "<1%" if 0 < x < 0.005 else f"{x:.0%}"

    lines = []
    for t in talkers[:top]:
        usual = "new" if t["new"] else f"usually {pct(t['usual_share'])}"
        lines.append(f"{t['value']} {pct(t['share'])} ({usual})")
    return "\n".join(lines) or "-"


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    top = max(values) if values else 0
    if top <= 0:
        return _BARS[0] * len(values)
    return "".join(_BARS[min(7, int(v / top * 7.999))] for v in values)
