"""Issue 13 (6): honest delivery. syslog=tls:// verifies the receiver's certificate (--ca),
tcp:// is plain, udp:// cannot confirm; nothing unconfirmed is reported as delivered."""

from __future__ import annotations

import re
import socket
import ssl
import threading
from pathlib import Path

import pytest

from portlens import delivery

from test_cli import assert_user_error, portlens
from test_delivery import FAST, _read_frames, check_syslog, make_alert, rows, store, two  # noqa: F401

TLS = Path(__file__).parent / "fixtures" / "tls"
CA, OTHER_CA = str(TLS / "ca.pem"), str(TLS / "other-ca.pem")
NO_SLEEP = {**FAST, "sleep": lambda s: None}


class Receiver:
    """A loopback syslog receiver: 'tls' (RFC 5425, the test CA's certificate), 'tcp'
    (RFC 6587 octet counting) or 'drop' (accepts, reads nothing, closes: a reset)."""

    def __init__(self, kind: str):
        self.kind, self.frames, self.errors = kind, [], []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10)
        self.port = self.listener.getsockname()[1]
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(TLS / "server.pem", TLS / "server.key")
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            try:
                conn.settimeout(5)
                if self.kind == "drop":
                    continue
                if self.kind == "tls":
                    conn = self.ctx.wrap_socket(conn, server_side=True)
                self.frames.extend(_read_frames(conn))
            except (OSError, ssl.SSLError) as e:
                self.errors.append(e)
            finally:
                conn.close()

    def close(self):
        self.listener.close()
        self.thread.join(5)


@pytest.fixture
def receiver():
    made = []

    def make(kind):
        made.append(Receiver(kind))
        return made[-1]
    yield make
    for r in made:
        r.close()


def test_plain_tcp_to_a_tls_port_is_not_reported_delivered(store, two, receiver):
    """Before: the README's syslog=tcp://host:6514 spoke plain TCP to a TLS receiver, which
    dropped it, and portlens said 'delivered 2, failed 0' and never retried."""
    tls = receiver("tls")
    report = delivery.deliver(store, [f"syslog=tcp://127.0.0.1:{tls.port}"], **NO_SLEEP)
    assert not report.delivered and len(report.failed) == 2
    assert tls.frames == []
    assert [r[2] for r in rows(store)] == ["failed", "failed"]  # stays in the outbox for the next run


def test_tls_with_the_receivers_ca_is_delivered_and_verified(store, two, receiver):
    tls = receiver("tls")
    sink = delivery.parse_sink(f"syslog=tls://localhost:{tls.port}", ca=CA)
    report = delivery.deliver(store, [sink], **FAST)
    assert report.ok and len(report.delivered) == 2, report.summary()
    assert len(tls.frames) == 2
    for frame, alert in zip(tls.frames, two):
        check_syslog(frame, alert)
    again = delivery.deliver(store, [delivery.parse_sink(f"syslog=tls://localhost:{tls.port}", ca=CA)], **FAST)
    assert again.already == 2 and len(tls.frames) == 2


@pytest.mark.parametrize("ca", [None, OTHER_CA])
def test_tls_with_an_untrusted_certificate_fails(store, two, receiver, ca):
    tls = receiver("tls")
    report = delivery.deliver(store, [delivery.parse_sink(f"syslog=tls://localhost:{tls.port}", ca=ca)], **NO_SLEEP)
    assert not report.delivered and len(report.failed) == 2
    assert "certificate not trusted" in report.failed[0].error and "--ca" in report.failed[0].error
    assert report.failed[0].attempts == 1  # permanent: no retries in this run
    assert tls.frames == []


def test_a_receiver_that_drops_the_message_is_a_failure(store, two, receiver):
    drop = receiver("drop")
    report = delivery.deliver(store, [f"syslog=tcp://127.0.0.1:{drop.port}"], **NO_SLEEP)
    assert not report.delivered and report.failed


def test_udp_is_sent_not_delivered_and_not_resent(store, two):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        first = delivery.deliver(store, [f"syslog=udp://127.0.0.1:{port}"], **FAST)
        second = delivery.deliver(store, [f"syslog=udp://127.0.0.1:{port}"], **FAST)
    assert not first.delivered and len(first.sent) == 2
    assert re.search(r"delivered 0, .*sent without confirmation 2", first.summary())
    assert second.already == 2 and not second.outcomes


def test_default_ports_per_transport():
    assert delivery.parse_sink("syslog=tls://siem").key == "syslog=tls://siem:6514"
    assert delivery.parse_sink("syslog=tcp://siem").key == "syslog=tcp://siem:514"
    assert delivery.parse_sink("syslog=siem").key == "syslog=udp://siem:514"
    with pytest.raises(ValueError, match="tls://, tcp:// or udp://"):
        delivery.parse_sink("syslog=ssl://siem")
    with pytest.raises(ValueError, match="--ca .*no such file"):
        delivery.parse_sink("syslog=tls://siem", ca="/no/such/ca.pem")


def test_cli_deliver_over_tls_with_ca(tmp_path, receiver):
    db = tmp_path / "s.duckdb"
    from portlens.store import Store
    with Store(str(db)) as s:
        delivery.record(s, [make_alert(1)])
    tls = receiver("tls")
    bad = portlens("deliver", "--db", db, "--to", f"syslog=tls://localhost:{tls.port}")
    assert bad.returncode == 1 and "certificate not trusted" in bad.stderr
    r = portlens("deliver", "--db", db, "--to", f"syslog=tls://localhost:{tls.port}", "--ca", CA)
    assert r.returncode == 0, r.stderr
    assert "delivered 1, failed 0" in r.stderr and len(tls.frames) == 1
    assert_user_error(portlens("deliver", "--db", db, "--to", "syslog=tls://h", "--ca", tmp_path / "x.pem"),
                      "--ca", "no such file")


def test_readme_delivery_examples_are_valid_sinks():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    specs = re.findall(r"--(?:deliver|to) ([a-z+]+=\S+)", readme)
    assert any(s.startswith("syslog=tls://") for s in specs)
    for spec in specs:
        sink = delivery.parse_sink(spec)
        if isinstance(sink, delivery.SyslogSink) and sink.port == 6514:
            assert sink.transport == "tls", spec  # 6514 is syslog over TLS (RFC 5425)
