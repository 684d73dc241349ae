"""Synthetic Vectra Stream metadata lines (mostly metadata_isession) and a naive per-line
json.loads baseline."""

from __future__ import annotations

import json
import random
from typing import Iterator

_SERVICES = {443: "ssl", 80: "http", 53: "dns", 445: "smb", 22: "ssh", 3389: "rdp", 88: "krb"}


def lines(n: int, seed: int = 0) -> Iterator[str]:
    rng = random.Random(seed)
    ts = 1_714_521_600_000
    for i in range(n):
        ts += rng.randrange(1, 200)
        if rng.random() < 0.1:
            yield json.dumps({"metadata_type": "metadata_dns", "ts": ts, "id.orig_h": "10.0.0.1", "query": "x.example"})
            continue
        port = rng.choice(list(_SERVICES))
        out = rng.random() < 0.75
        local = f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        remote = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        dur = rng.randrange(1, 60_000)
        ob, rb = rng.randrange(60, 10**5), rng.randrange(60, 10**6)
        yield json.dumps({
            "metadata_type": "metadata_isession", "ts": ts, "session_start_time": ts - dur,
            "uid": f"C{i:017x}", "id.orig_h": local if out else remote, "id.orig_p": rng.randrange(1024, 65535),
            "id.resp_h": remote if out else local, "id.resp_p": port, "id.ip_ver": "ipv4",
            "proto": 17 if port == 53 else 6, "protoName": "udp" if port == 53 else "tcp",
            "service": _SERVICES[port], "duration": dur, "conn_state": rng.choice(["SF", "SF", "S0", "REJ", "SHR"]),
            "orig_pkts": ob // 500 + 1, "orig_ip_bytes": ob, "resp_pkts": rb // 1400 + 1, "resp_ip_bytes": rb,
            "orig_hostname": f"host-{rng.randrange(500)}", "resp_hostname": f"IP-{remote}",
            "hostname": "vsensor-01", "orig_huid": f"h-{rng.randrange(500)}", "sensor_uid": "s-1",
            "community_id": f"1:{rng.getrandbits(64):016x}=", "local_orig": out, "local_resp": not out,
        }, separators=(",", ":"))


def baseline(path: str) -> int:
    """Naive per-line parser: json.loads, isession filter, int ports, ms timestamps. Row count."""
    count = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                rec = json.loads(line)
                if rec.get("metadata_type") != "metadata_isession":
                    continue
                float(rec["ts"]) / 1000.0
                int(rec["id.orig_p"]), int(rec["id.resp_p"])
            except (ValueError, KeyError, TypeError):
                continue
            if rec.get("id.orig_h") and rec.get("id.resp_h"):
                count += 1
    return count
