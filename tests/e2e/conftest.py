"""End-to-end tests: Debian's chromium, headless, driven by Playwright against a live server.

No browser is downloaded: Playwright launches /usr/bin/chromium (or $CHROMIUM) with the flags this
machine needs, and a fresh profile each test. Screenshots of the main screens go to
$E2E_ARTIFACTS (default var/e2e-artifacts) for people to look at.
"""

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import missing_service

# The tiny-model fixtures of tests/ml, shared (a conftest applies to its own folder only).
from tests.ml.conftest import make_tiny_model, tiny_model_dir, tiny_tokenizer, tiny_tokenizer_json  # noqa: F401

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# Playwright's sync API keeps an event loop in this thread; the ORM calls that tests make between
# browser steps are still plain synchronous calls (Playwright's documented setting for Django).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
ARTIFACTS = Path(os.environ.get("E2E_ARTIFACTS", settings.BASE_DIR / "var" / "e2e-artifacts"))


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which(os.environ.get("CHROMIUM", "chromium"))
    if path is None:
        missing_service("this test needs Debian's chromium on PATH (apt-get install chromium)")
    if not (settings.BASE_DIR / "frontend" / "dist" / "index.html").is_file():
        missing_service("the frontend is not built: run `npm ci && npm run build` in frontend/ (./dev test does)")
    return path


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server, request):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(15_000)
    console_errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
    page.console_errors = console_errors
    yield page
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        screenshot(page, f"FAILED-{request.node.name}")
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_out(page) -> None:
    """Sign out and wait for the sign-in form: a navigation before the sign-out request ends would
    abort it, leaving the session signed in."""
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign in").wait_for()


def sign_in(page, username: str, password: str) -> None:
    page.goto("/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Projects").wait_for()
