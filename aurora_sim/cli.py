"""The `aurora` command line. Every user-facing error is one line naming the problem and the file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from analysis.cli import report_command, sql_command
from analysis.paper_cli import figures_command
from analysis.regress_cli import regress_command
from aurora_sim.cli_errors import err_console as console
from aurora_sim.cli_errors import friendly
from aurora_sim.costs.cli import calibrate_command, costs_command
from aurora_sim.errors import AuroraError
from aurora_sim.live.cli import capture_command, live_command
from aurora_sim.replay.cache_cli import cache_app
from aurora_sim.replay.cli import replay_command
from aurora_sim.serve.cli import serve_command
from aurora_sim.sweep.cli import sweep_command
from aurora_sim.validate.cli import validate_command
from traces.cli import trace_app

app = typer.Typer(
    help="aurora-sim: speculative decoding whose draft keeps learning from live traffic — "
    "replay traces through a real engine in deterministic virtual time with the draft learning "
    "online (`aurora replay`), build models, generate and inspect traces, decode.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="Build and list the offline-built models (tiers: tiny, smollm2).", no_args_is_help=True)
draft_app = typer.Typer(help="Train and inspect draft models.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(draft_app, name="draft")
app.add_typer(trace_app, name="trace")
app.add_typer(cache_app, name="cache")
app.command("replay")(replay_command)
app.command("sweep")(sweep_command)
app.command("calibrate")(calibrate_command)
app.command("costs")(costs_command)
app.command("validate")(validate_command)
app.command("sql")(sql_command)
app.command("report")(report_command)
app.command("figures")(figures_command)
app.command("regress")(regress_command)
app.command("serve")(serve_command)
app.command("live")(live_command)
app.command("capture")(capture_command)


@models_app.command("build")
@friendly
def models_build(
    tier: str = typer.Argument("tiny", help="tiny, smollm2 or all"),
    force: bool = typer.Option(False, help="Rebuild even if the cached recipe matches."),
    static_draft: str = typer.Option(
        None,
        "--static-draft",
        help="Also the tier's static EAGLE-3 draft (what --init static serves): "
        "ci (the default recipe) or full (longer, cached apart; --init static-full).",
    ),
    from_source: bool = typer.Option(
        False,
        "--from-source",
        help="tiny: rebuild the target (and --static-draft) here from the recipe instead of using the shipped "
        "reference build; it is cached as `tiny-source` (use --model tiny-source) and compared with the reference "
        "(held-out loss, static AL per domain). Deterministic on one machine; its bytes depend on the CPU.",
    ),
):
    """Build a model tier offline from registry-shipped material (cached; rebuilt only when its recipe changes).
    `tiny` ships built (the reference build, verified by sha256): nothing is built unless --from-source."""
    from aurora_sim.models.registry import TIERS, build_tier

    if static_draft is not None:
        from aurora_sim.learner.offline import FLAVOURS

        if static_draft not in FLAVOURS:
            raise AuroraError(f"unknown --static-draft {static_draft!r} ({', '.join(FLAVOURS)})")
    names = [t for t in TIERS if t != "tiny-source"] if tier == "all" else [tier]
    for name in names:
        if name == "tiny-source":  # the same as tiny --from-source
            name, from_source = "tiny", True
        path = build_tier(name, force=force, from_source=from_source)
        built = "tiny-source" if name == "tiny" and from_source else name
        if name == "tiny" and not from_source:
            from aurora_sim import reference

            console.print(f"[green]tiny[/green]: reference build {reference.version()}, shipped and verified: {path}")
        else:
            console.print(f"[green]{built}[/green]: {path}")
        draft = None
        if static_draft is not None:
            from aurora_sim.learner.offline import train_static_draft

            draft = train_static_draft(built, "eagle3", flavour=static_draft)
            console.print(f"[green]{built}[/green] static draft ({static_draft}): {draft}")
        if name == "tiny" and from_source:
            _print_reference_comparison(path, draft, static_draft)


def _print_reference_comparison(source: Path, draft: Path | None, flavour: str | None) -> None:
    from aurora_sim import reference
    from aurora_sim.models.compare import compare

    ref_draft = reference.draft_dir("eagle3", flavour) if draft is not None else None
    rows = compare(source, draft, ref_draft)
    table = Table(title=f"tiny from source vs the reference build {reference.version()} (both measured here)")
    for col in ("measure", "domain", "reference", "from source", "difference"):
        table.add_column(col, justify="left" if col in ("measure", "domain") else "right")
    for r in rows:
        table.add_row(r["measure"], r["domain"], f"{r['reference']:.4f}", f"{r['source']:.4f}", f"{r['delta']:+.4f}")
    console.print(table)
    if draft is None:
        console.print("[dim]static AL: add --static-draft ci to build and compare the static head too.[/dim]")


@models_app.command("list")
@friendly
def models_list(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")):
    """List model tiers, whether they are built, and their shapes."""
    from aurora_sim.models.registry import list_models

    rows = list_models()
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    table = Table("name", "built", "source", "layers", "hidden", "vocab", "MB", "recipe", "path")
    for r in rows:
        table.add_row(
            r["name"],
            "yes" if r["built"] else "no",
            *(str(r.get(k, "")) for k in ("source", "layers", "hidden", "vocab", "size_mb", "recipe")),
            r["path"],
        )
    Console().print(table)


@app.command()
@friendly
def generate(
    prompts: Path = typer.Option(..., help="Text file (one prompt per line) or JSONL with `prompt` or `messages`."),
    model: str = typer.Option("tiny", help="tiny, smollm2, or a HF Llama directory."),
    draft: str = typer.Option(
        "eagle3",
        help="none, eagle3 (random day-0 head), lm (random small LM), same (copy of the target), or a draft directory.",
    ),
    gamma: int = typer.Option(4, help="Draft tokens proposed per round (chain length γ)."),
    batch: int = typer.Option(8, help="Maximum concurrent requests (continuous batching)."),
    temperature: float = typer.Option(0.0, help="0 = greedy; > 0 = lossless rejection sampling."),
    top_p: float = typer.Option(1.0, help="Nucleus sampling mass (with temperature > 0)."),
    seed: int = typer.Option(0, help="Seed: request i samples from seed + i; also seeds a random draft."),
    max_new_tokens: int = typer.Option(64, help="Tokens to generate per prompt."),
    threads: int = typer.Option(1, help="torch threads (1 leaves a core for a trainer on a 2-core machine)."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    weight_format: str = typer.Option(
        "fp32",
        help="CPU serving format of target and draft weights: fp32, or fp16 (half the bytes to read per "
        "step; a slightly different model, so compare runs in one format).",
    ),
    json_out: Path = typer.Option(None, "--json", help="Write per-prompt outputs, rounds and acceptance length here."),
):
    """Decode prompts with speculative decoding and report acceptance length and tokens/s."""
    from aurora_sim.generate import AL_CONVENTION, GenerateConfig, read_prompts, run_generate, write_json

    cfg = GenerateConfig(
        model,
        draft,
        gamma,
        batch,
        temperature,
        top_p,
        seed,
        max_new_tokens,
        threads,
        device,
        weight_format=weight_format,
    )
    items = read_prompts(prompts)
    report = run_generate(cfg, items)
    if json_out:
        write_json(report, json_out)
    s = report["summary"]
    print(
        f"{s['requests']} prompts, {s['output_tokens']} tokens, acceptance length {s['spec_decode_acceptance_length']:.3f}, "
        f"{s['tokens_per_s']:.1f} tokens/s ({AL_CONVENTION})"
    )


@draft_app.command("train")
@friendly
def draft_train(
    model: str = typer.Option("tiny", help="Target: tiny, smollm2, or a directory."),
    kind: str = typer.Option("eagle3", help="eagle3 or lm."),
    out: Path = typer.Option(None, "-o", help="Output directory (default: the cached static draft of this target)."),
    steps: int = typer.Option(None, help="Optimizer steps (default: the recipe's)."),
    seed: int = typer.Option(0),
    flavour: str = typer.Option("ci", help="Recipe flavour (EAGLE-3): ci (the default) or full (longer)."),
    from_source: bool = typer.Option(
        False,
        "--from-source",
        help="tiny: train the head here even where the reference build ships it (cached apart; deterministic "
        "on one machine, its bytes depend on the CPU).",
    ),
):
    """Distil a *static* draft offline (the paper's 'static draft' arm): the tiny EAGLE-3 head on the
    target's own greedy continuations of training-split prompts, other drafts on training-corpus text.
    For tiny's EAGLE-3 flavours at the recipe's settings the reference build ships the head: it is
    verified and used, unless --from-source."""
    from aurora_sim.learner.offline import train_static_draft

    path = train_static_draft(
        model, kind=kind, out=out, steps=steps, seed=seed, flavour=flavour, from_source=from_source
    )
    from aurora_sim import reference

    shipped = path.resolve().is_relative_to(reference.ROOT)
    console.print(f"draft: {path}" + (f" (shipped with reference build {reference.version()})" if shipped else ""))


@draft_app.command("export")
@friendly
def draft_export(
    source: Path = typer.Argument(
        ..., help="A replay run directory (its registry names the draft) or a draft directory."
    ),
    fmt: str = typer.Option(
        "sglang-eagle3", "--format", help="sglang-eagle3 (EAGLE-3 head) or sglang-standalone (small LM)."
    ),
    out: Path = typer.Option(..., "-o", help="Output directory (written atomically; replaced if it exists)."),
    model: str = typer.Option(None, help="Target: tiny, smollm2 or a directory (default: the run's model, else tiny)."),
    version: str = typer.Option(
        "serving", help="With a run directory: serving (default), latest, or a version number."
    ),
    dtype: str = typer.Option("float32", help="Weight dtype: float32, bfloat16 or float16."),
):
    """Write a draft SGLang loads (--speculative-algorithm EAGLE3 or STANDALONE; docs/sglang.md)."""
    from aurora_sim.sglang.export import export_draft

    r = export_draft(source, fmt, out, model=model, dtype=dtype, version=version)
    where = f"version {r['version']} of {source}" if r["version"] is not None else str(source)
    console.print(f"{fmt} draft ({where}, target {r['model']}, {dtype}) written to {out}")


@app.command()
@friendly
def demo(
    model: str = typer.Option("tiny", help="Model tier for the demo."),
    prompts_per_domain: int = typer.Option(8, help="Held-out prompts per domain."),
    max_new_tokens: int = typer.Option(48),
    gamma: int = typer.Option(4),
    batch: int = typer.Option(8),
):
    """Build the default models and compare target-only, a day-0 draft and a trained static draft."""
    from aurora_sim.demo import run_demo

    run_demo(model, prompts_per_domain, max_new_tokens, gamma, batch)


def main() -> None:  # pragma: no cover - console entry for `python -m aurora_sim`
    sys.exit(app())
