"""Extension analytics end to end: a collector posts install, uninstall, update and open
events of a Docker Extension to a real `wharf serve` with a personal access token made by the
CLI, and `wharf analytics export --report extension-core|extension-premium` writes the seeds'
columns with the numbers computed here by hand from the events sent."""

from __future__ import annotations

import csv
import io
from datetime import datetime, time as dtime, timedelta, timezone

import pytest
import requests

from helpers import run, wharf_bin

PASSWORD = "alice-secret-1"
CORE = ["Installs", "TotalInstalls", "Uninstalls", "TotalUninstalls", "Updates"]
PREMIUM = ["Installs", "UniqueInstalls", "Uninstalls", "UniqueUninstalls", "Usage", "UniqueUsers"]


def wharf_cli(w, *args, input=None, check=True):
    return run([wharf_bin(), *args, "--data-dir", w.data_dir], input=input, check=check)


@pytest.fixture
def ext_wharf(wharf_factory, monkeypatch):
    monkeypatch.setenv("WHARF_AUTH", "true")
    w = wharf_factory()
    wharf_cli(w, "user", "add", "alice", "--password-stdin", input=PASSWORD + "\n")
    wharf_cli(w, "org", "add", "acme", "--owner", "alice")
    return w


def login(w, username: str, secret: str) -> dict:
    r = requests.post(f"{w.url}/v2/users/login", json={"username": username, "password": secret}, timeout=30)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def new_token(w, scope: str) -> str:
    out = wharf_cli(w, "token", "add", "alice", "--scope", scope, "--label", f"collector {scope}")
    secret = out.stdout.strip()
    assert secret.startswith("wharf_pat_"), out.stdout
    return secret


def at(day, hour: int = 12) -> str:
    return datetime.combine(day, dtime(hour), tzinfo=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def export(w, report: str, week: str, *extra) -> list[list[str]]:
    out = wharf_cli(w, "analytics", "export", "--namespace", "acme", "--report", report,
                    "--week", week, *extra).stdout
    return list(csv.reader(io.StringIO(out)))


def test_a_collector_reports_events_and_the_extension_summaries_count_them(ext_wharf, tmp_path):
    w = ext_wharf
    password = login(w, "alice", PASSWORD)
    r = requests.post(f"{w.url}/v2/namespaces/acme/repositories", headers=password,
                      json={"name": "ext", "description": "an extension"}, timeout=30)
    assert r.status_code == 201, r.text

    collector = login(w, "alice", new_token(w, "read-write"))
    reader = login(w, "alice", new_token(w, "read"))
    url = f"{w.url}/api/publisher/analytics/v1/extensions/acme/ext/events"

    # Last week (Monday to Sunday, complete), two weeks before it, and this Monday 00:00.
    today = datetime.now(timezone.utc).date()
    monday = today - timedelta(days=today.weekday() + 7)
    iso = monday.isocalendar()
    week = f"{iso[0]}-W{iso[1]:02d}"
    before = at(monday - timedelta(days=14))
    mon, wed = at(monday), at(monday + timedelta(days=2))
    after = at(monday + timedelta(days=7), 0)

    def ev(kind, user, ts, **more):
        return {"type": kind, "user": user, "timestamp": ts, **more}

    events = [
        ev("install", "a", before), ev("install", "b", before), ev("uninstall", "b", before),
        ev("install", "a", mon), ev("install", "a", mon), ev("install", "c", mon),
        ev("uninstall", "a", mon), ev("update", "c", mon, version="1.1.0"),
        ev("open", "a", mon), ev("open", "a", mon), ev("open", "c", mon),
        ev("open", "d", wed), ev("uninstall", "c", wed),
        ev("install", "e", after), ev("uninstall", "a", after),
    ]

    # Refusals: nobody signed in, a read-only token, a bad event (nothing of it stored).
    assert requests.post(url, json={"events": events}, timeout=30).status_code == 401
    r = requests.post(url, headers=reader, json={"events": events}, timeout=30)
    assert r.status_code == 403, r.text
    r = requests.post(url, headers=collector, json={"events": events + [ev("launch", "a", mon)]}, timeout=30)
    assert r.status_code == 400, r.text
    assert f"events[{len(events)}].type" in r.json()["detail"], r.text

    r = requests.post(url, headers=collector, json={"events": events}, timeout=30)
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": len(events)}
    w.stop()

    # Last week: installs a a c; all time by its end b a (before) + 3; uninstalls a c, all
    # time b + 2; one update; openings a a c d by a, c and d.
    core = export(w, "extension-core", week, "--repository", "ext")
    assert core == [CORE, ["3", "5", "2", "3", "1"]], core
    premium = export(w, "extension-premium", week, "--repository", "acme/ext")  # the full name works too
    assert premium == [PREMIUM, ["3", "2", "2", "2", "4", "3"]], premium

    # Every extension of the namespace, one file each.
    out_dir = tmp_path / "reports"
    listed = wharf_cli(w, "analytics", "export", "--namespace", "acme", "--report", "extension-core",
                       "--week", week, "--out", str(out_dir)).stdout.split()
    path = out_dir / f"ext.extension-core.{week}.csv"
    assert listed == [str(path)], listed
    assert list(csv.reader(path.open())) == [CORE, ["3", "5", "2", "3", "1"]]

    # Without a repository or a directory, the CLI says what to add.
    refused = wharf_cli(w, "analytics", "export", "--namespace", "acme", "--report", "extension-core",
                        "--week", week, check=False)
    assert refused.returncode != 0 and "--repository" in refused.stderr, refused.stderr
