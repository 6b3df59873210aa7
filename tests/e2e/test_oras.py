"""oras-py against wharf: artifacts with artifactType, subject/referrers API, chunked uploads."""

from __future__ import annotations

import json
import os

import pytest
import requests

from helpers import (
    EMPTY_JSON,
    EMPTY_JSON_DIGEST,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    fetch_manifest,
    get_blob_verified,
    put_blob,
    put_manifest,
    require_module,
    sha256_digest,
)

THING = "application/vnd.example.thing.v1"
SIG = "application/vnd.example.signature.v1"


@pytest.fixture
def oras_client(wharf, monkeypatch, tmp_path):
    require_module("oras")
    import oras.client
    import oras.oci

    monkeypatch.chdir(tmp_path)  # oras-py wants pushed files under the cwd
    monkeypatch.setenv("HOME", str(tmp_path))  # no stray docker auth config
    orig = oras.oci.NewManifest
    state = {"artifactType": None}

    def new_manifest():
        m = orig()
        if state["artifactType"]:
            m["artifactType"] = state["artifactType"]
        return m

    monkeypatch.setattr(oras.oci, "NewManifest", new_manifest)
    client = oras.client.OrasClient(hostname=wharf.host, insecure=True)
    client.artifact_type = state  # tests set client.artifact_type["artifactType"]
    return client


def push_artifact(client, target, files, artifact_type, **kw):
    client.artifact_type["artifactType"] = artifact_type
    try:
        return client.push(
            target=target,
            files=files,
            manifest_config=f":{OCI_EMPTY}",
            quiet=True,
            **kw,
        )
    finally:
        client.artifact_type["artifactType"] = None


def referrers(wharf, repo, digest, artifact_type=None):
    params = {"artifactType": artifact_type} if artifact_type else None
    r = requests.get(wharf.v2(f"{repo}/referrers/{digest}"), params=params, timeout=30)
    assert r.status_code == 200, f"referrers -> {r.status_code} {r.text[:500]}"
    assert r.headers.get("Content-Type", "").split(";")[0] == OCI_INDEX
    body = r.json()
    assert body["schemaVersion"] == 2 and body.get("mediaType") == OCI_INDEX
    return r, body["manifests"]


def test_oras_push_pull_artifact(wharf, oras_client, tmp_path):
    (tmp_path / "artifact.txt").write_text("an oras artifact\n")
    r = push_artifact(
        oras_client,
        f"{wharf.host}/e2e/oras-art:v1",
        [f"artifact.txt:{THING}.layer.v1+txt"],
        THING,
        manifest_annotations={"org.example.k": "v"},
    )
    assert r.status_code == 201
    body, digest, media_type = fetch_manifest(wharf, "e2e/oras-art", "v1")
    assert r.headers.get("Docker-Content-Digest") == digest
    assert media_type == OCI_MANIFEST
    m = json.loads(body)
    assert m["artifactType"] == THING
    assert m["config"] == {"mediaType": OCI_EMPTY, "digest": EMPTY_JSON_DIGEST, "size": 2}
    assert m["annotations"]["org.example.k"] == "v"
    assert get_blob_verified(wharf, "e2e/oras-art", EMPTY_JSON_DIGEST) == EMPTY_JSON

    assert "v1" in oras_client.get_tags(f"{wharf.host}/e2e/oras-art")
    out = tmp_path / "out"
    files = oras_client.pull(target=f"{wharf.host}/e2e/oras-art:v1", outdir=str(out))
    assert [os.path.basename(f) for f in files] == ["artifact.txt"]
    assert (out / "artifact.txt").read_text() == "an oras artifact\n"


def test_oras_referrers(wharf, oras_client, tmp_path):
    import oras.oci

    repo = "e2e/oras-ref"
    (tmp_path / "artifact.txt").write_text("the subject\n")
    push_artifact(oras_client, f"{wharf.host}/{repo}:v1", [f"artifact.txt:{THING}.layer.v1+txt"], THING)
    subject_body, subject_digest, _ = fetch_manifest(wharf, repo, "v1")

    # no referrers yet: 200 with an empty index
    _, found = referrers(wharf, repo, subject_digest)
    assert found == []

    (tmp_path / "sig.txt").write_text("a signature\n")
    subject = oras.oci.Subject(mediaType=OCI_MANIFEST, digest=subject_digest, size=len(subject_body))
    r = push_artifact(
        oras_client,
        f"{wharf.host}/{repo}:sig",
        [f"sig.txt:{SIG}.layer.v1+txt"],
        SIG,
        subject=subject,
        manifest_annotations={"org.example.signed-by": "e2e"},
    )
    assert r.status_code == 201
    assert r.headers.get("OCI-Subject") == subject_digest, dict(r.headers)
    sig_body, sig_digest, _ = fetch_manifest(wharf, repo, "sig")
    assert json.loads(sig_body)["subject"]["digest"] == subject_digest

    # a second referrer without artifactType: its descriptor takes config.mediaType
    cfg = b'{"k":"v"}'
    cfg_d = put_blob(wharf, repo, cfg)
    layer_d = put_blob(wharf, repo, b"sbom data")
    sbom = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.example.sbom.config.v1+json", "digest": cfg_d, "size": len(cfg)},
            "layers": [{"mediaType": "application/octet-stream", "digest": layer_d, "size": 9}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": len(subject_body)},
        }
    ).encode()
    sbom_digest = sha256_digest(sbom)
    pr = put_manifest(wharf, repo, sbom_digest, sbom, OCI_MANIFEST)
    assert pr.headers.get("OCI-Subject") == subject_digest

    _, found = referrers(wharf, repo, subject_digest)
    by_digest = {d["digest"]: d for d in found}
    assert set(by_digest) == {sig_digest, sbom_digest}, found
    sig = by_digest[sig_digest]
    assert sig["mediaType"] == OCI_MANIFEST
    assert sig["size"] == len(sig_body)
    assert sig["artifactType"] == SIG
    assert sig.get("annotations", {}).get("org.example.signed-by") == "e2e"
    assert by_digest[sbom_digest]["artifactType"] == "application/vnd.example.sbom.config.v1+json"

    # artifactType filter, both ways
    r, found = referrers(wharf, repo, subject_digest, SIG)
    assert [d["digest"] for d in found] == [sig_digest]
    assert "artifactType" in r.headers.get("OCI-Filters-Applied", ""), dict(r.headers)
    r, found = referrers(wharf, repo, subject_digest, "application/vnd.example.nothing")
    assert found == []
    assert "artifactType" in r.headers.get("OCI-Filters-Applied", ""), dict(r.headers)

    # the referrer itself has no referrers; the subject still pulls fine
    _, found = referrers(wharf, repo, sig_digest)
    assert found == []

    # deleting the referrer removes it from the list
    d = requests.delete(wharf.v2(f"{repo}/manifests/{sbom_digest}"), timeout=30)
    assert d.status_code == 202, d.text
    _, found = referrers(wharf, repo, subject_digest)
    assert [x["digest"] for x in found] == [sig_digest]


def test_oras_chunked_push(wharf, oras_client, tmp_path):
    data = os.urandom(5 * 65536 + 12345)  # 6 PATCHes of <= 64 KiB
    (tmp_path / "big.bin").write_bytes(data)
    r = push_artifact(
        oras_client,
        f"{wharf.host}/e2e/oras-chunked:v1",
        ["big.bin:application/octet-stream"],
        THING,
        do_chunked=True,
        chunk_size=65536,
    )
    assert r.status_code == 201
    body, _, _ = fetch_manifest(wharf, "e2e/oras-chunked", "v1")
    layer = json.loads(body)["layers"][0]
    assert layer["digest"] == sha256_digest(data) and layer["size"] == len(data)
    assert get_blob_verified(wharf, "e2e/oras-chunked", layer["digest"]) == data

    out = tmp_path / "out"
    oras_client.pull(target=f"{wharf.host}/e2e/oras-chunked:v1", outdir=str(out))
    assert (out / "big.bin").read_bytes() == data
