"""EAGLE-3 heads over a hot vocabulary (d2t): the vocabulary chosen, lossless decoding with
proposals only from it, the loss on the target conditioned on it, save/load, and bad files."""

from __future__ import annotations

import json

import pytest
import torch

from aurora_sim.engine.protocol import GenRequest
from aurora_sim.engine.torch_engine import TorchSpecEngine
from aurora_sim.errors import AuroraError
from aurora_sim.learner.losses import eagle3_ttt_loss, forward_kl
from aurora_sim.learner.offline import hot_vocabulary
from aurora_sim.models import drafts
from aurora_sim.models.registry import load_target, load_tokenizer, resolve_model

HOT = 512


@pytest.fixture(scope="module")
def tiny():
    torch.set_num_threads(1)
    target = load_target("tiny")
    tok = load_tokenizer(resolve_model("tiny"))
    d2t = hot_vocabulary(tok, HOT, target.spec.vocab_size)
    head = drafts.new_eagle3(target, seed=3, draft_vocab=d2t)
    with torch.no_grad():
        head.lm_head.weight.copy_(target.lm_head.weight[d2t])
    return target, tok, d2t, head


def test_hot_vocabulary_is_frequent_ascending_and_deterministic(tiny):
    target, tok, d2t, _ = tiny
    assert len(d2t) == HOT and bool((d2t[1:] > d2t[:-1]).all())
    assert torch.equal(d2t, hot_vocabulary(tok, HOT, target.spec.vocab_size))
    assert tok.eos_token_id in d2t.tolist()
    common = tok(" the", add_special_tokens=False)["input_ids"][0]
    assert common in d2t.tolist()


def _run(target, draft, prompts, batch, gamma, temperature=0.0):
    reqs = [GenRequest(i, p, 24, temperature=temperature, seed=i) for i, p in enumerate(prompts)]
    eng = TorchSpecEngine(target, draft, gamma=gamma if draft else 0, max_batch=batch, max_len=160)
    return eng.run(reqs), eng


@pytest.mark.parametrize("batch, gamma", [(1, 1), (4, 3)])
def test_greedy_lossless_and_proposals_only_from_the_hot_vocabulary(tiny, batch, gamma):
    from aurora_sim.demo import heldout_prompts

    target, tok, d2t, head = tiny
    prompts = [list(ids)[:24] for _, ids in heldout_prompts(tok, 2)]
    base, _ = _run(target, None, prompts, batch, gamma)
    spec, _ = _run(target, head, prompts, batch, gamma)
    assert [r.output_ids for r in spec] == [r.output_ids for r in base]
    hot = set(d2t.tolist())
    eng = TorchSpecEngine(target, head, gamma=gamma, max_batch=batch, max_len=160)
    for i, p in enumerate(prompts):
        eng.add(GenRequest(i, p, 16, temperature=0.9, seed=i))
    seen = 0
    while eng.has_work():
        for o in eng.step():
            assert set(o.proposals) <= hot
            seen += len(o.proposals)
    assert seen > 0


def test_loss_is_kl_to_the_target_conditioned_on_the_hot_vocabulary(tiny):
    target, _, d2t, head = tiny
    tokens = torch.randint(3, target.spec.vocab_size, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits, feats = target(
            tokens, torch.arange(2), torch.zeros(2, dtype=torch.long), target.new_cache(2, 16), head.target_layers
        )
    loss, steps = eagle3_ttt_loss(head, tokens, feats, logits, unroll=1)
    from aurora_sim.models.chain import true_pass

    hidden = true_pass(head, tokens, feats).hidden
    manual = forward_kl(logits[..., d2t], head.lm_head(head.norm(hidden)))
    assert torch.isfinite(loss) and abs(float(loss.detach()) - float(manual.detach())) < 1e-5
    # serving logits put the same distribution on the hot ids and nothing elsewhere
    full = head.logits(hidden)
    assert (
        full.shape[-1] == target.spec.vocab_size and torch.isneginf(full).sum(-1).eq(target.spec.vocab_size - HOT).all()
    )
    assert torch.allclose(full.softmax(-1)[..., d2t], head.draft_logits(hidden).softmax(-1), atol=1e-6)


def test_training_a_hot_head_lowers_its_loss(tiny):
    target, _, d2t, _ = tiny
    head = drafts.new_eagle3(target, seed=5, draft_vocab=d2t)
    head.train()
    opt = torch.optim.AdamW([p for p in head.parameters() if p.requires_grad], lr=3e-3)
    tokens = torch.randint(3, target.spec.vocab_size, (2, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits, feats = target(
            tokens, torch.arange(2), torch.zeros(2, dtype=torch.long), target.new_cache(2, 16), head.target_layers
        )
    losses = []
    for _ in range(15):
        loss, _ = eagle3_ttt_loss(head, tokens, feats, logits, unroll=2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0]


def test_save_load_round_trip_and_mismatched_files(tiny, tmp_path):
    target, _, d2t, head = tiny
    drafts.save_draft(head, tmp_path / "h")
    cfg = json.loads((tmp_path / "h" / "config.json").read_text())
    assert cfg["draft_vocab_size"] == HOT and cfg["vocab_size"] == target.spec.vocab_size
    back = drafts.load_draft(tmp_path / "h", target)
    assert torch.equal(back.d2t, d2t)
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), head.state_dict().values()))
    cfg["draft_vocab_size"] = HOT - 1
    (tmp_path / "h" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(AuroraError, match="draft_vocab_size in config.json does not match the d2t"):
        drafts.load_draft(tmp_path / "h", target)
    with pytest.raises(AuroraError, match="distinct ascending"):
        drafts.new_eagle3(target, draft_vocab=torch.tensor([5, 3, 9]))


def test_a_hot_vocabulary_scratch_head_replays_alike_on_both_engines(tmp_path, tiny_dir):
    """--draft-vocab N: a from-scratch head over the N most frequent tokens learns online; the
    fast path and the round-by-round engine log the same run, every saved version reloads over
    the same vocabulary, and the vocabulary is cached (a damaged entry is recomputed)."""
    from aurora_sim.paths import models_dir
    from aurora_sim.replay.config import ReplayConfig
    from aurora_sim.replay.eventlog import read_table
    from aurora_sim.replay.initial import hot_vocab
    from aurora_sim.replay.loop import Replay

    base = ReplayConfig(trace="shift-ci", limit=24, deployment="proxy", init="scratch", draft_vocab=HOT)
    base = base.with_(learner_batch_requests=4, learner_min_new=4, controller_every=2)
    assert base.to_dict()["draft_vocab"] == HOT and "draft_vocab" not in ReplayConfig().to_dict()
    runs = {e: tmp_path / e for e in ("fast", "exact")}
    for engine, out in runs.items():
        Replay(base.with_(engine=engine), out).run()
    for table in ("requests", "rounds", "train_steps", "swaps"):
        a, b = (read_table(runs[e], table).drop("run_id") for e in ("fast", "exact"))
        assert a.equals(b), table
    assert read_table(runs["fast"], "swaps").height > 0
    target = load_target("tiny")
    want = hot_vocabulary(load_tokenizer(resolve_model("tiny")), HOT, target.spec.vocab_size)
    saved = sorted(p for p in (runs["fast"] / "drafts").iterdir() if p.is_dir())
    assert saved
    for path in saved:
        head = drafts.load_draft(path, target)
        assert head.draft_vocab_size == HOT and torch.equal(head.d2t, want), path
    from aurora_sim.replay.trajectories import model_identity

    cached = models_dir() / "hot-vocab" / f"tiny-{model_identity(resolve_model('tiny'))[:16]}-{HOT}.pt"
    assert torch.equal(torch.load(cached, weights_only=True), want)
    cached.write_bytes(b"not a tensor")
    assert torch.equal(hot_vocab("tiny", HOT, target.spec.vocab_size), want)
    assert torch.equal(torch.load(cached, weights_only=True), want)  # rewritten
    with pytest.raises(AuroraError, match="needs a from-scratch EAGLE-3 head"):
        ReplayConfig(init="static", draft_vocab=HOT)
    with pytest.raises(AuroraError, match="larger than"):
        hot_vocab("tiny", target.spec.vocab_size + 1, target.spec.vocab_size)
