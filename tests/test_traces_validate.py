"""Bad traces: every problem named with file, row and what is wrong; the validator never crashes."""

import io

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aurora_sim.errors import AuroraError
from traces.io import read_trace, to_parquet_bytes, write_trace
from traces.schema import COLUMNS
from traces.validate import validate_file, validate_frame


def _frame(n: int = 6) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "arrival_ns": [i * 1000 for i in range(n)],
            "domain": ["code", "finance", "chat"] * (n // 3) + ["code"] * (n % 3),
            "segment": [0] * n,
            "prompt": [None if i % 3 == 2 else f"prompt {i}" for i in range(n)],
            "messages": [[{"role": "user", "content": f"hi {i}"}] if i % 3 == 2 else None for i in range(n)],
            "prompt_token_ids": [[1, 2, 3] if i == 0 else None for i in range(n)],
            "max_new_tokens": [16] * n,
            "temperature": [0.0] * n,
            "top_p": [1.0] * n,
            "seed": list(range(n)),
            "ignore_eos": [False] * n,
            "metadata": ["{}"] * n,
        },
        schema=COLUMNS,
    )


def _set(frame: pl.DataFrame, col: str, row: int, value, dtype=None) -> pl.DataFrame:
    values = frame[col].to_list()
    values[row] = value
    return frame.with_columns(pl.Series(col, values, dtype=dtype or frame.schema[col]))


def _write_raw(path, frame, meta=None):
    path.write_bytes(to_parquet_bytes(frame, {}) if meta is None else _bytes(frame, meta))
    return path


def _bytes(frame, meta):
    buf = io.BytesIO()
    frame.write_parquet(buf, metadata=meta)
    return buf.getvalue()


def test_valid_frame_has_no_problems(tmp_path):
    assert validate_frame(_frame()) == []
    out = write_trace(_frame(), tmp_path / "ok.parquet", {"name": "t"})
    assert validate_file(out) == [] and read_trace(out).frame.equals(_frame())


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda f: f.drop("seed"), "f.parquet: missing column 'seed'"),
        (
            lambda f: f.with_columns(pl.col("max_new_tokens").cast(pl.Utf8)),
            "f.parquet: column 'max_new_tokens' has type String, expected an integer type",
        ),
        (
            lambda f: _set(f, "request_id", 4, "r1"),
            "f.parquet: row 4 (request_id 'r1'): duplicate request_id: first at row 1",
        ),
        (lambda f: _set(f, "arrival_ns", 3, -5), "f.parquet: row 3 (request_id 'r3'): arrival_ns is negative: -5"),
        (
            lambda f: _set(f.with_columns(pl.col("arrival_ns").cast(pl.Float64)), "arrival_ns", 2, float("nan")),
            "f.parquet: row 2 (request_id 'r2'): arrival_ns is NaN",
        ),
        (
            lambda f: _set(f, "arrival_ns", 4, 1500),
            "f.parquet: row 4 (request_id 'r4'): arrivals are not sorted: arrival_ns 1500 is before the previous row's 3000",
        ),
        (lambda f: _set(f, "prompt", 1, "   "), "f.parquet: row 1 (request_id 'r1'): prompt is empty"),
        (
            lambda f: _set(_set(f, "prompt", 1, None), "prompt_token_ids", 1, None),
            "f.parquet: row 1 (request_id 'r1'): no prompt",
        ),
        (
            lambda f: _set(f, "messages", 2, [{"role": "assistant", "content": "x"}]),
            "f.parquet: row 2 (request_id 'r2'): messages do not end with a non-empty user turn",
        ),
        (
            lambda f: _set(f, "prompt", 2, "text too"),
            "f.parquet: row 2 (request_id 'r2'): both prompt and messages are set",
        ),
        (
            lambda f: _set(f, "domain", 0, "legal"),
            "f.parquet: row 0 (request_id 'r0'): unknown domain (expected one of code, finance, chat): 'legal'",
        ),
        (lambda f: _set(f, "segment", 5, -1), "f.parquet: row 5 (request_id 'r5'): segment is negative: -1"),
        (lambda f: _set(f, "top_p", 1, 0.0), "f.parquet: row 1 (request_id 'r1'): top_p out of range ((0, 1]): 0.0"),
        (
            lambda f: _set(f, "max_new_tokens", 0, 0),
            "f.parquet: row 0 (request_id 'r0'): max_new_tokens is not positive: 0",
        ),
        (
            lambda f: _set(f, "metadata", 3, "not json"),
            "f.parquet: row 3 (request_id 'r3'): metadata is not a JSON object",
        ),
        (
            lambda f: _set(f, "prompt_token_ids", 0, [4, -1]),
            "f.parquet: row 0 (request_id 'r0'): prompt_token_ids has a null, negative",
        ),
        (
            lambda f: _set(f.with_columns(pl.col("max_new_tokens").cast(pl.Int64)), "max_new_tokens", 1, 2**40),
            "f.parquet: row 1 (request_id 'r1'): max_new_tokens is too large for int32",
        ),
        (
            lambda f: _set(
                f.with_columns(pl.col("prompt_token_ids").cast(pl.List(pl.Int64))), "prompt_token_ids", 0, [2**40]
            ),
            "f.parquet: row 0 (request_id 'r0'): prompt_token_ids has a null, negative or too large",
        ),
        (lambda f: f.head(0), "f.parquet: no requests (0 rows)"),
    ],
)
def test_each_problem_is_named(tmp_path, mutate, expected):
    path = _write_raw(
        tmp_path / "f.parquet", mutate(_frame()), {"aurora.trace.schema_version": "1", "aurora.trace.config": "{}"}
    )
    problems = validate_file(path)
    assert any(p.startswith(str(tmp_path / expected)) for p in problems), problems
    with pytest.raises(AuroraError, match="invalid trace"):
        read_trace(path)


def test_all_problems_are_listed_and_capped(tmp_path):
    f = _frame(60).with_columns(pl.lit("legal").alias("domain"), pl.lit(-1).alias("arrival_ns"))
    problems = validate_frame(f, "x", max_rows=5)
    assert sum("unknown domain" in p for p in problems) == 6  # 5 rows + "... and 55 more rows"
    assert "x: ... and 55 more rows where arrival_ns is negative" in problems
    assert len([p for p in validate_frame(f, "x", max_rows=0) if "unknown domain" in p]) == 60


def test_file_level_problems(tmp_path):
    good = write_trace(_frame(), tmp_path / "good.parquet", {})
    data = good.read_bytes()
    (tmp_path / "trunc.parquet").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.parquet").write_text("request_id,arrival_ns\nr0,0\n")
    (tmp_path / "empty.parquet").write_bytes(b"")
    bad_footer = bytearray(data)
    bad_footer[-40:-8] = b"\xff" * 32
    (tmp_path / "footer.parquet").write_bytes(bytes(bad_footer))
    assert validate_file(tmp_path / "trunc.parquet") == [
        f"{tmp_path}/trunc.parquet: not a Parquet file: truncated (no PAR1 footer)"
    ]
    assert validate_file(tmp_path / "text.parquet") == [
        f"{tmp_path}/text.parquet: not a Parquet file: another format (no PAR1 magic)"
    ]
    assert validate_file(tmp_path / "empty.parquet") == [f"{tmp_path}/empty.parquet: not a Parquet file: empty"]
    assert validate_file(tmp_path / "nope.parquet") == [f"{tmp_path}/nope.parquet: file not found"]
    assert validate_file(tmp_path / "footer.parquet")[0].startswith(f"{tmp_path}/footer.parquet: corrupt Parquet file")
    plain = tmp_path / "plain.parquet"
    _frame().write_parquet(plain)
    assert validate_file(plain) == [
        f"{plain}: no 'aurora.trace.schema_version' in the Parquet key-value metadata (not an aurora trace?)",
        f"{plain}: no 'aurora.trace.config' in the Parquet key-value metadata",
    ]
    v2 = _write_raw(
        tmp_path / "v2.parquet", _frame(), {"aurora.trace.schema_version": "2", "aurora.trace.config": "{}"}
    )
    assert validate_file(v2) == [f"{v2}: schema version '2' is not supported (this reader knows version 1)"]


# ---------------------------------------------------------------------------- fuzzing

VALUES = st.one_of(
    st.none(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.booleans(),
    st.lists(st.integers(-5, 5), max_size=3),
    st.lists(
        st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "bot"]), "content": st.text(max_size=5)}),
        max_size=2,
    ),
)


def _mutate(frame: pl.DataFrame, col: str, row: int, value):
    values = frame[col].to_list()
    values[row] = value
    try:
        series = pl.Series(col, values, dtype=frame.schema[col], strict=False)
    except Exception:
        series = pl.Series(col, [repr(v) for v in values])  # does not fit: the column becomes text
    return frame.with_columns(series)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    edits=st.lists(st.tuples(st.sampled_from(list(COLUMNS)), st.integers(0, 5), VALUES), max_size=4),
    drop=st.lists(st.sampled_from(list(COLUMNS)), max_size=2),
    reverse=st.booleans(),
)
def test_fuzz_validator_never_crashes_and_agrees_with_writer(tmp_path, edits, drop, reverse):
    f = _frame()
    for col, row, value in edits:
        f = _mutate(f, col, row, value)
    f = f.drop(list(set(drop)))
    if reverse:
        f = f.reverse()
    problems = validate_frame(f, "fz")
    assert all(isinstance(p, str) and p.startswith("fz: ") for p in problems)
    out = tmp_path / f"fz{abs(hash((str(edits), str(drop), reverse)))}.parquet"
    if problems:
        with pytest.raises(AuroraError):
            write_trace(f, out, {})
        assert not out.exists()
    else:  # valid: survives the round trip and the file validator agrees
        write_trace(f, out, {"fuzz": True})
        assert validate_file(out) == [] and read_trace(out).frame.equals(f.select(list(COLUMNS)).cast(COLUMNS))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 10_000), flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6))
def test_fuzz_damaged_files(tmp_path, cut, flips):
    data = bytearray(to_parquet_bytes(_frame(), {"x": 1}))
    for pos, byte in flips:
        data[pos % len(data)] = byte
    data = bytes(data[: len(data) - cut % len(data)] if cut % 3 == 0 else data)
    path = tmp_path / "damaged.parquet"
    path.write_bytes(data)
    problems = validate_file(path)
    assert all(p.startswith(str(path)) for p in problems)
    if problems:
        with pytest.raises(AuroraError):
            read_trace(path)
    else:
        assert read_trace(path).frame.height == 6
