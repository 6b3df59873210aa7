"""skopeo against wharf: copy oci: -> docker://, inspect, inspect --raw, list-tags, copy --all, delete."""

from __future__ import annotations

import json

import pytest
import requests

from helpers import (
    OCI_INDEX,
    OCI_MANIFEST,
    blob_status,
    fetch_manifest,
    get_blob_verified,
    get_manifest,
    make_rootfs_dir,
    put_blob,
    put_manifest,
    require_bin,
    run,
    sha256_digest,
    umoci_image,
)

NOTLS = ["--tls-verify=false"]


@pytest.fixture(scope="module")
def oci_layout(tmp_path_factory):
    """An OCI layout with two images: tags amd64 and arm64 (different rootfs content)."""
    require_bin("umoci", "skopeo")
    base = tmp_path_factory.mktemp("oci")
    layout = base / "layout"
    umoci_image(layout, "amd64", make_rootfs_dir(base / "rootfs-amd64", "skopeo amd64\n"), "amd64")
    umoci_image(layout, "arm64", make_rootfs_dir(base / "rootfs-arm64", "skopeo arm64\n"), "arm64")
    return layout


def skopeo(*args, **kw):
    return run(["skopeo", *args], **kw)


def copy_in(wharf, layout, tag, repo_ref) -> str:
    """skopeo copy oci:LAYOUT:TAG docker://HOST/REPO_REF; return the pushed manifest digest."""
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:{tag}", f"docker://{wharf.host}/{repo_ref}")
    repo, ref = repo_ref.rsplit(":", 1)
    _, digest, _ = fetch_manifest(wharf, repo, ref)
    return digest


def test_skopeo_copy_inspect_list_tags(wharf, oci_layout, tmp_path):
    digest = copy_in(wharf, oci_layout, "amd64", "e2e/skopeo-bb:v1")
    body, _, media_type = fetch_manifest(wharf, "e2e/skopeo-bb", "v1")
    assert media_type == OCI_MANIFEST
    # the layout's manifest went over byte for byte
    layout_index = json.loads((oci_layout / "index.json").read_text())
    layout_digests = {
        m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"] for m in layout_index["manifests"]
    }
    assert digest == layout_digests["amd64"]
    for d in [json.loads(body)["config"]["digest"], *[x["digest"] for x in json.loads(body)["layers"]]]:
        get_blob_verified(wharf, "e2e/skopeo-bb", d)

    skopeo("copy", "--dest-tls-verify=false", f"oci:{oci_layout}:amd64", f"docker://{wharf.host}/e2e/skopeo-bb:v2")

    info = json.loads(skopeo("inspect", *NOTLS, f"docker://{wharf.host}/e2e/skopeo-bb:v1").stdout)
    assert info["Digest"] == digest
    assert info["Architecture"] == "amd64" and info["Os"] == "linux"
    assert sorted(info["RepoTags"]) == ["v1", "v2"]

    raw = skopeo("inspect", "--raw", *NOTLS, f"docker://{wharf.host}/e2e/skopeo-bb:v1").stdout
    assert raw.encode() == body or raw.rstrip("\n").encode() == body
    assert sha256_digest(body) == digest

    tags = json.loads(skopeo("list-tags", *NOTLS, f"docker://{wharf.host}/e2e/skopeo-bb").stdout)
    assert sorted(tags["Tags"]) == ["v1", "v2"]

    # and back out of the registry into a dir: transport
    out = tmp_path / "pulled"
    skopeo("copy", "--src-tls-verify=false", f"docker://{wharf.host}/e2e/skopeo-bb:v1", f"dir:{out}")
    assert (out / "manifest.json").read_bytes() == body


def test_skopeo_copy_all_multiarch(wharf, oci_layout):
    d_amd = copy_in(wharf, oci_layout, "amd64", "e2e/src-amd64:v1")
    d_arm = copy_in(wharf, oci_layout, "arm64", "e2e/src-arm64:v1")
    children = []
    for repo, d, arch in (("e2e/src-amd64", d_amd, "amd64"), ("e2e/src-arm64", d_arm, "arm64")):
        body, _, _ = fetch_manifest(wharf, repo, d)
        children.append((repo, d, len(body), arch, json.loads(body)))

    # assemble a multi-arch index in e2e/multi: blobs and children by digest, then the index by tag
    for repo, d, size, arch, m in children:
        for blob in [m["config"], *m["layers"]]:
            data = get_blob_verified(wharf, repo, blob["digest"])
            r = requests.post(
                wharf.v2(f"e2e/multi/blobs/uploads/?mount={blob['digest']}&from={repo}"), timeout=30
            )
            if r.status_code == 202:  # mount refused: upload it
                put_blob(wharf, "e2e/multi", data)
            else:
                assert r.status_code == 201, r.text
        put_manifest(wharf, "e2e/multi", d, get_manifest(wharf, repo, d).content, OCI_MANIFEST)
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": d, "size": size, "platform": {"architecture": arch, "os": "linux"}}
            for _, d, size, arch, _ in children
        ],
    }
    index_body = json.dumps(index, indent=2).encode()
    put_manifest(wharf, "e2e/multi", "v1", index_body, OCI_INDEX)

    skopeo(
        "copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false",
        f"docker://{wharf.host}/e2e/multi:v1", f"docker://{wharf.host}/e2e/skopeo-multi:v1",
    )
    body, digest, media_type = fetch_manifest(wharf, "e2e/skopeo-multi", "v1")
    assert media_type == OCI_INDEX
    assert body == index_body, "copy --all should carry the index over unchanged"
    for repo, d, size, arch, m in children:
        child, _, _ = fetch_manifest(wharf, "e2e/skopeo-multi", d)
        assert len(child) == size
        for blob in [m["config"], *m["layers"]]:
            assert blob_status(wharf, "e2e/skopeo-multi", blob["digest"]) == 200
            get_blob_verified(wharf, "e2e/skopeo-multi", blob["digest"])

    # skopeo resolves the index to the host platform on a plain inspect
    info = json.loads(skopeo("inspect", *NOTLS, f"docker://{wharf.host}/e2e/skopeo-multi:v1").stdout)
    assert info["Digest"] == digest or info["Digest"] == d_amd
    assert info["Architecture"] == "amd64"


def test_skopeo_delete(wharf, oci_layout):
    digest = copy_in(wharf, oci_layout, "amd64", "e2e/to-delete:v1")
    skopeo("delete", *NOTLS, f"docker://{wharf.host}/e2e/to-delete:v1")

    for ref in (digest, "v1"):
        r = get_manifest(wharf, "e2e/to-delete", ref)
        assert r.status_code == 404, f"GET manifests/{ref} after delete -> {r.status_code}"
        codes = [e.get("code") for e in r.json()["errors"]]
        assert "MANIFEST_UNKNOWN" in codes, r.text
        assert requests.head(wharf.v2(f"e2e/to-delete/manifests/{ref}"), timeout=30).status_code == 404
    tags = requests.get(wharf.v2("e2e/to-delete/tags/list"), timeout=30)
    assert tags.status_code in (200, 404)
    if tags.status_code == 200:
        assert "v1" not in (tags.json().get("tags") or [])
