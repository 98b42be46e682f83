"""SGLangEngine and the draft hot swap. The engine itself needs CUDA and SGLang: those tests
skip with the reason on this kind of machine (run scripts/sglang_gpu_checks.py on a GPU)."""

import importlib.util

import pytest
import torch
from sglang_helpers import small_head, small_target

from aurora_sim.errors import AuroraError
from aurora_sim.models.drafts import lm_draft_from_target
from aurora_sim.sglang import runtime
from aurora_sim.sglang.engine import engine_kwargs
from aurora_sim.sglang.weights import draft_tensors, push_draft

HAVE_GPU_SGLANG = torch.cuda.is_available() and importlib.util.find_spec("sglang") is not None
needs_gpu = pytest.mark.skipif(not HAVE_GPU_SGLANG, reason="needs a CUDA GPU and SGLang (scripts/sglang_gpu_stage.sh)")


def test_version_parsing():
    assert runtime.version_tuple("0.5.8.post1") == (0, 5, 8) and runtime.version_tuple("0.5.23rc1") == (0, 5, 23)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_require_sglang_says_why():
    with pytest.raises(AuroraError, match="needs a CUDA GPU"):
        runtime.require_sglang()


def test_engine_kwargs_chain_draft(tmp_path):
    kw = engine_kwargs(tmp_path / "t", tmp_path / "d", "EAGLE3", gamma=3, max_batch=4)
    assert (kw["speculative_num_steps"], kw["speculative_eagle_topk"], kw["speculative_num_draft_tokens"]) == (3, 1, 4)
    assert "speculative_algorithm" not in engine_kwargs(tmp_path / "t", None, "EAGLE3", 3, 4)  # target only


class FakeOldEngine:
    """Records calls the way a ≤0.5.17 Engine would receive them (no begin_weight_update)."""

    def __init__(self):
        self.calls = []

    def update_weights_from_tensor(self, named):
        self.calls.append([n for n, _ in named])
        return True, "Success"


def test_old_sglang_swap_sends_exported_names_and_guards_the_target():
    target = small_target(layers=6)
    head = small_head(target, (4, 1, 2))
    names_sent = [n for n, _ in draft_tensors(head)]
    assert "fc.weight" in names_sent and "layers.0.hidden_norm.weight" in names_sent
    eng = FakeOldEngine()
    tied_target_params = {"model.embed_tokens.weight", "model.norm.weight", "model.layers.0.self_attn.qkv_proj.weight"}
    push_draft(eng, head, tied_target_params, target_tied=True)
    assert eng.calls == [names_sent]
    # an untied target would get the draft's LM head: refused before anything is sent
    with pytest.raises(AuroraError, match="lm_head.weight"):
        push_draft(FakeOldEngine(), head, tied_target_params | {"lm_head.weight"}, target_tied=False)
    # a STANDALONE draft has the target's own names
    params = {f"model.layers.{i}.self_attn.qkv_proj.weight" for i in range(6)}
    with pytest.raises(AuroraError, match="overwrite target weights"):
        push_draft(FakeOldEngine(), lm_draft_from_target(target), params, target_tied=True)


@needs_gpu
def test_sglang_engine_generates(tmp_path):  # pragma: no cover - GPU only
    from aurora_sim.engine.protocol import GenRequest
    from aurora_sim.models.registry import resolve_model
    from aurora_sim.sglang.engine import SGLangEngine

    eng = SGLangEngine(resolve_model("tiny"), None, gamma=0, max_batch=2)
    try:
        eng.add(GenRequest("a", (1, 2, 3), 8))
        eng.step()
        (res,) = eng.pop_finished()
        assert len(res.output_ids) == 8 and res.rounds == 0
    finally:
        eng.shutdown()
