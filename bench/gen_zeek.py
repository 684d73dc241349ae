"""Synthetic Zeek conn.log lines (TSV with headers, or JSON) and a naive per-line baseline."""

from __future__ import annotations

import json
import random
import re
from typing import Iterator

FIELDS = ("ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto service duration orig_bytes "
          "resp_bytes conn_state local_orig local_resp missed_bytes history orig_pkts "
          "orig_ip_bytes resp_pkts resp_ip_bytes tunnel_parents ip_proto").split()
TYPES = ("time string addr port addr port enum string interval count count string bool bool "
         "count string count count count count set[string] count").split()
_SERVICES = {22: "ssh", 53: "dns", 80: "http", 443: "ssl", 445: "-", 3389: "-", 8080: "http"}
_STATES = ["SF", "SF", "SF", "S0", "REJ", "SHR", "RSTO", "OTH", "S1"]


def _record(rng: random.Random, ts: float) -> dict:
    proto = rng.choices(["tcp", "udp", "icmp"], [70, 25, 5])[0]
    port = rng.choice(list(_SERVICES)) if proto != "icmp" else 0
    orig = f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    resp = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    outbound = rng.random() < 0.8
    if not outbound:
        orig, resp = resp, orig
    ob, rb = rng.randrange(0, 5000), rng.randrange(0, 200000)
    return {
        "ts": round(ts, 6), "uid": "C" + "".join(rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijk0123456789", k=17)),
        "id.orig_h": orig, "id.orig_p": 8 if proto == "icmp" else rng.randrange(1024, 65536),
        "id.resp_h": resp, "id.resp_p": port, "proto": proto,
        "service": _SERVICES.get(port, "-") if proto != "icmp" else "-",
        "duration": round(rng.expovariate(1 / 3), 6), "orig_bytes": ob, "resp_bytes": rb,
        "conn_state": rng.choice(_STATES), "local_orig": outbound, "local_resp": not outbound,
        "missed_bytes": 0, "history": "ShADadFf", "orig_pkts": ob // 500 + 1,
        "orig_ip_bytes": ob + 40, "resp_pkts": rb // 1400 + 1, "resp_ip_bytes": rb + 40,
        "tunnel_parents": "-", "ip_proto": {"tcp": 6, "udp": 17, "icmp": 1}[proto],
    }


def lines(n: int, seed: int = 0, fmt: str = "tsv") -> Iterator[str]:
    """`n` conn records as TSV (with the #-headers first) or as JSON lines (fmt="json")."""
    rng = random.Random(seed)
    ts = 1_714_521_600.0
    if fmt == "tsv":
        yield "#separator \\x09"
        yield "#set_separator\t,"
        yield "#empty_field\t(empty)"
        yield "#unset_field\t-"
        yield "#path\tconn"
        yield "#fields\t" + "\t".join(FIELDS)
        yield "#types\t" + "\t".join(TYPES)
    for _ in range(n):
        ts += rng.expovariate(50)
        r = _record(rng, ts)
        if fmt == "json":
            r = {k: v for k, v in r.items() if v != "-"}
            yield json.dumps(r, separators=(",", ":"))
        else:
            yield "\t".join(("T" if v else "F") if isinstance(v, bool) else
                            (f"{v:.6f}" if isinstance(v, float) else str(v)) for v in r.values())


def baseline(path: str) -> int:
    """Naive per-line parser: header state, split/json.loads, float ts, int ports. Row count."""
    fields, count = None, 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if not line:
                continue
            if line.startswith("#fields"):
                fields = line.split("\t")[1:]
                continue
            if line.startswith("#"):
                continue
            if line.startswith("{"):
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
            elif fields:
                values = line.split("\t")
                if len(values) != len(fields):
                    continue
                rec = {k: None if v in ("-", "(empty)") else v for k, v in zip(fields, values)}
            else:
                continue
            try:
                float(rec["ts"])
                int(rec["id.orig_p"]), int(rec["id.resp_p"])
            except (KeyError, TypeError, ValueError):
                continue
            if re.match(r"^[0-9a-fA-F:.]+$", str(rec.get("id.orig_h", ""))):
                count += 1
    return count
