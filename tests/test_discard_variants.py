"""The discard-loss variants (aurora_sim/learner/discard.py) on the real tiny target and a real
EAGLE-3 head: where each rejection lands, each variant's term against its definition computed
directly, that the served KL is unchanged by asking for a term, that the term trains the head,
and that a replay with a variant runs, is deterministic and differs from the served KL alone."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

from aurora_sim.errors import AuroraError
from aurora_sim.learner.batch import build_batch
from aurora_sim.learner.discard import served_rejections, uses_branches
from aurora_sim.learner.losses import unrolled_kl
from aurora_sim.learner.online import OnlineLearner
from aurora_sim.learner.samples import Branch, Sample, rejected_branches
from aurora_sim.models import drafts
from aurora_sim.replay.config import LearnerConfig, ReplayConfig

UNROLL = 3


def _sample(uid, tokens, prompt_len, branches=()):
    return Sample(uid, tuple(tokens), prompt_len, tuple(branches), 0, uid * 10)


def test_branches_know_the_step_that_was_rejected_and_rejections_land_on_its_state():
    rounds = [(10, (1, 2, 3, 4), 2), (18, (9, 9, 9, 9), 0)]
    br = rejected_branches(30, rounds)
    assert [(b.start, b.step) for b in br] == [(13, 2), (19, 0)]
    s = _sample(0, range(30), 8, br)
    rej = served_rejections([s], [(7, 29)])  # loss positions 7..28
    steps = rej.step.tolist()
    # round at 10 accepted 2, so step 2 of the chain from 10 proposed 3 at state 12 (= 13 - 1)
    assert steps[12 - 7] == 2 and rej.token[12 - 7] == 3
    assert steps[18 - 7] == 0 and rej.token[18 - 7] == 9
    assert sum(x >= 0 for x in steps) == 2


def test_the_control_marks_as_many_random_states_at_the_same_steps():
    br = [Branch(13, (3, 4), 2), Branch(19, (9,), 0), Branch(25, (5,), 1)]
    s = _sample(7, range(40), 8, br)
    real = served_rejections([s], [(7, 39)])
    ctrl = served_rejections([s], [(7, 39)], control=True)
    assert sorted(x for x in ctrl.step.tolist() if x >= 0) == sorted(x for x in real.step.tolist() if x >= 0)
    assert ctrl.step.tolist() != real.step.tolist()  # elsewhere (seeded: the same every time)
    assert ctrl.step.tolist() == served_rejections([s], [(7, 39)], control=True).step.tolist()


@pytest.fixture()
def parts(tiny_target):
    head = drafts.new_eagle3(tiny_target, seed=0).float().train()
    g = torch.Generator().manual_seed(0)
    seqs = [torch.randint(5, 4000, (40,), generator=g).tolist() for _ in range(2)]
    # rejections at states 24 (step 1, token 7) and 30 (step 0, token 11)
    branches = [Branch(25, (7, 8), 1), Branch(31, (11,), 0)]
    samples = [_sample(i, s, 20, branches) for i, s in enumerate(seqs)]
    b = build_batch(tiny_target, samples, False, 8, head.target_layers, rejections=True)
    return head, b.groups[0]


def _kl_and_q(head, g, j):
    """Step j's draft log-probabilities and KL at every loss position, the direct way."""
    from aurora_sim.models.chain import teacher_forced_chains

    starts = torch.arange(g.tokens.shape[1])[None].expand(g.tokens.shape[0], -1)
    for i, hidden in enumerate(teacher_forced_chains(head, g.tokens, g.features, starts, j + 1)):
        if i == j:
            h = hidden[g.rows, (g.cols - j).clamp(min=0)]
    logq = F.log_softmax(head.draft_logits(h).float(), -1)
    logp = F.log_softmax(g.target_logits.float(), -1)
    return logq, logp.exp(), (logp.exp() * (logp - logq)).sum(-1)


@pytest.mark.parametrize("variant", ["reject-point", "unlikelihood", "lk"])
@torch.no_grad()
def test_each_term_matches_its_definition(parts, variant):
    head, g = parts
    args = (head, g.tokens, g.features, (g.rows, g.cols), g.target_logits, UNROLL, 0.8)
    kl_plain, _ = unrolled_kl(*args)
    kl, _, term, at = unrolled_kl(*args, extra=(variant, g.rejections))
    assert torch.allclose(kl, kl_plain)  # asking for a term leaves the served KL as it was
    where = at.nonzero().flatten().tolist()
    if variant == "lk":
        assert len(where) == len(g.rows)  # every served state
        weights, acc = 0.0, 0.0
        for j in range(UNROLL):
            logq, p, _ = _kl_and_q(head, g, j)
            ok = (g.cols - j >= 0).float()
            acc = acc + (0.8**j) * ok * -torch.minimum(p, logq.exp()).sum(-1).log()
            weights = weights + (0.8**j) * ok
        assert torch.allclose(term, acc / weights, atol=1e-4)
        return
    # one position per rejection and sample: state 24 at step 1, state 30 at step 0
    assert len(where) == 4
    for m in where:
        j = int(g.rejections.step[m])
        logq, p, kl_j = _kl_and_q(head, g, j)
        if variant == "reject-point":
            want = kl_j[m]
        else:
            want = -torch.log1p(-logq[m, g.rejections.token[m]].exp())
        assert abs(float(term[m]) - float(want)) < 1e-4, (variant, m, j)
    assert float(term[~at].abs().sum()) == 0.0


@torch.no_grad()
def test_expected_length_is_the_chains_sum_of_acceptance_products(parts):
    head, g = parts
    args = (head, g.tokens, g.features, (g.rows, g.cols), g.target_logits, UNROLL, 0.8)
    _, _, term, at = unrolled_kl(*args, extra=("expected-length", g.rejections))
    assert bool(at.all())  # every served state starts a chain
    index = {(int(r), int(c)): m for m, (r, c) in enumerate(zip(g.rows, g.cols))}
    accept = []
    for j in range(UNROLL):
        logq, p, _ = _kl_and_q(head, g, j)
        accept.append(torch.minimum(p, logq.exp()).sum(-1))
    for m, (r, c) in enumerate(zip(g.rows.tolist(), g.cols.tolist())):
        length, survive = 0.0, 1.0
        for j in range(UNROLL):
            at_j = index.get((r, c + j))  # step j of the chain from c sits at c + j
            survive *= float(accept[j][at_j]) if at_j is not None else 0.0
            length += survive
        assert abs(float(term[m]) + length / UNROLL) < 1e-4, (m, float(term[m]), length)


def test_a_term_gives_the_head_a_gradient(parts):
    head, g = parts
    args = (head, g.tokens, g.features, (g.rows, g.cols), g.target_logits, UNROLL, 0.8)
    for variant in ("unlikelihood", "expected-length"):
        head.zero_grad(set_to_none=True)
        _, _, term, at = unrolled_kl(*args, extra=(variant, g.rejections))
        term[at].mean().backward()
        assert float(head.lm_head.weight.grad.abs().sum()) > 0 and float(head.fc.weight.grad.abs().sum()) > 0


def test_learner_step_adds_lambda_times_the_term(tiny_target, parts):
    head, g = parts
    from aurora_sim.learner.batch import Batch

    losses = {}
    for variant in ("none", "unlikelihood"):
        cfg = LearnerConfig(lambda_discard=0.5, discard=variant, unroll=UNROLL, precision="fp32")
        lr = OnlineLearner(tiny_target, head, cfg, random.Random(0), gamma=4)
        res = lr.compute(Batch([g], 0))
        losses[variant] = res
    none, unl = losses["none"], losses["unlikelihood"]
    assert none.loss_discard == 0.0 and unl.loss_discard > 0
    assert abs(unl.loss - (unl.loss_accepted + 0.5 * unl.loss_discard)) < 1e-5
    assert abs(unl.loss_accepted - none.loss_accepted) < 1e-5


def test_only_the_branch_variants_need_branches_and_unknown_names_are_refused():
    assert uses_branches("branch", 0.5) and not uses_branches("branch", 0.0)
    assert uses_branches("reach-weighted", 0.5)
    assert not any(
        uses_branches(v, 0.5) for v in ("reject-point", "unlikelihood", "lk", "expected-length", "control", "none")
    )
    with pytest.raises(AuroraError, match="needs branch_context >= 1"):
        ReplayConfig(learner=LearnerConfig(discard="reach-weighted", branch_context=0))
    with pytest.raises(AuroraError, match="unknown discard variant 'bogus'"):
        ReplayConfig(learner=LearnerConfig(discard="bogus"))


def test_an_lm_draft_refuses_a_served_state_variant(tiny_target):
    lm = drafts.new_lm_draft(tiny_target, seed=0)
    with pytest.raises(AuroraError, match="needs an EAGLE-3 draft"):
        OnlineLearner(tiny_target, lm, LearnerConfig(lambda_discard=0.5, discard="lk"), random.Random(0), gamma=4)
    OnlineLearner(tiny_target, lm, LearnerConfig(lambda_discard=0.5, discard="branch"), random.Random(0), gamma=4)


def test_default_variant_keeps_the_config_and_run_id_of_before():
    a = ReplayConfig(trace="shift-ci")
    assert "discard" not in a.to_dict()["learner"]
    b = a.with_(learner_discard="lk")
    assert b.to_dict()["learner"]["discard"] == "lk" and b.config_hash() != a.config_hash()


def _replay(root, name, **changes):
    from aurora_sim.replay.loop import Replay

    cfg = ReplayConfig(trace="shift-ci", limit=40, deployment="proxy", init="scratch").with_(
        learner_batch_requests=4, learner_min_new=4, controller_every=2, **changes
    )
    Replay(cfg, root / name).run()
    return root / name


def test_a_replay_with_a_variant_is_deterministic_and_trains_differently(tmp_path, tiny_dir):
    from aurora_sim.replay.eventlog import read_table

    runs = {
        "none": _replay(tmp_path, "none", learner_lambda_discard=0.5, learner_discard="none"),
        "unl": _replay(tmp_path, "unl", learner_lambda_discard=0.5, learner_discard="unlikelihood"),
        "unl2": _replay(tmp_path, "unl2", learner_lambda_discard=0.5, learner_discard="unlikelihood"),
    }
    steps = {k: read_table(v, "train_steps").sort("step") for k, v in runs.items()}
    assert len(steps["unl"]) > 0
    # same config, same bytes; the term changes the losses the learner reports
    for part in ("requests", "rounds", "train_steps"):
        assert read_table(runs["unl"], part).equals(read_table(runs["unl2"], part)), part
    assert steps["unl"]["loss_discard"].sum() > 0 and steps["none"]["loss_discard"].sum() == 0


def test_the_learner_builds_what_its_variant_needs_for_replay_and_live(tiny_target):
    """Replay and live train on `OnlineLearner.batch`: rejected branches only for `branch`,
    rejection marks (on served states) for the served-state variants."""
    head = drafts.new_eagle3(tiny_target, seed=0)
    g = torch.Generator().manual_seed(1)
    samples = [
        _sample(i, torch.randint(5, 4000, (40,), generator=g).tolist(), 20, [Branch(25, (7, 8), 1)]) for i in range(2)
    ]
    built = {}
    for variant in ("branch", "lk", "none"):
        lr = OnlineLearner(
            tiny_target, head, LearnerConfig(lambda_discard=0.5, discard=variant), random.Random(0), gamma=4
        )
        built[variant] = lr.batch(samples)
    assert any(grp.discard for grp in built["branch"].groups)
    assert not any(grp.discard for grp in built["lk"].groups) and built["lk"].groups[0].rejections is not None
    assert built["none"].groups[0].rejections is None and not any(grp.discard for grp in built["none"].groups)


def _branch_samples(temperature, top_p=1.0):
    g = torch.Generator().manual_seed(2)
    return [
        Sample(
            i,
            tuple(torch.randint(5, 4000, (40,), generator=g).tolist()),
            20,
            # the last: a round that drafted past the request's last token (no served state there)
            (Branch(25, (7, 8, 9), 1), Branch(31, (11,), 0), Branch(40, (12, 13), 2)),
            0,
            i,
            temperature=temperature,
            top_p=top_p,
        )
        for i in range(2)
    ]


def _logits(target, ids):
    with torch.no_grad():
        n = len(ids)
        return target(
            torch.tensor([ids]), torch.arange(1), torch.zeros(1, dtype=torch.long), target.new_cache(1, n), ()
        )[0][0]


@pytest.mark.parametrize("sampling", [(0.8, 1.0), (1.0, 0.9)])
def test_reach_weights_are_the_targets_probability_of_the_branch(tiny_target, sampling):
    """Each branch state's weight is the product, along the branch, of the target's sampling
    probability (temperature and top-p, as serving draws) of each discarded token: the first at
    the served state (full context), the rest on the branch row (its cropped context)."""
    from aurora_sim.engine.sampling import target_probs

    samples = _branch_samples(*sampling)
    b = build_batch(tiny_target, samples, True, 8, (0, 1, 2), reach=True)
    g = next(grp for grp in b.groups if grp.discard)
    assert g.reach is not None and g.reach.shape == g.rows.shape
    branches = [(s, br) for s in samples for br in s.branches]
    for m, (r, c) in enumerate(zip(g.rows.tolist(), g.cols.tolist())):
        s, br = branches[r]
        row = g.tokens[r].tolist()
        start = int(g.cols[g.rows == r].min())
        logits = _logits(tiny_target, row[:c])
        if br.start < len(s.tokens):
            served = _logits(tiny_target, list(s.tokens[: br.start]))[-1]
            want, first = float(target_probs(served, *sampling)[br.tokens[0]]), start + 1
        else:  # past the served sequence: the branch row's own (cropped) context prices it
            want, first = 1.0, start
        for k in range(first, c + 1):
            want *= float(target_probs(logits[k - 1], *sampling)[row[k]])
        assert abs(float(g.reach[m]) - want) < 1e-4 * max(1e-3, want), (m, float(g.reach[m]), want)
    assert float(g.reach.max()) > 0  # a random token is unlikely, not impossible, at T > 0


def test_reach_weighted_is_nothing_at_temperature_zero_and_a_weighted_branch_term_above(tiny_target):
    from aurora_sim.learner.batch import Batch

    head = drafts.new_eagle3(tiny_target, seed=0)
    results = {}
    for name, temperature, variant in (
        ("T0", 0.0, "reach-weighted"),
        ("T1", 1.0, "reach-weighted"),
        ("branch", 1.0, "branch"),
    ):
        cfg = LearnerConfig(lambda_discard=0.5, discard=variant, unroll=UNROLL, precision="fp32")
        lr = OnlineLearner(tiny_target, head, cfg, random.Random(0), gamma=4)
        b = lr.batch(_branch_samples(temperature))
        disc = next(grp for grp in b.groups if grp.discard)
        results[name] = (lr.compute(Batch(b.groups, 0)), disc)
    # greedy: a rejected token is never the target's argmax, so no branch state is reachable
    assert float(results["T0"][1].reach.abs().max()) == 0.0 and results["T0"][0].loss_discard == 0.0
    # sampling: the same branch KL, weighted by probabilities in (0, 1): a smaller, nonzero term
    t1, br = results["T1"][0].loss_discard, results["branch"][0].loss_discard
    assert 0.0 < t1 < br
    assert abs(results["T1"][0].loss_accepted - results["branch"][0].loss_accepted) < 1e-5


def test_a_greedy_reach_weighted_replay_trains_as_the_served_kl_alone(tmp_path, tiny_dir):
    """At T = 0 every reach weight is 0: each step's loss is the served KL; only the step's cost
    (the branch rows are still built and run) differs from `none`."""
    from aurora_sim.replay.eventlog import read_table

    run = _replay(tmp_path, "reach", learner_lambda_discard=0.5, learner_discard="reach-weighted")
    steps = read_table(run, "train_steps")
    assert len(steps) > 0 and steps["loss_discard"].abs().max() == 0
    assert (steps["loss"] - steps["loss_accepted"]).abs().max() < 1e-6


def test_a_greedy_reach_weighted_step_updates_the_head_as_none_does(tiny_target):
    from aurora_sim.learner.batch import Batch

    head = drafts.new_eagle3(tiny_target, seed=0)
    after = {}
    for variant in ("none", "reach-weighted"):
        cfg = LearnerConfig(lambda_discard=0.5, discard=variant, unroll=UNROLL, precision="fp32")
        lr = OnlineLearner(tiny_target, head, cfg, random.Random(0), gamma=4)
        b = lr.batch(_branch_samples(0.0))
        lr.compute(Batch(b.groups, 0))
        after[variant] = [p.detach().clone() for p in lr.params]
    assert all(torch.equal(a, b) for a, b in zip(after["none"], after["reach-weighted"]))
