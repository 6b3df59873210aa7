"""The organization's Analytics page in a real browser (Debian's headless Chromium through
chromedriver): clients with docker's, containerd's and skopeo's user agents pull two
repositories from different loopback addresses, wharf classifies the requests, an
administrator enables analytics for the organization, and a member opens the dashboard: the
chart has a point per week and repository with the pulled numbers, hovering a point shows
them in the tooltip, the Share link reopens the same view (monthly, 6 months, one
repository) in a fresh navigation, and a CSV link downloads the report of the period.

Screenshots of each step go under $WHARF_SCREENSHOTS (default target/e2e-screenshots)."""

from __future__ import annotations

import csv
import io
import os
import time
from pathlib import Path

import pytest
import requests

import analytics_setup
from analytics_setup import CONTAINERD, DOCKER, SKOPEO, acme_wharf, manifest_request, wharf_cli
from helpers import require_bin

PASSWORDS = {"alice": "alice-dash-pass-1", "mia": "mia-dash-pass-22", "boss": "boss-dash-pass-333"}
SHOTS = Path(os.environ.get("WHARF_SCREENSHOTS", Path(__file__).resolve().parents[2] / "target" / "e2e-screenshots"))


@pytest.fixture
def dash_wharf(wharf_factory, monkeypatch):
    """wharf with auth on: alice owns acme, mia is a member, boss administers."""
    return acme_wharf(wharf_factory, monkeypatch, PASSWORDS)


def push(w, repo: str) -> str:
    return analytics_setup.push(w, repo, PASSWORDS["alice"])


def test_a_member_reads_shares_and_downloads_the_analytics_dashboard(dash_wharf, browser):
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    require_bin("curl")
    w, b = dash_wharf, browser
    SHOTS.mkdir(parents=True, exist_ok=True)

    app = push(w, "acme/app")
    push(w, "acme/web")
    # acme/app: docker at .2 pulls by tag (HEAD then GET by digest); docker at .3 only checks
    # the version (HEAD); containerd at .4 pulls by digest; skopeo at .5 pulls by tag (GET).
    # acme/web: skopeo at .2 pulls by tag.
    manifest_request(w, "127.0.0.2", DOCKER, "HEAD", "acme/app", "v1")
    manifest_request(w, "127.0.0.2", DOCKER, "GET", "acme/app", app)
    manifest_request(w, "127.0.0.3", DOCKER, "HEAD", "acme/app", "v1")
    manifest_request(w, "127.0.0.4", CONTAINERD, "GET", "acme/app", app)
    manifest_request(w, "127.0.0.5", SKOPEO, "GET", "acme/app", "v1")
    manifest_request(w, "127.0.0.2", SKOPEO, "GET", "acme/web", "v1")
    # (app: 3 pulls, 1 version check, 4 addresses; web: 1 pull, 1 address)
    port = w.port
    w.stop()  # the writer stores what is queued on the way out
    wharf_cli(w, "analytics", "classify", "--final")
    w.start(port=port)

    this_week = time.strftime("%G-W%V", time.gmtime())
    this_month = time.strftime("%Y-%m", time.gmtime())

    def wait_for(css):
        return WebDriverWait(b, 20).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))

    def css(sel):
        return b.find_element(By.CSS_SELECTOR, sel)

    def all_of(sel):
        return b.find_elements(By.CSS_SELECTOR, sel)

    def shot(name):
        b.save_screenshot(str(SHOTS / f"{name}.png"))

    def loaded(_=None):
        WebDriverWait(b, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")

    def navigate(sel):
        """Clicks something that loads a new page and waits until the old one is gone."""
        loaded()
        old = css("html")
        css(sel).click()

        def gone(_):
            try:
                old.is_enabled()
                return False
            except WebDriverException:
                return True

        WebDriverWait(b, 20).until(gone)
        loaded()

    def sign_in(user):
        b.get(f"{w.url}/login")
        wait_for("form#login")
        css("#username").send_keys(user)
        css("#password").send_keys(PASSWORDS[user])
        navigate("form#login button[type=submit]")
        assert wait_for("#account .username").text == user

    # Before an administrator enables it, a member is told who can.
    sign_in("mia")
    b.get(f"{w.url}/orgs/acme/analytics")
    assert "An administrator can enable them" in wait_for("#analytics-disabled").text
    shot("analytics-01-not-enabled")
    navigate("#account form[action='/logout'] button")

    # The administrator enables analytics for acme on the Administration page.
    sign_in("boss")
    b.get(f"{w.url}/admin")
    wait_for("form#analytics-form")
    css("#analytics-namespace").send_keys("acme")
    navigate("form#analytics-form button[value=enable]")
    assert "Analytics enabled for acme" in wait_for("#notice").text
    assert len(all_of("#analytics-namespaces li[data-namespace='acme']")) == 1
    shot("analytics-02-admin-enabled")
    navigate("#account form[action='/logout'] button")

    # A member opens it from the organization's page.
    sign_in("mia")
    b.get(f"{w.url}/u/acme")
    navigate("a#analytics-link")
    wait_for("svg#chart")
    shot("analytics-03-weekly")
    weeks = len(all_of("#downloads tbody tr"))
    assert 13 <= weeks <= 14, weeks
    for repo, pulls, checks, ips in [("app", 3, 1, 4), ("web", 1, 0, 1)]:
        points = all_of(f"svg#chart circle.point[data-repo='{repo}']")
        assert len(points) == weeks, (repo, len(points))
        last = points[-1]
        assert last.get_attribute("data-period") == this_week
        assert (last.get_attribute("data-pulls"), last.get_attribute("data-version-checks"),
                last.get_attribute("data-unique-ips")) == (str(pulls), str(checks), str(ips)), repo
        assert all(p.get_attribute("data-pulls") == "0" for p in points[:-1])
        cells = [td.text for td in all_of(f"#series-table tr[data-repo='{repo}'][data-period='{this_week}'] td")]
        assert cells[3:] == [str(pulls), str(checks), str(ips)], cells

    # Hovering the current week's point of app shows its numbers.
    tip = css("#chart-tooltip")
    assert not tip.is_displayed()
    point = all_of("svg#chart circle.point[data-repo='app']")[-1]
    ActionChains(b).move_to_element(point).perform()
    WebDriverWait(b, 10).until(lambda _: tip.is_displayed())
    text = tip.text
    assert this_week in text and "app" in text, text
    assert "Pulls: 3" in text and "Unique IPs: 4" in text and "Version checks: 1" in text, text
    shot("analytics-04-tooltip")
    ActionChains(b).move_to_element(css("h1")).perform()
    WebDriverWait(b, 10).until(lambda _: not tip.is_displayed())

    # Monthly, 6 months, app only.
    css("input[name=granularity][value=monthly]").click()
    css("input[name=months][value='6']").click()
    choose = Select(css("select#repos"))
    choose.deselect_all()
    choose.select_by_value("app")
    navigate("form#view button[type=submit]")
    wait_for("svg#chart")
    points = all_of("svg#chart circle.point[data-repo='app']")
    assert len(points) == 6 and not all_of("svg#chart circle.point[data-repo='web']")
    assert points[-1].get_attribute("data-period") == this_month
    assert points[-1].get_attribute("data-pulls") == "3"
    share = css("a#share-link").get_attribute("href")
    assert share.startswith(w.url) or share.startswith("http"), share
    assert "granularity=monthly" in share and "months=6" in share and "repo=app" in share, share
    css("#copy-share").click()
    WebDriverWait(b, 10).until(lambda _: css("#copy-status").text != "")
    assert css("#copy-status").text in ("Link copied.", f"Copy the link: {share}"), css("#copy-status").text
    shot("analytics-05-monthly-app")

    # The shared link, opened afresh, shows the same view.
    b.get("about:blank")
    b.get(share)
    wait_for("svg#chart")
    assert css("input[name=granularity][value=monthly]").is_selected()
    assert css("input[name=months][value='6']").is_selected()
    assert [o.get_attribute("value") for o in Select(css("select#repos")).all_selected_options] == ["app"]
    points = all_of("svg#chart circle.point[data-repo='app']")
    assert len(points) == 6 and points[-1].get_attribute("data-pulls") == "3"
    assert not all_of("svg#chart circle.point[data-repo='web']")
    shot("analytics-06-shared-view")

    # The month's repository summary, downloaded with the browser's session.
    link = css(f"#downloads tr[data-period='{this_month}'] a[data-report='repository-summary']")
    href = link.get_attribute("href")
    jar = {c["name"]: c["value"] for c in b.get_cookies()}
    r = requests.get(href, cookies=jar, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"].startswith("attachment;"), r.headers
    assert r.headers["content-type"].startswith("text/csv")
    rows = {row["Repository"]: row for row in csv.DictReader(io.StringIO(r.text))}
    assert (rows["app"]["Unique IP address"], rows["app"]["Pull by tag"], rows["app"]["Pull by digest"],
            rows["app"]["Version check"]) == ("4", "2", "1", "1"), rows
    assert (rows["web"]["Pull by tag"], rows["web"]["Unique IP address"]) == ("1", "1"), rows
    # Without the session it is the missing-namespace page, like the dashboard itself.
    assert requests.get(href, timeout=30).status_code == 404
    assert requests.get(f"{w.url}/orgs/acme/analytics", timeout=30).status_code == 404
