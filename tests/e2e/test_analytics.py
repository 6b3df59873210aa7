"""Pull analytics with real clients: docker, podman, skopeo, containerd and curl pull one image
from different addresses; wharf records their requests, classifies them into actions and
exports the seeds' CSV reports.

The test checks the reports two ways: against what each client is known to send (docker and
ctr: HEAD by tag then GET by digest, one pull by tag; skopeo and podman: GET by tag; skopeo by
digest: GET by digest; curl's HEAD alone: a version check), and against its own reading of
the seeds' classification table applied to the request sequences wharf stored, so every
number in the reports is checked by hand."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import time

import pytest
import requests

from helpers import SCALE, make_rootfs_dir, require_bin, run, umoci_image, wharf_bin

PASSWORDS = {"alice": "alice-secret-1"}
ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


def wharf_cli(w, *args, input=None):
    return run([wharf_bin(), *args, "--data-dir", w.data_dir], input=input)


@pytest.fixture
def analytics_wharf(wharf_factory, monkeypatch):
    monkeypatch.setenv("WHARF_AUTH", "true")
    if SCALE:
        # The nodes sit behind nginx on 127.0.0.1: its X-Forwarded-For names the client.
        monkeypatch.setenv("WHARF_TRUSTED_PROXIES", "127.0.0.1")
    w = wharf_factory()
    wharf_cli(w, "user", "add", "alice", "--password-stdin", input=PASSWORDS["alice"] + "\n")
    wharf_cli(w, "org", "add", "acme", "--owner", "alice")
    return w


def decode_batch(data: bytes) -> dict:
    """A stored batch: {"strings": [...], "events": [[at_ms, [15 indexes into strings]], ...]}.
    wharf writes b"\\0wb1" then postcard (unsigned LEB128 varints; a string is its length and
    its UTF-8 bytes; at_ms a zigzag varint); batches of earlier versions are JSON."""
    if not data.startswith(b"\0wb1"):
        return json.loads(data)
    pos = 4

    def varint() -> int:
        nonlocal pos
        value, shift = 0, 0
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    strings = []
    for _ in range(varint()):
        n = varint()
        strings.append(data[pos:pos + n].decode())
        pos += n
    events = []
    for _ in range(varint()):
        z = varint()
        at_ms = (z >> 1) ^ -(z & 1)
        events.append([at_ms, [varint() for _ in range(15)]])
    assert pos == len(data), f"{len(data) - pos} bytes left over"
    return {"strings": strings, "events": events}


def stored_events(w) -> list[dict]:
    """The manifest events wharf stored (batches), as the classifier reads them."""
    query = "SELECT data FROM pull_event_batches ORDER BY id"
    if SCALE:
        out = run(["psql", os.environ["WHARF_DATABASE"], "-qAt", "-c",
                   query.replace("data", "encode(data, 'hex')")]).stdout
        batches = [decode_batch(bytes.fromhex(line)) for line in out.splitlines() if line]
    else:
        with sqlite3.connect(w.data_dir / "wharf.db") as db:
            batches = [decode_batch(bytes(r[0])) for r in db.execute(query)]
    # A batch: {"strings": [...], "events": [[at_ms, [15 indexes into strings]], ...]}, the
    # fields in this order.
    names = ["namespace", "repo", "reference", "digest", "method", "kind", "user", "ip", "ip_month",
             "tool", "version", "country", "cloud", "ip_type", "domain"]
    events = []
    for b in batches:
        for at_ms, idx in b["events"]:
            e = {name: b["strings"][i] for name, i in zip(names, idx)} | {"at_ms": at_ms}
            if e["kind"] == "manifest":
                events.append(e)
    events.sort(key=lambda e: e["at_ms"])
    return events


def classify_by_hand(events: list[dict], window_ms: int = 60_000) -> list[tuple[str, str, str]]:
    """The seeds' table "Image pulls action classification rules", read independently of
    wharf's implementation: (tool, action, tag) per action."""
    groups: dict[tuple, list[dict]] = {}
    for e in events:
        groups.setdefault((e["user"], e["ip"], e["tool"], e["version"], e["repo"]), []).append(e)
    actions = []
    for seq in groups.values():
        i = 0
        while i < len(seq):
            first = seq[i]
            by_tag = not first["reference"].startswith("sha256:")
            followers = []
            j = i + 1
            # HEAD then GET by the same digest; then (multi-arch) one GET by a different digest.
            # GET then one GET by a different digest.
            if first["method"] == "HEAD" and j < len(seq):
                nxt = seq[j]
                if (nxt["method"] == "GET" and nxt["digest"] == first["digest"]
                        and nxt["at_ms"] - first["at_ms"] <= window_ms):
                    followers.append(nxt)
                    j += 1
            if (first["method"] == "GET" or followers) and j < len(seq):
                nxt = seq[j]
                last = followers[-1] if followers else first
                if (nxt["method"] == "GET" and nxt["reference"].startswith("sha256:")
                        and nxt["digest"] != last["digest"] and nxt["at_ms"] - first["at_ms"] <= window_ms):
                    followers.append(nxt)
                    j += 1
            if first["method"] == "HEAD" and by_tag and not followers:
                kind = "version_check"
            elif by_tag:
                kind = "pull_by_tag"
            else:
                kind = "pull_by_digest"
            actions.append((first["tool"], kind, first["reference"] if by_tag else ""))
            i = j
    return actions


def export(w, report: str) -> list[dict]:
    week = time.strftime("%G-W%V", time.gmtime())
    out = wharf_cli(w, "analytics", "export", "--namespace", "acme", "--report", report, "--week", week, "--partial").stdout
    return list(csv.DictReader(io.StringIO(out)))


def test_real_clients_produce_reports_that_follow_the_seeds_rules(analytics_wharf, docker_cli, containerd, tmp_path):
    require_bin("skopeo", "umoci", "podman", "curl")
    w, docker = analytics_wharf, docker_cli
    layout = tmp_path / "layout"
    umoci_image(layout, "v1", make_rootfs_dir(tmp_path / "rootfs", "analytics\n"))
    creds = f"alice:{PASSWORDS['alice']}"
    run(["skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{layout}:v1", f"docker://{w.host}/acme/app:v1"])
    digest = requests.head(w.v2("acme/app/manifests/v1"), headers={"Accept": ACCEPT}, timeout=30,
                           auth=("alice", PASSWORDS["alice"])).headers["Docker-Content-Digest"]
    ref = f"{w.host}/acme/app"
    docker.track(f"{ref}:v1")

    # docker by tag, then by digest (after removing the image, so it asks the registry)
    # docker by tag (a pull by digest of an image whose manifest docker still has sends no
    # manifest request at all, so it is not a pull wharf can see: skopeo does that one)
    docker("pull", f"{ref}:v1", timeout=300)
    # podman and skopeo (signed in) by tag
    root = tmp_path / "podroot"
    run(["podman", "--root", str(root), "--runroot", f"/tmp/pa-{w.port}", "--storage-driver", "vfs",
         "pull", "--tls-verify=false", f"{ref}:v1"], timeout=300)
    run(["skopeo", "inspect", "--tls-verify=false", "--creds", creds, f"docker://{ref}:v1"])
    run(["skopeo", "inspect", "--tls-verify=false", f"docker://{ref}@{digest}"])  # anonymous, by digest
    # containerd by tag
    ns = ["-n", f"wharf-an-{w.port}"]
    containerd.ctr(*ns, "images", "pull", "--plain-http", "--snapshotter", "native", f"{ref}:v1", timeout=300)
    containerd.ctr(*ns, "images", "rm", f"{ref}:v1", check=False)
    # a version check with curl from another loopback address (anonymous token first)
    tok = requests.get(f"{w.url}/token", params={"service": "wharf", "scope": "repository:acme/app:pull"}, timeout=30).json()["token"]
    subprocess.run(["curl", "-sfI", "--interface", "127.0.0.2", "-H", f"Authorization: Bearer {tok}",
                    "-H", f"Accept: {ACCEPT}", w.v2("acme/app/manifests/v1")], check=True, capture_output=True, timeout=30)

    metrics = requests.get(f"{w.url}/metrics", timeout=30).text
    assert "wharf_analytics_events_dropped_total 0" in metrics, metrics
    w.stop()  # the writer stores what is queued on the way out
    wharf_cli(w, "analytics", "classify", "--final")

    events = stored_events(w)
    assert events and all(e["ip"] and len(e["ip"]) == 32 for e in events), events
    by_hand = classify_by_hand(events)
    tools = {t for t, _, _ in by_hand}
    assert {"docker", "podman", "skopeo", "containerd", "curl"} <= tools, by_hand

    # What each client is known to send.
    def count(tool, kind):
        return sum(1 for t, k, _ in by_hand if t == tool and k == kind)
    assert count("docker", "pull_by_tag") == 1 and count("skopeo", "pull_by_digest") == 1, by_hand
    assert count("containerd", "pull_by_tag") == 1, by_hand
    assert count("podman", "pull_by_tag") == 1 and count("skopeo", "pull_by_tag") == 1, by_hand
    assert count("curl", "version_check") == 1, by_hand

    # The Trends report: one row per tool and tag, its numbers those of the seeds' rules.
    trends = export(w, "trends")
    assert trends and set(trends[0]) == {
        "DATE_GRANULARITY", "DATE_REFERENCE", "PUBLISHER_NAME", "IMAGE_REPOSITORY", "NAMESPACE", "IP_COUNTRY",
        "CLOUD_SERVICE_PROVIDER", "USER_AGENT", "TAG", "DATA_DOWNLOADS", "VERSION_CHECKS", "PULLS",
        "UNIQUE_AUTHENTICATED_USERS", "UNIQUE_UNAUTHENTICATED_USERS"}
    for row in trends:
        tool, tag = row["USER_AGENT"], row["TAG"]
        mine = [(k) for t, k, tg in by_hand if t == tool and (tg or "\\N") == tag]
        downloads = sum(1 for k in mine if k != "version_check")
        checks = sum(1 for k in mine if k == "version_check")
        assert (int(row["DATA_DOWNLOADS"]), int(row["VERSION_CHECKS"])) == (downloads, checks), (row, mine)
        assert row["IMAGE_REPOSITORY"] == "acme/app" and row["PUBLISHER_NAME"] == "acme"
    skopeo = {r["TAG"]: r for r in trends if r["USER_AGENT"] == "skopeo"}
    assert int(skopeo["v1"]["UNIQUE_AUTHENTICATED_USERS"]) == 1  # signed in as alice
    assert int(skopeo["\\N"]["UNIQUE_AUTHENTICATED_USERS"]) == 0  # anonymous, by digest
    assert int(skopeo["\\N"]["UNIQUE_UNAUTHENTICATED_USERS"]) == 1

    # The Summary report adds them up per repository, tag and digest.
    summary = {(r["LEVEL"], r["REFERENCE"]): r for r in export(w, "summary")}
    repo = summary[("repository", "acme/app")]
    total_downloads = sum(1 for _, k, _ in by_hand if k != "version_check")
    total_checks = sum(1 for _, k, _ in by_hand if k == "version_check")
    assert (int(repo["DATA_DOWNLOADS"]), int(repo["VERSION_CHECKS"])) == (total_downloads, total_checks)
    assert int(repo["EVENT_COUNT"]) == len(by_hand)
    tag_v1 = summary[("tag", "acme/app:v1")]
    assert int(tag_v1["EVENT_COUNT"]) == sum(1 for _, _, tg in by_hand if tg == "v1")
    assert int(summary[("digest", f"acme/app@{digest}")]["EVENT_COUNT"]) == len(by_hand)

    # The raw data: one row per action, never an address.
    raw = export(w, "raw")
    assert len(raw) == len(by_hand)
    assert {r["User agent tool"] for r in raw} == tools
    text = json.dumps(raw)
    assert "127.0.0." not in text
    summary_data = export(w, "repository-summary")
    assert summary_data == [{
        "Namespace": "acme", "Repository": "app", "Unique IP address": "2",
        "Pull by tag": str(sum(1 for _, k, _ in by_hand if k == "pull_by_tag")),
        "Pull by digest": str(sum(1 for _, k, _ in by_hand if k == "pull_by_digest")),
        "Version check": str(total_checks), "Owner": "acme"}], summary_data
