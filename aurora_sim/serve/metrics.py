"""Prometheus text exposition (format 0.0.4), written by hand: a handful of counters and gauges,
named like SGLang's where one exists (sglang:* there, aurora:* here)."""

from __future__ import annotations

COUNTERS = {
    "requests_completed": "Requests that finished (length or stop)",
    "requests_aborted": "Requests dropped before finishing (client gone, stop string)",
    "requests_rejected": "Requests refused by the engine after admission checks",
    "prompt_tokens": "Prompt tokens prefilled",
    "generation_tokens": "Tokens generated",
    "verify_rounds": "Engine rounds summed over requests (target-only rounds included)",
    "spec_verify_rounds": "Speculative verify rounds summed over requests",
    "round_tokens": "Tokens emitted by speculative verify rounds (accepted + bonus)",
    "accepted_tokens": "Draft proposals accepted",
    "proposed_tokens": "Draft proposals made",
    "engine_steps": "Engine steps (one batched round each)",
    "engine_step_rows": "Requests in engine steps, summed (mean batch = this / engine_steps)",
    "swaps": "Draft swaps accepted by the engine",
    "swap_failures": "Draft swaps refused (the previous draft kept serving)",
}
GAUGES = {
    "draft_version": "Draft version serving new rounds",
    "running": "Requests in the running batch",
    "waiting": "Requests queued for a batch slot",
    "max_batch_observed": "Largest batch an engine step has run",
    "in_flight": "HTTP requests being served",
}


def render(counters: dict, gauges: dict, http: dict) -> str:
    lines = []
    for k, help_ in COUNTERS.items():
        lines += [
            f"# HELP aurora:{k}_total {help_}",
            f"# TYPE aurora:{k}_total counter",
            f"aurora:{k}_total {counters[k]}",
        ]
    for k, help_ in GAUGES.items():
        lines += [f"# HELP aurora:{k} {help_}", f"# TYPE aurora:{k} gauge", f"aurora:{k} {gauges.get(k, 0)}"]
    lines += [
        "# HELP aurora:http_requests_total HTTP requests answered, by status class",
        "# TYPE aurora:http_requests_total counter",
    ]
    for status, n in sorted(http.items()):
        lines.append(f'aurora:http_requests_total{{status="{status}"}} {n}')
    rounds = counters["spec_verify_rounds"]
    lines += [
        "# HELP aurora:spec_accept_length Tokens per speculative verify round, bonus included (cumulative)",
        "# TYPE aurora:spec_accept_length gauge",
        f"aurora:spec_accept_length {counters['round_tokens'] / rounds if rounds else 0.0}",
    ]
    return "\n".join(lines) + "\n"
