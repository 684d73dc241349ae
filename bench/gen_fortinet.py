"""Synthetic FortiGate key=value traffic syslog lines (some event/utm) and a naive per-line
baseline parser."""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta, timezone
from typing import Iterator

_SERVICES = [("HTTPS", 443, 6), ("HTTP", 80, 6), ("DNS", 53, 17), ("SSH", 22, 6), ("RDP", 3389, 6),
             ("NTP", 123, 17), ("SMTP", 25, 6), ("PING", 0, 1)]
_ACTIONS = ["close"] * 5 + ["accept"] * 3 + ["deny", "timeout", "client-rst", "server-rst"]
_COUNTRIES = ["United States", "Germany", "Reserved", "Canada", "United Kingdom"]


def lines(n: int, seed: int = 0) -> Iterator[str]:
    """`n` FortiOS lines: ~92% type="traffic" (forward/local, tcp/udp/icmp), the rest event and
    utm logs (skipped by the parser); quoted values with spaces as FortiOS writes them."""
    rng = random.Random(seed)
    t = datetime(2024, 5, 1, tzinfo=timezone.utc)
    for i in range(n):
        t += timedelta(milliseconds=rng.randrange(0, 30))
        head = (f'date={t:%Y-%m-%d} time={t:%H:%M:%S} devname="fgt-hq" devid="FGT60F0000000001" '
                f'eventtime={int(t.timestamp() * 1e9)} tz="+0000"')
        src = f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        dst = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        kind = rng.random()
        if kind < 0.92:
            svc, dport, proto = rng.choice(_SERVICES)
            ports = "" if proto == 1 else f"srcport={rng.randrange(1024, 65536)} "
            dports = "" if proto == 1 else f"dstport={dport} "
            icmp = "icmptype=0x08 icmpcode=0x00 " if proto == 1 else ""
            yield (f'{head} logid="0000000013" type="traffic" subtype="forward" level="notice" vd="root" '
                   f'srcip={src} {ports}srcintf="internal" srcintfrole="lan" dstip={dst} {dports}dstintf="wan1" '
                   f'dstintfrole="wan" sessionid={i} proto={proto} action="{rng.choice(_ACTIONS)}" policyid=1 '
                   f'policyname="LAN to WAN" policytype="policy" service="{svc}" '
                   f'dstcountry="{rng.choice(_COUNTRIES)}" srccountry="Reserved" trandisp="snat" '
                   f'transip=203.0.113.2 transport={rng.randrange(1024, 65536)} {icmp}duration={rng.randrange(0, 900)} '
                   f'sentbyte={rng.randrange(40, 50000)} rcvdbyte={rng.randrange(0, 500000)} '
                   f'sentpkt={rng.randrange(1, 500)} rcvdpkt={rng.randrange(0, 500)} appcat="unscanned" '
                   f'utmaction="{rng.choice(["allow", "allow", "block"])}"')
        elif kind < 0.97:
            yield (f'{head} logid="0100032001" type="event" subtype="system" level="information" vd="root" '
                   f'logdesc="Admin login successful" user="admin" ui="https({src})" action="login" '
                   f'status="success" msg="Administrator admin logged in successfully from https({src})"')
        else:
            yield (f'{head} logid="1059028704" type="utm" subtype="app-ctrl" eventtype="signature" '
                   f'level="information" vd="root" srcip={src} dstip={dst} srcport={rng.randrange(1024, 65536)} '
                   f'dstport=443 proto=6 action="pass" app="HTTPS.BROWSER" appcat="Web.Client"')


_PAIR = re.compile(r'([A-Za-z0-9_]+)=("(?:[^"\\]|\\.)*"|\S*)')
_ACTION = {"accept": "Allow", "deny": "Deny", "client-rst": "Reset Source", "server-rst": "Reset Destination"}


def baseline(path: str) -> int:
    """Naive per-line parser: regex findall into a dict, keep type=traffic, build the ASIM
    fields (ints, eventtime -> datetime, action, duration in ms). Row count."""
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            kv = {k: v.strip('"') for k, v in _PAIR.findall(line)}
            if kv.get("type") != "traffic" or kv.get("action") == "dns":
                continue
            icmp = kv.get("proto") == "1"
            rows.append({
                "TimeGenerated": datetime.fromtimestamp(int(kv["eventtime"]) / 1e9, timezone.utc),
                "SrcIpAddr": kv.get("srcip"), "DstIpAddr": kv.get("dstip"),
                "SrcPortNumber": None if icmp or "srcport" not in kv else int(kv["srcport"]),
                "DstPortNumber": None if icmp or "dstport" not in kv else int(kv["dstport"]),
                "NetworkProtocol": {"6": "TCP", "17": "UDP", "1": "ICMP"}.get(kv.get("proto")),
                "DvcAction": _ACTION.get(kv.get("action")), "SrcBytes": int(kv.get("sentbyte", 0)),
                "DstBytes": int(kv.get("rcvdbyte", 0)), "NetworkDuration": int(kv.get("duration", 0)) * 1000,
                "NetworkRuleName": kv.get("policyname"), "Dvc": kv.get("devname"),
            })
    return len(rows)
