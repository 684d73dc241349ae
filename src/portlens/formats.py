"""Alert output formats: portlens JSON lines, OCSF Detection Finding, the Sentinel alert shape,
and CEF (the syslog payload).

Alerts arrive typed (`alerts.Alert`); `to_record` turns one into the KQL shape (the rule's
columns, port as text, ISO-8601 times) plus portlens extras, and every other format is made from
that record. This is the only place alerts become text. The converters also take records (as
the delivery outbox stores them) and never fail on keys they do not know: they are carried along (OCSF `unmapped.portlens`,
Sentinel `portlens`), so later additions such as `explanation` or per-series `talkers` reach
every format.

OCSF: schema 1.3.0, class Detection Finding (2004, category Findings 2). All attributes the
class requires are set: activity_id, category_uid, class_uid, type_uid, time, severity_id,
metadata (product.vendor_name, version) and finding_info (uid, title); network_endpoint and
evidences objects are only emitted with one of the attributes their at_least_one constraints
ask for. 1.3.0 is the first version with a Port observable type (11).
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from datetime import datetime, timedelta, timezone
from typing import IO, Any, Iterable, Iterator

from . import __version__
from .alerts import Alert, AlertSeries, AlertWindow, Talker
from .attack import TACTICS, TECHNIQUES, split_tactics, tactic_key
from .terminal import CONTROLS

FORMATS = ("jsonl", "ocsf", "sentinel", "cef")
OCSF_VERSION = "1.3.0"
PRODUCT = "portlens"
VENDOR = "portlens"

# ---- shared helpers ----------------------------------------------------------------------

# Keys the rule puts in an alert; anything else is passed through as an extra.
KNOWN_KEYS = frozenset({
    "id", "title", "Name", "Severity", "Tactic", "DstPortNumber", "Description",
    "NetworkProtocols", "NetworkDirections", "DvcActions", "rule_id", "rule_name",
    "rule_version", "tactics", "techniques", "window", "score", "baseline", "total", "series",
    "kind", "threshold",
})


def clean(value: Any) -> Any:
    """JSON-safe copy: non-finite floats (NaN baselines of skipped days, inf scores) become
    null, tuples become lists, other non-JSON values their str()."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return clean(value.item())
    if isinstance(value, datetime):
        return _iso(value)
    return str(value)


# JSON escapes C0 controls itself; DEL, C1 (U+009B is an 8-bit CSI), bidi overrides and the
# line separators are legal raw in JSON but act on terminals and viewers: written as \uXXXX,
# which every JSON reader turns back into the same text.
_JSON_CONTROLS = {code: f"\\u{code:04x}" for code in CONTROLS if code >= 0x7F}


def dumps(value: Any) -> str:
    return json.dumps(clean(value), ensure_ascii=False, allow_nan=False,
                      separators=(", ", ": ")).translate(_JSON_CONTROLS)


def _bin_text(step: timedelta) -> str:
    minutes = int(step.total_seconds() // 60)
    return f"{minutes // 1440}d" if minutes % 1440 == 0 else f"{minutes}m"


def _window_record(w: AlertWindow) -> dict:
    out: dict = {"start": _iso(w.start), "end": _iso(w.end), "bin": _bin_text(w.bin)}
    if w.days is not None:
        out["days"] = w.days
    if w.counted_from is not None:
        out["counted_from"] = w.counted_from
    if w.tiers is not None:
        out["tiers"] = w.tiers
    if w.missing_days is not None:
        out["missing_days"] = w.missing_days
    return out


def _talker_record(t: Talker) -> dict:
    return {"value": t.value, "count": t.count, "share": t.share, "usual_share": t.usual_share,
            "new": t.new}


def _series_record(s: AlertSeries, kind: str) -> dict:
    out: dict = {"NetworkProtocol": s.protocol, "NetworkDirection": s.direction,
                 "DvcAction": s.action, "total": s.total}
    if kind == "static":
        out["threshold"] = s.threshold
    else:
        out.update(baseline=s.baseline, score=s.score, totals=list(s.totals),
                   baselines=list(s.baselines), scores=list(s.scores),
                   outage_days=[_iso(d) for d in s.outage_days],
                   quiet_days=[_iso(d) for d in s.quiet_days])
    if s.talkers is not None:
        out["talkers"] = {f: [_talker_record(t) for t in found] for f, found in s.talkers.items()}
    if s.raw_sessions_today is not None:
        out["raw_sessions_today"] = s.raw_sessions_today
    if s.model is not None:  # the improved profile: expected count, interval, why
        out["model"] = dict(s.model)
    return out


def to_record(alert: Alert | dict) -> dict:
    """The alert in the KQL shape: the rule's output columns (Name, Severity, Tactic,
    DstPortNumber as text, Description, NetworkProtocols, NetworkDirections, DvcActions) plus
    portlens extras (id, kind, rule, tactics, window, scores, series with talkers). A record
    passes through unchanged."""
    if isinstance(alert, dict):
        return alert
    out = {
        "id": alert.id, "title": alert.title, "kind": alert.kind,
        "Name": alert.name, "Severity": alert.severity, "Tactic": alert.tactic,
        "DstPortNumber": str(alert.port), "Description": alert.description,
        "NetworkProtocols": list(alert.protocols), "NetworkDirections": list(alert.directions),
        "DvcActions": list(alert.actions),
        "rule_id": alert.rule_id, "rule_name": alert.rule_name, "rule_version": alert.rule_version,
        "tactics": list(alert.tactics), "techniques": list(alert.techniques),
        "window": _window_record(alert.window),
    }
    if alert.kind == "static":
        out["threshold"] = alert.threshold
    out["series"] = [_series_record(s, alert.kind) for s in alert.series]
    out.update(score=alert.score, total=alert.total, baseline=alert.baseline)
    if alert.profile != "sentinel":  # the rule's alerts keep exactly their shape
        out["profile"] = alert.profile
    explanation = {}
    if alert.raw_retained is not None:
        explanation = {"raw_retained": alert.raw_retained, "notes": list(alert.notes)}
    why = [s.model["explanation"] for s in alert.series if s.model and s.model.get("explanation")]
    if why:
        explanation["model"] = why
    if explanation:
        out["explanation"] = explanation
    return out


def _iso(t: datetime) -> str:
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    t = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def epoch_ms(t: datetime | None) -> int | None:
    return None if t is None else int(round(t.timestamp() * 1000))


def _window(alert: dict) -> tuple[datetime | None, datetime | None]:
    w = alert.get("window") or {}
    return parse_time(w.get("start")), parse_time(w.get("end"))


def _bin(alert: dict) -> timedelta:
    text = str((alert.get("window") or {}).get("bin") or "1d")
    m = re.fullmatch(r"(\d+)([dhm])", text)
    if not m:
        return timedelta(days=1)
    unit = {"d": "days", "h": "hours", "m": "minutes"}[m[2]]
    return timedelta(**{unit: int(m[1])})


def _port(alert: dict) -> int | None:
    try:
        return int(str(alert.get("DstPortNumber")).strip())
    except (TypeError, ValueError):
        return None


def _tactics(alert: dict) -> list[str]:
    if alert.get("tactics"):
        return list(alert["tactics"])
    return split_tactics(alert.get("Tactic") or "")


def extras(alert: dict) -> dict:
    """The keys of an alert the rule does not define (explanation, ...)."""
    return {k: v for k, v in alert.items() if k not in KNOWN_KEYS}


def _is_ip(value: Any) -> bool:
    try:
        ipaddress.ip_address(str(value))
        return True
    except ValueError:
        return False


def talkers(alert: dict) -> dict[str, list[dict]]:
    """Top talkers per role ('src', 'dst', 'dvc'), merged over the series, most sessions
    first: [{value, count, ...}]. Reads series[*].talkers {SrcIpAddr, DstIpAddr, Dvc} and, for
    an explanation that lists them itself, explanation[<src|dst|dvc ...>]."""
    roles = {"src": {}, "dst": {}, "dvc": {}}

    def add(role: str, entries: Any) -> None:
        if isinstance(entries, dict):  # {value: count}
            entries = [{"value": k, "count": v} for k, v in entries.items()]
        if not isinstance(entries, list):
            return
        for e in entries:
            if isinstance(e, (list, tuple)) and e:
                e = {"value": e[0], "count": e[1] if len(e) > 1 else None}
            if not isinstance(e, dict):
                e = {"value": e}
            value = next((e[k] for k in ("value", "ip", "address", "addr", "host") if e.get(k)), None)
            if value is None:
                continue
            value = str(value)
            seen = roles[role].setdefault(value, {**e, "value": value, "count": 0})
            count = e.get("count", e.get("n", e.get("sessions")))
            if isinstance(count, (int, float)) and math.isfinite(count):
                seen["count"] += count

    def role_of(key: str) -> str | None:
        k = key.lower()
        if k.startswith("src") or "source" in k:
            return "src"
        if k.startswith("dst") or "dest" in k:
            return "dst"
        if k.startswith("dvc") or "device" in k:
            return "dvc"
        return None

    for s in alert.get("series") or []:
        for key, entries in (s.get("talkers") or {}).items():
            if role_of(key):
                add(role_of(key), entries)
    explanation = alert.get("explanation")
    if isinstance(explanation, dict):
        for key, entries in explanation.items():
            if role_of(key) and isinstance(entries, (list, dict)):
                add(role_of(key), entries)
    return {role: sorted(found.values(), key=lambda e: (-(e.get("count") or 0), e["value"]))
            for role, found in roles.items()}


# ---- OCSF --------------------------------------------------------------------------------

OCSF_SEVERITY = {"informational": 1, "low": 2, "medium": 3, "high": 4, "critical": 5, "fatal": 6}
OCSF_SEVERITY_NAME = {0: "Unknown", 1: "Informational", 2: "Low", 3: "Medium", 4: "High",
                      5: "Critical", 6: "Fatal"}

_PROTOCOL_NUMBERS = {"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51,
                     "icmpv6": 58, "ipv6-icmp": 58, "sctp": 132}
_DIRECTION_IDS = {"inbound": 1, "outbound": 2, "local": 3, "lateral": 3}


_TACTIC_BY_KEY = {tactic_key(name): ids for name, ids in TACTICS.items()}


def ocsf_tactic(name: str) -> dict:
    uid, caption = _TACTIC_BY_KEY.get(tactic_key(name), (None, None))
    if uid:
        return {"name": caption, "uid": uid}
    return {"name": name}


def ocsf_technique(uid: str) -> dict:
    out = {"uid": uid}
    if uid in TECHNIQUES:
        out["name"] = TECHNIQUES[uid]
    return out


def ocsf_severity(severity: str | None) -> tuple[int, str]:
    text = (severity or "").strip()
    if not text:
        return 0, "Unknown"
    sid = OCSF_SEVERITY.get(text.lower())
    return (sid, OCSF_SEVERITY_NAME[sid]) if sid else (99, text)


def _connection_info(series: dict) -> dict:
    out: dict = {}
    proto = series.get("NetworkProtocol")
    if proto:
        out["protocol_name"] = str(proto).lower()
        if str(proto).lower() in _PROTOCOL_NUMBERS:
            out["protocol_num"] = _PROTOCOL_NUMBERS[str(proto).lower()]
    direction = series.get("NetworkDirection")
    did = _DIRECTION_IDS.get(str(direction or "").lower(), 99 if direction else 0)
    out["direction_id"] = did
    out["direction"] = {0: "Unknown", 1: "Inbound", 2: "Outbound", 3: "Lateral"}.get(did, direction)
    return out


def _series_data(series: dict) -> dict:
    return clean({k: v for k, v in series.items() if k != "talkers"})


def to_ocsf(alert: Alert | dict) -> dict:
    """An OCSF 1.3.0 Detection Finding (class_uid 2004) for one alert."""
    alert = to_record(alert)
    start, end = _window(alert)
    port = _port(alert)
    severity_id, severity = ocsf_severity(alert.get("Severity"))
    title = alert.get("title") or f"Detected {alert.get('Name', '')}".strip()
    tactics = _tactics(alert)
    techniques = list(alert.get("techniques") or [])

    attacks = []
    for tactic in tactics or [None]:
        for technique in techniques or [None]:
            entry = {}
            if tactic:
                entry["tactic"] = ocsf_tactic(tactic)
            if technique:
                entry["technique"] = ocsf_technique(technique)
            if entry:
                attacks.append(entry)

    if alert.get("kind") == "static":
        analytic = {"type_id": 1, "type": "Rule",
                    "desc": "sessions in the last complete 10-minute bin above the row's Threshold"}
    elif alert.get("profile") == "improved":
        analytic = {"type_id": 3, "type": "Statistical",
                    "desc": "portlens improved profile: the last day's session count against the "
                            "count expected from the days before it (weekly profile, negative "
                            "binomial noise); score above the threshold"}
    else:
        analytic = {"type_id": 3, "type": "Statistical",
                    "desc": "series_decompose_anomalies(daily session counts, 2.5, -1, 'linefit') "
                            "over 14 days; last day score >= 5 and baseline > 0"}
    for key, field in (("rule_id", "uid"), ("rule_name", "name"), ("rule_version", "version")):
        if alert.get(key):
            analytic[field] = str(alert[key])

    finding_info = {
        "uid": str(alert.get("id", "")),
        "title": title,
        "desc": alert.get("Description") or "",
        "types": [t for t in ("Port Misuse Anomaly", alert.get("Name")) if t],
        "analytic": analytic,
        "data_sources": ["ASIM NetworkSession"],
    }
    if attacks:
        finding_info["attacks"] = attacks
    if end is not None:
        finding_info["first_seen_time"] = epoch_ms(end - _bin(alert))
        finding_info["last_seen_time"] = epoch_ms(end)

    # Evidence: one per anomalous series (its connection and numbers), one per top talker.
    evidences = []
    for s in alert.get("series") or []:
        evidences.append({"connection_info": _connection_info(s),
                          "data": {"DstPortNumber": port, **_series_data(s)}})
    found = talkers(alert)
    observables = []
    seen_obs = set()

    def observe(name: str, type_id: int, type_name: str, value: str) -> None:
        if (name, value) not in seen_obs:
            seen_obs.add((name, value))
            observables.append({"name": name, "type_id": type_id, "type": type_name,
                                "value": value})

    for role, endpoint in (("src", "src_endpoint"), ("dst", "dst_endpoint")):
        for t in found[role]:
            if not _is_ip(t["value"]):
                continue
            ep = {"ip": t["value"]}
            if role == "dst" and port is not None:
                ep["port"] = port
            evidences.append({endpoint: ep, "data": clean({"role": f"top {role}", **t})})
            observe(f"evidences.{endpoint}.ip", 2, "IP Address", t["value"])
    for t in found["dvc"]:
        field = "ip" if _is_ip(t["value"]) else "hostname"
        evidences.append({"device": {field: t["value"], "type_id": 0, "type": "Unknown"},
                          "data": clean({"role": "top reporting device", **t})})
        observe(f"evidences.device.{field}", 2 if field == "ip" else 1,
                "IP Address" if field == "ip" else "Hostname", t["value"])
    if port is not None:
        has_dst = any("dst_endpoint" in e for e in evidences)
        observe("evidences.dst_endpoint.port" if has_dst else "evidences.data.DstPortNumber",
                11, "Port", str(port))

    portlens = {k: alert.get(k) for k in ("Name", "Severity", "Tactic", "DstPortNumber",
                                          "NetworkProtocols", "NetworkDirections", "DvcActions",
                                          "score", "baseline", "total", "window") if k in alert}
    portlens.update(extras(alert))

    out = {
        "activity_id": 1, "activity_name": "Create",
        "category_uid": 2, "category_name": "Findings",
        "class_uid": 2004, "class_name": "Detection Finding",
        "type_uid": 200401, "type_name": "Detection Finding: Create",
        "time": epoch_ms(end) if end is not None else 0,
        "severity_id": severity_id, "severity": severity,
        "status_id": 1, "status": "New",
        "message": title,
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": PRODUCT, "vendor_name": VENDOR, "version": __version__},
            "uid": str(alert.get("id", "")),
            "log_name": "portlens alerts",
        },
        "finding_info": finding_info,
        "observables": observables,
        "evidences": evidences,
        "unmapped": {"portlens": clean(portlens)},
    }
    if start is not None:
        out["start_time"] = epoch_ms(start)
    if end is not None:
        out["end_time"] = epoch_ms(end)
    if not evidences:
        del out["evidences"]
    if not observables:
        del out["observables"]
    return out


# ---- Sentinel ----------------------------------------------------------------------------

SENTINEL_SEVERITIES = {"informational": "Informational", "low": "Low", "medium": "Medium",
                       "high": "High"}


def to_sentinel(alert: Alert | dict) -> dict:
    """The alert as the Sentinel rule raises it (SecurityAlert-like): alertDetailsOverride
    (display name 'Detected {Name}', description, tactics and severity from columns), the
    rule's customDetails as ExtendedProperties, AlertPerResult grouping (one alert per row).
    Values stay JSON (lists), not the stringified arrays of the SecurityAlert table."""
    alert = to_record(alert)
    start, end = _window(alert)
    name = alert.get("Name") or ""
    severity = alert.get("Severity") or ""
    out = {
        "SystemAlertId": str(alert.get("id", "")),
        "AlertDisplayName": alert.get("title") or f"Detected {name}",
        "AlertName": alert.get("title") or f"Detected {name}",
        "Description": alert.get("Description") or "",
        "Severity": SENTINEL_SEVERITIES.get(severity.strip().lower(), severity),
        "Tactics": _tactics(alert),
        "Techniques": list(alert.get("techniques") or []),
        "ProductName": "Azure Sentinel",
        "AlertType": alert.get("rule_name") or "",
        "ProviderName": PRODUCT,
        "Status": "New",
        "StartTime": _iso(start) if start else None,
        "EndTime": _iso(end) if end else None,
        "ExtendedProperties": {
            "AllNetworkProtocols": list(alert.get("NetworkProtocols") or []),
            "AllNetworkDirections": list(alert.get("NetworkDirections") or []),
            "AllDvcAction": list(alert.get("DvcActions") or []),
            "DstPortNumber": str(alert.get("DstPortNumber", "")),
        },
        "AnalyticRuleIds": [alert["rule_id"]] if alert.get("rule_id") else [],
        "AnalyticRuleName": alert.get("rule_name") or "",
        "Entities": [],
    }
    portlens = {k: alert.get(k) for k in ("rule_version", "score", "baseline", "total", "window",
                                          "series") if k in alert}
    portlens.update(extras(alert))
    out["portlens"] = clean(portlens)
    return out


# ---- CEF ---------------------------------------------------------------------------------

CEF_SEVERITY = {"informational": 1, "low": 3, "medium": 5, "high": 8, "critical": 10}
_CEF_KEY = re.compile(r"[A-Za-z0-9_.\[\]]+\Z")


# Other controls (NUL, ESC, C1, bidi overrides; terminal.CONTROLS) have no CEF escape; a
# receiver's console or a SIEM's UI would act on them. They are written as the six visible
# characters \uXXXX; since a backslash in data is always doubled, that cannot be data.
_CEF_CONTROLS = {code: f"\\u{code:04x}" for code in CONTROLS}
_CEF_HEADER = {**_CEF_CONTROLS, ord("\r"): " ", ord("\n"): " "}
_CEF_VALUE = {**_CEF_CONTROLS, ord("\r"): "\\r", ord("\n"): "\\n"}


def cef_header_escape(text: Any) -> str:
    """Header fields: backslash and pipe escaped; a header cannot hold a line break, so CR and
    LF become spaces; other controls become \\uXXXX."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").translate(_CEF_HEADER)


def cef_escape(text: Any) -> str:
    """Extension values: backslash, equals sign, CR and LF escaped (\\\\, \\=, \\r, \\n);
    other controls become \\uXXXX."""
    return str(text).replace("\\", "\\\\").replace("=", "\\=").translate(_CEF_VALUE)


_UNESCAPE = {"\\": "\\", "=": "=", "n": "\n", "r": "\r", "|": "|"}
_HEX = frozenset("0123456789abcdefABCDEF")


def _encoded_control(text: str, i: int) -> str | None:
    """The control character a `\\uXXXX` at text[i] stands for (see _CEF_CONTROLS), else None."""
    digits = text[i + 2:i + 6]
    if text.startswith("\\u", i) and len(digits) == 4 and set(digits) <= _HEX \
            and int(digits, 16) in CONTROLS:
        return chr(int(digits, 16))
    return None


def cef_unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text) and text[i + 1] in _UNESCAPE:
            out.append(_UNESCAPE[text[i + 1]])
            i += 2
        elif c == "\\" and (control := _encoded_control(text, i)) is not None:
            out.append(control)
            i += 6
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_cef(line: str) -> tuple[list[str], dict[str, str]]:
    """Split a CEF line into its 7 header fields ('0', vendor, product, version, class id,
    name, severity) and its extension map,
    undoing the escaping (also the \\uXXXX of control characters). The inverse of to_cef,
    used by tests and handy for receivers."""
    if not line.startswith("CEF:"):
        raise ValueError("not a CEF line")
    header, i, field = [], 4, []
    while len(header) < 7:
        if i >= len(line):
            raise ValueError("CEF header has fewer than 8 fields")
        c = line[i]
        if c == "\\" and i + 1 < len(line) and line[i + 1] in "\\|":
            field.append(line[i + 1])
            i += 2
            continue
        if c == "\\" and (control := _encoded_control(line, i)) is not None:
            field.append(control)
            i += 6
            continue
        if c == "|":
            header.append("".join(field))
            field = []
        else:
            field.append(c)
        i += 1
    return header, parse_cef_extension(line[i:])


def parse_cef_extension(text: str) -> dict[str, str]:
    """key=value pairs separated by spaces; a key starts after the last space before an
    unescaped '='."""
    equals = []  # positions of unescaped '='
    i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == "=":
            equals.append(i)
        i += 1
    out: dict[str, str] = {}
    starts = []
    for pos in equals:
        key_start = text.rfind(" ", 0, pos) + 1
        starts.append((key_start, pos))
    for n, (key_start, pos) in enumerate(starts):
        value_end = starts[n + 1][0] - 1 if n + 1 < len(starts) else len(text)
        out[text[key_start:pos]] = cef_unescape(text[pos + 1:value_end])
    return out


def cef_extension(fields: Iterable[tuple[str, Any]]) -> str:
    parts = []
    for key, value in fields:
        if value is None or value == "" or value == []:
            continue
        if not _CEF_KEY.match(key):
            raise ValueError(f"bad CEF key {key!r}")
        if isinstance(value, float):
            if not math.isfinite(value):
                continue
            value = f"{value:.6g}" if abs(value) < 1e15 else f"{value:.0f}"
        elif isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        parts.append(f"{key}={cef_escape(value)}")
    return " ".join(parts)


def _ipv(value: str) -> int | None:
    try:
        return ipaddress.ip_address(value).version
    except ValueError:
        return None


def to_cef(alert: Alert | dict) -> str:
    """CEF:0|portlens|portlens|<version>|<rule_id>|<title>|<severity 0-10>|<extension>."""
    alert = to_record(alert)
    start, end = _window(alert)
    port = _port(alert)
    severity = CEF_SEVERITY.get(str(alert.get("Severity") or "").strip().lower(), 0)
    protocols = list(alert.get("NetworkProtocols") or [])
    directions = list(alert.get("NetworkDirections") or [])
    fields: list[tuple[str, Any]] = [
        ("rt", epoch_ms(end)),
        ("start", epoch_ms(end - _bin(alert)) if end else None),
        ("end", epoch_ms(end)),
        ("externalId", alert.get("id")),
        ("cat", _tactics(alert)),
        ("msg", alert.get("Description")),
        ("dpt", port),
        ("proto", protocols[0] if len(protocols) == 1 else None),
        ("deviceDirection", {"inbound": 0, "outbound": 1}.get(directions[0].lower())
         if len(directions) == 1 else None),
    ]
    found = talkers(alert)
    for role, v4, v6 in (("src", "src", "c6a2"), ("dst", "dst", "c6a3")):
        top = next((t["value"] for t in found[role] if _ipv(t["value"])), None)
        if top:
            fields.append((v4 if _ipv(top) == 4 else v6, top))
    fields += [
        ("cs1Label", "AllNetworkProtocols"), ("cs1", protocols),
        ("cs2Label", "AllNetworkDirections"), ("cs2", directions),
        ("cs3Label", "AllDvcAction"), ("cs3", list(alert.get("DvcActions") or [])),
        ("cs4Label", "Tactic"), ("cs4", alert.get("Tactic")),
        ("cs5Label", "Techniques"), ("cs5", list(alert.get("techniques") or [])),
        ("cs6Label", "RuleName"), ("cs6", alert.get("rule_name")),
        ("cn1Label", "Total"), ("cn1", alert.get("total")),
        ("cfp1Label", "Score"), ("cfp1", _float(alert.get("score"))),
        ("cfp2Label", "Baseline"), ("cfp2", _float(alert.get("baseline"))),
    ]
    header = "|".join(cef_header_escape(h) for h in (
        PRODUCT, PRODUCT, __version__, alert.get("rule_id") or "",
        alert.get("title") or f"Detected {alert.get('Name', '')}", severity))
    return f"CEF:0|{header}|{cef_extension(fields)}"


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


# ---- rendering ---------------------------------------------------------------------------

def render_one(alert: Alert | dict, fmt: str) -> str:
    alert = to_record(alert)
    if fmt == "jsonl":
        return dumps(alert)
    if fmt == "ocsf":
        return dumps(to_ocsf(alert))
    if fmt == "sentinel":
        return dumps(to_sentinel(alert))
    if fmt == "cef":
        return to_cef(alert)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def render(alerts: Iterable[Alert | dict], fmt: str) -> Iterator[str]:
    """One line per alert (no trailing newline) in fmt: jsonl, ocsf, sentinel or cef."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    for alert in alerts:
        yield render_one(alert, fmt)


def write_jsonl(alerts: Iterable[Alert | dict], out: IO[str], fmt: str = "jsonl") -> None:
    """One line per alert in an open format: jsonl (KQL columns + extras), ocsf, sentinel, cef."""
    for line in render(alerts, fmt):
        out.write(line + "\n")
