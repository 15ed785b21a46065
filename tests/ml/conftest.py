"""Tiny models for ML tests: no hub, no downloads, a few seconds on a CPU.

- ``tiny_tokenizer``: a byte-level BPE (512 tokens, ``<|pad|>`` and ``<|eos|>``) trained once per
  session on the standard library's ``pydoc_data/topics.py``, handed out as a fresh
  ``PreTrainedTokenizerFast`` per test (trainers set attributes on it).
- ``make_tiny_model(kind, **config)``: a 2-layer Llama from a config, ``"sequence_classification"``
  (``num_labels=1``, a reward model) or ``"causal_lm"``; keyword arguments override the config.
- ``tiny_reward_model``: ``make_tiny_model("sequence_classification")``.
- ``tiny_model_dir``: a causal LM and its tokenizer saved with ``save_pretrained`` for code that loads
  models by path.
"""

import pydoc_data.topics

import pytest

PAD, EOS = "<|pad|>", "<|eos|>"


@pytest.fixture(scope="session")
def tiny_tokenizer_json() -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=[PAD, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train([pydoc_data.topics.__file__], trainer)
    return tokenizer.to_str()


@pytest.fixture
def tiny_tokenizer(tiny_tokenizer_json):
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(tiny_tokenizer_json), pad_token=PAD, eos_token=EOS, bos_token=EOS
    )


@pytest.fixture
def make_tiny_model(tiny_tokenizer):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification

    classes = {"sequence_classification": LlamaForSequenceClassification, "causal_lm": LlamaForCausalLM}

    def make(kind: str = "sequence_classification", *, seed: int = 0, **overrides):
        config = LlamaConfig(
            **{
                "vocab_size": len(tiny_tokenizer),
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "num_key_value_heads": 2,
                "max_position_embeddings": 512,
                "pad_token_id": tiny_tokenizer.pad_token_id,
                "eos_token_id": tiny_tokenizer.eos_token_id,
                "bos_token_id": tiny_tokenizer.bos_token_id,
                "num_labels": 1,
                **overrides,
            }
        )
        torch.manual_seed(seed)
        return classes[kind](config)

    return make


@pytest.fixture
def tiny_reward_model(make_tiny_model):
    return make_tiny_model("sequence_classification")


@pytest.fixture
def tiny_model_dir(tmp_path, tiny_tokenizer, make_tiny_model):
    folder = tmp_path / "tiny-llama"
    make_tiny_model("causal_lm").save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder
