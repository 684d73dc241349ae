"""Synthetic but realistic traffic for `portlens demo` and the benchmarks.

Fifteen days of sessions with a daily rhythm (business hours), a weekly rhythm (quiet
weekends), Poisson noise and many ports, plus misuse injected into the last 24 hours:
an RDP brute force from a few outside hosts and an LDAP enumeration surge from one inside
host (the anomaly rule's alerts), and an SMB sweep from one inside host in the last ten
minutes (over the shipped watchlist's static threshold). Generated with NumPy in bulk (no Python loop per session).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa


@dataclass(frozen=True)
class Flow:
    port: int
    protocol: str
    direction: str
    action: str
    per_day: float  # average sessions on a weekday
    human: bool = True  # follows office hours and weekends; False: scanners, machine traffic


# Ordinary traffic of a mid-size office network.
FLOWS = (
    Flow(443, "TCP", "Outbound", "Allow", 9000), Flow(80, "TCP", "Outbound", "Allow", 1800),
    Flow(53, "UDP", "Outbound", "Allow", 5000), Flow(123, "UDP", "Outbound", "Allow", 300),
    Flow(25, "TCP", "Outbound", "Allow", 150), Flow(22, "TCP", "Inbound", "Allow", 120),
    Flow(22, "TCP", "Inbound", "Deny", 400, False), Flow(3389, "TCP", "Inbound", "Allow", 140),
    Flow(3389, "TCP", "Inbound", "Deny", 90, False), Flow(389, "TCP", "Local", "Allow", 1200, False),
    Flow(389, "UDP", "Local", "Allow", 300, False), Flow(636, "TCP", "Local", "Allow", 350, False),
    Flow(445, "TCP", "Local", "Allow", 900), Flow(1433, "TCP", "Local", "Allow", 200),
    Flow(8080, "TCP", "Inbound", "Deny", 250, False), Flow(23, "TCP", "Inbound", "Deny", 40, False),
    Flow(5900, "TCP", "Inbound", "Deny", 25, False), Flow(135, "TCP", "Local", "Allow", 260),
)

# Misuse in the last 24 hours: (flow, extra sessions, source addresses).
INJECTED = (
    (Flow(3389, "TCP", "Inbound", "Deny", 0), 2600, ("203.0.113.45", "203.0.113.46", "198.51.100.7")),
    (Flow(3389, "TCP", "Inbound", "Allow", 0), 60, ("203.0.113.45",)),
    (Flow(389, "TCP", "Local", "Allow", 0), 9000, ("10.1.20.77",)),
    (Flow(8080, "TCP", "Inbound", "Deny", 0), 3000, ("192.0.2.200",)),  # not monitored: no alert
)

# Over the static threshold in the last ten minutes: one inside host sweeping SMB (the shipped
# watchlist's Detection/Static row alerts above 1,000 sessions on 139/445 in 10 minutes). Not
# scaled, so the static rule fires at any scale.
BURST = (Flow(445, "TCP", "Local", "Allow", 0), 1500, ("10.1.7.31",))

# Share of a day's sessions per hour (UTC office hours) and per weekday (Mon..Sun).
_HOURS = np.array([1, 1, 1, 1, 1, 2, 4, 8, 12, 12, 11, 10, 9, 11, 12, 11, 9, 6, 4, 3, 2, 2, 1, 1], float)
HOURLY = _HOURS / _HOURS.sum()
WEEKDAY = np.array([1.0, 1.05, 1.0, 1.0, 0.9, 0.35, 0.3])


def generate(end: datetime, days: int = 15, seed: int = 7, scale: float = 1.0,
             inject: bool = True) -> pa.Table:
    """Sessions over the `days` days before `end` (ASIM columns, Arrow table)."""
    rng = np.random.default_rng(seed)
    end = end.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    hours = np.arange(days * 24)
    hour_start = np.datetime64(start.replace(tzinfo=None), "us") + hours * np.timedelta64(3600, "s")
    weekday = (hour_start.astype("datetime64[D]").view("int64") + 3) % 7  # 1970-01-01 was Thursday
    hour_of_day = hours % 24 + start.hour
    office = HOURLY[hour_of_day % 24] * WEEKDAY[weekday]
    human = np.array([f.human for f in FLOWS])
    shape = np.where(human[:, None], office[None, :], 1 / 24)  # (flows, hours)

    rates = np.array([f.per_day for f in FLOWS]) * scale
    counts = rng.poisson(rates[:, None] * shape)
    flow_idx, hour_idx = np.nonzero(counts)
    n = counts[flow_idx, hour_idx]
    flow_of = np.repeat(flow_idx, n)
    hour_of = np.repeat(hour_idx, n)
    parts = [_sessions(rng, list(FLOWS), flow_of, hour_start[hour_of], None)]

    if inject:
        last_day = hour_start[-24:]
        for flow, extra, sources in INJECTED:
            k = int(extra * scale)
            times = last_day[rng.integers(0, 24, k)]
            parts.append(_sessions(rng, [flow], np.zeros(k, int), times, np.array(sources)))
        flow, k, sources = BURST
        last_ten = np.full(k, np.datetime64(end.replace(tzinfo=None), "us") - np.timedelta64(600, "s"))
        parts.append(_sessions(rng, [flow], np.zeros(k, int), last_ten, np.array(sources), spread_s=600))
    return pa.concat_tables(parts)


_INTERNAL = np.array([f"10.1.{i // 250}.{i % 250 + 2}" for i in range(600)])
_SERVERS = np.array(["10.1.0.10", "10.1.0.11", "10.1.0.12", "10.1.5.20", "10.1.5.21"])
_EXTERNAL = np.array([f"{a}.{b}.{c}.{d}" for a, b, c, d in
                      np.random.default_rng(1).integers([11, 0, 0, 1], [223, 255, 255, 254], (400, 4))])


def _sessions(rng, flows: list[Flow], which: np.ndarray, hour: np.ndarray,
              sources: np.ndarray | None, spread_s: int = 3600) -> pa.Table:
    n = len(which)
    port = np.array([f.port for f in flows])[which]
    proto = np.array([f.protocol for f in flows])[which]
    direction = np.array([f.direction for f in flows])[which]
    action = np.array([f.action for f in flows])[which]
    t = hour + rng.integers(0, spread_s * 10**6, n).astype("timedelta64[us]")
    inbound = direction == "Inbound"
    outbound = direction == "Outbound"
    src = np.where(inbound, _EXTERNAL[rng.integers(0, len(_EXTERNAL), n)],
                   _INTERNAL[rng.integers(0, len(_INTERNAL), n)])
    if sources is not None:
        src = sources[rng.integers(0, len(sources), n)]
    dst = np.where(outbound, _EXTERNAL[rng.integers(0, len(_EXTERNAL), n)],
                   _SERVERS[rng.integers(0, len(_SERVERS), n)])
    allowed = action == "Allow"
    sent = np.where(allowed, rng.lognormal(7, 1.2, n), 0).astype(np.int64)
    received = np.where(allowed, rng.lognormal(8, 1.5, n), 0).astype(np.int64)
    ts = pa.array(t, pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC"))
    return pa.table({
        "TimeGenerated": ts,
        "EventVendor": pa.repeat(pa.scalar("portlens"), n),
        "EventProduct": pa.repeat(pa.scalar("demo"), n),
        "EventType": pa.repeat(pa.scalar("NetworkSession"), n),
        "Dvc": pa.array(np.where(inbound, "fw-edge-01", "fw-core-01")),
        "DvcAction": pa.array(action),
        "NetworkProtocol": pa.array(proto),
        "NetworkDirection": pa.array(direction),
        "SrcIpAddr": pa.array(src),
        "SrcPortNumber": pa.array(rng.integers(49152, 65535, n), pa.int32()),
        "DstIpAddr": pa.array(dst),
        "DstPortNumber": pa.array(port, pa.int32()),
        "SrcBytes": pa.array(sent),
        "DstBytes": pa.array(received),
        "NetworkBytes": pa.array(sent + received),
    })
