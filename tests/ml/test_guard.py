"""The reward-hacking guard's detectors and flags on plain sample rows (no torch, no Django)."""

from training.ml import guard


def sample(i, completion, before="Sure, here is how.", reward=0.0, reward_before=0.0, **extra):
    return {
        "prompt_id": i,
        "prompt": f"Human: question {i}\n\nAssistant:",
        "completion": completion,
        "completion_before": before,
        "reward": reward,
        "reward_before": reward_before,
        **extra,
    }


def test_detectors():
    assert guard.writes_user_turn(" Sure.\n\nHuman: and what about cats?")
    assert guard.writes_user_turn("Fine.\nUser: next")
    assert not guard.writes_user_turn("A human: someone who ...")  # not at a line start
    assert guard.refuses("I'm sorry, but I can't help with that.")
    assert guard.refuses("As an AI, I cannot do that")
    assert not guard.refuses("Sorry to hear that! Here is a recipe.")


def test_a_policy_that_writes_the_users_turn_is_flagged():
    rows = [sample(i, f"Sure.\n\nHuman: and then {i}?", reward=2.0) for i in range(8)]
    rows += [sample(100 + i, "Sure, it works like this.", reward=1.0) for i in range(12)]
    report = guard.report(rows)
    assert report["after"]["user_turn_rate"] == 8 / 20 and report["before"]["user_turn_rate"] == 0
    codes = [f["code"] for f in guard.flags(report, {"reward_first": 0.1, "reward_final": 1.0})]
    assert codes == ["writes_user_turn"]


def test_over_refusal_compares_helpful_and_harmless_prompts():
    refusal = "I'm sorry, I can't help with that."
    rows = [sample(i, refusal) for i in range(10)]  # refuses every helpful prompt...
    rows += [sample(100 + i, refusal, before=refusal) for i in range(10)]  # ...and the red-team ones, as before
    groups = dict.fromkeys(range(10), "helpful") | {100 + i: "harmless" for i in range(10)}
    report = guard.report(rows, groups)
    assert report["groups"]["helpful"] == {"n": 10, "refusal_rate_before": 0.0, "refusal_rate_after": 1.0}
    assert report["groups"]["harmless"]["refusal_rate_after"] == 1.0
    codes = {f["code"] for f in guard.flags(report, {})}
    assert codes == {"refuses", "over_refusal"}


def test_reward_that_rises_alone_is_flagged():
    rows = [sample(i, "Fine answer.", reward=1.0 + i, heldout_reward=0.1, heldout_reward_before=0.2) for i in range(6)]
    report = guard.report(rows, extremes=2)
    assert [r["prompt_id"] for r in report["best"]] == [5, 4] and [r["prompt_id"] for r in report["worst"]] == [0, 1]
    rose = {"eval_reward_gain_low": 0.3}
    codes = [f["code"] for f in guard.flags(report, rose, {"win_rate": 0.3, "n": 20})]
    assert codes == ["heldout_reward_flat", "humans_disagree"]
    # The held-out reward rose too, and people prefer the policy: nothing to flag.
    better = {**rose, "eval_heldout_reward_before": 0.1, "eval_heldout_reward_after": 0.4}
    assert guard.flags(report, better, {"win_rate": 0.7, "n": 20}) == []
    assert guard.flags(report, {"eval_reward_gain_low": -0.1}, {"win_rate": 0.3, "n": 20}) == []


def test_one_odd_sample_is_not_a_trend():
    rows = [sample(0, "ok\nHuman: hi"), *(sample(i, "ok") for i in range(1, 30))]
    assert guard.flags(guard.report(rows), {}) == []
