"""`aurora trace import openai-jsonl` on completions-style lines (/v1/completions logs), alone and
mixed with chat lines; bad lines named by file and line, nothing written."""

import json
from pathlib import Path

import pytest
import typer
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from aurora_sim.errors import AuroraError
from traces.cli import trace_app
from traces.importers import import_frame, import_trace
from traces.importers.common import ImportOptions
from traces.io import read_trace
from traces.validate import validate_frame

app = typer.Typer()
app.add_typer(trace_app, name="trace")


def _write(path: Path, *lines) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def test_completions_lines(tmp_path):
    src = _write(
        tmp_path / "completions.jsonl",
        {"prompt": "def add(a, b):", "max_tokens": 64},
        {
            "prompt": ["What is a bond yield?"],
            "max_tokens": 32,
            "temperature": 0.5,
            "top_p": 0.9,
            "seed": 7,
            "model": "gpt-3.5-turbo-instruct",
            "domain": "finance",
        },
        {
            "custom_id": "b-1",
            "method": "POST",
            "url": "/v1/completions",
            "body": {"model": "m", "prompt": "Once upon a time", "max_tokens": 8},
        },
    )
    out = import_trace("openai-jsonl", src, tmp_path / "c.parquet", ImportOptions(max_new_tokens=99))
    trace = read_trace(out)
    rows = trace.frame.to_dicts()
    assert [r["prompt"] for r in rows] == ["def add(a, b):", "What is a bond yield?", "Once upon a time"]
    assert all(r["messages"] is None and r["prompt_token_ids"] is None for r in rows)
    assert [r["max_new_tokens"] for r in rows] == [64, 32, 8]
    assert (rows[1]["temperature"], rows[1]["top_p"], rows[1]["seed"], rows[1]["domain"]) == (0.5, 0.9, 7, "finance")
    assert rows[0]["domain"] == "chat" and rows[0]["temperature"] == 0.0
    meta = [json.loads(r["metadata"]) for r in rows]
    assert [m["line"] for m in meta] == [1, 2, 3] and meta[1]["model"] == "gpt-3.5-turbo-instruct"
    assert "reply_chars" not in meta[0]
    assert validate_frame(trace.frame) == []


def test_completions_default_length(tmp_path):
    src = _write(tmp_path / "c.jsonl", {"prompt": "no length given"})
    frame, _ = import_frame("openai-jsonl", src, ImportOptions(max_new_tokens=77))
    assert frame["max_new_tokens"].to_list() == [77]


def test_mixed_chat_and_completions(tmp_path):
    src = _write(
        tmp_path / "mixed.jsonl",
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi?"},
                {"role": "assistant", "content": "Hello."},
            ],
            "max_tokens": 16,
        },
        {"prompt": "import numpy as np\n", "max_tokens": 24},
        "",
        {
            "custom_id": "c",
            "url": "/v1/chat/completions",
            "body": {
                "messages": [{"role": "user", "content": [{"type": "text", "text": "Explain ETFs."}]}],
                "max_completion_tokens": 40,
            },
        },
        {"custom_id": "d", "url": "/v1/completions", "body": {"prompt": ["The central bank"], "max_tokens": 12}},
    )
    out = import_trace("openai-jsonl", src, tmp_path / "m.parquet")
    rows = read_trace(out).frame.to_dicts()
    assert len(rows) == 4
    assert rows[0]["prompt"] is None and rows[0]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi?"},
    ]
    assert rows[1]["prompt"] == "import numpy as np\n" and rows[1]["messages"] is None
    assert rows[2]["messages"] == [{"role": "user", "content": "Explain ETFs."}] and rows[2]["prompt"] is None
    assert rows[3]["prompt"] == "The central bank"
    assert [r["max_new_tokens"] for r in rows] == [16, 24, 40, 12]
    assert [json.loads(r["metadata"])["line"] for r in rows] == [1, 2, 4, 5]
    assert json.loads(rows[0]["metadata"])["reply_chars"] == len("Hello.")


@pytest.mark.parametrize(
    "line, msg",
    [
        ({"prompt": ["a", "b"], "max_tokens": 4}, r"'prompt' is a batch of 2 prompts"),
        ({"prompt": [101, 2023, 102]}, r"'prompt' is a list of token ids"),
        ({"prompt": ""}, r"'prompt' is empty"),
        ({"prompt": "   \n"}, r"'prompt' is empty"),
        ({"prompt": []}, r"'prompt' must be a string or a list of one string"),
        ({"prompt": [None]}, r"'prompt' must be a string or a list of one string"),
        ({"prompt": 42}, r"'prompt' must be a string or a list of one string, got int"),
        ({"prompt": None}, r"'prompt' must be a string or a list of one string, got NoneType"),
        ({"prompt": "x", "messages": [{"role": "user", "content": "y"}]}, r"both 'messages' and 'prompt'"),
        ({"max_tokens": 3}, r"no 'messages' or 'prompt'"),
        ({"body": {"model": "m"}, "url": "/v1/completions"}, r"no 'messages' or 'prompt'"),
        ({"prompt": "ok", "max_tokens": 0}, r"max_tokens: 0 is below the minimum 1"),
        ({"prompt": "ok", "max_tokens": "many"}, r"max_tokens: expected an integer"),
        ({"prompt": "ok", "temperature": -1}, r"temperature: -1.0 must be >= 0.0"),
    ],
)
def test_bad_line_names_file_and_line_and_writes_nothing(tmp_path, line, msg):
    src = _write(
        tmp_path / "bad.jsonl",
        {"prompt": "a fine first line", "max_tokens": 8},
        {"messages": [{"role": "user", "content": "a fine chat line"}]},
        line,
    )
    out = tmp_path / "out.parquet"
    with pytest.raises(AuroraError, match=r"bad\.jsonl: line 3: " + msg):
        import_trace("openai-jsonl", src, out)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl"]


def test_cli_bad_line_is_one_line_error(tmp_path):
    src = _write(tmp_path / "bad.jsonl", {"prompt": "fine"}, {"prompt": ["one", "two"]})
    out = tmp_path / "out.parquet"
    res = CliRunner().invoke(app, ["trace", "import", "openai-jsonl", str(src), "-o", str(out)])
    assert res.exit_code == 2, res.output
    assert res.output.startswith("error: ") and res.output.count("\n") == 1
    assert f"{src}: line 2: 'prompt' is a batch of 2 prompts" in res.output
    assert not out.exists()
    good = _write(
        tmp_path / "good.jsonl", {"prompt": "fine", "max_tokens": 5}, {"messages": [{"role": "user", "content": "hi"}]}
    )
    res = CliRunner().invoke(app, ["trace", "import", "openai-jsonl", str(good), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert f"wrote {out}: 2 requests" in res.output and read_trace(out).frame.height == 2


PROMPT = st.one_of(
    st.text(max_size=12),
    st.lists(st.text(max_size=6), max_size=3),
    st.integers(),
    st.none(),
    st.lists(st.integers(0, 50), min_size=1, max_size=3),
)
LINE = st.one_of(
    st.fixed_dictionaries({"prompt": PROMPT, "max_tokens": st.one_of(st.none(), st.integers(-2, 600))}),
    st.fixed_dictionaries({"url": st.just("/v1/completions"), "body": st.fixed_dictionaries({"prompt": PROMPT})}),
    st.fixed_dictionaries({"messages": st.just([{"role": "user", "content": "q?"}])}),
).map(json.dumps)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(LINE, min_size=1, max_size=5))
def test_fuzz_completions_lines(tmp_path, lines):
    """Either a valid trace or an AuroraError naming the file; nothing else."""
    src = tmp_path / "f.jsonl"
    src.write_text("\n".join(lines))
    try:
        frame, _ = import_frame("openai-jsonl", src)
    except AuroraError as exc:
        assert str(src) in str(exc)
        event("refused")
        return
    assert validate_frame(frame) == []
    event("imported")
