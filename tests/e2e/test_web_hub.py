"""The hub's web pages in a real browser (Debian's headless Chromium, driven by Selenium through
chromedriver): sign in, create a repository, edit its description, categories and overview
with Write/Preview, apply to a program and have an administrator approve it, exempt an
address range from pull limits, upload a logo, delete a tag through the confirmation dialog,
and search with a filter.

Each page is saved as a PNG screenshot under $WHARF_SCREENSHOTS (default
target/e2e-screenshots), so a person can look at what the test saw."""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import pytest
import requests

from helpers import OCI_MANIFEST, png, run, sha256_digest, wharf_bin

PASSWORDS = {"alice": "alice-web-pass-1", "boss": "boss-web-pass-22"}
SHOTS = Path(os.environ.get("WHARF_SCREENSHOTS", Path(__file__).resolve().parents[2] / "target" / "e2e-screenshots"))



@pytest.fixture
def hub_wharf(wharf_factory, monkeypatch):
    monkeypatch.setenv("WHARF_AUTH", "true")
    w = wharf_factory()
    for name, pw in PASSWORDS.items():
        extra = ["--admin"] if name == "boss" else []
        run([wharf_bin(), "user", "add", name, "--email", f"{name}@example.com", "--password-stdin", *extra,
             "--data-dir", w.data_dir], input=pw + "\n")
    run([wharf_bin(), "org", "add", "acme", "--owner", "alice", "--data-dir", w.data_dir])
    return w


def push_image(w, repo: str, tag: str, arch: str) -> str:
    """Pushes a small image as alice (Basic auth on the registry) and returns its digest."""
    s = requests.Session()
    s.auth = ("alice", PASSWORDS["alice"])

    def blob(data: bytes) -> str:
        d = sha256_digest(data)
        r = s.post(w.v2(f"{repo}/blobs/uploads/?digest={d}"), data=data, timeout=30)
        assert r.status_code == 201, r.text
        return d

    cfg = json.dumps({"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    layer = os.urandom(3000)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob(cfg), "size": len(cfg)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": blob(layer), "size": len(layer)}],
    }).encode()
    r = s.put(w.v2(f"{repo}/manifests/{tag}"), data=manifest, headers={"Content-Type": OCI_MANIFEST}, timeout=30)
    assert r.status_code == 201, r.text
    return r.headers["Docker-Content-Digest"]


def test_a_publisher_manages_a_repository_in_the_browser(hub_wharf, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    w, b = hub_wharf, browser
    SHOTS.mkdir(parents=True, exist_ok=True)

    def wait_for(css):
        return WebDriverWait(b, 20).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))

    def shot(name):
        b.save_screenshot(str(SHOTS / f"{name}.png"))

    def css(sel):
        return b.find_element(By.CSS_SELECTOR, sel)

    def navigate(sel):
        """Clicks something that loads a new page and waits until the old one is gone, so
        that the next lookup cannot find an element of the page being left."""
        from selenium.common.exceptions import WebDriverException

        WebDriverWait(b, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")
        old = css("html")
        for attempt in range(3):
            try:
                css(sel).click()
                break
            except WebDriverException:
                # The element was found in a document Chromium was still replacing; find again.
                if attempt == 2:
                    raise
                WebDriverWait(b, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")
                old = css("html")
        def gone(_):
            try:
                old.is_enabled()
                return False
            except WebDriverException:
                # Stale, or (Chromium's other wording) "does not belong to the document".
                return True

        WebDriverWait(b, 20).until(gone)
        WebDriverWait(b, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")

    def sign_in(user):
        b.get(f"{w.url}/login")
        wait_for("form#login")
        css("#username").send_keys(user)
        css("#password").send_keys(PASSWORDS[user])
        navigate("form#login button[type=submit]")
        assert wait_for("#account .username").text == user

    def sign_out():
        navigate("#account form[action='/logout'] button")
        wait_for("form#login")

    sign_in("alice")
    shot("01-home")

    # Create a repository.
    b.get(f"{w.url}/new")
    wait_for("form#new-repo")
    from selenium.webdriver.support.ui import Select
    Select(css("#namespace")).select_by_value("acme")
    css("#name").send_keys("site")
    css("#description").send_keys("A static site server")
    shot("02-create-repository")
    navigate("form#new-repo button[type=submit]")
    wait_for("#pull-command")
    assert b.current_url.endswith("/r/acme/site")
    assert "docker pull" in css("#pull-command").text and "acme/site" in css("#pull-command").text
    push_image(w, "acme/site", "1.0", "amd64")
    push_image(w, "acme/site", "old", "arm64")

    # Settings: a 101-character description is refused and nothing changes.
    b.get(f"{w.url}/r/acme/site/settings")
    wait_for("#info-form")
    field = css("#description-input")
    field.clear()
    field.send_keys("x" * 101)
    navigate("#info-update")
    assert "at most 100" in wait_for("#error").text
    field = css("#description-input")
    field.clear()
    field.send_keys("Serves static sites, fast")
    for slug in ("web-servers", "networking"):
        css(f"#info-form input[value='{slug}']").click()
    navigate("#info-update")
    assert "Saved" in wait_for("#notice").text
    assert css("#description").text == "Serves static sites, fast"
    assert "Web servers" in css("#categories").text

    # The overview: write, preview, update.
    editor = css("#overview-input")
    editor.clear()
    editor.send_keys("# Site\n\nRun **it** with `docker run`.\n")
    navigate("#tab-preview")
    preview = wait_for("#preview")
    assert preview.find_element(By.TAG_NAME, "h1").text == "Site"
    assert preview.find_element(By.TAG_NAME, "strong").text == "it"
    shot("03-overview-preview")
    navigate("#overview-update")
    assert "Saved" in wait_for("#notice").text
    # Markdown with a script is refused.
    editor = css("#overview-input")
    editor.clear()
    editor.send_keys("<script>alert(1)</script>")
    navigate("#overview-update")
    assert "script" in wait_for("#error").text
    b.get(f"{w.url}/r/acme/site")
    assert wait_for("#overview h1").text == "Site"
    shot("04-repository-general")

    # Logos are for program members: apply, and have the administrator approve.
    b.get(f"{w.url}/r/acme/site/settings")
    assert "programs" in wait_for("#logo-title").find_element(By.XPATH, "..").text
    b.get(f"{w.url}/orgs/acme/programs")
    wait_for("#apply-form")
    profile_logo = tmp_path / "acme.png"
    profile_logo.write_bytes(png(512, 512, (200, 60, 20)))
    css("#legal_name").send_keys("Acme Incorporated")
    css("#website").send_keys("https://acme.example")
    css("#phone").send_keys("+1 555 0100")
    css("#email").send_keys("legal@acme.example")
    css("#logo").send_keys(str(profile_logo))
    shot("05-program-application")
    navigate("#apply")
    assert "Application sent" in wait_for("#notice").text
    assert css("#applications .status").text == "pending"
    sign_out()
    sign_in("boss")
    b.get(f"{w.url}/admin")
    wait_for("article[data-application]")
    shot("06-administration")
    navigate("article[data-application] button.approve")
    assert "approved" in wait_for("#notice").text
    # Rate limits: exempt an address range from pull limits.
    navigate("nav[aria-label=Administration] a[href='/admin/rate-limits']")
    assert "off" in wait_for("#limits-status").text
    Select(css("#rule-kind")).select_by_value("range")
    css("#rule-subject").send_keys("192.0.2.7/24")
    css("#rule-exempt").click()
    css("#rule-note").send_keys("Build farm")
    navigate("#rule-save")
    assert "192.0.2.0/24 is exempt" in wait_for("#notice").text
    row = css("#rules tr[data-subject='192.0.2.0/24']")
    assert "exempt" in row.find_element(By.CSS_SELECTOR, "td.limit").text
    assert row.find_element(By.CSS_SELECTOR, "td.note").text == "Build farm"
    b.execute_script("arguments[0].scrollIntoView({block: 'center'})", row)
    shot("06b-rate-limits")
    sign_out()
    sign_in("alice")

    # Upload a repository logo: a 119-pixel image is refused, a good one shows.
    b.get(f"{w.url}/r/acme/site/settings")
    wait_for("#logo-form")
    small = tmp_path / "small.png"
    small.write_bytes(png(119, 119))
    css("#logo-file").send_keys(str(small))
    navigate("#logo-upload")
    assert "at least 120×120" in wait_for("#error").text
    good = tmp_path / "logo.png"
    good_bytes = png(200, 200, (20, 160, 90))
    good.write_bytes(good_bytes)
    css("#logo-file").send_keys(str(good))
    navigate("#logo-upload")
    assert "Logo updated" in wait_for("#notice").text
    assert requests.get(f"{w.url}/r/acme/site/logo", timeout=10).content == good_bytes
    assert "Verified Publisher" in css("#badge").text
    WebDriverWait(b, 10).until(lambda d: d.execute_script("return document.getElementById('repo-logo').complete"))
    assert b.execute_script("return document.getElementById('repo-logo').naturalWidth") == 200
    shot("07-repository-settings")

    # Tags: delete one through the confirmation dialog.
    b.get(f"{w.url}/r/acme/site/tags")
    wait_for("#tags")
    rows = {r.get_attribute("data-tag"): r.text for r in b.find_elements(By.CSS_SELECTOR, "#tags tbody tr")}
    assert set(rows) == {"1.0", "old"}
    assert "linux/arm64" in rows["old"] and "linux/amd64" in rows["1.0"]
    assert "image" in rows["old"] and "config" not in rows["old"]
    css("#select-old").click()
    navigate("#delete-tags")
    dialog = wait_for("dialog#confirm-delete")
    assert dialog.is_displayed() and "old" in dialog.text
    shot("08-delete-tag-dialog")
    navigate("#confirm-delete-button")
    assert "Deleted 1 tag" in wait_for("#notice").text
    assert [r.get_attribute("data-tag") for r in b.find_elements(By.CSS_SELECTOR, "#tags tbody tr")] == ["1.0"]
    shot("09-tags")
    # An image deleted by digest takes its tags with it.
    digest = push_image(w, "acme/site", "2.0", "amd64")
    b.get(f"{w.url}/r/acme/site/tags")
    css("#digest-input").send_keys(digest)
    navigate("#delete-digest")
    assert digest in wait_for("dialog#confirm-delete").text
    navigate("#confirm-delete-button")
    wait_for("#notice")
    assert [r.get_attribute("data-tag") for r in b.find_elements(By.CSS_SELECTOR, "#tags tbody tr")] == ["1.0"]

    # Copy an image to another repository, server-side.
    css("#copy-reference").send_keys("1.0")
    css("#copy-target").send_keys("acme/mirror")
    navigate("#copy-submit")
    assert "Copied" in wait_for("#notice").text
    assert b.current_url.startswith(f"{w.url}/r/acme/mirror/tags")
    assert [r.get_attribute("data-tag") for r in b.find_elements(By.CSS_SELECTOR, "#tags tbody tr")] == ["1.0"]

    # Search with a filter: the verified publisher's repository, with its badge.
    push_image(w, "alice/site-tools", "1", "amd64")
    b.get(f"{w.url}/")
    wait_for("#search-form")
    css("#q").send_keys("site")
    css("#search-form input[value='verified_publisher']").click()
    navigate("#search-form button[type=submit]")
    wait_for("#result-count")
    names = [li.get_attribute("data-name") for li in b.find_elements(By.CSS_SELECTOR, "li.result")]
    assert names == ["acme/site"], names
    assert "Verified Publisher" in css("li.result .badge").text
    shot("10-search-filtered")
    css("#search-form input[value='verified_publisher']").click()
    navigate("#search-form button[type=submit]")
    wait_for("#result-count")
    names = [li.get_attribute("data-name") for li in b.find_elements(By.CSS_SELECTOR, "li.result")]
    assert names == ["acme/site", "alice/site-tools"], names

    # Archive: labelled, and pushes are refused with a clear message.
    b.get(f"{w.url}/r/acme/site/settings")
    navigate("#archive")
    assert wait_for("#archived").text == "Archived"
    s = requests.Session()
    s.auth = ("alice", PASSWORDS["alice"])
    r = s.post(w.v2("acme/site/blobs/uploads/"), timeout=10)
    assert r.status_code == 403 and "archived" in r.text
    b.get(f"{w.url}/u/acme")
    wait_for("#ns-storage")
    shot("11-organization")
    print(f"screenshots in {SHOTS}")


def test_programs_are_decided_from_the_command_line(hub_wharf):
    """An organization applies through the JSON API; an administrator approves with
    `wharf program decide`, and the badge shows on the repository."""
    import base64

    w = hub_wharf
    push_image(w, "acme/cli", "1", "amd64")
    tok = requests.post(f"{w.url}/v2/users/login", json={"username": "alice", "password": PASSWORDS["alice"]}, timeout=10).json()["token"]
    h = {"Authorization": f"Bearer {tok}"}
    r = requests.post(f"{w.url}/v2/orgs/acme/programs", headers=h, timeout=10, json={
        "program": "open_source", "legal_name": "Acme OSS", "website": "https://acme.example",
        "phone": "+1 555 0100", "email": "oss@acme.example", "logo": base64.b64encode(png(600, 600)).decode(),
    })
    assert r.status_code == 201, r.text
    app_id = r.json()["id"]
    listing = run([wharf_bin(), "program", "list", "--status", "pending", "--data-dir", w.data_dir]).stdout
    assert f"{app_id}" in listing and "acme" in listing and "open_source" in listing, listing
    refused = run([wharf_bin(), "program", "decide", str(app_id), "approve", "--as", "alice", "--data-dir", w.data_dir], check=False)
    assert refused.returncode != 0 and "not an administrator" in refused.stderr
    out = run([wharf_bin(), "program", "decide", str(app_id), "approve", "--as", "boss", "--data-dir", w.data_dir]).stdout
    assert "approved" in out
    repo = requests.get(f"{w.url}/v2/namespaces/acme/repositories/cli", timeout=10).json()
    assert repo["badge"] == "open_source"
