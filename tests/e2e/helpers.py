"""Shared helpers for the wharf end-to-end tests (imported by conftest.py and the tests)."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import itertools
import os
import re
import shlex
import shutil
import signal
import subprocess
import tarfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").strip().lower() == "true"
READY_RE = re.compile(r"ready on (https?://\S+)")
ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
BUSYBOX = Path("/bin/busybox")

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_ACCEPT = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST])
EMPTY_JSON = b"{}"
EMPTY_JSON_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


# --------------------------------------------------------------------------------------
# skipping / failing on missing dependencies
# --------------------------------------------------------------------------------------
def need(condition: bool, reason: str) -> None:
    """Skip the test when ``condition`` is false -- but fail it when CI=true."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a missing test dependency is a failure)", pytrace=False)
    pytest.skip(reason)


def require_bin(*names: str) -> None:
    for name in names:
        need(
            shutil.which(name) is not None,
            f"client binary {name!r} not installed (run scripts/install-test-deps.sh)",
        )


def require_module(*names: str) -> None:
    for name in names:
        need(
            importlib.util.find_spec(name) is not None,
            f"python module {name!r} not installed (run scripts/install-test-deps.sh)",
        )


# --------------------------------------------------------------------------------------
# running commands
# --------------------------------------------------------------------------------------
def run(cmd, *, timeout: float = 300, check: bool = True, env=None, cwd=None, input=None):
    """Run a command; on failure raise AssertionError carrying its full output."""
    cmd = [str(c) for c in cmd]
    printable = shlex.join(cmd)
    print(f"$ {printable}", flush=True)
    t0 = time.monotonic()
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    dt = time.monotonic() - t0
    if proc.stdout:
        print(proc.stdout.rstrip()[-4000:])
    if proc.stderr:
        print("[stderr]", proc.stderr.rstrip()[-4000:])
    print(f"[exit {proc.returncode} in {dt:.1f}s]", flush=True)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"command failed ({proc.returncode}): {printable}\n"
            f"--- stdout ---\n{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-6000:]}"
        )
    return proc


# --------------------------------------------------------------------------------------
# the server under test
# --------------------------------------------------------------------------------------
def wharf_bin() -> Path:
    env = os.environ.get("WHARF_BIN")
    if env:
        return Path(env)
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO_ROOT / "target")
    if not target.is_absolute():
        target = REPO_ROOT / target
    return target / "release" / "wharf"


class Wharf:
    """One wharf process on a data dir; can be stopped, killed and restarted on it."""

    def __init__(self, data_dir: Path, log_path: Path, extra_args=(), env: dict | None = None):
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path)
        self.extra_args = list(extra_args)
        self.env = dict(env or {})  # on top of os.environ (e.g. S3 credentials of a node)
        self.proc: subprocess.Popen | None = None
        self.url: str | None = None
        self.port: int | None = None
        self.starts = 0
        self._reader: threading.Thread | None = None

    # -- addresses -----------------------------------------------------------------------
    @property
    def host(self) -> str:
        """``127.0.0.1:PORT`` -- for image references (``HOST/repo:tag``)."""
        p = urlparse(self.url)
        return p.netloc

    def v2(self, path: str) -> str:
        return f"{self.url}/v2/{path.lstrip('/')}"

    # -- lifecycle -----------------------------------------------------------------------
    def start(self, port: int = 0, timeout: float = 60) -> "Wharf":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        binary = wharf_bin()
        cmd = [
            str(binary),
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
            "--data-dir",
            str(self.data_dir),
            *self.extra_args,
        ]
        env = dict(os.environ)
        env.setdefault("NO_COLOR", "1")
        env.setdefault("RUST_BACKTRACE", "1")
        # The client tests exercise the registry itself; test_auth.py turns accounts on.
        env.setdefault("WHARF_AUTH", "false")
        env.update(self.env)
        self.starts += 1
        log = open(self.log_path, "a", buffering=1)
        log.write(f"===== start #{self.starts}: {shlex.join(cmd)}\n")
        ready = threading.Event()
        found: list[str] = []

        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )

        def reader(stream, log=log):
            for raw in iter(stream.readline, b""):
                line = ANSI_RE.sub("", raw.decode("utf-8", "replace"))
                log.write(line)
                if not ready.is_set():
                    m = READY_RE.search(line)
                    if m:
                        found.append(m.group(1).rstrip("/.,;"))
                        ready.set()
            stream.close()
            log.write(f"===== stderr closed (start #{self.starts})\n")
            log.close()

        self._reader = threading.Thread(target=reader, args=(proc.stderr,), daemon=True)
        self._reader.start()
        self.proc = proc

        deadline = time.monotonic() + timeout
        while not ready.wait(0.05):
            if proc.poll() is not None:
                time.sleep(0.2)  # let the reader flush
                raise RuntimeError(
                    f"wharf exited with {proc.returncode} before it was ready:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.kill9()
                raise RuntimeError(f"wharf not ready after {timeout}s:\n{self.log_tail()}")
        self.url = found[0]
        self.port = urlparse(self.url).port
        return self

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not stop in time. Returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise RuntimeError(f"wharf did not stop within {timeout}s of SIGTERM")
        finally:
            self._join_reader()
        return rc

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # SIGKILL
            self.proc.wait(10)
        self._join_reader()

    def restart(self, graceful: bool = True, same_port: bool = True) -> "Wharf":
        """Stop (SIGTERM, or SIGKILL when graceful=False) and start again on the same data dir."""
        if graceful:
            self.stop()
        else:
            self.kill9()
        return self.start(port=self.port if same_port and self.port else 0)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _join_reader(self) -> None:
        if self._reader is not None:
            self._reader.join(5)

    def log_tail(self, n: int = 80) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(lines[-n:])


# --------------------------------------------------------------------------------------
# scale-out mode: several wharf nodes on PostgreSQL + S3 behind nginx
# --------------------------------------------------------------------------------------
E2E_BACKEND = os.environ.get("WHARF_E2E_BACKEND", "").strip().lower() or "single"
SCALE = E2E_BACKEND == "scale"
SCALE_ENV = (
    "WHARF_TEST_PG_URL",
    "WHARF_TEST_S3_ENDPOINT",
    "WHARF_TEST_S3_REGION",
    "WHARF_TEST_S3_BUCKET",
    "WHARF_TEST_S3_ACCESS_KEY",
    "WHARF_TEST_S3_SECRET_KEY",
)


def scale_env_missing() -> list[str]:
    return [k for k in SCALE_ENV if not os.environ.get(k)]


def require_scale_backends() -> None:
    """PostgreSQL + S3 (scripts/backends.sh) and nginx, psql: else skip (fail with CI=true)."""
    missing = scale_env_missing()
    need(not missing, f"scale-out backends not configured ({', '.join(missing)} unset): "
                      "run `source scripts/backends.sh start` first")
    require_bin("psql")
    need(nginx_bin() is not None, "nginx not installed (scripts/backends.sh install)")


def nginx_bin() -> str | None:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10, proc: subprocess.Popen | None = None, host: str = "127.0.0.1") -> bool:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@dataclass
class S3Target:
    endpoint: str
    region: str
    bucket: str
    access_key: str
    secret_key: str

    @classmethod
    def from_env(cls) -> "S3Target":
        return cls(
            endpoint=os.environ["WHARF_TEST_S3_ENDPOINT"],
            region=os.environ["WHARF_TEST_S3_REGION"],
            bucket=os.environ["WHARF_TEST_S3_BUCKET"],
            access_key=os.environ["WHARF_TEST_S3_ACCESS_KEY"],
            secret_key=os.environ["WHARF_TEST_S3_SECRET_KEY"],
        )

    def storage_url(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}?endpoint={self.endpoint}&region={self.region}"

    def node_env(self) -> dict:
        return {"WHARF_S3_ACCESS_KEY_ID": self.access_key, "WHARF_S3_SECRET_ACCESS_KEY": self.secret_key}


_db_counter = itertools.count()


class PgDatabase:
    """A fresh database on WHARF_TEST_PG_URL's server (the role needs CREATEDB); drop() removes it."""

    def __init__(self, admin_url: str | None = None):
        self.admin_url = admin_url or os.environ["WHARF_TEST_PG_URL"]
        self.name = f"wharf_e2e_{os.getpid()}_{next(_db_counter)}"
        p = urlparse(self.admin_url)
        self.url = urlunparse(p._replace(path=f"/{self.name}"))
        self.created = False

    def create(self) -> "PgDatabase":
        psql(self.admin_url, f'CREATE DATABASE "{self.name}"')
        self.created = True
        return self

    def drop(self) -> None:
        if not self.created:
            return
        # The nodes are stopped by now. A plain DROP also cancels an autovacuum worker on the
        # database, which WITH (FORCE) may not terminate without superuser rights; FORCE is
        # the fallback for a connection a test left open.
        last = None
        for sql in (f'DROP DATABASE IF EXISTS "{self.name}"', f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)',
                    f'DROP DATABASE IF EXISTS "{self.name}"'):
            try:
                psql(self.admin_url, sql)
                self.created = False
                return
            except Exception as e:  # noqa: BLE001
                last = e
                time.sleep(1)
        raise last


def psql(url: str, sql: str, timeout: float = 60) -> str:
    return run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], timeout=timeout).stdout


NGINX_CONF = """\
{user}worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 4096; }}
http {{
    log_format wharf '$time_iso8601 $remote_addr "$request" $status $body_bytes_sent '
                     'rt=$request_time upstream=$upstream_addr ustatus=$upstream_status';
    access_log {dir}/access.log wharf;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;

    upstream wharf_nodes {{
{servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 0;
        large_client_header_buffers 8 64k;
        client_body_timeout 600s;
        send_timeout 600s;
        keepalive_timeout 300s;
        keepalive_requests 100000;
        location / {{
            proxy_pass http://wharf_nodes;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_max_temp_file_size 0;
            proxy_connect_timeout 5s;
            proxy_send_timeout 600s;
            proxy_read_timeout 600s;
        }}
    }}
}}
"""


class Nginx:
    """nginx on a loopback port, round-robin per request over the given upstream ports.

    max_fails=0: a node is never taken out of the rotation, so requests keep alternating
    strictly; a connection refused by a dead node is passed on to the next one."""

    def __init__(self, base: Path, upstream_ports: list[int]):
        self.dir = Path(base)
        self.upstream_ports = list(upstream_ports)
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None

    def config(self, port: int) -> str:
        servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=0;" for p in self.upstream_ports)
        user = "user root root;\n" if os.geteuid() == 0 else ""
        return NGINX_CONF.format(user=user, dir=self.dir, servers=servers, port=port)

    def start(self) -> "Nginx":
        binary = nginx_bin()
        assert binary, "nginx not installed"
        (self.dir / "tmp").mkdir(parents=True, exist_ok=True)
        for attempt in range(5):
            port = free_port()
            conf = self.dir / "nginx.conf"
            conf.write_text(self.config(port))
            self.proc = subprocess.Popen(
                [binary, "-p", str(self.dir), "-e", str(self.dir / "error.log"), "-c", str(conf), "-g", "daemon off;"],
                stdin=subprocess.DEVNULL,
                stdout=open(self.dir / "nginx.out", "a"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            if wait_port(port, 10, self.proc):
                self.port = port
                return self
            self.stop()  # port taken meanwhile, or a config error: see error.log
        raise RuntimeError(f"nginx did not start:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # fast shutdown
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def log_tail(self, n: int = 40) -> str:
        out = []
        for name in ("error.log", "access.log"):
            try:
                lines = (self.dir / name).read_text(errors="replace").splitlines()
            except FileNotFoundError:
                lines = ["(none)"]
            out.append(f"--- nginx {name} ---\n" + "\n".join(lines[-n:]))
        return "\n".join(out)


class Cluster:
    """Several wharf nodes on one PostgreSQL database and one S3 prefix, behind nginx.

    Offers what the tests use on ``Wharf`` (url, host, port, v2(), start(), stop(), kill9(),
    restart(), alive(), log_tail(), data_dir, log_path, starts); the lifecycle calls act on all
    nodes, nginx stays up. ``nodes`` are the ``Wharf`` objects, for node-specific tests.
    ``direct=True`` (used for TLS): no nginx, url/host/port are those of node 0.
    ``close()`` stops everything and drops the database (the S3 objects stay in the bucket
    until scripts/backends.sh stop removes Garage's data)."""

    def __init__(self, base: Path, extra_args=(), n_nodes: int = 2, direct: bool = False,
                 s3: S3Target | None = None, prefix: str | None = None, db: PgDatabase | None = None,
                 storage_params: str = ""):
        import uuid

        self.base = Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        self.extra_args = list(extra_args)
        self.direct = direct
        self.s3 = s3 or S3Target.from_env()
        self.prefix = prefix or f"e2e-{uuid.uuid4().hex[:12]}"
        self.db = db or PgDatabase()
        self.storage = self.s3.storage_url(self.prefix) + storage_params
        self.nodes: list[Wharf] = []
        for i in range(n_nodes):
            d = self.base / f"node{i}"
            (d / "data").mkdir(parents=True, exist_ok=True)
            args = ["--database", self.db.url, "--storage", self.storage, *self.extra_args]
            self.nodes.append(Wharf(d / "data", d / "wharf.log", args, env=self.s3.node_env()))
        self.nginx: Nginx | None = None
        self.starts = 0

    # -- what the CLI (wharf user add ...) needs to reach this cluster's state ------------
    def cli_env(self) -> dict:
        return {"WHARF_DATABASE": self.db.url, "WHARF_STORAGE": self.storage, **self.s3.node_env()}

    # -- addresses -----------------------------------------------------------------------
    @property
    def url(self) -> str | None:
        if self.direct or self.nginx is None:
            return self.nodes[0].url
        return f"http://127.0.0.1:{self.nginx.port}"

    @property
    def port(self) -> int | None:
        return urlparse(self.url).port if self.url else None

    @property
    def host(self) -> str:
        return urlparse(self.url).netloc

    def v2(self, path: str) -> str:
        return f"{self.url}/v2/{path.lstrip('/')}"

    @property
    def data_dir(self) -> Path:
        return self.nodes[0].data_dir

    @property
    def log_path(self) -> Path:
        return self.base

    # -- lifecycle -----------------------------------------------------------------------
    def start(self, port: int = 0, timeout: float = 60) -> "Cluster":
        """Start every node that is not running (on its previous port), then nginx once."""
        if not self.db.created:
            self.db.create()
        self.starts += 1
        errors: list[str] = []

        def one(w: Wharf) -> None:
            try:
                if not w.alive():
                    w.start(port=w.port or 0, timeout=timeout)
            except Exception as e:  # noqa: BLE001
                errors.append(f"{w.log_path.parent.name}: {e}")

        threads = [threading.Thread(target=one, args=(w,)) for w in self.nodes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise RuntimeError("cluster node(s) did not start:\n" + "\n".join(errors))
        if not self.direct and self.nginx is None:
            self.nginx = Nginx(self.base / "nginx", [w.port for w in self.nodes]).start()
        return self

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM every node; the first non-zero exit code (0 when all exited cleanly)."""
        rcs, errors = [], []
        for w in self.nodes:
            try:
                rcs.append(w.stop(timeout))
            except Exception as e:  # noqa: BLE001
                errors.append(f"{w.log_path.parent.name}: {e}")
        if errors:
            raise RuntimeError("; ".join(errors))
        rcs = [rc for rc in rcs if rc is not None]
        if not rcs:
            return None
        return next((rc for rc in rcs if rc != 0), 0)

    def kill9(self) -> None:
        for w in self.nodes:
            w.kill9()

    def restart(self, graceful: bool = True, same_port: bool = True) -> "Cluster":
        if graceful:
            self.stop()
        else:
            self.kill9()
        return self.start()

    def alive(self) -> bool:
        return all(w.alive() for w in self.nodes)

    def close(self) -> None:
        """Stop nginx and the nodes (SIGKILL if needed), drop the database."""
        for w in self.nodes:
            if w.alive():
                try:
                    w.stop(10)
                except Exception:  # noqa: BLE001
                    w.kill9()
        if self.nginx is not None:
            self.nginx.stop()
        self.db.drop()

    def log_tail(self, n: int = 80) -> str:
        parts = [f"cluster: database {self.db.name}, storage {self.storage}"]
        for i, w in enumerate(self.nodes):
            parts.append(f"===== node {i} ({w.url}) log {w.log_path} =====\n{w.log_tail(n)}")
        if self.nginx is not None:
            parts.append(self.nginx.log_tail(n // 2))
        return "\n".join(parts)


def direct(w) -> Wharf:
    """The first wharf process behind ``w`` (``w`` itself unless it is a Cluster)."""
    return w.nodes[0] if isinstance(w, Cluster) else w


# --------------------------------------------------------------------------------------
# content helpers
# --------------------------------------------------------------------------------------
def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_rootfs_tar(path: Path, hello: str, extra: dict[str, bytes] | None = None) -> Path:
    """A tiny rootfs tarball: static busybox + a few applet links + /etc/hello.txt."""
    need(BUSYBOX.exists(), "/bin/busybox missing (apt busybox-static)")
    files = {"etc/hello.txt": hello.encode()}
    files.update(extra or {})
    mtime = 1_700_000_000
    with tarfile.open(path, "w") as tar:
        for d in ("bin", "etc", "tmp"):
            ti = tarfile.TarInfo(d)
            ti.type = tarfile.DIRTYPE
            ti.mode = 0o1777 if d == "tmp" else 0o755
            ti.mtime = mtime
            tar.addfile(ti)
        data = BUSYBOX.read_bytes()
        ti = tarfile.TarInfo("bin/busybox")
        ti.size, ti.mode, ti.mtime = len(data), 0o755, mtime
        tar.addfile(ti, io.BytesIO(data))
        for applet in ("sh", "cat", "ls", "echo", "uname", "true"):
            ti = tarfile.TarInfo(f"bin/{applet}")
            ti.type, ti.linkname, ti.mode, ti.mtime = tarfile.SYMTYPE, "busybox", 0o777, mtime
            tar.addfile(ti)
        for name, content in files.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(content), 0o644, mtime
            tar.addfile(ti, io.BytesIO(content))
    return path


def make_rootfs_dir(path: Path, hello: str) -> Path:
    """Same content as make_rootfs_tar, as a directory (for umoci insert)."""
    need(BUSYBOX.exists(), "/bin/busybox missing (apt busybox-static)")
    (path / "bin").mkdir(parents=True)
    (path / "etc").mkdir()
    (path / "tmp").mkdir(mode=0o1777)
    shutil.copy2(BUSYBOX, path / "bin" / "busybox")
    for applet in ("sh", "cat", "ls", "echo", "uname", "true"):
        (path / "bin" / applet).symlink_to("busybox")
    (path / "etc" / "hello.txt").write_text(hello)
    return path


def umoci_image(layout: Path, tag: str, rootfs: Path, arch: str = "amd64") -> None:
    """Create/extend an OCI layout with image ``tag`` holding ``rootfs``."""
    require_bin("umoci")
    if not (layout / "index.json").exists():
        run(["umoci", "init", "--layout", layout])
    run(["umoci", "new", "--image", f"{layout}:{tag}"])
    run(["umoci", "insert", "--image", f"{layout}:{tag}", rootfs, "/"])
    run(
        [
            "umoci", "config", "--image", f"{layout}:{tag}",
            "--config.cmd", "/bin/sh", "--architecture", arch, "--os", "linux",
        ]
    )


# --------------------------------------------------------------------------------------
# registry API helpers (plain requests)
# --------------------------------------------------------------------------------------
def get_manifest(w: Wharf, repo: str, ref: str, accept: str = MANIFEST_ACCEPT) -> requests.Response:
    return requests.get(w.v2(f"{repo}/manifests/{ref}"), headers={"Accept": accept}, timeout=30)


def head_manifest(w: Wharf, repo: str, ref: str, accept: str = MANIFEST_ACCEPT) -> requests.Response:
    return requests.head(w.v2(f"{repo}/manifests/{ref}"), headers={"Accept": accept}, timeout=30)


def fetch_manifest(w: Wharf, repo: str, ref: str) -> tuple[bytes, str, str]:
    """GET a manifest, check status/digest headers; return (body, digest, media type)."""
    r = get_manifest(w, repo, ref)
    assert r.status_code == 200, f"GET manifest {repo}:{ref} -> {r.status_code} {r.text[:500]}"
    digest = sha256_digest(r.content)
    hdr = r.headers.get("Docker-Content-Digest")
    assert hdr == digest, f"Docker-Content-Digest {hdr} != sha256 of body {digest}"
    if ref.startswith("sha256:"):
        assert digest == ref
    return r.content, digest, r.headers.get("Content-Type", "").split(";")[0].strip()


def blob_status(w: Wharf, repo: str, digest: str) -> int:
    return requests.head(w.v2(f"{repo}/blobs/{digest}"), timeout=30).status_code


def get_blob_verified(w: Wharf, repo: str, digest: str) -> bytes:
    r = requests.get(w.v2(f"{repo}/blobs/{digest}"), timeout=120)
    assert r.status_code == 200, f"GET blob {repo}@{digest} -> {r.status_code} {r.text[:300]}"
    assert sha256_digest(r.content) == digest, f"blob {digest} content does not match digest"
    return r.content


def put_blob(w: Wharf, repo: str, data: bytes) -> str:
    """Upload a blob with POST + PUT ?digest= (monolithic); return its digest."""
    digest = sha256_digest(data)
    r = requests.post(w.v2(f"{repo}/blobs/uploads/"), timeout=30)
    assert r.status_code == 202, f"POST upload -> {r.status_code} {r.text[:300]}"
    loc = absolute(w, r.headers["Location"])
    sep = "&" if "?" in loc else "?"
    r = requests.put(
        f"{loc}{sep}digest={digest}",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
        timeout=60,
    )
    assert r.status_code == 201, f"PUT upload -> {r.status_code} {r.text[:300]}"
    return digest


def put_manifest(w: Wharf, repo: str, ref: str, body: bytes, media_type: str) -> requests.Response:
    r = requests.put(
        w.v2(f"{repo}/manifests/{ref}"), data=body, headers={"Content-Type": media_type}, timeout=30
    )
    assert r.status_code == 201, f"PUT manifest {repo}:{ref} -> {r.status_code} {r.text[:500]}"
    return r


def absolute(w: Wharf, location: str) -> str:
    """Resolve a Location header against the server (it may be a path or a full URL)."""
    if location.startswith("http://") or location.startswith("https://"):
        return location
    return w.url + location


def rebase(w: Wharf, location: str) -> str:
    """Point an old Location (maybe an absolute URL of a previous port) at the current server."""
    p = urlparse(location)
    path = p.path + (f"?{p.query}" if p.query else "")
    return w.url + path


def push_oci_image(w: Wharf, repo: str, tag: str, rootfs_tar: Path, arch: str = "amd64") -> tuple[str, bytes]:
    """Push a runnable single-layer OCI image with plain requests; return (digest, manifest)."""
    import gzip
    import json

    raw = Path(rootfs_tar).read_bytes()
    layer = gzip.compress(raw, mtime=0)
    config = json.dumps(
        {
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": ["/bin/sh", "-c", "cat /etc/hello.txt"]},
            "rootfs": {"type": "layers", "diff_ids": [sha256_digest(raw)]},
        }
    ).encode()
    layer_d = put_blob(w, repo, layer)
    config_d = put_blob(w, repo, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_d, "size": len(config)},
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_d, "size": len(layer)}
            ],
        }
    ).encode()
    r = put_manifest(w, repo, tag, manifest, OCI_MANIFEST)
    assert r.headers.get("Docker-Content-Digest") == sha256_digest(manifest)
    return sha256_digest(manifest), manifest


def png(width: int, height: int, rgb=(200, 40, 40)) -> bytes:
    """A plain PNG (8-bit RGB), made without image libraries."""
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    row = b"\x00" + bytes(rgb) * width
    raw = row * height
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
