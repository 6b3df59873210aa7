"""The web pages in a real browser (headless Chromium driven by Selenium): sign in with a
password, see the account, sign out; a wrong password shows the error."""

from __future__ import annotations

import pytest

from helpers import run, wharf_bin

PASSWORD = "web-password-1"



@pytest.fixture
def web_wharf(wharf_factory, monkeypatch):
    monkeypatch.setenv("WHARF_AUTH", "true")
    w = wharf_factory()
    run([wharf_bin(), "user", "add", "alice", "--email", "alice@example.com", "--password-stdin",
         "--data-dir", w.data_dir], input=PASSWORD + "\n")
    return w


def test_sign_in_and_out_in_a_browser(web_wharf, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    w, b = web_wharf, browser

    def wait_for(css):
        """A click that submits a form returns before the next page is there: wait for it."""
        return WebDriverWait(b, 20).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))

    b.get(f"{w.url}/")
    assert b.find_element(By.CSS_SELECTOR, "#account a[href='/login']").text == "Sign in"
    b.find_element(By.CSS_SELECTOR, "#account a[href='/login']").click()

    wait_for("form#login")
    b.find_element(By.ID, "username").send_keys("alice")
    b.find_element(By.ID, "password").send_keys("wrong-password")
    b.find_element(By.CSS_SELECTOR, "form#login button[type=submit]").click()
    assert wait_for("p.error").text == "Incorrect username or password."

    b.find_element(By.ID, "password").send_keys(PASSWORD)
    b.find_element(By.CSS_SELECTOR, "form#login button[type=submit]").click()
    assert wait_for("#account .username").text == "alice"
    assert b.current_url.rstrip("/") == w.url
    cookies = {c["name"]: c for c in b.get_cookies()}
    assert cookies["wharf_session"]["httpOnly"] and cookies["wharf_session"]["sameSite"] == "Lax"
    assert cookies["wharf_csrf"]["sameSite"] == "Strict"

    b.find_element(By.CSS_SELECTOR, "#account form[action='/logout'] button").click()
    wait_for("form#login")
    assert "/login" in b.current_url
    b.get(f"{w.url}/")
    assert b.find_elements(By.CSS_SELECTOR, "#account .username") == []
