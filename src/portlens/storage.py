"""Where logs live: a local path or an object-storage URL, behind one small interface.

    open_input(path)   a seekable binary stream (local file or object, read in growing ranges)
    list_files(path)   the files under a folder, prefix or glob (recursive, hidden parts skipped)
    stat(path)         an `ObjectInfo`: the object's URL, size and version stamp
    identity(path)     the ledger key of an object (None for local files: they go by content)

URLs go through `pyarrow.fs`, configured the way each cloud's own tools are:
  s3:// s3a://     AWS: the SDK's credential chain (environment, profile, instance role);
                   AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL for other endpoints (MinIO, moto),
                   AWS_REGION / AWS_DEFAULT_REGION, else the bucket's region is looked up.
  az://CONTAINER/PATH, abfs[s]://CONTAINER@ACCOUNT.dfs.core.windows.net/PATH
                   Azure Blob / ADLS Gen2: AZURE_STORAGE_CONNECTION_STRING (also Azurite's
                   UseDevelopmentStorage=true), else AZURE_STORAGE_ACCOUNT_NAME with
                   AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN, else the default Azure
                   credential chain (service principal variables, managed identity, CLI).
  gs:// gcs://     Google Cloud Storage: application default credentials; STORAGE_EMULATOR_HOST.
  hdfs://          HDFS through libhdfs (HADOOP_HOME, CLASSPATH as Hadoop needs them).
Any other scheme is handed to fsspec when it is installed (e.g. adlfs, s3fs, gcsfs).

An object's identity is its URL, size and last-modified stamp as the listing reports them:
a second scheduled ingest of the same prefix recognises every object it has seen without
reading a byte, and an object rewritten in place (new stamp or size) is new. Failures are a
`StorageError` with one line: no such bucket, access denied, no credentials, unreachable.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
import threading
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit

from .sources.base import SourceError

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://")


class StorageError(SourceError):
    """An object store cannot be listed or read (one line, for the user)."""


def is_url(path) -> bool:
    """True for `scheme://...` (not `file://`, which is a local path)."""
    m = _SCHEME.match(str(path))
    return bool(m) and m.group(1).lower() != "file"


def canonical(path) -> str:
    """How the ledger names a file: the URL as given, or the absolute local path."""
    return str(path) if is_url(path) else os.path.abspath(local_path(path))


def local_path(path) -> str:
    path = str(path)
    return path[len("file://"):] if path.lower().startswith("file://") else path


@dataclass(frozen=True)
class ObjectInfo:
    url: str
    size: int
    modified: datetime | None  # the store's last-modified stamp (whole seconds, UTC)

    @property
    def identity(self) -> str:
        stamp = self.modified.strftime("%Y-%m-%dT%H:%M:%SZ") if self.modified else "-"
        return f"{self.url} size={self.size} modified={stamp}"


# ---- resolving a URL to a filesystem ----------------------------------------------------------

@dataclass(frozen=True)
class _Place:
    """A URL resolved: the filesystem, the path inside it, and how its paths map back to URLs."""
    fs: object
    path: str
    url_prefix: str   # url = url_prefix + fs_path[len(path_prefix):]
    path_prefix: str
    kind: str

    def url(self, fs_path: str) -> str:
        return self.url_prefix + fs_path[len(self.path_prefix):]


_filesystems: dict[tuple, object] = {}
_lock = threading.Lock()


def _cached(key: tuple, make):
    with _lock:
        if key not in _filesystems:
            _filesystems[key] = make()
        return _filesystems[key]


def _endpoint(value: str) -> tuple[str, str]:
    """'http://host:port' -> ('host:port', 'http'); a bare host:port means https."""
    parts = urlsplit(value if "://" in value else f"https://{value}")
    return parts.netloc, parts.scheme or "https"


def _s3(bucket: str):
    from pyarrow import fs
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    options: dict = {}
    if endpoint:
        options["endpoint_override"], options["scheme"] = _endpoint(endpoint)
        region = region or "us-east-1"
    elif not region:
        try:
            region = fs.resolve_s3_region(bucket)
        except OSError:
            region = "us-east-1"  # the request itself then says what is wrong
    return fs.S3FileSystem(region=region, **options)


def _azure_settings(account: str | None) -> dict:
    """AzureFileSystem arguments from the environment, the way Azure's own tools read it."""
    conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING", "")
    parts = dict(p.split("=", 1) for p in conn.split(";") if "=" in p)
    if parts.get("UseDevelopmentStorage", "").lower() == "true":  # Azurite's well-known account
        parts.setdefault("AccountName", "devstoreaccount1")
        parts.setdefault("AccountKey", "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
                                       "K1SZFPTOtr/KBHBeksoGMGw==")
        parts.setdefault("BlobEndpoint", "http://127.0.0.1:10000/devstoreaccount1")
    name = account or parts.get("AccountName") or os.environ.get("AZURE_STORAGE_ACCOUNT_NAME") \
        or os.environ.get("AZURE_STORAGE_ACCOUNT")
    if not name:
        raise StorageError("Azure: no storage account; set AZURE_STORAGE_CONNECTION_STRING or "
                           "AZURE_STORAGE_ACCOUNT_NAME, or use abfs://CONTAINER@ACCOUNT.dfs.core.windows.net/")
    settings: dict = {"account_name": name}
    same_account = parts.get("AccountName") in (None, name)
    key = (parts.get("AccountKey") if same_account else None) or os.environ.get("AZURE_STORAGE_KEY") \
        or os.environ.get("AZURE_STORAGE_ACCOUNT_KEY")
    sas = (parts.get("SharedAccessSignature") if same_account else None) \
        or os.environ.get("AZURE_STORAGE_SAS_TOKEN")
    if key:
        settings["account_key"] = key
    elif sas:
        settings["sas_token"] = sas.lstrip("?")
    blob = parts.get("BlobEndpoint") if same_account else None
    if blob:
        authority, scheme = _endpoint(blob)
        settings.update(blob_storage_authority=authority, blob_storage_scheme=scheme,
                        dfs_storage_authority=authority, dfs_storage_scheme=scheme)
    elif same_account and parts.get("EndpointSuffix"):
        scheme = parts.get("DefaultEndpointsProtocol", "https")
        settings.update(blob_storage_authority=f"blob.{parts['EndpointSuffix']}", blob_storage_scheme=scheme,
                        dfs_storage_authority=f"dfs.{parts['EndpointSuffix']}", dfs_storage_scheme=scheme)
    return settings


def _azure(account: str | None):
    from pyarrow import fs
    return fs.AzureFileSystem(**_azure_settings(account))


def _gcs():
    from pyarrow import fs
    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    if emulator:
        authority, scheme = _endpoint(emulator)
        return fs.GcsFileSystem(anonymous=True, endpoint_override=authority, scheme=scheme)
    return fs.GcsFileSystem()


def _place(url: str) -> _Place:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    head = f"{parts.scheme}://{parts.netloc}"
    rest = parts.path.lstrip("/")
    if not parts.netloc:
        raise StorageError(f"{url}: no bucket or container in the URL")
    if scheme in ("s3", "s3a", "s3n"):
        fs = _cached(("s3", parts.netloc if not _s3_global() else ""), lambda: _s3(parts.netloc))
        return _Place(fs, f"{parts.netloc}/{rest}".rstrip("/"), head, parts.netloc, "s3")
    if scheme in ("az", "abfs", "abfss", "adl"):
        container, _, host = parts.netloc.partition("@")
        account = host.split(".", 1)[0] if host else None
        fs = _cached(("azure", account), lambda: _azure(account))
        return _Place(fs, f"{container}/{rest}".rstrip("/"), head, container, "azure")
    if scheme in ("gs", "gcs"):
        fs = _cached(("gcs",), _gcs)
        return _Place(fs, f"{parts.netloc}/{rest}".rstrip("/"), head, parts.netloc, "gcs")
    if scheme in ("hdfs", "viewfs"):
        from pyarrow import fs as pafs
        hdfs, _ = _cached(("hdfs", head), lambda: pafs.FileSystem.from_uri(head + "/"))
        return _Place(hdfs, "/" + rest, head, "", "hdfs")
    try:
        import fsspec
        from pyarrow.fs import FSSpecHandler, PyFileSystem
    except ImportError:
        raise StorageError(f"{url}: unsupported URL scheme '{scheme}' (s3, az, abfs, gs and hdfs are "
                           "built in; others need fsspec: pip install 'portlens[cloud]')") from None
    try:
        fs = _cached(("fsspec", scheme), lambda: PyFileSystem(FSSpecHandler(fsspec.filesystem(scheme))))
    except (ImportError, ValueError) as e:
        raise StorageError(f"{url}: unsupported URL scheme '{scheme}' ({e})") from None
    return _Place(fs, f"{parts.netloc}/{rest}".rstrip("/"), head, parts.netloc, scheme)


def _s3_global() -> bool:
    """One S3 filesystem serves every bucket when the region or endpoint is fixed."""
    return bool(os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
                or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))


def reset() -> None:
    """Forget the configured filesystems (after the environment changed, e.g. in tests)."""
    with _lock:
        _filesystems.clear()
        _listed.clear()


# ---- errors -------------------------------------------------------------------------------

def _error(url: str, e: Exception) -> StorageError:
    """One line that says what is wrong, for the errors people actually hit."""
    text = str(e)
    first = text.splitlines()[0] if text else type(e).__name__
    if isinstance(e, StorageError):
        return e
    if isinstance(e, FileNotFoundError):
        return StorageError(f"{url}: no such object")
    if "NO_SUCH_BUCKET" in text or "NoSuchBucket" in text or "ContainerNotFound" in text:
        return StorageError(f"{url}: no such bucket or container")
    if "INVALID_ACCESS_KEY_ID" in text or "SIGNATURE_DOES_NOT_MATCH" in text or "InvalidAccessKeyId" in text:
        return StorageError(f"{url}: credentials rejected (unknown key or wrong secret; {_hint(url)})")
    if "ACCESS_DENIED" in text or "AccessDenied" in text or "AuthorizationFailure" in text \
            or "AuthenticationFailed" in text or "AuthorizationPermissionMismatch" in text \
            or "HTTP status code 403" in text or "403" in first.split(":")[0]:
        return StorageError(f"{url}: access denied (check the credentials and their permissions)")
    if "credential" in text.lower() and ("unable" in text.lower() or "fail" in text.lower()
                                         or "no " in text.lower()):
        return StorageError(f"{url}: no credentials found ({_hint(url)})")
    if "NETWORK_CONNECTION" in text or "Couldn't connect" in text or "Could not resolve" in text \
            or "Connection refused" in text or "Failed to connect" in text:
        return StorageError(f"{url}: cannot reach the storage service ({first[-160:]})")
    return StorageError(f"{url}: {first}")


def _hint(url: str) -> str:
    scheme = urlsplit(url).scheme.lower()
    if scheme.startswith("s3"):
        return "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or an instance role"
    if scheme in ("az", "abfs", "abfss", "adl"):
        return "AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY or an Azure identity"
    return "the service's standard credential settings"


# ---- listing and identity -----------------------------------------------------------------

# What the last listing in this process said of each object: ingesting right after listing
# then costs no extra request per object (a scheduled run over 10,000 unchanged objects is
# one listing, not 10,000 HEADs).
_listed: dict[str, ObjectInfo] = {}


def _info(place: _Place, entry) -> ObjectInfo:
    mtime = entry.mtime
    if mtime is not None:
        mtime = mtime.astimezone(timezone.utc).replace(microsecond=0)
    return ObjectInfo(place.url(entry.path), int(entry.size or 0), mtime)


def stat(path: str) -> ObjectInfo:
    """The object's URL, size and stamp (from this process's last listing when it has one)."""
    if path in _listed:
        return _listed[path]
    place = _place(path)
    try:
        entry = place.fs.get_file_info(place.path)
    except Exception as e:
        raise _error(path, e) from None
    if entry.type.name != "File":
        raise StorageError(f"{path}: " + ("is a folder (prefix), not an object"
                                          if entry.type.name == "Directory" else "no such object"))
    return _info(place, entry)


def identity(path: str) -> str | None:
    """The files ledger's key for `path`: URL, size and stamp for an object; None for a local
    file (local files are recognised by their content hash)."""
    return stat(path).identity if is_url(path) else None


def _glob_regex(pattern: str) -> re.Pattern:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out, i = out + re.escape("["), i + 1
            else:
                out, i = out + "[" + pattern[i + 1:end].replace("\\", "\\\\") + "]", end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def list_files(path: str) -> list[ObjectInfo]:
    """Every object under a URL, sorted: the object itself, everything under a prefix
    (recursively), or what a glob in the key matches (`*`, `?`, `[..]`, `**`). Keys with a
    part starting with '.' are skipped, as hidden files are in local folders."""
    from pyarrow import fs as pafs
    magic = re.search(r"[*?\[]", path)
    if not magic and path in _listed:  # an object this process has just listed
        return [_listed[path]]
    base_url = path[:path.rfind("/", 0, magic.start())] if magic else path.rstrip("/")
    place = _place(base_url)
    try:
        entry = place.fs.get_file_info(place.path)
        if entry.type == pafs.FileType.File and not magic:
            found = [_info(place, entry)]
        elif entry.type == pafs.FileType.NotFound:
            found = []
            _check_container(place, path)
            if not magic:
                raise StorageError(f"{path}: no such object or prefix")
        else:
            entries = place.fs.get_file_info(pafs.FileSelector(place.path, recursive=True))
            found = [_info(place, e) for e in entries if e.type == pafs.FileType.File]
    except Exception as e:
        raise _error(path, e) from None
    prefix = place.url(place.path).rstrip("/") + "/"
    found = [o for o in found if not any(p.startswith(".") for p in o.url[len(prefix):].split("/"))]
    if magic:
        wanted = _glob_regex(path[len(base_url) + 1:])
        found = [o for o in found if wanted.match(o.url[len(prefix):])]
    found.sort(key=lambda o: o.url)
    with _lock:
        _listed.update((o.url, o) for o in found)
    return found


def _check_container(place: _Place, url: str) -> None:
    """A prefix that does not exist: say so plainly when it is the bucket that is missing."""
    from pyarrow import fs as pafs
    root = place.path.split("/", 1)[0]
    if root and place.kind in ("s3", "azure", "gcs") and \
            place.fs.get_file_info(root).type == pafs.FileType.NotFound:
        raise StorageError(f"{url}: no such bucket or container '{root}'")


# ---- reading ------------------------------------------------------------------------------

class _Ranges(io.RawIOBase):
    """An object read ahead in ranges that grow from 64 KiB to 8 MiB: sniffing a head costs
    one small request, reading a whole object a few large ones."""

    def __init__(self, handle, url: str):
        self.handle, self.url = handle, url
        self.size = handle.size()
        self.pos = 0            # the position the reader sees
        self.ahead = b""        # bytes fetched past it
        self.want = 64 << 10

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        target = max(0, base + offset)
        if 0 <= target - self.pos <= len(self.ahead):
            self.ahead = self.ahead[target - self.pos:]
        else:
            self.ahead = b""
        self.pos = target
        return self.pos

    def readinto(self, buffer) -> int:
        n = len(buffer)
        if not self.ahead:
            fetch = min(max(n, self.want), self.size - self.pos)
            if fetch <= 0:
                return 0
            try:
                self.ahead = self.handle.read_at(fetch, self.pos)
            except Exception as e:
                raise _error(self.url, e) from None
            self.want = min(self.want * 2, 8 << 20)
            if not self.ahead:
                return 0
        data, self.ahead = self.ahead[:n], self.ahead[n:]
        buffer[:len(data)] = data
        self.pos += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self.handle.close()
        super().close()


# ledger hook (issue 13): local path -> a file descriptor an ingest holds open. While the store
# ingests a file, every reader of that path (sniffing, measuring, parsing) opens the same file
# through it, even if the file is renamed (rotated) and a new one takes its name meanwhile.
PINNED: ContextVar[dict] = ContextVar("pinned", default={})


@contextmanager
def pinned(path: str):
    """Hold a local file open for the block: `open_input(path)` reads that file, whatever
    happens to its name (Linux: through /proc/self/fd; elsewhere the name is read)."""
    fd = os.open(local_path(path), os.O_RDONLY)
    token = PINNED.set({**PINNED.get(), str(path): fd})
    try:
        yield fd
    finally:
        PINNED.reset(token)
        os.close(fd)


def reading_path(path: str) -> str:
    """The name to open a local path by: the pinned file while `pinned` holds it (Linux:
    /proc/self/fd/N, a new reader of the same file), else the path itself. Readers outside
    Python (DuckDB's) take this name too."""
    fd = PINNED.get().get(str(path))
    if fd is not None and os.path.isdir("/proc/self/fd"):
        return f"/proc/self/fd/{fd}"
    return local_path(path)


def open_input(path: str) -> io.BufferedIOBase:
    """A seekable binary stream for a local path or an object URL (read in growing ranges)."""
    if not is_url(path):
        return open(reading_path(path), "rb")
    place = _place(path)
    try:
        handle = place.fs.open_input_file(place.path)
    except Exception as e:
        raise _error(path, e) from None
    return io.BufferedReader(_Ranges(handle, path), buffer_size=64 << 10)


def arrow_file(path: str):
    """What pyarrow readers (Parquet) take: the local path, or a random-access object file."""
    if not is_url(path):
        return reading_path(path)
    place = _place(path)
    try:
        return place.fs.open_input_file(place.path)
    except Exception as e:
        raise _error(path, e) from None


@contextmanager
def local_copy(path: str):
    """A local file with the object's bytes (for readers that need a path, e.g. DuckDB's
    CSV/JSON readers on small summary exports); removed afterwards."""
    suffix = os.path.splitext(urlsplit(path).path)[1]
    with open_input(path) as src, tempfile.NamedTemporaryFile(suffix=suffix, prefix="portlens-") as tmp:
        shutil.copyfileobj(src, tmp, 8 << 20)
        tmp.flush()
        yield tmp.name
