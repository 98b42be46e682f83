"""The engine on CUDA: same greedy tokens as on the CPU. Skipped where no GPU is present."""

import pytest
import torch

from aurora_sim.engine.protocol import GenRequest
from aurora_sim.engine.torch_engine import TorchSpecEngine
from aurora_sim.models.drafts import load_draft
from aurora_sim.models.llama import Llama

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine (CPU-only CI)"),
]


def test_cuda_greedy_matches_cpu(tiny_dir, trained_head_dir, heldout_prompts):
    reqs = [GenRequest(f"g{i}", ids, 16) for i, (_, ids) in enumerate(heldout_prompts[::5])]
    cpu = TorchSpecEngine(Llama.from_pretrained(tiny_dir, dtype=torch.float64), None, gamma=0, max_batch=8).run(reqs)
    target = Llama.from_pretrained(tiny_dir, dtype=torch.float64, device="cuda")
    draft = load_draft(trained_head_dir, target)
    gpu = TorchSpecEngine(target, draft, gamma=4, max_batch=8).run(reqs)
    assert [r.output_ids for r in gpu] == [r.output_ids for r in cpu]
