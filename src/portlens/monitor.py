"""The monitor configuration ("watchlist") of the Sentinel port-anomaly rule.

Sentinel reads the watchlist ``NetworkSession_Monitor_Configuration`` and does::

    | where Type == "Detection" and ThresholdType == "Anomaly" and Severity != "Disabled"
    | extend Ports = split(Ports,","), ... | mv-expand Ports | mv-expand App | ...
    | join kind=inner mapping where Ports == DstPortNumber
    | where (Protocol == "*" or Protocol has NetworkProtocol) and ...

This module loads and validates that CSV (:func:`load_config`), produces the
mv-expand result (:func:`expanded`) and implements the ``== "*" or has``
test (:func:`matches`, :func:`match_mask`).

Items are compared as the KQL compares them (docs/kql.md, "The watchlist"):

* ``split`` does not trim. ``Ports == tostring(DstPortNumber)`` is text equality,
  so a port item matches only the plain decimal text of a port: ``0443``,
  ``" 445"`` or ``*`` never match. Such items are left out of ``ports`` with a
  warning that Sentinel never matches them (``ports is None`` for a cell that is
  exactly ``*``).
* Protocol/Direction/Action items are kept as written. An item is a wildcard
  only when it is exactly ``*`` (a ``*`` item makes the whole column one); any
  other item goes through KQL's case-insensitive whole-term ``has``, so an empty
  item (an empty cell) or one without a letter or digit never matches and is
  warned about. Repeated items are collapsed (KQL would join twice; the alert's
  sets are the same).
* A row the KQL filter would read differently is not an error: an unknown Type
  or ThresholdType is a row the rule skips, an unknown Severity a row it runs
  (only ``Disabled`` turns a row off), a Static row without an integer
  Threshold never fires; each is warned about. A record that cannot be read as a
  row (wrong number of fields) is skipped with a warning. Only a file that cannot
  be read as a watchlist at all raises :class:`ConfigError`.
* An empty or missing event value never ``has``-matches; only ``*`` accepts it.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import numpy as np
import pyarrow as pa

from .asim import DVC_ACTIONS, NETWORK_DIRECTIONS
from .errors import ConfigError

__all__ = [
    "ConfigError",
    "MonitorRow",
    "MonitorConfig",
    "load_config",
    "expanded",
    "matches",
    "match_mask",
    "describe",
    "EXPANDED_SCHEMA",
]

DEFAULT_NAME = "<default>"
_DEFAULT_FILE = "NetworkSession_Monitor_Configuration.csv"

REQUIRED_COLUMNS = (
    "Ports", "App", "Protocol", "Direction", "Action", "Type",
    "ThresholdType", "Threshold", "Severity", "Tactic", "Name", "Description",
)
TYPES = ("Detection", "Hunting")
THRESHOLD_TYPES = ("Anomaly", "Static")
SEVERITIES = ("Informational", "Low", "Medium", "High", "Disabled")

# MITRE ATT&CK tactics as Sentinel names them; keyed by lower-case letters only
# so that "Initial Access", "InitialAccess" and "initial-access" agree.
_TACTICS = {
    re.sub(r"[^a-z]", "", t.lower()): t
    for t in (
        "Reconnaissance", "ResourceDevelopment", "InitialAccess", "Execution",
        "Persistence", "PrivilegeEscalation", "DefenseEvasion", "CredentialAccess",
        "Discovery", "LateralMovement", "Collection", "Exfiltration",
        "CommandAndControl", "Impact", "PreAttack", "ImpairProcessControl",
        "InhibitResponseFunction",
    )
}

# ASIM values of NetworkDirection and DvcAction (asim.py is their one home). Other
# values are allowed (``has`` may still match) but are warned about: "Allowed" never
# has "Allow".
_DIRECTIONS = frozenset(NETWORK_DIRECTIONS)
_ACTIONS = frozenset(DVC_ACTIONS)

# Misspellings seen in Sentinel's shipped watchlists; not a spell checker.
_TYPOS = {"earch": "search", "teh": "the", "recieve": "receive",
          "occured": "occurred", "seperate": "separate"}

_LIST_COLUMNS = ("App", "Protocol", "Direction", "Action")




@dataclass(frozen=True)
class MonitorRow:
    line: int                               # CSV line where the record starts (header = 1)
    ports: tuple[int, ...] | None           # the ports Sentinel can match; None: "*"
    apps: tuple[str, ...] | None
    protocols: tuple[str, ...] | None
    directions: tuple[str, ...] | None
    actions: tuple[str, ...] | None
    type: str
    threshold_type: str
    threshold: int | None
    severity: str
    tactic: str                             # raw, as the KQL alert shows it
    tactics: tuple[str, ...]                # normalised MITRE names
    name: str
    description: str                        # raw, as the KQL alert shows it

    @property
    def enabled(self) -> bool:
        return self.severity != "Disabled"


@dataclass
class MonitorConfig:
    path: str
    rows: list[MonitorRow]
    warnings: list[str] = field(default_factory=list)

    def select(self, type: str, threshold_type: str) -> list[MonitorRow]:
        """Enabled rows of this Type and ThresholdType (case-sensitive, like KQL ==)."""
        return [r for r in self.rows
                if r.enabled and r.type == type and r.threshold_type == threshold_type]


# ---------------------------------------------------------------- loading


def load_config(path: str | os.PathLike | None = None) -> MonitorConfig:
    """Load and validate a monitor configuration; None loads the packaged default."""
    if path is None:
        name = DEFAULT_NAME
        text = (resources.files("portlens") / "data" / _DEFAULT_FILE).read_text(encoding="utf-8-sig")
    else:
        name = os.fspath(path)
        try:
            with open(path, encoding="utf-8-sig", newline="") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise ConfigError(f"{name}: cannot read file: {reason}") from None
    return _Parser(name).parse(text)


class _Parser:
    def __init__(self, name: str):
        self.name = name
        self.warnings: list[tuple[int, str]] = []

    def _where(self, line: int, column: str | None) -> str:
        return f"{self.name} line {line}" + (f", column {column}" if column else "")

    def error(self, line: int, column: str | None, msg: str) -> ConfigError:
        return ConfigError(f"{self._where(line, column)}: {msg}", line, column)

    def warn(self, line: int, column: str | None, msg: str) -> None:
        self.warnings.append((line, f"{self._where(line, column)}: {msg}"))

    def parse(self, text: str) -> MonitorConfig:
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise self.error(1, None, "file is empty (expected a header line)") from None
        except csv.Error as e:
            raise self.error(1, None, f"bad CSV: {e}") from None
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            more = f" (also missing: {', '.join(missing[1:])})" if missing[1:] else ""
            raise self.error(1, missing[0], f"required column is missing{more}")
        index = {c: header.index(c) for c in REQUIRED_COLUMNS}

        rows = []
        start = reader.line_num + 1
        while True:
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                raise self.error(start, None, f"bad CSV: {e}") from None
            if record:  # csv yields [] for a blank line
                if len(record) < len(header):
                    self.warn(start, header[len(record)], f"row has {len(record)} fields, header has "
                              f"{len(header)}: skipped")
                elif len(record) > len(header):
                    self.warn(start, None, f"row has {len(record)} fields, header has "
                              f"{len(header)} (an unquoted comma?): skipped")
                else:
                    rows.append(self.row(start, {c: record[i] for c, i in index.items()}))
            start = reader.line_num + 1

        self.check_rows(rows)
        # Row checks and whole-file checks interleave; report in file order.
        return MonitorConfig(self.name, rows, [m for _, m in sorted(self.warnings, key=lambda w: w[0])])

    # -- one row

    def row(self, line: int, f: dict[str, str]) -> MonitorRow:
        if f["Ports"] == "*":
            ports = None
            self.warn(line, "Ports", "'*' matches no port: the rule joins on port equality")
        else:
            ports = tuple(p for p in (self.port(line, item) for item in self.items(line, "Ports", f["Ports"]))
                          if p is not None)
        lists = {c: self.items(line, c, f[c]) for c in _LIST_COLUMNS}

        type_ = self.choice(line, "Type", f["Type"], TYPES, "the rule's filter skips this row")
        threshold_type = self.choice(line, "ThresholdType", f["ThresholdType"], THRESHOLD_TYPES,
                                     "the rule's filter skips this row")
        severity = self.choice(line, "Severity", f["Severity"], SEVERITIES,
                               "Sentinel still runs this row (only 'Disabled' turns a row off)")
        threshold = _uint(f["Threshold"].strip())  # toint(Threshold)
        if threshold is None:
            if threshold_type == "Static" and f["Threshold"]:
                self.warn(line, "Threshold", f"{f['Threshold']!r} is not a non-negative integer: "
                          "the row never fires")
            elif threshold_type == "Static":
                self.warn(line, "Threshold", "a Static row without a Threshold never fires")
        if not f["Name"].strip():
            self.warn(line, "Name", "Name is empty (the alert's title is 'Detected ')")

        if threshold_type == "Anomaly":
            if threshold is not None:
                self.warn(line, "Threshold", f"{threshold} is ignored by an Anomaly row")
            if lists["App"] is not None:
                self.warn(line, "App", "is ignored by the anomaly rule (only '*' has effect)")
        for value in lists["Direction"] or ():
            if _terms(value) and value.strip() not in _DIRECTIONS:
                self.warn(line, "Direction", f"{value!r} is not an ASIM NetworkDirection")
        for value in lists["Action"] or ():
            if _terms(value) and value.strip() not in _ACTIONS:
                self.warn(line, "Action", f"{value!r} is not an ASIM DvcAction")
        for column in ("Name", "Description", "Tactic"):
            for word in re.findall(r"[A-Za-z]+", f[column]):
                if word.lower() in _TYPOS:
                    self.warn(line, column, f"{word!r} looks like a typo for {_TYPOS[word.lower()]!r}")

        return MonitorRow(
            line=line, ports=ports, apps=lists["App"], protocols=lists["Protocol"],
            directions=lists["Direction"], actions=lists["Action"], type=type_,
            threshold_type=threshold_type, threshold=threshold, severity=severity,
            tactic=f["Tactic"], tactics=self.tactics(line, f["Tactic"]),
            name=f["Name"], description=f["Description"],
        )

    def items(self, line: int, column: str, raw: str) -> tuple[str, ...] | None:
        """split(raw, ",") as the KQL does it (items as written), de-duplicated; None for a
        wildcard. Ports items are checked by port()."""
        out: list[str] = []
        for value in raw.split(","):
            if column != "Ports" and value != "*" and not _terms(value):
                what = "an empty item" if not value else f"{value!r}"
                self.warn(line, column, f"{what} never matches: Sentinel never matches it"
                          + (" (only an exact '*' is a wildcard)" if "*" in value else ""))
            if value in out:
                self.warn(line, column, f"{value!r} is listed twice")
                continue
            out.append(value)
        if "*" in out and column != "Ports":
            if len(out) > 1:
                self.warn(line, column, "'*' makes the other items redundant")
            return None
        return tuple(out)

    def port(self, line: int, value: str) -> int | None:
        """The port an item matches: Ports == tostring(DstPortNumber) is text equality, so
        only the plain decimal text of a port (no sign, no leading zero, no space)."""
        port = _uint(value.strip())
        if port is not None and port <= 65535 and str(port) == value:
            return port
        why = ("is not a port number (0-65535)" if port is None or port > 65535
               else f"is not written as {str(port)!r} (the KQL compares the text)")
        self.warn(line, "Ports", f"{value!r} {why}: Sentinel never matches it")
        return None

    def choice(self, line: int, column: str, value: str, allowed: tuple[str, ...],
               effect: str) -> str:
        # Exact match, because the rule compares with ==: a row with "detection" never runs
        # in Sentinel. Not an error: the run goes on as Sentinel's would.
        if value not in allowed:
            hint = [a for a in allowed if a.lower() == value.strip().lower()]
            hint_text = f"; did you mean {hint[0]!r}?" if hint else ""
            self.warn(line, column, f"unknown {column} {value!r} (expected one of "
                      f"{', '.join(allowed)}){hint_text}: {effect}")
        return value

    def tactics(self, line: int, raw: str) -> tuple[str, ...]:
        out = []
        for item in raw.split(","):
            key = re.sub(r"[^a-z]", "", item.lower())
            if not key:
                continue
            if key not in _TACTICS:
                self.warn(line, "Tactic", f"{item.strip()!r} is not a MITRE ATT&CK tactic")
            out.append(_TACTICS.get(key, re.sub(r"\s+", "", item.strip())))
        return tuple(dict.fromkeys(out))

    # -- whole file

    def check_rows(self, rows: list[MonitorRow]) -> None:
        first_spelling: dict[str, tuple[str, int]] = {}
        for row in rows:
            for item in row.tactic.split(","):
                item = item.strip()
                canon = _TACTICS.get(re.sub(r"[^a-z]", "", item.lower()))
                if canon is None:
                    continue
                spelling, where = first_spelling.setdefault(canon, (item, row.line))
                if spelling != item:
                    self.warn(row.line, "Tactic", f"{item!r} is spelled {spelling!r} on line {where}")

        seen: dict[tuple, int] = {}
        for row in rows:
            key = (row.ports and frozenset(row.ports), row.apps, row.protocols, row.directions,
                   row.actions, row.type, row.threshold_type)
            if key in seen:
                self.warn(row.line, None, f"selects the same traffic as line {seen[key]}")
            else:
                seen[key] = row.line

        # Both rules would then alert on the same port.
        static_lines: dict[int, list[int]] = {}
        for row in rows:
            if row.threshold_type == "Static" and row.enabled:
                for p in row.ports or ():
                    static_lines.setdefault(p, []).append(row.line)
        for row in rows:
            if row.threshold_type == "Anomaly" and row.enabled:
                both = [p for p in row.ports or () if p in static_lines]
                if both:
                    lines = sorted({n for p in both for n in static_lines[p]})
                    self.warn(row.line, "Ports",
                              f"port(s) {', '.join(map(str, both))} also in Static row(s) on "
                              f"line(s) {', '.join(map(str, lines))}")


def _uint(value: str) -> int | None:
    # ASCII digits only: int() would also accept "+80", "8_0" or "٨٠".
    return int(value) if value.isascii() and value.isdigit() else None


# ---------------------------------------------------------------- mv-expand

EXPANDED_SCHEMA = pa.schema([
    ("line", pa.int32()),
    ("Name", pa.string()),
    ("Severity", pa.string()),
    ("Tactic", pa.string()),
    ("Description", pa.string()),
    ("DstPortNumber", pa.int32()),
    ("Protocol", pa.string()),
    ("Direction", pa.string()),
    ("Action", pa.string()),
    ("Threshold", pa.int32()),
])


def expanded(rows: list[MonitorRow]) -> pa.Table:
    """One row per (config row x port x protocol x direction x action).

    Wildcards in Protocol/Direction/Action stay as a literal "*" for
    :func:`matches`; rows whose Ports is "*" produce nothing (see module doc).
    """
    out: dict[str, list] = {name: [] for name in EXPANDED_SCHEMA.names}
    for r in rows:
        for port in r.ports or ():
            for proto in r.protocols or ("*",):
                for direction in r.directions or ("*",):
                    for action in r.actions or ("*",):
                        for name, value in zip(EXPANDED_SCHEMA.names, (
                                r.line, r.name, r.severity, r.tactic, r.description,
                                port, proto, direction, action, r.threshold)):
                            out[name].append(value)
    return pa.table(out, schema=EXPANDED_SCHEMA)


# ---------------------------------------------------------------- matching

_TERM = re.compile(r"[A-Za-z0-9]+")


@lru_cache(maxsize=4096)
def _terms(s: str) -> tuple[str, ...]:
    return tuple(t.lower() for t in _TERM.findall(s))


def matches(config_value: str, event_value: str | None) -> bool:
    """KQL ``config_value == "*" or config_value has event_value``.

    ``has`` is a case-insensitive whole-term match: terms are maximal runs of
    ASCII letters and digits, and a multi-term needle ("Drop ICMP") must occur
    as a contiguous run of terms. An empty/None event value (or one without
    any term) never matches: we choose not to alert on missing fields.
    """
    if config_value == "*":
        return True
    if config_value is None or not event_value:
        return False
    needle, hay = _terms(event_value), _terms(config_value)
    if not needle:
        return False
    n = len(needle)
    return any(hay[i:i + n] == needle for i in range(len(hay) - n + 1))


def _codes(values) -> tuple[list, np.ndarray]:
    """Distinct values (None last) and, per element, its index in that list."""
    if not isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = pa.array(values if isinstance(values, np.ndarray) else list(values), type=pa.string())
    arr = values
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    enc = arr.cast(pa.string()).dictionary_encode()
    distinct = enc.dictionary.to_pylist() + [None]
    idx = enc.indices.fill_null(len(distinct) - 1).to_numpy(zero_copy_only=False)
    return distinct, idx.astype(np.int64)


def match_mask(config_values: Sequence[str], event_values: Sequence[str | None]) -> np.ndarray:
    """Element-wise :func:`matches`, evaluated once per distinct pair."""
    cfg, ci = _codes(config_values)
    ev, ei = _codes(event_values)
    if len(ci) != len(ei):
        raise ValueError(f"length mismatch: {len(ci)} config values, {len(ei)} event values")
    pair = ci * len(ev) + ei
    distinct, inverse = np.unique(pair, return_inverse=True)
    result = np.array([matches(cfg[p // len(ev)], ev[p % len(ev)]) for p in distinct], dtype=bool)
    return result[inverse.reshape(-1)]


# ---------------------------------------------------------------- describe


def describe(config: MonitorConfig) -> list[dict]:
    """What each enabled row monitors, for ``portlens config check``."""
    def listed(values):
        return "*" if values is None else list(values)

    return [
        {
            "line": r.line,
            "name": r.name,
            "severity": r.severity,
            "type": r.type,
            "threshold_type": r.threshold_type,
            "ports": listed(r.ports),
            "protocols": listed(r.protocols),
            "directions": listed(r.directions),
            "actions": listed(r.actions),
            "threshold": r.threshold,
            # Only these rows feed the anomaly rule; a '*' port reaches nothing.
            "in_anomaly_rule": (r.type == "Detection" and r.threshold_type == "Anomaly"
                                and r.ports is not None),
        }
        for r in config.rows if r.enabled
    ]
