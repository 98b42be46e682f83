"""The static EAGLE-3 head's data (recipe v4): training-split prompts continued greedily by the
target; and its build is byte-reproducible."""

import json

import pytest
import torch

from aurora_sim.replay import trajectories


@pytest.fixture()
def private_trajectory_cache(tmp_path, monkeypatch):
    """A fresh trajectory cache, so the data path really decodes here."""
    root = tmp_path / "trajectories"
    monkeypatch.setattr(trajectories, "cache_root", lambda: root)
    return root


def _greedy(target, prompt, max_new, stops):
    """Reference greedy decode: a full forward per token, no cache, no batching."""
    ids = list(prompt)
    out = []
    with torch.no_grad():
        for _ in range(max_new):
            x = torch.tensor([ids])
            logits, _ = target(x, torch.arange(1), torch.zeros(1, dtype=torch.long), target.new_cache(1, len(ids)), ())
            t = int(logits[0, -1].argmax())
            out.append(t)
            ids.append(t)
            if t in stops:
                break
    return out


def test_rows_are_prompts_continued_by_the_target(tiny_target, tiny_dir, tiny_tokenizer, private_trajectory_cache):
    from aurora_sim.generate import stop_ids
    from aurora_sim.learner.selfdistill import (
        batches,
        self_distill_rows,
        training_requests,
    )

    stops = stop_ids(tiny_tokenizer, tiny_dir)
    window = tiny_target.spec.max_position
    reqs = training_requests(tiny_tokenizer, stops, 6, 0, 12, window)
    assert [d for d, _ in reqs] == ["code", "finance", "chat"] * 2
    chat = [r for d, r in reqs if d == "chat"]
    assert all(tiny_tokenizer.decode(list(r.prompt_ids)).rstrip().endswith("<|assistant|>") for r in chat)

    rows, stats = self_distill_rows(tiny_target, tiny_dir, tiny_tokenizer, 6, 0, 12, 32, progress=False)
    assert stats["decoded"] == 6 and stats["requests"] == 6
    for (dom, r), row in zip(reqs, rows):
        assert row.domain == dom
        assert row.prompt_len == min(32, len(r.prompt_ids))
        assert row.tokens[: row.prompt_len] == r.prompt_ids[-row.prompt_len :]
        assert list(row.tokens[row.prompt_len :]) == _greedy(tiny_target, r.prompt_ids, 12, set(stops))

    tokens, mask = next(batches(rows, 1, 4, 0))
    assert tokens.shape[0] == 4
    for b in range(4):  # the loss covers exactly the positions that predict a continuation token
        row = next(r for r in rows if list(r.tokens) == tokens[b, : len(r.tokens)].tolist())
        assert mask[b].nonzero().flatten().tolist() == list(range(row.prompt_len - 1, len(row.tokens) - 1))


def test_build_is_byte_identical(tmp_path, tiny_dir, private_trajectory_cache):
    from aurora_sim.learner.offline import train_static_draft

    a = train_static_draft("tiny", "eagle3", out=tmp_path / "a", steps=2, progress=False)
    b = train_static_draft("tiny", "eagle3", out=tmp_path / "b", steps=2, progress=False)  # trajectories cached now
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    prov = json.loads((a / "provenance.json").read_text())
    assert prov["recipe"]["version"] == 4 and prov["steps"] == 2 and prov["flavour"] == "ci"
    assert "greedy continuations" in prov["data"] and prov["data_stats"]["requests"] == 16
    assert prov["build_wall_s"] >= prov["wall_s"] > 0


def test_flavours_are_reachable():
    from aurora_sim.errors import AuroraError
    from aurora_sim.learner.offline import default_out, tier_recipe
    from aurora_sim.replay.config import INITS, STATIC_INITS, ReplayConfig

    ci, full = tier_recipe("tiny", "eagle3"), tier_recipe("tiny", "eagle3", "full")
    assert full["steps"] > ci["steps"] and full["self_distill"]["prompts"] > ci["self_distill"]["prompts"]
    assert "self_distill" not in tier_recipe("tiny", "lm")
    assert default_out("tiny", "eagle3", "full") != default_out("tiny", "eagle3")
    assert set(STATIC_INITS) <= set(INITS) and STATIC_INITS["static-full"] == "full"
    ReplayConfig(init="static-full")
    with pytest.raises(AuroraError):
        tier_recipe("tiny", "eagle3", "nope")
