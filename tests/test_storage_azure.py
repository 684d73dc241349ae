"""Logs in Azure Blob storage: `portlens ingest az://...` against Azurite on 127.0.0.1.

NSG and VNet flow logs land as PT1H.json blobs, one per resource and hour; Azure appends to
the hour's blob while the hour lasts, so a blob that changed replaces its earlier version."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from portlens import storage
from portlens.store import Store
from servers import azurite, portlens, put

FIXTURES = Path(__file__).parent / "fixtures" / "azure_nsg"
CONTAINER = "insights-logs-networksecuritygroupflowevent"
RESOURCE = ("resourceId=/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/FABRIKAMRG/"
            "PROVIDERS/MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/FABRIAKMVM1-NSG")


def blob(hour: int) -> str:
    return f"{RESOURCE}/y=2017/m=02/d=16/h={hour:02d}/m=00/macAddress=000D3AF87856/PT1H.json"


def fetches(az, method: str) -> list[str]:
    """Requests for a PT1H.json blob itself (not listings whose prefix names one)."""
    return [r for r in az.requests(method, "/PT1H.json") if "comp=list" not in r]


def records(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def az():
    with azurite() as server:
        fs = server.filesystem()
        fs.create_dir(CONTAINER)
        put(fs, f"{CONTAINER}/{blob(22)}", (FIXTURES / "nsg-v2-blob.json").read_bytes())
        put(fs, f"{CONTAINER}/{blob(23)}", (FIXTURES / "nsg-v1-pretty.json").read_bytes())
        yield server


@pytest.fixture
def az_env(az, monkeypatch):
    for k in ("AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", az.connection_string)
    storage.reset()
    yield {**os.environ}
    storage.reset()


def local_sessions(tmp_path, *fixtures) -> int:
    db = tmp_path / "local.duckdb"
    for f in fixtures:
        with Store(str(db)) as store:
            store.ingest(str(FIXTURES / f))
    with Store(str(db), read_only=True) as store:
        return store.status()["sessions"]


def test_ingest_a_container_then_nothing_then_only_the_new_blob(az, az_env, tmp_path):
    db = tmp_path / "a.duckdb"
    first = portlens("ingest", f"az://{CONTAINER}/", "--db", db, env=az_env)
    assert first.returncode == 0, first.stderr
    assert first.text.count("sessions (azure-nsg)") == 2, first.stdout
    expected = local_sessions(tmp_path, "nsg-v2-blob.json", "nsg-v1-pretty.json")
    with Store(str(db), read_only=True) as store:
        assert store.status()["sessions"] == expected > 0

    gets = len(fetches(az, "GET"))
    heads = len(fetches(az, "HEAD"))
    again = portlens("ingest", f"az://{CONTAINER}/", "--db", db, env=az_env)
    assert again.returncode == 0, again.stderr
    assert again.text.count("already ingested (unchanged); nothing read") == 2, again.stdout
    assert len(fetches(az, "GET")) == gets and len(fetches(az, "HEAD")) == heads

    fs = az.filesystem()
    put(fs, f"{CONTAINER}/{blob(21)}", (FIXTURES / "nsg-v2-blob.json").read_bytes())
    third = portlens("ingest", f"az://{CONTAINER}/", "--db", db, env=az_env)
    assert third.returncode == 0, third.stderr
    assert third.text.count("already ingested") == 2
    assert set(fetches(az, "GET")[gets:]) == {f"/devstoreaccount1/{CONTAINER}/{blob(21)}"}

    # The hour's blob grows (Azure appends a block): the new version replaces the old one.
    doc = records(FIXTURES / "nsg-v2-blob.json")
    grown = {"records": doc["records"] + doc["records"][:1]}
    put(fs, f"{CONTAINER}/{blob(22)}", json.dumps(grown).encode())
    fourth = portlens("ingest", f"az://{CONTAINER}/", "--db", db, env=az_env)
    assert fourth.returncode == 0, fourth.stderr
    assert "replaces the earlier version of this object" in fourth.text
    (tmp_path / "grown.json").write_text(json.dumps(grown))
    with Store(str(tmp_path / "g.duckdb")) as store:
        grown_sessions = store.ingest(str(tmp_path / "grown.json")).sessions
        v2_sessions = store.ingest(str(FIXTURES / "nsg-v2-blob.json")).sessions
    assert grown_sessions > v2_sessions
    with Store(str(db), read_only=True) as store:
        status = store.status()
        paths = sorted(r["path"] for r in store.query("SELECT path FROM files").to_pylist())
    assert paths == sorted(f"az://{CONTAINER}/{blob(h)}" for h in (21, 22, 23))
    # hour 21 and 23 as before, hour 22 counted once, in its grown form
    assert status["sessions"] == expected + grown_sessions


def test_abfs_url_names_the_account(az, az_env):
    url = f"abfs://{CONTAINER}@devstoreaccount1.dfs.core.windows.net/{RESOURCE}/y=2017/m=02/d=16/h=22/"
    [obj] = storage.list_files(url)
    assert obj.url == f"abfs://{CONTAINER}@devstoreaccount1.dfs.core.windows.net/{blob(22)}"
    with storage.open_input(obj.url) as f:
        assert f.read(1) == b"{"


def test_azure_errors_are_one_line(az, az_env, tmp_path, monkeypatch):
    r = portlens("ingest", "az://no-such-container/logs/", "--db", tmp_path / "e.duckdb", env=az_env)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "no such bucket or container" in r.stderr
    wrong_key = az.connection_string.replace("AccountKey=Eby8", "AccountKey=AAAA")
    r = portlens("ingest", f"az://{CONTAINER}/", "--db", tmp_path / "k.duckdb",
                 env={**az_env, "AZURE_STORAGE_CONNECTION_STRING": wrong_key})
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "access denied" in r.stderr
    env = {k: v for k, v in az_env.items() if k != "AZURE_STORAGE_CONNECTION_STRING"}
    r = portlens("ingest", f"az://{CONTAINER}/", "--db", tmp_path / "n.duckdb", env=env)
    assert r.returncode == 2 and "no storage account" in r.stderr
