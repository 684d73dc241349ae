"""Synthetic Sentinel table export: a CommonSecurityLog portal CSV (header, `[UTC]` time column,
US-locale times) mixing FortiGate traffic, SonicWall connection events, CrowdStrike firewall
matches and an unmapped vendor, plus a naive per-row Python baseline."""

from __future__ import annotations

import csv
import io
import random
from datetime import datetime, timedelta, timezone
from typing import Iterator

HEADER = ["TenantId", "TimeGenerated [UTC]", "DeviceVendor", "DeviceProduct", "DeviceVersion",
          "DeviceEventClassID", "Activity", "LogSeverity", "SourceIP", "SourcePort", "DestinationIP",
          "DestinationPort", "Protocol", "DeviceAction", "AdditionalExtensions", "Computer", "Type"]
_PORTS = [53, 80, 443, 443, 443, 22, 123, 3389, 445, 8080]


def lines(n: int, seed: int = 0) -> Iterator[str]:
    """The header, then `n - 1` CommonSecurityLog rows as one CSV line each."""
    rng = random.Random(seed)
    t = datetime(2024, 5, 1, tzinfo=timezone.utc)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="")

    def row(values) -> str:
        buf.seek(0)
        buf.truncate()
        w.writerow(values)
        return buf.getvalue()

    yield row(HEADER)
    for _ in range(n - 1):
        t += timedelta(seconds=rng.expovariate(20))
        when = t.strftime("%-m/%-d/%Y, %-I:%M:%S.") + f"{t.microsecond // 1000:03d} " + t.strftime("%p")
        src = f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        dst = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        sp, dp = rng.randrange(1024, 65536), rng.choice(_PORTS)
        kind = rng.random()
        if kind < 0.45:
            act = rng.choice(["accept", "accept", "close", "deny"])
            ext = (f"FTNTFGTsrcintfrole={rng.choice(['lan', 'wan'])};FTNTFGTdstintfrole=wan;"
                   f"FTNTFGTduration={rng.randrange(600)};FTNTFGTsentpkt=3;FTNTFGTrcvdpkt=4;cat=traffic")
            yield row(["t", when, "Fortinet", "FortiGate", "v7.2", "00013", f"traffic:forward {act}", "3",
                       src, sp, dst, dp, "TCP", act, ext, "fgt-1", "CommonSecurityLog"])
        elif kind < 0.80:
            ext = f'gcat=6;fw_action="{rng.choice(["forward", "NA", "drop"])}";dpi=1'
            yield row(["t", when, "SonicWall", "NSA 3700", "7.0.1", rng.choice(["537", "98"]), "Connection Closed", "4",
                       src, sp, dst, dp, rng.choice(["tcp/https", "udp/dns"]), "", ext, "18CAA1A5A8AA",
                       "CommonSecurityLog"])
        elif kind < 0.95:
            ext = (f"deviceId=abc;connectionDirection={rng.choice([1, 2])};localAddress={src};localPort={sp};"
                   f"remoteAddress={dst};remotePort={dp};protocol=6;ruleAction={rng.choice([1, 2])};"
                   f"ruleName=r{rng.randrange(9)};matchCount=1")
            yield row(["t", when, "CrowdStrike", "FalconHost", "1", "FirewallMatchEvent", "Firewall Match event", "1",
                       "", "", "", "", "", "", ext, "10.20.30.40", "CommonSecurityLog"])
        else:
            yield row(["t", when, "Acme", "Widget", "1", "x", "y", "1", src, sp, dst, dp, "TCP", "allow", "",
                       "w", "CommonSecurityLog"])


def baseline(path: str) -> int:
    """Naive per-row Python: csv.DictReader, the time parsed, AdditionalExtensions split on `;`,
    the four rule keys computed per vendor with dicts; returns the session rows."""
    rows = 0
    with open(path, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            datetime.strptime(r["TimeGenerated [UTC]"], "%m/%d/%Y, %I:%M:%S.%f %p")
            ext = dict(p.split("=", 1) for p in r["AdditionalExtensions"].split(";") if "=" in p)
            vendor = r["DeviceVendor"]
            if vendor == "Fortinet":
                key = (int(r["DestinationPort"]), r["Protocol"].upper(),
                       {"lan": "Outbound", "wan": "Inbound"}.get(ext.get("FTNTFGTsrcintfrole")),
                       {"accept": "Allow", "deny": "Deny"}.get(r["DeviceAction"]))
            elif vendor == "SonicWall":
                key = (int(r["DestinationPort"]), r["Protocol"].split("/")[0].upper(), "Outbound",
                       {"forward": "Allow", "drop": "Drop"}.get(ext.get("fw_action", "").strip('"')))
            elif vendor == "CrowdStrike":
                inbound = ext.get("connectionDirection") == "1"
                key = (int(ext["localPort"] if inbound else ext["remotePort"]), "TCP",
                       "Inbound" if inbound else "Outbound", "Allow" if ext.get("ruleAction") == "1" else "Deny")
            else:
                continue
            rows += key is not None
    return rows
