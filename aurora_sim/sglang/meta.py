"""Per-request speculative statistics from SGLang's `meta_info`, whatever the version.

What SGLang emits (read in each wheel's tokenizer_manager.py, `_calculate_spec_decoding_metrics`;
tests/test_sglang_contract.py re-reads the key names from the source):
    all versions   completion_tokens; and only when spec_verify_ct > 0:
                   spec_verify_ct, spec_accept_rate, spec_accept_length
    0.5.8          spec_accept_token_num (accepted drafts, no bonus), spec_draft_token_num
    0.5.12-0.5.23  spec_num_correct_drafts, spec_num_proposed_drafts,
                   spec_correct_drafts_histogram (index = drafts accepted in a round, value =
                   rounds; only when non-empty); 0.5.17 also the aliases spec_accepted_drafts,
                   spec_proposed_drafts, spec_accept_histogram
With no verify round (speculation off, or a request finished at prefill) none of the spec_*
keys is present: that is 0 rounds, not missing data.

Acceptance length. SGLang's `spec_accept_length` is completion_tokens / spec_verify_ct, which
counts the first token (made by prefill, not by a verify round). Ours excludes it (README): a
verify round emits accepted + 1 tokens, so our AL = (completion_tokens - 1) / verify rounds.
Both are returned. `proposed_drafts` is verify rounds x (num_draft_tokens - 1) in SGLang, the
chain length γ per round for topk 1.
"""

from __future__ import annotations

from dataclasses import dataclass

# (accepted drafts, proposed drafts) per naming scheme, newest first
_NAMES = (
    ("0.5.12+", "spec_num_correct_drafts", "spec_num_proposed_drafts"),
    ("0.5.17-alias", "spec_accepted_drafts", "spec_proposed_drafts"),
    ("0.5.8", "spec_accept_token_num", "spec_draft_token_num"),
)
_HISTOGRAMS = ("spec_correct_drafts_histogram", "spec_accept_histogram")


@dataclass(frozen=True)
class SpecStats:
    completion_tokens: int
    verify_rounds: int  # SGLang's spec_verify_ct (0 = no verify round)
    accepted_drafts: int  # proposals the target kept, bonus not included
    proposed_drafts: int
    histogram: tuple[int, ...] | None  # rounds by drafts accepted in the round, where reported
    schema: str  # which naming scheme the response used: 0.5.12+, 0.5.17-alias, 0.5.8 or none

    @property
    def round_tokens(self) -> int:
        """Tokens emitted by verify rounds: every completion token but the prefill's first one."""
        return max(0, self.completion_tokens - 1) if self.verify_rounds else 0

    @property
    def acceptance_length(self) -> float:
        """Ours (README): verify-round tokens per round, bonus included, first token excluded."""
        return self.round_tokens / self.verify_rounds if self.verify_rounds else 0.0

    @property
    def sglang_accept_length(self) -> float:
        """SGLang's spec_accept_length: completion_tokens / spec_verify_ct."""
        return self.completion_tokens / self.verify_rounds if self.verify_rounds else 0.0


class MetaInfoError(ValueError):
    pass


def spec_stats(meta_info: dict) -> SpecStats:
    """Normalise one request's meta_info (Engine.generate or HTTP /generate)."""
    if "completion_tokens" not in meta_info:
        raise MetaInfoError("meta_info has no completion_tokens (not a /generate response?)")
    completion = int(meta_info["completion_tokens"])
    verify = int(meta_info.get("spec_verify_ct") or 0)
    if verify == 0:
        return SpecStats(completion, 0, 0, 0, None, "none")
    for schema, acc_key, prop_key in _NAMES:  # noqa: B007 (the match is used after the loop)
        if acc_key in meta_info:
            accepted, proposed = int(meta_info[acc_key]), int(meta_info.get(prop_key) or 0)
            break
    else:
        raise MetaInfoError(
            f"meta_info has spec_verify_ct={verify} but no accepted-draft count "
            f"(keys: {', '.join(sorted(k for k in meta_info if k.startswith('spec_')))})"
        )
    hist = next((meta_info[k] for k in _HISTOGRAMS if meta_info.get(k)), None)
    hist = tuple(int(x) for x in hist) if hist else None
    if hist is not None and (sum(hist) != verify or sum(i * n for i, n in enumerate(hist)) != accepted):
        raise MetaInfoError(f"histogram {hist} disagrees with {verify} rounds / {accepted} accepted drafts")
    return SpecStats(completion, verify, accepted, proposed, hist, schema)
