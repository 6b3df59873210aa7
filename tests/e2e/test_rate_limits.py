"""Pull rate limits with real clients: docker and containerd run into the limit and print
wharf's message, HEAD requests never count, clients on other loopback addresses are counted
apart, trusted-program namespaces and exempt users show no rate-limit headers at all, and the
administrator's command line sets exemptions.

Small limits (WHARF_ANONYMOUS_PULL_LIMIT and friends) keep the tests short. In scale mode the
two nodes share their counts through PostgreSQL every 200 ms."""

from __future__ import annotations

import base64
import http.client
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import requests

from helpers import (
    OCI_MANIFEST,
    SCALE,
    free_port,
    need,
    nginx_bin,
    png,
    run,
    sha256_digest,
    wait_port,
    wharf_bin,
)

CMD = 'CMD ["/bin/sh","-c","cat /etc/hello.txt"]'
PASSWORDS = {"alice": "alice-secret-1", "bob": "bob-secret-22", "boss": "boss-secret-333"}
ANON, AUTHED = 4, 6
ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])


def wharf_cli(w, *args, input=None, check=True):
    return run([wharf_bin(), *args, "--data-dir", w.data_dir], input=input, check=check)


@pytest.fixture
def limited(wharf_factory, monkeypatch):
    """wharf with auth and rate limits on: alice owns acme, boss is an administrator."""
    monkeypatch.setenv("WHARF_AUTH", "true")
    monkeypatch.setenv("WHARF_RATE_LIMITS", "true")
    monkeypatch.setenv("WHARF_ANONYMOUS_PULL_LIMIT", str(ANON))
    monkeypatch.setenv("WHARF_AUTHENTICATED_PULL_LIMIT", str(AUTHED))
    monkeypatch.setenv("WHARF_RATE_LIMIT_SYNC_MS", "200")
    if SCALE:
        # The nodes sit behind nginx on 127.0.0.1: its X-Forwarded-For names the client.
        monkeypatch.setenv("WHARF_TRUSTED_PROXIES", "127.0.0.1")
    w = wharf_factory()
    for name, pw in PASSWORDS.items():
        extra = ["--admin"] if name == "boss" else []
        wharf_cli(w, "user", "add", name, "--email", f"{name}@example.com", "--password-stdin", *extra, input=pw + "\n")
    wharf_cli(w, "org", "add", "acme", "--owner", "alice")
    return w


def push(w, rootfs_tar, repo: str, tags: list[str]) -> None:
    """A runnable one-layer image under each tag, each tag its own manifest (a config of its
    own), so that every pull of a new tag fetches a manifest no client has cached."""
    import gzip

    auth = ("alice", PASSWORDS["alice"])
    raw = Path(rootfs_tar(f"{repo}\n")).read_bytes()
    layer = gzip.compress(raw, mtime=0)

    def blob(data: bytes) -> str:
        digest = sha256_digest(data)
        r = requests.post(f"{w.url}/v2/{repo}/blobs/uploads/?digest={digest}", data=data, auth=auth, timeout=60,
                          headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, f"push {repo} blob -> {r.status_code} {r.text[:300]}"
        return digest

    layer_d = blob(layer)
    for tag in tags:
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "config": {"Cmd": ["/bin/sh", "-c", "cat /etc/hello.txt"], "Labels": {"tag": tag}},
                             "rootfs": {"type": "layers", "diff_ids": [sha256_digest(raw)]}}).encode()
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob(config), "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_d, "size": len(layer)}],
        }).encode()
        r = requests.put(f"{w.url}/v2/{repo}/manifests/{tag}", data=manifest, auth=auth, timeout=30,
                         headers={"Content-Type": OCI_MANIFEST})
        assert r.status_code == 201, f"push {repo}:{tag} -> {r.status_code} {r.text[:300]}"


TAGS = [f"v{i}" for i in range(1, 9)]


def anonymous_token(base: str, repo: str, source: str | None = None) -> str:
    r = get(base, f"/token?service=wharf&scope=repository:{repo}:pull", source=source)
    assert r[0] == 200, r
    return json.loads(r[2])["token"]


def get(base: str, path: str, method: str = "GET", headers: dict | None = None, source: str | None = None):
    """An HTTP request from a chosen loopback source address: (status, headers, body)."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def manifest(w, repo: str, method: str = "GET", source: str | None = None, tag: str = "v1"):
    token = anonymous_token(w.url, repo, source)
    return get(w.url, f"/v2/{repo}/manifests/{tag}", method,
               {"Authorization": f"Bearer {token}", "Accept": ACCEPT}, source)


def remaining(headers: dict) -> int:
    value = headers["ratelimit-remaining"]
    assert value.endswith(";w=21600"), value
    return int(value.split(";")[0])


def settle():
    """Long enough for every node to have shared its counts (scale mode syncs every 200 ms)."""
    time.sleep(0.8 if SCALE else 0)


def test_docker_pull_beyond_the_limit_fails_with_a_clear_message(limited, docker_cli, rootfs_tar):
    w, docker = limited, docker_cli
    push(w, rootfs_tar, "alice/app", TAGS)
    refs = [f"{w.host}/alice/app:{t}" for t in TAGS]
    docker.track(*refs)
    status, headers, _ = manifest(w, "alice/app", "HEAD")
    assert status == 200 and headers["ratelimit-limit"] == f"{ANON};w=21600"
    assert remaining(headers) == ANON and headers["docker-ratelimit-source"] == "127.0.0.1"
    # Each docker pull of a new one-platform image is one manifest GET.
    for i, ref in enumerate(refs[:ANON]):
        docker("pull", ref, timeout=300)
        settle()
        status, headers, _ = manifest(w, "alice/app", "HEAD")
        assert remaining(headers) == ANON - 1 - i, headers
    r = docker("pull", refs[ANON], check=False, timeout=300)
    assert r.returncode != 0
    err = r.stderr
    assert "toomanyrequests" in err, err
    assert f"You have reached your pull rate limit of {ANON} pulls per 6 hours" in err, err
    assert f"Sign in with docker login for {AUTHED} pulls per 6 hours" in err, err
    # HEAD requests (docker's version checks) still answer and never count.
    for _ in range(3):
        status, headers, _ = manifest(w, "alice/app", "HEAD")
        assert status == 200 and remaining(headers) == 0
    status, headers, body = manifest(w, "alice/app")
    assert status == 429 and b"TOOMANYREQUESTS" in body
    assert 0 < int(headers["retry-after"]) <= 21600
    # Signed in, the user's own quota applies.
    try:
        docker("login", w.host, "-u", "bob", "--password-stdin", input=PASSWORDS["bob"])
        docker("pull", refs[ANON], timeout=300)
    finally:
        docker("logout", w.host, check=False)


def test_containerd_hits_the_limit(limited, containerd, rootfs_tar):
    w = limited
    push(w, rootfs_tar, "alice/ctr", TAGS)
    refs = [f"{w.host}/alice/ctr:{t}" for t in TAGS[:ANON + 1]]
    ctr, ns = containerd.ctr, ["-n", f"wharf-rl-{w.port}"]
    try:
        for ref in refs[:ANON]:
            ctr(*ns, "images", "pull", "--plain-http", "--snapshotter", "native", ref, timeout=300)
            settle()
        r = ctr(*ns, "images", "pull", "--plain-http", "--snapshotter", "native", refs[ANON], check=False, timeout=300)
        assert r.returncode != 0
        out = r.stdout + r.stderr
        assert "429" in out and "pull rate limit" in out, out
    finally:
        ctr(*ns, "images", "rm", *refs, check=False)


def test_loopback_addresses_are_counted_apart(limited, rootfs_tar):
    w = limited
    push(w, rootfs_tar, "alice/app", ["v1"])
    for source in ("127.0.0.2", "127.0.0.3"):
        status, headers, _ = manifest(w, "alice/app", source=source)
        assert status == 200, status
        assert headers["docker-ratelimit-source"] == source
        assert remaining(headers) == ANON - 1
    settle()
    for _ in range(ANON - 1):
        assert manifest(w, "alice/app", source="127.0.0.2")[0] == 200
        settle()
    assert manifest(w, "alice/app", source="127.0.0.2")[0] == 429
    status, headers, _ = manifest(w, "alice/app", source="127.0.0.3")
    assert status == 200 and remaining(headers) == ANON - 2


NGINX_BIND = """\
{user}worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    server {{
        listen 127.0.0.2:{port};
        listen 127.0.0.3:{port};
        client_max_body_size 0;
        location / {{
            # Connect to wharf from the address the client reached: docker's pulls through
            # 127.0.0.2 reach wharf from 127.0.0.2.
            proxy_bind $server_addr;
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_buffering off;
        }}
    }}
}}
"""


@pytest.fixture
def bound_proxy(limited, tmp_path):
    """nginx on 127.0.0.2:P and 127.0.0.3:P that connects to wharf from the same address."""
    binary = nginx_bin()
    need(binary is not None, "nginx not installed (scripts/backends.sh install)")
    d = tmp_path / "bind-nginx"
    (d / "tmp").mkdir(parents=True)
    port = free_port()
    user = "user root root;\n" if os.geteuid() == 0 else ""
    (d / "nginx.conf").write_text(NGINX_BIND.format(user=user, dir=d, port=port, upstream=limited.port))
    proc = subprocess.Popen([binary, "-p", str(d), "-e", str(d / "error.log"), "-c", str(d / "nginx.conf"),
                             "-g", "daemon off;"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert wait_port(port, 10, proc, host="127.0.0.2"), (Path(d / "error.log").read_text())
        yield port
    finally:
        proc.terminate()
        proc.wait(15)


def test_docker_from_two_loopback_addresses(limited, bound_proxy, docker_cli, rootfs_tar):
    w, docker, port = limited, docker_cli, bound_proxy
    push(w, rootfs_tar, "alice/app", TAGS)
    via = {src: [f"{src}:{port}/alice/app:{t}" for t in TAGS] for src in ("127.0.0.2", "127.0.0.3")}
    docker.track(*via["127.0.0.2"], *via["127.0.0.3"])
    for ref in via["127.0.0.2"][:ANON]:
        docker("pull", ref, timeout=300)
        settle()
    refused = docker("pull", via["127.0.0.2"][ANON], check=False, timeout=300)
    assert refused.returncode != 0 and "from 127.0.0.2" in refused.stderr, refused.stderr
    docker("pull", via["127.0.0.3"][ANON], timeout=300)  # another address, its own quota
    settle()
    status, headers, _ = manifest(w, "alice/app", "HEAD", source="127.0.0.3")
    assert status == 200 and remaining(headers) == ANON - 1


def test_exempt_images_and_users_show_no_headers(limited, rootfs_tar):
    w = limited
    push(w, rootfs_tar, "acme/tool", ["v1"])
    push(w, rootfs_tar, "alice/app", ["v1"])
    # acme joins the Sponsored Open Source program: its images are never limited.
    boss_jwt = requests.post(f"{w.url}/v2/users/login", json={"username": "boss", "password": PASSWORDS["boss"]},
                             timeout=30).json()["token"]
    alice_jwt = requests.post(f"{w.url}/v2/users/login", json={"username": "alice", "password": PASSWORDS["alice"]},
                              timeout=30).json()["token"]
    applied = requests.post(f"{w.url}/v2/orgs/acme/programs", headers={"Authorization": f"Bearer {alice_jwt}"}, json={
        "program": "open_source", "legal_name": "Acme OSS", "website": "https://acme.example", "phone": "+1 555 0100",
        "email": "oss@acme.example", "logo": base64.b64encode(png(512, 512)).decode()}, timeout=30)
    assert applied.status_code == 201, applied.text
    decided = requests.post(f"{w.url}/v2/admin/program-applications/{applied.json()['id']}",
                            headers={"Authorization": f"Bearer {boss_jwt}"}, json={"decision": "approve"}, timeout=30)
    assert decided.status_code == 200, decided.text
    if SCALE:
        time.sleep(5.5)  # each node remembers a namespace's program for 5 s
    for _ in range(ANON + 2):
        status, headers, _ = manifest(w, "acme/tool")
        assert status == 200
        assert not {"ratelimit-limit", "ratelimit-remaining", "docker-ratelimit-source"} & set(headers), headers
    # The administrator exempts an address range from the command line.
    status, headers, _ = manifest(w, "alice/app", source="127.0.0.5")
    assert status == 200 and "ratelimit-limit" in headers
    refused = wharf_cli(w, "ratelimit", "set", "range", "127.0.0.4/30", "--exempt", "--as", "alice", check=False)
    assert refused.returncode != 0 and "not an administrator" in refused.stderr
    out = wharf_cli(w, "ratelimit", "set", "range", "127.0.0.4/30", "--exempt", "--note", "lab", "--as", "boss").stdout
    assert "range 127.0.0.4/30: exempt" in out
    wharf_cli(w, "ratelimit", "set", "user", "bob", "--pulls", "1000", "--as", "boss")
    listed = wharf_cli(w, "ratelimit", "list").stdout
    assert "range\t127.0.0.4/30\texempt\tlab" in listed and "user\tbob\t1000 pulls per window" in listed
    time.sleep(1.5)  # every node reloads the rules at its next sync (200 ms here)
    for _ in range(ANON + 2):
        status, headers, _ = manifest(w, "alice/app", source="127.0.0.5")
        assert status == 200 and "ratelimit-limit" not in headers
    wharf_cli(w, "ratelimit", "remove", "range", "127.0.0.4/30", "--as", "boss")
    time.sleep(1.5)
    # Limited again: the pulls made while exempt were not counted.
    status, headers, _ = manifest(w, "alice/app", source="127.0.0.5")
    assert status == 200 and remaining(headers) == ANON - 2
