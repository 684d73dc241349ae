"""Synthetic MDE DeviceNetworkEvents streaming-API lines (Event Hub JSON) and a naive
per-line json.loads baseline."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from typing import Iterator

_ACTIONS = (["ConnectionSuccess"] * 60 + ["ConnectionFailed"] * 8 + ["InboundConnectionAccepted"] * 12
            + ["ListeningConnectionCreated"] * 3 + ["ConnectionRequest"] * 5 + ["ConnectionFound"] * 2
            + ["DnsConnectionInspected"] * 6 + ["NetworkSignatureInspected"] * 4)
_PROCS = ["chrome.exe", "msedge.exe", "svchost.exe", "outlook.exe", "teams.exe", "powershell.exe"]
DIRECTIONS = {"ConnectionSuccess": "Outbound", "ConnectionFailed": "Outbound", "ConnectionRequest": "Outbound",
              "InboundConnectionAccepted": "Inbound", "ListeningConnectionCreated": "Listen",
              "ConnectionFound": "NA"}


def lines(n: int, seed: int = 0) -> Iterator[str]:
    rng = random.Random(seed)
    t = datetime(2024, 5, 1, tzinfo=timezone.utc)
    for i in range(n):
        t += timedelta(milliseconds=rng.randrange(1, 500))
        action = rng.choice(_ACTIONS)
        device = rng.randrange(200)
        port = rng.choice([443, 443, 443, 80, 53, 445, 3389, 22, 8080])
        props = {
            "Timestamp": t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z",
            "DeviceId": f"{device:040x}", "DeviceName": f"ws{device:04d}.contoso.com", "ActionType": action,
            "RemoteIP": f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            "RemotePort": port, "RemoteUrl": rng.choice([None, "www.example.com", "login.microsoftonline.com"]),
            "LocalIP": f"10.{device // 250}.{device % 250}.{rng.randrange(1, 255)}",
            "LocalPort": rng.randrange(49152, 65535), "Protocol": "Udp" if port == 53 else "Tcp",
            "LocalIPType": "Private", "RemoteIPType": "Public",
            "InitiatingProcessFileName": rng.choice(_PROCS), "InitiatingProcessId": rng.randrange(100, 30000),
            "InitiatingProcessAccountDomain": "contoso", "InitiatingProcessAccountName": f"user{device}",
            "ReportId": 10_000 + i, "AdditionalFields": None,
        }
        yield json.dumps({"time": t.isoformat(), "tenantId": "00000000-0000-0000-0000-000000000000",
                          "operationName": "Publish", "category": "AdvancedHunting-DeviceNetworkEvents",
                          "properties": props}, separators=(",", ":"))


def baseline(path: str) -> int:
    """Naive per-line parser: json.loads, category and ActionType filter, ISO time. Row count."""
    count = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                rec = json.loads(line)
                p = rec["properties"]
                if rec.get("category") != "AdvancedHunting-DeviceNetworkEvents" or p["ActionType"] not in DIRECTIONS:
                    continue
                datetime.fromisoformat(p["Timestamp"][:26])
                int(p["RemotePort"] or 0), int(p["LocalPort"] or 0)
            except (ValueError, KeyError, TypeError):
                continue
            count += 1
    return count
