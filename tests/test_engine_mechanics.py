"""Sanity anchors, KV rollback, hot swap mid-stream, and draft save/load."""

import hashlib

import pytest
import torch

from aurora_sim.engine.protocol import GenRequest
from aurora_sim.engine.torch_engine import TorchSpecEngine
from aurora_sim.models.drafts import lm_draft_from_target, load_draft, new_eagle3, new_lm_draft, save_draft


@pytest.fixture(scope="module")
def reqs(heldout_prompts):
    return [GenRequest(f"r{i}", ids, 16) for i, (_, ids) in enumerate(heldout_prompts[::10])]


@pytest.mark.parametrize("gamma", [1, 3, 5])
def test_identical_draft_accepts_everything(tiny_target, reqs, gamma):
    results = TorchSpecEngine(tiny_target, lm_draft_from_target(tiny_target), gamma=gamma, max_batch=4).run(reqs)
    for r in results:
        assert r.accepted_tokens == r.proposed_tokens
        # every round but a request's last (cut by max_new_tokens) emits exactly γ+1 tokens
        assert r.round_tokens == r.rounds * (gamma + 1)


@pytest.mark.parametrize("make", [new_eagle3, new_lm_draft])
def test_random_draft_accepts_almost_nothing(tiny_target, reqs, make):
    results = TorchSpecEngine(tiny_target, make(tiny_target, seed=3), gamma=4, max_batch=8).run(reqs)
    al = sum(r.round_tokens for r in results) / sum(r.rounds for r in results)
    assert 1.0 <= al < 1.15


def test_kv_rollback_is_invisible(tiny_target):
    """Writing rejected tokens past a row's length and then overwriting them leaves no trace."""
    m = tiny_target
    seq = torch.arange(5, 25)[None]
    clean, _ = m(seq, torch.tensor([0]), torch.tensor([0]), m.new_cache(2, 64))
    cache = m.new_cache(2, 64)
    m(seq[:, :10], torch.tensor([1]), torch.tensor([0]), cache)
    m(torch.full((1, 6), 77), torch.tensor([1]), torch.tensor([10]), cache)  # proposals, then rejected
    tail, _ = m(seq[:, 10:], torch.tensor([1]), torch.tensor([10]), cache)  # roll back to 10
    torch.testing.assert_close(tail, clean[:, 10:], rtol=1e-5, atol=1e-5)


def test_swap_mid_stream(tiny_target, reqs):
    """A swap lands at a round boundary, loses nothing in flight, and changes acceptance at once."""
    reference = [r.output_ids for r in TorchSpecEngine(tiny_target, None, gamma=0, max_batch=8).run(reqs)]
    engine = TorchSpecEngine(tiny_target, new_eagle3(tiny_target, seed=1), gamma=4, max_batch=8)
    for r in reqs:
        engine.add(r)
    before, after, results = [], [], {}
    while engine.has_work():
        outcomes = engine.step()
        (after if engine.draft_version == 1 else before).extend(outcomes)
        if engine.round_index == 3:
            engine.swap_draft(lm_draft_from_target(tiny_target), version=1)
        for res in engine.pop_finished():
            results[res.request_id] = res
    assert [results[r.request_id].output_ids for r in reqs] == reference
    assert before and after and all(o.draft_version == 0 for o in before) and all(o.draft_version == 1 for o in after)
    assert sum(o.accepted for o in before) / (4 * len(before)) < 0.2
    assert all(o.accepted == 4 for o in after)


@pytest.mark.parametrize("make", [new_eagle3, new_lm_draft])
def test_draft_save_load_round_trip(tiny_target, reqs, tmp_path, make):
    draft = make(tiny_target, seed=5)
    save_draft(draft, tmp_path / "a", seed=5)
    save_draft(make(tiny_target, seed=5), tmp_path / "b", seed=5)

    def digest(p):
        return hashlib.sha256((p / "model.safetensors").read_bytes()).hexdigest()

    assert digest(tmp_path / "a") == digest(tmp_path / "b")  # same seed, same bytes
    loaded = load_draft(tmp_path / "a", tiny_target)
    for k, v in draft.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k

    def run(d):
        return [r.output_ids for r in TorchSpecEngine(tiny_target, d, gamma=3, max_batch=4).run(reqs[:4])]

    assert run(draft) == run(loaded)


def test_lm_draft_loads_with_transformers(tiny_target, tmp_path):
    from transformers import AutoModelForCausalLM

    draft = new_lm_draft(tiny_target, seed=2)
    save_draft(draft, tmp_path / "lm")
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "lm").eval()
    x = torch.tensor([[1, 2, 3, 4]])
    ours, _ = draft(x, None, torch.tensor([0]), torch.tensor([0]), draft.new_cache(1, 8))
    torch.testing.assert_close(hf(x).logits, ours, rtol=1e-4, atol=1e-4)


def test_outcomes_carry_learner_signals(tiny_target, trained_head_dir, reqs):
    head = load_draft(trained_head_dir, tiny_target)
    engine = TorchSpecEngine(tiny_target, head, gamma=3, max_batch=4, keep_logits=True)
    engine.add(reqs[0])
    engine.step()
    (o,) = engine.step()
    assert len(o.proposals) == 3 and len(o.draft_probs) == 3 and len(o.target_probs) == 3
    assert o.target_features.shape == (o.accepted + 1, 3 * tiny_target.spec.hidden_size)
    assert o.target_logits.shape == (4, tiny_target.spec.vocab_size)
    assert o.emitted == tuple(o.proposals[: o.accepted]) + (o.next_token,)
    assert all(0.0 <= x <= 1.0 for x in o.draft_probs + o.target_probs)


def test_ragged_batch_in_a_cache_sized_exactly_to_the_traffic(tiny_target, reqs):
    """Padding positions of short rows may run past a tight cache; real rows are unaffected."""
    need = max(len(r.prompt_ids) for r in reqs) + 16 + 4 + 1
    tight = TorchSpecEngine(tiny_target, new_eagle3(tiny_target, seed=1), gamma=4, max_batch=8, max_len=need).run(reqs)
    roomy = TorchSpecEngine(tiny_target, None, gamma=0, max_batch=8).run(reqs)
    assert [r.output_ids for r in tight] == [r.output_ids for r in roomy]


def test_cancel_frees_the_slot_and_leaves_the_others_untouched(tiny_target, reqs):
    base = TorchSpecEngine(tiny_target, None, gamma=0, max_batch=2).run(reqs[:3])
    engine = TorchSpecEngine(tiny_target, new_eagle3(tiny_target, seed=1), gamma=3, max_batch=2)
    for r in reqs[:3]:
        engine.add(r)
    engine.step()
    engine.step()
    assert engine.cancel(reqs[0].request_id)  # live: its slot goes to the waiting third request
    assert not engine.cancel(reqs[0].request_id) and not engine.cancel("nope")
    results = {}
    while engine.has_work():
        engine.step()
        results.update({r.request_id: r for r in engine.pop_finished()})
    assert set(results) == {reqs[1].request_id, reqs[2].request_id}
    for want in base[1:]:
        assert results[want.request_id].output_ids == want.output_ids
