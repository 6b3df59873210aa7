"""Fixtures for the wharf end-to-end tests.

* ``wharf``          -- a fresh wharf (port 0, new tmp data dir), stopped after the test.
                        ``wharf.restart()`` restarts it on the same data dir (and port);
                        ``wharf.restart(graceful=False)`` SIGKILLs it first; ``wharf.kill9()``.
* ``wharf_factory``  -- call it to start more independent servers in one test.
* ``rootfs_tar``     -- ``rootfs_tar("text")`` -> tarball of a busybox rootfs whose
                        /etc/hello.txt holds "text" (for docker/podman import).
* ``docker_cli``     -- checks the docker daemon answers; removes the test's image refs after.
* ``containerd``     -- a private containerd (own root/state/socket) for ctr, per session.

Missing clients skip the test, except with CI=true where they fail it.
Set WHARF_BIN to test another binary (default: target/release/wharf).

Scale-out mode (``WHARF_E2E_BACKEND=scale``, backends from ``source scripts/backends.sh start``):
``wharf``/``wharf_factory`` give a ``helpers.Cluster`` instead -- two wharf nodes on a fresh
PostgreSQL database and a fresh S3 prefix, behind an nginx that alternates nodes per request --
with the same interface (``cluster.nodes`` are the two ``Wharf`` objects). A server started with
``--tls-cert`` is reached at node 0 directly (no nginx). While a test runs, WHARF_DATABASE,
WHARF_STORAGE and the S3 credentials of its first cluster are set in the environment, so the
``wharf user add ... --data-dir D`` calls of the tests act on that cluster.
``cluster_factory`` always makes clusters (test_scale.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from helpers import (
    IN_CI,
    SCALE,
    Cluster,
    Wharf,
    make_rootfs_tar,
    need,
    require_bin,
    require_module,
    require_scale_backends,
    run,
    wharf_bin,
)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(request) -> bool:
    rep = getattr(request.node, "rep_call", None)
    return rep is None or rep.failed


def _need_binary() -> None:
    binary = wharf_bin()
    need(
        binary.exists() and os.access(binary, os.X_OK),
        f"wharf binary not found at {binary} (cargo build --release -p wharf, or set WHARF_BIN)",
    )


def _teardown(instances, request) -> None:
    errors = []
    for w in instances:
        try:
            w.stop()
        except Exception as e:  # noqa: BLE001
            errors.append(f"{w.url}: {e}")
            w.kill9()
    if _failed(request) or errors:
        for w in instances:
            print(f"\n----- wharf log ({w.log_path}) tail -----\n{w.log_tail(120)}")
    close_errors = []
    for w in instances:
        if isinstance(w, Cluster):
            try:
                w.close()
            except Exception as e:  # noqa: BLE001
                close_errors.append(f"{w.base}: {e}")
    if errors:
        pytest.fail("wharf did not stop gracefully on SIGTERM: " + "; ".join(errors))
    if close_errors:
        pytest.fail("cluster cleanup failed: " + "; ".join(close_errors))


@pytest.fixture
def cluster_factory(tmp_path, request, monkeypatch):
    """``cluster_factory(extra_args=(), n_nodes=2, direct=False, **kw)`` -> a started Cluster."""
    _need_binary()
    require_scale_backends()
    instances: list[Cluster] = []

    def make(extra_args=(), n_nodes: int = 2, direct: bool = False, **kw) -> Cluster:
        c = Cluster(tmp_path / f"cluster{len(instances)}", extra_args, n_nodes=n_nodes, direct=direct, **kw)
        instances.append(c)
        if len(instances) == 1:
            for k, v in c.cli_env().items():
                monkeypatch.setenv(k, v)
        return c.start()

    yield make
    _teardown(instances, request)


@pytest.fixture
def wharf_factory(tmp_path, request):
    if SCALE:
        # a cluster per call; TLS servers are reached at a node directly
        cf = request.getfixturevalue("cluster_factory")
        yield lambda extra_args=(): cf(extra_args, direct="--tls-cert" in extra_args)
        return
    _need_binary()
    instances: list[Wharf] = []

    def make(extra_args=()) -> Wharf:
        d = tmp_path / f"wharf{len(instances)}"
        (d / "data").mkdir(parents=True)
        w = Wharf(d / "data", d / "wharf.log", extra_args)
        instances.append(w)
        return w.start()

    yield make
    _teardown(instances, request)


@pytest.fixture
def wharf(wharf_factory) -> Wharf:
    return wharf_factory()


@pytest.fixture(scope="session")
def rootfs_tar(tmp_path_factory):
    base = tmp_path_factory.mktemp("rootfs")
    made: dict[str, Path] = {}

    def make(hello: str) -> Path:
        if hello not in made:
            made[hello] = make_rootfs_tar(base / f"rootfs{len(made)}.tar", hello)
        return made[hello]

    return make


# --------------------------------------------------------------------------------------
# docker
# --------------------------------------------------------------------------------------
class DockerCli:
    def __init__(self):
        self.refs: list[str] = []
        self.manifest_lists: list[str] = []

    def __call__(self, *args, **kw):
        return run(["docker", *args], **kw)

    def track(self, *refs: str) -> None:
        self.refs.extend(refs)

    def cleanup(self):
        for ml in self.manifest_lists:
            run(["docker", "manifest", "rm", ml], check=False, timeout=60)
        if self.refs:
            run(["docker", "rmi", "-f", *sorted(set(self.refs))], check=False, timeout=120)


@pytest.fixture
def docker_cli():
    require_bin("docker", "dockerd")
    ok = subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode == 0
    need(ok, "docker daemon not reachable (run scripts/start-daemons.sh)")
    cli = DockerCli()
    yield cli
    cli.cleanup()


# --------------------------------------------------------------------------------------
# containerd (private instance, for ctr)
# --------------------------------------------------------------------------------------
class Containerd:
    def __init__(self, base: Path):
        self.base = base
        self.sock = base / "containerd.sock"
        self.proc: subprocess.Popen | None = None

    def start(self):
        cfg = self.base / "config.toml"
        cfg.write_text(
            "\n".join(
                [
                    "version = 2",
                    f'root = "{self.base}/root"',
                    f'state = "{self.base}/state"',
                    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
                    "[grpc]",
                    f'  address = "{self.sock}"',
                    "[ttrpc]",
                    f'  address = "{self.sock}.ttrpc"',
                    "[debug]",
                    '  address = ""',
                    "",
                ]
            )
        )
        self.log = open(self.base / "containerd.log", "w")
        self.proc = subprocess.Popen(
            ["containerd", "--config", str(cfg)],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"containerd exited: {(self.base / 'containerd.log').read_text()[-3000:]}")
            if self.sock.exists():
                r = subprocess.run(
                    ["ctr", "-a", str(self.sock), "version"], capture_output=True, timeout=20
                )
                if r.returncode == 0:
                    return self
            time.sleep(0.2)
        raise RuntimeError("containerd not ready in 60s")

    def ctr(self, *args, **kw):
        return run(["ctr", "-a", self.sock, *args], **kw)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


@pytest.fixture(scope="session")
def containerd(tmp_path_factory):
    require_bin("containerd", "ctr")
    # unix socket paths must stay short (<108 bytes): use a short private dir
    base = Path(tmp_path_factory.mktemp("ctrd"))
    if len(str(base)) > 80:
        import tempfile

        base = Path(tempfile.mkdtemp(prefix="wharf-ctrd-"))
    c = Containerd(base).start()
    yield c
    c.stop()
    shutil.rmtree(base / "root", ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _report_mode():
    if IN_CI:
        print("CI=true: missing clients fail the tests instead of skipping them")
    if SCALE:
        print("WHARF_E2E_BACKEND=scale: each wharf is 2 nodes on PostgreSQL + S3 behind nginx")
    yield


@pytest.fixture
def browser(tmp_path):
    """Debian's headless Chromium driven by Selenium through chromedriver (no browser download).
    The flags keep Chromium off the network: only the loopback wharf is reachable here."""
    require_bin("chromium", "chromedriver")
    require_module("selenium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
