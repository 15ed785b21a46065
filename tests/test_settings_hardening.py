"""config.settings under given environments, each imported in a fresh interpreter (settings are read
once per process): the embedded default's SECRET_KEY rule, cookie and proxy settings, the cache."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NAMES = (
    "DEBUG",
    "SECRET_KEY",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "CSRF_COOKIE_HTTPONLY",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "X_FRAME_OPTIONS",
    "SECURE_HSTS_SECONDS",
    "SECURE_PROXY_SSL_HEADER",
    "CACHES",
    "RANKFORGE_THROTTLE_RATES",
    "REST_FRAMEWORK",
)
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - the bind address under test, nothing listens
POSTGRES = "postgres://u:p@db.example:5432/rankforge"  # never connected to: settings only parse it


def load(tmp_path, **env) -> subprocess.CompletedProcess:
    code = (
        "import json, config.settings as s\n"
        f"print(json.dumps({{n: getattr(s, n, None) for n in {NAMES!r}}}, default=str))"
    )
    clean = {"PATH": os.environ["PATH"], "RANKFORGE_VAR_DIR": str(tmp_path / "var"), **env}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60)


def values(tmp_path, **env) -> dict:
    done = load(tmp_path, **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("bind", [ALL_INTERFACES, "::", "10.1.2.3", "rankforge.example.org"])
def test_embedded_default_without_secret_key_refuses_a_non_loopback_bind(tmp_path, bind):
    done = load(tmp_path, BIND_ADDRESS=bind)
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr
    assert f"bound to {bind!r} (BIND_ADDRESS)" in done.stderr
    assert not (tmp_path / "var" / "secret_key").exists()


@pytest.mark.parametrize("bind", [None, "127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_embedded_default_on_loopback_starts_with_a_random_private_key(tmp_path, bind):
    env = {} if bind is None else {"BIND_ADDRESS": bind}
    first = values(tmp_path, **env)["SECRET_KEY"]
    assert str(ROOT) not in first and len(first) >= 50
    assert values(tmp_path, **env)["SECRET_KEY"] == first  # stable: web and worker processes agree
    key_file = tmp_path / "var" / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_debug_or_a_secret_key_lifts_the_loopback_rule(tmp_path):
    assert values(tmp_path, BIND_ADDRESS=ALL_INTERFACES, DEBUG="1")["DEBUG"] is True
    assert values(tmp_path, BIND_ADDRESS=ALL_INTERFACES, SECRET_KEY="s3cret")["SECRET_KEY"] == "s3cret"


def test_a_deployment_still_needs_a_secret_key(tmp_path):
    done = load(tmp_path, DATABASE_URL=POSTGRES)
    assert done.returncode != 0 and "SECRET_KEY must be set" in done.stderr


def test_deployment_with_debug_off_gets_secure_cookies_and_hsts(tmp_path):
    s = values(tmp_path, DATABASE_URL=POSTGRES, SECRET_KEY="s3cret")
    assert s["SESSION_COOKIE_SECURE"] is True and s["CSRF_COOKIE_SECURE"] is True
    assert s["SECURE_HSTS_SECONDS"] == 3600
    assert s["SESSION_COOKIE_HTTPONLY"] is True
    assert s["CSRF_COOKIE_HTTPONLY"] is False  # the UI reads the csrftoken cookie
    assert s["SECURE_CONTENT_TYPE_NOSNIFF"] is True and s["X_FRAME_OPTIONS"] == "DENY"
    assert s["SECURE_PROXY_SSL_HEADER"] is None  # only behind a proxy that says so
    assert s["REST_FRAMEWORK"]["NUM_PROXIES"] == 0


def test_embedded_default_over_plain_http_keeps_cookies_usable(tmp_path):
    """A Secure cookie is never sent back over http://127.0.0.1: sign-in would break."""
    s = values(tmp_path)
    assert s["SESSION_COOKIE_SECURE"] is False and s["CSRF_COOKIE_SECURE"] is False
    assert s["SECURE_HSTS_SECONDS"] is None
    assert s["X_FRAME_OPTIONS"] == "DENY" and s["SESSION_COOKIE_HTTPONLY"] is True


def test_rankforge_https_overrides_the_default_both_ways(tmp_path):
    plain = values(tmp_path, DATABASE_URL=POSTGRES, SECRET_KEY="s3cret", RANKFORGE_HTTPS="0")
    assert plain["SESSION_COOKIE_SECURE"] is False and plain["SECURE_HSTS_SECONDS"] is None
    secure = values(tmp_path, RANKFORGE_HTTPS="1", RANKFORGE_HSTS_SECONDS="60")
    assert secure["SESSION_COOKIE_SECURE"] is True and secure["SECURE_HSTS_SECONDS"] == 60
    debug = values(tmp_path, DATABASE_URL=POSTGRES, DEBUG="1")
    assert debug["SESSION_COOKIE_SECURE"] is False


def test_behind_a_proxy_trusts_its_headers_and_only_then(tmp_path):
    s = values(tmp_path, DATABASE_URL=POSTGRES, SECRET_KEY="s3cret", RANKFORGE_BEHIND_PROXY="1")
    assert s["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert s["REST_FRAMEWORK"]["NUM_PROXIES"] == 1
    two = values(tmp_path, RANKFORGE_BEHIND_PROXY="1", RANKFORGE_NUM_PROXIES="2")
    assert two["REST_FRAMEWORK"]["NUM_PROXIES"] == 2


def test_cache_is_shared_between_processes_without_a_setup_step(tmp_path):
    files = values(tmp_path)["CACHES"]["default"]
    assert files["BACKEND"].endswith("FileBasedCache") and files["LOCATION"] == str(tmp_path / "var" / "cache")
    redis = values(tmp_path, CELERY_BROKER_URL="redis://broker:6379/2")["CACHES"]["default"]
    assert redis["BACKEND"].endswith("RedisCache") and redis["LOCATION"] == "redis://broker:6379/2"
    assert redis["KEY_PREFIX"]  # shares the broker's database without touching its keys
    preferred = values(tmp_path, REDIS_URL="redis://cache:6379/1", CELERY_BROKER_URL="redis://broker:6379/2")
    assert preferred["CACHES"]["default"]["LOCATION"] == "redis://cache:6379/1"


def test_throttle_rates_come_from_the_environment(tmp_path):
    rates = values(tmp_path, RANKFORGE_THROTTLE_LOGIN="3/hour", RANKFORGE_THROTTLE_LOGIN_IP="off")
    assert rates["RANKFORGE_THROTTLE_RATES"] == {"login": "3/hour", "login_ip": None}
