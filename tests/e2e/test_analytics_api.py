"""The analytics API in the shape of Docker's DVP Data API (/api/publisher/analytics/v1) with
real requests: clients with docker's, containerd's and skopeo's user agents send manifest
requests from several loopback addresses, wharf classifies them (`wharf analytics classify
--final`), an administrator enables analytics for the organization, and the API answers the
numbers worked out by hand below: pulls (by tag and by digest; version checks are not
counted) and distinct client addresses of the current week, per repository and for the
namespace. An organization follows a company domain and the Tracked companies report runs;
the Summary report of a past week is downloaded by `curl` through the signed link the data
view hands out, with no token."""

from __future__ import annotations

import datetime
import json
import subprocess

import pytest
import requests

import analytics_setup
from analytics_setup import CONTAINERD, DOCKER, SKOPEO, acme_wharf, manifest_request, wharf_cli
from helpers import require_bin, run

PASSWORDS = {"alice": "alice-dvp-pass-1", "mia": "mia-dvp-pass-22", "carol": "carol-dvp-pass-333",
             "boss": "boss-dvp-pass-4444"}
DVP = "/api/publisher/analytics/v1"
SUMMARY_HEADER = "DATE_GRANULARITY,DATE_REFERENCE,PUBLISHER_NAME,LEVEL,REFERENCE,DATA_DOWNLOADS,VERSION_CHECKS,EVENT_COUNT"
TRACKED_HEADER = ("DATE_GRANULARITY,DATE_REFERENCE,PUBLISHER_NAME,DOMAIN,IP_COUNTRY,CLOUD_SERVICE_PROVIDER,USER_AGENT,"
                  "INFERRED_USE_CASE,IMAGE_REPOSITORY,DATA_DOWNLOADS,VERSION_CHECKS,PULLS,UNIQUE_AUTHENTICATED_USERS")


@pytest.fixture
def dvp_wharf(wharf_factory, monkeypatch):
    """wharf with auth on: alice owns acme, mia is a member, carol is outside, boss administers."""
    return acme_wharf(wharf_factory, monkeypatch, PASSWORDS)


def push(w, repo: str) -> str:
    return analytics_setup.push(w, repo, PASSWORDS["alice"])


def test_the_dvp_api_answers_the_pulls_of_real_requests(dvp_wharf, tmp_path):
    require_bin("curl")
    w = dvp_wharf
    app = push(w, "acme/app")
    web = push(w, "acme/web")
    # acme/app: docker at .2 pulls by tag (HEAD by tag, then GET by digest); docker at .3 only
    # checks the version (HEAD by tag); containerd at .4 pulls by digest; skopeo at .5 pulls by
    # tag (GET by tag).
    manifest_request(w, "127.0.0.2", DOCKER, "HEAD", "acme/app", "v1")
    manifest_request(w, "127.0.0.2", DOCKER, "GET", "acme/app", app)
    manifest_request(w, "127.0.0.3", DOCKER, "HEAD", "acme/app", "v1")
    manifest_request(w, "127.0.0.4", CONTAINERD, "GET", "acme/app", app)
    manifest_request(w, "127.0.0.5", SKOPEO, "GET", "acme/app", "v1")
    # acme/web: skopeo at .2 by tag, containerd at .7 by digest.
    manifest_request(w, "127.0.0.2", SKOPEO, "GET", "acme/web", "v1")
    manifest_request(w, "127.0.0.7", CONTAINERD, "GET", "acme/web", web)
    # By hand: app 2 by tag + 1 by digest = 3 pulls (the version check is not one), from 4
    # addresses (.2 .3 .4 .5: the address that only checked the version counts, as in the
    # repository summary); web 1 + 1 = 2 pulls from 2 addresses (.2 .7); the namespace 5 pulls
    # from 5 addresses (.2 .3 .4 .5 .7).
    expected = {"app": (3, 4), "web": (2, 2)}
    namespace_expected = (5, 5)
    port = w.port
    w.stop()  # the writer stores what is queued on the way out
    wharf_cli(w, "analytics", "classify", "--final")
    w.start(port=port)

    def login(name):
        r = requests.post(f"{w.url}/v2/users/login", json={"username": name, "password": PASSWORDS[name]}, timeout=30)
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}

    mia, carol, alice, boss = (login(n) for n in ("mia", "carol", "alice", "boss"))

    def get(path, who, params=None, expect=200):
        r = requests.get(w.url + DVP + path, headers=who, params=params, timeout=30)
        assert r.status_code == expect, f"GET {path} {params} -> {r.status_code} {r.text[:300]}"
        return r.json()

    # Before an administrator enables them, acme has no analytics.
    assert get("/namespaces", mia) == {"namespaces": []}
    get("/namespaces/acme/pulls", mia, expect=404)
    r = requests.put(f"{w.url}/v2/admin/analytics/namespaces/acme", headers=boss, timeout=30)
    assert r.status_code == 200, r.text

    # The namespaces: acme for its member, nothing for an outsider.
    assert get("/namespaces", mia) == {"namespaces": ["acme"]}
    assert get("/namespaces", carol) == {"namespaces": []}
    get("/namespaces/acme", carol, expect=404)
    get("/namespaces/acme/pulls", carol, expect=404)
    get("/namespaces", {}, expect=401)

    today = datetime.datetime.now(datetime.timezone.utc).date()
    monday = today - datetime.timedelta(days=today.weekday())
    week_start = f"{monday.isoformat()}T00:00:00Z"

    # Per repository, weekly: the current week's entries are the last ones, one per repository.
    pulls = get("/namespaces/acme/pulls", mia, {"timespan": "weeks", "group": "repo"})["pulls"]
    this_week = {p["repo"]: (p["pullCount"], p["ipCount"]) for p in pulls if p["start"] == week_start}
    assert this_week == expected, pulls
    assert all(p["pullCount"] == 0 for p in pulls if p["start"] != week_start), pulls
    # The namespace as a whole.
    pulls = get("/namespaces/acme/pulls", mia, {"timespan": "weeks", "group": "namespace"})["pulls"]
    current = pulls[-1]
    assert current["start"] == week_start and current["namespace"] == "acme", pulls
    assert (current["pullCount"], current["ipCount"]) == namespace_expected, current
    # One repository, and several at once.
    one = get("/namespaces/acme/repos/app/pulls", mia, {"timespan": "weeks"})["pulls"]
    assert [(p["repo"], p["pullCount"], p["ipCount"]) for p in one if p["start"] == week_start] == [("app", 3, 4)], one
    many = get("/repos/pulls", mia, {"repos": ["acme/app", "acme/web"], "timespan": "weeks"})["repos"]
    assert sorted(many) == ["acme/app", "acme/web"], many
    for full, (n, ips) in (("acme/app", expected["app"]), ("acme/web", expected["web"])):
        mine = [(p["pullCount"], p["ipCount"]) for p in many[full]["pulls"] if p["start"] == week_start]
        assert mine == [(n, ips)], (full, many[full])
    get("/repos/pulls", carol, {"repos": "acme/app"}, expect=404)

    # Tracked companies: the owner follows a domain; the report of this week runs.
    r = requests.put(f"{w.url}/v2/orgs/acme/analytics/tracked-domains/BigCorp.example", headers=alice, timeout=30)
    assert r.status_code == 200 and r.json() == {"count": 1, "results": ["bigcorp.example"]}, r.text
    r = requests.put(f"{w.url}/v2/orgs/acme/analytics/tracked-domains/other.example", headers=mia, timeout=30)
    assert r.status_code == 403, r.text
    week = f"{monday.isocalendar()[0]}-W{monday.isocalendar()[1]:02}"
    out = wharf_cli(w, "analytics", "export", "--namespace", "acme", "--report", "tracked-companies",
                    "--week", week, "--partial").stdout
    # (No address of these loopback clients has a company domain: the header alone.)
    assert out.splitlines()[0] == TRACKED_HEADER, out

    # The Summary report of last week, by the data view's signed link, fetched by curl with no
    # token (last week has no pulls: the header alone).
    last_year, last_week, _ = (today - datetime.timedelta(days=7)).isocalendar()
    get(f"/namespaces/acme/pulls/exports/years/{today.isocalendar()[0]}/weeks/{today.isocalendar()[1]}/summary",
        mia, expect=404)  # this week is not over
    data = get(f"/namespaces/acme/pulls/exports/years/{last_year}/weeks/{last_week}/summary", mia)["data"]
    assert len(data) == 1, data
    url = data[0]["url"]
    assert url.startswith(f"{w.url}{DVP}/downloads/acme/{last_year}-W{last_week:02}/summary?expires="), url
    body, head = tmp_path / "summary.csv", tmp_path / "headers.txt"
    got = subprocess.run(["curl", "-sS", "-o", str(body), "-D", str(head), "-w", "%{http_code}", url],
                         capture_output=True, text=True, timeout=60)
    assert got.returncode == 0 and got.stdout == "200", (got.stdout, got.stderr, head.read_text())
    headers = head.read_text().lower()
    assert "content-type: text/csv" in headers, headers
    assert body.read_text().splitlines() == [SUMMARY_HEADER], body.read_text()
    # A link with another signature is refused.
    tampered = url[:-1] + ("0" if url[-1] != "0" else "1")
    got = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", tampered],
                         capture_output=True, text=True, timeout=60)
    assert got.stdout == "403", (got.stdout, got.stderr)
