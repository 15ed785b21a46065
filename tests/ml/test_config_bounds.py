"""Upper bounds on the knobs a run config hands a worker, and the reward prompt_template's placeholders.

Every kind's config is checked through ``config_for`` (what the API and the CLI call): a value past
its bound is a ConfigError naming the field and the bound, never a worker asked for 10**6 threads.
"""

import pytest

from training.ml.configs import MAX_TORCH_THREADS, ConfigError, available_configs, config_for
from training.ml.constitution import EXAMPLE_PRINCIPLES

MINIMAL = {
    "generate": {"model_path": "m", "prompts_file": "p.jsonl"},
    "sft": {"model_path": "m", "train_file": "t.jsonl"},
    "reward_model": {"model_path": "m", "train_file": "t.jsonl"},
    "dpo": {"model_path": "m", "train_file": "t.jsonl"},
    "rlhf": {"model_path": "m", "train_file": "t.jsonl", "reward_function": "length:10"},
    "evaluate": {"model_path": "m", "data_file": "d.jsonl"},
    "cai_revise": {"model_path": "m", "prompts_file": "p.jsonl", "principles": EXAMPLE_PRINCIPLES},
    "ai_feedback": {"model_path": "m", "comparisons_file": "c.jsonl", "principles": EXAMPLE_PRINCIPLES},
}
TRAINING_KINDS = ("sft", "reward_model", "dpo", "rlhf")


def refused(kind: str, **fields) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        config_for(kind, {**MINIMAL[kind], **fields})
    return caught.value


def test_every_kind_is_covered_and_its_minimal_config_is_valid():
    assert set(MINIMAL) == set(available_configs())
    for kind, data in MINIMAL.items():
        config_for(kind, data)


@pytest.mark.parametrize("kind", sorted(MINIMAL))
@pytest.mark.parametrize("threads", [0, -1, MAX_TORCH_THREADS + 1, 10**6])
def test_torch_threads_is_bounded_in_every_kind(kind, threads):
    error = refused(kind, torch_threads=threads)
    assert error.field == "torch_threads"
    assert f"must be 1..{MAX_TORCH_THREADS}" in error.message and str(threads) in error.message


@pytest.mark.parametrize("kind", sorted(MINIMAL))
def test_torch_threads_within_bounds_or_null_is_accepted(kind):
    assert config_for(kind, {**MINIMAL[kind], "torch_threads": MAX_TORCH_THREADS}).torch_threads == MAX_TORCH_THREADS
    assert config_for(kind, {**MINIMAL[kind], "torch_threads": None}).torch_threads is None


@pytest.mark.parametrize("kind", sorted(MINIMAL))
@pytest.mark.parametrize("seed", [-1, 2**32, 10**30])
def test_seed_is_bounded_in_every_kind(kind, seed):
    error = refused(kind, seed=seed)
    assert error.field == "seed" and "must be 0..4294967295" in error.message


@pytest.mark.parametrize("kind", TRAINING_KINDS)
@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("num_train_epochs", 1e9, "must be in (0, 1000]"),
        ("max_steps", 10**12, "1..10000000"),
        ("save_steps", 10**12, "must be 0..10000000"),
        ("save_total_limit", 10**12, "must be 0..10000000"),
        ("lora_alpha", 10**9, "must be 1..65536"),
        ("per_device_train_batch_size", 10**6, "must be 1..4096"),
        ("max_length", 10**9, "must be 8..131072"),
    ],
)
def test_training_knobs_have_upper_bounds(kind, field, value, says):
    error = refused(kind, **{field: value})
    assert error.field == field and says in error.message


@pytest.mark.parametrize(
    ("kind", "field", "value", "says"),
    [
        ("generate", "max_prompt_tokens", 10**9, "must be 1..131072"),
        ("generate", "max_new_tokens", 10**6, "must be 1..4096"),
        ("generate", "batch_size", 10**6, "must be 1..512"),
        ("generate", "k", 100, "must be 1..9"),
        ("rlhf", "kl_horizon", 10**12, "must be 1..100000000"),
        ("rlhf", "num_generations", 1000, "must be 1..64"),
        ("rlhf", "rollout_batch_size", 10**6, "must be 1..4096"),
        ("rlhf", "ppo_epochs", 10**4, "must be 1..100"),
        ("evaluate", "variants", [f"v{i}" for i in range(65)], "at most 64 prompt variants"),
        ("evaluate", "generations", [{"name": f"g{i}"} for i in range(33)], "at most 32 generation configs"),
        ("ai_feedback", "batch_size", 10**6, "must be 1..512"),
        ("cai_revise", "rounds", 100, "must be 1..8"),
    ],
)
def test_kind_specific_knobs_have_upper_bounds(kind, field, value, says):
    error = refused(kind, **{field: value})
    assert error.field == field and says in error.message


def test_reward_stop_strings_are_short():
    error = refused("rlhf", reward_stop_strings=["Human:", "x" * 257])
    assert error.field == "reward_stop_strings[1]" and "1..256 characters" in error.message


@pytest.mark.parametrize(
    ("template", "names"),
    [
        ("{prompt.__class__} {completion}", "{prompt.__class__}"),
        ("{prompt[0]} {completion}", "{prompt[0]}"),
        ("{completion.__init__.__globals__}", "{completion.__init__.__globals__}"),
        ("{prompt} {completion} {secret}", "{secret}"),
        ("{0} {completion}", "{0}"),
        ("{} {completion}", "{}"),
        ("{prompt:>999999999} {completion}", "{prompt:>999999999}"),
        ("{prompt} {completion:{prompt}}", "{completion:{prompt}}"),
        ("{prompt!r} {completion}", "{prompt!r}"),
        ("{prompt", "not a valid template"),
        ("{prompt} and no completion", "{completion} once"),
        ("{prompt} {completion} {completion}", "{completion} once"),
    ],
)
def test_reward_prompt_template_accepts_only_plain_prompt_and_completion(template, names):
    error = refused("reward_model", prompt_template=template)
    assert error.field == "prompt_template" and names in error.message


def test_reward_prompt_template_length_is_bounded():
    error = refused("reward_model", prompt_template="{prompt}{completion}" + "x" * 10_000)
    assert error.field == "prompt_template" and "at most 10,000 characters" in error.message


@pytest.mark.parametrize(
    "template", ["{prompt}\n{completion}", "Q: {prompt} A: {completion} {{literal}}", "{completion}"]
)
def test_plain_reward_templates_are_accepted(template):
    assert (
        config_for("reward_model", {**MINIMAL["reward_model"], "prompt_template": template}).prompt_template == template
    )
