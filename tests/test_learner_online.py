"""The online learner's parts on real tensors: samples and branches, the buffer, the loss with
discard sampling, dropped steps, and the acceptance estimate used by lazy/shadow policies."""

from __future__ import annotations

import random

import pytest
import torch

from aurora_sim.errors import AuroraError
from aurora_sim.learner.batch import build_batch
from aurora_sim.learner.buffer import SampleBuffer
from aurora_sim.learner.evaluate import estimate_al
from aurora_sim.learner.online import OnlineLearner
from aurora_sim.learner.samples import Branch, Sample, rejected_branches
from aurora_sim.models import drafts
from aurora_sim.replay.config import LearnerConfig


def _sample(uid, tokens, prompt_len, branches=(), version=0):
    return Sample(uid, tuple(tokens), prompt_len, tuple(branches), version, uid * 10)


def test_rejected_branches_start_after_the_accepted_prefix():
    rounds = [(10, (1, 2, 3, 4), 2), (13, (5, 6, 7, 8), 4), (18, (9, 9, 9, 9), 0)]
    got = rejected_branches(30, rounds)
    assert got == [Branch(13, (3, 4)), Branch(19, (9, 9, 9, 9))]
    # a branch beyond the end of a truncated request is dropped
    assert rejected_branches(13, rounds) == [Branch(13, (3, 4))]


def test_fifo_buffer_keeps_the_newest_and_hands_out_new_samples_first():
    buf = SampleBuffer(3, "fifo", max_staleness=2, rng=random.Random(0))
    for i in range(5):
        buf.add(_sample(i, [1, 2, 3], 1))
    assert [s.uid for s in buf.items] == [2, 3, 4]
    batch, new = buf.take(2)
    assert new == 2 and [s.uid for s in batch] == [2, 3]
    batch, new = buf.take(3)
    assert new == 1 and batch[0].uid == 4 and len(batch) == 3  # then replays


def test_reservoir_buffer_is_bounded_and_seeded():
    def fill(seed):
        buf = SampleBuffer(8, "reservoir", 99, random.Random(seed))
        for i in range(200):
            buf.add(_sample(i, [1, 2], 1))
        return [s.uid for s in buf.items]

    a = fill(1)
    assert len(a) == 8 and a == fill(1) and a != fill(2)
    assert max(a) > 8  # later samples do get in


def test_stale_samples_are_dropped():
    buf = SampleBuffer(10, "fifo", max_staleness=2, rng=random.Random(0))
    buf.add(_sample(0, [1, 2], 1, version=0))
    buf.add(_sample(1, [1, 2], 1, version=3))
    buf.drop_stale(serving_version=4)
    assert [s.uid for s in buf.items] == [1] and buf.dropped_stale == 1


@pytest.fixture()
def learner_parts(tiny_target):
    head = drafts.new_eagle3(tiny_target, seed=0)
    g = torch.Generator().manual_seed(0)
    seqs = [torch.randint(5, 4000, (40,), generator=g).tolist() for _ in range(3)]
    samples = [_sample(i, s, 20, [Branch(25, (7, 8, 9))]) for i, s in enumerate(seqs)]
    return head, samples


def test_batch_marks_accepted_and_discarded_positions(tiny_target, learner_parts):
    head, samples = learner_parts
    b = build_batch(tiny_target, samples, with_discard=True, branch_context=8, feature_layers=head.target_layers)
    assert b.accepted_positions == 3 * 20  # positions 19..38 predict the 20 generated tokens
    assert b.discard_positions == 3 * 3
    served, branches = b.groups
    assert served.tokens.shape == (3, 40) and not served.discard
    # branch rows: the 8 accepted tokens before the branch, then the discarded proposals,
    # padded only to their own width
    assert branches.discard and branches.tokens.shape == (3, 11)
    assert tuple(branches.tokens[0].tolist()) == samples[0].tokens[17:25] + (7, 8, 9)
    assert b.tokens_total == 3 * 40 + 3 * 11
    none = build_batch(tiny_target, samples, with_discard=False, branch_context=8, feature_layers=head.target_layers)
    assert none.discard_positions == 0 and len(none.groups) == 1


def test_discard_loss_enters_with_its_weight(tiny_target, learner_parts):
    head, samples = learner_parts
    batch = build_batch(tiny_target, samples, True, 8, head.target_layers)
    results = {}
    for lam in (0.0, 0.5):
        lr = OnlineLearner(tiny_target, head, LearnerConfig(lambda_discard=lam, lr=0.0), random.Random(0), gamma=4)
        results[lam] = lr.compute(batch)
    r0, r5 = results[0.0], results[0.5]
    assert r0.status == r5.status == "ok"
    assert r5.loss_discard > 0
    assert r0.loss == pytest.approx(r0.loss_accepted, rel=1e-6)
    assert r5.loss == pytest.approx(r5.loss_accepted + 0.5 * r5.loss_discard, rel=1e-5)


def test_training_steps_lower_the_loss(tiny_target, learner_parts):
    head, samples = learner_parts
    batch = build_batch(tiny_target, samples, False, 8, head.target_layers)
    lr = OnlineLearner(tiny_target, head, LearnerConfig(lr=3e-3), random.Random(0), gamma=4)
    first = lr.compute(batch).loss
    for _ in range(15):
        last = lr.compute(batch).loss
    assert last < 0.8 * first and lr.steps == 16


def test_nonfinite_or_exploding_steps_are_dropped_without_an_update(tiny_target, learner_parts):
    head, samples = learner_parts
    batch = build_batch(tiny_target, samples, False, 8, head.target_layers)
    lr = OnlineLearner(tiny_target, head, LearnerConfig(), random.Random(0), gamma=4)
    before = [p.detach().clone() for p in lr.params]
    batch.groups[0].target_logits[0, 0] = float("nan")
    res = lr.compute(batch)
    assert res.status == "dropped_nonfinite" and lr.steps == 0
    assert all(torch.equal(a, b) for a, b in zip(before, lr.params))
    batch = build_batch(tiny_target, samples, False, 8, head.target_layers)
    lr2 = OnlineLearner(tiny_target, head, LearnerConfig(explode_grad_norm=1e-6), random.Random(0), gamma=4)
    res = lr2.compute(batch)
    assert res.status == "dropped_exploding" and lr2.steps == 0
    assert all(torch.equal(a, b) for a, b in zip(before, lr2.params))


def test_acceptance_estimate_tracks_real_drafts(tiny_target, tiny_tokenizer, heldout_prompts, trained_head_dir):
    """The estimate ranks a trained head above a random one and equals the AL the engine measured
    serving those requests with that head (the walk of learner/evaluate.py)."""
    from aurora_sim.engine.protocol import GenRequest
    from aurora_sim.engine.torch_engine import TorchSpecEngine

    trained = drafts.load_draft(trained_head_dir, tiny_target)
    random_head = drafts.new_eagle3(tiny_target, seed=3)
    reqs = [GenRequest(f"r{i}", tuple(p), 24) for i, (_, p) in enumerate(heldout_prompts[::12][:12])]
    engine = TorchSpecEngine(tiny_target, trained, gamma=4, max_batch=4)
    results = engine.run(reqs)
    measured = sum(r.round_tokens for r in results) / sum(r.rounds for r in results)
    samples = [_sample(i, r.prompt_ids + tuple(r.output_ids), len(r.prompt_ids)) for i, r in enumerate(results)]
    est_trained = estimate_al(trained, tiny_target, samples, 4, trained.target_layers)
    est_random = estimate_al(random_head, tiny_target, samples, 4, random_head.target_layers)
    assert est_random < 1.1 < est_trained
    # the walk serves the captured requests round by round as the engine did: the same AL, exactly
    assert est_trained == pytest.approx(measured, rel=1e-12), (est_trained, measured)


def test_the_walk_crosses_an_easy_stretch_in_few_rounds():
    """Serving's round starts, not every position: a request whose first tokens are easy and last
    ones hard is crossed in 5 rounds at depth 2 or 4 (AL 1.8), where the mean over every position
    would price it at 1 + 14/9 ≈ 2.56."""
    from aurora_sim.learner.evaluate import walk

    accepted = [4, 4, 3, 2, 1, 0, 0, 0, 0]  # chain at each position, capped at γ = 4
    assert walk(accepted, 9, 0) == (9, 9)
    assert walk(accepted, 9, 2) == (9, 5)  # starts 0, 3, 6, 7, 8
    assert walk(accepted, 9, 4) == (9, 5)  # starts 0, 5, 6, 7, 8
    assert 9 / 5 < 1 + sum(accepted) / 9  # the per-position mean over-prices this request


@pytest.mark.parametrize("width", [0.5, 2.0])
def test_a_narrow_or_wide_scratch_head_replays_and_keeps_its_width(tmp_path, tiny_dir, tiny_target, width):
    """--draft-width scales a from-scratch head's MLP; every saved version reloads at that width
    (a version saved, loaded and served must be the head the learner trained)."""
    from aurora_sim.models.drafts import load_draft
    from aurora_sim.replay.config import ReplayConfig
    from aurora_sim.replay.loop import Replay

    cfg = ReplayConfig(trace="shift-ci", limit=24, deployment="proxy", init="scratch", draft_width=width).with_(
        learner_batch_requests=4, learner_min_new=4, controller_every=2
    )
    assert cfg.to_dict()["draft_width"] == width and "draft_width" not in ReplayConfig().to_dict()
    Replay(cfg, tmp_path / "run").run()
    want = round(tiny_target.spec.intermediate_size * width)
    saved = sorted(p for p in (tmp_path / "run" / "drafts").iterdir() if p.is_dir())
    assert saved
    for path in saved:
        head = load_draft(path, tiny_target)
        assert head.mlp.gate_proj.weight.shape[0] == want, path
    with pytest.raises(AuroraError, match="needs a from-scratch EAGLE-3 head"):
        ReplayConfig(init="static", draft_width=width)
