"""Batched, left-padded generation of K completions per prompt on a tiny model (no Django)."""

import io
import json

import pytest

from training.ml import generation
from training.ml.configs import ConfigError, GenerateConfig
from training.ml.events import EventWriter

PROMPTS = [
    "Return the value of the expression",
    "A class definition",
    "The with statement is used to wrap the execution of a block with methods defined by a context manager",
    "Lambda",
]


def write_prompts(folder, prompts=PROMPTS, ids=None):
    path = folder / "prompts.jsonl"
    ids = ids or [f"p{i}" for i in range(len(prompts))]
    path.write_text(
        "".join(json.dumps({"prompt_id": i, "prompt": p}) + "\n" for i, p in zip(ids, prompts, strict=True))
    )
    return path


def config(model_dir, prompts_file, **overrides) -> GenerateConfig:
    return GenerateConfig.from_dict(
        {"model_path": str(model_dir), "prompts_file": str(prompts_file), "max_new_tokens": 8, **overrides}
    )


def run(cfg, out_dir):
    stream = io.StringIO()
    summary = generation.run(cfg, out_dir, EventWriter(stream))
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    lines = [json.loads(line) for line in (out_dir / "completions.jsonl").read_text().splitlines()]
    return summary, events, lines


@pytest.fixture
def loaded(tiny_model_dir):
    return generation.load(str(tiny_model_dir))


def test_k_completions_per_prompt_with_seeds_params_and_events(tiny_model_dir, tmp_path):
    prompts_file = write_prompts(tmp_path)
    cfg = config(tiny_model_dir, prompts_file, k=3, batch_size=3, seed=100, temperature=1.0)
    summary, events, lines = run(cfg, tmp_path / "out")

    assert [line["prompt_id"] for line in lines] == ["p0", "p1", "p2", "p3"]
    for index, line in enumerate(lines):
        assert len(line["completions"]) == 3
        for completion in line["completions"]:
            assert isinstance(completion["text"], str)
            assert completion["seed"] == 100 + index
            assert completion["params"] == {
                "max_new_tokens": 8,
                "do_sample": True,
                "temperature": 1.0,
                "top_k": 50,
                "top_p": 0.95,
            }
            assert 1 <= completion["tokens"] <= 8
            assert completion["finish_reason"] in ("eos", "length")
    assert summary["prompts"] == 4 and summary["generated"] == 4

    artifacts = [e for e in events if e["type"] == "artifact"]
    assert [a["count"] for a in artifacts] == [3, 4]  # one per batch, after the batch is written
    assert [a["prompt_ids"] for a in artifacts] == [["p0", "p1", "p2"], ["p3"]]
    assert all(a["kind"] == "completions" and a["path"] == "completions.jsonl" for a in artifacts)
    progress = [(e["step"], e["total"]) for e in events if e["type"] == "progress"]
    assert progress == [(0, 4), (3, 4), (4, 4)]
    assert [e["name"] for e in events if e["type"] == "metric"] == ["tokens_per_s", "tokens_per_s"]


def test_the_same_seed_reproduces_and_another_seed_differs(tiny_model_dir, tmp_path):
    prompts_file = write_prompts(tmp_path)
    texts = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        cfg = config(tiny_model_dir, prompts_file, k=2, batch_size=2, seed=seed, temperature=1.5, top_k=None)
        _, _, lines = run(cfg, tmp_path / name)
        texts[name] = [[c["text"] for c in line["completions"]] for line in lines]
    assert texts["a"] == texts["b"]
    assert texts["a"] != texts["c"]
    # Sampling at temperature 1.5 over 512 tokens: the K samples of a prompt are not all alike.
    assert any(len(set(pair)) == 2 for pair in texts["a"])


def test_an_adapter_over_the_model_generates_what_its_merged_model_does(tiny_model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    lora = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM"),
    )
    for name, parameter in lora.named_parameters():
        if "lora_B" in name:
            parameter.data.normal_(0, 0.5)  # an adapter that changes what greedy decoding picks
    lora.save_pretrained(tmp_path / "adapter")
    merged = tmp_path / "merged"
    lora.merge_and_unload().save_pretrained(merged)
    generation.load(str(tiny_model_dir))[1].save_pretrained(merged)

    prompts_file = write_prompts(tmp_path)
    texts = {}
    for name, overrides in {
        "base": {},
        "adapter": {"adapter_path": str(tmp_path / "adapter")},
        "merged": {"model_path": str(merged)},
    }.items():
        cfg = config(tiny_model_dir, prompts_file, greedy=True, k=1, **overrides)
        _, _, lines = run(cfg, tmp_path / f"out-{name}")
        texts[name] = [line["completions"][0]["text"] for line in lines]
    assert texts["adapter"] == texts["merged"] != texts["base"]
    with pytest.raises(ConfigError, match="adapter_path"):
        config(tiny_model_dir, prompts_file, adapter_path="a", gguf_file="m.gguf")


def test_left_padding_a_prompt_alone_and_in_a_batch_generate_the_same_greedy_text(loaded):
    model, tokenizer = loaded
    cfg = GenerateConfig.from_dict(
        {"model_path": "-", "prompts_file": "-", "k": 1, "greedy": True, "max_new_tokens": 12}
    )
    prompts = [generation.Prompt(i, i, text) for i, text in enumerate(PROMPTS)]
    batch = tokenizer([p.text for p in prompts], padding=True, return_tensors="pt")
    assert tokenizer.padding_side == "left"
    assert (batch["attention_mask"][:, -1] == 1).all()  # every row ends with a real token
    assert (batch["attention_mask"] == 0).any()  # the prompts differ in length: there is padding

    together, _ = generation.generate_batch(model, tokenizer, prompts, cfg, max_prompt_tokens=512)
    for prompt, line in zip(prompts, together, strict=True):
        alone, _ = generation.generate_batch(model, tokenizer, [prompt], cfg, max_prompt_tokens=512)
        assert alone[0]["completions"][0]["text"] == line["completions"][0]["text"]
        assert alone[0]["completions"][0]["tokens"] == line["completions"][0]["tokens"]


def test_long_prompts_are_truncated_from_the_left(loaded, tiny_model_dir, tmp_path):
    _, tokenizer = loaded
    text = PROMPTS[2]
    full = tokenizer(text)["input_ids"]
    assert len(full) > 10
    batch, lengths = generation.encode(tokenizer, [text, "Lambda"], max_prompt_tokens=10)
    assert lengths[0] == len(full)
    assert batch["input_ids"][0].tolist() == full[-10:]  # the end of the prompt is kept

    prompts_file = write_prompts(tmp_path, [text, "Lambda"], ids=[1, 2])
    _, events, lines = run(config(tiny_model_dir, prompts_file, max_prompt_tokens=10, k=2), tmp_path / "out")
    assert [(line["prompt_tokens"], line["truncated"]) for line in lines] == [
        (10, True),
        (len(tokenizer("Lambda")["input_ids"]), False),
    ]
    assert any("lost tokens from the left" in e.get("message", "") for e in events)


def test_the_context_window_bounds_the_prompt(loaded):
    model, _ = loaded
    window = model.config.max_position_embeddings
    cfg = GenerateConfig.from_dict({"model_path": "-", "prompts_file": "-", "max_new_tokens": window - 20})
    assert generation.prompt_budget(model, cfg) == 20
    too_long = GenerateConfig.from_dict({"model_path": "-", "prompts_file": "-", "max_new_tokens": window})
    with pytest.raises(ValueError, match="context window"):
        generation.prompt_budget(model, too_long)


def test_a_rerun_skips_prompts_that_have_completions_and_drops_a_torn_line(tiny_model_dir, tmp_path):
    prompts_file = write_prompts(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    first = {"prompt_id": "p0", "prompt_tokens": 1, "truncated": False, "completions": []}
    (out / "completions.jsonl").write_text(json.dumps(first) + "\n" + '{"prompt_id": "p1", "compl')
    summary, events, lines = run(config(tiny_model_dir, prompts_file, k=2), out)
    assert [line["prompt_id"] for line in lines] == ["p0", "p1", "p2", "p3"]
    assert lines[0] == first
    assert summary["generated"] == 3
    assert (events[0]["type"], "1 of 4 prompts already have completions") == ("log", events[0]["message"][:39])


def test_chat_template_wraps_the_prompt_as_a_user_turn(tiny_tokenizer):
    assert generation.format_prompt(tiny_tokenizer, "Hi") == "Hi"
    tiny_tokenizer.chat_template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}<assistant>"
    assert generation.format_prompt(tiny_tokenizer, "Hi") == "<user>Hi<assistant>"


def test_eos_becomes_the_pad_token_when_there_is_none(tiny_tokenizer):
    tiny_tokenizer.pad_token = None
    generation.prepare_tokenizer(tiny_tokenizer)
    assert tiny_tokenizer.pad_token == tiny_tokenizer.eos_token
    assert tiny_tokenizer.padding_side == "left" and tiny_tokenizer.truncation_side == "left"


def test_bad_prompt_files_name_the_line_and_field(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt_id": 1, "prompt": "a"}\n{"prompt_id": 2, "prompt": 5}\n')
    with pytest.raises(ValueError, match="line 2, field 'prompt'"):
        generation.read_prompts(path)
    path.write_text('{"prompt_id": 1, "prompt": "a"}\n{"prompt_id": 1, "prompt": "b"}\n')
    with pytest.raises(ValueError, match="line 2, field 'prompt_id'"):
        generation.read_prompts(path)
