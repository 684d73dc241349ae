"""Delivery: the store outbox, sink specs, and real local receivers (an HTTP server that
fails on demand, UDP and TCP syslog listeners, a file)."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from portlens import delivery, formats
from portlens.store import Store

RULE_ID = "cbf07406-fa2a-48b0-82b8-efad58db14ec"


def make_alert(n: int, port: str = "3389", severity: str = "High") -> dict:
    """An alert of the rule's shape (see rules/port_anomaly._new_alert)."""
    totals = [10, 11, 9, 10, 12, 10, 9, 11, 10, 10, 12, 9, 10, 200 + n]
    return {
        "id": f"{n:032x}", "title": "Detected Suspicious Remote Desktop Network Traffic",
        "Name": "Suspicious Remote Desktop Network Traffic", "Severity": severity,
        "Tactic": "Lateral Movement", "DstPortNumber": port,
        "Description": "TCP/3389 is the default port used by remote desktop.",
        "NetworkProtocols": ["TCP"], "NetworkDirections": ["Inbound"], "DvcActions": ["Deny"],
        "rule_id": RULE_ID, "rule_name": "Detect port misuse by anomaly based detection (ASIM Network Session schema)",
        "rule_version": "1.3.0", "tactics": ["LateralMovement"],
        "techniques": ["T1095", "T1059", "T1203", "T1190"],
        "window": {"start": "2024-05-01T06:00:00Z", "end": f"2024-05-{15 + n:02d}T06:00:00Z",
                   "bin": "1d", "days": 14, "tiers": {}},
        "score": 5.9, "baseline": 59.0, "total": 200 + n,
        "series": [{"NetworkProtocol": "TCP", "NetworkDirection": "Inbound", "DvcAction": "Deny",
                    "total": 200 + n, "baseline": 59.0, "score": 5.9, "totals": totals,
                    "baselines": [float(i) for i in range(14)], "scores": [0.0] * 13 + [5.9]}],
    }


@pytest.fixture
def store(tmp_path):
    s = Store(str(tmp_path / "store.duckdb"))
    yield s
    s.close()


@pytest.fixture
def two(store):
    alerts = [make_alert(1), make_alert(2, port="22")]
    assert delivery.record(store, alerts) == [a["id"] for a in alerts]
    return alerts


def rows(store, sink=None):
    sql = "SELECT alert_id, sink, state, attempts, last_error, delivered_at FROM deliveries"
    if sink:
        return store.con.execute(sql + " WHERE sink = ? ORDER BY alert_id", [sink]).fetchall()
    return store.con.execute(sql + " ORDER BY alert_id").fetchall()


FAST = {"retries": 3, "backoff": 0.01, "timeout": 2.0}


# ---- a real HTTP receiver ------------------------------------------------------------------

class Receiver:
    """ThreadingHTTPServer on 127.0.0.1: answers `fail_status` to the first `fail_first`
    requests (or to all when fail_first is None), then 200; keeps what it got."""

    def __init__(self, port: int = 0, fail_first: int | None = 0, fail_status: int = 503,
                 headers: dict | None = None):
        self.fail_first, self.fail_status, self.fail_headers = fail_first, fail_status, headers or {}
        self.requests: list[tuple[dict, bytes]] = []
        self.accepted: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append((dict(self.headers), body))
                failing = receiver.fail_first is None or len(receiver.requests) <= receiver.fail_first
                status = receiver.fail_status if failing else 200
                self.send_response(status)
                for k, v in (receiver.fail_headers.items() if failing else ()):
                    self.send_header(k, v)
                payload = b"nope" if failing else b"ok"
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                if not failing:
                    receiver.accepted.append(json.loads(body))

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    started = []

    def start(**kw) -> Receiver:
        r = Receiver(**kw)
        started.append(r)
        return r
    yield start
    for r in started:
        r.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- record --------------------------------------------------------------------------------

def test_record_writes_each_id_once(store):
    a, b = make_alert(1), make_alert(2)
    assert delivery.record(store, [a, a]) == [a["id"]]
    assert delivery.record(store, [a, b]) == [b["id"]]
    assert delivery.record(store, [{**a, "Description": "changed"}]) == []
    got = store.con.execute("SELECT id, as_of, body FROM alerts ORDER BY id").fetchall()
    assert [r[0] for r in got] == [a["id"], b["id"]]
    assert got[0][1].isoformat().startswith("2024-05-16T06:00:00")
    assert json.loads(got[0][2]) == a  # the first body stays


def test_record_needs_ids(store):
    with pytest.raises(ValueError):
        delivery.record(store, [{"Name": "x"}])
    assert delivery.record(store, []) == []


# ---- sink specs ----------------------------------------------------------------------------

@pytest.mark.parametrize("spec, kind, key", [
    ("webhook=https://example.org/hook", delivery.WebhookSink, "webhook=https://example.org/hook"),
    ("webhook+ocsf=http://h:8080/p", delivery.WebhookSink, "webhook+ocsf=http://h:8080/p"),
    ("syslog=10.0.0.5:1514", delivery.SyslogSink, "syslog=udp://10.0.0.5:1514"),
    ("syslog=udp://10.0.0.5:1514", delivery.SyslogSink, "syslog=udp://10.0.0.5:1514"),
    ("syslog=tcp://logs.example:6514", delivery.SyslogSink, "syslog=tcp://logs.example:6514"),
    ("syslog=loghost", delivery.SyslogSink, "syslog=udp://loghost:514"),
    ("syslog=[::1]:514", delivery.SyslogSink, "syslog=udp://[::1]:514"),
    ("syslog=::1", delivery.SyslogSink, "syslog=udp://[::1]:514"),
    ("syslog+jsonl=tcp://h:1?facility=local0", delivery.SyslogSink, "syslog+jsonl=tcp://h:1"),
    ("file=/tmp/x.jsonl", delivery.FileSink, "file=/tmp/x.jsonl"),
    ("file+cef=/tmp/x.cef", delivery.FileSink, "file+cef=/tmp/x.cef"),
])
def test_parse_sink(spec, kind, key):
    sink = delivery.parse_sink(spec)
    assert isinstance(sink, kind) and sink.key == key


def test_webhook_key_hides_tokens():
    a = delivery.parse_sink("webhook=https://user:pw@h/x?token=SECRET1")
    b = delivery.parse_sink("webhook=https://h/x?token=SECRET2")
    assert "SECRET" not in a.key and "pw" not in a.key and "SECRET" not in b.key
    assert a.key != b.key and a.key.startswith("webhook=https://h/x#")


@pytest.mark.parametrize("spec", ["", "webhook", "webhook=", "ftp=x", "webhook=ftp://h/x",
                                  "webhook=https:///nohost", "webhook+cef=https://h/x",
                                  "syslog=h:notaport", "syslog=h:70000", "syslog=quic://h:1",
                                  "syslog=h:1?facility=bogus", "syslog=h:1?x=1", "file+xml=/tmp/x",
                                  "syslog=a:b:c"])
def test_parse_sink_rejects(spec):
    with pytest.raises(ValueError) as e:
        delivery.parse_sink(spec)
    assert "\n" not in str(e.value) and str(e.value).startswith("bad sink")


# ---- webhook -------------------------------------------------------------------------------

def test_webhook_retries_503_then_succeeds(store, two, receivers):
    r = receivers(fail_first=2, fail_status=503)
    slept = []
    report = delivery.deliver(store, [f"webhook={r.url}"], **FAST, sleep=lambda s: (slept.append(s), time.sleep(s)))
    assert report.ok and len(report.delivered) == 2
    assert [o.attempts for o in report.delivered] == [3, 1]
    assert slept == [0.01, 0.02]  # exponential backoff
    assert [a["id"] for a in r.accepted] == [a["id"] for a in two]
    assert r.accepted[0] == two[0]  # default format: the alert JSON
    headers = r.requests[-1][0]
    assert headers["Content-Type"] == "application/json"
    assert headers["Idempotency-Key"] == two[1]["id"]
    [(_, sink, state, attempts, error, delivered_at), _] = rows(store)
    assert (sink, state, attempts, error) == (f"webhook={r.url}", "delivered", 3, None)
    assert delivered_at is not None


def test_webhook_400_is_not_retried(store, two, receivers):
    r = receivers(fail_first=None, fail_status=400)
    report = delivery.deliver(store, [f"webhook={r.url}"], **FAST)
    assert not report.ok
    assert [o.attempts for o in report.failed] == [1, 1]  # one request per alert, both tried
    assert len(r.requests) == 2
    assert all(row[2] == "failed" and row[3] == 1 and "HTTP 400" in row[4] for row in rows(store))
    # failures are tried again on the next call (attempts add up)
    r.fail_first = 0
    report = delivery.deliver(store, [f"webhook={r.url}"], **FAST)
    assert report.ok and len(r.accepted) == 2
    assert [row[2:4] for row in rows(store)] == [("delivered", 2), ("delivered", 2)]


def test_webhook_429_honours_retry_after(store, two, receivers):
    r = receivers(fail_first=1, fail_status=429, headers={"Retry-After": "0.05"})
    slept = []
    report = delivery.deliver(store, [f"webhook={r.url}"], **FAST, sleep=slept.append)
    assert report.ok and slept == [0.05]


def test_second_deliver_sends_nothing_again(store, two, receivers):
    r = receivers()
    first = delivery.deliver(store, [f"webhook={r.url}"], **FAST)
    assert len(first.delivered) == 2
    second = delivery.deliver(store, [f"webhook={r.url}"], **FAST)
    assert second.outcomes == [] and second.already == 2
    assert len(r.requests) == 2
    # a newly recorded alert goes out alone
    delivery.record(store, [make_alert(3)])
    third = delivery.deliver(store, [f"webhook={r.url}"], **FAST)
    assert [o.alert_id for o in third.delivered] == [make_alert(3)["id"]]
    assert [a["id"] for a in r.accepted] == [make_alert(i)["id"] for i in (1, 2, 3)]


def test_server_down_then_up_delivers_on_next_call(store, two, receivers):
    port = free_port()
    spec = f"webhook=http://127.0.0.1:{port}/hook"
    report = delivery.deliver(store, [spec], **FAST)
    assert len(report.failed) == 2
    # the first alert used up its retries; the second is not tried against a dead sink
    assert [o.attempts for o in report.failed] == [4, 0]
    assert "cannot reach" in report.failed[0].error
    assert "not tried" in report.failed[1].error
    assert [row[2:4] for row in rows(store)] == [("failed", 4), ("failed", 0)]
    r = receivers(port=port)
    report = delivery.deliver(store, [spec], **FAST)
    assert report.ok and len(report.delivered) == 2
    assert [a["id"] for a in r.accepted] == [a["id"] for a in two]
    assert [row[2:4] for row in rows(store)] == [("delivered", 5), ("delivered", 1)]
    assert all(row[4] is None for row in rows(store))


def test_webhook_timeout_is_retried_then_recorded(store, two):
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/x"
        report = delivery.deliver(store, [f"webhook={url}"], retries=1, backoff=0, timeout=0.1)
    assert [o.attempts for o in report.failed] == [2, 0]
    assert "timed out" in report.failed[0].error


def test_redirect_is_not_followed(store, two, receivers):
    r = receivers(fail_first=None, fail_status=302, headers={"Location": "http://127.0.0.1:1/"})
    report = delivery.deliver(store, [f"webhook={r.url}"], **FAST)
    assert [o.attempts for o in report.failed] == [1, 1]
    assert "redirect" in report.failed[0].error


def test_webhook_ocsf_format(store, two, receivers):
    r = receivers()
    delivery.deliver(store, [f"webhook+ocsf={r.url}"], **FAST)
    assert [f["class_uid"] for f in r.accepted] == [2004, 2004]
    assert r.accepted[0]["finding_info"]["uid"] == two[0]["id"]


def test_deliver_only_given_ids(store, two, receivers):
    r = receivers()
    report = delivery.deliver(store, [f"webhook={r.url}"], **FAST, ids=[two[1]["id"]])
    assert [o.alert_id for o in report.delivered] == [two[1]["id"]]
    assert len(r.requests) == 1


# ---- syslog --------------------------------------------------------------------------------

RFC5424 = re.compile(r"<(\d{1,3})>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) (\S+) portlens (\d+) alert - (.*)\Z",
                     re.S)


def check_syslog(message: bytes, alert: dict, pri: int = 20 * 8 + 2) -> None:
    m = RFC5424.match(message.decode("utf-8"))
    assert m, message
    assert int(m[1]) == pri  # local4, High -> critical
    header, ext = formats.parse_cef(m[5])
    assert header[4] == RULE_ID and header[5] == alert["title"]
    assert ext["externalId"] == alert["id"] and ext["dpt"] == alert["DstPortNumber"]


def test_syslog_udp(store, two):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(5)
        port = listener.getsockname()[1]
        report = delivery.deliver(store, [f"syslog=127.0.0.1:{port}"], **FAST)
        # UDP cannot confirm: 'sent', never reported as delivered (issue 13, 6), not resent.
        assert report.ok and len(report.sent) == 2 and not report.delivered
        assert "sent without confirmation 2" in report.summary()
        got = [listener.recvfrom(65535)[0] for _ in range(2)]
    for message, alert in zip(got, two):
        check_syslog(message, alert)
    assert [r[1] for r in rows(store)] == [f"syslog=udp://127.0.0.1:{port}"] * 2


def _read_frames(conn: socket.socket) -> list[bytes]:
    """RFC 6587 octet counting: LEN SP MSG, repeated."""
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    frames = []
    while data:
        length, _, rest = data.partition(b" ")
        frames.append(rest[: int(length)])
        data = rest[int(length):]
    return frames


def test_syslog_tcp_octet_counting(store, two):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(5)
        port = listener.getsockname()[1]
        frames: list[bytes] = []

        def serve():
            for _ in range(2):  # one connection per alert, each closed once read
                conn, _ = listener.accept()
                with conn:
                    conn.settimeout(5)
                    frames.extend(_read_frames(conn))

        t = threading.Thread(target=serve)
        t.start()
        report = delivery.deliver(store, [f"syslog=tcp://127.0.0.1:{port}?facility=local4"], **FAST)
        t.join(5)
    assert report.ok and len(report.delivered) == 2
    assert len(frames) == 2
    for message, alert in zip(frames, two):
        check_syslog(message, alert)


def test_syslog_tcp_refused_is_recorded(store, two):
    report = delivery.deliver(store, [f"syslog=tcp://127.0.0.1:{free_port()}"], **FAST, sleep=lambda s: None)
    assert [o.attempts for o in report.failed] == [4, 0]
    assert rows(store)[0][2] == "failed" and rows(store)[0][4]


# ---- file ----------------------------------------------------------------------------------

def test_file_sink_appends_once(store, two, tmp_path):
    path = tmp_path / "alerts.jsonl"
    path.write_text('{"earlier": true}\n')
    assert delivery.deliver(store, [f"file={path}"], **FAST).ok
    assert delivery.deliver(store, [f"file={path}"], **FAST).already == 2
    lines = path.read_text().splitlines()
    assert json.loads(lines[0]) == {"earlier": True}
    assert [json.loads(line)["id"] for line in lines[1:]] == [a["id"] for a in two]


def test_file_sink_cef_and_missing_directory(store, two, tmp_path):
    path = tmp_path / "alerts.cef"
    assert delivery.deliver(store, [f"file+cef={path}"], **FAST).ok
    assert all(line.startswith("CEF:0|portlens|") for line in path.read_text().splitlines())
    report = delivery.deliver(store, [f"file={tmp_path}/no/such/dir/x.jsonl"], **FAST)
    assert [o.attempts for o in report.failed] == [1, 1]  # permanent: not retried, both tried
    assert "No such file" in report.failed[0].error


def test_several_sinks_are_independent(store, two, tmp_path, receivers):
    r = receivers()
    path = tmp_path / "out.jsonl"
    dead = f"webhook=http://127.0.0.1:{free_port()}/x"
    report = delivery.deliver(store, [f"webhook={r.url}", dead, f"file={path}"], **FAST,
                              sleep=lambda s: None)
    assert len(report.delivered) == 4 and len(report.failed) == 2
    assert len(r.accepted) == 2 and len(path.read_text().splitlines()) == 2
    assert "failed 2" in report.summary() and dead in report.summary()
    states = {(o["sink"], o["state"]) for o in delivery.outbox(store)}
    assert (dead, "failed") in states and (f"file={path}", "delivered") in states
