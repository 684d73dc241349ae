"""Synthetic Windows Security WFP events (5156/5157 plus some 5158 binds), one event XML per
line as `wevtutil qe Security /f:xml` writes them, and a naive per-line regex baseline."""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta, timezone
from typing import Iterator

_NS = "http://schemas.microsoft.com/win/2004/08/events/event"
_APPS = ["\\device\\harddiskvolume3\\windows\\system32\\svchost.exe", "System",
         "\\device\\harddiskvolume3\\program files\\google\\chrome\\application\\chrome.exe",
         "\\device\\harddiskvolume3\\windows\\system32\\lsass.exe"]


def lines(n: int, seed: int = 0) -> Iterator[str]:
    rng = random.Random(seed)
    t = datetime(2024, 5, 1, tzinfo=timezone.utc)
    for i in range(n):
        t += timedelta(milliseconds=rng.randrange(1, 300))
        eid = rng.choices([5156, 5157, 5158], [80, 10, 10])[0]
        inbound = rng.random() < 0.3
        local = f"10.0.{rng.randrange(4)}.{rng.randrange(1, 255)}"
        remote = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        port, eph = rng.choice([443, 80, 53, 445, 3389, 135, 88]), rng.randrange(49152, 65535)
        lport, rport = (port, eph) if inbound else (eph, port)
        if eid == 5158:
            data = [("ProcessId", rng.randrange(4, 9999)), ("Application", rng.choice(_APPS)),
                    ("SourceAddress", "0.0.0.0"), ("SourcePort", eph), ("Protocol", 6), ("FilterRTID", 0),
                    ("LayerName", "%%14608"), ("LayerRTID", 36)]
        else:
            data = [("ProcessID", rng.randrange(4, 9999)), ("Application", rng.choice(_APPS)),
                    ("Direction", "%%14592" if inbound else "%%14593"), ("SourceAddress", local),
                    ("SourcePort", lport), ("DestAddress", remote), ("DestPort", rport),
                    ("Protocol", 17 if port == 53 else 6), ("FilterRTID", rng.choice([0, 70312, 93954])),
                    ("LayerName", "%%14610" if inbound else "%%14611"), ("LayerRTID", 44 if inbound else 48),
                    ("RemoteUserID", "S-1-0-0"), ("RemoteMachineID", "S-1-0-0")]
        body = "".join(f'<Data Name="{k}">{v}</Data>' for k, v in data)
        yield (f'<Event xmlns="{_NS}"><System><Provider Name="Microsoft-Windows-Security-Auditing" '
               f'Guid="{{54849625-5478-4994-A5BA-3E3B0328C30D}}"/><EventID>{eid}</EventID><Version>1</Version>'
               f"<Level>0</Level><Task>12810</Task><Opcode>0</Opcode><Keywords>0x8020000000000000</Keywords>"
               f'<TimeCreated SystemTime="{t:%Y-%m-%dT%H:%M:%S.%f}0Z"/><EventRecordID>{1000 + i}</EventRecordID>'
               f'<Correlation/><Execution ProcessID="4" ThreadID="3704"/><Channel>Security</Channel>'
               f"<Computer>WS{rng.randrange(50):03d}.contoso.local</Computer><Security/></System>"
               f"<EventData>{body}</EventData></Event>")


_DATA = re.compile(r'<Data Name="([^"]+)">([^<]*)</Data>')
_EID = re.compile(r"<EventID>(\d+)</EventID>")
_TIME = re.compile(r'SystemTime="([^"]+)"')


def baseline(path: str) -> int:
    """Naive per-line parser: regex EventID, time and Data fields; keep 5152-5157. Row count."""
    count = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = _EID.search(line)
            if not m or m.group(1) not in ("5152", "5153", "5154", "5155", "5156", "5157"):
                continue
            fields = dict(_DATA.findall(line))
            t = _TIME.search(line)
            try:
                datetime.fromisoformat(t.group(1)[:26])
                int(fields.get("SourcePort", "0")), int(fields.get("DestPort", "0"))
            except (AttributeError, ValueError):
                continue
            if fields.get("SourceAddress"):
                count += 1
    return count
