"""Synthetic PAN-OS native CSV syslog lines (TRAFFIC with some THREAT/SYSTEM) and a naive
per-line baseline parser."""

from __future__ import annotations

import csv
import random
import re
from datetime import datetime, timedelta
from typing import Iterator

_APPS = [("ssl", 443, "tcp"), ("web-browsing", 80, "tcp"), ("dns", 53, "udp"), ("ntp", 123, "udp"),
         ("ms-rdp", 3389, "tcp"), ("ssh", 22, "tcp"), ("ping", 0, "icmp"), ("quic", 443, "udp"),
         ("smtp", 25, "tcp"), ("ms-ds-smb", 445, "tcp")]
_ACTIONS = ["allow"] * 8 + ["deny", "drop", "reset-both", "reset-client"]
_REASONS = ["tcp-fin", "aged-out", "tcp-rst-from-client", "tcp-rst-from-server", "policy-deny"]


def lines(n: int, seed: int = 0) -> Iterator[str]:
    """`n` lines: ~90% TRAFFIC (start/end/drop/deny, tcp/udp/icmp, IPv4 with a few IPv6), the
    rest THREAT and SYSTEM (skipped by the parser), behind an RFC 3164 header."""
    rng = random.Random(seed)
    t = datetime(2024, 5, 1)
    for i in range(n):
        t += timedelta(milliseconds=rng.randrange(0, 30))
        gen = f"{t:%Y/%m/%d %H:%M:%S}"
        head = f"<14>{t:%b %d %H:%M:%S} PA-3220 1,{gen},012801096514"
        app, dport, proto = rng.choice(_APPS)
        src = f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(1, 255)}" if rng.random() > 0.03 \
            else f"2001:db8::{rng.randrange(1, 65535):x}"
        dst = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}" \
            if ":" not in src else f"2001:db8:ff::{rng.randrange(1, 65535):x}"
        kind = rng.random()
        if kind < 0.90:
            action = rng.choice(_ACTIONS)
            sub = "end" if action == "allow" else rng.choice(["deny", "drop"])
            sport = rng.randrange(1024, 65536) if proto != "icmp" else 0
            bs, br = rng.randrange(60, 20000), rng.randrange(0, 200000)
            elapsed = rng.randrange(0, 600)
            start = f"{t - timedelta(seconds=elapsed):%Y/%m/%d %H:%M:%S}"
            rule = "allow-out" if rng.random() > 0.01 else '"rule, with comma"'
            yield (f"{head},TRAFFIC,{sub},2049,{gen},{src},{dst},198.51.100.7,{dst},{rule},,,{app},vsys1,trust,"
                   f"untrust,ethernet1/2,ethernet1/1,default,{gen},{100000 + i},{rng.randrange(1, 4)},{sport},{dport},"
                   f"{rng.randrange(1024, 65536)},{dport},0x400019,{proto},{action},{bs + br},{bs},{br},"
                   f"{rng.randrange(1, 200)},{start},{elapsed},any,0,{7000000 + i},0x0,10.0.0.0-10.255.255.255,"
                   f"United States,0,{rng.randrange(1, 100)},{rng.randrange(0, 100)},{rng.choice(_REASONS)},"
                   f"0,0,0,0,,PA-3220,from-policy,,,0,,0,,N/A,0,0,0,0")
        elif kind < 0.97:
            yield (f"{head},THREAT,vulnerability,2049,{gen},{src},{dst},0.0.0.0,0.0.0.0,ips,,,{app},vsys1,trust,"
                   f"untrust,ethernet1/2,ethernet1/1,default,{gen},{i},1,{rng.randrange(1024, 65536)},{dport},0,0,"
                   f"0x2000,{proto},reset-both,\"/index.php\",SQL Injection(30001),any,critical,client-to-server,{i}")
        else:
            yield f"{head},SYSTEM,general,0,{gen},,general,,0,0,general,informational,\"Commit job succeeded\",{i},0x0"


_HEAD = re.compile(r"^(?:<\d+>)?(?:\w{3} +\d+ \d\d:\d\d:\d\d \S+ )?(.*)$")
_ACTION = {"allow": "Allow", "deny": "Deny", "drop": "Drop", "reset-both": "Reset",
           "reset-client": "Reset Source", "reset-server": "Reset Destination", "drop-icmp": "Drop ICMP"}


def baseline(path: str) -> int:
    """Naive per-line parser: strip the syslog header, split the CSV (csv module when quoted),
    keep TRAFFIC, build a dict of ASIM fields (ints, times, action). Row count."""
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            body = _HEAD.match(line.rstrip("\r\n")).group(1)
            fields = next(csv.reader([body])) if '"' in body else body.split(",")
            if len(fields) < 46 or fields[3] != "TRAFFIC":
                continue
            icmp = fields[29] == "icmp"
            rows.append({
                "TimeGenerated": datetime.strptime(fields[6], "%Y/%m/%d %H:%M:%S"),
                "EventStartTime": datetime.strptime(fields[35], "%Y/%m/%d %H:%M:%S"),
                "SrcIpAddr": fields[7], "DstIpAddr": fields[8],
                "SrcPortNumber": None if icmp else int(fields[24]),
                "DstPortNumber": None if icmp else int(fields[25]),
                "NetworkProtocol": fields[29].upper(), "DvcAction": _ACTION.get(fields[30]),
                "NetworkBytes": int(fields[31]), "SrcBytes": int(fields[32]), "DstBytes": int(fields[33]),
                "NetworkDuration": int(fields[36]) * 1000, "EventCount": max(int(fields[23] or 1), 1),
                "NetworkRuleName": fields[11], "Dvc": fields[52],
            })
    return len(rows)
