"""ctr (containerd 1.6) against wharf: pull --plain-http, push --plain-http."""

from __future__ import annotations

import json

from helpers import blob_status, fetch_manifest, get_blob_verified, push_oci_image

NS = ["-n", "wharf-e2e"]


def blobs(manifest: bytes) -> list[str]:
    m = json.loads(manifest)
    return [m["config"]["digest"], *[x["digest"] for x in m["layers"]]]


def test_ctr_pull_push(wharf_factory, containerd, rootfs_tar):
    a = wharf_factory()
    b = wharf_factory()
    digest, manifest = push_oci_image(a, "e2e/seed", "v1", rootfs_tar("ctr seed\n"))
    src = f"{a.host}/e2e/seed:v1"
    ctr = containerd.ctr
    refs = [src]
    try:
        ctr(*NS, "images", "pull", "--plain-http", "--snapshotter", "native", src, timeout=300)
        listing = ctr(*NS, "images", "ls").stdout
        assert src in listing and digest in listing, listing
        ctr(*NS, "content", "get", digest)  # the manifest content is in containerd's store

        # push back to the same registry under a new name (ctr may mount from e2e/seed)
        same = f"{a.host}/e2e/ctr-new:v1"
        refs.append(same)
        ctr(*NS, "images", "tag", src, same)
        ctr(*NS, "images", "push", "--plain-http", same, timeout=300)
        body, d, _ = fetch_manifest(a, "e2e/ctr-new", "v1")
        assert d == digest and body == manifest
        for bd in blobs(manifest):
            assert blob_status(a, "e2e/ctr-new", bd) == 200
            get_blob_verified(a, "e2e/ctr-new", bd)

        # push to a second, empty registry: real uploads (POST + monolithic PUT)
        other = f"{b.host}/e2e/ctr-copy:v1"
        refs.append(other)
        ctr(*NS, "images", "tag", src, other)
        ctr(*NS, "images", "push", "--plain-http", other, timeout=300)
        body, d, _ = fetch_manifest(b, "e2e/ctr-copy", "v1")
        assert d == digest and body == manifest
        for bd in blobs(manifest):
            get_blob_verified(b, "e2e/ctr-copy", bd)

        # and pull that one back by digest into a fresh name
        ctr(*NS, "images", "rm", src, same, other)
        refs = []
        by_digest = f"{b.host}/e2e/ctr-copy@{digest}"
        refs.append(by_digest)
        ctr(*NS, "images", "pull", "--plain-http", "--snapshotter", "native", by_digest, timeout=300)
    finally:
        if refs:
            ctr(*NS, "images", "rm", *refs, check=False)
