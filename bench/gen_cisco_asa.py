"""Synthetic Cisco ASA syslog lines (mixed message IDs) and a naive per-line baseline parser."""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta
from typing import Iterator

_PORTS = [53, 80, 443, 443, 443, 22, 25, 123, 445, 3389, 8080, 1433]
_REASONS = ["TCP FINs", "TCP FINs", "TCP Reset-I", "TCP Reset-O", "SYN Timeout", "Conn-timeout",
            "Flow closed by inspection"]


def _inside(rng: random.Random) -> str:
    return f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _outside(rng: random.Random) -> str:
    return f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def lines(n: int, seed: int = 0) -> Iterator[str]:
    """`n` raw ASA lines: 302013/302014/302015/302016 connection pairs, 106023/106100 ACL
    hits, 106001/106015 denies, 302020/302021 ICMP and some skipped IDs (305011, 111008)."""
    rng = random.Random(seed)
    t = datetime(2024, 5, 1)
    conn = 100000
    for _ in range(n):
        t += timedelta(milliseconds=rng.randrange(0, 40))
        head = f"<166>{t:%b %d %Y %H:%M:%S} asa-{rng.randrange(3)} : "
        a, b = _inside(rng), _outside(rng)
        sp, dp = rng.randrange(1024, 65536), rng.choice(_PORTS)
        kind = rng.random()
        conn += 1
        if kind < 0.25:
            proto, mid = rng.choice([("TCP", "302013"), ("UDP", "302015")])
            yield (f"{head}%ASA-6-{mid}: Built outbound {proto} connection {conn} for outside:{b}/{dp} "
                   f"({b}/{dp}) to inside:{a}/{sp} (198.51.100.1/{sp})")
        elif kind < 0.50:
            h, m, s = rng.randrange(3), rng.randrange(60), rng.randrange(60)
            if rng.random() < 0.7:
                yield (f"{head}%ASA-6-302014: Teardown TCP connection {conn} for outside:{b}/{dp} to "
                       f"inside:{a}/{sp} duration {h}:{m:02d}:{s:02d} bytes {rng.randrange(10**7)} "
                       f"{rng.choice(_REASONS)}")
            else:
                yield (f"{head}%ASA-6-302016: Teardown UDP connection {conn} for outside:{b}/{dp} to "
                       f"inside:{a}/{sp} duration {h}:{m:02d}:{s:02d} bytes {rng.randrange(10**5)}")
        elif kind < 0.65:
            yield (f"{head}%ASA-4-106023: Deny {rng.choice(['tcp', 'udp'])} src outside:{b}/{sp} "
                   f"dst inside:{a}/{dp} by access-group \"outside_in\" [0x0, 0x0]")
        elif kind < 0.80:
            yield (f"{head}%ASA-6-106100: access-list inside_in {rng.choice(['permitted', 'denied'])} tcp "
                   f"inside/{a}({sp}) -> outside/{b}({dp}) hit-cnt {rng.randrange(1, 50)} first hit [0x1, 0x0]")
        elif kind < 0.85:
            yield (f"{head}%ASA-2-106001: Inbound TCP connection denied from {b}/{sp} to {a}/{dp} "
                   f"flags SYN  on interface outside")
        elif kind < 0.88:
            yield (f"{head}%ASA-6-106015: Deny TCP (no connection) from {a}/{sp} to {b}/{dp} flags RST  "
                   f"on interface inside")
        elif kind < 0.93:
            verb = rng.choice(["Built outbound", "Teardown"])
            mid = "302020" if verb.startswith("Built") else "302021"
            yield (f"{head}%ASA-6-{mid}: {verb} ICMP connection for faddr {b}/0 gaddr 198.51.100.1/{sp} "
                   f"laddr {a}/{sp} type 8 code 0")
        elif kind < 0.98:
            yield (f"{head}%ASA-6-305011: Built dynamic TCP translation from inside:{a}/{sp} to "
                   f"outside:198.51.100.1/{sp}")
        else:
            yield f"{head}%ASA-5-111008: User 'enable_15' executed the 'write memory' command."


_LINE = re.compile(r"^(?:<\d+>)?(\w{3} +\d+ \d{4} \d\d:\d\d:\d\d)(?: (\S+))? ?:? ?%(?:ASA|FTD)-(?:\w+-)?\d-(\d{6}): (.*)$")
_TUPLE = r"[^:\s]+:([^/\s]+)/(\d+)"
_PATTERNS = {
    "106023": re.compile(r"Deny (\S+) src [^:]+:([^/\s]+)/?(\d*) dst [^:]+:([^/\s]+)/?(\d*)"),
    "106100": re.compile(r"access-list \S+ (\S+) (\S+) [^/]+/([^(]+)\((\d+)\) -> [^/]+/([^(]+)\((\d+)\) hit-cnt (\d+)"),
    "106001": re.compile(r"Inbound (\S+) connection denied from ([^/]+)/(\d+) to ([^/]+)/(\d+)"),
    "106015": re.compile(r"Deny (\S+) \(no connection\) from ([^/]+)/(\d+) to ([^/]+)/(\d+)"),
    "302013": re.compile(r"Built (\w+) (\S+) connection (\d+) for " + _TUPLE + r" .*?to " + _TUPLE),
    "302014": re.compile(r"Teardown (\S+) connection (\d+) for " + _TUPLE + " to " + _TUPLE +
                         r" duration (\d+):(\d+):(\d+) bytes (\d+) ?(.*)"),
    "302020": re.compile(r"(Built|Teardown) (?:(\w+) )?ICMP connection for faddr ([^/\s]+)\S* gaddr \S+ laddr ([^/\s]+)"),
}
_PATTERNS["302015"] = _PATTERNS["302013"]
_PATTERNS["302016"] = _PATTERNS["302014"]
_PATTERNS["302021"] = _PATTERNS["302020"]


def _record(msgid: str, g: tuple) -> dict:
    if msgid in ("106023", "106001", "106015"):
        return {"NetworkProtocol": g[0].upper(), "SrcIpAddr": g[1], "SrcPortNumber": int(g[2]) if g[2] else None,
                "DstIpAddr": g[3], "DstPortNumber": int(g[4]) if g[4] else None, "DvcAction": "Deny"}
    if msgid == "106100":
        return {"DvcAction": "Deny" if g[0] == "denied" else "Allow", "NetworkProtocol": g[1].upper(),
                "SrcIpAddr": g[2], "SrcPortNumber": int(g[3]), "DstIpAddr": g[4], "DstPortNumber": int(g[5]),
                "EventCount": max(int(g[6]), 1)}
    if msgid in ("302013", "302015"):
        a, b = (g[3], int(g[4])), (g[5], int(g[6]))
        src, dst = (b, a) if g[0] == "outbound" else (a, b)
        return {"NetworkDirection": g[0].capitalize(), "NetworkProtocol": g[1], "NetworkSessionId": g[2],
                "SrcIpAddr": src[0], "SrcPortNumber": src[1], "DstIpAddr": dst[0], "DstPortNumber": dst[1],
                "DvcAction": "Allow"}
    if msgid in ("302014", "302016"):
        return {"NetworkProtocol": g[0], "NetworkSessionId": g[1], "SrcIpAddr": g[2], "SrcPortNumber": int(g[3]),
                "DstIpAddr": g[4], "DstPortNumber": int(g[5]),
                "NetworkDuration": (int(g[6]) * 3600 + int(g[7]) * 60 + int(g[8])) * 1000,
                "NetworkBytes": int(g[9]), "EventOriginalResultDetails": g[10] or None}
    outbound = g[1] == "outbound"
    return {"NetworkProtocol": "ICMP", "SrcIpAddr": g[3] if outbound else g[2],
            "DstIpAddr": g[2] if outbound else g[3], "EventSubType": "Start" if g[0] == "Built" else "End"}


def baseline(path: str) -> int:
    """Naive per-line parser: one regex per message ID, datetime.strptime, a dict per record
    with the ASIM fields (ints, action, outbound swap, duration in ms). Row count."""
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = _LINE.match(line.rstrip("\r\n"))
            if not m:
                continue
            pattern = _PATTERNS.get(m.group(3))
            fields = pattern.search(m.group(4)) if pattern else None
            if not fields:
                continue
            record = _record(m.group(3), fields.groups())
            record["TimeGenerated"] = datetime.strptime(m.group(1), "%b %d %Y %H:%M:%S")
            record["Dvc"] = m.group(2)
            record["EventOriginalType"] = m.group(3)
            rows.append(record)
    return len(rows)
