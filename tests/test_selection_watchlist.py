"""Issue 10 items 5 and 6: the watchlist read as the KQL reads it.

    | where Type == "Detection" and ThresholdType == "Anomaly" and Severity != "Disabled"
    | extend Ports = split(Ports, ","), ... | mv-expand ... | extend Ports = tostring(Ports), ...
    | extend DstPortNumber = tostring(DstPortNumber)
    | join kind=inner ['mapping'] where Ports == DstPortNumber
    | where (Protocol == "*" or Protocol has NetworkProtocol) and ...

split() does not trim, Ports == DstPortNumber compares text, and an empty item is neither "*"
nor has any term. Type/ThresholdType/Severity are compared with == / != only.
"""

from __future__ import annotations

import subprocess
import sys

from selectionkit import AS_OF, SURGE, anomaly_row, config, daily, fired, write_jsonl

import portlens
from portlens.store import Store

ROWS = [
    anomaly_row("0443", "HTTPS"),                       # "0443" != "443"
    anomaly_row("80, 445", "SMB"),                      # " 445" != "445"
    anomaly_row(3389, "RDP", protocol=""),              # an empty Protocol cell
    anomaly_row(22, "SSH"),                             # control
    anomaly_row(8443, "AltHTTPS").replace(",High,", ",Critical,"),   # Severity != "Disabled"
    anomaly_row(8080, "Proxy").replace(",Detection,", ",Alert,"),    # Type != "Detection"
    anomaly_row(636, "LDAPS", direction="Listen"),      # an ASIM direction (no warning)
]


def test_items_sentinel_never_matches_do_not_match(tmp_path):
    cfg = config(tmp_path, *ROWS)
    rows = [r for port in (443, 445, 3389, 22, 8443, 8080, 636)
            for r in daily(SURGE, port=port, direction="Listen" if port == 636 else "Inbound")]
    with Store(str(tmp_path / "s.duckdb")) as store:
        store.ingest(write_jsonl(tmp_path / "a.jsonl", rows))
        # Before: HTTPS, SMB and RDP fired (items trimmed, ports compared as numbers, an empty
        # cell read as '*'), and the Critical/Alert rows stopped the run with exit 2.
        assert fired(store, cfg) == {("SSH", "22"), ("AltHTTPS", "8443"), ("LDAPS", "636")}
        [alt] = [a for a in portlens.detect(store, config=cfg, as_of=AS_OF).alerts if a.name == "AltHTTPS"]
        assert alt.severity == "Critical"
    text = "\n".join(cfg.warnings)
    assert "line 2, column Ports: '0443' is not written as '443'" in text
    assert "line 3, column Ports: ' 445' is not written as '445'" in text
    assert "line 4, column Protocol: an empty item never matches: Sentinel never matches it" in text
    assert "line 6, column Severity: unknown Severity 'Critical'" in text and "still runs" in text
    assert "line 7, column Type: unknown Type 'Alert'" in text and "skips this row" in text
    assert "Listen" not in text   # ASIM's vocabulary comes from asim.py
    assert text.count("Sentinel never matches it") == 3


def test_config_check_and_detect_warn_and_go_on(tmp_path):
    cfg_path = tmp_path / "watchlist.csv"
    config(tmp_path, *ROWS)
    data = write_jsonl(tmp_path / "a.jsonl", daily(SURGE, port=8443))

    def portlens(*args):
        return subprocess.run([sys.executable, "-m", "portlens", *map(str, args)], cwd=tmp_path,
                              capture_output=True, text=True)

    r = portlens("config", "check", cfg_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("Sentinel never matches it") == 3
    assert portlens("ingest", data, "--db", "s.duckdb").returncode == 0
    r = portlens("detect", "--db", "s.duckdb", "--config", cfg_path, "--as-of", "2024-05-15T06:00:00Z")
    assert r.returncode == 0, r.stderr
    assert "watchlist warning" in r.stderr and "AltHTTPS" in r.stdout
