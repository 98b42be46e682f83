"""meta_info normalisation (aurora_sim/sglang/meta.py) on responses shaped per SGLang version.

The fixtures are written by hand with the key names read in each wheel's tokenizer_manager.py
(`_calculate_spec_decoding_metrics`): they are *shaped like* real responses, not recorded from
a server. test_sglang_contract.py builds the same dicts by executing that real function."""

import pytest

from aurora_sim.engine.protocol import GenRequest
from aurora_sim.sglang.engine import to_result
from aurora_sim.sglang.meta import MetaInfoError, spec_stats

# one request: 5 verify rounds accepting 4, 0, 2, 1, 4 drafts (γ = 4): 1 + 16 = 17 tokens
V0508 = {
    "completion_tokens": 17,
    "prompt_tokens": 9,
    "spec_verify_ct": 5,
    "spec_accept_rate": 11 / 20,
    "spec_accept_length": 17 / 5,
    "spec_accept_token_num": 11,
    "spec_draft_token_num": 20,
}
V0517 = {
    "completion_tokens": 17,
    "prompt_tokens": 9,
    "spec_verify_ct": 5,
    "spec_accept_rate": 11 / 20,
    "spec_accept_length": 17 / 5,
    "spec_num_correct_drafts": 11,
    "spec_num_proposed_drafts": 20,
    "spec_accepted_drafts": 11,
    "spec_proposed_drafts": 20,  # 0.5.17's backward-compat aliases
    "spec_correct_drafts_histogram": [1, 1, 1, 0, 2],
    "spec_accept_histogram": [1, 1, 1, 0, 2],
    "finish_reason": {"type": "length", "length": 17},
}
V0523 = {
    k: v for k, v in V0517.items() if k not in ("spec_accepted_drafts", "spec_proposed_drafts", "spec_accept_histogram")
}


@pytest.mark.parametrize("m, schema", [(V0508, "0.5.8"), (V0517, "0.5.12+"), (V0523, "0.5.12+")])
def test_every_version_gives_the_same_stats(m, schema):
    s = spec_stats(m)
    assert (s.verify_rounds, s.accepted_drafts, s.proposed_drafts, s.schema) == (5, 11, 20, schema)
    assert s.round_tokens == 16 and s.acceptance_length == pytest.approx(3.2)  # ours: prefill token excluded
    assert s.sglang_accept_length == pytest.approx(m["spec_accept_length"])  # SGLang's: completion / verify
    assert s.round_tokens == s.accepted_drafts + s.verify_rounds  # accepted + one bonus per round


def test_aliases_alone_are_read():
    only_alias = {k: v for k, v in V0517.items() if k not in ("spec_num_correct_drafts", "spec_num_proposed_drafts")}
    assert spec_stats(only_alias).accepted_drafts == 11


def test_no_verify_round_means_zero_not_missing():
    s = spec_stats({"completion_tokens": 1, "prompt_tokens": 5, "finish_reason": {"type": "length"}})
    assert (s.verify_rounds, s.acceptance_length, s.schema, s.round_tokens) == (0, 0.0, "none", 0)


def test_inconsistent_or_unknown_responses_are_refused():
    with pytest.raises(MetaInfoError, match="histogram"):
        spec_stats({**V0523, "spec_correct_drafts_histogram": [0, 5]})
    with pytest.raises(MetaInfoError, match="no accepted-draft count"):
        spec_stats({"completion_tokens": 3, "spec_verify_ct": 2, "spec_accept_length": 1.5})
    with pytest.raises(MetaInfoError, match="completion_tokens"):
        spec_stats({"spec_verify_ct": 2})


def test_generate_output_becomes_a_request_result():
    req = GenRequest("r7", (5, 6, 7), 17)
    res = to_result(req, {"text": "", "output_ids": list(range(17)), "meta_info": V0523})
    assert (res.rounds, res.round_tokens, res.accepted_tokens, res.proposed_tokens) == (5, 16, 11, 20)
    assert res.acceptance_length == pytest.approx(3.2) and res.finish_reason == "length"
