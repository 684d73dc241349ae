"""Synthetic Cisco Meraki MX syslog lines (mixed log types) and a naive per-line baseline."""

from __future__ import annotations

import random
import re
from datetime import datetime, timezone
from typing import Iterator

_PORTS = [53, 80, 443, 443, 443, 22, 123, 3389, 8080, 5060]
_PATTERNS = ["allow all", "allow all", "deny all", "allow udp", "Group Policy Allow",
             "deny (src 10.10.0.0/16)", "allow (dst 10.0.0.0/8) && (src 10.241.0.0/16)", "1 all"]


def _mac(rng: random.Random) -> str:
    return ":".join(f"{rng.randrange(256):02X}" for _ in range(6))


def lines(n: int, seed: int = 0) -> Iterator[str]:
    """`n` raw Meraki lines: flows (old and new forms), firewall variants, ip_flow_start/end,
    some IPv6 and ICMP, and skipped events/urls records."""
    rng = random.Random(seed)
    t = 1_714_521_600.0
    for _ in range(n):
        t += rng.expovariate(40)
        head = f"<134>1 {t:.9f} MX{rng.choice([64, 84, 250])}_{rng.randrange(4)}"
        src = f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        dst = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        proto = rng.choices(["tcp", "udp", "icmp"], [70, 25, 5])[0]
        sp, dp = rng.randrange(1024, 65536), rng.choice(_PORTS)
        ports = " type=8" if proto == "icmp" else f" sport={sp} dport={dp}"
        kind = rng.random()
        if kind < 0.30:
            yield f"{head} flows allow src={src} dst={dst} mac={_mac(rng)} protocol={proto}{ports}"
        elif kind < 0.60:
            logtype = rng.choice(["flows", "firewall", "vpn_firewall", "cellular_firewall"])
            yield (f"{head} {logtype} src={src} dst={dst} mac={_mac(rng)} protocol={proto}{ports} "
                   f"pattern: {rng.choice(_PATTERNS)}")
        elif kind < 0.85:
            yield (f"{head} {rng.choice(['ip_flow_start', 'ip_flow_end'])} src={src} dst={dst} "
                   f"protocol={proto}{ports} translated_src_ip=198.51.100.{rng.randrange(1, 255)} "
                   f"translated_port={sp}")
        elif kind < 0.90:
            yield (f"{head} flows src=[2001:db8::{rng.randrange(1, 9999):x}]:{sp} dst=[2001:db8:1::{dp:x}]:{dp} "
                   f"mac={_mac(rng)} protocol=tcp pattern: allow all")
        elif kind < 0.95:
            yield f"{head} urls src={src}:{sp} dst={dst}:{dp} mac={_mac(rng)} request: GET https://example.com/"
        else:
            yield f"{head} events type=association radio='1' vap='1' client_mac='{_mac(rng)}' channel='36'"


_HEAD = re.compile(r"^(?:<\d+>)?1 (\d+)(?:\.(\d+))? (\S+) (\S+) (.*)$")
_KV = re.compile(r"(\w+)=(\S+)")
_ADDR = re.compile(r"^\[([^\]]*)\](?::(\d+))?$|^([^:]+):(\d+)$")
_SESSION = {"flows", "firewall", "cellular_firewall", "vpn_firewall", "ip_flow_start", "ip_flow_end",
            "bridge_anyconnect_client_vpn_firewall"}


def baseline(path: str) -> int:
    """Naive per-line parser: header regex, key=value regex, address split, action from the
    pattern, a dict per record with the ASIM fields. Row count."""
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = _HEAD.match(line.rstrip("\r\n"))
            if not m or m.group(4) not in _SESSION:
                continue
            body = m.group(5)
            kv = dict(_KV.findall(body.split(" pattern: ")[0]))
            if "src" not in kv or "dst" not in kv:
                continue
            record = {"TimeGenerated": datetime.fromtimestamp(int(m.group(1)), timezone.utc),
                      "Dvc": m.group(3), "EventOriginalType": m.group(4)}
            for side, key in (("Src", "src"), ("Dst", "dst")):
                a = _ADDR.match(kv[key])
                ip, port = ((a.group(1) or a.group(3)), (a.group(2) or a.group(4))) if a else (kv[key], None)
                record[side + "IpAddr"] = ip
                record[side + "PortNumber"] = int(kv.get("sport" if key == "src" else "dport") or port or 0) or None
            pattern = body.split("pattern: ", 1)[1] if "pattern: " in body else body.split(" ", 1)[0]
            low = pattern.lower()
            record["DvcAction"] = "Allow" if "allow" in low else "Deny" if "deny" in low or "block" in low else None
            record["NetworkProtocol"] = kv.get("protocol", "").upper()
            rows.append(record)
    return len(rows)
