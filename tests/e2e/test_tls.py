"""wharf serving HTTPS (--tls-cert/--tls-key): clients that verify the certificate push and pull."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import requests

from helpers import make_rootfs_dir, require_bin, run, umoci_image


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """A private CA and a server certificate for 127.0.0.1 signed by it."""
    require_bin("openssl")
    d = tmp_path_factory.mktemp("pki")
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=wharf test CA", "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt")])
    run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
         "-keyout", str(d / "server.key"), "-out", str(d / "server.csr")])
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run(["openssl", "x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.crt"),
         "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "2",
         "-extfile", str(d / "san.ext"), "-out", str(d / "server.crt")])
    return d


@pytest.fixture
def tls_wharf(wharf_factory, pki):
    w = wharf_factory(["--tls-cert", str(pki / "server.crt"), "--tls-key", str(pki / "server.key")])
    assert w.url.startswith("https://"), w.url
    return w


def test_https_verified_by_the_ca(tls_wharf, pki):
    r = requests.get(f"{tls_wharf.url}/v2/", verify=str(pki / "ca.crt"), timeout=10)
    assert r.status_code == 200
    assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{tls_wharf.url}/v2/", timeout=10)  # the system store does not know the CA


def test_skopeo_pushes_and_pulls_with_tls_verification(tls_wharf, pki, tmp_path):
    """skopeo has no loopback exemption: this only works when the certificate checks out."""
    require_bin("skopeo", "umoci")
    certs = tmp_path / "certs"
    certs.mkdir()
    shutil.copy(pki / "ca.crt", certs / "ca.crt")
    layout = tmp_path / "layout"
    umoci_image(layout, "v1", make_rootfs_dir(tmp_path / "rootfs", "over tls\n"))
    dest = f"docker://{tls_wharf.host}/tls/app:v1"
    run(["skopeo", "copy", "--dest-tls-verify=true", "--dest-cert-dir", str(certs), f"oci:{layout}:v1", dest])
    out = tmp_path / "pulled"
    run(["skopeo", "copy", "--src-tls-verify=true", "--src-cert-dir", str(certs), dest, f"dir:{out}"])
    assert (out / "manifest.json").exists()
    # Without the CA, verification fails: the TLS is real.
    refused = run(["skopeo", "inspect", "--tls-verify=true", dest], check=False)
    assert refused.returncode != 0
    assert "certificate" in (refused.stderr + refused.stdout).lower()


def test_docker_push_pull_over_https(tls_wharf, pki, docker_cli, rootfs_tar):
    certs = Path("/etc/docker/certs.d") / tls_wharf.host
    certs.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copy(pki / "ca.crt", certs / "ca.crt")
        ref = f"{tls_wharf.host}/tls/docker:v1"
        docker_cli("import", "-c", 'CMD ["/bin/sh","-c","cat /etc/hello.txt"]', str(rootfs_tar("docker over tls\n")), ref)
        docker_cli.track(ref)
        docker_cli("push", ref, timeout=300)
        docker_cli("rmi", ref)
        docker_cli("pull", ref, timeout=300)
        out = docker_cli("run", "--rm", "--network", "none", ref, timeout=120).stdout
        assert "docker over tls" in out
    finally:
        shutil.rmtree(certs, ignore_errors=True)
    # The registry now holds what docker pushed, served over HTTPS.
    r = requests.get(f"{tls_wharf.url}/v2/tls/docker/tags/list", verify=str(pki / "ca.crt"), timeout=10)
    assert r.json()["tags"] == ["v1"]
