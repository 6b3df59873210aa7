"""podman push/pull against wharf (vfs storage in a private --root)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from helpers import OCI_MANIFEST, fetch_manifest, get_blob_verified, require_bin, run


@pytest.fixture
def podman(tmp_path):
    require_bin("podman")
    (tmp_path / "tmp").mkdir()
    # podman refuses a --runroot longer than 50 characters
    runroot = Path(tempfile.mkdtemp(prefix="wharf-pod-"))
    base = [
        "podman",
        "--root", str(tmp_path / "root"),
        "--runroot", str(runroot),
        "--storage-driver", "vfs",
        "--events-backend", "file",
        "--cgroup-manager", "cgroupfs",
        "--tmpdir", str(tmp_path / "tmp"),
    ]

    def p(*args, **kw):
        return run([*base, *args], **kw)

    yield p
    run([*base, "rmi", "-a", "-f"], check=False, timeout=120)
    shutil.rmtree(runroot, ignore_errors=True)


def test_podman_push_pull(wharf, podman, rootfs_tar, tmp_path):
    text = "hello from wharf via podman\n"
    ref = f"{wharf.host}/e2e/podman-bb:v1"
    podman("import", "-q", str(rootfs_tar(text)), "localhost/podbb:v1")
    digest_file = tmp_path / "digest"
    podman("push", "--tls-verify=false", "--digestfile", str(digest_file), "localhost/podbb:v1", ref)
    digest = digest_file.read_text().strip()

    body, served, media_type = fetch_manifest(wharf, "e2e/podman-bb", "v1")
    assert served == digest
    assert media_type == OCI_MANIFEST  # podman pushes OCI by default
    m = json.loads(body)
    for d in [m["config"]["digest"], *[layer["digest"] for layer in m["layers"]]]:
        get_blob_verified(wharf, "e2e/podman-bb", d)

    podman("rmi", "-a", "-f")
    podman("pull", "--tls-verify=false", ref)
    info = json.loads(podman("image", "inspect", ref).stdout)[0]
    assert info["Digest"] == digest
    out = podman(
        "run", "--rm", "--network", "none",
        "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
        ref, "/bin/sh", "-c", "cat /etc/hello.txt",
    ).stdout
    assert out == text
