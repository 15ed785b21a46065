"""The app shell in a real browser: sign in, see my projects, sign out."""

import pytest

from labeling.services.projects import project_create

from .conftest import screenshot, sign_in, sign_out

pytestmark = pytest.mark.django_db(transaction=True)


def test_sign_in_and_see_my_projects(page, make_user):
    admin = make_user("alice", is_staff=True)
    project_create(created_by=admin, name="Summaries", completions_per_prompt=3)
    page.goto("/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").get_by_text("Wrong username or password").wait_for()
    sign_in(page, "alice", "pw-alice")
    page.get_by_role("heading", name="Summaries").wait_for()
    screenshot(page, "projects")
    sign_out(page)
    assert page.console_errors == [] or all("401" in e or "403" in e for e in page.console_errors)
