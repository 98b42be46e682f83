"""`aurora trace ...`: generate, summarise, validate and import traces.

Registered by aurora_sim/cli.py as ``app.add_typer(trace_app, name="trace")``; this module must
not import aurora_sim.cli (that one imports this one). Heavy imports happen inside commands.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from aurora_sim.cli_errors import err_console as err
from aurora_sim.cli_errors import friendly
from aurora_sim.errors import AuroraError

trace_app = typer.Typer(
    help="Traces: generate named scenarios, summarise, validate and import traffic.", no_args_is_help=True
)


@trace_app.command("gen")
@friendly
def gen(
    name: str = typer.Argument(None, help="Scenario: shift-ci, shift-paper, ordered, mixed, drift, sharp, phase."),
    config: Path = typer.Option(None, "--config", help="A JSON or TOML generator config instead of a name."),
    out: Path = typer.Option(None, "-o", "--out", help="Output Parquet file."),
    seed: int = typer.Option(None, "--seed", help="Seed (default: the config's; 0 for a named scenario)."),
    dump_config: bool = typer.Option(
        False, "--dump-config", help="Print the full config as JSON instead of generating."
    ),
):
    """Generate a trace from a named scenario or a config file (same name/config + seed = same bytes)."""
    from traces.config import load_config
    from traces.generate import generate_to_file
    from traces.scenarios import scenario

    if (name is None) == (config is None):
        raise AuroraError("give a scenario NAME or --config FILE (not both)")
    cfg = scenario(name) if name is not None else load_config(config)
    if seed is not None:
        cfg = cfg.with_seed(seed)
    if dump_config:
        print(json.dumps(cfg.to_dict(), indent=1))
        return
    if out is None:
        raise AuroraError("missing -o OUT.parquet")
    t0 = time.perf_counter()
    generate_to_file(cfg, out)
    err.print(
        f"wrote {out}: {cfg.requests:,} requests ({cfg.name}, seed {cfg.seed}) in {time.perf_counter() - t0:.2f} s",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )


@trace_app.command("show")
@friendly
def show(
    file: Path = typer.Argument(..., help="Trace Parquet file."),
    plot: bool = typer.Option(False, "--plot", help="Also write a PNG of the domain mix over time."),
    plot_out: Path = typer.Option(None, "--plot-out", help="Where the PNG goes (default: FILE with .png)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
):
    """Summarise a trace: requests per domain and segment, arrival rate, length percentiles."""
    from traces.summary import plot_mix, print_summary, summarize, summary_json

    s = summarize(file)
    if as_json:
        print(summary_json(s))
    else:
        print_summary(s)
    if plot or plot_out:
        png = plot_mix(file, plot_out or file.with_suffix(".png"))
        err.print(f"wrote {png}", highlight=False, soft_wrap=True, markup=False)


@trace_app.command("validate")
@friendly
def validate(
    file: Path = typer.Argument(..., help="Trace Parquet file."),
    max_rows: int = typer.Option(20, "--max-rows", help="Rows listed per kind of problem (0 = all)."),
):
    """Check a trace: every problem on its own line; exit 1 if there is any. Warns (exit 0) when a
    segment repeats more than 5 % of its prompts."""
    from traces.repeats import repeat_warnings
    from traces.validate import read_parquet_checked, validate_loaded

    frame, meta, problems = read_parquet_checked(file)
    if frame is not None:
        problems = validate_loaded(frame, meta, str(file), max_rows)
    for p in problems:
        print(p)
    if problems:
        err.print(f"{file}: {len(problems)} problem line(s)", highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit(1)
    for w in repeat_warnings(frame, str(file)):
        err.print(w, highlight=False, soft_wrap=True, markup=False)
    err.print(f"{file}: ok", highlight=False, soft_wrap=True, markup=False)


@trace_app.command("import")
@friendly
def import_(
    fmt: str = typer.Argument(
        ..., metavar="FORMAT", help="openai-jsonl, sharegpt, sglang-log, hf-datasets or length-only."
    ),
    src: Path = typer.Argument(..., help="Source file (a dataset directory for hf-datasets)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output Parquet file."),
    domain: str = typer.Option("chat", help="Domain of the imported requests (length-only: where prompts come from)."),
    max_new_tokens: int = typer.Option(256, help="Where the source gives no output length."),
    temperature: float = typer.Option(0.0, help="Where the source gives none."),
    top_p: float = typer.Option(1.0, help="Where the source gives none."),
    seed: int = typer.Option(0, help="Seeds arrivals, per-request sampling seeds and length-only text."),
    rate: float = typer.Option(None, help="Poisson arrivals at this rate (req/s) instead of the source's times."),
    concurrency: int = typer.Option(8, help="Closed-loop concurrency when the source has no times and no --rate."),
    limit: int = typer.Option(None, help="Import at most this many requests."),
    turns: str = typer.Option("first", help="sharegpt: 'first' human turn per conversation, or 'all'."),
    split: str = typer.Option(None, help="hf-datasets: split of a DatasetDict."),
    column: str = typer.Option(
        None, help="hf-datasets: prompt column (default: messages, conversations, prompt, text)."
    ),
    time_unit: str = typer.Option("ms", help="length-only: unit of numeric timestamps (ns, us, ms, s)."),
    chars_per_token: float = typer.Option(4.0, help="length-only: prompt characters per input token."),
    block_size: int = typer.Option(512, help="length-only: tokens per Mooncake hash id."),
    max_prompt_chars: int = typer.Option(None, help="length-only: cap on prompt characters."),
):
    """Import traffic (OpenAI chat or completions JSONL, ShareGPT, SGLang request logs, a HF dataset,
    length-only traces)."""
    from traces import parse
    from traces.arrivals import Closed, Poisson
    from traces.importers import FORMATS, import_frame
    from traces.importers.common import ImportOptions
    from traces.io import write_trace

    if fmt not in FORMATS:
        raise AuroraError(f"unknown import format {fmt!r} (expected one of {', '.join(FORMATS)})")
    parse.domain(domain, "--domain")
    arrivals = (
        Poisson(parse.number(rate, "--rate", lo=0.0, lo_open=True))
        if rate is not None
        else Closed(parse.integer(concurrency, "--concurrency", lo=1))
    )
    opts = ImportOptions(
        domain,
        parse.integer(max_new_tokens, "--max-new-tokens", lo=1),
        parse.number(temperature, "--temperature", lo=0.0),
        parse.number(top_p, "--top-p", lo=0.0, hi=1.0, lo_open=True),
        parse.integer(seed, "--seed", lo=0),
        arrivals,
        use_source_times=rate is None,
        limit=None if limit is None else parse.integer(limit, "--limit", lo=1),
    )
    kw = {
        "sharegpt": {"turns": turns},
        "hf-datasets": {"split": split, "column": column},
        "length-only": {
            "time_unit": time_unit,
            "chars_per_token": chars_per_token,
            "block_size": block_size,
            "max_prompt_chars": max_prompt_chars,
        },
    }.get(fmt, {})
    t0 = time.perf_counter()
    frame, config = import_frame(fmt, src, opts, **kw)
    write_trace(frame, out, config)
    skipped = config["options"].get("skipped_conversations")
    note = f"; skipped {skipped:,} conversations without a human turn" if skipped else ""
    err.print(
        f"wrote {out}: {frame.height:,} requests from {src} ({fmt}) in {time.perf_counter() - t0:.2f} s{note}",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )
