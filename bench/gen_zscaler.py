"""Synthetic Zscaler NSS firewall feed lines in CEF (the NSS template) and a naive per-line
baseline parser."""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta
from typing import Iterator

_SERVICES = [("HTTPS", 443, "TCP", "ssl"), ("HTTP", 80, "TCP", "http"), ("DNS", 53, "UDP", "dns"),
             ("RDP", 3389, "TCP", "rdp"), ("SSH", 22, "TCP", "ssh"), ("ICMP_ANY", 0, "ICMP", "icmp")]
_ACTIONS = ["Allow"] * 7 + ["Block/Drop", "Block/Reset", "Block/ICMP", "Allow due to insufficient app data"]


def lines(n: int, seed: int = 0) -> Iterator[str]:
    """`n` NSS firewall CEF lines (the documented feed template, with the duplicated cs5)."""
    rng = random.Random(seed)
    t = datetime(2024, 5, 1)
    for i in range(n):
        t += timedelta(milliseconds=rng.randrange(0, 30))
        svc, port, proto, app = rng.choice(_SERVICES)
        act = rng.choice(_ACTIONS)
        sport = 0 if proto == "ICMP" else rng.randrange(1024, 65536)
        rule = rng.choice(["Default Firewall Filtering Rule", "Allow Web", "Block RDP"])
        yield (f"{t:%b %d %H:%M:%S} zscaler-nss-fw CEF:0|Zscaler|NSSFWlog|5.7|{act}|{rule}|3| act={act} "
               f"suser=user{rng.randrange(500)}@example.com src=10.{rng.randrange(4)}.{rng.randrange(256)}."
               f"{rng.randrange(1, 255)} spt={sport} dst={rng.randrange(1, 224)}.{rng.randrange(256)}."
               f"{rng.randrange(256)}.{rng.randrange(1, 255)} dpt={port} deviceTranslatedAddress=165.225.10.1 "
               f"deviceTranslatedPort={rng.randrange(1024, 65536)} destinationTranslatedAddress=0.0.0.0 "
               f"destinationTranslatedPort=0 sourceTranslatedAddress=198.51.100.200 sourceTranslatedPort=4500 "
               f"proto={proto} tunnelType=IPSec dnat=No stateful=Yes spriv=HQ reason={rule} "
               f"in={rng.randrange(0, 500000)} out={rng.randrange(40, 50000)} deviceDirection=1 cs1=Engineering "
               f"cs1Label=dept cs2={svc} cs2Label=nwService cs3={app} cs3Label=nwApp cs4=No cs4Label=aggregated "
               f"cs5=None cs5Label=threatcat cs6=None cs6label=threatname cn1={rng.randrange(0, 60000)} "
               f"cn1Label=durationms cn2={rng.randrange(1, 5)} cn2Label=numsessions cs5Label=ipCat cs5=Business "
               f"destCountry=United States avgduration={rng.randrange(0, 5000)}")


_CEF = re.compile(r"^(\w{3} +\d+ \d\d:\d\d:\d\d) (\S+) CEF:\d+\|([^|]*)\|([^|]*)\|[^|]*\|[^|]*\|[^|]*\|[^|]*\|(.*)$")
_PAIR = re.compile(r"(\w+)=(.*?)(?=\s\w+=|$)")
_ACTION = {"allow": "Allow", "block/drop": "Drop", "block/reset": "Reset", "block/icmp": "Drop ICMP",
           "allow due to insufficient app data": "Allow"}


def baseline(path: str) -> int:
    """Naive per-line parser: a regex for the syslog + CEF header, a lookahead regex for the
    extension pairs (first value of a key wins), the ASIM fields. Row count."""
    rows = []
    year = datetime.now().year
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = _CEF.match(line.rstrip("\r\n"))
            if not m or m.group(4) != "NSSFWlog":
                continue
            ext = {}
            for k, v in _PAIR.findall(m.group(5)):
                ext.setdefault(k, v.strip())
            icmp = ext.get("proto") == "ICMP"
            rows.append({
                "TimeGenerated": datetime.strptime(f"{year} {m.group(1)}", "%Y %b %d %H:%M:%S"),
                "SrcIpAddr": ext.get("src"), "DstIpAddr": ext.get("dst"),
                "SrcPortNumber": None if icmp else int(ext["spt"]), "DstPortNumber": None if icmp else int(ext["dpt"]),
                "NetworkProtocol": ext.get("proto"), "DvcAction": _ACTION.get(ext.get("act", "").lower()),
                "SrcBytes": int(ext.get("out", 0)), "DstBytes": int(ext.get("in", 0)),
                "NetworkDuration": int(ext.get("cn1", 0)), "EventCount": max(int(ext.get("cn2", 1)), 1),
                "NetworkRuleName": ext.get("reason"), "Dvc": m.group(2),
            })
    return len(rows)
