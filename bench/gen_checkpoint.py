"""Synthetic Check Point Log Exporter syslog lines (`key=value|...` after an RFC 5424 header)
and a naive per-line baseline parser."""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta, timezone
from typing import Iterator

_SERVICES = [("https", 443, 6), ("http", 80, 6), ("domain-udp", 53, 17), ("ssh", 22, 6),
             ("ntp-udp", 123, 17), ("smtp", 25, 6), ("echo-request", None, 1)]
_ACTIONS = ["Accept"] * 6 + ["Drop", "Drop", "Reject", "Encrypt"]


def lines(n: int, seed: int = 0) -> Iterator[str]:
    """`n` lines: ~93% connection logs (tcp/udp/icmp, zones, NAT, byte counters), the rest
    management/audit logs without addresses (skipped by the parser)."""
    rng = random.Random(seed)
    t = datetime(2024, 5, 1, tzinfo=timezone.utc)
    for i in range(n):
        t += timedelta(milliseconds=rng.randrange(0, 30))
        head = f"<134>1 {t:%Y-%m-%dT%H:%M:%SZ} cplog CheckPoint {rng.randrange(1000, 9999)} - - "
        common = (f"time={int(t.timestamp())}|hostname=cplog|product=VPN-1 & FireWall-1|"
                  f"loguid={{0x{i:x},0x1,0x2,0x3}}|origin=10.1.1.254|originsicname=CN\\=gw-east,O\\=mgmt.example")
        if rng.random() < 0.93:
            svc, port, proto = rng.choice(_SERVICES)
            inbound = rng.random() < 0.3
            src = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}" \
                if inbound else f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            dst = f"10.1.{rng.randrange(256)}.{rng.randrange(1, 255)}" if inbound else \
                f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            ports = "" if port is None else f"|s_port={rng.randrange(1024, 65536)}|service={port}"
            zones = "inzone=External|outzone=Internal" if inbound else "inzone=Internal|outzone=External"
            yield (f"{head}{common}|action={rng.choice(_ACTIONS)}|conn_direction={'Incoming' if inbound else 'Outgoing'}|"
                   f"ifdir=inbound|ifname=eth0|{zones}|src={src}|dst={dst}|proto={proto}{ports}|service_id={svc}|"
                   f"rule_name=Rule {rng.randrange(1, 40)}|client_outbound_bytes={rng.randrange(40, 50000)}|"
                   f"client_inbound_bytes={rng.randrange(0, 500000)}")
        else:
            yield (f"{head}{common}|action=Log In|administrator=admin|client_name=SmartConsole|"
                   f"operation=Log In|subject=Administrator Login")


_HEAD = re.compile(r"^<\d+>1 \S+ \S+ \S+ \S+ \S+ \S+ (.*)$")
_SPLIT = re.compile(r"(?<!\\)\|")
_ACTION = {"accept": "Allow", "drop": "Drop", "reject": "Deny", "encrypt": "Encrypt"}


def baseline(path: str) -> int:
    """Naive per-line parser: strip the RFC 5424 header, split on unescaped `|`, a dict of
    key=value, skip records without addresses, build the ASIM fields. Row count."""
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = _HEAD.match(line.rstrip("\r\n"))
            if not m:
                continue
            kv = dict(p.split("=", 1) for p in _SPLIT.split(m.group(1)) if "=" in p)
            if "src" not in kv or "dst" not in kv:
                continue
            rows.append({
                "TimeGenerated": datetime.fromtimestamp(int(kv["time"]), timezone.utc),
                "SrcIpAddr": kv["src"], "DstIpAddr": kv["dst"],
                "SrcPortNumber": int(kv["s_port"]) if "s_port" in kv else None,
                "DstPortNumber": int(kv["service"]) if "service" in kv else None,
                "NetworkProtocol": {"6": "TCP", "17": "UDP", "1": "ICMP"}.get(kv.get("proto")),
                "DvcAction": _ACTION.get(kv.get("action", "").lower()),
                "NetworkDirection": {"Incoming": "Inbound", "Outgoing": "Outbound"}.get(kv.get("conn_direction")),
                "SrcBytes": int(kv.get("client_outbound_bytes", 0)), "DstBytes": int(kv.get("client_inbound_bytes", 0)),
                "NetworkRuleName": kv.get("rule_name"), "Dvc": kv.get("origin"),
            })
    return len(rows)
