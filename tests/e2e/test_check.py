"""`wharf check`: says whether the configured database and blob store are reachable and
writable, and when one is not, names the setting and never prints a password."""

from __future__ import annotations

import os
import subprocess

from helpers import need, scale_env_missing, wharf_bin


def check(*args: str, env: dict[str, str] | None = None, cwd=None) -> subprocess.CompletedProcess:
    binary = wharf_bin()
    need(binary.exists(), f"wharf binary not found at {binary}")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("WHARF_")}
    full_env.update(env or {})
    return subprocess.run(
        [str(binary), "check", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=full_env,
        cwd=cwd,
    )


def test_embedded_default_checks_out(tmp_path):
    r = check("--data-dir", str(tmp_path / "data"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "database sqlite://" in r.stdout and "writable" in r.stdout
    assert "storage " in r.stdout


def test_unreachable_database_is_named_without_its_password(tmp_path):
    r = check("--data-dir", str(tmp_path), "--database", "postgres://wharf:s3cret@127.0.0.1:1/nowhere", cwd=tmp_path)
    assert r.returncode != 0
    assert "database postgres://wharf:***@127.0.0.1:1/nowhere" in r.stderr, r.stderr
    assert "s3cret" not in r.stderr + r.stdout


def test_malformed_settings_name_the_key(tmp_path):
    r = check("--data-dir", str(tmp_path), "--database", "mysql://x", cwd=tmp_path)
    assert r.returncode != 0 and "--database" in r.stderr, r.stderr
    r = check("--data-dir", str(tmp_path), "--storage", "s3://Bad_Bucket", cwd=tmp_path)
    assert r.returncode != 0 and "bucket name" in r.stderr and "--storage" in r.stderr, r.stderr
    r = check("--data-dir", str(tmp_path), "--storage", "s3://ok?colour=blue", cwd=tmp_path)
    assert r.returncode != 0 and "colour" in r.stderr, r.stderr


def test_scale_backends_check_out_and_bad_credentials_are_refused(tmp_path):
    missing = scale_env_missing()
    need(not missing, f"scale-out backends not configured ({', '.join(missing)})")
    e = os.environ
    storage = f"s3://{e['WHARF_TEST_S3_BUCKET']}/check?endpoint={e['WHARF_TEST_S3_ENDPOINT']}&region={e.get('WHARF_TEST_S3_REGION', 'garage')}"
    creds = {"WHARF_S3_ACCESS_KEY_ID": e["WHARF_TEST_S3_ACCESS_KEY"], "WHARF_S3_SECRET_ACCESS_KEY": e["WHARF_TEST_S3_SECRET_KEY"]}
    r = check("--database", e["WHARF_TEST_PG_URL"], "--storage", storage, env=creds, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "reachable, migrated and writable" in r.stdout and "storage s3://" in r.stdout
    wrong = dict(creds, WHARF_S3_SECRET_ACCESS_KEY="not-the-secret-key-at-all")
    r = check("--database", e["WHARF_TEST_PG_URL"], "--storage", storage, env=wrong, cwd=tmp_path)
    assert r.returncode != 0
    assert "storage s3://" in r.stderr and "not writable" in r.stderr, r.stderr
    assert "not-the-secret-key-at-all" not in r.stderr + r.stdout
