"""Synthetic AWS VPC Flow Log records (default v2 format, one per line) and a naive baseline."""

from __future__ import annotations

import gzip
import random
from typing import Iterator

HEADER = ("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
          "start end action log-status")
_PORTS = [22, 53, 80, 123, 443, 445, 3389, 8080, 5432, 1433]


def lines(n: int, seed: int = 0, header: bool = False) -> Iterator[str]:
    """`n` v2 records (about 2% NODATA/SKIPDATA, 10% REJECT, some ICMP and IPv6); with
    `header=True` the S3 field-name line comes first (it is not a record)."""
    rng = random.Random(seed)
    t = 1_714_521_600
    enis = [f"eni-{rng.getrandbits(68):017x}" for _ in range(50)]
    if header:
        yield HEADER
    for _ in range(n):
        t += rng.randrange(0, 3)
        eni = rng.choice(enis)
        if rng.random() < 0.02:
            yield f"2 123456789010 {eni} - - - - - - - {t} {t + 60} - {rng.choice(['NODATA', 'SKIPDATA'])}"
            continue
        proto = rng.choices([6, 17, 1], [75, 20, 5])[0]
        v6 = rng.random() < 0.05
        src = f"2001:db8::{rng.getrandbits(16):x}" if v6 else f"10.0.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        dst = f"2001:db8:1::{rng.getrandbits(16):x}" if v6 else \
            f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        sport, dport = (0, 0) if proto == 1 else (rng.randrange(1024, 65536), rng.choice(_PORTS))
        if rng.random() < 0.5:
            src, dst, sport, dport = dst, src, dport, sport
        packets = rng.randrange(1, 500)
        action = "REJECT" if rng.random() < 0.1 else "ACCEPT"
        yield (f"2 123456789010 {eni} {src} {dst} {sport} {dport} {proto} {packets} "
               f"{packets * rng.randrange(40, 1500)} {t} {t + rng.randrange(1, 60)} {action} OK")


def baseline(path: str) -> int:
    """Naive per-line parser (split, int(), dict): the number of session rows."""
    opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
    names = HEADER.split()
    rows = 0
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split()
            if not parts or parts[0] == "version":
                if parts:
                    names = parts
                continue
            if len(parts) != len(names):
                continue
            rec = dict(zip(names, parts))
            if rec.get("log-status") in ("NODATA", "SKIPDATA"):
                continue
            try:
                int(rec["start"]), int(rec["dstport"]), int(rec["protocol"])
            except (KeyError, ValueError):
                continue
            rows += 1
    return rows
