"""Real storage and compute servers on 127.0.0.1 for the tests, started and stopped by them.

Each start is bounded in time and skips the test cleanly when the tool is not installed:
  moto_s3()     moto's S3 server (pip: moto[server]); its request log is kept, so a test can
                count what was fetched
  azurite()     Azurite's Blob service (npm: azurite)
  spark_cluster()  a Spark standalone master and one worker from PySpark's spark-class
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

LOOPBACK = "127.0.0.1"


def put(fs, path: str, data: bytes) -> None:
    """Write an object as is (pyarrow would gzip a '.gz' name again by default)."""
    with fs.open_output_stream(path, compression=None) as out:
        out.write(data)


def portlens(*args, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """The CLI in a child process, with environment `env` (default: this process's); `.text`
    is stdout unwrapped (long URLs wrap at the piped width of 140 columns)."""
    r = subprocess.run([sys.executable, "-m", "portlens", *map(str, args)], capture_output=True,
                       text=True, timeout=timeout, env=env)
    r.text = r.stdout.replace("\n", "")
    return r


def stored_sessions(db: str) -> int:
    """Sessions in the store (waiting up to 30 s for a writer); -1 when it cannot be read yet."""
    from portlens.store import Store
    try:
        with Store(db, read_only=True, wait=30) as store:
            return store.status()["sessions"]
    except Exception:
        return -1


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, seconds: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.skip(f"{what} exited at start: {log.read_text(errors='replace')[-300:]}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((LOOPBACK, port)) == 0:
                return
        time.sleep(0.1)
    _stop(proc)
    pytest.skip(f"{what} did not listen on {LOOPBACK}:{port} within {seconds:.0f}s")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and the children it started, only
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@contextmanager
def _server(argv: list[str], port: int, what: str, env: dict | None = None, seconds: float = 30):
    with tempfile.TemporaryDirectory(prefix="portlens-server-") as tmp:
        log = Path(tmp) / "server.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=tmp,
                                    env={**os.environ, **(env or {})}, start_new_session=True)
        try:
            _wait_port(port, proc, seconds, what, log)
            yield proc, log, Path(tmp)
        finally:
            _stop(proc)


def requests(log: Path, method: str, contains: str) -> list[str]:
    """The 'METHOD /path' of each request in an access log (colour codes removed)."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        line = re.sub(r"\x1b\[[0-9;]*m", "", line)
        m = re.search(r'"([A-Z]+) (\S+)', line)
        if m and m.group(1) == method and contains in m.group(2):
            found.append(m.group(2))
    return found


@dataclass
class S3Server:
    endpoint: str
    log: Path

    def requests(self, method: str, contains: str = "") -> list[str]:
        """Request lines of the server's log, e.g. requests('GET', '/bucket/key')."""
        return requests(self.log, method, contains)

    def filesystem(self):
        from pyarrow import fs
        return fs.S3FileSystem(endpoint_override=self.endpoint.split("://", 1)[1], scheme="http",
                               region="us-east-1", access_key="testing", secret_key="testing",
                               allow_bucket_creation=True)


@contextmanager
def moto_s3(auth: bool = False):
    """auth=True: the server checks credentials as AWS does (none are known: every key is refused)."""
    try:
        import moto.server  # noqa: F401
    except ImportError:
        pytest.skip("moto[server] is not installed")
    port = free_port()
    argv = [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)]
    env = {"INITIAL_NO_AUTH_ACTION_COUNT": "0"} if auth else {}
    with _server(argv, port, "moto S3 server", env) as (_, log, _tmp):
        yield S3Server(f"http://{LOOPBACK}:{port}", log)


AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass
class AzuriteServer:
    port: int
    log: Path

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};"
                f"BlobEndpoint=http://{LOOPBACK}:{self.port}/devstoreaccount1;")

    def filesystem(self):
        from pyarrow import fs
        authority = f"{LOOPBACK}:{self.port}"
        return fs.AzureFileSystem(account_name="devstoreaccount1", account_key=AZURITE_KEY,
                                  blob_storage_authority=authority, dfs_storage_authority=authority,
                                  blob_storage_scheme="http", dfs_storage_scheme="http")

    def requests(self, method: str, contains: str = "") -> list[str]:
        return requests(self.log, method, contains)


@contextmanager
def azurite():
    exe = shutil.which("azurite-blob")
    if exe is None:
        pytest.skip("Azurite is not installed (npm install -g azurite)")
    port = free_port()
    # In memory (nothing on disk); not --silent: its access log (one line per request) is how
    # a test counts fetches.
    argv = [exe, "--blobHost", LOOPBACK, "--blobPort", str(port), "--skipApiVersionCheck",
            "--inMemoryPersistence"]
    with _server(argv, port, "Azurite") as (_, log, _tmp):
        yield AzuriteServer(port, log)


@dataclass
class SparkCluster:
    master: str
    log: Path


@contextmanager
def spark_cluster(cores: int = 2, seconds: float = 120, env: dict | None = None):
    """A standalone master and one worker on 127.0.0.1, from PySpark's own spark-class.
    `env`: more environment for the worker (its executors inherit it, e.g. credentials)."""
    try:
        import pyspark
    except ImportError:
        pytest.skip("pyspark is not installed")
    if shutil.which("java") is None:
        pytest.skip("java is not on PATH")
    home = os.path.dirname(pyspark.__file__)
    spark_class = os.path.join(home, "bin", "spark-class")
    if not os.path.exists(spark_class):
        pytest.skip("this PySpark has no bin/spark-class")
    env = {"SPARK_HOME": home, "SPARK_LOCAL_IP": LOOPBACK, "SPARK_NO_DAEMONIZE": "1",
           "PYSPARK_PYTHON": sys.executable, **(env or {})}
    port = free_port()
    master = f"spark://{LOOPBACK}:{port}"
    with _server([spark_class, "org.apache.spark.deploy.master.Master", "--host", LOOPBACK,
                  "--port", str(port), "--webui-port", str(free_port())],
                 port, "Spark master", env, seconds) as (_, master_log, _tmp):
        worker = [spark_class, "org.apache.spark.deploy.worker.Worker", "--host", LOOPBACK,
                  "--cores", str(cores), "--memory", "2g", "--webui-port", str(free_port()), master]
        worker_port = free_port()
        with _server(worker + ["--port", str(worker_port)], worker_port, "Spark worker", env, seconds) \
                as (_, worker_log, _tmp2):
            deadline = time.monotonic() + seconds
            while "Registering worker" not in master_log.read_text(errors="replace"):
                if time.monotonic() > deadline:
                    pytest.skip("the Spark worker did not register with the master in time")
                time.sleep(0.2)
            yield SparkCluster(master, worker_log)
