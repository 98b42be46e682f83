"""Shared fixtures: the real tiny tier (built on first use, then cached) and held-out prompts."""

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_dir():
    from aurora_sim.models.registry import resolve_model

    return resolve_model("tiny")


@pytest.fixture(scope="session")
def tiny_target(tiny_dir):
    from aurora_sim.models.llama import Llama

    return Llama.from_pretrained(tiny_dir)


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_dir):
    from aurora_sim.models.registry import load_tokenizer

    return load_tokenizer(tiny_dir)


@pytest.fixture(scope="session")
def heldout_prompts(tiny_tokenizer):
    """50 held-out prompts per domain, 24 tokens each: (domain, token ids)."""
    from aurora_sim.demo import heldout_prompts

    prompts = heldout_prompts(tiny_tokenizer, per_domain=50, prompt_tokens=24)
    by_domain = {}
    for d, _ in prompts:
        by_domain[d] = by_domain.get(d, 0) + 1
    assert all(n == 50 for n in by_domain.values()), by_domain
    return prompts


@pytest.fixture(scope="session")
def trained_head_dir(tmp_path_factory, tiny_dir):
    """A briefly distilled EAGLE-3 head: accepts some proposals and rejects others (weak enough
    that an online copy recovers after a shift within the analysis tests' short segments)."""
    from aurora_sim.learner.offline import train_static_draft

    return train_static_draft("tiny", "eagle3", out=tmp_path_factory.mktemp("head") / "d", steps=40, progress=False)


@pytest.fixture(scope="session")
def trained_lm_dir(tmp_path_factory, tiny_dir):
    from aurora_sim.learner.offline import train_static_draft

    return train_static_draft("tiny", "lm", out=tmp_path_factory.mktemp("lm") / "d", steps=40, progress=False)
