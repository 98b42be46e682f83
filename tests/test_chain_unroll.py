"""The exact chain unroll (aurora_sim.models.chain) equals what the round-by-round engine drafts.

At every round the engine runs, its j-th draft step's logits are recorded; the unroll, fed the
same tokens (the engine's own proposals) over the final sequence's target features, must give
the same logits to 1e-4, for a random (day-0) head and a trained one. The learner's loss and the
fast path's proposals are both built on this unroll.
"""

import pytest
import torch

from aurora_sim.engine.proposals import greedy_chains
from aurora_sim.engine.protocol import GenRequest
from aurora_sim.engine.torch_engine import TorchSpecEngine
from aurora_sim.models.chain import chain_step, gather_chains, true_pass
from aurora_sim.models.drafts import load_draft, new_eagle3

GAMMA = 4


def _requests(prompts, n=6, max_new=28):
    return [GenRequest(f"r{i}", tuple(ids), max_new) for i, (_, ids) in enumerate(prompts[::25][:n])]


def _record_engine(target, head, reqs):
    """Run the engine; return results and {(request_id, n): [step logits...]} with proposals."""
    engine = TorchSpecEngine(target, head, gamma=GAMMA, max_batch=3)
    seen: dict = {}
    orig = engine._draw

    def spy(rows, step_logits, q_rows, props):
        for i, row in enumerate(rows):
            seen.setdefault((row.req.request_id, row.n), []).append(step_logits[i].clone())
        orig(rows, step_logits, q_rows, props)

    engine._draw = spy
    props: dict = {}
    results = engine.run(
        reqs, on_round=lambda outs: props.update({(o.request_id, o.position): o.proposals for o in outs})
    )
    return results, seen, props


@pytest.mark.parametrize("which", ["random", "trained"])
def test_unroll_equals_engine_draft_steps(which, tiny_target, heldout_prompts, trained_head_dir):
    head = new_eagle3(tiny_target, seed=3) if which == "random" else load_draft(trained_head_dir, tiny_target)
    reqs = _requests(heldout_prompts)
    results, seen, props = _record_engine(tiny_target, head, reqs)
    checked = 0
    worst = 0.0
    with torch.no_grad():
        for req, res in zip(reqs, results):
            seq = torch.tensor([list(req.prompt_ids) + res.output_ids])
            _, feats = tiny_target(
                seq,
                torch.arange(1),
                torch.zeros(1, dtype=torch.long),
                tiny_target.new_cache(1, seq.shape[1]),
                head.target_layers,
            )
            starts_list = sorted(n for (rid, n) in seen if rid == req.request_id)
            starts = torch.tensor([starts_list])
            tp = true_pass(head, seq, feats)
            hidden = gather_chains(tp.hidden, starts)
            own = []
            for j in range(GAMMA):
                if j > 0:  # step j is fed the engine's own proposal d_j
                    tok = torch.tensor([[props[(req.request_id, n)][j - 1] for n in starts_list]])
                    hidden, kv = chain_step(head, tp, starts, j, tok, hidden, own)
                    own.append(kv)
                logits = head.logits(hidden)[0]
                for c, n in enumerate(starts_list):
                    ref = seen[(req.request_id, n)][j]
                    fin = torch.isfinite(ref)
                    assert torch.equal(fin, torch.isfinite(logits[c]))
                    worst = max(worst, float((logits[c][fin] - ref[fin]).abs().max()))
                    checked += 1
    assert checked >= 6 * 10 * GAMMA
    assert worst < 1e-4, worst


def test_greedy_chains_accept_what_the_engine_accepts(tiny_target, heldout_prompts, trained_head_dir):
    """Alive-only proposals (the fast path's default) give each round's accepted count; the
    full chain gives every proposal the engine made."""
    head = load_draft(trained_head_dir, tiny_target)
    reqs = _requests(heldout_prompts)
    results, _, props = _record_engine(tiny_target, head, reqs)
    mism = total = 0
    for req, res in zip(reqs, results):
        # truth past the end: the target's greedy continuation (decode a few more tokens)
        longer = TorchSpecEngine(tiny_target, None, gamma=0, max_batch=1).run(
            [GenRequest("x", req.prompt_ids, req.max_new_tokens + GAMMA)]
        )[0]
        ext = list(req.prompt_ids) + longer.output_ids
        assert longer.output_ids[: len(res.output_ids)] == res.output_ids
        seq_len = len(req.prompt_ids) + len(res.output_ids)
        seq = torch.tensor([ext[: seq_len - 1]])
        _, feats = tiny_target(
            seq,
            torch.arange(1),
            torch.zeros(1, dtype=torch.long),
            tiny_target.new_cache(1, seq.shape[1]),
            head.target_layers,
        )
        p = len(req.prompt_ids)
        count = seq_len - 1 - p
        args = (head, seq, feats, torch.tensor([ext]), torch.tensor([p]), torch.tensor([count]), GAMMA)
        alive, full = greedy_chains(*args), greedy_chains(*args, full=True)
        assert torch.equal(alive.accepted, full.accepted)
        for (rid, n), pr in props.items():
            if rid != req.request_id:
                continue
            c = n - p
            k = int(alive.accepted[0, c])
            total += 1
            mism += full.proposals[0, c].tolist() != list(pr)
            # alive-only: the served prefix and the first rejected proposal, -1 after
            assert alive.proposals[0, c, : min(k + 1, GAMMA)].tolist() == list(pr[: min(k + 1, GAMMA)])
            assert all(t == -1 for t in alive.proposals[0, c, k + 1 :].tolist())
    assert total > 50
    assert mism == 0
