"""Synthetic Azure Firewall diagnostic records (JSON lines) and a naive baseline.

Mix: legacy AzureFirewallNetworkRule messages (TCP/UDP with ports, ICMP without ports, DNAT,
IDPS alert lines that are skipped) and resource-specific AZFWNetworkRule records.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from typing import Iterator

_RID = ("/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/RG/PROVIDERS/"
        "MICROSOFT.NETWORK/AZUREFIREWALLS/FW-{}")
_PORTS = [22, 53, 80, 443, 445, 1433, 3389, 8443]
_MSG = re.compile(r"^(\S+)(?: Type=\d+)? request from (\S+) to (\S+?)(?: was DNAT'ed to (\S+?))?(?:\.\s*(.*))?$")


def _ip(rng: random.Random) -> str:
    return f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def lines(n: int, seed: int = 0) -> Iterator[str]:
    rng = random.Random(seed)
    for i in range(n):
        t = f"2024-05-01T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}.{rng.randrange(10**7):07d}Z"
        rid = _RID.format(rng.randrange(3))
        src, dst = f"10.0.{rng.randrange(256)}.{rng.randrange(1, 255)}", _ip(rng)
        sport, dport = rng.randrange(1024, 65536), rng.choice(_PORTS)
        kind = rng.choices(["net", "icmp", "dnat", "alert", "structured"], [60, 5, 10, 5, 20])[0]
        if kind == "structured":
            rec = {"category": "AZFWNetworkRule", "time": t, "resourceId": rid, "properties": {
                "Protocol": rng.choice(["TCP", "UDP"]), "SourceIp": src, "SourcePort": sport,
                "DestinationIp": dst, "DestinationPort": dport, "Action": rng.choice(["Allow", "Deny"]),
                "Policy": "pol", "RuleCollectionGroup": "g", "RuleCollection": "c", "Rule": "r"}}
        else:
            if kind == "icmp":
                msg = f"ICMP Type=8 request from {src} to {dst}. Action: {rng.choice(['Allow', 'Deny'])}. "
            elif kind == "dnat":
                msg = f"TCP request from {dst}:{sport} to 198.51.100.1:{dport} was DNAT'ed to {src}:{dport}"
            elif kind == "alert":
                msg = (f"TCP request from {src}:{sport} to {dst}:{dport}. Action: alert. Signature: 2010935. "
                       "IDS: ET SCAN. Priority: 2. Classification: Misc")
            else:
                msg = (f"{rng.choice(['TCP', 'UDP'])} request from {src}:{sport} to {dst}:{dport}. "
                       f"Action: {rng.choice(['Allow', 'Deny'])}. Rule Collection: c. Rule: r")
            op = "AzureFirewallNatRuleLog" if kind == "dnat" else "AzureFirewallNetworkRuleLog"
            rec = {"category": "AzureFirewallNetworkRule", "operationName": op, "properties": {"msg": msg},
                   "resourceId": rid, "time": t}
        yield json.dumps(rec, separators=(",", ":"))


def baseline(path: str) -> int:
    """Naive per-line parser: json.loads + one regex per message; the number of session rows."""
    opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
    rows = 0
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            props = rec.get("properties") or {}
            if rec.get("category", "").startswith("AZFW"):
                if str(props.get("Action", "")).lower() != "alert" and props.get("SourceIp"):
                    rows += 1
                continue
            m = _MSG.match(props.get("msg", ""))
            if m and "Action: alert" not in (m.group(5) or ""):
                rows += 1
    return rows
