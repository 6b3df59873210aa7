"""Protocol checks with plain HTTP (requests / http.client) against the real binary."""

from __future__ import annotations

import http.client
import json
import os

import requests

from helpers import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    absolute,
    fetch_manifest,
    get_blob_verified,
    put_blob,
    put_manifest,
    sha256_digest,
)


def error_codes(r: requests.Response) -> list[str]:
    body = r.json()
    assert isinstance(body.get("errors"), list) and body["errors"], r.text
    for e in body["errors"]:
        assert {"code", "message"} <= set(e), e
    return [e["code"] for e in body["errors"]]


def simple_manifest(w, repo, media_type=OCI_MANIFEST, note="x") -> bytes:
    cfg = json.dumps({"note": note}).encode()
    layer = os.urandom(1000)
    c = put_blob(w, repo, cfg)
    lyr = put_blob(w, repo, layer)
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json"
                if media_type == OCI_MANIFEST
                else "application/vnd.docker.container.image.v1+json",
                "digest": c,
                "size": len(cfg),
            },
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": lyr, "size": 1000}],
        }
    ).encode()


def test_health_and_base(wharf):
    assert requests.get(f"{wharf.url}/healthz", timeout=10).status_code == 200
    r = requests.get(wharf.v2(""), timeout=10)
    assert r.status_code == 200
    assert r.headers.get("Docker-Distribution-API-Version") == "registry/2.0"


def test_upload_flows(wharf):
    repo = "api/uploads"
    # POST: 202 + Location + Range 0-0 + Docker-Upload-UUID
    r = requests.post(wharf.v2(f"{repo}/blobs/uploads/"), timeout=10)
    assert r.status_code == 202
    loc = r.headers["Location"]
    uuid = r.headers.get("Docker-Upload-UUID")
    assert uuid and loc.split("?")[0].endswith(f"/v2/{repo}/blobs/uploads/{uuid}")
    assert r.headers.get("Range") == "0-0"

    # streamed PATCH (Transfer-Encoding: chunked, no Content-Range), like docker/podman
    data = os.urandom(300_000)
    r = requests.patch(absolute(wharf, loc), data=iter([data[:100_000], data[100_000:]]), timeout=30)
    assert r.status_code == 202, r.text
    assert r.headers.get("Range") == f"0-{len(data) - 1}"
    loc = absolute(wharf, r.headers["Location"])
    r = requests.put(f"{loc}{'&' if '?' in loc else '?'}digest={sha256_digest(data)}", timeout=10)
    assert r.status_code == 201, r.text
    assert r.headers.get("Docker-Content-Digest") == sha256_digest(data)
    assert r.headers.get("Location")
    assert get_blob_verified(wharf, repo, sha256_digest(data)) == data

    # monolithic POST ?digest=
    blob = os.urandom(5000)
    r = requests.post(wharf.v2(f"{repo}/blobs/uploads/?digest={sha256_digest(blob)}"), data=blob, timeout=10)
    assert r.status_code == 201, r.text
    assert get_blob_verified(wharf, repo, sha256_digest(blob)) == blob

    # wrong digest on PUT -> DIGEST_INVALID
    r = requests.post(wharf.v2(f"{repo}/blobs/uploads/"), timeout=10)
    loc = absolute(wharf, r.headers["Location"])
    r = requests.put(f"{loc}{'&' if '?' in loc else '?'}digest={sha256_digest(b'other')}", data=b"mine", timeout=10)
    assert r.status_code == 400 and "DIGEST_INVALID" in error_codes(r), r.text

    # out-of-order chunk -> 416
    r = requests.post(wharf.v2(f"{repo}/blobs/uploads/"), timeout=10)
    loc = absolute(wharf, r.headers["Location"])
    r = requests.patch(loc, data=b"abc", headers={"Content-Range": "10-12"}, timeout=10)
    assert r.status_code == 416, f"{r.status_code} {r.text}"

    # cross-repo mount: 201 when the blob is there, 202 (a normal session) when not
    r = requests.post(wharf.v2(f"api/other/blobs/uploads/?mount={sha256_digest(blob)}&from={repo}"), timeout=10)
    assert r.status_code == 201, r.text
    assert r.headers.get("Docker-Content-Digest") == sha256_digest(blob)
    assert get_blob_verified(wharf, "api/other", sha256_digest(blob)) == blob
    missing = sha256_digest(b"nowhere")
    r = requests.post(wharf.v2(f"api/other/blobs/uploads/?mount={missing}&from={repo}"), timeout=10)
    assert r.status_code == 202 and r.headers.get("Location"), r.text
    # ctr sends it unencoded
    r = requests.post(wharf.v2(f"api/third/blobs/uploads/?mount={sha256_digest(data)}&from={repo}"), timeout=10)
    assert r.status_code == 201


def test_blob_get_range_head_delete(wharf):
    repo = "api/blobs"
    data = os.urandom(10_000)
    d = put_blob(wharf, repo, data)
    h = requests.head(wharf.v2(f"{repo}/blobs/{d}"), timeout=10)
    assert h.status_code == 200
    assert h.headers.get("Content-Length") == str(len(data))
    assert h.headers.get("Docker-Content-Digest") == d
    r = requests.get(wharf.v2(f"{repo}/blobs/{d}"), headers={"Range": "bytes=100-199"}, timeout=10)
    assert r.status_code == 206, r.status_code
    assert r.content == data[100:200]
    assert r.headers.get("Content-Range") == f"bytes 100-199/{len(data)}"

    r = requests.delete(wharf.v2(f"{repo}/blobs/{d}"), timeout=10)
    assert r.status_code == 202, r.text
    r = requests.get(wharf.v2(f"{repo}/blobs/{d}"), timeout=10)
    assert r.status_code == 404 and "BLOB_UNKNOWN" in error_codes(r)
    assert requests.head(wharf.v2(f"{repo}/blobs/{d}"), timeout=10).status_code == 404


def test_manifests(wharf):
    repo = "api/manifests"
    body = simple_manifest(wharf, repo, DOCKER_MANIFEST)
    r = put_manifest(wharf, repo, "v1", body, DOCKER_MANIFEST)
    digest = sha256_digest(body)
    assert r.headers.get("Docker-Content-Digest") == digest
    assert r.headers.get("Location")
    got, d, ct = fetch_manifest(wharf, repo, "v1")
    assert got == body and ct == DOCKER_MANIFEST
    got, d, ct = fetch_manifest(wharf, repo, digest)
    assert got == body

    # several Accept header lines (Go clients): the last one being schema1 must not matter
    conn = http.client.HTTPConnection("127.0.0.1", wharf.port, timeout=10)
    conn.putrequest("GET", f"/v2/{repo}/manifests/v1")
    for a in (OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, "application/vnd.docker.distribution.manifest.v1+prettyjws"):
        conn.putheader("Accept", a)
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.read() == body
    assert resp.getheader("Content-Type") == DOCKER_MANIFEST
    conn.close()

    # HEAD: same headers, no body
    h = requests.head(wharf.v2(f"{repo}/manifests/v1"), headers={"Accept": DOCKER_MANIFEST}, timeout=10)
    assert h.status_code == 200 and h.headers["Content-Length"] == str(len(body))
    assert h.headers.get("Docker-Content-Digest") == digest and not h.content

    # PUT by digest, with a body that has no mediaType field (helm does that)
    obj = json.loads(simple_manifest(wharf, repo, OCI_MANIFEST, note="no media type"))
    del obj["mediaType"]
    nomt = json.dumps(obj).encode()
    put_manifest(wharf, repo, sha256_digest(nomt), nomt, OCI_MANIFEST)
    _, _, ct = fetch_manifest(wharf, repo, sha256_digest(nomt))
    assert ct == OCI_MANIFEST

    # PUT by a digest that does not match the body
    r = requests.put(
        wharf.v2(f"{repo}/manifests/{sha256_digest(b'nope')}"),
        data=body,
        headers={"Content-Type": DOCKER_MANIFEST},
        timeout=10,
    )
    assert r.status_code == 400 and "DIGEST_INVALID" in error_codes(r), r.text

    # referencing a blob that does not exist
    bad = json.loads(body)
    bad["layers"][0]["digest"] = sha256_digest(b"missing layer")
    r = requests.put(
        wharf.v2(f"{repo}/manifests/bad"), data=json.dumps(bad), headers={"Content-Type": DOCKER_MANIFEST}, timeout=10
    )
    assert r.status_code == 400 and "MANIFEST_BLOB_UNKNOWN" in error_codes(r), r.text

    # unknown tag / digest
    r = requests.get(wharf.v2(f"{repo}/manifests/nope"), timeout=10)
    assert r.status_code == 404 and "MANIFEST_UNKNOWN" in error_codes(r)

    # delete by digest
    r = requests.delete(wharf.v2(f"{repo}/manifests/{digest}"), timeout=10)
    assert r.status_code == 202, r.text
    r = requests.get(wharf.v2(f"{repo}/manifests/{digest}"), timeout=10)
    assert r.status_code == 404 and "MANIFEST_UNKNOWN" in error_codes(r)


def test_tags_and_catalog_pagination(wharf):
    repo = "api/paged"
    body = simple_manifest(wharf, repo)
    tags = [f"t{i:02d}" for i in range(7)]
    for t in tags:
        put_manifest(wharf, repo, t, body, OCI_MANIFEST)

    r = requests.get(wharf.v2(f"{repo}/tags/list"), timeout=10)
    assert r.status_code == 200 and r.json() == {"name": repo, "tags": tags}

    seen, url = [], wharf.v2(f"{repo}/tags/list?n=3")
    pages = 0
    while url:
        r = requests.get(url, timeout=10)
        assert r.status_code == 200
        page = r.json()["tags"] or []
        assert len(page) <= 3
        seen += page
        pages += 1
        nxt = r.links.get("next", {}).get("url")
        url = absolute(wharf, nxt) if nxt else None
        assert pages < 10
    assert seen == tags and pages >= 3
    r = requests.get(wharf.v2(f"{repo}/tags/list?n=2&last=t03"), timeout=10)
    assert r.json()["tags"] == ["t04", "t05"]

    r = requests.get(wharf.v2("api/nothing-here/tags/list"), timeout=10)
    assert r.status_code == 404 and "NAME_UNKNOWN" in error_codes(r)

    for name in ("api/a", "api/b", "api/c"):
        put_blob(wharf, name, name.encode())
        put_manifest(wharf, name, "v1", simple_manifest(wharf, name), OCI_MANIFEST)
    r = requests.get(wharf.v2("_catalog"), timeout=10)
    assert r.status_code == 200
    repos = r.json()["repositories"]
    assert {"api/a", "api/b", "api/c", "api/paged"} <= set(repos) and repos == sorted(repos)
    r = requests.get(wharf.v2("_catalog?n=2"), timeout=10)
    assert r.json()["repositories"] == repos[:2]
    assert "next" in r.links, r.headers
    r = requests.get(wharf.v2(f"_catalog?n=2&last={repos[1]}"), timeout=10)
    assert r.json()["repositories"] == repos[2:4]


def test_single_segment_names_normalise_to_library(wharf):
    body = simple_manifest(wharf, "busybox")
    put_manifest(wharf, "busybox", "latest", body, OCI_MANIFEST)
    got, _, _ = fetch_manifest(wharf, "library/busybox", "latest")
    assert got == body
    cfg = json.loads(body)["config"]["digest"]
    get_blob_verified(wharf, "library/busybox", cfg)
    assert "library/busybox" in requests.get(wharf.v2("_catalog"), timeout=10).json()["repositories"]
