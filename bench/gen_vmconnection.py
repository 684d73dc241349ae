"""Synthetic VMConnection table export rows (CSV with a header) and a naive csv-module baseline."""

from __future__ import annotations

import csv
import io
import random
from datetime import datetime, timedelta, timezone
from typing import Iterator

COLUMNS = ("TimeGenerated,Computer,Direction,ProcessName,SourceIp,DestinationIp,DestinationPort,Protocol,"
           "RemoteIp,RemoteDnsCanonicalNames,RemoteCountry,BytesSent,BytesReceived,LinksEstablished,"
           "LinksTerminated,LinksLive,LinksFailed,Responses,ResponseTimeSum,ResponseTimeMax,ResponseTimeMin,"
           "Machine,Process,ConnectionId,Type").split(",")
_PROCS = ["nginx", "sshd", "postgres", "java", "dotnet", "svchost"]


def lines(n: int, seed: int = 0) -> Iterator[str]:
    rng = random.Random(seed)
    t = datetime(2024, 5, 1, tzinfo=timezone.utc)
    yield ",".join(COLUMNS)
    for i in range(n):
        if i % 50 == 0:
            t += timedelta(minutes=1)
        vm = rng.randrange(100)
        local = f"10.1.{vm // 200}.{vm % 200 + 4}"
        remote = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        inbound = rng.random() < 0.4
        port = rng.choice([443, 80, 22, 5432, 53, 1433, 8080])
        est, failed = rng.choice([(1, 0), (2, 0), (0, 0), (0, 1), (5, 1)])
        row = [t.strftime("%Y-%m-%dT%H:%M:%S.000Z"), f"vm{vm:03d}.contoso.com", "inbound" if inbound else "outbound",
               rng.choice(_PROCS), remote if inbound else local, local if inbound else remote, port,
               "udp" if port == 53 else "tcp", remote, '["host.example.com"]' if rng.random() < 0.3 else "",
               "United States", rng.randrange(100, 10**6), rng.randrange(100, 10**6), est, est, rng.randrange(2),
               failed, est, rng.randrange(1000), rng.randrange(500), rng.randrange(50),
               f"m-{vm:08x}", f"p-{rng.randrange(10**6)}", f"c-{i}", "VMConnection"]
        buf = io.StringIO()
        csv.writer(buf, lineterminator="").writerow(row)
        yield buf.getvalue()


def baseline(path: str) -> int:
    """Naive parser: csv.DictReader, direction/port/time checks per row. Row count."""
    count = 0
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        for row in csv.DictReader(f):
            try:
                datetime.fromisoformat(row["TimeGenerated"].replace("Z", "+00:00"))
                if not 0 <= int(row["DestinationPort"]) <= 65535:
                    continue
                sent, received = int(row["BytesSent"] or 0), int(row["BytesReceived"] or 0)
            except (KeyError, ValueError, TypeError, AttributeError):
                continue
            if row["Direction"].lower() == "inbound":
                sent, received = received, sent
            if row["SourceIp"] and row["DestinationIp"]:
                count += 1
    return count
