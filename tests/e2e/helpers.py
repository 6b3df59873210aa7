"""Shared helpers for the wharf end-to-end tests (imported by conftest.py and the tests)."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import re
import shlex
import shutil
import signal
import subprocess
import tarfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

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

    def __init__(self, data_dir: Path, log_path: Path, extra_args=()):
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path)
        self.extra_args = list(extra_args)
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
