"""Synthetic Azure NSG flow log v2 records and a naive baseline.

`lines(n, seed)` yields one NSG record per line (JSON lines, the Event Hub / single-record form);
each record carries 1-8 flow tuples, so rows > lines. To build the storage form instead (one big
`{"records":[...]}` PT1H.json document), use `blob(path, n, seed)`, which wraps the same records.
"""

from __future__ import annotations

import gzip
import json
import random
from typing import Iterator

_RID = ("/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/RG/PROVIDERS/"
        "MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/NSG-{}")
_PORTS = [22, 53, 80, 443, 445, 3389, 1433, 8080]


def _record(rng: random.Random, t: int) -> dict:
    tuples = []
    for _ in range(rng.randrange(1, 9)):
        inbound = rng.random() < 0.4
        vm = f"10.1.0.{rng.randrange(4, 250)}"
        peer = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        src, dst = (peer, vm) if inbound else (vm, peer)
        proto = "T" if rng.random() < 0.8 else "U"
        decision = "D" if inbound and rng.random() < 0.3 else "A"
        state = "B" if decision == "D" else rng.choice("BCE")
        counters = ",,," if state == "B" else \
            f"{rng.randrange(1, 99)},{rng.randrange(60, 99999)},{rng.randrange(1, 99)},{rng.randrange(60, 99999)}"
        tuples.append(f"{t + rng.randrange(60)},{src},{dst},{rng.randrange(1024, 65536)},{rng.choice(_PORTS)},"
                      f"{proto},{'I' if inbound else 'O'},{decision},{state},{counters}")
    return {"time": "2024-05-01T00:00:00.0000000Z", "systemId": "2c002c16-72f3-4dc5-b391-3444c3527434",
            "category": "NetworkSecurityGroupFlowEvent", "resourceId": _RID.format(rng.randrange(5)),
            "operationName": "NetworkSecurityGroupFlowEvents",
            "properties": {"Version": 2, "flows": [{"rule": rng.choice(["DefaultRule_DenyAllInBound",
                                                                        "UserRule_allow-web"]),
                                                    "flows": [{"mac": "000D3AF8801A", "flowTuples": tuples}]}]}}


def lines(n: int, seed: int = 0) -> Iterator[str]:
    rng = random.Random(seed)
    t = 1_714_521_600
    for _ in range(n):
        t += rng.randrange(0, 60)
        yield json.dumps(_record(rng, t), separators=(",", ":"))


def blob(path: str, n: int, seed: int = 0) -> None:
    """Write the same records as one PT1H.json `{"records":[...]}` document."""
    with open(path, "w") as f:
        f.write('{"records":[' + ",".join(lines(n, seed)) + "]}")


def baseline(path: str) -> int:
    """Naive parser: json.loads per line (or once per document), walk flows, split tuples."""
    opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        text = f.read()
    try:
        docs = [json.loads(text)]
    except ValueError:
        docs = []
        for line in text.splitlines():
            try:
                docs.append(json.loads(line))
            except ValueError:
                pass
    rows = 0
    for doc in docs:
        for rec in doc.get("records", [doc]) if isinstance(doc, dict) else []:
            for rule in rec.get("properties", {}).get("flows", []):
                for group in rule.get("flows", []):
                    for t in group.get("flowTuples", []):
                        f = t.split(",")
                        if len(f) in (8, 13) and f[0].isdigit():
                            rows += 1
    return rows
