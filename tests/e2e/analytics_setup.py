"""What the analytics end-to-end tests share: an organization `acme` on a wharf with auth
(owner alice, member mia, administrator boss, and whoever else the test names), a small
image pushed as alice, and manifest requests sent by curl from a chosen loopback address
with a real client's user agent."""

from __future__ import annotations

import json
import os
import subprocess

import requests

from helpers import OCI_MANIFEST, SCALE, run, sha256_digest, wharf_bin

DOCKER = ("docker/27.5.1 go/go1.22.12 git-commit/4c9b3b0 kernel/6.1.0 os/linux arch/amd64 "
          "UpstreamClient(Docker-Client/27.5.1 \\(linux\\))")
CONTAINERD = "containerd/1.7.24+unknown"
SKOPEO = "skopeo/1.13.3"


def wharf_cli(w, *args, input=None):
    return run([wharf_bin(), *args, "--data-dir", w.data_dir], input=input)


def acme_wharf(wharf_factory, monkeypatch, passwords: dict[str, str]):
    """A wharf with auth on and a user per entry of `passwords` (boss an administrator);
    alice owns the organization acme and mia is a member."""
    monkeypatch.setenv("WHARF_AUTH", "true")
    if SCALE:
        # The nodes sit behind nginx on 127.0.0.1: its X-Forwarded-For names the client.
        monkeypatch.setenv("WHARF_TRUSTED_PROXIES", "127.0.0.1")
    w = wharf_factory()
    for name, pw in passwords.items():
        extra = ["--admin"] if name == "boss" else []
        wharf_cli(w, "user", "add", name, "--email", f"{name}@example.com", "--password-stdin", *extra,
                  input=pw + "\n")
    wharf_cli(w, "org", "add", "acme", "--owner", "alice")
    wharf_cli(w, "org", "member", "acme", "mia", "--role", "member")
    return w


def push(w, repo: str, password: str) -> str:
    """Pushes a small image as alice under the tag v1 and returns its digest."""
    s = requests.Session()
    s.auth = ("alice", password)

    def blob(data: bytes) -> str:
        d = sha256_digest(data)
        r = s.post(w.v2(f"{repo}/blobs/uploads/?digest={d}"), data=data, timeout=30)
        assert r.status_code == 201, r.text
        return d

    cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    layer = os.urandom(2000)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob(cfg), "size": len(cfg)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": blob(layer), "size": len(layer)}],
    }).encode()
    r = s.put(w.v2(f"{repo}/manifests/v1"), data=manifest, headers={"Content-Type": OCI_MANIFEST}, timeout=30)
    assert r.status_code == 201, r.text
    return r.headers["Docker-Content-Digest"]


def manifest_request(w, source: str, agent: str, method: str, repo: str, reference: str) -> None:
    """One manifest request as a client at `source` (a loopback address) sends it, with an
    anonymous pull token; curl binds the source address."""
    tok = requests.get(f"{w.url}/token", params={"service": "wharf", "scope": f"repository:{repo}:pull"},
                       timeout=30).json()["token"]
    flag = "-sfI" if method == "HEAD" else "-sf"
    subprocess.run(["curl", flag, "-o", "/dev/null", "--interface", source, "-A", agent,
                    "-H", f"Authorization: Bearer {tok}", "-H", f"Accept: {OCI_MANIFEST}",
                    w.v2(f"{repo}/manifests/{reference}")], check=True, capture_output=True, timeout=30)
