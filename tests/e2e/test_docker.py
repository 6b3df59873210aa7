"""docker (engine + CLI) against wharf: push, pull, run, re-push, cross-repo mount, manifest lists."""

from __future__ import annotations

import json
import re

import requests

from helpers import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    blob_status,
    fetch_manifest,
    get_blob_verified,
    head_manifest,
    require_module,
)

CMD = 'CMD ["/bin/sh","-c","cat /etc/hello.txt"]'
PUSH_DIGEST_RE = re.compile(r"digest: (sha256:[0-9a-f]{64}) size: (\d+)")


def docker_push(docker, ref: str) -> tuple[str, str]:
    """docker push; return (digest, full output)."""
    out = docker("push", ref, timeout=300).stdout
    m = PUSH_DIGEST_RE.search(out)
    assert m, f"no digest line in docker push output:\n{out}"
    return m.group(1), out


def import_image(docker, tar, ref: str) -> None:
    docker("import", "-c", CMD, str(tar), ref)
    docker.track(ref)


def blobs_of(manifest: bytes) -> list[str]:
    m = json.loads(manifest)
    return [m["config"]["digest"], *[layer["digest"] for layer in m["layers"]]]


def test_docker_push_pull_run(wharf, docker_cli, rootfs_tar):
    docker = docker_cli
    text = "hello from wharf via docker\n"
    ref = f"{wharf.host}/e2e/docker-bb:v1"
    import_image(docker, rootfs_tar(text), ref)

    digest, _ = docker_push(docker, ref)

    # what the registry now serves
    body, served, media_type = fetch_manifest(wharf, "e2e/docker-bb", "v1")
    assert served == digest
    assert media_type == DOCKER_MANIFEST
    h = head_manifest(wharf, "e2e/docker-bb", "v1")
    assert h.status_code == 200 and h.headers.get("Docker-Content-Digest") == digest
    assert int(h.headers["Content-Length"]) == len(body)
    for d in blobs_of(body):
        get_blob_verified(wharf, "e2e/docker-bb", d)

    docker("rmi", ref)
    out = docker("pull", ref).stdout
    assert digest in out
    repo_digests = json.loads(docker("image", "inspect", "--format", "{{json .RepoDigests}}", ref).stdout)
    assert f"{wharf.host}/e2e/docker-bb@{digest}" in repo_digests

    run_out = docker("run", "--rm", "--network", "none", ref).stdout
    assert run_out == text

    # pull by digest too
    by_digest = f"{wharf.host}/e2e/docker-bb@{digest}"
    docker.track(by_digest)
    docker("pull", by_digest)


def test_docker_repush(wharf, docker_cli, rootfs_tar):
    docker = docker_cli
    ref = f"{wharf.host}/e2e/repush:v1"
    import_image(docker, rootfs_tar("repush\n"), ref)
    d1, _ = docker_push(docker, ref)
    d2, out = docker_push(docker, ref)
    assert d1 == d2
    assert "Layer already exists" in out, out

    # same image under a second tag in the same repository
    ref2 = f"{wharf.host}/e2e/repush:v2"
    docker("tag", ref, ref2)
    docker.track(ref2)
    d3, _ = docker_push(docker, ref2)
    assert d3 == d1
    tags = requests.get(wharf.v2("e2e/repush/tags/list"), timeout=30).json()
    assert tags["name"] == "e2e/repush"
    assert sorted(tags["tags"]) == ["v1", "v2"]


def test_docker_cross_repo_mount(wharf, docker_cli, rootfs_tar):
    docker = docker_cli
    ref1 = f"{wharf.host}/e2e/first:v1"
    ref2 = f"{wharf.host}/e2e/second:v1"
    import_image(docker, rootfs_tar("shared layers\n"), ref1)
    d1, _ = docker_push(docker, ref1)
    body, _, _ = fetch_manifest(wharf, "e2e/first", "v1")
    blobs = blobs_of(body)
    for d in blobs:
        assert blob_status(wharf, "e2e/second", d) == 404, "blob visible in a repo it was never pushed to"

    docker("tag", ref1, ref2)
    docker.track(ref2)
    d2, out = docker_push(docker, ref2)
    assert d2 == d1
    # the engine mounts layers it knows are in another repo of the same registry
    assert "Mounted from e2e/first" in out, out
    for d in blobs:
        assert blob_status(wharf, "e2e/second", d) == 200
        get_blob_verified(wharf, "e2e/second", d)
    fetch_manifest(wharf, "e2e/second", "v1")


def test_docker_manifest_list(wharf, docker_cli, rootfs_tar):
    docker = docker_cli
    amd = f"{wharf.host}/e2e/bb:amd64"
    arm = f"{wharf.host}/e2e/bb:arm64"
    lst = f"{wharf.host}/e2e/multi:v1"
    import_image(docker, rootfs_tar("I am the amd64 image\n"), amd)
    import_image(docker, rootfs_tar("I am the arm64 image\n"), arm)
    d_amd, _ = docker_push(docker, amd)
    d_arm, _ = docker_push(docker, arm)

    docker.manifest_lists.append(lst)
    docker("manifest", "rm", lst, check=False)
    docker("manifest", "create", "--insecure", lst, amd, arm)
    docker("manifest", "annotate", lst, arm, "--arch", "arm64", "--os", "linux")
    out = docker("manifest", "push", "--insecure", lst).stdout
    pushed = re.findall(r"sha256:[0-9a-f]{64}", out)
    assert pushed, out

    body, digest, media_type = fetch_manifest(wharf, "e2e/multi", "v1")
    assert digest == pushed[-1]  # the list's digest is printed last
    assert media_type == DOCKER_LIST
    index = json.loads(body)
    platforms = {(e["platform"]["os"], e["platform"]["architecture"]): e["digest"] for e in index["manifests"]}
    assert platforms == {("linux", "amd64"): d_amd, ("linux", "arm64"): d_arm}
    # the children were pushed (by digest) into the list's repository, with their blobs
    for child in (d_amd, d_arm):
        child_body, _, child_type = fetch_manifest(wharf, "e2e/multi", child)
        assert child_type == DOCKER_MANIFEST
        for d in blobs_of(child_body):
            assert blob_status(wharf, "e2e/multi", d) == 200

    # pull the list: the engine resolves the linux/amd64 entry
    docker("rmi", amd, arm)
    docker.track(lst)
    docker("pull", lst)
    assert docker("run", "--rm", "--network", "none", lst).stdout == "I am the amd64 image\n"


def test_docker_python_sdk(wharf, docker_cli, rootfs_tar):
    """The Python docker SDK drives the same engine: push (streamed), pull, run."""
    require_module("docker")
    import docker as docker_sdk

    docker = docker_cli
    repo = f"{wharf.host}/e2e/sdk"
    ref = f"{repo}:v1"
    import_image(docker, rootfs_tar("hello from the docker SDK\n"), ref)
    client = docker_sdk.from_env()
    try:
        events = list(client.images.push(repo, tag="v1", stream=True, decode=True))
        errors = [e for e in events if "error" in e or "errorDetail" in e]
        assert not errors, errors
        aux = [e["aux"] for e in events if "aux" in e]
        assert aux and aux[-1]["Digest"].startswith("sha256:"), events
        _, digest, _ = fetch_manifest(wharf, "e2e/sdk", "v1")
        assert aux[-1]["Digest"] == digest

        client.images.remove(ref)
        img = client.images.pull(repo, tag="v1")
        assert f"{repo}@{digest}" in img.attrs["RepoDigests"]
        out = client.containers.run(ref, network_mode="none", remove=True)
        assert out == b"hello from the docker SDK\n"
    finally:
        client.close()
