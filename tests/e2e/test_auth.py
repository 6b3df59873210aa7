"""Accounts and token authentication (`auth = true`): docker login, pushes allowed and refused
by namespace and organization role, anonymous pulls, and the token endpoint's refusals, with
docker, podman, skopeo and ctr --user."""

from __future__ import annotations

import base64
import json
import re

import pytest
import requests

from helpers import fetch_manifest, make_rootfs_dir, require_bin, run, umoci_image, wharf_bin

CMD = 'CMD ["/bin/sh","-c","cat /etc/hello.txt"]'
PASSWORDS = {"alice": "alice-secret-1", "bob": "bob-secret-22", "boss": "boss-secret-333"}


def wharf_cli(w, *args, input=None):
    return run([wharf_bin(), *args, "--data-dir", w.data_dir], input=input)


@pytest.fixture
def auth_wharf(wharf_factory, monkeypatch):
    """wharf with auth on; alice owns org acme, bob is a member (read only), boss is admin."""
    monkeypatch.setenv("WHARF_AUTH", "true")
    w = wharf_factory()
    for name, pw in PASSWORDS.items():
        extra = ["--admin"] if name == "boss" else []
        wharf_cli(w, "user", "add", name, "--email", f"{name}@example.com", "--password-stdin", *extra, input=pw + "\n")
    wharf_cli(w, "org", "add", "acme", "--owner", "alice")
    wharf_cli(w, "org", "member", "acme", "bob", "--role", "member")
    return w


def token(w, user=None, scope=None, **params):
    auth = (user, PASSWORDS[user]) if user else None
    q = {"service": "wharf", **params}
    if scope:
        q["scope"] = scope
    return requests.get(f"{w.url}/token", params=q, auth=auth, timeout=10)


def test_docker_login_push_and_refusals(auth_wharf, docker_cli, rootfs_tar):
    w, docker = auth_wharf, docker_cli
    docker("import", "-c", CMD, str(rootfs_tar("auth test\n")), f"{w.host}/alice/app:v1")
    docker.track(f"{w.host}/alice/app:v1")
    # Anonymous pushes are refused with a login hint.
    refused = docker("push", f"{w.host}/alice/app:v1", check=False, timeout=120)
    assert refused.returncode != 0
    try:
        out = docker("login", w.host, "-u", "alice", "--password-stdin", input=PASSWORDS["alice"])
        assert "Login Succeeded" in out.stdout
        docker("push", f"{w.host}/alice/app:v1", timeout=300)
        for ref in (f"{w.host}/acme/app:v1", f"{w.host}/bob/app:v1"):
            docker("tag", f"{w.host}/alice/app:v1", ref)
            docker.track(ref)
        docker("push", f"{w.host}/acme/app:v1", timeout=300)  # owner of acme
        denied = docker("push", f"{w.host}/bob/app:v1", check=False, timeout=120)
        assert denied.returncode != 0 and "denied" in denied.stdout + denied.stderr
        docker("logout", w.host)

        docker("login", w.host, "-u", "bob", "--password-stdin", input=PASSWORDS["bob"])
        ro = docker("push", f"{w.host}/acme/app:v1", check=False, timeout=120)
        assert ro.returncode != 0 and "denied" in ro.stdout + ro.stderr  # member: read only
        docker("rmi", f"{w.host}/acme/app:v1")
        docker("pull", f"{w.host}/acme/app:v1", timeout=300)
        docker("logout", w.host)

        # Public repositories pull anonymously; a missing one looks like a private one.
        docker("rmi", f"{w.host}/alice/app:v1")
        docker("pull", f"{w.host}/alice/app:v1", timeout=300)
        missing = docker("pull", f"{w.host}/alice/nothing:v1", check=False, timeout=120)
        assert "pull access denied" in missing.stderr, missing.stderr
        bad = docker("login", w.host, "-u", "bob", "--password-stdin", input="wrong-password", check=False)
        assert bad.returncode != 0 and "incorrect username or password" in bad.stderr
    finally:
        docker("logout", w.host, check=False)


def test_podman_and_skopeo_with_credentials(auth_wharf, tmp_path):
    require_bin("skopeo", "umoci")
    w = auth_wharf
    layout = tmp_path / "layout"
    umoci_image(layout, "v1", make_rootfs_dir(tmp_path / "rootfs", "skopeo with creds\n"))
    creds = f"alice:{PASSWORDS['alice']}"
    run(["skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{layout}:v1", f"docker://{w.host}/acme/sko:v1"])
    ro = run(["skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", f"bob:{PASSWORDS['bob']}",
              f"oci:{layout}:v1", f"docker://{w.host}/acme/sko:v2"], check=False)
    assert ro.returncode != 0
    run(["skopeo", "inspect", "--tls-verify=false", "--creds", f"bob:{PASSWORDS['bob']}", f"docker://{w.host}/acme/sko:v1"])
    fetch_manifest(w, "acme/sko", "v1")  # public: anonymous GET works

    require_bin("podman")
    root, runroot = tmp_path / "podroot", f"/tmp/pr-{w.port}"
    pod = ["podman", "--root", str(root), "--runroot", runroot, "--storage-driver", "vfs"]
    run([*pod, "login", "--tls-verify=false", "-u", "bob", "--password-stdin", w.host], input=PASSWORDS["bob"])
    run([*pod, "pull", "--tls-verify=false", f"{w.host}/acme/sko:v1"], timeout=300)
    run([*pod, "tag", f"{w.host}/acme/sko:v1", f"{w.host}/bob/pod:v1"])
    run([*pod, "push", "--tls-verify=false", f"{w.host}/bob/pod:v1"], timeout=300)
    denied = run([*pod, "push", "--tls-verify=false", f"{w.host}/acme/sko:v1"], check=False, timeout=120)
    assert denied.returncode != 0
    run([*pod, "logout", w.host], check=False)


def test_ctr_user(auth_wharf, containerd, tmp_path):
    require_bin("skopeo", "umoci")
    w = auth_wharf
    layout = tmp_path / "layout"
    umoci_image(layout, "v1", make_rootfs_dir(tmp_path / "rootfs", "ctr with creds\n"))
    run(["skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", f"alice:{PASSWORDS['alice']}",
         f"oci:{layout}:v1", f"docker://{w.host}/alice/ctr:v1"])
    src = f"{w.host}/alice/ctr:v1"
    ns = ["-n", "wharf-auth"]
    ctr = containerd.ctr
    bob = ["--user", f"bob:{PASSWORDS['bob']}"]
    try:
        ctr(*ns, "images", "pull", "--plain-http", "--snapshotter", "native", *bob, src, timeout=300)
        ctr(*ns, "images", "tag", src, f"{w.host}/bob/ctr:v1")
        ctr(*ns, "images", "push", "--plain-http", *bob, f"{w.host}/bob/ctr:v1", timeout=300)
        fetch_manifest(w, "bob/ctr", "v1")
        # A new tag in alice's namespace needs push there (an existing identical manifest
        # would be skipped by ctr after its HEAD).
        ctr(*ns, "images", "tag", src, f"{w.host}/alice/ctr:v2")
        refused = ctr(*ns, "images", "push", "--plain-http", *bob, f"{w.host}/alice/ctr:v2", check=False, timeout=120)
        assert refused.returncode != 0
        assert requests.get(w.v2("alice/ctr/manifests/v2"), timeout=10).status_code == 404
    finally:
        ctr(*ns, "images", "rm", src, f"{w.host}/bob/ctr:v1", f"{w.host}/alice/ctr:v2", check=False)


def test_token_endpoint(auth_wharf):
    w = auth_wharf
    r = token(w, "alice", "repository:alice/x:pull,push", offline_token="true", account="alice")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token"] == body["access_token"] and body["expires_in"] > 0 and "refresh_token" in body
    claims = json.loads(base64.urlsafe_b64decode(body["token"].split(".")[1] + "=="))
    assert claims["access"] == [{"type": "repository", "name": "alice/x", "actions": ["pull", "push"]}]
    # The intersection of what was asked and what bob may do: nothing on alice/x.
    r = token(w, "bob", "repository:alice/x:pull,push")
    claims = json.loads(base64.urlsafe_b64decode(r.json()["token"].split(".")[1] + "=="))
    assert claims["access"][0]["actions"] == []
    # The OAuth2 form docker and containerd send.
    r = requests.post(f"{w.url}/token", data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"],
                                              "service": "wharf", "scope": "repository:alice/x:pull", "client_id": "docker"}, timeout=10)
    assert r.status_code == 200 and r.json()["access_token"]
    r = requests.post(f"{w.url}/token", data={"grant_type": "password", "username": "bob", "password": "nope",
                                              "service": "wharf", "client_id": "containerd-client"}, timeout=10)
    assert r.status_code == 401 and r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert "incorrect username or password" in r.text
    # Bad input is a clear 401/403, never a 500.
    assert token(w, "alice", "repository:Alice/..:pull").status_code == 403
    assert requests.get(f"{w.url}/token", headers={"Authorization": "Basic !!!"}, timeout=10).status_code == 401
    good = body["token"]
    head, payload, sig = good.split(".")
    tampered = ".".join([head, base64.urlsafe_b64encode(json.dumps({**claims, "sub": "boss"}).encode()).decode().rstrip("="), sig])
    none_alg = ".".join([base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("="), payload, ""])
    for bad in (tampered, none_alg, "not-a-jwt"):
        r = requests.get(f"{w.url}/v2/alice/x/tags/list", headers={"Authorization": f"Bearer {bad}"}, timeout=10)
        assert r.status_code == 401, (bad, r.text)
        assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    # A token without the scope gets insufficient_scope and the scope it needs.
    r = requests.get(f"{w.url}/v2/acme/app/tags/list", headers={"Authorization": f"Bearer {good}"}, timeout=10)
    assert r.status_code == 401 and 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
    assert 'scope="repository:acme/app:pull"' in r.headers["WWW-Authenticate"]
    # Anonymous: a challenge pointing at the token endpoint.
    r = requests.get(f"{w.url}/v2/", timeout=10)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == f'Bearer realm="{w.url}/token",service="wharf"'
    # The catalog is for administrators.
    assert requests.get(f"{w.url}/v2/_catalog", auth=("alice", PASSWORDS["alice"]), timeout=10).status_code == 403
    assert requests.get(f"{w.url}/v2/_catalog", auth=("boss", PASSWORDS["boss"]), timeout=10).status_code == 200


def new_token(w, user, scope):
    out = wharf_cli(w, "token", "add", user, "--scope", scope, "--label", f"e2e {scope}")
    secret = out.stdout.strip()
    assert secret.startswith("wharf_pat_"), out.stdout
    token_id = out.stderr.split()[2]
    return token_id, secret


def test_access_tokens_as_passwords(auth_wharf, docker_cli, rootfs_tar):
    w, docker = auth_wharf, docker_cli
    rw_id, rw = new_token(w, "alice", "read-write")
    _, ro = new_token(w, "alice", "read")
    ref = f"{w.host}/alice/pat:v1"
    docker("import", "-c", CMD, str(rootfs_tar("pushed with a token\n")), ref)
    docker.track(ref)
    try:
        docker("login", w.host, "-u", "alice", "--password-stdin", input=rw)
        docker("push", ref, timeout=300)
        docker("logout", w.host)
        docker("login", w.host, "-u", "alice", "--password-stdin", input=ro)
        docker("tag", ref, f"{w.host}/alice/pat:v2")
        docker.track(f"{w.host}/alice/pat:v2")
        refused = docker("push", f"{w.host}/alice/pat:v2", check=False, timeout=120)
        assert refused.returncode != 0, "a read token pushed"
        docker("logout", w.host)
        # A token only signs in its own user; a revoked token not at all.
        assert docker("login", w.host, "-u", "bob", "--password-stdin", input=rw, check=False).returncode != 0
        wharf_cli(w, "token", "revoke", rw_id)
        assert docker("login", w.host, "-u", "alice", "--password-stdin", input=rw, check=False).returncode != 0
        listing = wharf_cli(w, "token", "list", "alice").stdout
        assert rw_id in listing and rw not in listing
        row = next(line for line in listing.splitlines() if line.startswith(rw_id)).split("\t")
        assert row[5] != "-" and row[6] != "-", row  # last used, revoked
    finally:
        docker("logout", w.host, check=False)
    # Basic auth with a token on the registry and the token endpoint.
    _, ro2 = new_token(w, "alice", "read")
    assert requests.get(w.v2("alice/pat/tags/list"), auth=("alice", ro2), timeout=10).status_code == 200
    r = requests.put(w.v2("alice/pat/manifests/v3"), auth=("alice", ro2), data=b"{}", timeout=10)
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "DENIED"


def test_private_repository(auth_wharf, tmp_path):
    require_bin("skopeo", "umoci")
    w = auth_wharf
    layout = tmp_path / "layout"
    umoci_image(layout, "v1", make_rootfs_dir(tmp_path / "rootfs", "private\n"))
    run(["skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", f"alice:{PASSWORDS['alice']}",
         f"oci:{layout}:v1", f"docker://{w.host}/acme/secret:v1"])
    out = wharf_cli(w, "repo", "private", "acme/secret")
    assert "private" in out.stdout
    anon = run(["skopeo", "inspect", "--tls-verify=false", f"docker://{w.host}/acme/secret:v1"], check=False)
    missing = run(["skopeo", "inspect", "--tls-verify=false", f"docker://{w.host}/acme/nothing:v1"], check=False)
    assert anon.returncode != 0 and missing.returncode != 0
    # Alike but for the name (and skopeo's own timestamp, which may tick between the calls).
    def message(out: str, name: str) -> list[str]:
        return re.sub(r'time="[^"]*" ', "", out.replace(name, "X")).split("\n")[-2:]
    assert message(anon.stderr, "secret") == message(missing.stderr, "nothing")
    run(["skopeo", "inspect", "--tls-verify=false", "--creds", f"bob:{PASSWORDS['bob']}", f"docker://{w.host}/acme/secret:v1"])
    outsider = run(["skopeo", "inspect", "--tls-verify=false", "--creds", f"bob:{PASSWORDS['bob']}",
                    f"docker://{w.host}/alice/elsewhere:v1"], check=False)
    assert outsider.returncode != 0


def test_organization_access_token(auth_wharf, docker_cli, rootfs_tar):
    w, docker = auth_wharf, docker_cli
    secret = wharf_cli(w, "token", "add", "alice", "--org", "acme", "--scope", "read-write", "--label", "ci").stdout.strip()
    assert secret.startswith("wharf_pat_")
    refused = run([wharf_bin(), "token", "add", "bob", "--org", "acme", "--scope", "read", "--data-dir", w.data_dir], check=False)
    assert refused.returncode != 0 and "only owners of acme" in refused.stderr
    ref = f"{w.host}/acme/orgtok:v1"
    docker("import", "-c", CMD, str(rootfs_tar("org token\n")), ref)
    docker.track(ref, f"{w.host}/alice/orgtok:v1")
    try:
        # docker logs in with the organization's name and the token.
        docker("login", w.host, "-u", "acme", "--password-stdin", input=secret)
        docker("push", ref, timeout=300)
        docker("tag", ref, f"{w.host}/alice/orgtok:v1")
        outside = docker("push", f"{w.host}/alice/orgtok:v1", check=False, timeout=120)
        assert outside.returncode != 0 and "denied" in outside.stdout + outside.stderr
    finally:
        docker("logout", w.host, check=False)
    assert docker("login", w.host, "-u", "alice", "--password-stdin", input=secret, check=False).returncode != 0
