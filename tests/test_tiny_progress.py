"""The tiny build's training loop reports progress (a rich bar in a terminal, plain lines with the
loss elsewhere) without changing what it computes: same weights with and without it."""

from __future__ import annotations

import re

import torch

from aurora_sim.models import tiny


class _Tok:
    """Just what new_model reads from a tokenizer."""

    bos_token_id, eos_token_id, pad_token_id = 1, 2, 0

    def __len__(self):
        return 64


def _setup(steps: int, progress: bool = True):
    r = tiny.recipe(steps)
    r["train"] = {**r["train"], "batch_size": 2, "seq_len": 16, "warmup_steps": 2}
    spec = {
        **r["model"],
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "max_position_embeddings": 64,
    }
    g = torch.Generator().manual_seed(0)
    streams = {d: torch.randint(0, 64, (400,), generator=g) for d in r["train"]["domains"]}
    with tiny._deterministic_torch(r["seed"]):
        model = tiny.new_model(spec, _Tok())
        logged: list[str] = []
        loss = tiny._train(model, streams, r, lambda msg, echo=True: logged.append(msg), progress=progress)
    return model, loss, logged


def test_plain_progress_lines_without_a_terminal(capsys):
    model, loss, logged = _setup(steps=20)
    out = capsys.readouterr().out  # pytest's capture is not a terminal
    lines = [x for x in out.splitlines() if x.startswith("tiny: training step")]
    assert len(lines) == 20, out  # every 5 % of the steps
    assert re.fullmatch(r"tiny: training step 20/20  loss \d+\.\d{3}  \d+m\d\ds elapsed, ~0m00s left", lines[-1])
    assert f"loss {loss:.3f}" in lines[-1]
    assert "━" not in out  # no half-drawn rich bar in a log
    assert not any("training step" in x for x in logged)  # train.log keeps its own lines only


def test_progress_does_not_change_the_weights(capsys):
    a, loss_a, _ = _setup(steps=6, progress=True)
    b, loss_b, _ = _setup(steps=6, progress=False)
    assert loss_a == loss_b
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(pa, pb), name
    assert capsys.readouterr().out.count("tiny: training step") == 6
