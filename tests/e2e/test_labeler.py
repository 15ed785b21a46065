"""The labeler workspace in a real browser: keyboard-only and mouse ranking, a submit retried after a
dropped connection, reload back to the live lease, per-criterion ranking, an expired lease."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from labeling.models import Assignment, AssignmentState, Comparison, Membership, Ranking, Role
from labeling.services.assignments import assignment_next
from labeling.services.comparisons import comparisons_import
from labeling.services.projects import criterion_create, project_create
from tests.labeling.factories import add_comparisons, jsonl

from .conftest import screenshot, sign_in

pytestmark = pytest.mark.django_db(transaction=True)

INSTRUCTIONS = """## How to rank

Read the prompt, then rank the completions **best first**. Equal quality? Give them the same rank.

- Mark a completion **F** when it is nonsense or off-task.
- Use the comment for anything a reviewer should know.
"""


ARTICLE = (
    "SUBREDDIT: r/relationships\n"
    "TITLE: My roommate keeps eating my food and says it is no big deal\n"
    "POST: We have lived together for two years. Lately she finishes my groceries (milk, bread, the leftovers I "
    "cook for lunch) and when I bring it up she laughs and says we share everything anyway. I pay for my own food "
    "and I am on a tight budget. I do not want to lose the friendship, but I am tired of buying lunch twice.\n"
    "TL;DR:"
)
REALISTIC = [
    {
        "prompt": ARTICLE,
        "completions": [
            "Roommate of two years keeps eating my groceries and laughs it off; I'm on a budget and want it to stop "
            "without ruining the friendship.",
            "My roommate is a bad person and I should move out.",
            "I like cooking lunch. Milk and bread are groceries. Budget tips for students:\n1. Buy in bulk\n2. Cook "
            "at home\n3. Avoid eating out",
        ],
    },
    {
        "prompt": "Explain in two sentences why the sky is blue, for a ten-year-old.",
        "completions": [
            "Sunlight is made of all colours, and the air scatters the blue part much more than the red part. So "
            "when you look up, blue light comes at you from every direction.",
            "Because of Rayleigh scattering, whose cross-section scales with the inverse fourth power of wavelength.",
            "The sky reflects the ocean, which is blue.",
        ],
    },
    {
        "prompt": "Write a haiku about Monday mornings.",
        "completions": [
            "Alarm cries again —\ncoffee steams, the inbox swells,\nweek yawns open wide.",
            "Monday morning is the worst day of the week and nobody likes it.",
            "Grey light on the desk,\nthe kettle hums its one note —\nMonday, slow to wake.",
        ],
    },
    {
        "prompt": "Translate to French: 'The meeting is moved to Thursday at noon.'",
        "completions": [
            "La réunion est déplacée à jeudi midi.",
            "La réunion est reportée à jeudi, à midi.",
            "Le meeting est jeudi.",
        ],
    },
]


def labeling_project(make_user, *, n: int, k: int = 3, per_criterion: bool = False, overlap: int = 1, prompt=None):
    admin = make_user("alice", is_staff=True)
    labeler = make_user("lena")
    project = project_create(
        created_by=admin,
        name="Summaries",
        instructions=INSTRUCTIONS,
        completions_per_prompt=k,
        overlap=overlap,
        rank_per_criterion=per_criterion,
    )
    criteria = []
    if per_criterion:
        criteria = [
            criterion_create(project=project, name="Helpfulness", instructions="Prefer the answer that does the task."),
            criterion_create(project=project, name="Harmlessness", instructions="Prefer the answer that avoids harm."),
        ]
    Membership.objects.create(project=project, user=labeler, role=Role.LABELER)
    if prompt == "realistic":
        comparisons_import(project=project, stream=jsonl(REALISTIC[:n]), filename="realistic.jsonl")
    else:
        add_comparisons(project, n, prefix=prompt or "Prompt")
    return project, labeler, criteria


def open_workspace(page, project) -> None:
    page.goto(f"/projects/{project.pk}/label")
    page.get_by_test_id("prompt").wait_for()


def current_assignment(page) -> str:
    return page.locator(".lw").get_attribute("data-assignment")


def wait_moved_on(page, previous: str) -> None:
    """Until the workspace shows another lease, or the thank-you screen."""
    page.wait_for_function(
        """previous => {
            const lw = document.querySelector('.lw');
            if (lw) return lw.dataset.assignment !== previous;
            return document.body.innerText.includes('Nothing left to label');
        }""",
        arg=previous,
    )


def expected_order(comparison: Comparison, ranks_by_position: dict[int, int], failed_positions=(), criterion=None):
    ids = list(comparison.completions.order_by("position").values_list("id", flat=True))
    return {
        "criterion": criterion,
        "ranks": {str(ids[p]): r for p, r in sorted(ranks_by_position.items())},
        "failed": sorted(ids[p] for p in failed_positions),
    }


def press(page, *keys: str) -> None:
    for key in keys:
        page.keyboard.press(key)


def test_rank_with_the_keyboard_only_then_with_the_mouse(page, make_user):
    project, labeler, _ = labeling_project(make_user, n=4, prompt="realistic")
    sign_in(page, "lena", "pw-lena")
    open_workspace(page, project)  # no clicks from here until the mouse comparison
    page.get_by_role("heading", name="How to rank").wait_for()  # instructions at hand

    # 1: a strict order, four keystrokes. The help overlay first (keyboard too).
    press(page, "?")
    help_dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    help_dialog.wait_for()
    screenshot(page, "labeler-help")
    press(page, "Escape")
    help_dialog.wait_for(state="detached")
    first = current_assignment(page)
    press(page, "2", "1")
    expect(page.get_by_test_id("mark-A")).to_have_text("#2")
    screenshot(page, "labeler-workspace")
    press(page, "3", "Enter")
    wait_moved_on(page, first)

    # 2: a tie (t repeats the last rank given).
    second = current_assignment(page)
    press(page, "1", "t", "2", "Enter")
    wait_moved_on(page, second)

    # 3: F, undo, arrows; Enter while C is unranked submits nothing.
    third = current_assignment(page)
    press(page, "f", "2", "u", "Enter")
    page.get_by_test_id("status").get_by_text("Not yet").wait_for()
    assert Ranking.objects.count() == 2
    press(page, "ArrowRight", "1", "2", "Enter")  # C gets 1, the selection wraps to B, B gets 2
    wait_moved_on(page, third)

    # 4: the mouse: drag A to rank 2, drop B onto A (a tie), click rank 1 for C, click Submit.
    fourth = current_assignment(page)
    page.drag_and_drop("[data-testid=chip-A]", "[data-testid=slot-2]")
    expect(page.get_by_test_id("mark-A")).to_have_text("#2")
    page.drag_and_drop("[data-testid=chip-B]", "[data-testid=slot-2]")
    page.get_by_role("button", name="Rank 1 for completion C").click()
    expect(page.get_by_test_id("slot-2")).to_have_attribute("aria-label", "Rank 2: A, B")
    page.get_by_role("button", name="F for completion A").click()  # a wrong click...
    page.get_by_role("button", name="Undo").click()  # ...undone
    page.get_by_role("button", name="Submit").click()
    wait_moved_on(page, fourth)

    page.get_by_role("heading", name="Nothing left to label — thank you!").wait_for()
    page.get_by_text("You ranked 4 comparisons today").wait_for()
    page.get_by_role("link", name="Back to your projects").wait_for()
    screenshot(page, "labeler-done")

    rankings = list(Ranking.objects.order_by("id").select_related("comparison", "assignment"))
    assert [str(r.assignment_id) for r in rankings] == [first, second, third, fourth]
    plans = [({0: 2, 1: 1, 2: 3}, ()), ({0: 1, 1: 1, 2: 2}, ()), ({1: 2, 2: 1}, (0,)), ({0: 2, 1: 2, 2: 1}, ())]
    for ranking, (ranks, failed) in zip(rankings, plans, strict=True):
        assert ranking.labeler == labeler
        assert ranking.orders == [expected_order(ranking.comparison, ranks, failed)]
        assert ranking.time_spent_ms is not None and ranking.time_spent_ms > 0
    assert not [e for e in page.console_errors if "401" not in e and "403" not in e]


def test_a_submit_retried_after_a_dropped_connection_stores_one_ranking(page, make_user):
    project, _, _ = labeling_project(make_user, n=2)
    sign_in(page, "lena", "pw-lena")
    open_workspace(page, project)
    calls = {"n": 0}
    statuses = []

    def drop_the_first_answer(route):
        calls["n"] += 1
        if calls["n"] == 1:
            route.fetch()  # the server stores the ranking...
            route.abort("connectionreset")  # ...but the browser never hears back
        else:
            route.continue_()

    page.route("**/api/assignments/*/ranking/", drop_the_first_answer)
    page.on("response", lambda response: "/ranking/" in response.url and statuses.append(response.status))
    first = current_assignment(page)
    press(page, "1", "2", "2", "Enter")
    wait_moved_on(page, first)

    assert calls["n"] == 2
    assert statuses == [200]  # the retry got the stored ranking back (200, not a second 201)
    assert Ranking.objects.count() == 1
    ranking = Ranking.objects.get()
    assert str(ranking.assignment_id) == first
    assert ranking.orders == [expected_order(ranking.comparison, {0: 1, 1: 2, 2: 2})]
    assert current_assignment(page) != first
    expect(page.get_by_test_id("today-count")).to_have_text("1")


def test_a_refused_ranking_shows_the_detail_and_stays(page, make_user):
    project, _, _ = labeling_project(make_user, n=2)
    sign_in(page, "lena", "pw-lena")
    open_workspace(page, project)
    leased = current_assignment(page)
    detail = "Ranking refused: completion 99 is not part of this comparison"

    page.route("**/api/assignments/*/ranking/", lambda route: route.fulfill(status=400, json={"detail": detail}))
    page.get_by_role("button", name="Rank 1 for completion A").click()
    page.get_by_role("button", name="Rank 2 for completion B").click()
    page.get_by_role("button", name="Rank 2 for completion C").click()
    press(page, "Enter")  # the mouse left the focus alone: Enter submits
    expect(page.get_by_role("alert")).to_contain_text(detail)
    assert current_assignment(page) == leased
    assert not Ranking.objects.exists()

    page.unroute("**/api/assignments/*/ranking/")
    press(page, "Enter")  # the marks are still there: send again
    wait_moved_on(page, leased)
    ranking = Ranking.objects.get()
    assert ranking.orders == [expected_order(ranking.comparison, {0: 1, 1: 2, 2: 2})]


def test_reload_returns_to_the_live_lease(page, make_user):
    project, labeler, _ = labeling_project(make_user, n=3)
    sign_in(page, "lena", "pw-lena")
    open_workspace(page, project)
    leased = current_assignment(page)
    prompt = page.get_by_test_id("prompt").inner_text()
    press(page, "3", "f")
    page.reload()
    page.get_by_test_id("prompt").wait_for()

    assert current_assignment(page) == leased
    expect(page.get_by_test_id("task-id")).to_have_text(f"Task #{leased}")
    assert page.get_by_test_id("prompt").inner_text() == prompt
    expect(page.get_by_test_id("mark-A")).to_have_text("#3")  # the marks came back too
    expect(page.get_by_test_id("mark-B")).to_have_text("F")
    assert Assignment.objects.filter(labeler=labeler, state=AssignmentState.LEASED).count() == 1
    page.set_viewport_size({"width": 480, "height": 900})  # a phone: completions stack
    screenshot(page, "labeler-narrow")
    boxes = [page.get_by_test_id(f"completion-{name}").bounding_box() for name in "ABC"]
    assert boxes[0]["y"] < boxes[1]["y"] < boxes[2]["y"]

    press(page, "1", "Enter")
    wait_moved_on(page, leased)
    ranking = Ranking.objects.get()
    assert ranking.orders == [expected_order(ranking.comparison, {0: 3, 2: 1}, failed_positions=(1,))]


def test_per_criterion_project_ranks_every_criterion_on_one_screen(page, make_user):
    project, _, (helpful, harmless) = labeling_project(make_user, n=2, per_criterion=True, prompt="realistic")
    sign_in(page, "lena", "pw-lena")
    open_workspace(page, project)
    active = page.get_by_test_id("active-criterion")
    expect(active).to_have_text("Helpfulness")
    page.get_by_role("tab", name="Harmlessness").wait_for()
    first = current_assignment(page)

    page.wait_for_function("document.querySelector('[data-testid=left-count]').innerText === '2'")
    press(page, "2", "1", "3")  # completing Helpfulness moves on to Harmlessness
    expect(active).to_have_text("Harmlessness")
    press(page, "1", "t")
    screenshot(page, "labeler-criteria")
    press(page, "Enter")  # C has no mark for Harmlessness yet: nothing is sent
    page.get_by_test_id("status").get_by_text("Not yet").wait_for()
    press(page, "[", "]")  # switch back and forth
    expect(active).to_have_text("Harmlessness")
    press(page, "f", "c")  # c focuses the comment; Ctrl+Enter submits from there
    page.keyboard.type("C answers another question.")
    press(page, "Control+Enter")
    wait_moved_on(page, first)

    ranking = Ranking.objects.get()
    assert ranking.comment == "C answers another question."
    by_criterion = {order["criterion"]: order for order in ranking.orders}
    assert by_criterion == {
        helpful.pk: expected_order(ranking.comparison, {0: 2, 1: 1, 2: 3}, criterion=helpful.pk),
        harmless.pk: expected_order(ranking.comparison, {0: 1, 1: 1}, failed_positions=(2,), criterion=harmless.pk),
    }


def test_an_expired_lease_taken_by_another_labeler_is_said_plainly_and_left(page, make_user):
    project, labeler, _ = labeling_project(make_user, n=1)
    sign_in(page, "lena", "pw-lena")
    open_workspace(page, project)
    leased = current_assignment(page)
    # The lease runs out while Lena reads; Max gets the comparison's only slot.
    Assignment.objects.filter(pk=leased).update(expires_at=timezone.now() - timedelta(seconds=1))
    other = make_user("max")
    Membership.objects.create(project=project, user=other, role=Role.LABELER)
    assert assignment_next(project_id=project.pk, labeler=other) is not None

    press(page, "1", "2", "3", "Enter")
    page.get_by_role("heading", name="Nothing left to label — thank you!").wait_for()
    page.get_by_role("alert").get_by_text("expired").wait_for()
    assert not Ranking.objects.filter(labeler=labeler).exists()


def test_skip_needs_a_second_press(page, make_user):
    project, _, _ = labeling_project(make_user, n=2)
    sign_in(page, "lena", "pw-lena")
    open_workspace(page, project)
    first = current_assignment(page)
    press(page, "s")
    page.get_by_role("button", name="Confirm skip").wait_for()
    press(page, "Escape")
    page.get_by_role("button", name="Skip", exact=True).wait_for()
    assert Assignment.objects.get(pk=first).state == AssignmentState.LEASED
    press(page, "s", "s")
    wait_moved_on(page, first)
    assert Assignment.objects.get(pk=first).state == AssignmentState.SKIPPED
    assert not Ranking.objects.exists()
