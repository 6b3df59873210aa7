"""Scale-out: stateless wharf nodes sharing one PostgreSQL database and one S3 bucket.

These run whenever the backends are configured (WHARF_TEST_PG_URL and WHARF_TEST_S3_*, from
``source scripts/backends.sh start``), in either WHARF_E2E_BACKEND mode; without them they
skip (fail with CI=true). Every cluster gets its own database and S3 prefix.

- an upload whose POST, PATCH, PATCH, PUT go to different nodes; the blob read on the other;
- skopeo and docker push through node 1, pull through node 2;
- deletes and tag moves on node 1 are seen at once on node 2 (no stale per-node caches);
- a registry token issued by node 1 is accepted by node 2;
- kill -9 of node 1 in the middle of a large push: the push retried through node 2 works, the
  upload session itself can be continued on node 2, everything acknowledged stays pullable;
  and the same under concurrent pushers going through nginx;
- a 3-node Garage cluster (replication factor 3) losing a node (SIGKILL) while wharf pushes
  and pulls: nothing fails, everything acknowledged is there afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from helpers import (
    OCI_MANIFEST,
    S3Target,
    make_rootfs_dir,
    rebase,
    require_bin,
    run,
    sha256_digest,
    umoci_image,
    need,
    require_scale_backends,
    wharf_bin,
)

MiB = 1024 * 1024
CT_OCTET = {"Content-Type": "application/octet-stream"}


# --------------------------------------------------------------------------------------
# small protocol helpers (every failure message names the request, the node and the answer)
# --------------------------------------------------------------------------------------
def describe(r: requests.Response, who: str = "") -> str:
    hdrs = {k: v for k, v in r.headers.items() if k.lower() in (
        "location", "range", "docker-content-digest", "docker-upload-uuid", "content-length",
        "content-type", "www-authenticate")}
    req = r.request
    return f"{req.method} {req.url}{' [' + who + ']' if who else ''} -> {r.status_code} {hdrs} {r.text[:400]!r}"


def expect(r: requests.Response, status: int, who: str = "") -> requests.Response:
    assert r.status_code == status, f"expected {status}: {describe(r, who)}"
    return r


def with_digest(location: str, digest: str) -> str:
    return f"{location}{'&' if '?' in location else '?'}digest={digest}"


@dataclass
class Image:
    repo: str
    tag: str
    manifest: bytes
    digest: str
    blobs: dict = field(default_factory=dict)  # digest -> size


def upload_blob(s: requests.Session, base: str, repo: str, data: bytes, chunk: int | None = None) -> str:
    """POST, PATCH chunks (Content-Range) or one monolithic PUT; return the digest (201)."""
    digest = sha256_digest(data)
    r = expect(s.post(f"{base}/v2/{repo}/blobs/uploads/", timeout=60), 202)
    loc = r.headers["Location"]
    loc = loc if loc.startswith("http") else base + loc
    if chunk:
        for off in range(0, len(data), chunk):
            piece = data[off: off + chunk]
            r = s.patch(loc, data=piece, timeout=120,
                        headers={**CT_OCTET, "Content-Range": f"{off}-{off + len(piece) - 1}"})
            expect(r, 202)
            loc = r.headers["Location"]
            loc = loc if loc.startswith("http") else base + loc
        r = s.put(with_digest(loc, digest), timeout=120)
    else:
        r = s.put(with_digest(loc, digest), data=data, headers=CT_OCTET, timeout=120)
    expect(r, 201)
    assert r.headers.get("Docker-Content-Digest") == digest, describe(r)
    return digest


def push_image(s: requests.Session, base: str, repo: str, tag: str, layers: list[bytes],
               chunk: int | None = None) -> Image:
    blobs = {}
    descs = []
    for layer in layers:
        d = upload_blob(s, base, repo, layer, chunk)
        blobs[d] = len(layer)
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": len(layer)})
    config = json.dumps({"architecture": "amd64", "os": "linux", "nonce": os.urandom(8).hex()}).encode()
    cd = upload_blob(s, base, repo, config)
    blobs[cd] = len(config)
    body = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(config)},
        "layers": descs,
    }).encode()
    r = expect(s.put(f"{base}/v2/{repo}/manifests/{tag}", data=body,
                     headers={"Content-Type": OCI_MANIFEST}, timeout=60), 201)
    assert r.headers.get("Docker-Content-Digest") == sha256_digest(body), describe(r)
    return Image(repo, tag, body, sha256_digest(body), blobs)


def stream_digest(s: requests.Session, url: str) -> tuple[int, str | None, int]:
    with s.get(url, stream=True, timeout=120) as r:
        if r.status_code != 200:
            return r.status_code, None, 0
        h, n = hashlib.sha256(), 0
        for piece in r.iter_content(1 * MiB):
            h.update(piece)
            n += len(piece)
        return 200, "sha256:" + h.hexdigest(), n


def check_image(base: str, img: Image, who: str) -> list[str]:
    """Everything of an acknowledged image is served by ``base``: manifest bytes, blobs by digest."""
    s = requests.Session()
    problems = []
    for ref in (img.tag, img.digest):
        r = s.get(f"{base}/v2/{img.repo}/manifests/{ref}", headers={"Accept": OCI_MANIFEST}, timeout=30)
        if r.status_code != 200 or r.content != img.manifest or r.headers.get("Docker-Content-Digest") != img.digest:
            problems.append(f"[{who}] manifest {img.repo}:{ref}: {describe(r)} identical={r.content == img.manifest}")
    for d, size in img.blobs.items():
        status, got, n = stream_digest(s, f"{base}/v2/{img.repo}/blobs/{d}")
        if status != 200 or got != d or n != size:
            problems.append(f"[{who}] blob {img.repo}@{d} ({size} B): status {status}, {n} B, sha256 {got}")
    return problems


def check_all(base: str, images: list[Image], who: str) -> None:
    problems = [p for img in images for p in check_image(base, img, who)]
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:40])


# --------------------------------------------------------------------------------------
# (a) one upload, every request on another node
# --------------------------------------------------------------------------------------
def test_chunked_upload_across_nodes(cluster_factory):
    c = cluster_factory()
    n1, n2 = c.nodes
    repo = "scale/chunks"
    data = os.urandom(5 * MiB + 4321)
    digest = sha256_digest(data)
    a, b = 2 * MiB, 4 * MiB

    r = expect(requests.post(n1.v2(f"{repo}/blobs/uploads/"), timeout=30), 202, "node1")
    assert r.headers.get("Range") == "0-0", describe(r, "node1")
    loc = r.headers["Location"]

    # PATCH with Content-Range on node 2
    r = requests.patch(rebase(n2, loc), data=data[:a], headers={**CT_OCTET, "Content-Range": f"0-{a - 1}"}, timeout=60)
    expect(r, 202, "node2")
    assert r.headers.get("Range") == f"0-{a - 1}", describe(r, "node2")
    loc = r.headers["Location"]

    # the session's status on node 1
    r = expect(requests.get(rebase(n1, loc), timeout=30), 204, "node1")
    assert r.headers.get("Range") == f"0-{a - 1}", describe(r, "node1")

    # streamed PATCH (chunked transfer encoding, no Content-Range, like docker) on node 1
    r = requests.patch(rebase(n1, loc), data=iter([data[a: a + MiB], data[a + MiB: b]]), timeout=60)
    expect(r, 202, "node1")
    assert r.headers.get("Range") == f"0-{b - 1}", describe(r, "node1")
    loc = r.headers["Location"]

    # PUT with the last piece as its body on node 2
    r = requests.put(with_digest(rebase(n2, loc), digest), data=data[b:], headers=CT_OCTET, timeout=60)
    expect(r, 201, "node2")
    assert r.headers.get("Docker-Content-Digest") == digest, describe(r, "node2")

    for node, name in ((n1, "node1"), (n2, "node2")):
        g = requests.get(node.v2(f"{repo}/blobs/{digest}"), timeout=60)
        expect(g, 200, name)
        assert g.content == data, f"[{name}] GET blob: {len(g.content)} B, not the uploaded bytes"
        h = requests.head(node.v2(f"{repo}/blobs/{digest}"), timeout=30)
        assert h.status_code == 200 and h.headers.get("Content-Length") == str(len(data)), describe(h, name)
        rg = requests.get(node.v2(f"{repo}/blobs/{digest}"), headers={"Range": "bytes=3000000-3000099"}, timeout=30)
        assert rg.status_code == 206 and rg.content == data[3000000:3000100], describe(rg, name)
    # the upload session is gone everywhere once it is committed
    for node, name in ((n1, "node1"), (n2, "node2")):
        st = requests.get(rebase(node, loc), timeout=30)
        assert st.status_code == 404, describe(st, name)


# --------------------------------------------------------------------------------------
# (b) real clients: push through node 1, pull through node 2
# --------------------------------------------------------------------------------------
def test_skopeo_push_node1_pull_node2(cluster_factory, tmp_path):
    require_bin("skopeo", "umoci")
    c = cluster_factory()
    n1, n2 = c.nodes
    layout = tmp_path / "layout"
    umoci_image(layout, "v1", make_rootfs_dir(tmp_path / "rootfs", "scale skopeo\n"))
    index = json.loads((layout / "index.json").read_text())
    want = index["manifests"][0]["digest"]

    run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}:v1", f"docker://{n1.host}/scale/sko:v1"])
    raw = run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{n2.host}/scale/sko:v1"]).stdout
    assert sha256_digest(raw.rstrip("\n").encode()) == want or sha256_digest(raw.encode()) == want
    out = tmp_path / "pulled"
    run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{n2.host}/scale/sko:v1", f"dir:{out}"])
    assert sha256_digest((out / "manifest.json").read_bytes()) == want
    manifest = json.loads((out / "manifest.json").read_bytes())
    for d in [manifest["config"]["digest"], *[x["digest"] for x in manifest["layers"]]]:
        assert sha256_digest((out / d.split(":")[1]).read_bytes()) == d
    info = json.loads(run(["skopeo", "inspect", "--tls-verify=false", f"docker://{n2.host}/scale/sko:v1"]).stdout)
    assert info["Digest"] == want


def test_docker_push_node1_pull_node2(cluster_factory, docker_cli, rootfs_tar):
    c = cluster_factory()
    n1, n2 = c.nodes
    text = "scale docker\n"
    ref1, ref2 = f"{n1.host}/scale/dock:v1", f"{n2.host}/scale/dock:v1"
    docker_cli("import", "-c", 'CMD ["/bin/sh","-c","cat /etc/hello.txt"]', str(rootfs_tar(text)), ref1)
    docker_cli.track(ref1, ref2)
    out = docker_cli("push", ref1, timeout=300).stdout
    m = re.search(r"digest: (sha256:[0-9a-f]{64})", out)
    assert m, out
    pulled = docker_cli("pull", ref2, timeout=300).stdout
    assert m.group(1) in pulled, pulled
    assert docker_cli("run", "--rm", "--network", "none", ref2, timeout=120).stdout == text


# --------------------------------------------------------------------------------------
# (c) writes on node 1 are seen at once on node 2
# --------------------------------------------------------------------------------------
def test_manifest_delete_seen_at_once_on_other_node(cluster_factory):
    c = cluster_factory()
    n1, n2 = c.nodes
    s = requests.Session()
    img = push_image(s, n1.url, "scale/del", "v1", [os.urandom(2000)])
    acc = {"Accept": OCI_MANIFEST}
    # node 2 reads it first (whatever it caches, it caches now)
    for ref in ("v1", img.digest):
        expect(s.get(n2.v2(f"scale/del/manifests/{ref}"), headers=acc, timeout=10), 200, "node2")
        expect(s.head(n2.v2(f"scale/del/manifests/{ref}"), headers=acc, timeout=10), 200, "node2")
    expect(s.delete(n1.v2(f"scale/del/manifests/{img.digest}"), timeout=10), 202, "node1")
    # immediately: no sleep
    for ref in (img.digest, "v1"):
        r = s.get(n2.v2(f"scale/del/manifests/{ref}"), headers=acc, timeout=10)
        assert r.status_code == 404, "node 2 still serves a manifest deleted on node 1: " + describe(r, "node2")
        r = s.head(n2.v2(f"scale/del/manifests/{ref}"), headers=acc, timeout=10)
        assert r.status_code == 404, "node 2 still serves a manifest deleted on node 1: " + describe(r, "node2")
    r = s.get(n2.v2("scale/del/tags/list"), timeout=10)
    assert r.status_code == 404 or "v1" not in (r.json().get("tags") or []), describe(r, "node2")


def test_tag_moves_and_tag_delete_seen_at_once_on_other_node(cluster_factory):
    c = cluster_factory()
    n1, n2 = c.nodes
    s = requests.Session()
    acc = {"Accept": OCI_MANIFEST}
    first = push_image(s, n1.url, "scale/move", "latest", [os.urandom(1000)])
    r = expect(s.get(n2.v2("scale/move/manifests/latest"), headers=acc, timeout=10), 200, "node2")
    assert r.headers.get("Docker-Content-Digest") == first.digest
    second = push_image(s, n1.url, "scale/move", "latest", [os.urandom(1000)])
    r = expect(s.get(n2.v2("scale/move/manifests/latest"), headers=acc, timeout=10), 200, "node2")
    assert r.headers.get("Docker-Content-Digest") == second.digest and r.content == second.manifest, (
        f"node 2 serves the old manifest for a tag moved on node 1 (want {second.digest}): " + describe(r, "node2"))
    expect(s.delete(n1.v2("scale/move/manifests/latest"), timeout=10), 202, "node1")
    r = s.get(n2.v2("scale/move/manifests/latest"), headers=acc, timeout=10)
    assert r.status_code == 404, "node 2 still serves a tag deleted on node 1: " + describe(r, "node2")


def test_blob_delete_seen_at_once_on_other_node(cluster_factory):
    c = cluster_factory()
    n1, n2 = c.nodes
    s = requests.Session()
    data = os.urandom(3000)
    d = upload_blob(s, n1.url, "scale/blobdel", data)
    expect(s.get(n2.v2(f"scale/blobdel/blobs/{d}"), timeout=10), 200, "node2")
    expect(s.delete(n1.v2(f"scale/blobdel/blobs/{d}"), timeout=10), 202, "node1")
    for method in (s.get, s.head):
        r = method(n2.v2(f"scale/blobdel/blobs/{d}"), timeout=10)
        assert r.status_code == 404, "node 2 still serves a blob deleted on node 1: " + describe(r, "node2")


# --------------------------------------------------------------------------------------
# accounts: one signing secret for the whole cluster
# --------------------------------------------------------------------------------------
def test_token_from_node1_works_on_node2(cluster_factory, monkeypatch):
    monkeypatch.setenv("WHARF_AUTH", "true")
    c = cluster_factory()
    n1, n2 = c.nodes
    # cluster_factory put WHARF_DATABASE/WHARF_STORAGE of this cluster in the environment
    run([wharf_bin(), "user", "add", "alice", "--password-stdin", "--data-dir", n1.data_dir], input="alice-pw-123\n")
    r = requests.get(f"{n1.url}/token", params={"service": "wharf", "scope": "repository:alice/app:pull,push"},
                     auth=("alice", "alice-pw-123"), timeout=10)
    expect(r, 200, "node1")
    tok = r.json()["token"]
    hdr = {"Authorization": f"Bearer {tok}"}
    r = requests.post(n2.v2("alice/app/blobs/uploads/"), headers=hdr, timeout=10)
    assert r.status_code == 202, "a token issued by node 1 is refused by node 2: " + describe(r, "node2")
    # and the other way round, with basic auth too
    r = requests.get(f"{n2.url}/token", params={"service": "wharf", "scope": "repository:alice/app:pull"},
                     auth=("alice", "alice-pw-123"), timeout=10)
    expect(r, 200, "node2")
    r = requests.get(n1.v2("alice/app/tags/list"), headers={"Authorization": f"Bearer {r.json()['token']}"}, timeout=10)
    assert r.status_code in (200, 404), describe(r, "node1")
    assert requests.post(n2.v2("alice/app/blobs/uploads/"), auth=("alice", "alice-pw-123"), timeout=10).status_code == 202


# --------------------------------------------------------------------------------------
# (d) kill -9 of a node in the middle of a large push
# --------------------------------------------------------------------------------------
BIG = 64 * MiB
BIG_CHUNK = 8 * MiB


def _kill_mid_patch(c, repo: str, data: bytes) -> tuple[str, int]:
    """POST + 3 PATCHes on node 1, then SIGKILL node 1 while the 4th PATCH is streaming.
    Returns (the session's Location, bytes acknowledged by 202s)."""
    n1 = c.nodes[0]
    s = requests.Session()
    r = expect(s.post(n1.v2(f"{repo}/blobs/uploads/"), timeout=30), 202, "node1")
    loc = r.headers["Location"]
    acked = 0
    for _ in range(3):
        piece = data[acked: acked + BIG_CHUNK]
        r = s.patch(rebase(n1, loc), data=piece, timeout=120,
                    headers={**CT_OCTET, "Content-Range": f"{acked}-{acked + len(piece) - 1}"})
        expect(r, 202, "node1")
        acked += len(piece)
        loc = r.headers["Location"]
    halfway = threading.Event()

    def slow_body():
        sent = 0
        piece = data[acked: acked + BIG_CHUNK]
        while sent < len(piece):
            yield piece[sent: sent + 256 * 1024]
            sent += 256 * 1024
            if sent >= len(piece) // 2:
                halfway.set()
                time.sleep(0.05)

    outcome: list = []

    def send():
        try:
            outcome.append(s.patch(rebase(n1, loc), data=slow_body(), timeout=60,
                                   headers={**CT_OCTET, "Content-Range": f"{acked}-{acked + BIG_CHUNK - 1}"}))
        except requests.RequestException as e:
            outcome.append(e)

    t = threading.Thread(target=send)
    t.start()
    assert halfway.wait(60), "the 4th PATCH never got half-way"
    n1.kill9()
    t.join(90)
    assert not t.is_alive(), "the PATCH to the killed node hung"
    assert outcome and not (isinstance(outcome[0], requests.Response) and outcome[0].status_code == 202), (
        f"the PATCH cut off by kill -9 was acknowledged: {outcome}")
    return loc, acked


def test_kill9_node_mid_push_then_retry_on_other_node(cluster_factory):
    c = cluster_factory()
    n1, n2 = c.nodes
    s = requests.Session()
    acked = [push_image(s, n1.url, f"scale/crash{i}", "v1", [os.urandom(random.randint(100_000, 3 * MiB))], chunk=MiB)
             for i in range(3)]
    big = os.urandom(BIG)
    _kill_mid_patch(c, "scale/big", big)
    # a client retries the whole push through the surviving node
    acked.append(push_image(s, n2.url, "scale/big", "v1", [big], chunk=BIG_CHUNK))
    check_all(n2.url, acked, "node2 with node1 dead")
    check_all(c.url, acked, "nginx with node1 dead")
    n1.start(port=n1.port)
    check_all(n1.url, acked, "node1 restarted")
    # the restarted node takes pushes again
    acked.append(push_image(s, n1.url, "scale/after", "v1", [os.urandom(50_000)], chunk=20_000))
    check_all(n2.url, acked[-1:], "node2")


def test_upload_session_continues_on_other_node_after_kill9(cluster_factory):
    c = cluster_factory()
    n1, n2 = c.nodes
    big = os.urandom(BIG // 2 + 12345)
    digest = sha256_digest(big)
    loc, acked = _kill_mid_patch(c, "scale/resume", big)
    st = requests.get(rebase(n2, loc), timeout=30)
    assert st.status_code == 204, f"the upload session begun on the killed node 1 is not usable on node 2: {describe(st, 'node2')}"
    m = re.fullmatch(r"0-(\d+)", st.headers.get("Range", ""))
    assert m, describe(st, "node2")
    have = int(m.group(1)) + 1
    assert acked <= have <= len(big), f"node 2 reports {have} B stored, {acked} B were acknowledged: {describe(st, 'node2')}"
    loc = st.headers.get("Location", loc)
    r = requests.patch(rebase(n2, loc), data=big[have:], timeout=120,
                       headers={**CT_OCTET, "Content-Range": f"{have}-{len(big) - 1}"})
    expect(r, 202, "node2")
    r = requests.put(with_digest(rebase(n2, r.headers["Location"]), digest), timeout=120)
    expect(r, 201, "node2")
    status, got, n = stream_digest(requests.Session(), n2.v2(f"scale/resume/blobs/{digest}"))
    assert (status, got, n) == (200, digest, len(big)), (status, got, n)


@dataclass
class Ledger:
    lock: threading.Lock = field(default_factory=threading.Lock)
    images: list = field(default_factory=list)  # acknowledged Image
    blobs: int = 0
    failures: list = field(default_factory=list)  # (time, what): retried
    gave_up: list = field(default_factory=list)


def _retrying_pusher(idx: int, base: str, stop: threading.Event, ledger: Ledger) -> None:
    s = requests.Session()
    rng = random.Random(idx)
    repo = f"scale/nginx{idx}"

    def attempt(what: str, fn):
        for _ in range(6):
            try:
                return fn()
            except (AssertionError, requests.RequestException, KeyError) as e:
                with ledger.lock:
                    ledger.failures.append((time.monotonic(), f"{repo} {what}: {str(e)[:300]}"))
                s.close()
                time.sleep(0.2)
        with ledger.lock:
            ledger.gave_up.append(f"{repo} {what}")
        raise RuntimeError("gave up")

    n = 0
    try:
        while not stop.is_set():
            layers = [os.urandom(rng.randint(1 * MiB, 5 * MiB)) for _ in range(rng.randint(1, 2))]
            blobs, descs = {}, []
            for layer in layers:
                d = attempt("blob", lambda: upload_blob(s, base, repo, layer, chunk=MiB))
                blobs[d] = len(layer)
                descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": len(layer)})
                with ledger.lock:
                    ledger.blobs += 1
            config = json.dumps({"pusher": idx, "n": n, "nonce": os.urandom(8).hex()}).encode()
            cd = attempt("config", lambda: upload_blob(s, base, repo, config))
            blobs[cd] = len(config)
            body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd,
                                          "size": len(config)}, "layers": descs}).encode()
            tag = f"t{n}"

            def put():
                expect(s.put(f"{base}/v2/{repo}/manifests/{tag}", data=body,
                             headers={"Content-Type": OCI_MANIFEST}, timeout=60), 201)

            attempt("manifest", put)
            with ledger.lock:
                ledger.images.append(Image(repo, tag, body, sha256_digest(body), blobs))
            n += 1
    except RuntimeError:
        pass


def test_kill9_node_under_pushes_through_nginx(cluster_factory):
    c = cluster_factory()
    n1, n2 = c.nodes
    ledger, stop, t_kill = Ledger(), threading.Event(), []
    threads = [threading.Thread(target=_retrying_pusher, args=(i, c.url, stop, ledger), daemon=True)
               for i in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and ledger.blobs < 12 and not ledger.gave_up:
        time.sleep(0.05)
    before = len(ledger.images)
    t_kill.append(time.monotonic())
    n1.kill9()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and len(ledger.images) < before + 8 and not ledger.gave_up:
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "pushers hung"
    late = [f"+{ts - t_kill[0]:.1f}s {what}" for ts, what in ledger.failures if ts - t_kill[0] > 3]
    early = [f"{ts - t_kill[0]:+.1f}s {what}" for ts, what in ledger.failures if ts - t_kill[0] <= 3]
    print(f"{len(ledger.images)} images acknowledged ({before} before the kill); "
          f"{len(early)} failed requests around the kill (retried):\n" + "\n".join(early[:20]))
    assert not ledger.gave_up, "pushes failed 6 times in a row: " + "; ".join(ledger.gave_up)
    assert not late, "requests failed more than 3 s after node 1 was killed (node 2 alone should serve them):\n" + "\n".join(late[:20])
    assert len(ledger.images) >= before + 8, f"only {len(ledger.images) - before} images pushed after the kill"
    check_all(c.url, ledger.images, "nginx, node1 dead")
    n1.start(port=n1.port)
    check_all(n1.url, ledger.images, "node1 restarted")


# --------------------------------------------------------------------------------------
# (e) a 3-node Garage cluster loses a node while wharf pushes and pulls
# --------------------------------------------------------------------------------------
def garage_bin() -> str | None:
    for cand in (os.environ.get("WHARF_TEST_GARAGE_BIN"), shutil.which("garage"),
                 str(Path.home() / ".cargo/bin/garage")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class GarageCluster:
    """Three Garage nodes on loopback (S3/RPC ports 3910/3911, 3920/3921, 3930/3931),
    replication factor 3, one key and one bucket."""

    PORTS = [(3910, 3911), (3920, 3921), (3930, 3931)]

    def __init__(self, base: Path, binary: str):
        self.base, self.bin = Path(base), binary
        self.secret = os.urandom(32).hex()
        self.procs: list[subprocess.Popen | None] = [None, None, None]
        self.ids: list[str] = []
        self.bucket = "wharf-ha"
        self.access_key = self.secret_key = ""

    def conf(self, i: int) -> Path:
        return self.base / f"n{i + 1}.toml"

    def g(self, i: int, *args, check=True, timeout=60):
        return run([self.bin, "-c", self.conf(i), *args], check=check, timeout=timeout)

    def start_node(self, i: int) -> None:
        log = open(self.base / f"n{i + 1}.log", "a")
        self.procs[i] = subprocess.Popen([self.bin, "-c", str(self.conf(i)), "server"], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def start(self) -> "GarageCluster":
        busy = [p for pair in self.PORTS for p in pair if not port_free(p)]
        if busy:
            who = run(["ss", "-ltnp"], check=False).stdout
            raise AssertionError(f"Garage cluster ports {busy} are taken (a crashed earlier run?):\n{who}")
        self.base.mkdir(parents=True, exist_ok=True)
        for i, (s3, rpc) in enumerate(self.PORTS):
            d = self.base / f"n{i + 1}"
            self.conf(i).write_text(
                f'metadata_dir = "{d}/meta"\ndata_dir = "{d}/data"\ndb_engine = "sqlite"\n'
                f'replication_factor = 3\nrpc_bind_addr = "127.0.0.1:{rpc}"\n'
                f'rpc_public_addr = "127.0.0.1:{rpc}"\nrpc_secret = "{self.secret}"\n'
                f'[s3_api]\ns3_region = "garage"\napi_bind_addr = "127.0.0.1:{s3}"\n'
                f'root_domain = ".s3.garage.localhost"\n')
            self.start_node(i)
        for i in range(3):
            self.ids.append(self._wait_node_id(i))
        for i in (1, 2):
            self.g(0, "node", "connect", f"{self.ids[i]}@127.0.0.1:{self.PORTS[i][1]}")
        for i in range(3):
            self.g(0, "layout", "assign", "-z", f"dc{i + 1}", "-c", "1G", self.ids[i])
        self.g(0, "layout", "apply", "--version", "1")
        self.wait_healthy(60)
        out = self.g(0, "key", "create", "wharf-ha-key").stdout
        self.access_key = re.search(r"Key ID:\s*(GK[0-9a-f]+)", out).group(1)
        self.secret_key = re.search(r"Secret key:\s*([0-9a-f]+)", out).group(1)
        self.g(0, "bucket", "create", self.bucket)
        self.g(0, "bucket", "allow", "--read", "--write", "--owner", self.bucket, "--key", "wharf-ha-key")
        return self

    def _wait_node_id(self, i: int) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = subprocess.run([self.bin, "-c", str(self.conf(i)), "node", "id", "-q"], capture_output=True, text=True)
            if r.returncode == 0 and r.stdout.strip():
                return r.stdout.strip().split("@")[0]
            if self.procs[i].poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"garage node {i + 1} not up:\n{(self.base / f'n{i + 1}.log').read_text()[-3000:]}")

    def healthy(self) -> bool:
        """Every running node sees all three nodes healthy and knows their status (a node whose
        status it has not received yet shows Hostname "?")."""
        for i, p in enumerate(self.procs):
            if p is None or p.poll() is not None:
                return False
            r = subprocess.run([self.bin, "-c", str(self.conf(i)), "status"], capture_output=True, text=True,
                               timeout=30)
            if r.returncode != 0 or "FAILED NODES" in r.stdout:
                return False
            known = 0
            for line in r.stdout.split("==== HEALTHY NODES ====", 1)[-1].splitlines()[2:]:
                cols = line.split()
                if cols and cols[0] in {x[:16] for x in self.ids} and cols[1] != "?":
                    known += 1
            if known != 3:
                return False
        return True

    def wait_healthy(self, timeout: float) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.healthy():
                return time.monotonic() - t0
            time.sleep(0.5)
        st = self.g(0, "status", check=False).stdout
        raise AssertionError(f"garage cluster not healthy after {timeout}s:\n{st}")

    def kill9(self, i: int) -> None:
        p = self.procs[i]
        if p and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait(10)

    def stop(self) -> None:
        for p in self.procs:
            if p and p.poll() is None:
                p.terminate()
        for p in self.procs:
            if p:
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(
            f"--- garage n{i + 1} ---\n" + "\n".join((self.base / f"n{i + 1}.log").read_text(errors="replace").splitlines()[-n:])
            for i in range(3) if (self.base / f"n{i + 1}.log").exists())


@pytest.fixture
def garage3(tmp_path, request):
    """Set up before (torn down after) the test's cluster_factory: list it first."""
    require_scale_backends()
    binary = garage_bin()
    need(binary is not None, "garage not installed (scripts/backends.sh install)")
    gc = GarageCluster(tmp_path / "garage3", binary)
    try:
        gc.start()
        yield gc
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is None or rep.failed:
            print(gc.log_tail())
        gc.stop()


def test_garage_node_loss_under_pushes(garage3, cluster_factory):
    s3 = S3Target(endpoint=f"http://127.0.0.1:{GarageCluster.PORTS[0][0]}", region="garage", bucket=garage3.bucket,
                  access_key=garage3.access_key, secret_key=garage3.secret_key)
    c = cluster_factory(n_nodes=1, direct=True, s3=s3)
    base = c.url
    images: list[Image] = []
    failures: list[str] = []
    phase = ["before"]
    counts: dict = {}
    stop = threading.Event()

    def worker():
        s = requests.Session()
        rng = random.Random(7)
        i = 0
        while not stop.is_set():
            try:
                img = push_image(s, base, f"ha/img{i % 5}", f"t{i}",
                                 [os.urandom(rng.randint(16_000, 300_000)) for _ in range(2)])
                images.append(img)
                counts[phase[0]] = counts.get(phase[0], 0) + 1
                old = rng.choice(images)
                problems = check_image(base, old, f"pull during '{phase[0]}'")
                failures.extend(problems)
            except (AssertionError, requests.RequestException) as e:
                failures.append(f"[{phase[0]}] push {i}: {str(e)[:500]}")
            i += 1

    t = threading.Thread(target=worker, daemon=True)
    t.start()
    time.sleep(4)
    phase[0] = "garage node 3 killed"
    garage3.kill9(2)
    time.sleep(12)
    phase[0] = "garage node 3 rejoining"
    garage3.start_node(2)
    took = garage3.wait_healthy(120)
    phase[0] = "after"
    time.sleep(4)
    stop.set()
    t.join(120)
    assert not t.is_alive(), "the pusher hung"
    print(f"pushes per phase: {counts}; node 3 rejoined in {took:.1f}s")
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:30])
    for p in ("before", "garage node 3 killed"):
        assert counts.get(p, 0) >= 3, f"too few pushes acknowledged while '{p}': {counts}"
    check_all(base, images, "after the garage node came back")


# --------------------------------------------------------------------------------------
# downloads redirected to presigned URLs (storage URL parameter redirect_secs)
# --------------------------------------------------------------------------------------
def test_blob_downloads_redirect_to_presigned_urls(cluster_factory, tmp_path):
    c = cluster_factory(storage_params="&redirect_secs=300")
    n1, n2 = c.nodes
    data = os.urandom(3 * MiB + 17)
    digest = sha256_digest(data)
    r = requests.post(n1.v2(f"scale/redir/blobs/uploads/?digest={digest}"), data=data, headers=CT_OCTET, timeout=60)
    expect(r, 201, "node1")

    r = requests.get(n2.v2(f"scale/redir/blobs/{digest}"), allow_redirects=False, timeout=30)
    assert r.status_code == 307, describe(r, "node2")
    location = r.headers["Location"]
    assert location.startswith(os.environ["WHARF_TEST_S3_ENDPOINT"]) and "X-Amz-Signature=" in location, location
    # The presigned URL serves the bytes, and ranges, straight from the store.
    direct = requests.get(location, timeout=60)
    assert direct.status_code == 200 and direct.content == data, f"{direct.status_code} {len(direct.content)} B"
    part = requests.get(location, headers={"Range": "bytes=1048576-1048675"}, timeout=30)
    assert part.status_code == 206 and part.content == data[MiB:MiB + 100]
    # A tampered URL is refused by the store.
    assert requests.get(location.replace("X-Amz-Signature=", "X-Amz-Signature=0"), timeout=30).status_code == 403
    # The redirect comes only after the repository check: elsewhere the blob is unknown.
    r = requests.get(n2.v2(f"scale/other/blobs/{digest}"), allow_redirects=False, timeout=30)
    assert r.status_code == 404, describe(r, "node2")
    # HEAD still answers from wharf (size and digest), without a redirect.
    h = requests.head(n2.v2(f"scale/redir/blobs/{digest}"), allow_redirects=False, timeout=30)
    assert h.status_code == 200 and h.headers.get("Content-Length") == str(len(data)), describe(h, "node2")


def test_skopeo_pulls_through_presigned_redirects(cluster_factory, tmp_path):
    require_bin("skopeo", "umoci")
    c = cluster_factory(storage_params="&redirect_secs=300")
    n1, n2 = c.nodes
    layout = tmp_path / "layout"
    umoci_image(layout, "v1", make_rootfs_dir(tmp_path / "rootfs", "redirected\n"))
    run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}:v1", f"docker://{n1.host}/scale/redir:v1"])
    out = tmp_path / "pulled"
    run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{n2.host}/scale/redir:v1", f"dir:{out}"])
    manifest = json.loads((out / "manifest.json").read_bytes())
    for d in [manifest["config"]["digest"], *[x["digest"] for x in manifest["layers"]]]:
        assert sha256_digest((out / d.split(":")[1]).read_bytes()) == d
    # Node 2 answers every blob GET with a redirect, so the layers came from the store.
    r = requests.get(n2.v2(f"scale/redir/blobs/{manifest['layers'][0]['digest']}"), allow_redirects=False, timeout=30)
    assert r.status_code == 307, describe(r, "node2")
