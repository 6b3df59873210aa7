#!/usr/bin/env python3
"""wharf vs CNCF Distribution benchmark (see bench/README.md).

One command: ``python3 bench/run.py``. It starts both registries on loopback
(fresh data directories), runs every measure against each of them back to back
(interleaved measure by measure), prints a Markdown table and writes JSON to
``bench/results/<timestamp>.json``.

Python 3.11 standard library only. ``wrk`` and ``ab`` are used when installed.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
from dataclasses import dataclass, field

MiB = 1024 * 1024
BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
CLK_TCK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])


class MeasureError(Exception):
    """A correctness failure: the measure reports this instead of a number."""


# --------------------------------------------------------------------------
# small helpers


def sha256_digest(data) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def pct(sorted_vals, p):
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def lat_summary(lat_s):
    v = sorted(lat_s)
    if not v:
        return {}
    return {
        "n": len(v),
        "p50_ms": pct(v, 50) * 1e3,
        "p99_ms": pct(v, 99) * 1e3,
        "min_ms": v[0] * 1e3,
        "max_ms": v[-1] * 1e3,
        "mean_ms": sum(v) / len(v) * 1e3,
    }


def read_proc_stat_cpu():
    with open("/proc/stat") as f:
        parts = f.readline().split()
    vals = [int(x) for x in parts[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice
    total = sum(vals[:8])
    idle = vals[3] + vals[4]
    steal = vals[7] if len(vals) > 7 else 0
    return total, idle, steal, vals[1]


def proc_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    rest = s[s.rindex(")") + 2:].split()
    # rest[0] is field 3 (state); utime is field 14, stime field 15
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def proc_status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def proc_threads(pid):
    return proc_status_kb(pid, "Threads")


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def rustc_running():
    try:
        out = subprocess.run(["pgrep", "-a", "rustc"], capture_output=True, text=True).stdout
    except OSError:
        return []
    return [l for l in out.splitlines() if l.strip()]


def free_port(preferred=None):
    if preferred:
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            pass
        finally:
            s.close()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def split_url(url):
    u = urllib.parse.urlsplit(url)
    return u.hostname, u.port or 80


def location_target(loc):
    """Turn a Location header (absolute or relative) into a request target."""
    if loc is None:
        return None
    u = urllib.parse.urlsplit(loc)
    path = u.path or "/"
    return path + ("?" + u.query if u.query else "")


def with_query(target, key, value):
    sep = "&" if "?" in target else "?"
    return f"{target}{sep}{key}={value}"


def short(b, n=300):
    if b is None:
        return ""
    if isinstance(b, (bytes, bytearray, memoryview)):
        b = bytes(b[:n]).decode("utf-8", "replace")
    return b[:n].replace("\n", " ")


# --------------------------------------------------------------------------
# a minimal synchronous HTTP/1.1 keep-alive client on a raw socket


class Response:
    __slots__ = ("status", "reason", "headers", "body", "nbody", "req")

    def __init__(self, status, reason, headers, body, nbody, req):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.nbody = nbody
        self.req = req

    def h(self, name):
        return self.headers.get(name.lower())

    def describe(self):
        hs = ", ".join(f"{k}: {v}" for k, v in self.headers.items())
        return f"{self.req} -> {self.status} {self.reason} [{hs}] body={short(self.body)!r}"


class Conn:
    def __init__(self, base_url, timeout=300.0):
        self.host, self.port = split_url(base_url)
        self.hostport = f"{self.host}:{self.port}"
        self.timeout = timeout
        self.sock = None
        self.rfile = None

    def _connect(self):
        self.close()
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rfile = self.sock.makefile("rb", buffering=256 * 1024)

    def close(self):
        if self.rfile is not None:
            try:
                self.rfile.close()
            except OSError:
                pass
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.rfile = None

    def request(self, method, target, headers=None, body=None, into=None):
        """Send one request, read the whole response.

        ``body`` may be bytes, bytearray or memoryview (sent with one sendall).
        ``into``: a pre-allocated writable buffer; the response body is read
        into it with readinto (no copy) and ``Response.body`` is None.
        """
        if self.sock is None:
            self._connect()
        hdrs = {"Host": self.hostport, "User-Agent": "wharf-bench/1"}
        if headers:
            hdrs.update(headers)
        blen = 0 if body is None else memoryview(body).nbytes
        if body is not None or method in ("PUT", "POST", "PATCH"):
            hdrs.setdefault("Content-Length", str(blen))
        head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        head = head.encode("latin-1")
        reqdesc = f"{method} {target}" + (f" ({blen} bytes)" if blen else "")
        send_err = None
        try:
            if blen and blen <= 65536:
                self.sock.sendall(head + bytes(body))
            else:
                self.sock.sendall(head)
                if blen:
                    self.sock.sendall(body)
        except (BrokenPipeError, ConnectionResetError) as e:
            # the server may have answered early (e.g. digest already known)
            send_err = e
        try:
            return self._read_response(method, reqdesc, into)
        except (OSError, ValueError, EOFError) as e:
            self.close()
            if send_err is not None:
                raise MeasureError(f"{reqdesc}: send failed ({send_err}) and no response ({e})")
            raise MeasureError(f"{reqdesc}: no/invalid response: {e!r}")

    def _read_response(self, method, reqdesc, into):
        rf = self.rfile
        while True:
            line = rf.readline(65537)
            if not line:
                raise EOFError("connection closed before status line")
            parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/"):
                raise ValueError(f"bad status line {line!r}")
            status = int(parts[1])
            reason = parts[2] if len(parts) > 2 else ""
            headers = {}
            while True:
                hl = rf.readline(65537)
                if not hl:
                    raise EOFError("connection closed in headers")
                if hl in (b"\r\n", b"\n"):
                    break
                k, _, v = hl.decode("latin-1").partition(":")
                k = k.strip().lower()
                v = v.strip()
                headers[k] = headers[k] + ", " + v if k in headers else v
            if 100 <= status < 200:
                continue  # 100 Continue etc.
            break
        body = b""
        nbody = 0
        te = headers.get("transfer-encoding", "").lower()
        if method == "HEAD" or status in (204, 304):
            pass
        elif "chunked" in te:
            chunks = []
            while True:
                szl = rf.readline(65537)
                if not szl:
                    raise EOFError("closed in chunked body")
                sz = int(szl.split(b";")[0].strip(), 16)
                if sz == 0:
                    while rf.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self._read_exact(sz))
                rf.readline(65537)
            body = b"".join(chunks)
            nbody = len(body)
            if into is not None:
                n = min(len(into), nbody)
                into[:n] = body[:n]
                body = None
        elif "content-length" in headers:
            cl = int(headers["content-length"])
            if into is not None and status == 200:
                if cl > len(into):
                    raise MeasureError(f"{reqdesc}: Content-Length {cl} larger than expected {len(into)}")
                mv = memoryview(into)[:cl]
                got = 0
                while got < cl:
                    n = rf.readinto(mv[got:])
                    if not n:
                        raise EOFError(f"closed after {got} of {cl} body bytes")
                    got += n
                body = None
                nbody = cl
            else:
                body = self._read_exact(cl)
                nbody = cl
        else:
            # no framing: read to close
            body = rf.read()
            nbody = len(body)
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Response(status, reason, headers, body, nbody, reqdesc)

    def _read_exact(self, n):
        buf = bytearray(n)
        mv = memoryview(buf)
        got = 0
        while got < n:
            k = self.rfile.readinto(mv[got:])
            if not k:
                raise EOFError(f"closed after {got} of {n} body bytes")
            got += k
        return bytes(buf)


def expect(resp, status, what):
    if resp.status != status:
        raise MeasureError(f"{what}: expected {status}, got: {resp.describe()}")


def check_digest_header(resp, digest, what):
    got = resp.h("Docker-Content-Digest")
    if got != digest:
        raise MeasureError(f"{what}: Docker-Content-Digest {got!r} != {digest}: {resp.describe()}")


def start_upload(conn, repo, what="POST upload"):
    r = conn.request("POST", f"/v2/{repo}/blobs/uploads/")
    expect(r, 202, what)
    loc = location_target(r.h("Location"))
    if not loc:
        raise MeasureError(f"{what}: 202 without Location: {r.describe()}")
    return loc


def push_blob(conn, repo, data, digest=None):
    """POST + PUT ?digest= (monolithic). Returns the digest."""
    digest = digest or sha256_digest(data)
    loc = start_upload(conn, repo)
    r = conn.request("PUT", with_query(loc, "digest", digest), {"Content-Type": "application/octet-stream"}, data)
    expect(r, 201, "PUT blob")
    check_digest_header(r, digest, "PUT blob")
    return digest


# --------------------------------------------------------------------------
# a minimal asyncio HTTP/1.1 client (streams), for concurrent small requests


class AConn:
    def __init__(self, host, port):
        self.host, self.port = host, port
        self.hostport = f"{host}:{port}"
        self.r = self.w = None

    async def open(self):
        self.r, self.w = await asyncio.open_connection(self.host, self.port)
        sock = self.w.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def close(self):
        if self.w is not None:
            self.w.close()
            try:
                await self.w.wait_closed()
            except OSError:
                pass
            self.w = None

    async def request(self, method, target, headers=None, body=b""):
        if self.w is None:
            await self.open()
        h = f"{method} {target} HTTP/1.1\r\nHost: {self.hostport}\r\n"
        if headers:
            h += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        if body or method in ("PUT", "POST", "PATCH"):
            h += f"Content-Length: {len(body)}\r\n"
        self.w.write(h.encode("latin-1") + b"\r\n" + body)
        reqdesc = f"{method} {target}" + (f" ({len(body)} bytes)" if body else "")
        try:
            raw = await self.r.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as e:
            self.w = None
            raise MeasureError(f"{reqdesc}: no response: {e!r}")
        lines = raw.decode("latin-1").split("\r\n")
        st = lines[0].split(" ", 2)
        status = int(st[1])
        headers = {}
        for l in lines[1:]:
            if l:
                k, _, v = l.partition(":")
                headers[k.strip().lower()] = v.strip()
        rbody = b""
        if method != "HEAD" and status not in (204, 304):
            if "content-length" in headers:
                rbody = await self.r.readexactly(int(headers["content-length"]))
            elif "chunked" in headers.get("transfer-encoding", "").lower():
                parts = []
                while True:
                    szl = await self.r.readline()
                    sz = int(szl.split(b";")[0].strip(), 16)
                    if sz == 0:
                        while (await self.r.readline()) not in (b"\r\n", b""):
                            pass
                        break
                    parts.append(await self.r.readexactly(sz))
                    await self.r.readline()
                rbody = b"".join(parts)
            else:
                rbody = await self.r.read()
                self.w = None
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return Response(status, st[2] if len(st) > 2 else "", headers, rbody, len(rbody), reqdesc)


# --------------------------------------------------------------------------
# closed-loop load generator (asyncio Protocol, raw HTTP/1.1 keep-alive)


class _LoadRun:
    def __init__(self, req, is_head, body, duration):
        self.req = req
        self.is_head = is_head
        self.body = body  # every GET body is compared byte for byte with the manifest that was PUT
        self.digest_str = sha256_digest(body).encode()
        self.body_len = len(body)
        self.duration = duration
        self.deadline = 0.0
        self.lat = []
        self.ok = 0
        self.bad = 0
        self.bad_examples = []
        self.open = 0
        self.done = None
        self.t_end = 0.0

    def fail(self, msg):
        self.bad += 1
        if len(self.bad_examples) < 3:
            self.bad_examples.append(msg)

    def finished(self):
        self.open -= 1
        if self.open == 0:
            self.t_end = time.perf_counter()
            if not self.done.done():
                self.done.set_result(None)


class _LoadConn(asyncio.Protocol):
    """One keep-alive connection of the closed loop. Kept lean: this runs once per response."""

    def __init__(self, run):
        self.run = run
        self.buf = b""
        self.t0 = 0.0
        self.tr = None
        self.closed = False
        r = run
        self.dig_hdrs = (b"Docker-Content-Digest: " + r.digest_str, b"docker-content-digest: " + r.digest_str)

    def connection_made(self, tr):
        self.tr = tr
        sock = tr.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def fire(self):
        self.t0 = time.perf_counter()
        self.tr.write(self.run.req)

    def _finish(self):
        if not self.closed:
            self.closed = True
            self.tr.close()
            self.run.finished()

    def data_received(self, data):
        buf = self.buf + data if self.buf else data
        run = self.run
        pos = 0
        n = len(buf)
        while True:
            i = buf.find(b"\r\n\r\n", pos)
            if i < 0:
                break
            # "ontent-length:" matches both Go's and hyper's header-name case
            j = buf.find(b"ontent-Length:", pos, i)
            if j < 0:
                j = buf.find(b"ontent-length:", pos, i)
                if j < 0:
                    j = buf.find(b"ONTENT-LENGTH:", pos, i)
            if j < 0:
                run.fail(f"no Content-Length: {bytes(buf[pos:i])[:300]!r}")
                self._finish()
                return
            e = buf.find(b"\r", j, i + 2)
            cl = int(buf[j + 14:e])
            need = i + 4 + (0 if run.is_head else cl)
            if n < need:
                break
            now = time.perf_counter()
            run.lat.append(now - self.t0)
            if not buf.startswith(b"HTTP/1.1 200", pos):
                run.fail(f"status: {bytes(buf[pos:i])[:300]!r}")
            elif cl != run.body_len:
                run.fail(f"Content-Length {cl} != {run.body_len}")
            elif buf.find(self.dig_hdrs[0], pos, i) < 0 and buf.find(self.dig_hdrs[1], pos, i) < 0:
                run.fail(f"Docker-Content-Digest missing or wrong: {bytes(buf[pos:i])[:400]!r}")
            elif not run.is_head and buf[i + 4:need] != run.body:
                run.fail("body differs from the manifest that was PUT")
            else:
                run.ok += 1
            closing = buf.find(b"onnection: close", pos, i) >= 0
            pos = need
            if now < run.deadline and not closing:
                self.t0 = now
                self.tr.write(run.req)
            else:
                self._finish()
                return
        self.buf = buf[pos:] if pos < n else b""

    def connection_lost(self, exc):
        if not self.closed:
            self.closed = True
            self.run.fail(f"connection lost: {exc!r}")
            self.run.finished()


async def _load_async(host, port, target, is_head, body, conns, duration):
    loop = asyncio.get_running_loop()
    req = (f"{'HEAD' if is_head else 'GET'} {target} HTTP/1.1\r\nHost: {host}:{port}\r\n"
           f"User-Agent: wharf-bench/1\r\nAccept: {ACCEPT}\r\n\r\n").encode()
    run = _LoadRun(req, is_head, bytes(body), duration)
    run.done = loop.create_future()
    protos = []
    for _ in range(conns):
        _, p = await loop.create_connection(lambda: _LoadConn(run), host, port)
        protos.append(p)
    run.open = len(protos)
    t0 = time.perf_counter()
    run.deadline = t0 + duration
    for p in protos:
        p.fire()
    try:
        await asyncio.wait_for(run.done, duration + 60)
    except asyncio.TimeoutError:
        run.fail("load run did not finish within duration + 60 s")
        for p in protos:
            p._finish()
    elapsed = (run.t_end or time.perf_counter()) - t0
    return run, elapsed


def load_test(base, target, is_head, body, conns, duration):
    host, port = split_url(base)
    run, elapsed = asyncio.run(_load_async(host, port, target, is_head, body, conns, duration))
    if run.bad:
        raise MeasureError(f"{'HEAD' if is_head else 'GET'} {target}: {run.bad} bad responses "
                           f"of {run.bad + run.ok}; e.g. {run.bad_examples}")
    if run.ok == 0:
        raise MeasureError(f"{target}: no successful responses")
    res = {"requests": run.ok, "seconds": elapsed, "req_per_s": run.ok / elapsed, "connections": conns}
    res.update(lat_summary(run.lat))
    return res


# --------------------------------------------------------------------------
# servers


@dataclass
class Server:
    name: str
    url: str = ""
    pids: list = field(default_factory=list)
    proc: subprocess.Popen | None = None
    tmpdir: str | None = None
    logpath: str | None = None
    version: str = ""
    start_rss_kb: int | None = None
    state: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)
    _log_thread: threading.Thread | None = None

    def cpu(self):
        t = 0.0
        for p in self.pids:
            try:
                t += proc_cpu_seconds(p)
            except OSError:
                return None
        return t if self.pids else None

    def hwm_kb(self):
        if not self.pids:
            return None
        vals = [proc_status_kb(p, "VmHWM") for p in self.pids]
        return None if None in vals else sum(vals)

    def rss_kb(self):
        if not self.pids:
            return None
        vals = [proc_status_kb(p, "VmRSS") for p in self.pids]
        return None if None in vals else sum(vals)

    def alive(self):
        if self.proc is not None:
            return self.proc.poll() is None
        return all(os.path.exists(f"/proc/{p}") for p in self.pids)

    def stop(self, keep):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log_thread is not None:
            self._log_thread.join(2)
        if self.tmpdir and not keep:
            shutil.rmtree(os.path.join(self.tmpdir, "data"), ignore_errors=True)


def wait_v2(url, timeout, proc=None):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            c = Conn(url, timeout=2)
            r = c.request("GET", "/v2/")
            c.close()
            if r.status == 200:
                return
            last = r.describe()
        except (OSError, MeasureError) as e:
            last = repr(e)
        time.sleep(0.1)
    raise RuntimeError(f"GET {url}/v2/ did not return 200 within {timeout}s (last: {last})")


def start_distribution(args):
    binary = os.environ.get("DISTRIBUTION_BIN") or shutil.which("docker-registry")
    if not binary:
        raise RuntimeError("docker-registry not found (apt-get install docker-registry, or set DISTRIBUTION_BIN)")
    tmp = tempfile.mkdtemp(prefix="bench-distribution-")
    data = os.path.join(tmp, "data")
    os.makedirs(data)
    port = free_port(5100)
    cfg = os.path.join(tmp, "config.yml")
    with open(cfg, "w") as f:
        f.write(
            "version: 0.1\n"
            "log: {level: warn, accesslog: {disabled: true}}\n"
            "storage:\n"
            f"  filesystem: {{rootdirectory: {data}}}\n"
            "  delete: {enabled: true}\n"
            "  cache: {blobdescriptor: inmemory}\n"
            f"http: {{addr: 127.0.0.1:{port}}}\n")
    s = Server("distribution", tmpdir=tmp, logpath=os.path.join(tmp, "registry.log"))
    try:
        s.version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        s.version = "?"
    logf = open(s.logpath, "wb")
    s.proc = subprocess.Popen([binary, "serve", cfg], stdout=logf, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, start_new_session=True)
    logf.close()
    s.pids = [s.proc.pid]
    s.url = f"http://127.0.0.1:{port}"
    try:
        wait_v2(s.url, 30, s.proc)
    except Exception:
        s.stop(keep=True)
        raise RuntimeError(f"Distribution did not start; log {s.logpath}:\n{open(s.logpath).read()[-2000:]}")
    return s


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def start_wharf(args, name="wharf", extra_args=(), extra_env=None):
    binary = os.environ.get("WHARF_BIN") or os.path.join(
        os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO_ROOT, "target"), "release", "wharf")
    if not os.path.exists(binary):
        raise RuntimeError(f"wharf binary not found at {binary} (build with `cargo build --release`, "
                           "or set WHARF_BIN; use --only distribution to skip wharf)")
    tmp = tempfile.mkdtemp(prefix="bench-wharf-")
    data = os.path.join(tmp, "data")
    os.makedirs(data)
    s = Server(name, tmpdir=tmp, logpath=os.path.join(tmp, "wharf.log"))
    try:
        s.version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        s.version = "?"
    env = dict(os.environ)
    # the ready line is logged at INFO by target `wharf`: keep it, silence everything else
    env.setdefault("RUST_LOG", "warn,wharf=info")
    # Side by side with a Distribution that has no authentication configured.
    env.setdefault("WHARF_AUTH", "false")
    env.update(extra_env or {})
    cmd = [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", data] + list(args.wharf_arg or []) + list(extra_args)
    # cwd = the temp dir, so that no ./wharf.toml of the caller is picked up
    s.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                              env=env, cwd=tmp, start_new_session=True)
    s.pids = [s.proc.pid]
    found = {}
    ready = threading.Event()
    logf = open(s.logpath, "wb")

    def pump():
        for line in s.proc.stderr:
            logf.write(line)
            logf.flush()
            if not ready.is_set():
                m = re.search(r"wharf ready on (http://[0-9.:\[\]a-zA-Z]+)", ANSI.sub("", line.decode("utf-8", "replace")))
                if m:
                    found["url"] = m.group(1).rstrip("/")
                    ready.set()
        logf.close()
        ready.set()

    s._log_thread = threading.Thread(target=pump, daemon=True)
    s._log_thread.start()
    ready.wait(30)
    if "url" not in found:
        s.stop(keep=True)
        raise RuntimeError(f"wharf did not print 'wharf ready on http://…' within 30 s (RUST_LOG={env['RUST_LOG']} {' '.join(cmd)}); "
                           f"log {s.logpath}:\n{open(s.logpath, errors='replace').read()[-2000:]}")
    s.url = found["url"]
    try:
        wait_v2(s.url, 30, s.proc)
    except Exception as e:
        s.stop(keep=True)
        raise RuntimeError(f"wharf printed ready but {e}")
    return s


def start_wharf_scale(args):
    """wharf on PostgreSQL + S3 (the scale-out backends), from the WHARF_TEST_* variables
    that `source scripts/backends.sh start` exports: a fresh database and bucket prefix."""
    need = ["WHARF_TEST_PG_URL", "WHARF_TEST_S3_ENDPOINT", "WHARF_TEST_S3_BUCKET",
            "WHARF_TEST_S3_ACCESS_KEY", "WHARF_TEST_S3_SECRET_KEY"]
    missing = [k for k in need if not os.environ.get(k)]
    if missing:
        raise RuntimeError(f"--scale needs {', '.join(missing)} (run `source scripts/backends.sh start` first)")
    base = os.environ["WHARF_TEST_PG_URL"]
    dbname = f"wharf_bench_{int(time.time())}_{os.getpid()}"
    server, _, _ = base.rpartition("/")
    # psql wants postgresql:// or postgres:// URLs; both work.
    subprocess.run(["psql", base, "-qc", f"CREATE DATABASE {dbname}"], check=True, timeout=60)
    storage = (f"s3://{os.environ['WHARF_TEST_S3_BUCKET']}/{dbname}?endpoint={os.environ['WHARF_TEST_S3_ENDPOINT']}"
               f"&region={os.environ.get('WHARF_TEST_S3_REGION', 'garage')}")
    s = start_wharf(args, name="wharf-scale",
                    extra_args=["--database", f"{server}/{dbname}", "--storage", storage],
                    extra_env={"WHARF_S3_ACCESS_KEY_ID": os.environ["WHARF_TEST_S3_ACCESS_KEY"],
                               "WHARF_S3_SECRET_ACCESS_KEY": os.environ["WHARF_TEST_S3_SECRET_KEY"]})
    s.version += " (PostgreSQL + S3)"
    return s


def attach_target(args):
    s = Server(args.target_name, url=args.target.rstrip("/"))
    if args.target_pid:
        s.pids = [int(p) for p in args.target_pid.split(",") if p.strip()]
    wait_v2(s.url, 10)
    s.version = "external"
    return s


# --------------------------------------------------------------------------
# measurement bookkeeping


class Meter:
    """Server CPU, client CPU and host CPU over the timed region.

    start()/stop() may be called several times: the segments are added up.
    """

    def __init__(self, server):
        self.server = server
        self.a = None      # snapshot at the last start()
        self.b = None      # set once stop() has been called at least once
        self.acc = None

    @staticmethod
    def _client_cpu():
        s = resource.getrusage(resource.RUSAGE_SELF)
        c = resource.getrusage(resource.RUSAGE_CHILDREN)
        return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime

    def _snap(self):
        srv = self.server.cpu()
        h = read_proc_stat_cpu()
        return {"t": time.perf_counter(), "srv": srv, "cli": self._client_cpu(),
                "host_total": h[0], "host_idle": h[1], "host_steal": h[2], "host_nice": h[3]}

    def start(self):
        self.a = self._snap()

    def stop(self):
        if self.a is None:
            return
        b = self._snap()
        d = {}
        for k, v in b.items():
            if v is None or self.a[k] is None:
                d[k] = None
            else:
                d[k] = v - self.a[k]
        if self.acc is None:
            self.acc = d
        else:
            for k, v in d.items():
                self.acc[k] = None if v is None or self.acc[k] is None else self.acc[k] + v
        self.a = None
        self.b = b

    def running(self):
        return self.a is not None

    def summary(self):
        d = self.acc
        if not d:
            return {}
        dt = d["t"]
        out = {"wall_s": dt, "client_cpu_s": d["cli"]}
        if d["srv"] is not None:
            out["server_cpu_s"] = d["srv"]
            out["server_cores"] = d["srv"] / dt if dt > 0 else None
        tot = d["host_total"]
        if tot > 0:
            out["host_busy_cores"] = (tot - d["host_idle"]) / tot * NCPU
            out["host_steal_cores"] = d["host_steal"] / tot * NCPU
            # niced work (other tenants' low-priority jobs) yields to the bench, so it is shown apart
            out["host_nice_cores"] = d["host_nice"] / tot * NCPU
        out["loadavg_1m"] = loadavg()[0]
        return out


# --------------------------------------------------------------------------
# the measures. Each takes (server, cfg, meter) and returns a dict of numbers;
# it raises MeasureError on any correctness problem.


class Cfg:
    def __init__(self, args):
        q = args.quick
        self.quick = q
        self.blob = (32 if q else 512) * MiB
        self.chunks = 32
        self.manifests = 50 if q else 200
        self.load_s = 3 if q else 10
        self.conns = 32
        self.tags = 100 if q else 1000
        self.tag_lists = 20 if q else 50
        self.small = 200 if q else 2000
        self.small_conc = 16
        self.downloads = 3
        self.same_clients = 8
        self.same_size = (32 if q else 64) * MiB
        self.run_id = os.urandom(4).hex()
        self.repo = f"bench/r{self.run_id}"
        self.base = None  # random buffer shared by the large-blob measures

    def fresh_blob(self, size):
        """A new random blob of ``size`` bytes (a view of one shared buffer with a fresh prefix)."""
        if self.base is None or len(self.base) < max(self.blob, self.same_size):
            self.base = bytearray(os.urandom(max(self.blob, self.same_size)))
        self.base[:32] = os.urandom(32)
        mv = memoryview(self.base)[:size]
        return mv, sha256_digest(mv)


def m_upload_mono(s, cfg, meter):
    repo = f"{cfg.repo}/blob"
    data, digest = cfg.fresh_blob(cfg.blob)
    c = Conn(s.url)
    meter.start()
    t0 = time.perf_counter()
    loc = start_upload(c, repo)
    r = c.request("PUT", with_query(loc, "digest", digest), {"Content-Type": "application/octet-stream"}, data)
    t1 = time.perf_counter()
    meter.stop()
    expect(r, 201, "monolithic PUT")
    check_digest_header(r, digest, "monolithic PUT")
    if not r.h("Location"):
        raise MeasureError(f"monolithic PUT: 201 without Location: {r.describe()}")
    c.close()
    s.state["blob"] = (repo, digest, cfg.blob)
    dt = t1 - t0
    return {"bytes": cfg.blob, "seconds": dt, "MB_per_s": cfg.blob / dt / 1e6}


def m_upload_chunked(s, cfg, meter):
    repo = f"{cfg.repo}/blob"
    data, digest = cfg.fresh_blob(cfg.blob)
    csize = cfg.blob // cfg.chunks
    c = Conn(s.url)
    meter.start()
    t0 = time.perf_counter()
    loc = start_upload(c, repo)
    ranges = []
    for i in range(cfg.chunks):
        start = i * csize
        end = cfg.blob if i == cfg.chunks - 1 else start + csize
        r = c.request("PATCH", loc, {"Content-Type": "application/octet-stream",
                                     "Content-Range": f"{start}-{end - 1}"}, data[start:end])
        ranges.append((r.status, r.h("Range"), end - 1, r))
        if r.status != 202:
            break
        loc = location_target(r.h("Location")) or loc
    else:
        r = c.request("PUT", with_query(loc, "digest", digest))
    t1 = time.perf_counter()
    meter.stop()
    for i, (st, rng, last, rr) in enumerate(ranges):
        expect(rr, 202, f"PATCH chunk {i}")
        if rng != f"0-{last}":
            raise MeasureError(f"PATCH chunk {i}: Range {rng!r}, expected '0-{last}': {rr.describe()}")
        if not rr.h("Location"):
            raise MeasureError(f"PATCH chunk {i}: no Location: {rr.describe()}")
    expect(r, 201, "final PUT of chunked upload")
    check_digest_header(r, digest, "final PUT of chunked upload")
    c.close()
    s.state["blob"] = (repo, digest, cfg.blob)
    dt = t1 - t0
    return {"bytes": cfg.blob, "chunks": cfg.chunks, "chunk_bytes": csize, "seconds": dt,
            "MB_per_s": cfg.blob / dt / 1e6}


def m_download(s, cfg, meter):
    if "blob" not in s.state:
        repo = f"{cfg.repo}/blob"
        data, digest = cfg.fresh_blob(cfg.blob)
        c = Conn(s.url)
        push_blob(c, repo, data, digest)
        c.close()
        s.state["blob"] = (repo, digest, cfg.blob)
    repo, digest, size = s.state["blob"]
    buf = bytearray(size)
    for i in range(0, size, 4096):  # touch every page before the clock
        buf[i] = 1
    c = Conn(s.url)
    r0 = c.request("HEAD", f"/v2/{repo}/blobs/{digest}")
    expect(r0, 200, "HEAD blob")
    if r0.h("Content-Length") != str(size):
        raise MeasureError(f"HEAD blob: Content-Length {r0.h('Content-Length')!r} != {size}: {r0.describe()}")
    # three GETs (the median is reported: a single 0.3 s transfer is noisy on a shared box);
    # the meter covers all three, so CPU per byte stays per byte
    times = []
    meter.start()
    for _ in range(cfg.downloads):
        t0 = time.perf_counter()
        r = c.request("GET", f"/v2/{repo}/blobs/{digest}", into=buf)
        times.append(time.perf_counter() - t0)
        meter.stop()  # verification is outside the clock and the meter
        expect(r, 200, "GET blob")
        if r.nbody != size:
            raise MeasureError(f"GET blob: got {r.nbody} bytes, expected {size}: {r.describe()}")
        got = sha256_digest(buf)
        if got != digest:
            raise MeasureError(f"GET /v2/{repo}/blobs/{digest}: body digest {got}")
        dh = r.h("Docker-Content-Digest")
        if dh is not None and dh != digest:
            raise MeasureError(f"GET blob: Docker-Content-Digest {dh!r} != {digest}")
        buf[0] ^= 0xFF  # so that the next GET must overwrite it
        meter.start()
    meter.stop()
    c.close()
    dt = sorted(times)[len(times) // 2]
    return {"bytes": size * len(times), "gets": len(times), "blob_bytes": size, "seconds": dt,
            "seconds_each": times, "MB_per_s": size / dt / 1e6,
            "MB_per_s_each": [size / t / 1e6 for t in times]}


def ensure_image_blobs(s, cfg, repo):
    """Upload a config blob and a 4 KiB layer to ``repo`` (once); return their descriptors."""
    key = ("imgblobs", repo)
    if key in s.state:
        return s.state[key]
    layer = os.urandom(4096)
    ldig = sha256_digest(layer)
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [ldig]},
                         "config": {}, "history": [{"created_by": "wharf bench"}]},
                        separators=(",", ":")).encode()
    cdig = sha256_digest(config)
    c = Conn(s.url)
    push_blob(c, repo, config, cdig)
    push_blob(c, repo, layer, ldig)
    c.close()
    s.state[key] = ({"mediaType": OCI_CONFIG, "digest": cdig, "size": len(config)},
                    {"mediaType": OCI_LAYER, "digest": ldig, "size": len(layer)})
    return s.state[key]


def make_manifest(cfgdesc, layerdesc, note):
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cfgdesc, "layers": [layerdesc],
                       "annotations": {"org.wharf.bench": note}}, separators=(",", ":")).encode()


def put_manifest(c, repo, ref, body, what="PUT manifest"):
    digest = sha256_digest(body)
    r = c.request("PUT", f"/v2/{repo}/manifests/{ref}", {"Content-Type": OCI_MANIFEST}, body)
    expect(r, 201, f"{what} {ref}")
    check_digest_header(r, digest, f"{what} {ref}")
    return digest, r


def m_manifest_put(s, cfg, meter):
    repo = f"{cfg.repo}/man"
    cd, ld = ensure_image_blobs(s, cfg, repo)
    bodies = [make_manifest(cd, ld, f"{cfg.run_id}-{i}") for i in range(cfg.manifests)]
    c = Conn(s.url)
    lat = []
    meter.start()
    t0 = time.perf_counter()
    for i, body in enumerate(bodies):
        t = time.perf_counter()
        put_manifest(c, repo, f"t{i}", body)
        lat.append(time.perf_counter() - t)
    t1 = time.perf_counter()
    meter.stop()
    # spot check: read back the first and last by tag
    for i in (0, len(bodies) - 1):
        r = c.request("GET", f"/v2/{repo}/manifests/t{i}", {"Accept": ACCEPT})
        expect(r, 200, f"GET manifest t{i}")
        if r.body != bodies[i]:
            raise MeasureError(f"GET manifest t{i}: body differs from what was PUT: {r.describe()}")
        check_digest_header(r, sha256_digest(bodies[i]), f"GET manifest t{i}")
    c.close()
    out = {"puts": len(bodies), "seconds": t1 - t0, "puts_per_s": len(bodies) / (t1 - t0)}
    out.update(lat_summary(lat))
    return out


def hot_manifest(s, cfg):
    if "hot" not in s.state:
        repo = f"{cfg.repo}/man"
        cd, ld = ensure_image_blobs(s, cfg, repo)
        body = make_manifest(cd, ld, f"{cfg.run_id}-hot")
        c = Conn(s.url)
        put_manifest(c, repo, "hot", body)
        # warm up once, checking GET and HEAD
        r = c.request("GET", f"/v2/{repo}/manifests/hot", {"Accept": ACCEPT})
        expect(r, 200, "GET manifest hot")
        if r.body != body:
            raise MeasureError(f"GET manifest hot: body differs: {r.describe()}")
        if r.h("Content-Type") != OCI_MANIFEST:
            raise MeasureError(f"GET manifest hot: Content-Type {r.h('Content-Type')!r}: {r.describe()}")
        r = c.request("HEAD", f"/v2/{repo}/manifests/hot", {"Accept": ACCEPT})
        expect(r, 200, "HEAD manifest hot")
        check_digest_header(r, sha256_digest(body), "HEAD manifest hot")
        if r.h("Content-Length") != str(len(body)):
            raise MeasureError(f"HEAD manifest hot: Content-Length {r.h('Content-Length')!r} != {len(body)}")
        c.close()
        s.state["hot"] = (f"/v2/{repo}/manifests/hot", body)
    return s.state["hot"]


def _per_req_cpu(res, meter):
    sm = meter.summary()
    if sm.get("server_cpu_s") is not None and res.get("requests"):
        res["server_cpu_us_per_req"] = sm["server_cpu_s"] / res["requests"] * 1e6
    if res.get("requests"):
        res["client_cpu_us_per_req"] = sm["client_cpu_s"] / res["requests"] * 1e6
    return res


def m_get_asyncio(s, cfg, meter):
    target, body = hot_manifest(s, cfg)
    meter.start()
    res = load_test(s.url, target, False, body, cfg.conns, cfg.load_s)
    meter.stop()
    return _per_req_cpu(res, meter)


def m_head_asyncio(s, cfg, meter):
    target, body = hot_manifest(s, cfg)
    meter.start()
    res = load_test(s.url, target, True, body, cfg.conns, cfg.load_s)
    meter.stop()
    return _per_req_cpu(res, meter)


def _dur_ms(tok):
    m = re.match(r"([0-9.]+)(us|ms|s|m)$", tok)
    if not m:
        return None
    v = float(m.group(1))
    return v * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[m.group(2)]


def m_get_wrk(s, cfg, meter):
    wrk = shutil.which("wrk")
    if not wrk:
        return {"skipped": "wrk not installed"}
    target, body = hot_manifest(s, cfg)
    cmd = [wrk, "-t2", f"-c{cfg.conns}", f"-d{cfg.load_s}s", "--latency", "-H", f"Accept: {ACCEPT}", s.url + target]
    meter.start()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=cfg.load_s + 60)
    meter.stop()
    out = p.stdout
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    n = re.search(r"(\d+) requests in ([0-9.]+\w+)", out)
    if p.returncode != 0 or not m or not n:
        raise MeasureError(f"wrk failed ({' '.join(cmd)}): rc={p.returncode} {out[-500:]} {p.stderr[-500:]}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx and int(non2xx.group(1)) > 0:
        raise MeasureError(f"wrk: {non2xx.group(1)} non-2xx responses to GET {target}")
    res = {"req_per_s": float(m.group(1)), "requests": int(n.group(1)), "seconds": _dur_ms(n.group(2)) / 1e3,
           "connections": cfg.conns}
    for q in ("50", "99"):
        mm = re.search(rf"^\s+{q}%\s+(\S+)", out, re.M)
        if mm:
            res[f"p{q}_ms"] = _dur_ms(mm.group(1))
    se = re.search(r"Socket errors: (.*)", out)
    if se:
        res["socket_errors"] = se.group(1).strip()
        if re.search(r"(read|write) [1-9]", se.group(1)):
            raise MeasureError(f"wrk: socket errors {se.group(1)}")
    if res["requests"] == 0:
        raise MeasureError("wrk: 0 requests")
    return _per_req_cpu(res, meter)


def m_head_ab(s, cfg, meter):
    ab = shutil.which("ab")
    if not ab:
        return {"skipped": "ab not installed"}
    target, body = hot_manifest(s, cfg)
    cmd = [ab, "-q", "-k", "-i", f"-c{cfg.conns}", f"-t{cfg.load_s}", "-n", "100000000", "-H", f"Accept: {ACCEPT}",
           s.url + target]
    meter.start()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=cfg.load_s + 60)
    meter.stop()
    out = p.stdout
    m = re.search(r"Requests per second:\s+([0-9.]+)", out)
    n = re.search(r"Complete requests:\s+(\d+)", out)
    if p.returncode != 0 or not m or not n:
        raise MeasureError(f"ab failed ({' '.join(cmd)}): rc={p.returncode} {out[-500:]} {p.stderr[-500:]}")
    failed = re.search(r"Failed requests:\s+(\d+)", out)
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
    if non2xx and int(non2xx.group(1)) > 0:
        raise MeasureError(f"ab: {non2xx.group(1)} non-2xx responses to HEAD {target}")
    if failed and int(failed.group(1)) > 0:
        raise MeasureError(f"ab: {failed.group(1)} failed requests (HEAD {target}): {out[-600:]}")
    tt = re.search(r"Time taken for tests:\s+([0-9.]+)", out)
    res = {"req_per_s": float(m.group(1)), "requests": int(n.group(1)),
           "seconds": float(tt.group(1)) if tt else None, "connections": cfg.conns}
    for q in ("50", "99"):
        mm = re.search(rf"^\s+{q}%\s+(\d+)", out, re.M)
        if mm:
            res[f"p{q}_ms"] = float(mm.group(1))
    return _per_req_cpu(res, meter)


async def _put_tags(url, repo, body, tags, workers):
    host, port = split_url(url)
    digest = sha256_digest(body)
    q = list(tags)

    async def worker():
        c = AConn(host, port)
        while q:
            t = q.pop()
            r = await c.request("PUT", f"/v2/{repo}/manifests/{t}", {"Content-Type": OCI_MANIFEST}, body)
            expect(r, 201, f"PUT manifest tag {t}")
            check_digest_header(r, digest, f"PUT manifest tag {t}")
        await c.close()

    await asyncio.gather(*[worker() for _ in range(workers)])


NEXT_LINK = re.compile(r"<([^>]+)>\s*;\s*rel=\"?next\"?")


def m_tag_list(s, cfg, meter):
    repo = f"{cfg.repo}/tags"
    cd, ld = ensure_image_blobs(s, cfg, repo)
    body = make_manifest(cd, ld, f"{cfg.run_id}-tags")
    tags = [f"v{i:04d}" for i in range(cfg.tags)]
    asyncio.run(_put_tags(s.url, repo, body, tags, 8))  # setup, not timed
    c = Conn(s.url)
    lat = []
    pages_per_list = None
    responses = []
    meter.start()
    for _ in range(cfg.tag_lists):
        t = time.perf_counter()
        target = f"/v2/{repo}/tags/list"
        resps = []
        while target:
            r = c.request("GET", target)
            resps.append(r)
            if r.status != 200:
                break
            m = NEXT_LINK.search(r.h("Link") or "")
            target = location_target(m.group(1)) if m else None
            if len(resps) > cfg.tags + 5:
                break
        lat.append(time.perf_counter() - t)
        responses.append(resps)
    meter.stop()
    c.close()
    want = set(tags)
    for resps in responses:
        got = []
        for r in resps:
            expect(r, 200, "GET tags/list")
            try:
                doc = json.loads(r.body)
            except ValueError:
                raise MeasureError(f"GET tags/list: body is not JSON: {r.describe()}")
            if doc.get("name") != repo:
                raise MeasureError(f"GET tags/list: name {doc.get('name')!r} != {repo}")
            got.extend(doc.get("tags") or [])
        if len(got) != len(want) or set(got) != want:
            raise MeasureError(f"GET /v2/{repo}/tags/list (following Link): {len(got)} tags "
                               f"({len(set(got))} distinct), expected {len(want)}; "
                               f"missing e.g. {sorted(want - set(got))[:3]}, extra e.g. {sorted(set(got) - want)[:3]}")
        pages_per_list = len(resps)
    out = {"tags": cfg.tags, "lists": cfg.tag_lists, "pages_per_list": pages_per_list}
    out.update(lat_summary(lat))
    sm = meter.summary()
    if sm.get("server_cpu_s") is not None:
        out["server_cpu_ms_per_list"] = sm["server_cpu_s"] / cfg.tag_lists * 1e3
    return out


async def _small_blobs(url, repo, blobs, conc):
    host, port = split_url(url)
    q = list(range(len(blobs)))
    q.reverse()
    lat = []

    async def worker():
        c = AConn(host, port)
        await c.open()
        while q:
            i = q.pop()
            data, digest = blobs[i]
            t = time.perf_counter()
            r = await c.request("POST", f"/v2/{repo}/blobs/uploads/")
            expect(r, 202, "POST upload")
            loc = location_target(r.h("Location"))
            if not loc:
                raise MeasureError(f"POST upload: no Location: {r.describe()}")
            r = await c.request("PUT", with_query(loc, "digest", digest),
                                {"Content-Type": "application/octet-stream"}, data)
            lat.append(time.perf_counter() - t)
            expect(r, 201, "PUT small blob")
            check_digest_header(r, digest, "PUT small blob")
        await c.close()

    t0 = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(conc)])
    return time.perf_counter() - t0, lat


def m_small_blobs(s, cfg, meter):
    repo = f"{cfg.repo}/small"
    blobs = []
    for _ in range(cfg.small):
        d = os.urandom(4096)
        blobs.append((d, sha256_digest(d)))
    meter.start()
    dt, lat = asyncio.run(_small_blobs(s.url, repo, blobs, cfg.small_conc))
    meter.stop()
    c = Conn(s.url)
    for i in (0, len(blobs) // 2, len(blobs) - 1):
        data, digest = blobs[i]
        r = c.request("HEAD", f"/v2/{repo}/blobs/{digest}")
        expect(r, 200, "HEAD small blob")
        if r.h("Content-Length") != "4096":
            raise MeasureError(f"HEAD small blob: Content-Length {r.h('Content-Length')!r}: {r.describe()}")
        check_digest_header(r, digest, "HEAD small blob")
    r = c.request("GET", f"/v2/{repo}/blobs/{blobs[1][1]}")
    expect(r, 200, "GET small blob")
    if r.body != blobs[1][0]:
        raise MeasureError(f"GET small blob {blobs[1][1]}: body differs")
    c.close()
    out = {"blobs": cfg.small, "concurrency": cfg.small_conc, "seconds": dt, "blobs_per_s": cfg.small / dt}
    out.update(lat_summary(lat))
    sm = meter.summary()
    if sm.get("server_cpu_s") is not None:
        out["server_cpu_ms_per_blob"] = sm["server_cpu_s"] / cfg.small * 1e3
    return out


def m_same_blob(s, cfg, meter):
    repo = f"{cfg.repo}/same"
    data, digest = cfg.fresh_blob(cfg.same_size)
    n = cfg.same_clients
    conns = [Conn(s.url) for _ in range(n)]
    for c in conns:
        c._connect()
    barrier = threading.Barrier(n + 1)
    results = [None] * n
    ends = [0.0] * n

    def client(i):
        c = conns[i]
        barrier.wait()
        try:
            loc = start_upload(c, repo)
            r = c.request("PUT", with_query(loc, "digest", digest), {"Content-Type": "application/octet-stream"}, data)
            ends[i] = time.perf_counter()
            if r.status != 201:
                results[i] = f"client {i}: expected 201, got {r.describe()}"
            elif r.h("Docker-Content-Digest") != digest:
                results[i] = f"client {i}: Docker-Content-Digest {r.h('Docker-Content-Digest')!r}: {r.describe()}"
            else:
                results[i] = "ok"
        except Exception as e:  # noqa: BLE001 - reported as a failure
            ends[i] = time.perf_counter()
            results[i] = f"client {i}: {e}"

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    meter.start()
    t0 = time.perf_counter()
    barrier.wait()
    for t in threads:
        t.join()
    t1 = max(ends)
    meter.stop()
    for c in conns:
        c.close()
    nok = sum(1 for r in results if r == "ok")
    # the blob must be there and intact
    buf = bytearray(cfg.same_size)
    c = Conn(s.url)
    r = c.request("GET", f"/v2/{repo}/blobs/{digest}", into=buf)
    c.close()
    stored_ok = r.status == 200 and r.nbody == cfg.same_size and sha256_digest(buf) == digest
    if nok != n or not stored_ok:
        errs = [r_ for r_ in results if r_ != "ok"]
        raise MeasureError(f"{nok}/{n} clients succeeded; stored blob "
                           f"{'verified' if stored_ok else 'WRONG (GET ' + r.describe() + ')'}; errors: {errs[:3]}")
    dt = t1 - t0
    return {"clients": n, "bytes_each": cfg.same_size, "succeeded": nok, "all_succeeded": True,
            "seconds": dt, "aggregate_MB_per_s": n * cfg.same_size / dt / 1e6}


MEASURES = [
    ("a_upload_monolithic", "a. monolithic upload", m_upload_mono),
    ("b_upload_chunked", "b. chunked upload", m_upload_chunked),
    ("c_download", "c. blob download", m_download),
    ("d_manifest_put", "d. manifest PUT", m_manifest_put),
    ("e_get_asyncio", "e. manifest GET (asyncio)", m_get_asyncio),
    ("e_head_asyncio", "e. manifest HEAD (asyncio)", m_head_asyncio),
    ("e_get_wrk", "e. manifest GET (wrk)", m_get_wrk),
    ("e_head_ab", "e. manifest HEAD (ab -k -i)", m_head_ab),
    ("f_tag_list", "f. tag list", m_tag_list),
    ("g_small_blobs", "g. small blobs", m_small_blobs),
    ("h_same_blob", "h. same blob, concurrent", m_same_blob),
]


def _run_one(s, key, label, fn, cfg):
    print(f"# {label} on {s.name} ...", file=sys.stderr, end="", flush=True)
    res = run_measure(s, key, fn, cfg)
    if res.get("ok"):
        brief = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in res.items()
                 if k in ("MB_per_s", "p50_ms", "p99_ms", "req_per_s", "blobs_per_s", "seconds")}
        print(f" ok {brief}", file=sys.stderr)
    elif "skipped" in res:
        print(f" skipped: {res['skipped']}", file=sys.stderr)
    else:
        print(f" FAILED: {res['error']}", file=sys.stderr)
    time.sleep(0.3)
    return res


def median_run(runs):
    """The run with the median throughput (all runs kept under "rounds"); the only run when
    there was one, and a failed run when any failed."""
    if len(runs) == 1:
        return runs[0]
    bad = [r for r in runs if not r.get("ok")]
    if bad:
        return bad[0]
    rate = next((k for k in ("req_per_s", "MB_per_s", "blobs_per_s") if k in runs[0]), None)
    if rate is None:
        return runs[0]
    ordered = sorted(runs, key=lambda r: r[rate])
    res = dict(ordered[len(ordered) // 2])
    res["rounds"] = [round(r[rate], 3) for r in runs]
    return res


def run_measure(s, key, fn, cfg):
    if not s.alive():
        return {"ok": False, "error": "server process is not running"}
    # Each measure starts with no dirty page-cache data left by the one before: a server that
    # does not fsync its writes (Distribution's blobs) would otherwise have the kernel write
    # them back during the next measure, on whichever server runs it.
    os.sync()
    meter = Meter(s)
    try:
        res = fn(s, cfg, meter)
        res["ok"] = "skipped" not in res
    except MeasureError as e:
        res = {"ok": False, "error": str(e)}
    except Exception as e:  # noqa: BLE001 - any crash is a failed measure, not a dead benchmark
        res = {"ok": False, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
    if meter.running():
        meter.stop()
    res["meter"] = meter.summary()
    sm = res["meter"]
    if res.get("ok") and "bytes" in res and sm.get("server_cpu_s") is not None:
        res["server_cpu_ns_per_byte"] = sm["server_cpu_s"] / res["bytes"] * 1e9
    if res.get("ok") and key == "d_manifest_put" and sm.get("server_cpu_s") is not None:
        res["server_cpu_ms_per_put"] = sm["server_cpu_s"] / res["puts"] * 1e3
    if not s.alive():
        res["ok"] = False
        res["error"] = (res.get("error", "") + f" [server exited with {s.proc.returncode if s.proc else '?'}]").strip()
    hwm = s.hwm_kb()
    if hwm is not None:
        res["server_vmhwm_kb_after"] = hwm
    return res


# --------------------------------------------------------------------------
# reporting

# (row label, measure key, value key, unit, better, format)
ROWS = [
    ("a. monolithic upload", "a_upload_monolithic", "MB_per_s", "MB/s", "higher", "{:.0f}"),
    ("a. server CPU per byte", "a_upload_monolithic", "server_cpu_ns_per_byte", "ns/B", "lower", "{:.2f}"),
    ("b. chunked upload", "b_upload_chunked", "MB_per_s", "MB/s", "higher", "{:.0f}"),
    ("b. server CPU per byte", "b_upload_chunked", "server_cpu_ns_per_byte", "ns/B", "lower", "{:.2f}"),
    ("c. blob download", "c_download", "MB_per_s", "MB/s", "higher", "{:.0f}"),
    ("c. server CPU per byte", "c_download", "server_cpu_ns_per_byte", "ns/B", "lower", "{:.2f}"),
    ("d. manifest PUT p50", "d_manifest_put", "p50_ms", "ms", "lower", "{:.2f}"),
    ("d. manifest PUT p99", "d_manifest_put", "p99_ms", "ms", "lower", "{:.2f}"),
    ("d. server CPU per PUT", "d_manifest_put", "server_cpu_ms_per_put", "ms", "lower", "{:.2f}"),
    ("e. manifest GET, asyncio", "e_get_asyncio", "req_per_s", "req/s", "higher", "{:.0f}"),
    ("e. manifest GET, asyncio p99", "e_get_asyncio", "p99_ms", "ms", "lower", "{:.2f}"),
    ("e. manifest HEAD, asyncio", "e_head_asyncio", "req_per_s", "req/s", "higher", "{:.0f}"),
    ("e. manifest HEAD, asyncio p99", "e_head_asyncio", "p99_ms", "ms", "lower", "{:.2f}"),
    ("e. manifest GET, wrk", "e_get_wrk", "req_per_s", "req/s", "higher", "{:.0f}"),
    ("e. manifest GET, wrk p99", "e_get_wrk", "p99_ms", "ms", "lower", "{:.2f}"),
    ("e. manifest HEAD, ab -k -i", "e_head_ab", "req_per_s", "req/s", "higher", "{:.0f}"),
    ("e. manifest HEAD, ab p99", "e_head_ab", "p99_ms", "ms", "lower", "{:.0f}"),
    ("e. server CPU per GET (wrk)", "e_get_wrk", "server_cpu_us_per_req", "µs", "lower", "{:.1f}"),
    ("e. server CPU per HEAD (asyncio)", "e_head_asyncio", "server_cpu_us_per_req", "µs", "lower", "{:.1f}"),
    ("f. tag list p50", "f_tag_list", "p50_ms", "ms", "lower", "{:.2f}"),
    ("f. tag list p99", "f_tag_list", "p99_ms", "ms", "lower", "{:.2f}"),
    ("g. small blobs", "g_small_blobs", "blobs_per_s", "blobs/s", "higher", "{:.0f}"),
    ("g. small blob p99", "g_small_blobs", "p99_ms", "ms", "lower", "{:.1f}"),
    ("g. server CPU per blob", "g_small_blobs", "server_cpu_ms_per_blob", "ms", "lower", "{:.2f}"),
    ("h. same blob x8: all succeeded", "h_same_blob", "succeeded", "", "equal", "{}"),
    ("h. same blob x8: wall time", "h_same_blob", "seconds", "s", "lower", "{:.2f}"),
    ("peak RSS (VmHWM)", None, "peak_rss_mb", "MB", "lower", "{:.1f}"),
    ("server CPU, all measures", None, "server_cpu_total_s", "s", "lower", "{:.1f}"),
]

# targets: (description, row label, test on ratio wharf/Distribution)
TARGETS = [
    ("monolithic upload >= 3x", "a. monolithic upload", lambda r: r >= 3),
    ("chunked upload >= 3x", "b. chunked upload", lambda r: r >= 3),
    ("download >= 1x", "c. blob download", lambda r: r >= 1),
    ("manifest GET >= 10x req/s (wrk)", "e. manifest GET, wrk", lambda r: r >= 10),
    ("manifest GET >= 10x req/s (asyncio)", "e. manifest GET, asyncio", lambda r: r >= 10),
    ("manifest HEAD >= 10x req/s (asyncio)", "e. manifest HEAD, asyncio", lambda r: r >= 10),
    ("manifest HEAD >= 10x req/s (ab)", "e. manifest HEAD, ab -k -i", lambda r: r >= 10),
    ("manifest PUT p50 <= 1/5", "d. manifest PUT p50", lambda r: r <= 0.2),
    ("small blobs >= 4x", "g. small blobs", lambda r: r >= 4),
    ("peak RSS <=", "peak RSS (VmHWM)", lambda r: r <= 1),
]


def server_value(s, mkey, vkey):
    """Returns (value, display) for one cell."""
    if mkey is None:
        v = s.results.get("_summary", {}).get(vkey)
        return v, v
    res = s.results.get(mkey)
    if res is None:
        return None, "–"
    if "skipped" in res:
        return None, f"skipped ({res['skipped']})"
    if not res.get("ok"):
        return None, "FAIL"
    return res.get(vkey), res.get(vkey)


def fmt_cell(v, disp, f):
    if isinstance(disp, str):
        return disp
    if v is None:
        return "n/a"
    try:
        return f.format(v)
    except (ValueError, TypeError):
        return str(v)


def make_table(servers):
    names = [s.name for s in servers]
    pair = None
    by = {s.name: s for s in servers}
    if "wharf" in by and "distribution" in by:
        pair = (by["wharf"], by["distribution"])
    hdr = ["measure"] + [("Distribution" if n == "distribution" else n) for n in names]
    scale = by.get("wharf-scale") if pair else None
    if pair:
        hdr += ["ratio wharf/Distribution"]
        if scale:
            hdr += ["ratio wharf-scale/Distribution"]
        hdr += ["better"]
    else:
        hdr += ["better"]
    lines = ["| " + " | ".join(hdr) + " |", "|" + "|".join(["---"] * len(hdr)) + "|"]
    ratios = {}
    for label, mkey, vkey, unit, better, f in ROWS:
        if mkey is not None and not any(mkey in s.results for s in servers):
            continue  # measure not selected (--measures)
        cells = [f"{label}" + (f" ({unit})" if unit else "")]
        vals = {}
        for s in servers:
            v, disp = server_value(s, mkey, vkey)
            if mkey == "h_same_blob" and vkey == "succeeded" and v is not None:
                disp = f"{v}/{s.results[mkey]['clients']}"
            vals[s.name] = v
            cells.append(fmt_cell(v, disp, f))
        if pair:
            a, b = vals.get("wharf"), vals.get("distribution")
            if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b:
                ratios[label] = a / b
                cells.append(f"{a / b:.2f}")
            else:
                cells.append("–")
            if scale:
                c = vals.get("wharf-scale")
                if isinstance(c, (int, float)) and isinstance(b, (int, float)) and b:
                    cells.append(f"{c / b:.2f}")
                else:
                    cells.append("–")
        cells.append({"higher": "higher", "lower": "lower", "equal": "all must succeed"}[better])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines), ratios


def conditions_table(servers):
    hdr = ["measure", "server", "wall s", "server CPU s", "server cores", "client CPU s", "host busy cores",
           "of which niced", "load 1m"]
    lines = ["| " + " | ".join(hdr) + " |", "|" + "|".join(["---"] * len(hdr)) + "|"]
    for key, label, _ in MEASURES:
        for s in servers:
            res = s.results.get(key)
            if not res:
                continue
            m = res.get("meter", {})

            def g(k, f="{:.2f}"):
                v = m.get(k)
                return f.format(v) if isinstance(v, (int, float)) else "–"
            lines.append(f"| {label} | {s.name} | {g('wall_s')} | {g('server_cpu_s')} | {g('server_cores')} | "
                         f"{g('client_cpu_s')} | {g('host_busy_cores')} | {g('host_nice_cores')} | {g('loadavg_1m')} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="small sizes (32 MiB blobs, 200 small blobs, 3 s load runs, 100 tags): under a minute")
    ap.add_argument("--only", choices=["wharf", "distribution"], help="measure only one of the two servers")
    ap.add_argument("--target", metavar="URL", help="measure an already running registry at URL instead")
    ap.add_argument("--target-pid", metavar="PID[,PID...]",
                    help="with --target: process id(s) whose CPU and VmHWM to report (summed)")
    ap.add_argument("--target-name", default="target", help="with --target: column name (default: target)")
    ap.add_argument("--scale", action="store_true",
                    help="also measure wharf on PostgreSQL + S3 (needs the WHARF_TEST_* variables of "
                         "`source scripts/backends.sh start`)")
    ap.add_argument("--rate-limits", action="store_true",
                    help="also measure wharf with pull rate limits on (limits too high to be reached), "
                         "to compare with the default wharf column")
    ap.add_argument("--analytics-off", action="store_true",
                    help="also measure wharf with pull analytics off, to compare with the default wharf "
                         "column (analytics on)")
    ap.add_argument("--rounds", type=int, default=1, metavar="N",
                    help="run each load measure (e_*) N times per server, taking turns, and keep "
                         "each server's median run (default 1)")
    ap.add_argument("--wharf-arg", action="append", metavar="ARG", help="extra argument for `wharf serve` (repeatable)")
    ap.add_argument("--measures", metavar="LIST",
                    help="comma-separated subset of measure keys or letters, e.g. a,b,e (default: all)")
    ap.add_argument("--keep", action="store_true", help="keep the servers' data directories")
    ap.add_argument("--no-json", action="store_true", help="do not write bench/results/<timestamp>.json")
    args = ap.parse_args()

    cfg = Cfg(args)
    measures = MEASURES
    if args.measures:
        want = [w.strip() for w in args.measures.split(",") if w.strip()]
        measures = [m for m in MEASURES if m[0] in want or m[0].split("_")[0] in want]
        if not measures:
            ap.error(f"no measure matches {args.measures!r}; keys: {', '.join(m[0] for m in MEASURES)}")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` stops the servers
    started = time.time()
    rustc = rustc_running()
    if rustc:
        print(f"WARNING: {len(rustc)} rustc process(es) running: numbers will be disturbed", file=sys.stderr)
    host0 = read_proc_stat_cpu()
    time.sleep(0.5)
    host1 = read_proc_stat_cpu()
    idle_busy = (host1[0] - host0[0] - (host1[1] - host0[1])) / max(1, host1[0] - host0[0]) * NCPU

    servers = []
    try:
        if args.target:
            servers.append(attach_target(args))
        else:
            if args.only in (None, "wharf"):
                servers.append(start_wharf(args))
            if args.only in (None, "distribution"):
                servers.append(start_distribution(args))
            if args.scale:
                servers.append(start_wharf_scale(args))
            if args.rate_limits:
                # Every request counted, none refused: the cost of counting, not of 429s.
                servers.append(start_wharf(args, name="wharf-limited", extra_env={
                    "WHARF_RATE_LIMITS": "true",
                    "WHARF_ANONYMOUS_PULL_LIMIT": str(10 ** 15),
                    "WHARF_API_REQUEST_LIMIT": str(10 ** 15)}))
            if args.analytics_off:
                servers.append(start_wharf(args, name="wharf-no-analytics", extra_env={"WHARF_ANALYTICS": "false"}))
        for s in servers:
            s.start_rss_kb = s.rss_kb()
            s.results["_cpu0"] = s.cpu()
            print(f"# {s.name}: {s.url} pid={','.join(map(str, s.pids)) or '?'} {s.version}", file=sys.stderr)

        # The first asyncio load of a benchmark process runs at a third of the speed of every
        # later one, whichever server it hits (measured: two identical wharf servers, 31k
        # req/s for the first, 85-100k for the second and every later run). Warm the client
        # up, unmeasured, so the first server measured is not penalised.
        if any(key.startswith("e_") for key, _, _ in measures) and servers:
            try:
                target, body = hot_manifest(servers[0], cfg)
                load_test(servers[0].url, target, False, body, cfg.conns, 3)
            except Exception as e:  # noqa: BLE001 - the measures report the server's faults
                print(f"# warm-up load failed: {e}", file=sys.stderr)

        for key, label, fn in measures:
            # With --rounds N the servers take turns N times (in reverse order every other
            # round, so a slow spell of the host falls on each alike) and each keeps its
            # median run: on 2 shared cores one run of a load measure varies by +-15%.
            rounds = args.rounds if key.startswith("e_") else 1
            runs = {s.name: [] for s in servers}
            for r in range(rounds):
                for s in (servers if r % 2 == 0 else servers[::-1]):
                    runs[s.name].append(_run_one(s, key, label, fn, cfg))
            for s in servers:
                s.results[key] = median_run(runs[s.name])

        for s in servers:
            cpu0 = s.results.pop("_cpu0", None)
            cpu1 = s.cpu()
            hwm = s.hwm_kb()
            s.results["_summary"] = {
                "peak_rss_mb": hwm / 1024 if hwm is not None else None,
                "start_rss_mb": s.start_rss_kb / 1024 if s.start_rss_kb is not None else None,
                "server_cpu_total_s": (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None,
                "threads": proc_threads(s.pids[0]) if s.pids else None,
            }
    finally:
        for s in servers:
            s.stop(args.keep)

    # log scan: errors / panics in the server logs
    for s in servers:
        if s.logpath and os.path.exists(s.logpath):
            with open(s.logpath, errors="replace") as f:
                txt = ANSI.sub("", f.read())
            bad = [l for l in txt.splitlines() if re.search(r"level=error|level=fatal|panic|\bERROR\b", l)]
            s.results["_summary"]["log_error_lines"] = len(bad)
            s.results["_summary"]["log_error_examples"] = bad[:5]
            s.results["_summary"]["log"] = s.logpath
            if bad or args.keep:
                print(f"# {s.name}: kept {s.tmpdir} (log with error lines, or --keep)", file=sys.stderr)
            else:
                shutil.rmtree(s.tmpdir, ignore_errors=True)
                s.results["_summary"]["log"] = None

    table, ratios = make_table(servers)
    cond = conditions_table(servers)
    finished = time.time()
    print()
    print(f"## wharf benchmark {'(quick) ' if cfg.quick else ''}{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(started))}")
    print()
    print(f"Host: {NCPU} cores, busy cores before start {idle_busy:.2f}, load {loadavg()}, "
          f"rustc running at start: {len(rustc)}. Sizes: blob {cfg.blob // MiB} MiB "
          f"({cfg.chunks} chunks), {cfg.manifests} manifest PUTs, {cfg.conns} conns x {cfg.load_s} s, "
          f"{cfg.tags} tags, {cfg.small} x 4 KiB blobs @ {cfg.small_conc}, "
          f"{cfg.same_clients} x {cfg.same_size // MiB} MiB same blob.")
    print()
    print(table)
    print()
    failures = [(s.name, k, r["error"]) for s in servers for k, r in s.results.items()
                if isinstance(r, dict) and r.get("ok") is False]
    if failures:
        print("### Failures")
        print()
        for name, k, e in failures:
            print(f"- **{name} {k}**: {e}")
        print()
    by_name = {s.name: s for s in servers}
    if "wharf" in by_name and "wharf-limited" in by_name:
        print("### Rate limits on vs off (same run)")
        print()
        for key, label in (("e_get_wrk", "manifest GET, wrk"), ("e_head_ab", "manifest HEAD, ab"),
                           ("e_get_asyncio", "manifest GET, asyncio")):
            on = by_name["wharf-limited"].results.get(key, {})
            off = by_name["wharf"].results.get(key, {})
            if on.get("ok") and off.get("ok") and off.get("req_per_s"):
                print(f"- {label}: {on['req_per_s']:.0f} req/s with limits, {off['req_per_s']:.0f} without "
                      f"(ratio {on['req_per_s'] / off['req_per_s']:.3f})")
        print()
    if "wharf" in by_name and "wharf-no-analytics" in by_name:
        print("### Analytics on vs off (same run)")
        print()
        for key, label in (("e_get_wrk", "manifest GET, wrk"), ("e_head_ab", "manifest HEAD, ab"),
                           ("e_get_asyncio", "manifest GET, asyncio")):
            on = by_name["wharf"].results.get(key, {})
            off = by_name["wharf-no-analytics"].results.get(key, {})
            if on.get("ok") and off.get("ok") and off.get("req_per_s"):
                spread = ""
                if "rounds" in on and "rounds" in off:
                    spread = (f"; medians of {len(on['rounds'])} runs each, with "
                              f"{min(on['rounds']):.0f}-{max(on['rounds']):.0f}, "
                              f"without {min(off['rounds']):.0f}-{max(off['rounds']):.0f}")
                print(f"- {label}: {on['req_per_s']:.0f} req/s with analytics, {off['req_per_s']:.0f} without "
                      f"(ratio {on['req_per_s'] / off['req_per_s']:.3f}{spread})")
        print()
    if ratios or (len(servers) == 2 and {s.name for s in servers} == {"wharf", "distribution"}):
        print("### Targets (wharf vs Distribution, same run)")
        print()
        for desc, row, test in TARGETS:
            r = ratios.get(row)
            verdict = "n/a (missing value)" if r is None else ("PASS" if test(r) else "MISS")
            print(f"- {desc}: {verdict}" + (f" (ratio {r:.2f})" if r is not None else ""))
        print()
    print("### Conditions per measure (CPU in the timed region)")
    print()
    print(cond)
    print()
    for s in servers:
        sm = s.results.get("_summary", {})
        if sm.get("log_error_lines"):
            print(f"- {s.name} log has {sm['log_error_lines']} error lines, e.g. {sm['log_error_examples'][:2]}")
    print(f"Total time {finished - started:.0f} s.")

    if not args.no_json:
        os.makedirs(os.path.join(BENCH_DIR, "results"), exist_ok=True)
        ts = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started))
        path = os.path.join(BENCH_DIR, "results", f"{ts}{'-quick' if cfg.quick else ''}.json")
        doc = {
            "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "duration_s": finished - started,
            "args": vars(args),
            "sizes": {k: v for k, v in vars(cfg).items() if k != "base"},
            "host": {"ncpu": NCPU, "busy_cores_before": idle_busy, "loadavg_end": loadavg(),
                     "rustc_at_start": rustc, "kernel": os.uname().release},
            "servers": {s.name: {"url": s.url, "pids": s.pids, "version": s.version, "results": s.results}
                        for s in servers},
            "ratios_wharf_over_distribution": ratios,
            "table_markdown": table,
        }
        with open(path, "w") as f:
            json.dump(doc, f, indent=1, default=str)
        print(f"JSON: {os.path.relpath(path, os.getcwd())}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
