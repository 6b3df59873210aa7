"""`docker search HOST/TERM` against wharf's /v1/search: repositories created with descriptions
through the Hub-style JSON API are listed with their descriptions (truncated unless
--no-trunc), --limit is honoured, and a private repository stays out of an anonymous search."""

from __future__ import annotations

import pytest
import requests

from helpers import run, wharf_bin

PASSWORD = "search-secret-1"
REPOS = {
    "alice/searchme-api": "Searchme API server",
    "alice/searchme-worker": "Searchme background worker that processes the queue of long running jobs",
    "alice/searchme-cli": "Searchme command line client",
}
SECRET = ("alice/searchme-secret", "Searchme private repository nobody else sees")
OFFICIAL = ("library/searchme-base", "Searchme official base image")
OTHER = ("alice/unrelated", "Nothing to find here")


@pytest.fixture
def search_wharf(wharf_factory, monkeypatch):
    monkeypatch.setenv("WHARF_AUTH", "true")
    w = wharf_factory()
    tokens = {}
    for user, admin in (("alice", []), ("boss", ["--admin"])):
        run([wharf_bin(), "user", "add", user, "--email", f"{user}@example.com", "--password-stdin", *admin,
             "--data-dir", w.data_dir], input=PASSWORD + "\n")
        r = requests.post(f"{w.url}/v2/users/login", json={"username": user, "password": PASSWORD}, timeout=30)
        assert r.status_code == 200, r.text
        tokens[user] = r.json()["token"]
    repos = [*((n, d, False) for n, d in REPOS.items()), (*SECRET, True), (*OTHER, False), (*OFFICIAL, False)]
    for full, description, private in repos:
        ns, name = full.split("/")
        token = tokens["boss" if ns == "library" else "alice"]
        r = requests.post(f"{w.url}/v2/namespaces/{ns}/repositories", headers={"Authorization": f"Bearer {token}"},
                          json={"name": name, "description": description, "is_private": private}, timeout=30)
        assert r.status_code == 201, r.text
    return w


def rows(out: str) -> list[list[str]]:
    """The result rows of `docker search --format '{{.Name}}|{{.Description}}|{{.StarCount}}|{{.IsOfficial}}'`."""
    return [line.split("|") for line in out.splitlines() if line.strip()]


FORMAT = "{{.Name}}|{{.Description}}|{{.StarCount}}|{{.IsOfficial}}"


def test_docker_search_lists_repositories_with_descriptions(search_wharf, docker_cli):
    w, docker = search_wharf, docker_cli
    term = f"{w.host}/searchme"

    # The default table: header, then one line per repository with its (truncated) description.
    out = docker("search", term, timeout=120).stdout
    lines = out.splitlines()
    assert lines and lines[0].split()[:2] == ["NAME", "DESCRIPTION"], out
    body = "\n".join(lines[1:])
    for name, description in REPOS.items():
        line = next((ln for ln in lines[1:] if ln.split()[0] == name), None)
        assert line is not None, f"{name} missing from docker search output:\n{out}"
        if len(description) <= 45:
            assert description in line, line
        else:  # docker cuts descriptions to 45 characters
            assert description[:40] in line and description not in line and "…" in line, line
    assert SECRET[0] not in body, f"a private repository shows in an anonymous search:\n{out}"
    assert OTHER[0] not in body, f"a repository that does not match shows:\n{out}"
    # The official image (library/…) is listed too, marked [OK].
    official = next((ln for ln in lines[1:] if ln.split()[0] == OFFICIAL[0]), None)
    assert official is not None and official.rstrip().endswith("[OK]"), out
    assert len(lines) == 1 + len(REPOS) + 1, out

    # --no-trunc: the whole description.
    out = docker("search", "--no-trunc", term, timeout=120).stdout
    for name, description in REPOS.items():
        line = next(ln for ln in out.splitlines() if ln.split()[0] == name)
        assert description in line, f"--no-trunc did not show the whole description of {name}:\n{out}"

    # Every field through --format, as the daemon decoded /v1/search (docker shows an official
    # image as "[OK]", others as "").
    found = {r[0]: r[1:] for r in rows(docker("search", "--no-trunc", "--format", FORMAT, term, timeout=120).stdout)}
    expected = {name: [description, "0", ""] for name, description in REPOS.items()}
    assert found == {**expected, OFFICIAL[0]: [OFFICIAL[1], "0", "[OK]"]}, found
    # docker search --filter is-official=true filters in the daemon.
    official_only = rows(docker("search", "--filter", "is-official=true", "--format", FORMAT, term, timeout=120).stdout)
    assert [r[0] for r in official_only] == [OFFICIAL[0]], official_only

    # --limit 2: two results (the daemon sends n=2).
    limited = rows(docker("search", "--limit", "2", "--format", FORMAT, term, timeout=120).stdout)
    assert len(limited) == 2 and {r[0] for r in limited} <= {*REPOS, OFFICIAL[0]}, limited

    # A term that matches only through the description.
    worker = rows(docker("search", "--no-trunc", "--format", FORMAT, f"{w.host}/queue", timeout=120).stdout)
    assert [r[0] for r in worker] == ["alice/searchme-worker"], worker

    # Nothing found is an empty answer, not an error.
    assert docker("search", f"{w.host}/nothing-matches-this", timeout=120).stdout.splitlines()[1:] == []

    # The private repository is there for its owner through the API, never anonymously.
    anon = requests.get(f"{w.url}/v1/search", params={"q": "searchme", "n": 25}, timeout=30).json()
    assert SECRET[0] not in {r["name"] for r in anon["results"]} and anon["num_results"] == len(REPOS) + 1
