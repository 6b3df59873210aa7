"""Durability: kill -9 wharf under 16 concurrent pushers, restart, verify everything acknowledged.

Also: an upload session begun before a graceful restart can be continued after it.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
from dataclasses import dataclass, field

import requests

from helpers import OCI_MANIFEST, absolute, rebase, sha256_digest

MiB = 1024 * 1024
PUSHERS = int(os.environ.get("WHARF_E2E_CRASH_PUSHERS", "16"))
KILL_AFTER_BLOBS = int(os.environ.get("WHARF_E2E_CRASH_BLOBS", "40"))
KILL_DEADLINE_S = 30.0
ROUNDS = int(os.environ.get("WHARF_E2E_CRASH_ROUNDS", "3"))


@dataclass
class Ledger:
    lock: threading.Lock = field(default_factory=threading.Lock)
    blobs_ok: dict = field(default_factory=dict)  # digest -> (repo, size): got 201
    blobs_tried: dict = field(default_factory=dict)  # digest -> (repo, size): began, no 201 (yet)
    manifests_ok: list = field(default_factory=list)  # (repo, tag, body, digest): got 201
    manifests_tried: dict = field(default_factory=dict)  # (repo, tag) -> (body, digest)
    errors: list = field(default_factory=list)  # unexpected responses before the kill
    active: int = 0


class Killed(Exception):
    pass


def pusher(idx: int, base: str, killed: threading.Event, ledger: Ledger) -> None:
    s = requests.Session()
    repo = f"crash/p{idx:03d}"
    rng = random.Random(1000 + idx)

    def check(r: requests.Response, want: int, what: str) -> None:
        if r.status_code != want:
            if killed.is_set():
                raise Killed()
            with ledger.lock:
                ledger.errors.append(f"{what}: {r.status_code} {r.text[:300]}")
            raise Killed()

    def push_blob(data: bytes, chunk: int) -> dict:
        digest = sha256_digest(data)
        with ledger.lock:
            ledger.blobs_tried[digest] = (repo, len(data))
        r = s.post(f"{base}/v2/{repo}/blobs/uploads/", timeout=60)
        check(r, 202, "POST upload")
        loc = absolute_url(base, r.headers["Location"])
        for off in range(0, len(data), chunk):
            piece = data[off : off + chunk]
            r = s.patch(
                loc,
                data=piece,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{off}-{off + len(piece) - 1}",
                },
                timeout=60,
            )
            check(r, 202, "PATCH chunk")
            rng_hdr = r.headers.get("Range")
            if rng_hdr != f"0-{off + len(piece) - 1}":
                with ledger.lock:
                    ledger.errors.append(f"PATCH Range header {rng_hdr!r}, expected 0-{off + len(piece) - 1}")
            loc = absolute_url(base, r.headers["Location"])
        sep = "&" if "?" in loc else "?"
        r = s.put(f"{loc}{sep}digest={digest}", timeout=60)
        check(r, 201, "PUT ?digest=")
        with ledger.lock:
            ledger.blobs_ok[digest] = (repo, len(data))
            ledger.blobs_tried.pop(digest, None)
        return {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": len(data)}

    n = 0
    with ledger.lock:
        ledger.active += 1
    try:
        while not killed.is_set():
            layers = []
            for _ in range(rng.randint(1, 3)):
                data = os.urandom(rng.randint(1 * MiB, 8 * MiB))
                layers.append(push_blob(data, rng.choice([256 * 1024, 1 * MiB, 3 * MiB])))
            config = json.dumps({"pusher": idx, "n": n, "nonce": os.urandom(8).hex()}).encode()
            cdesc = push_blob(config, 1 * MiB)
            cdesc["mediaType"] = "application/vnd.oci.image.config.v1+json"
            body = json.dumps(
                {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cdesc, "layers": layers}
            ).encode()
            tag = f"t{n}"
            mdigest = sha256_digest(body)
            with ledger.lock:
                ledger.manifests_tried[(repo, tag)] = (body, mdigest)
            r = s.put(
                f"{base}/v2/{repo}/manifests/{tag}",
                data=body,
                headers={"Content-Type": OCI_MANIFEST},
                timeout=60,
            )
            check(r, 201, "PUT manifest")
            if r.headers.get("Docker-Content-Digest") != mdigest:
                with ledger.lock:
                    ledger.errors.append(f"manifest digest header {r.headers.get('Docker-Content-Digest')} != {mdigest}")
            with ledger.lock:
                ledger.manifests_ok.append((repo, tag, body, mdigest))
                del ledger.manifests_tried[(repo, tag)]
            n += 1
    except Killed:
        pass
    except requests.RequestException as e:
        if not killed.is_set():
            with ledger.lock:
                ledger.errors.append(f"{repo}: {type(e).__name__}: {e}")
    finally:
        with ledger.lock:
            ledger.active -= 1


def absolute_url(base: str, location: str) -> str:
    return location if location.startswith("http") else base + location


def get_verified(s: requests.Session, url: str) -> tuple[int, str | None, int]:
    """GET streaming; return (status, sha256 digest of body or None, length)."""
    with s.get(url, stream=True, timeout=120) as r:
        if r.status_code != 200:
            return r.status_code, None, 0
        h = hashlib.sha256()
        n = 0
        for chunk in r.iter_content(1 * MiB):
            h.update(chunk)
            n += len(chunk)
        return 200, "sha256:" + h.hexdigest(), n


def run_round(wharf, rnd: int, kill_after: int) -> Ledger:
    """Start PUSHERS pushers, SIGKILL wharf once ``kill_after`` blobs are acknowledged."""
    ledger = Ledger()
    killed = threading.Event()
    threads = [
        threading.Thread(target=pusher, args=(rnd * 100 + i, wharf.url, killed, ledger), daemon=True)
        for i in range(PUSHERS)
    ]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    while time.monotonic() - t0 < KILL_DEADLINE_S:
        with ledger.lock:
            if len(ledger.blobs_ok) >= kill_after and ledger.manifests_ok:
                break
            if ledger.errors or ledger.active == 0:
                break
        time.sleep(0.02)
    with ledger.lock:
        assert not ledger.errors, "errors before the kill:\n" + "\n".join(ledger.errors[:20])
    killed.set()
    wharf.kill9()  # SIGKILL, mid-push
    elapsed = time.monotonic() - t0
    for t in threads:
        t.join(90)
    assert not any(t.is_alive() for t in threads), "pushers hung after the kill"
    print(
        f"round {rnd}: killed after {elapsed:.1f}s: {len(ledger.blobs_ok)} blobs and "
        f"{len(ledger.manifests_ok)} manifests acknowledged, {len(ledger.blobs_tried)} blobs / "
        f"{len(ledger.manifests_tried)} manifests in flight"
    )
    assert ledger.blobs_ok, "no blob was acknowledged before the kill: the server is too slow or broken"
    assert ledger.blobs_tried or ledger.manifests_tried, "nothing was in flight at the kill"
    return ledger


def verify(wharf, ledgers: list[Ledger]) -> list[str]:
    s = requests.Session()
    problems = []
    acked = {}
    for ledger in ledgers:
        acked.update(ledger.blobs_ok)
    for digest, (repo, size) in acked.items():
        status, got, n = get_verified(s, wharf.v2(f"{repo}/blobs/{digest}"))
        if status != 200 or got != digest or n != size:
            problems.append(f"acknowledged blob {repo}@{digest} ({size} B): status {status}, {n} B, sha {got}")
            continue
        h = s.head(wharf.v2(f"{repo}/blobs/{digest}"), timeout=30)
        if h.status_code != 200 or h.headers.get("Content-Length") != str(size):
            problems.append(f"HEAD {repo}@{digest}: {h.status_code} Content-Length {h.headers.get('Content-Length')}")
    for ledger in ledgers:
        for digest, (repo, size) in ledger.blobs_tried.items():
            if digest in acked:
                continue
            status, got, n = get_verified(s, wharf.v2(f"{repo}/blobs/{digest}"))
            if status == 404:
                continue
            if status != 200 or got != digest or n != size:
                problems.append(
                    f"unacknowledged blob {repo}@{digest}: status {status}, {n}/{size} B, sha {got} (partial?)"
                )
        for repo, tag, body, mdigest in ledger.manifests_ok:
            for ref in (tag, mdigest):
                r = s.get(wharf.v2(f"{repo}/manifests/{ref}"), headers={"Accept": OCI_MANIFEST}, timeout=30)
                if r.status_code != 200 or r.content != body or r.headers.get("Docker-Content-Digest") != mdigest:
                    problems.append(
                        f"acknowledged manifest {repo}:{ref}: {r.status_code}, identical={r.content == body}"
                    )
        for (repo, tag), (body, mdigest) in ledger.manifests_tried.items():
            r = s.get(wharf.v2(f"{repo}/manifests/{tag}"), headers={"Accept": OCI_MANIFEST}, timeout=30)
            if r.status_code == 404:
                continue
            if r.status_code != 200 or r.content != body:
                problems.append(
                    f"unacknowledged manifest {repo}:{tag}: {r.status_code}, identical={r.content == body}"
                )
    return problems


def test_kill9_under_concurrent_pushes(wharf):
    seed = int(os.environ.get("WHARF_E2E_CRASH_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    print(f"crash test seed {seed} (WHARF_E2E_CRASH_SEED to repeat the kill points)")
    ledgers: list[Ledger] = []
    for rnd in range(ROUNDS):
        kill_after = rng.randint(KILL_AFTER_BLOBS // 4, KILL_AFTER_BLOBS)
        ledgers.append(run_round(wharf, rnd, kill_after))
        wharf.start(port=wharf.port)  # same data dir
        problems = verify(wharf, ledgers)
        assert not problems, (
            f"round {rnd}: {len(problems)} problems after kill -9 + restart:\n" + "\n".join(problems[:40])
        )

    # the restarted server takes new pushes into the same repositories, and still has it all
    # after a clean restart
    s = requests.Session()
    for i in range(min(PUSHERS, 4)):
        repo = f"crash/p{i:03d}"
        data = os.urandom(64 * 1024)
        r = s.post(wharf.v2(f"{repo}/blobs/uploads/?digest={sha256_digest(data)}"), data=data, timeout=30)
        if r.status_code == 202:  # single-request upload not taken: finish it with a PUT
            loc = absolute(wharf, r.headers["Location"])
            r = s.put(f"{loc}{'&' if '?' in loc else '?'}digest={sha256_digest(data)}", data=data, timeout=30)
        assert r.status_code == 201, r.text
        status, got, _ = get_verified(s, wharf.v2(f"{repo}/blobs/{sha256_digest(data)}"))
        assert status == 200 and got == sha256_digest(data)
    wharf.restart()
    problems = verify(wharf, ledgers)
    assert not problems, "after a graceful restart:\n" + "\n".join(problems[:40])


def test_upload_session_survives_graceful_restart(wharf):
    data = os.urandom(3 * MiB + 777)
    digest = sha256_digest(data)
    repo = "crash/resume"
    r = requests.post(wharf.v2(f"{repo}/blobs/uploads/"), timeout=30)
    assert r.status_code == 202, r.text
    loc = r.headers["Location"]
    assert f"/v2/{repo}/blobs/uploads/" in loc
    first = data[: 1 * MiB]
    r = requests.patch(
        absolute(wharf, loc),
        data=first,
        headers={"Content-Type": "application/octet-stream", "Content-Range": f"0-{len(first) - 1}"},
        timeout=30,
    )
    assert r.status_code == 202, r.text
    assert r.headers.get("Range") == f"0-{len(first) - 1}"
    loc = r.headers["Location"]

    old_port = wharf.port
    rc = wharf.stop()
    assert rc == 0, f"wharf exited with {rc} on SIGTERM"
    wharf.start(port=old_port)

    loc = rebase(wharf, loc)
    st = requests.get(loc, timeout=30)
    assert st.status_code == 204, f"upload status after restart: {st.status_code} {st.text[:300]}"
    assert st.headers.get("Range") == f"0-{len(first) - 1}"
    loc = absolute(wharf, st.headers.get("Location", loc))

    rest = data[len(first) :]
    r = requests.patch(
        loc,
        data=rest,
        headers={"Content-Type": "application/octet-stream", "Content-Range": f"{len(first)}-{len(data) - 1}"},
        timeout=30,
    )
    assert r.status_code == 202, r.text
    assert r.headers.get("Range") == f"0-{len(data) - 1}"
    loc = absolute(wharf, r.headers["Location"])
    r = requests.put(f"{loc}{'&' if '?' in loc else '?'}digest={digest}", timeout=30)
    assert r.status_code == 201, r.text
    assert r.headers.get("Docker-Content-Digest") == digest
    g = requests.get(wharf.v2(f"{repo}/blobs/{digest}"), timeout=30)
    assert g.status_code == 200 and g.content == data


def test_sigterm_exits_cleanly(wharf):
    assert requests.get(f"{wharf.url}/healthz", timeout=10).status_code == 200
    t0 = time.monotonic()
    rc = wharf.stop(timeout=15)
    assert rc == 0, f"exit code {rc} after SIGTERM"
    assert time.monotonic() - t0 < 15
