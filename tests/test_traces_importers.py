"""Importers: fixtures of every format, bad input named by file and line, fuzzing."""

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from aurora_sim.errors import AuroraError
from traces.arrivals import Poisson
from traces.importers import import_frame, import_trace
from traces.importers.common import ImportOptions
from traces.importers.sglang_log import scan_call
from traces.io import read_trace
from traces.validate import validate_frame

FIX = Path(__file__).parent / "fixtures" / "traces"
DOCS = [
    {"id": "d1", "domain": "code", "source": "t", "text": "def f(x):\n    return x + 1\n\n\nclass A:\n    pass\n"},
    {"id": "d2", "domain": "code", "source": "t", "text": "import os\nprint(os.getcwd())\n"},
]
FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _rows(frame: pl.DataFrame) -> list[dict]:
    return frame.to_dicts()


def test_openai_jsonl(tmp_path):
    out = import_trace(
        "openai-jsonl", FIX / "openai_chat.jsonl", tmp_path / "o.parquet", ImportOptions(max_new_tokens=99)
    )
    trace = read_trace(out)
    rows = _rows(trace.frame)
    assert [r["request_id"] for r in rows] == ["openai-000000", "openai-000001", "openai-000002"]
    assert rows[0]["messages"] == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What does a central bank do when inflation rises?"},
    ]
    assert rows[0]["max_new_tokens"] == 64 and json.loads(rows[0]["metadata"])["reply_chars"] == 33
    assert rows[1]["messages"][0]["role"] == "system" and rows[1]["messages"][1]["content"].startswith("Write a Python")
    assert (rows[1]["max_new_tokens"], rows[1]["temperature"], rows[1]["top_p"], rows[1]["seed"]) == (48, 0.7, 0.95, 7)
    assert json.loads(rows[1]["metadata"])["source_id"] == "batch-2"
    assert rows[2]["domain"] == "finance" and rows[2]["max_new_tokens"] == 99 and len(rows[2]["messages"]) == 3
    assert trace.config["importer"] == "openai-jsonl" and trace.config["arrivals"] == {
        "kind": "closed",
        "concurrency": 8,
    }


def test_sharegpt_first_and_all_turns():
    first, cfg = import_frame("sharegpt", FIX / "sharegpt.json")
    assert first.height == 2 and cfg["options"]["skipped_conversations"] == 2
    assert first["request_id"].to_list() == ["conv1:0", "conv2:1"]
    assert first["messages"][1].to_list() == [
        {"role": "system", "content": "You are a finance tutor."},
        {"role": "user", "content": "What is a dividend yield?"},
    ]
    every, _ = import_frame("sharegpt", FIX / "sharegpt.json", turns="all")
    assert every.height == 3 and [m["role"] for m in every["messages"][1]] == ["user", "assistant", "user"]


def test_sglang_text_log():
    frame, cfg = import_frame("sglang-log", FIX / "sglang_text.log")
    rows = {r["request_id"]: r for r in _rows(frame)}
    assert set(rows) == {"9f2c1a", "7be0d4", "c0ffee"}  # health check skipped
    a, b, c = rows["9f2c1a"], rows["7be0d4"], rows["c0ffee"]
    assert a["prompt"] == 'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n'
    assert a["max_new_tokens"] == 32 and json.loads(a["metadata"])["completion_tokens"] == 32
    assert b["prompt"] is None and b["prompt_token_ids"] == [1, 4093, 314, 253, 6549, 30]
    assert (b["temperature"], b["top_p"], b["seed"], b["ignore_eos"]) == (0.8, 0.95, 11, True)
    # arrivals: Receive timestamps (1 s resolution); c only finished: 10:00:05 - 2.5 s
    assert (a["arrival_ns"], b["arrival_ns"], c["arrival_ns"]) == (0, 1_000_000_000, 1_500_000_000)
    assert frame["arrival_ns"].is_sorted() and cfg["arrivals"]["kind"] == "source"


def test_sglang_json_log():
    frame, _ = import_frame("sglang-log", FIX / "sglang_json.log")
    rows = _rows(frame)
    assert [r["request_id"] for r in rows] == ["a1", "a2"]
    assert rows[0]["prompt"] == "The Federal Reserve said on Wednesday" and rows[0]["max_new_tokens"] == 20
    assert rows[1]["arrival_ns"] == 250_500_000 and rows[1]["prompt_token_ids"] == [1, 2, 3]


def test_sglang_log_without_year_and_with_batches(tmp_path):
    log = tmp_path / "s.log"  # some builds log "%m-%d %H:%M:%S"; a batch request gives one row per item
    log.write_text(
        "[03-01 10:00:01 DP0 TP0] Receive: obj=GenerateReqInput(rid='b', text=['one', 'two'], "
        "sampling_params=[{'max_new_tokens': 3}, {'max_new_tokens': 5}])\n"
        "[03-01 10:00:03 DP0 TP0] Receive: obj=GenerateReqInput(rid='c', text='three', sampling_params={})\n"
    )
    frame, _ = import_frame("sglang-log", log, ImportOptions(max_new_tokens=7))
    assert frame.select("request_id", "prompt", "max_new_tokens", "arrival_ns").rows() == [
        ("b_0", "one", 3, 0),
        ("b_1", "two", 5, 0),
        ("c", "three", 7, 2_000_000_000),
    ]


def test_sglang_truncated_and_promptless_logs_are_refused(tmp_path):
    cut = "x" * 1024
    log = tmp_path / "lvl2.log"
    log.write_text(
        f"[2025-03-01 10:00:01 TP0] Receive: obj=GenerateReqInput(rid='r', text='{cut}' ... '{cut}', "
        "sampling_params={'max_new_tokens': 4})\n"
    )
    with pytest.raises(AuroraError, match=r"lvl2.log: line 1: text is incomplete: .*--log-requests-level 3"):
        import_frame("sglang-log", log)
    log.write_text("[2025-03-01 10:00:01 TP0] Receive: obj=GenerateReqInput(rid='r', stream=False)\n")
    with pytest.raises(AuroraError, match=r"line 1: request 'r' has no logged prompt"):
        import_frame("sglang-log", log)
    log.write_text("nothing to see\n")
    with pytest.raises(AuroraError, match="no SGLang request records"):
        import_frame("sglang-log", log)


def test_scan_call_handles_quotes_and_nesting():
    name, fields, rest = scan_call("""GenerateReqInput(text='a, b) "c"', x=[1, (2, 3)], d={'k': "it's"}), out={}""")
    assert name == "GenerateReqInput" and rest == ", out={}"
    assert fields == {"text": """'a, b) "c"'""", "x": "[1, (2, 3)]", "d": """{'k': "it's"}"""}


def test_length_only_mooncake_and_azure(tmp_path):
    frame, cfg = import_frame(
        "length-only",
        FIX / "mooncake.jsonl",
        ImportOptions(domain="code", seed=1),
        documents=DOCS,
        block_size=8,
        chars_per_token=2.0,
    )
    rows = _rows(frame)
    assert [r["arrival_ns"] for r in rows] == [0, 0, 2_000_000_000, 3_052_000_000]
    assert [r["max_new_tokens"] for r in rows] == [12, 7, 9, 30] and all(r["ignore_eos"] for r in rows)
    assert [len(r["prompt"]) for r in rows] == [240, 180, 128, 80]
    assert rows[0]["prompt"][:16] == rows[1]["prompt"][:16]  # shared hash id 0 = shared prefix
    assert json.loads(rows[2]["metadata"])["input_tokens"] == 64
    assert cfg["arrivals"]["kind"] == "trace" and len(cfg["arrivals"]["sha256"]) == 64
    az, _ = import_frame(
        "length-only", FIX / "azure.csv", ImportOptions(domain="code"), documents=DOCS, max_prompt_chars=100
    )
    assert az["arrival_ns"].to_list() == [0, 4_314_579_000, 4_319_410_000]
    assert az["max_new_tokens"].to_list() == [44, 109, 8] and az["prompt"].str.len_chars().max() == 100


def test_length_only_prompts_from_the_real_corpus(tmp_path):
    frame, _ = import_frame("length-only", FIX / "azure.csv", ImportOptions(domain="finance"))
    assert frame["domain"].unique().to_list() == ["finance"]
    assert frame["prompt"].str.len_chars().to_list() == [1496, 1584, 480]


def test_rate_option_replaces_source_times():
    frame, cfg = import_frame(
        "sglang-log", FIX / "sglang_text.log", ImportOptions(arrivals=Poisson(2.0), use_source_times=False, seed=3)
    )
    assert cfg["arrivals"] == {"kind": "poisson", "rate_per_s": 2.0} and frame["arrival_ns"][0] == 0
    assert frame["arrival_ns"].to_list() != [0, 1_000_000_000, 1_500_000_000]


def test_bad_inputs_name_file_and_line_and_write_nothing(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n{"messages": [oops\n')
    out = tmp_path / "out.parquet"
    cases = [
        ("openai-jsonl", bad, r"bad.jsonl: line 2: not valid JSON"),
        ("openai-jsonl", FIX / "sharegpt.json", r"sharegpt.json: line 1: not valid JSON"),
        ("sharegpt", FIX / "openai_chat.jsonl", r"openai_chat.jsonl: line 1: 'conversations' must be a list"),
        ("length-only", FIX / "openai_chat.jsonl", r"openai_chat.jsonl: line 1: missing 'timestamp'"),
        ("hf-datasets", tmp_path / "missing", r"missing: not found"),
        ("nope", bad, r"unknown import format 'nope'"),
    ]
    for fmt, src, msg in cases:
        with pytest.raises(AuroraError, match=msg):
            import_trace(fmt, src, out, documents=DOCS) if fmt == "length-only" else import_trace(fmt, src, out)
        assert not out.exists()
    tool = tmp_path / "tool.jsonl"
    tool.write_text(
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": "x"},
                    {"role": "tool", "content": "y"},
                    {"role": "user", "content": "z"},
                ]
            }
        )
        + "\n"
    )
    with pytest.raises(AuroraError, match=r"tool.jsonl: line 1: message 1: role 'tool' is not supported"):
        import_frame("openai-jsonl", tool)
    img = tmp_path / "img.jsonl"
    img.write_text(
        json.dumps({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}) + "\n"
    )
    with pytest.raises(AuroraError, match="content part of type 'image_url' is not supported"):
        import_frame("openai-jsonl", img)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl", "img.jsonl", "tool.jsonl"]


def test_regressions_found_by_fuzzing(tmp_path):
    two_replies = tmp_path / "two.jsonl"  # used to loop forever on two trailing assistant turns
    two_replies.write_text(
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": "q"},
                    {"role": "assistant", "content": "a1"},
                    {"role": "assistant", "content": "a2"},
                ]
            }
        )
        + "\n"
    )
    frame, _ = import_frame("openai-jsonl", two_replies)
    assert frame["messages"][0].to_list() == [{"role": "user", "content": "q"}]
    assert json.loads(frame["metadata"][0])["reply_chars"] == 2
    huge = tmp_path / "huge.jsonl"  # used to raise OverflowError instead of a named error
    huge.write_text('{"timestamp": 1.797693134862316e+302, "input_length": 1, "output_length": 1}\n')
    with pytest.raises(AuroraError, match=r"huge.jsonl: line 1: timestamp .* is out of range"):
        import_frame("length-only", huge, documents=DOCS)


def test_hf_datasets(tmp_path):
    datasets = pytest.importorskip(
        "datasets", reason="the hf-datasets importer needs `datasets` (pip install datasets)"
    )
    ds = datasets.Dataset.from_dict(
        {
            "messages": [
                [{"role": "user", "content": "What is an ETF?"}, {"role": "assistant", "content": "A fund."}],
                [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "def add(a, b):"}],
            ],
            "prompt": ["What is an ETF?", "def add(a, b):"],
        }
    )
    ds.save_to_disk(str(tmp_path / "ds"))
    frame, cfg = import_frame("hf-datasets", tmp_path / "ds")
    assert cfg["options"]["column"] == "messages" and frame.height == 2
    assert frame["messages"][0].to_list() == [{"role": "user", "content": "What is an ETF?"}]
    text, _ = import_frame("hf-datasets", tmp_path / "ds", column="prompt")
    assert text["prompt"].to_list() == ["What is an ETF?", "def add(a, b):"]
    datasets.DatasetDict({"train": ds, "test": ds.select([0])}).save_to_disk(str(tmp_path / "dd"))
    one, cfg = import_frame("hf-datasets", tmp_path / "dd", split="test")
    assert one.height == 1 and cfg["options"]["split"] == "test"
    sharegpt_style = datasets.Dataset.from_dict(
        {"conversations": [[{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]]}
    )
    sharegpt_style.save_to_disk(str(tmp_path / "sg"))
    sg, _ = import_frame("hf-datasets", tmp_path / "sg")
    assert sg["messages"][0].to_list() == [{"role": "user", "content": "hi"}]
    (tmp_path / "junk").mkdir()
    with pytest.raises(AuroraError, match="junk: not a dataset saved with save_to_disk"):
        import_frame("hf-datasets", tmp_path / "junk")
    with pytest.raises(AuroraError, match="no column 'nope'"):
        import_frame("hf-datasets", tmp_path / "ds", column="nope")


# ---------------------------------------------------------------------------- fuzzing

JSONISH = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 2**40),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=12),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(
                [
                    "messages",
                    "role",
                    "content",
                    "from",
                    "value",
                    "conversations",
                    "id",
                    "max_tokens",
                    "temperature",
                    "top_p",
                    "seed",
                    "body",
                    "custom_id",
                    "type",
                    "text",
                    "domain",
                    "timestamp",
                    "input_length",
                    "output_length",
                    "hash_ids",
                    "event",
                    "obj",
                    "rid",
                    "input_ids",
                    "sampling_params",
                    "max_new_tokens",
                ]
            ),
            inner,
            max_size=5,
        ),
    ),
    max_leaves=12,
)
ROLES = st.sampled_from(["user", "assistant", "system", "developer", "tool", "human", "gpt", 3, None])
MESSAGE = st.fixed_dictionaries({"role": ROLES, "content": st.one_of(st.text(max_size=10), st.none(), st.integers())})
GOOD_TEXT = st.text(min_size=1, max_size=12)
GOOD_MESSAGES = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["system", "assistant"]), "content": GOOD_TEXT}), max_size=2
).map(lambda m: m + [{"role": "user", "content": "q?"}])
MAYBE_INT = st.one_of(st.none(), st.integers(-2, 600))


def _check(fmt: str, src: Path, tmp_path: Path, **kw):
    """An importer either gives a valid trace or an AuroraError naming the source; nothing else."""
    try:
        frame, _ = import_frame(fmt, src, **kw)
    except AuroraError as exc:
        assert str(src) in str(exc) or "--" in str(exc)
        event("refused with AuroraError")
        return
    assert validate_frame(frame) == []
    event("imported")


GOOD_LINE = st.one_of(
    st.fixed_dictionaries({"messages": GOOD_MESSAGES, "max_tokens": MAYBE_INT, "seed": MAYBE_INT}).map(json.dumps),
    st.fixed_dictionaries(
        {"custom_id": st.text(max_size=3), "body": st.fixed_dictionaries({"messages": GOOD_MESSAGES})}
    ).map(json.dumps),
)


@FUZZ
@given(
    lines=st.one_of(
        st.lists(GOOD_LINE, min_size=1, max_size=5),
        st.lists(
            st.one_of(
                JSONISH.map(json.dumps),
                st.text(max_size=20),
                GOOD_LINE,
                st.lists(MESSAGE, max_size=4).map(lambda m: json.dumps({"messages": m})),
            ),
            min_size=1,
            max_size=5,
        ),
    )
)
def test_fuzz_openai_jsonl(tmp_path, lines):
    src = tmp_path / "f.jsonl"
    src.write_text("\n".join(lines))
    _check("openai-jsonl", src, tmp_path)


GOOD_CONV = st.fixed_dictionaries(
    {
        "id": st.text(max_size=3),
        "conversations": st.lists(
            st.fixed_dictionaries({"from": st.sampled_from(["human", "gpt", "system"]), "value": GOOD_TEXT}),
            min_size=1,
            max_size=4,
        ),
    }
)
ANY_CONV = st.fixed_dictionaries(
    {
        "id": st.text(max_size=3),
        "conversations": st.lists(
            st.fixed_dictionaries({"from": ROLES, "value": st.one_of(st.text(max_size=8), st.none())}), max_size=4
        ),
    }
)


@FUZZ
@given(
    convs=st.one_of(
        JSONISH, st.lists(GOOD_CONV, min_size=1, max_size=4), st.lists(st.one_of(GOOD_CONV, ANY_CONV), max_size=4)
    ),
    as_lines=st.booleans(),
)
def test_fuzz_sharegpt(tmp_path, convs, as_lines):
    src = tmp_path / "f.json"
    src.write_text(
        "\n".join(json.dumps(c) for c in convs) if as_lines and isinstance(convs, list) else json.dumps(convs)
    )
    _check("sharegpt", src, tmp_path)


TEXT_VALUES = st.one_of(
    st.text(max_size=12).map(repr),
    st.lists(st.integers(-3, 10), max_size=3).map(str),
    st.just("None"),
    st.just("{'max_new_tokens': 4, 'temperature': 0.5}"),
    st.text(alphabet="'\"()[]{},=. ", max_size=10),
)
GOOD_RECORD = st.fixed_dictionaries(
    {
        "rid": st.text(min_size=1, max_size=3).map(repr),
        "text": GOOD_TEXT.map(repr),
        "sampling_params": st.fixed_dictionaries({"max_new_tokens": MAYBE_INT}).map(str),
    }
)


@FUZZ
@given(
    records=st.lists(
        st.one_of(
            st.tuples(
                st.sampled_from(["Receive", "Finish"]),
                st.dictionaries(
                    st.sampled_from(["rid", "text", "input_ids", "sampling_params", "stream", "received_time"]),
                    TEXT_VALUES,
                    max_size=5,
                ),
            ),
            st.tuples(st.sampled_from(["Receive", "Finish"]), GOOD_RECORD),
            st.tuples(st.sampled_from(["Receive", "Finish"]), GOOD_RECORD),
            JSONISH.map(lambda j: ("json", j)),
            st.fixed_dictionaries(
                {
                    "event": st.just("request.received"),
                    "timestamp": st.just("2025-01-01T00:00:00.5"),
                    "obj": st.fixed_dictionaries({"rid": st.text(max_size=3), "text": GOOD_TEXT}),
                }
            ).map(lambda j: ("json", j)),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_fuzz_sglang_log(tmp_path, records):
    lines = []
    for kind, body in records:
        if kind == "json":
            lines.append(json.dumps(body))
        else:
            fields = ", ".join(f"{k}={v}" for k, v in body.items())
            lines.append(f"[2025-03-01 10:00:0{len(lines) % 10} TP0] {kind}: obj=GenerateReqInput({fields})")
    src = tmp_path / "f.log"
    src.write_text("\n".join(lines))
    _check("sglang-log", src, tmp_path)


GOOD_ROW = st.fixed_dictionaries(
    {
        "timestamp": st.integers(0, 10**7),
        "input_length": st.integers(0, 300),
        "output_length": st.integers(0, 300),
        "hash_ids": st.one_of(st.none(), st.lists(st.integers(0, 5), max_size=3)),
    }
)
ANY_ROW = st.fixed_dictionaries(
    {
        "timestamp": st.one_of(st.integers(-10, 10**7), st.floats(allow_nan=True), st.text(max_size=22)),
        "input_length": st.one_of(st.integers(-1, 300), st.text(max_size=3)),
        "output_length": st.one_of(st.integers(-1, 300), st.none()),
        "hash_ids": st.one_of(st.none(), st.lists(st.integers(-1, 5), max_size=3)),
    }
)


@FUZZ
@given(
    rows=st.one_of(
        st.lists(GOOD_ROW, min_size=1, max_size=5), st.lists(st.one_of(JSONISH, GOOD_ROW, ANY_ROW), max_size=5)
    ),
    csv=st.booleans(),
)
def test_fuzz_length_only(tmp_path, rows, csv):
    src = tmp_path / ("f.csv" if csv else "f.jsonl")
    if csv:
        src.write_text(
            "timestamp,input_length,output_length\n"
            + "\n".join(
                ",".join(
                    str(r.get(k, "")) if isinstance(r, dict) else str(r)
                    for k in ("timestamp", "input_length", "output_length")
                )
                for r in rows
            )
        )
    else:
        src.write_text("\n".join(json.dumps(r) for r in rows))
    _check("length-only", src, tmp_path, opts=ImportOptions(domain="code"), documents=DOCS)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    column=st.one_of(
        st.lists(st.one_of(st.text(max_size=8), st.lists(MESSAGE, min_size=1, max_size=3)), min_size=1, max_size=4),
        st.lists(GOOD_MESSAGES, min_size=1, max_size=3),
        st.lists(GOOD_TEXT, min_size=1, max_size=3),
    )
)
def test_fuzz_hf_datasets(tmp_path, column):
    datasets = pytest.importorskip("datasets", reason="needs `datasets`")
    shutil.rmtree(tmp_path / "ds", ignore_errors=True)
    kind = (
        "prompt"
        if all(isinstance(v, str) for v in column)
        else "messages"
        if all(isinstance(v, list) for v in column)
        else None
    )
    if kind is None:
        return  # arrow columns have one type
    try:
        datasets.Dataset.from_dict({kind: column}).save_to_disk(str(tmp_path / "ds"))
    except Exception:
        return  # e.g. mixed content types arrow cannot store: nothing to import
    _check("hf-datasets", tmp_path / "ds", tmp_path)
