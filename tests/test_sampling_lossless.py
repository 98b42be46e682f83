"""Invariant 2 under sampling: speculative output follows the target's distribution.

Statistical tests at significance 1e-3: each has a 0.1% false-alarm rate for a correct sampler.
Every draw is seeded, so the suite is deterministic (a pass stays a pass).
"""

import itertools
import tempfile

import pytest
import torch
from scipy.stats import chisquare

from aurora_sim.engine.protocol import GenRequest
from aurora_sim.engine.sampling import target_probs, verify_chain
from aurora_sim.engine.torch_engine import TorchSpecEngine
from aurora_sim.models.drafts import new_lm_draft
from aurora_sim.models.llama import Llama

ALPHA = 1e-3
VOCAB = 6


def _pooled_chisquare(observed: torch.Tensor, expected_p: torch.Tensor):
    """Chi-square goodness of fit, pooling cells whose expected count is below 5."""
    n = observed.sum().item()
    expected = expected_p * n
    small = expected < 5
    obs = torch.cat([observed[~small], observed[small].sum(0, keepdim=True)])
    exp = torch.cat([expected[~small], expected[small].sum(0, keepdim=True)])
    if exp[-1] == 0:
        obs, exp = obs[:-1], exp[:-1]
    obs, exp = obs.double().numpy(), exp.double().numpy()
    return chisquare(obs, exp / exp.sum() * obs.sum())


@pytest.mark.parametrize("gamma", [1, 2, 4])
def test_verify_chain_matches_target_distribution(gamma):
    gen = torch.Generator().manual_seed(gamma)
    p = torch.softmax(torch.randn(gamma + 1, VOCAB, generator=gen, dtype=torch.float64) * 1.5, -1)
    q = torch.softmax(torch.randn(gamma, VOCAB, generator=gen, dtype=torch.float64) * 1.5, -1)
    counts = torch.zeros(VOCAB)
    n = 20000
    for _ in range(n):
        # proposals are i.i.d. from q here (a context-free draft); the first output token is
        # d_1 if accepted else the residual sample: it must be distributed as p[0]
        props = [int(torch.multinomial(q[i], 1, generator=gen)) for i in range(gamma)]
        k, nxt = verify_chain(props, q, p, gen)
        counts[props[0] if k > 0 else nxt] += 1
    assert _pooled_chisquare(counts, p[0].float()).pvalue > ALPHA


@pytest.fixture(scope="module")
def small_pair():
    """A real (random-weight) Llama over a 6-token vocabulary, and a different random LM draft."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    hf = LlamaForCausalLM(cfg)
    with torch.no_grad():
        hf.lm_head.weight.mul_(40.0)  # spread the logits: distributions far from uniform
    d = tempfile.mkdtemp()
    hf.save_pretrained(d)
    target = Llama.from_pretrained(d, dtype=torch.float64)
    draft = new_lm_draft(target, seed=7)
    with torch.no_grad():
        draft.lm.lm_head.weight.mul_(40.0)
    return target, draft


def _exact_joint(target, prompt, steps, temperature, top_p):
    """P(x_0..x_{steps-1}) by enumerating every prefix through the target."""
    probs = torch.zeros([VOCAB] * steps, dtype=torch.float64)
    for seq in itertools.product(range(VOCAB), repeat=steps):
        ids = torch.tensor([list(prompt) + list(seq)])
        logits, _ = target(ids, torch.tensor([0]), torch.tensor([0]), target.new_cache(1, 32))
        pr = 1.0
        for j in range(steps):
            pr *= target_probs(logits[0, len(prompt) - 1 + j], temperature, top_p)[seq[j]].item()
        probs[seq] = pr
    return probs


@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (0.7, 0.8)])
def test_speculative_sampling_is_lossless(small_pair, temperature, top_p):
    target, draft = small_pair
    prompt = (1, 3, 2)
    steps = 3
    exact = _exact_joint(target, prompt, steps, temperature, top_p)
    n = 6000
    reqs = [GenRequest(f"s{i}", prompt, steps, temperature, top_p, seed=i) for i in range(n)]
    engine = TorchSpecEngine(target, draft, gamma=3, max_batch=64)
    results = engine.run(reqs)
    counts = torch.zeros([VOCAB] * steps)
    for r in results:
        counts[tuple(r.output_ids)] += 1
    accepted = sum(r.accepted_tokens for r in results)
    assert 0 < accepted < sum(r.proposed_tokens for r in results)  # both paths exercised
    assert _pooled_chisquare(counts.flatten(), exact.flatten().float()).pvalue > ALPHA


def test_sampling_is_batch_invariant(small_pair):
    """A request's tokens depend on its seed, not on its batch-mates."""
    target, draft = small_pair
    reqs = [GenRequest(f"b{i}", (1, 2), 8, 1.0, 1.0, seed=i) for i in range(12)]
    alone = [TorchSpecEngine(target, draft, gamma=3, max_batch=1).run([r])[0].output_ids for r in reqs]
    together = [r.output_ids for r in TorchSpecEngine(target, draft, gamma=3, max_batch=12).run(reqs)]
    assert alone == together
