"""Alert delivery through a store-backed outbox.

`record` puts alerts in the store's `alerts` table (an id already there is left as it is);
`deliver` sends every recorded alert to every sink unless the `deliveries` table says that
(alert, sink) pair went through already. Failures are recorded and tried again on the next
call, so delivery is at-least-once: a crash between a send and its ledger row re-sends that
one alert (webhooks get an `Idempotency-Key` header with the alert id to drop such repeats).

Sinks, from specs KIND[+FORMAT]=TARGET (FORMAT is one of formats.FORMATS):
    webhook=https://host/path      JSON POST (default format jsonl: the alert as JSON)
    syslog=tls://HOST[:PORT]       RFC 5424 over TLS (RFC 5425, default port 6514), the server's
                                   certificate verified (system CAs, or the `ca` file given)
    syslog=tcp://HOST[:PORT]       RFC 5424 over plain TCP, octet-counting framing (RFC 6587)
    syslog=HOST:PORT               RFC 5424 over UDP (default port 514, default format cef)
    syslog=udp://HOST:PORT         the same
    file=PATH                      one line appended per alert (default format jsonl)
e.g. `webhook+ocsf=https://...`, `file+cef=/var/log/portlens.cef`.

Honest outcomes: an alert counts as 'delivered' only when the sink confirmed it: HTTP 2xx,
the file written and synced, or, for syslog over TCP/TLS (which have no acknowledgement),
one connection per alert that the receiver closes cleanly after reading it (a receiver that
rejects the bytes, e.g. a TLS port spoken to in plain TCP, resets the connection: 'failed',
retried next run). UDP cannot confirm anything: those alerts are 'sent', reported apart from
'delivered', and not sent again.

Retries within one call: connection errors, timeouts, HTTP 5xx and 429 are retried with
exponential backoff (backoff, 2*backoff, ...; a Retry-After header is honoured up to 30 s);
HTTP 4xx other than 429 (and 3xx: redirects are not followed, a POST would turn into a GET)
fail at once. After a sink exhausts its retries on one alert it is not tried again in the
same call: its other pending alerts are recorded as failed without an attempt.

Only the standard library talks to the network (urllib, socket).
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import json
import os
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable

from . import __version__, formats
from .alerts import Alert

_DDL = [
    """CREATE TABLE IF NOT EXISTS alerts (
        id VARCHAR PRIMARY KEY, created TIMESTAMPTZ, as_of TIMESTAMPTZ, body VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS deliveries (
        alert_id VARCHAR, sink VARCHAR, state VARCHAR, attempts INTEGER, last_error VARCHAR,
        delivered_at TIMESTAMPTZ, PRIMARY KEY (alert_id, sink))""",
]

MAX_RETRY_AFTER = 30.0
MAX_UDP = 65507  # largest IPv4 UDP payload; receivers need only take 480-2048 (RFC 5426)
SYSLOG_FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
    "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "security": 13, "console": 14,
    "solaris-cron": 15, **{f"local{i}": 16 + i for i in range(8)},
}
# Sentinel severity -> syslog severity (RFC 5424 table 2)
SYSLOG_SEVERITY = {"high": 2, "medium": 4, "low": 5, "informational": 6}


def _run(con, sql: str, params: list | None = None) -> list:
    """Execute and fetch everything (DuckDB 2 refuses new work while a result is pending)."""
    return con.execute(sql, params or []).fetchall()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def ensure_tables(store) -> None:
    for statement in _DDL:
        _run(store.con, statement)


# ---- outbox ------------------------------------------------------------------------------

def record(store, alerts: Iterable[Alert | dict]) -> list[str]:
    """Write alerts into the outbox; ids already there are not written again (the first body
    stays). Returns the ids that are new, in input order."""
    ensure_tables(store)
    batch: dict[str, dict] = {}
    for alert in map(formats.to_record, alerts):
        if not alert.get("id"):
            raise ValueError("an alert without an id cannot be recorded")
        batch.setdefault(str(alert["id"]), alert)
    if not batch:
        return []
    ids = list(batch)
    placeholders = ", ".join("?" for _ in ids)
    present = {r[0] for r in _run(store.con, f"SELECT id FROM alerts WHERE id IN ({placeholders})", ids)}
    new = [i for i in ids if i not in present]
    created = _now()
    for i in new:
        alert = batch[i]
        end = formats.parse_time((alert.get("window") or {}).get("end"))
        _run(store.con, "INSERT INTO alerts (id, created, as_of, body) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT DO NOTHING", [i, created, end, formats.dumps(alert)])
    return new


def outbox(store) -> list[dict]:
    """Every (alert, sink) delivery row, oldest alert first: for status commands."""
    ensure_tables(store)
    rows = _run(store.con, """
        SELECT d.alert_id, d.sink, d.state, d.attempts, d.last_error, d.delivered_at
        FROM deliveries d LEFT JOIN alerts a ON a.id = d.alert_id
        ORDER BY a.created, d.alert_id, d.sink""")
    keys = ("alert_id", "sink", "state", "attempts", "last_error", "delivered_at")
    return [dict(zip(keys, r)) for r in rows]


# ---- sinks -------------------------------------------------------------------------------

class DeliveryError(Exception):
    """One failed attempt. permanent: trying again soon will not help (HTTP 400, ...)."""

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Sink:
    kind = ""
    default_format = "jsonl"
    formats: tuple[str, ...] = formats.FORMATS

    def __init__(self, fmt: str | None):
        self.format = fmt or self.default_format

    @property
    def key(self) -> str:
        """The sink's name in the deliveries table (no secrets)."""
        kind = self.kind if self.format == self.default_format else f"{self.kind}+{self.format}"
        return f"{kind}={self._target()}"

    def _target(self) -> str:
        raise NotImplementedError

    def payload(self, alert: dict) -> str:
        return formats.render_one(alert, self.format)

    def send(self, alert: dict, timeout: float) -> bool:
        """Send one alert; True when the sink confirmed it, False when it cannot tell (UDP).
        Raises DeliveryError when it failed."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key}>"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # the 3xx then surfaces as an HTTPError


class WebhookSink(Sink):
    kind = "webhook"
    formats = ("jsonl", "ocsf", "sentinel")

    def __init__(self, url: str, fmt: str | None = None, ca: str | None = None):
        super().__init__(fmt)
        self.url = url
        handlers = [_NoRedirect]
        if ca:
            handlers.append(urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=ca)))
        self._opener = urllib.request.build_opener(*handlers)

    def _target(self) -> str:
        """scheme://host[:port]/path; userinfo, query and fragment (where tokens live) are
        replaced by a short hash of the whole URL so two tokens stay two sinks."""
        u = urllib.parse.urlsplit(self.url)
        host = u.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = host + (f":{u.port}" if u.port else "")
        out = f"{u.scheme}://{netloc}{u.path}"
        if u.username or u.password or u.query or u.fragment:
            out += "#" + hashlib.sha256(self.url.encode()).hexdigest()[:12]
        return out

    def send(self, alert: dict, timeout: float) -> bool:
        body = self.payload(alert).encode("utf-8")
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json",
            "User-Agent": f"portlens/{__version__}",
            "Idempotency-Key": str(alert.get("id", "")),
            "X-Portlens-Alert-Id": str(alert.get("id", "")),
        })
        try:
            with self._opener.open(request, timeout=timeout) as response:
                response.read(65536)
            return True
        except urllib.error.HTTPError as e:
            code = e.code
            try:
                detail = e.read(300).decode("utf-8", "replace")
            except Exception:
                detail = ""
            finally:
                e.close()
            message = f"HTTP {code} {e.reason}" + (f": {_one_line(detail, 200)}" if detail.strip() else "")
            if 300 <= code < 400:
                raise DeliveryError(f"{message} (redirect to {e.headers.get('Location')} not followed)",
                                    permanent=True) from None
            if code == 429 or code >= 500:
                raise DeliveryError(message, retry_after=_retry_after(e.headers.get("Retry-After"))) from None
            raise DeliveryError(message, permanent=True) from None
        except urllib.error.URLError as e:
            raise DeliveryError(f"cannot reach {self._target()}: {_reason(e.reason)}",
                                permanent=isinstance(e.reason, ssl.SSLCertVerificationError)) from None
        except (OSError, ValueError, http.client.HTTPException) as e:  # timeouts, resets, bad replies
            raise DeliveryError(f"{self._target()}: {_reason(e)}") from None


def _reason(e) -> str:
    if isinstance(e, socket.timeout) or isinstance(e, TimeoutError):
        return "timed out"
    return _one_line(str(e) or type(e).__name__)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: use our own backoff


class SyslogSink(Sink):
    """RFC 5424 messages: <PRI>1 TIMESTAMP HOSTNAME portlens PROCID alert - MSG. MSG is the
    payload (CEF by default) without a BOM: CEF receivers expect 'CEF:' first. Over TCP and
    TLS each alert has its own connection, closed by us and then by the receiver: syslog has
    no acknowledgement, and that clean close is the only sign that the receiver read it."""
    kind = "syslog"
    default_format = "cef"
    default_ports = {"udp": 514, "tcp": 514, "tls": 6514}

    def __init__(self, host: str, port: int, transport: str = "udp", fmt: str | None = None,
                 facility: int = SYSLOG_FACILITIES["local4"], ca: str | None = None):
        super().__init__(fmt)
        self.host, self.port, self.transport, self.facility = host, port, transport, facility
        self.ca = ca
        self._tls = ssl.create_default_context(cafile=ca) if transport == "tls" else None
        self.hostname = (socket.gethostname() or "-").split()[0][:255] or "-"

    def _target(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}://{host}:{self.port}"

    def message(self, alert: dict) -> bytes:
        severity = SYSLOG_SEVERITY.get(str(alert.get("Severity") or "").lower(), 5)
        stamp = _now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        header = f"<{self.facility * 8 + severity}>1 {stamp} {_printable(self.hostname, 255)} portlens {os.getpid()} alert -"
        payload = self.payload(alert).replace("\r", " ").replace("\n", " ")
        return f"{header} {payload}".encode("utf-8")

    def send(self, alert: dict, timeout: float) -> bool:
        data = self.message(alert)
        if self.transport == "udp":
            if len(data) > MAX_UDP:
                raise DeliveryError(f"{self._target()}: message of {len(data)} bytes is too large "
                                    f"for UDP; use tcp:// or tls://", permanent=True)
            try:
                addr = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0]
                with socket.socket(addr[0], socket.SOCK_DGRAM) as s:
                    s.settimeout(timeout)
                    s.sendto(data, addr[4])
            except OSError as e:
                raise DeliveryError(f"{self._target()}: {_reason(e)}") from None
            return False  # sent; UDP cannot say whether anyone received it
        self._send_stream(str(len(data)).encode() + b" " + data, timeout)
        return True

    def _send_stream(self, frame: bytes, timeout: float) -> None:
        try:
            raw = socket.create_connection((self.host, self.port), timeout=timeout)
        except OSError as e:
            raise DeliveryError(f"{self._target()}: {_reason(e)}") from None
        sock = raw
        try:
            if self._tls is not None:
                sock = self._tls.wrap_socket(raw, server_hostname=self.host)
            sock.settimeout(timeout)
            sock.sendall(frame)
            self._await_close(sock)
        except ssl.SSLCertVerificationError as e:
            raise DeliveryError(f"{self._target()}: certificate not trusted ({e.verify_message}); "
                                f"pass --ca with the CA that signed it", permanent=True) from None
        except (OSError, ssl.SSLError) as e:
            hint = ("; port 6514 is syslog over TLS: use tls://" if self.transport == "tcp" and self.port == 6514
                    and isinstance(e, (ConnectionResetError, BrokenPipeError)) else "")
            raise DeliveryError(f"{self._target()}: {_reason(e)}{hint}") from None
        finally:
            sock.close()

    def _await_close(self, sock) -> None:
        """Half-close and wait for the receiver to close in turn: it has read the message.
        A reset (it dropped unread bytes) or any answer (syslog receivers say nothing: a TLS
        server answering plain bytes does) means the message was not taken."""
        if isinstance(sock, ssl.SSLSocket):
            try:
                sock.unwrap()  # our close_notify; returns once the receiver closes too
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                pass  # closed without its own close_notify: common, and still after reading
            return
        sock.shutdown(socket.SHUT_WR)
        answer = sock.recv(512)
        if answer:
            looks_tls = answer[:1] in (b"\x15", b"\x16")
            raise DeliveryError(f"{self._target()}: the receiver answered instead of closing"
                                + ("; it speaks TLS: use tls://" if looks_tls else ""))


def _printable(text: str, limit: int) -> str:
    out = "".join(c for c in text if 33 <= ord(c) <= 126)[:limit]
    return out or "-"


class FileSink(Sink):
    kind = "file"

    def __init__(self, path: str, fmt: str | None = None):
        super().__init__(fmt)
        self.path = path

    def _target(self) -> str:
        return os.path.abspath(self.path)

    def send(self, alert: dict, timeout: float) -> bool:
        data = (self.payload(alert) + "\n").encode("utf-8")
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as e:
            raise DeliveryError(f"{self.path}: {e.strerror}", permanent=True) from None
        except OSError as e:
            raise DeliveryError(f"{self.path}: {e.strerror or e}") from None
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError as e:
            raise DeliveryError(f"{self.path}: {e.strerror or e}") from None
        finally:
            os.close(fd)
        return True


def parse_sink(spec: str, ca: str | None = None) -> Sink:
    """'webhook=URL', 'syslog=[udp://|tcp://|tls://]HOST[:PORT][?facility=NAME]', 'file=PATH',
    each optionally KIND+FORMAT=...; ValueError (one line) when the spec is not one of them.
    `ca`: a PEM file of the CA(s) to trust for tls:// syslog and https:// webhooks."""
    if ca is not None and not os.path.isfile(ca):
        raise ValueError(f"--ca {ca}: no such file")
    spec = (spec or "").strip()
    kind, sep, target = spec.partition("=")
    if not sep or not target.strip():
        raise ValueError(f"bad sink {spec!r}: expected webhook=URL, syslog=HOST:PORT or file=PATH")
    kind, _, fmt = kind.strip().lower().partition("+")
    target = target.strip()
    classes = {"webhook": WebhookSink, "syslog": SyslogSink, "file": FileSink}
    if kind not in classes:
        raise ValueError(f"bad sink {spec!r}: unknown kind {kind!r} (webhook, syslog or file)")
    if fmt and fmt not in classes[kind].formats:
        raise ValueError(f"bad sink {spec!r}: format {fmt!r} is not one of "
                         f"{', '.join(classes[kind].formats)}")
    fmt = fmt or None
    if kind == "webhook":
        u = urllib.parse.urlsplit(target)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"bad sink {spec!r}: webhook needs an http:// or https:// URL with a host")
        try:
            u.port
        except ValueError:
            raise ValueError(f"bad sink {spec!r}: bad port in URL") from None
        return _with_ca(spec, lambda: WebhookSink(target, fmt, ca))
    if kind == "file":
        return FileSink(target, fmt)
    return _parse_syslog(spec, target, fmt, ca)


def _with_ca(spec: str, make):
    try:
        return make()
    except ssl.SSLError as e:
        raise ValueError(f"bad sink {spec!r}: --ca is not a usable PEM CA file ({e.reason or e})") from None


def _parse_syslog(spec: str, target: str, fmt: str | None, ca: str | None = None) -> SyslogSink:
    transport = "udp"
    if "://" in target:
        transport, _, target = target.partition("://")
        transport = transport.lower()
        if transport not in SyslogSink.default_ports:
            raise ValueError(f"bad sink {spec!r}: syslog transport must be tls://, tcp:// or udp://")
    target, _, query = target.partition("?")
    facility = SYSLOG_FACILITIES["local4"]
    if query:
        params = urllib.parse.parse_qs(query)
        unknown = set(params) - {"facility"}
        if unknown:
            raise ValueError(f"bad sink {spec!r}: unknown syslog option {sorted(unknown)[0]!r}")
        name = params["facility"][-1].lower()
        if name not in SYSLOG_FACILITIES:
            raise ValueError(f"bad sink {spec!r}: unknown syslog facility {name!r}")
        facility = SYSLOG_FACILITIES[name]
    target = target.rstrip("/")
    if target.startswith("["):
        host, _, rest = target[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ("" if not rest else None)
    elif target.count(":") == 1:
        host, _, port_text = target.partition(":")
    else:  # a name, or a bare IPv6 address (then without a port)
        host, port_text = target, ""
        if ":" in host:
            try:
                ipaddress.IPv6Address(host)
            except ValueError:
                raise ValueError(f"bad sink {spec!r}: expected syslog=HOST:PORT "
                                 f"(an IPv6 address with a port is [ADDR]:PORT)") from None
    if not host or port_text is None:
        raise ValueError(f"bad sink {spec!r}: expected syslog=HOST:PORT")
    try:
        port = int(port_text) if port_text else SyslogSink.default_ports[transport]
    except ValueError:
        raise ValueError(f"bad sink {spec!r}: port {port_text!r} is not a number") from None
    if not 0 < port < 65536:
        raise ValueError(f"bad sink {spec!r}: port {port} is out of range")
    return _with_ca(spec, lambda: SyslogSink(host, port, transport, fmt, facility, ca))


# ---- delivery ----------------------------------------------------------------------------

@dataclass
class Outcome:
    alert_id: str
    sink: str
    state: str          # 'delivered' (confirmed), 'sent' (UDP: cannot be confirmed) or 'failed'
    attempts: int       # attempts made in this call (0: not tried, the sink was down)
    error: str | None = None
    permanent: bool = field(default=False, repr=False)


@dataclass
class DeliveryReport:
    outcomes: list[Outcome] = field(default_factory=list)
    already: int = 0    # (alert, sink) pairs delivered by an earlier call

    @property
    def delivered(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.state == "delivered"]

    @property
    def sent(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.state == "sent"]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.state == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        text = f"delivered {len(self.delivered)}, failed {len(self.failed)}, already delivered {self.already}"
        if self.sent:
            text += f", sent without confirmation {len(self.sent)} (UDP cannot confirm delivery)"
        errors: dict[str, str] = {}
        for o in self.failed:
            errors.setdefault(o.sink, o.error or "")
        return "; ".join([text] + [f"{sink}: {error}" for sink, error in errors.items()])


def deliver(store, sinks: Iterable[Sink | str], *, retries: int = 3, backoff: float = 0.5,
            timeout: float = 5.0, ids: Iterable[str] | None = None,
            sleep=time.sleep) -> DeliveryReport:
    """Send every recorded alert (or only `ids`) to every sink that has not had it yet."""
    ensure_tables(store)
    sinks = [parse_sink(s) if isinstance(s, str) else s for s in sinks]
    wanted = None if ids is None else set(ids)
    report = DeliveryReport()
    for sink in sinks:
        try:
            _deliver_to(store, sink, report, wanted, retries, backoff, timeout, sleep)
        finally:
            sink.close()
    return report


def _deliver_to(store, sink: Sink, report: DeliveryReport, wanted, retries, backoff, timeout,
                sleep) -> None:
    con = store.con
    rows = _run(con, """
        SELECT a.id, a.body, d.state IN ('delivered', 'sent') AS done
        FROM alerts a LEFT JOIN deliveries d ON d.alert_id = a.id AND d.sink = ?
        ORDER BY a.created, a.as_of, a.id""", [sink.key])
    down: str | None = None
    for alert_id, body, done in rows:
        if wanted is not None and alert_id not in wanted:
            continue
        if done:
            report.already += 1
            continue
        if down is not None:
            outcome = Outcome(alert_id, sink.key, "failed", 0, f"not tried: {down}")
        else:
            outcome = _attempt(sink, alert_id, json.loads(body), retries, backoff, timeout, sleep)
            if outcome.state == "failed" and not outcome.permanent:
                down = f"sink unreachable earlier in this run ({outcome.error})"
        _save(con, outcome)
        report.outcomes.append(outcome)


def _attempt(sink: Sink, alert_id: str, alert: dict, retries: int, backoff: float,
             timeout: float, sleep) -> Outcome:
    attempts = 0
    while True:
        attempts += 1
        try:
            confirmed = sink.send(alert, timeout)
        except DeliveryError as e:
            if e.permanent or attempts > retries:
                return Outcome(alert_id, sink.key, "failed", attempts, _one_line(str(e)),
                               permanent=e.permanent)
            delay = backoff * (2 ** (attempts - 1))
            if e.retry_after is not None:
                delay = max(delay, min(e.retry_after, MAX_RETRY_AFTER))
            sleep(delay)
            continue
        except Exception as e:  # a payload that cannot be rendered: not the sink's fault
            return Outcome(alert_id, sink.key, "failed", attempts,
                           _one_line(f"{type(e).__name__}: {e}"), permanent=True)
        return Outcome(alert_id, sink.key, "delivered" if confirmed else "sent", attempts)


def _save(con, o: Outcome) -> None:
    delivered_at = _now() if o.state != "failed" else None
    _run(con, """
        INSERT INTO deliveries (alert_id, sink, state, attempts, last_error, delivered_at)
        VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT (alert_id, sink) DO UPDATE SET
            state = excluded.state,
            attempts = deliveries.attempts + excluded.attempts,
            last_error = excluded.last_error,
            delivered_at = excluded.delivered_at""",
         [o.alert_id, o.sink, o.state, o.attempts, o.error, delivered_at])
