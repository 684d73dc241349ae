"""Synthetic Sysmon-for-Linux syslog lines (event 3, plus some other event IDs) and a naive
per-line regex baseline."""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta, timezone
from typing import Iterator

_PORTS = [443, 443, 443, 80, 53, 22, 3306, 5432, 8080, 3389]
_IMAGES = ["/usr/bin/curl", "/usr/sbin/sshd", "/usr/lib/postgresql/bin/postgres", None]


def lines(n: int, seed: int = 0) -> Iterator[str]:
    rng = random.Random(seed)
    t = datetime(2024, 5, 1, tzinfo=timezone.utc)
    for i in range(n):
        t += timedelta(milliseconds=rng.randrange(1, 400))
        host = f"srv{rng.randrange(20):02d}"
        head = f"{t:%b %d %H:%M:%S} {host} sysmon: "
        system = (f'<System><Provider Name="Linux-Sysmon" Guid="{{ff032593-a8d3-4f13-b0d6-01fc615a0f97}}"/>'
                  f"<EventID>{3 if rng.random() < 0.9 else 1}</EventID><Version>5</Version><Level>4</Level>"
                  f"<Task>3</Task><Opcode>0</Opcode><Keywords>0x8000000000000000</Keywords>"
                  f'<TimeCreated SystemTime="{t:%Y-%m-%dT%H:%M:%S.%f}000Z"/><EventRecordID>{i}</EventRecordID>'
                  f'<Correlation/><Execution ProcessID="1234" ThreadID="1234"/><Channel>Linux-Sysmon/Operational'
                  f"</Channel><Computer>{host}</Computer><Security UserId=\"0\"/></System>")
        out = rng.random() < 0.7
        local = f"10.0.{rng.randrange(4)}.{rng.randrange(1, 255)}"
        remote = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        port = rng.choice(_PORTS)
        eph = rng.randrange(32768, 61000)
        src, sport, dst, dport = (local, eph, remote, port) if out else (remote, eph, local, port)
        image = rng.choice(_IMAGES)
        data = [("RuleName", "-"), ("UtcTime", f"{t:%Y-%m-%d %H:%M:%S}.{t.microsecond // 1000:03d}"),
                ("ProcessGuid", "{fd88a264-6181-6936-5d32-072e16560000}"), ("ProcessId", str(rng.randrange(100, 99999)))]
        if image:
            data += [("Image", image), ("User", "root")]
        data += [("Protocol", "tcp" if port != 53 else "udp"), ("Initiated", "true" if out else "false"),
                 ("SourceIsIpv6", "false"), ("SourceIp", src), ("SourceHostname", "-"), ("SourcePort", str(sport)),
                 ("SourcePortName", "-"), ("DestinationIsIpv6", "false"), ("DestinationIp", dst),
                 ("DestinationHostname", "-"), ("DestinationPort", str(dport)), ("DestinationPortName", "-")]
        body = "".join(f'<Data Name="{k}">{v}</Data>' for k, v in data)
        yield f"{head}<Event>{system}<EventData>{body}</EventData></Event>"


_DATA = re.compile(r'<Data Name="([^"]+)">([^<]*)</Data>')
_EID = re.compile(r"<EventID>(\d+)</EventID>")


def baseline(path: str) -> int:
    """Naive per-line parser: regex EventID and every Data field into a dict. Row count."""
    count = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = _EID.search(line)
            if not m or m.group(1) != "3":
                continue
            fields = dict(_DATA.findall(line))
            try:
                datetime.strptime(fields["UtcTime"], "%Y-%m-%d %H:%M:%S.%f")
                int(fields["SourcePort"]), int(fields["DestinationPort"])
            except (KeyError, ValueError):
                continue
            if fields.get("SourceIp") and fields.get("DestinationIp"):
                count += 1
    return count
