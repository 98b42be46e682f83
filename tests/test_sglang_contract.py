"""Contract tests against SGLang's real source (0.5.17 = the GPU machine's torch pin, 0.5.23 =
newest checked; 0.5.8.post1 for the older meta_info names), executed on CPU.

SGLang does not import here (it imports triton at top level and needs CUDA kernels), so the
wheel's source is fetched (aurora_sim/sglang/wheel.py; a few seconds, ≈1 MB kept per version)
and single real functions are compiled out of it and run against our files: the EAGLE-3
draft's `load_weights`, the target's layer capture, the draft layer's and model's `forward`
(with `RMSNorm.forward_native`), the target's loader (to see what a ≤0.5.17 tensor update
writes into it) and the tokenizer manager's meta_info builder. What stays ours is labelled
"stand-in": the attention and MLP kernels (plain torch with the weights SGLang's loader stacked)
and the parameter table of SGLang's modules (each attribute checked in the source).
Skips (with the reason) only when the wheel cannot be fetched: no network and no cache.
"""

import logging
import re
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from sglang_helpers import save_target, small_head, small_target

from aurora_sim.engine.protocol import GenRequest
from aurora_sim.models.drafts import new_eagle3, save_draft
from aurora_sim.models.llama import apply_rope, rope_tables
from aurora_sim.sglang import meta, names, wheel
from aurora_sim.sglang.engine import engine_kwargs, sampling_params
from aurora_sim.sglang.export import export_draft
from aurora_sim.sglang.weights import (
    draft_tensors,
    target_collisions,
    target_param_names,
)

VERSIONS = ("0.5.17", "0.5.23")


@pytest.fixture(scope="session")
def sglang_src():
    for v in (*VERSIONS, "0.5.8.post1"):
        try:
            wheel.fetch(v)
        except wheel.FetchError as exc:  # no network and nothing cached; any other error fails
            pytest.skip(f"SGLang {v} wheel source unavailable ({exc}); run scripts/sglang_contract.sh")
    return wheel


def src(version, rel):
    return wheel.source(version, f"sglang/srt/{rel}")


# ---- SGLang's EAGLE-3 draft: parameters and the real load_weights ---------------------------------
def draft_params(h, heads, kv_heads, head_dim, inter, n_aux, vocab):
    """Stand-in: the parameters SGLang's LlamaForCausalLMEagle3 builds (tp = 1), name -> shape.
    test_param_table_matches_source checks each module attribute exists in the source."""
    q, kv = heads * head_dim, kv_heads * head_dim
    p = "model.layers.0."
    return {
        "model.embed_tokens.weight": (vocab, h),
        "model.fc.weight": (h, n_aux * h),
        p + "self_attn.qkv_proj.weight": (q + 2 * kv, 2 * h),
        p + "self_attn.o_proj.weight": (h, q),
        p + "mlp.gate_up_proj.weight": (2 * inter, h),
        p + "mlp.down_proj.weight": (h, inter),
        p + "input_layernorm.weight": (h,),
        p + "post_attention_layernorm.weight": (h,),
        p + "hidden_norm.weight": (h,),
        "model.norm.weight": (h,),
        "lm_head.weight": (vocab, h),
    }


def test_param_table_matches_source(sglang_src):
    for v in VERSIONS:
        e3 = src(v, "models/llama_eagle3.py").read_text()
        ll = src(v, "models/llama.py").read_text()
        for attr in ("fc", "hidden_norm", "norm", "lm_head", "embed_tokens", "layers", "model"):
            assert re.search(rf"self\.{attr}\s*=", e3), (v, attr)
        for attr in (
            "qkv_proj",
            "o_proj",
            "gate_up_proj",
            "down_proj",
            "input_layernorm",
            "post_attention_layernorm",
            "self_attn",
            "mlp",
        ):
            assert re.search(rf"self\.{attr}\s*=", ll + e3), (v, attr)
        # why draft_vocab_size is always exported: absent, the target's LM head replaces ours
        assert "if config.draft_vocab_size is None:" in e3 and "self.load_lm_head_from_target = True" in e3


class Recorder:
    """A parameter whose weight_loader records what SGLang's loader hands it."""

    def __init__(self, shape):
        self.shape, self.loads = shape, []

    def weight_loader(self, param, w, shard=None):
        assert param is self
        self.loads.append((shard, w))


def run_real_loader(version, state, params):
    """Execute the real LlamaForCausalLMEagle3.load_weights. Returns (params, unused names)."""
    rec = {k: Recorder(s) for k, s in params.items()}
    fn = wheel.load_function(
        src(version, "models/llama_eagle3.py"),
        "LlamaForCausalLMEagle3.load_weights",
        {"torch": torch, "default_weight_loader": None},
    )
    this = SimpleNamespace(named_parameters=lambda: list(rec.items()), hot_token_id=None)
    fn(this, list(state.items()))
    used = {id(w) for r in rec.values() for _, w in r.loads}
    return rec, [k for k, w in state.items() if id(w) not in used], this


def check_loaded(rec, state):
    """Every SGLang parameter but the (shared) embedding is loaded whole, with the right shapes."""
    for name, r in rec.items():
        if name == "model.embed_tokens.weight":
            assert not r.loads  # SGLang shares the target's embedding at load time (set_embed)
            continue
        shards = sorted(str(s) for s, _ in r.loads)
        if "qkv_proj" in name:
            assert shards == ["k", "q", "v"], name
            assert sum(w.shape[0] for _, w in r.loads) == r.shape[0] and {w.shape[1] for _, w in r.loads} == {
                r.shape[1]
            }
        elif "gate_up_proj" in name:
            assert shards == ["0", "1"], name
            assert sum(w.shape[0] for _, w in r.loads) == r.shape[0]
        else:
            assert shards == ["None"], (name, shards)
            assert tuple(r.loads[0][1].shape) == r.shape, name


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("contract")
    target = small_target(layers=6)
    save_target(target, root / "target")
    head = small_head(target, (4, 1, 2))
    save_draft(head, root / "draft")
    export_draft(root / "draft", "sglang-eagle3", root / "out", model=str(root / "target"))
    from safetensors.torch import load_file

    return target, head, load_file(str(root / "out" / "model.safetensors")), root


@pytest.mark.parametrize("version", VERSIONS)
def test_real_loader_takes_every_exported_weight(sglang_src, exported, version):
    _, _, state, _ = exported
    params = draft_params(32, 4, 2, 8, 48, 3, 96)
    rec, unused, this = run_real_loader(version, state, params)
    assert unused == []
    check_loaded(rec, state)
    assert this.hot_token_id is None  # full vocabulary: no d2t, SGLang keeps target token ids


@pytest.mark.parametrize("version", VERSIONS)
def test_real_loader_takes_a_hot_vocabulary_head(sglang_src, tmp_path, version):
    """A head over a hot vocabulary (EAGLE-3's d2t): the real loader takes every weight, its LM
    head is draft_vocab x H, and the hot_token_id it derives from our d2t is our target ids."""
    import json

    from safetensors.torch import load_file

    target = small_target(layers=6)
    save_target(target, tmp_path / "target")
    hot = torch.tensor([0, 2, 3, 5, 8, 13, 21, 34, 55, 89])
    head = new_eagle3(target, seed=1, target_layers=(1, 2, 4), draft_vocab=hot)
    save_draft(head, tmp_path / "draft")
    export_draft(tmp_path / "draft", "sglang-eagle3", tmp_path / "out", model=str(tmp_path / "target"))
    state = load_file(str(tmp_path / "out" / "model.safetensors"))
    assert json.loads((tmp_path / "out" / "config.json").read_text())["draft_vocab_size"] == len(hot)
    params = draft_params(32, 4, 2, 8, 48, 3, 96)
    params["lm_head.weight"] = (len(hot), 32)
    rec, unused, this = run_real_loader(version, state, params)
    assert sorted(unused) == ["d2t", "t2d"]  # consumed by the loader itself, not weight loaders
    check_loaded(rec, state)
    assert torch.equal(this.hot_token_id, hot)
    assert state["t2d"].dtype == torch.bool and state["t2d"].sum() == len(hot) and bool(state["t2d"][hot].all())


@pytest.mark.parametrize("version", VERSIONS)
def test_real_loader_catches_a_wrong_name(sglang_src, exported, version):
    """The loader skips unknown names silently; our check does not."""
    _, _, state, _ = exported
    bad = {("layers.0.hidden_norms.weight" if k == "layers.0.hidden_norm.weight" else k): v for k, v in state.items()}
    rec, unused, _ = run_real_loader(version, bad, draft_params(32, 4, 2, 8, 48, 3, 96))
    assert unused == ["layers.0.hidden_norms.weight"]
    with pytest.raises(AssertionError):
        check_loaded(rec, bad)


def test_real_loader_accepts_legacy_midlayer_names(sglang_src, exported):
    _, _, state, _ = exported
    legacy = {k.replace("layers.0.", "midlayer."): v for k, v in state.items()}
    rec, unused, _ = run_real_loader("0.5.17", legacy, draft_params(32, 4, 2, 8, 48, 3, 96))
    assert unused == []
    check_loaded(rec, legacy)


# ---- which target layers SGLang captures ---------------------------------------------------------
@pytest.mark.parametrize("version", VERSIONS)
def test_capture_ids_shift(sglang_src, version):
    fn = wheel.load_function(src(version, "models/llama.py"), "LlamaForCausalLM.set_eagle3_layers_to_capture", {})
    this = SimpleNamespace(
        pp_group=SimpleNamespace(is_last_rank=True),
        config=SimpleNamespace(num_hidden_layers=4),
        model=SimpleNamespace(),
    )
    fn(this, names.capture_ids((0, 1, 2), 4))
    assert this.model.layers_to_capture == [1, 2, 3]  # inputs of layers 1..3 = outputs of 0..2


def run_real_capture_loop(layers_to_capture, num_layers):
    """Execute 0.5.17's target LlamaModel.forward with tagged stand-in layers: layer j outputs
    the value j+1, so a captured value v is the output of layer v-1."""
    fn = wheel.load_function(src("0.5.17", "models/llama.py"), "LlamaModel.forward", {"PPProxyTensors": dict})

    def tag(j):
        return lambda pos, h, fb, res: (torch.full_like(h, float(j + 1)), torch.zeros_like(h))

    this = SimpleNamespace(
        pp_group=SimpleNamespace(is_first_rank=True, is_last_rank=True),
        embed_tokens=lambda ids: torch.zeros(len(ids), 4),
        start_layer=0,
        end_layer=num_layers,
        layers=[tag(j) for j in range(num_layers)],
        norm=lambda h, r: (h, r),
        layers_to_capture=layers_to_capture,
    )
    out = fn(this, torch.zeros(3, dtype=torch.long), None, None)
    return [int(a[0, 0].item()) - 1 for a in out[1]] if isinstance(out, tuple) else []


def test_capture_loop_takes_our_layers_in_ascending_order(sglang_src):
    assert run_real_capture_loop([v + 1 for v in names.capture_ids((4, 0, 2), 6)], 6) == [0, 2, 4]
    assert run_real_capture_loop([3, 1], 6) == [0, 2]  # listed out of order, captured in layer order
    # the last layer is never captured: why the export refuses it
    assert run_real_capture_loop([1, 6], 6) == [0]


# ---- the draft's forward, composed by SGLang's own code ---------------------------------------------
def real_rmsnorm(version, weight, eps):
    fn = wheel.load_function(src(version, "layers/layernorm.py"), "RMSNorm.forward_native", {"torch": torch})
    this = SimpleNamespace(
        weight=weight,
        variance_epsilon=eps,
        hidden_size=weight.shape[0],
        variance_size_override=None,
        override_orig_dtype=None,
        fp32_residual=False,
        cast_x_before_out_mul=False,
    )
    return lambda x, residual=None: fn(this, x, residual)


def standin_attention(qkv_w, o_w, heads, kv_heads, head_dim, theta):
    """Stand-in for SGLang's attention kernel: causal attention over one flat sequence, with the
    q/k/v rows SGLang's loader stacked (order q, k, v as QKVParallelLinear lays them out)."""
    cos, sin = rope_tables(head_dim, theta, 64)

    def attn(positions, hidden_states, forward_batch):
        t = hidden_states.shape[0]
        q, k, v = (hidden_states @ qkv_w.T).split([heads * head_dim, kv_heads * head_dim, kv_heads * head_dim], -1)
        q, k, v = (x.view(t, -1, head_dim).transpose(0, 1)[None] for x in (q, k, v))
        c, s = cos[positions][None, None], sin[positions][None, None]
        q, k = apply_rope(q, c, s), apply_rope(k, c, s)
        rep = heads // kv_heads
        out = F.scaled_dot_product_attention(
            q, k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1), is_causal=True
        )
        return out[0].transpose(0, 1).reshape(t, -1) @ o_w.T

    return attn


def swiglu(x, gate_up, down):
    """Stand-in for SGLang's MLP: gate_up rows are [gate; up] (shard 0, 1), SiluAndMul, down."""
    g, u = (x @ gate_up.T).chunk(2, -1)
    return (F.silu(g) * u) @ down.T


def sglang_draft(version, rec, embed, eps=1e-5):
    """SGLang's LlamaModel (eagle3).forward and LlamaDecoderLayer.forward, real code, with real
    RMSNorms and the weights as its loader placed them; attention and MLP are stand-ins."""
    w = {
        k: (
            torch.cat(
                [x for _, x in sorted(r.loads, key=lambda s: "qkv".index(s[0]) if isinstance(s[0], str) else s[0])]
            )
            if r.loads
            else None
        )
        for k, r in rec.items()
    }
    p = "model.layers.0."
    path = src(version, "models/llama_eagle3.py")
    layer_fwd = wheel.load_function(path, "LlamaDecoderLayer.forward", {"torch": torch})
    gate_up, down = w[p + "mlp.gate_up_proj.weight"], w[p + "mlp.down_proj.weight"]
    layer = SimpleNamespace(
        is_input_layer=True,
        hidden_norm=real_rmsnorm(version, w[p + "hidden_norm.weight"], eps),
        input_layernorm=real_rmsnorm(version, w[p + "input_layernorm.weight"], eps),
        post_attention_layernorm=real_rmsnorm(version, w[p + "post_attention_layernorm.weight"], eps),
        self_attn=standin_attention(
            w[p + "self_attn.qkv_proj.weight"], w[p + "self_attn.o_proj.weight"], 4, 2, 8, 10000.0
        ),
        mlp=lambda x: swiglu(x, gate_up, down),
    )
    model_fwd = wheel.load_function(path, "LlamaModel.forward", {"torch": torch})
    fc_w = w["model.fc.weight"]
    this = SimpleNamespace(
        embed_tokens=embed,
        is_mrope_enabled=False,
        input_norm=None,
        fc_norm=None,
        num_aux_hidden_states=fc_w.shape[1] // fc_w.shape[0],
        fc=lambda x: x @ fc_w.T,
        layers=[lambda *a: layer_fwd(layer, *a)],
        norm=real_rmsnorm(version, w["model.norm.weight"], eps),
        norm_output=False,
    )
    mode = SimpleNamespace(is_extend=lambda: False, is_draft_extend_v2=lambda: False)

    def run(tokens, positions, features):
        fb = SimpleNamespace(
            mm_input_embeds=None,
            forward_mode=mode,
            contains_mm_inputs=lambda: False,
            spec_info=SimpleNamespace(hidden_states=features),
        )
        to_logits, aux = model_fwd(this, tokens, positions, fb)
        return to_logits @ w["lm_head.weight"].T, aux[0]

    return run


@pytest.mark.parametrize("version", VERSIONS)
def test_draft_forward_matches_sglang_composition(sglang_src, exported, version):
    """Same logits and carried hidden state as our head, on SGLang's inputs: draft position p
    reads token x_{p+1} and the target's features at p, in ascending layer order."""
    target, head, state, _ = exported
    rec, unused, _ = run_real_loader(version, state, draft_params(32, 4, 2, 8, 48, 3, 96))
    assert not unused
    run = sglang_draft(version, rec, target.model.embed_tokens)
    seq = torch.randint(0, 96, (13,))
    ids = names.capture_ids(head.target_layers, 6)
    _, sgl_feats = target(
        seq[None, :-1],
        torch.arange(1),
        torch.zeros(1, dtype=torch.long),
        target.new_cache(1, 16),
        hidden_layers=tuple(ids),
    )
    _, our_feats = target(
        seq[None, :-1],
        torch.arange(1),
        torch.zeros(1, dtype=torch.long),
        target.new_cache(1, 16),
        hidden_layers=head.target_layers,
    )
    tokens, positions = seq[1:], torch.arange(12)
    with torch.no_grad():
        logits, aux = run(tokens, positions, sgl_feats[0])
        ours_logits, ours_hidden = head(
            tokens[None], head.fuse(our_feats), torch.arange(1), torch.zeros(1, dtype=torch.long), head.new_cache(1, 16)
        )
        torch.testing.assert_close(logits, ours_logits[0], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(aux, ours_hidden[0], rtol=1e-4, atol=1e-4)
        # a drafting step feeds the draft's own hidden state back: width H, so SGLang skips fc
        logits2, _ = run(tokens, positions, aux)
        ours2, _ = head(
            tokens[None], ours_hidden, torch.arange(1), torch.zeros(1, dtype=torch.long), head.new_cache(1, 16)
        )
        torch.testing.assert_close(logits2, ours2[0], rtol=1e-4, atol=1e-4)


def test_composition_check_can_fail(sglang_src, exported):
    """Swapping the two norms (a plausible export bug) changes SGLang's output."""
    target, head, state, _ = exported
    swapped = dict(state)
    swapped["layers.0.hidden_norm.weight"], swapped["layers.0.input_layernorm.weight"] = (
        state["layers.0.input_layernorm.weight"],
        state["layers.0.hidden_norm.weight"],
    )
    rec, _, _ = run_real_loader("0.5.17", swapped, draft_params(32, 4, 2, 8, 48, 3, 96))
    run = sglang_draft("0.5.17", rec, target.model.embed_tokens)
    seq = torch.randint(0, 96, (9,))
    _, feats = target(
        seq[None, :-1],
        torch.arange(1),
        torch.zeros(1, dtype=torch.long),
        target.new_cache(1, 16),
        hidden_layers=(1, 2, 4),
    )
    with torch.no_grad():
        logits, _ = run(seq[1:], torch.arange(8), feats[0])
        _, ours_feats = target(
            seq[None, :-1],
            torch.arange(1),
            torch.zeros(1, dtype=torch.long),
            target.new_cache(1, 16),
            hidden_layers=head.target_layers,
        )
        ours, _ = head(
            seq[None, 1:],
            head.fuse(ours_feats),
            torch.arange(1),
            torch.zeros(1, dtype=torch.long),
            head.new_cache(1, 16),
        )
    assert not torch.allclose(logits, ours[0], rtol=1e-3, atol=1e-3)


# ---- weight updates -----------------------------------------------------------------------------
@pytest.mark.parametrize("tied", [True, False])
def test_0517_tensor_update_reaches_target_only_where_we_refuse(sglang_src, exported, tied):
    """≤0.5.17 sends a draft tensor update to the target too: run the target's real loader on
    our draft's names and compare with what weights.target_collisions predicts."""
    target, head, _, _ = exported
    named = draft_tensors(head)
    from dataclasses import replace

    params = target_param_names(replace(target.spec, tie_embeddings=tied))  # stand-in: SGLang's target params
    rec = {k: Recorder(None) for k in params}
    fn = wheel.load_function(
        src("0.5.17", "models/llama.py"),
        "LlamaForCausalLM._legacy_load_weights",
        {
            "get_layer_id": lambda n: int(m.group(1)) if (m := re.search(r"layers\.(\d+)\.", n)) else None,
            "logger": logging.getLogger("sglang-contract"),
            "maybe_remap_kv_scale_name": None,
            "default_weight_loader": None,
        },
    )
    this = SimpleNamespace(
        named_parameters=lambda: list(rec.items()),
        config=SimpleNamespace(tie_word_embeddings=tied),
        model=SimpleNamespace(start_layer=0, end_layer=target.spec.num_layers),
    )
    fn(this, named)
    written = sorted(k for k, r in rec.items() if r.loads)
    predicted = target_collisions(named, params, tied)
    assert written == (["lm_head.weight"] if not tied else [])
    assert predicted == written


def test_update_request_shapes(sglang_src):
    io17, io23 = src("0.5.17", "managers/io_struct.py"), src("0.5.23", "managers/io_struct.py")
    f17 = wheel.struct_fields(io17, "UpdateWeightsFromTensorReqInput")
    f23 = wheel.struct_fields(io23, "UpdateWeightsFromTensorReqInput")
    assert f17["serialized_named_tensors"] is False and f23["serialized_named_tensors"] is False  # required
    assert "selector" not in f17 and f23["selector"] is True  # 0.5.23 aims an update at the draft
    assert wheel.struct_fields(io23, "BeginWeightUpdateReqInput") == {"selector": True}
    assert "selector" not in wheel.struct_fields(io23, "UpdateWeightFromDiskReqInput")  # disk: all runners
    e17, e23 = src("0.5.17", "entrypoints/engine.py"), src("0.5.23", "entrypoints/engine.py")
    assert wheel.method_params(e23, "Engine.begin_weight_update") == ["self", "selector"]
    assert wheel.method_params(e23, "Engine.end_weight_update") == ["self"]
    for e in (e17, e23):
        assert wheel.method_params(e, "Engine._serialize_tensors_per_rank") == ["self", "tensors", "load_format"]
        assert wheel.method_params(e, "Engine.update_weights_from_tensor")[:2] == ["self", "named_tensors"]
        assert {"input_ids", "sampling_params"} <= set(wheel.method_params(e, "Engine.generate"))
    with pytest.raises(LookupError):
        wheel.find(e17, "Engine.begin_weight_update")  # 0.5.17 has no session: weights.py's branch
    # 0.5.23 refuses a tensor update outside a session
    assert "must run between" in src("0.5.23", "managers/scheduler_components/weight_updater.py").read_text()


@pytest.mark.parametrize("version", VERSIONS)
def test_engine_kwargs_are_server_args(sglang_src, version, tmp_path):
    fields = wheel.server_arg_fields(version)
    assert len(fields) > 100  # the whole set was found, not one namespace
    kw = engine_kwargs(tmp_path, tmp_path, "EAGLE3", 4, 8)
    assert set(kw) <= set(fields), set(kw) - set(fields)
    sp = wheel.struct_fields(src(version, "sampling/sampling_params.py"), "SamplingParams")
    assert set(sampling_params(GenRequest("r", (1,), 4, stop_ids=(2,)))) <= set(sp)


# ---- meta_info, built by SGLang's own function --------------------------------------------------
def real_meta(version, accepted_per_round, gamma=4, truncated=0):
    """meta_info from the real `_calculate_spec_decoding_metrics` of `version`, fed the per-request
    counters its scheduler keeps (verify count, correct drafts, histogram, completion tokens)."""
    fn = wheel.load_function(
        src(version, "managers/tokenizer_manager.py"),
        "TokenizerManager._calculate_spec_decoding_metrics",
        {
            "get_spec": lambda: SimpleNamespace(speculative_num_draft_tokens=gamma + 1),
            "_ragged_verify_cap_accept": lambda: False,
        },
    )
    hist = [0] * (gamma + 1)
    for a in accepted_per_round:
        hist[a] += 1
    completion = 1 + sum(a + 1 for a in accepted_per_round) - truncated
    recv = SimpleNamespace(
        spec_verify_ct=[len(accepted_per_round)],
        completion_tokens=[completion],
        spec_accepted_tokens=[sum(accepted_per_round)],
        spec_num_correct_drafts=[sum(accepted_per_round)],
        spec_correct_drafts_histogram=[hist if accepted_per_round else []],
    )
    this = SimpleNamespace(server_args=SimpleNamespace(speculative_num_draft_tokens=gamma + 1))
    m = {"completion_tokens": completion}
    fn(this, m, recv, 0)
    return m


@pytest.mark.parametrize("version", ["0.5.8.post1", *VERSIONS])
def test_meta_info_normalised_from_real_builder(sglang_src, version):
    rounds = [4, 0, 2, 1, 4]
    s = meta.spec_stats(real_meta(version, rounds))
    assert s.verify_rounds == 5 and s.accepted_drafts == 11 and s.proposed_drafts == 20
    assert s.round_tokens == 16 and s.acceptance_length == pytest.approx(16 / 5)  # ours: first token excluded
    m = real_meta(version, rounds)
    assert s.sglang_accept_length == pytest.approx(m["spec_accept_length"])
    assert s.histogram == (None if version == "0.5.8.post1" else (1, 1, 1, 0, 2))
    assert s.schema == ("0.5.8" if version == "0.5.8.post1" else "0.5.12+")
    none = meta.spec_stats(real_meta(version, []))  # no verify round: no spec keys at all
    assert none.verify_rounds == 0 and none.schema == "none"
    assert not [k for k in real_meta(version, []) if k.startswith("spec_")]
