"""The analyst report: HTML structure on a small demo run, a real headless Chromium render
(skipped without chromium), and the matplotlib PNGs (skipped without matplotlib)."""

from __future__ import annotations

import copy
import os
import shutil
import struct
import subprocess
import sys
import zlib
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import portlens
from portlens import asim, demo, monitor, report
from portlens.cli import _write_jsonl
from portlens.rules import port_anomaly as rule
from portlens.store import Store

END = datetime(2025, 3, 7, 12, 0, tzinfo=timezone.utc)
BRUTE_FORCE = ("203.0.113.45", "203.0.113.46", "198.51.100.7")   # demo.INJECTED, RDP deny
LDAP_SURGE = "10.1.20.77"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ANOMALY_RGB = (0xD7, 0x30, 0x1F)


# ---------------------------------------------------------------------------------------------
# fixtures: one small demo store for the module

@pytest.fixture(scope="module")
def store(tmp_path_factory):
    base = tmp_path_factory.mktemp("report-demo")
    logs = base / "sessions.jsonl"
    _write_jsonl(demo.generate(END, scale=0.3), logs)
    st = Store(str(base / "demo.duckdb"))
    st.ingest(str(logs))
    yield st
    st.close()


def _detect(store, config=None) -> portlens.Detection:
    return portlens.detect(store, config=config)


@pytest.fixture(scope="module")
def result(store) -> portlens.Detection:
    return _detect(store)


@pytest.fixture(scope="module")
def page(result, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("report-html") / "report.html"
    report.write_html(result, path, figures={"Sessions in store": 81234, "Elapsed": "1.5 s"})
    return path


# ---------------------------------------------------------------------------------------------
# a tiny DOM from the standard library's HTML parser

VOID = {"meta", "br", "img", "input", "link", "hr", "source", "wbr", "area", "base", "col", "embed"}


class Node:
    def __init__(self, tag: str, attrs: dict, parent: "Node | None"):
        self.tag, self.attrs, self.parent, self.children, self.text = tag, attrs, parent, [], []

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def walk(self):
        yield self
        for c in self.children:
            yield from c.walk()

    def find(self, cls: str | None = None, tag: str | None = None) -> list["Node"]:
        return [n for n in self.walk() if (cls is None or cls in n.classes) and (tag is None or n.tag == tag)]

    def ancestor(self, cls: str) -> "Node | None":
        n = self.parent
        while n is not None and cls not in n.classes:
            n = n.parent
        return n

    def all_text(self) -> str:
        return "".join(self.text) + "".join(c.all_text() for c in self.children)


class DomBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = self.cur = Node("#root", {}, None)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Node(tag, dict(attrs), self.cur))

    def handle_endtag(self, tag):
        n = self.cur
        while n is not None and n.tag != tag:
            n = n.parent
        if n is not None and n.parent is not None:
            self.cur = n.parent

    def handle_data(self, data):
        self.cur.text.append(data)


def dom(text: str) -> Node:
    builder = DomBuilder()
    builder.feed(text)
    builder.close()
    return builder.root


# ---------------------------------------------------------------------------------------------
# HTML structure

def test_demo_run_has_the_injected_alerts(result):
    assert sorted((a.kind, a.port) for a in result.alerts) == [
        ("anomaly", 389), ("anomaly", 3389), ("static", 445)]  # the demo's SMB sweep: a static row
    assert all(s.talkers is not None for a in result.alerts for s in a.series)


def test_one_chart_per_series_with_the_anomaly_marker_on_the_last_day(result, page):
    root = dom(page.read_text(encoding="utf-8"))
    charts = root.find("series-chart", "svg")
    anomalies = [a for a in result.alerts if a.kind == "anomaly"]
    assert len(charts) == sum(len(a.series) for a in anomalies) >= 2
    for alert in anomalies:
        section = [n for n in root.find("alert", "section") if n.attrs.get("data-alert-id") == alert.id]
        assert len(section) == 1
        mine = [c for c in charts if c.attrs["data-alert-id"] == alert.id]
        assert len(mine) == len(alert.series)
        for chart, series in zip(mine, alert.series):
            assert chart.ancestor("alert") is section[0]
            [marker] = chart.find("anomaly-marker")
            assert marker.attrs["data-day"] == str(result.window.days - 1)
            assert marker.attrs["data-count"] == str(series.total)
            # the marker is drawn in the anomaly colour and labelled with count and score
            fills = {n.attrs.get("fill", "").lower() for n in marker.walk()}
            assert report.ANOMALY in fills
            label = marker.all_text()
            assert f"{series.total:,} sessions" in label and "score" in label
            bars = chart.find("day-bar")
            assert len(bars) == result.window.days
            assert chart.find("baseline")
            # day labels: weekday and date of every bin from the window start
            dates = [n.all_text() for n in chart.find("day-label")][1::2]
            assert dates == [d.strftime("%m-%d") for d in result.window.bins()]
    text = root.all_text()
    for heading in ("As of", "Window", "Series scored", "Alerts", "Sessions in store", "Elapsed"):
        assert heading in text
    assert "81,234" in text and "1.5 s" in text
    for tier in result.tiers:  # where the counts came from
        assert tier in [n.all_text() for n in root.find(tag="th")]


def test_brute_force_sources_are_listed_and_flagged_new(result, page):
    root = dom(page.read_text(encoding="utf-8"))
    rdp = next(a for a in result.alerts if a.port == 3389)
    [section] = [n for n in root.find("alert", "section") if n.attrs.get("data-alert-id") == rdp.id]
    sources = [t for t in section.find("talker-table", "table") if t.attrs["data-field"] == "SrcIpAddr"]
    assert sources
    rows = {r.find(tag="code")[0].all_text(): r for r in sources[0].find(tag="tr") if r.find(tag="code")}
    for ip in BRUTE_FORCE:
        assert ip in rows, f"{ip} missing from the sources table"
        assert "is-new" in rows[ip].classes and rows[ip].find("badge-new")
    # ordinary sources of the day are not flagged
    assert any(not r.find("badge-new") for ip, r in rows.items() if ip not in BRUTE_FORCE)
    # the device and destination tables are there too
    fields = {t.attrs["data-field"] for t in section.find("talker-table", "table")}
    assert fields == {"SrcIpAddr", "DstIpAddr", "Dvc"}
    ldap = next(a for a in result.alerts if a.port == 389)
    [ldap_section] = [n for n in root.find("alert", "section") if n.attrs.get("data-alert-id") == ldap.id]
    assert LDAP_SURGE in ldap_section.all_text()


def test_self_contained_no_network_references(page):
    text = page.read_text(encoding="utf-8")
    root = dom(text)
    assert "http://" not in text and "https://" not in text
    for node in root.walk():
        assert node.tag not in ("script", "link", "img", "iframe", "object", "embed", "image", "use")
        for name, value in node.attrs.items():
            if name in ("src", "href", "xlink:href", "action", "srcset", "poster", "data"):
                v = (value or "").strip().lower()
                assert v.startswith("#"), f"{node.tag} {name}={value!r} points outside the page"
    styles = "".join(n.all_text() for n in root.find(tag="style"))
    assert "@import" not in styles and "url(" not in styles and "@font-face" not in styles


HOSTILE_NAME = '<b onmouseover="x()">RDP & co</b>'
HOSTILE_DESCRIPTION = '<script>alert("owned")</script><img src=x onerror=alert(1)> "quoted" & more'


def test_hostile_configuration_text_is_escaped(store, write_config, tmp_path):
    cfg = write_config(
        f'3389,*,*,*,*,Detection,Anomaly,,High,"Lateral Movement",'
        f'"{HOSTILE_NAME.replace(chr(34), chr(34) * 2)}","{HOSTILE_DESCRIPTION.replace(chr(34), chr(34) * 2)}"')
    result = _detect(store, cfg)
    [alert] = result.alerts
    assert alert.description == HOSTILE_DESCRIPTION
    path = tmp_path / "hostile.html"
    report.write_html(result, path, figures={"<i>label</i>": "<script>1</script>"})
    text = path.read_text(encoding="utf-8")
    assert "<script" not in text and "<img" not in text and "<b " not in text and "<i>" not in text
    assert "&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt;" in text
    assert "&lt;b onmouseover=&quot;x()&quot;&gt;RDP &amp; co&lt;/b&gt;" in text
    root = dom(text)
    assert not root.find(tag="script") and not root.find(tag="img") and not root.find(tag="b")
    # what the reader sees is the original text
    [description] = root.find("description")
    assert description.all_text() == HOSTILE_DESCRIPTION
    assert all(not k.startswith("on") for n in root.walk() for k in n.attrs)


def test_no_alerts_says_so(store, write_config, tmp_path):
    cfg = write_config("443,*,*,*,*,Detection,Anomaly,,Low,Exfiltration,HTTPS,https")
    result = _detect(store, cfg)
    assert result.alerts == [] and result.series_count > 0
    path = tmp_path / "quiet.html"
    report.write_html(result, path)
    root = dom(path.read_text(encoding="utf-8"))
    [box] = root.find("no-alerts")
    assert "No alerts" in box.all_text() and f"{result.series_count:,}" in box.all_text()
    assert not root.find("series-chart") and not root.find("alert", "section")


def test_without_explanation_outages_and_several_series(tmp_path):
    """Hand-made series (no store): one alert with two series, an outage day, a skipped baseline."""
    as_of = datetime(2024, 5, 15, 6, 0, tzinfo=timezone.utc)
    flat = [10, 11, 9, 10, 12, 10, 9, 11, 10, 10, 12, 9, 10, 200]
    keys = pa.table({"DstPortNumber": pa.array([389, 389], asim.COLUMNS["DstPortNumber"]),
                     "NetworkProtocol": pa.array(["TCP", "UDP"], asim.COLUMNS["NetworkProtocol"]),
                     "NetworkDirection": pa.array(["Local", "Local"], asim.COLUMNS["NetworkDirection"]),
                     "DvcAction": pa.array(["Allow", "Allow"], asim.COLUMNS["DvcAction"])})
    series = rule.Series(rule.Window(as_of), keys, np.array([flat, [v * 2 for v in flat]], float))
    result = portlens.detect(series, config=monitor.load_config(None))
    [alert] = result.alerts
    assert len(alert.series) == 2
    alert = copy.deepcopy(alert)
    alert.series[0].baselines[4] = None
    alert.series[0].outage_days = [rule.Window(as_of).start + timedelta(days=4)]
    result = portlens.Detection([alert], result.window, result.series_count, result.anomalous, {})
    path = tmp_path / "hand.html"
    report.write_html(result, path)
    root = dom(path.read_text(encoding="utf-8"))
    charts = root.find("series-chart", "svg")
    assert len(charts) == 2 and all(len(c.find("anomaly-marker")) == 1 for c in charts)
    assert len(charts[0].find("outage-day")) == 1 and not charts[1].find("outage-day")
    assert len(charts[0].find("baseline")) == 2  # the line breaks where the baseline is undefined
    assert "not computed" in root.all_text()


# ---------------------------------------------------------------------------------------------
# headless Chromium: the page as a person sees it

def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


def _chromium_run(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={profile}", *args]
    env = dict(os.environ, HOME=str(profile))
    return subprocess.run(cmd, capture_output=True, timeout=120, env=env)


def _png_pixels(data: bytes) -> np.ndarray:
    """A tiny PNG decoder (8-bit RGB/RGBA, not interlaced): zlib plus the five row filters."""
    assert data[:8] == PNG_SIGNATURE
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    stride = width * bpp
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(height, stride + 1)
    out = np.empty((height, stride), np.uint8)
    prev = np.zeros(stride, np.uint8)
    for r in range(height):
        kind, line = raw[r, 0], raw[r, 1:]
        if kind == 0:
            cur = line.copy()
        elif kind == 1:
            cur = (line.reshape(width, bpp).astype(np.int64).cumsum(axis=0) % 256).astype(np.uint8).ravel()
        elif kind == 2:
            cur = line + prev
        else:
            buf, up = bytearray(line.tobytes()), prev.tobytes()
            for i in range(stride):
                a = buf[i - bpp] if i >= bpp else 0
                b = up[i]
                if kind == 3:
                    buf[i] = (buf[i] + ((a + b) >> 1)) & 255
                else:
                    c = up[i - bpp] if i >= bpp else 0
                    p = a + b - c
                    pa_, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    buf[i] = (buf[i] + (a if pa_ <= pb and pa_ <= pc else b if pb <= pc else c)) & 255
            cur = np.frombuffer(bytes(buf), np.uint8)
        out[r] = cur
        prev = cur
    return out.reshape(height, width, bpp)[..., :3]


def test_headless_chromium_renders_charts_spike_and_hosts(result, page, tmp_path):
    binary = _chromium()
    if binary is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    shot = tmp_path / "shot.png"
    url = page.resolve().as_uri()
    run = _chromium_run(binary, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2000", url)
    assert shot.is_file(), run.stderr.decode(errors="replace")[-2000:]
    data = shot.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 2000)
    pixels = _png_pixels(data)
    assert pixels.shape == (2000, 1280, 3)
    colours = np.unique(pixels.reshape(-1, 3) @ np.array([65536, 256, 1]))
    assert len(colours) > 50, "the screenshot looks blank"
    near_red = (np.abs(pixels.astype(int) - ANOMALY_RGB).max(axis=2) <= 8)
    assert near_red.sum() > 2000, "the anomaly colour is not on screen"
    # the red of the first alert's spike is a tall solid bar: a column of red pixels
    assert near_red.sum(axis=0).max() > 60

    run = _chromium_run(binary, tmp_path / "profile", "--dump-dom", url)
    rendered = run.stdout.decode("utf-8", errors="replace")
    root = dom(rendered)
    charts = root.find("series-chart", "svg")
    assert len(charts) == sum(len(a.series) for a in result.alerts if a.kind == "anomaly")
    assert all(c.find("anomaly-marker") for c in charts)
    for ip in BRUTE_FORCE:
        assert ip in rendered


# ---------------------------------------------------------------------------------------------
# PNG charts (matplotlib)

def test_pngs_one_per_alert(result, tmp_path):
    pytest.importorskip("matplotlib")
    paths = report.write_pngs(result, tmp_path / "charts")
    assert len(paths) == len([a for a in result.alerts if a.kind == "anomaly"]) == 2  # static: no days to draw
    assert len({p.name for p in paths}) == len(paths)
    for p in paths:
        data = p.read_bytes()
        assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
        width, height = struct.unpack(">II", data[16:24])
        assert width >= 600 and height >= 250
    assert report.write_pngs(portlens.Detection([], result.window, 0, result.anomalous, {}), tmp_path / "none") == []


def test_pngs_without_matplotlib_raise_a_clear_error(result, tmp_path, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.patches", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(RuntimeError, match=r"pip install 'portlens\[plot\]'"):
        report.write_pngs(result, tmp_path)
