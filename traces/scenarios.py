"""Named scenarios, reproducible by name and seed (`aurora trace gen NAME --seed N`).

=============  ========  ==========================================================================
name           requests  shape
=============  ========  ==========================================================================
shift-ci       2,400     code → finance → chat (800 each, two abrupt shifts); prompts ≤ 160 chars
                         (SmolLM2 tokens: median ≈30–36, p90 ≈45–49), 32 new tokens, greedy,
                         closed loop of 8: sized for CI replays on 2 CPU cores
shift-mini     600       shift-ci's shape at 200 requests per segment: `aurora regress`'s CI scenario
unseen         1,800     finance → chat → code (600 each, distinct prompts), shift-ci's prompts and
                         lengths: the paper's situation for a general (chat-trained) head, two
                         domains it never saw around the one it knows
unseen-paper   450       unseen's shape (150 per segment) with the paper's decoding: 512-token
                         outputs at temperature 1.0 (Aurora's Qwen3-8B example); prompts ≤ 800
                         chars so prompt + 512 + γ + 1 fits tiny's 1,024-token window
shift-paper    33,000    code → finance → chat → code (7,500 / 7,200 / 9,900 / 8,400: shifts at
                         7,500, 14,700 and 24,600), sized like the paper's Qwen3-8B figure;
                         Poisson 10 req/s
ordered        3,000     code → finance → chat, 1,000 each; Poisson 4 req/s
mixed          3,000     40 % code, 30 % finance, 30 % chat, shuffled; Poisson 4 req/s
drift          3,000     mix moves linearly from all code to all chat; Poisson 4 req/s
sharp          2,000     1,000 code then 1,000 chat (one 50/50 switch); Poisson 4 req/s
phase          2,400     8 phases of 300, alternating code (high acceptance) and chat (low);
                         bursty gamma arrivals, 4 req/s, cv 3
=============  ========  ==========================================================================

Except shift-ci, prompts are up to 1,600 characters (≈400–480 tokens) and max_new_tokens is
drawn per domain (sampling.DEFAULT_MAX_NEW_TOKENS), so prompt + output fits a 1,024-token
context. Every scenario is greedy (temperature 0) unless its config says otherwise.
"""

from __future__ import annotations

import copy

from aurora_sim.errors import AuroraError

from .config import TraceConfig

_POISSON = {"kind": "poisson", "rate_per_s": 4.0}
# shift-ci's shape: short prompts, 32 new tokens, a closed loop of 8 (CI-sized replays)
SHORT_SHAPE = {
    "arrivals": {"kind": "closed", "concurrency": 8},
    "prompts": {
        "max_chars": 160,
        "min_chars": 16,
        "kinds": {"code": {"function": 0.5, "continue": 0.5}, "finance": {"article": 0.5, "question": 0.5}},
    },
    "sampling": {"max_new_tokens": 32},
}

SCENARIOS: dict[str, dict] = {
    "shift-ci": {
        "schedule": {
            "kind": "ordered",
            "segments": [
                {"domain": "code", "requests": 800},
                {"domain": "finance", "requests": 800},
                {"domain": "chat", "requests": 800},
            ],
        },
        **SHORT_SHAPE,
    },
    "shift-mini": {
        "schedule": {
            "kind": "ordered",
            "segments": [
                {"domain": "code", "requests": 200},
                {"domain": "finance", "requests": 200},
                {"domain": "chat", "requests": 200},
            ],
        },
        **SHORT_SHAPE,
    },
    "unseen": {
        "schedule": {
            "kind": "ordered",
            "segments": [
                {"domain": "finance", "requests": 600},
                {"domain": "chat", "requests": 600},
                {"domain": "code", "requests": 600},
            ],
        },
        **SHORT_SHAPE,
    },
    "unseen-paper": {
        "schedule": {
            "kind": "ordered",
            "segments": [
                {"domain": "finance", "requests": 150},
                {"domain": "chat", "requests": 150},
                {"domain": "code", "requests": 150},
            ],
        },
        "arrivals": {"kind": "closed", "concurrency": 8},
        "prompts": {"max_chars": 800, "min_chars": 16},
        "sampling": {"max_new_tokens": 512, "temperature": 1.0},
    },
    "shift-paper": {
        "schedule": {
            "kind": "ordered",
            "segments": [
                {"domain": "code", "requests": 7500},
                {"domain": "finance", "requests": 7200},
                {"domain": "chat", "requests": 9900},
                {"domain": "code", "requests": 8400},
            ],
        },
        "arrivals": {"kind": "poisson", "rate_per_s": 10.0},
    },
    "ordered": {
        "schedule": {
            "kind": "ordered",
            "segments": [{"domain": d, "requests": 1000} for d in ("code", "finance", "chat")],
        },
        "arrivals": _POISSON,
    },
    "mixed": {
        "schedule": {"kind": "mixed", "requests": 3000, "mix": {"code": 0.4, "finance": 0.3, "chat": 0.3}},
        "arrivals": _POISSON,
    },
    "drift": {
        "schedule": {"kind": "drift", "requests": 3000, "start": {"code": 1.0}, "end": {"chat": 1.0}},
        "arrivals": _POISSON,
    },
    "sharp": {
        "schedule": {"kind": "sharp", "requests": 2000, "first": "code", "second": "chat"},
        "arrivals": _POISSON,
    },
    "phase": {
        "schedule": {
            "kind": "phase",
            "phases": 8,
            "requests_per_phase": 300,
            "high": {"code": 1.0},
            "low": {"chat": 1.0},
        },
        "arrivals": {"kind": "bursty", "rate_per_s": 4.0, "cv": 3.0},
    },
}


def scenario(name: str, seed: int = 0) -> TraceConfig:
    """The named scenario's full config with this seed."""
    if name not in SCENARIOS:
        raise AuroraError(f"unknown scenario {name!r} (available: {', '.join(SCENARIOS)}; or pass --config FILE)")
    spec = copy.deepcopy(SCENARIOS[name]) | {"name": name, "seed": seed}
    return TraceConfig.from_dict(spec, where=f"scenario {name}")
