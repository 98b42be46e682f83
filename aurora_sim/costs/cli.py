"""Command functions for `aurora calibrate` and `aurora costs` (registered by aurora_sim.cli):

app.command("calibrate")(calibrate_command)
app.command("costs")(costs_command)
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from aurora_sim.cli_errors import err_console, friendly
from aurora_sim.errors import AuroraError


def parse_ints(text: str, what: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise AuroraError(f"--{what}: expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 0:
        raise AuroraError(f"--{what}: expected non-negative integers, got {text!r}")
    return values


@friendly
def calibrate_command(
    model: str = typer.Option("tiny", help="Target: tiny, smollm2, or a HF Llama directory."),
    draft: str = typer.Option(
        "eagle3",
        help="eagle3 or lm (random day-0 draft: timing does not depend on its weights), same, none, or a draft directory.",
    ),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    batches: str = typer.Option("1,2,4,8,16", help="Batch sizes to measure, comma-separated."),
    gammas: str = typer.Option("0,1,2,4,6", help="Draft lengths γ to measure (0 = target-only), comma-separated."),
    contexts: str = typer.Option(
        "32,128,512",
        help="Cached tokens per row to measure steady rounds at, comma-separated (a round's cost grows with "
        "the context it attends to; look-ups interpolate between these).",
    ),
    prefills: str = typer.Option(
        "16,64,256",
        help="Prompt lengths to measure admissions at, comma-separated: what a round costs on top when 1 or "
        "`batch` new prompts of that length join it (their prefill and the draft's catch-up over them).",
    ),
    rounds: int = typer.Option(12, help="Measured rounds per cell after warm-up; the median is kept."),
    threads: int = typer.Option(1, help="torch threads (1 matches the replay)."),
    train_unroll: int = typer.Option(5, help="TTT unroll of the measured draft training step."),
    out: Path = typer.Option(
        None, "--out", "-o", help="Output JSON (default: <cache>/calibration/<model>-<device>.json)."
    ),
):
    """Measure round, prefill, training-step and swap times of the real engine on this machine and
    write a profile table for `--hardware profiled`: steady rounds over (context, γ, batch), what
    admitting 1 or `batch` prompts adds over (γ, batch, prompt length), the trainer step and the
    swap. `aurora validate` reports which of its look-ups fell outside these grids."""
    from aurora_sim.costs.calibrate import calibrate

    path = calibrate(
        model=model,
        draft=draft,
        batches=parse_ints(batches, "batches"),
        gammas=parse_ints(gammas, "gammas"),
        contexts=parse_ints(contexts, "contexts"),
        prefills=parse_ints(prefills, "prefills"),
        rounds=rounds,
        device=device,
        out=out,
        threads=threads,
        train_unroll=train_unroll,
    )
    table = json.loads(path.read_text())
    _print_profile(table)
    err_console.print(f"profile written to {path}")


def _print_profile(t: dict) -> None:
    grid = Table(
        "γ \\ batch",
        *(str(b) for b in t["batch_grid"]),
        title=f"round time, ms ({t['model']}/{t['draft']} on {t['device']})",
    )
    for g in t["gamma_grid"]:
        grid.add_row(str(g), *(f"{t['round_ns'][str(g)][str(b)] / 1e6:.2f}" for b in t["batch_grid"]))
    console = Console()
    console.print(grid)
    if t.get("context_grid"):
        console.print(f"contexts measured (cached tokens per row): {', '.join(map(str, t['context_grid']))}")
    if t.get("admit_ns"):
        adm = Table(
            "γ", "batch", "k", *(f"{n} tok" for n in t["prefill_grid"]), title="admission adds, ms (k prompts join)"
        )
        for g, by_b in t["admit_ns"].items():
            for b, by_k in by_b.items():
                for k, row in by_k.items():
                    adm.add_row(g, b, k, *(f"{row[str(n)] / 1e6:.2f}" for n in t["prefill_grid"]))
        console.print(adm)
    console.print(
        f"prefill {t['prefill_ns_per_token'] / 1e3:.1f} µs/token · train step {t['train_step_fixed_ns'] / 1e6:.1f} ms + "
        f"{t['train_step_ns_per_token'] / 1e3:.1f} µs/token (unroll {t['train_unroll']}) · swap publish "
        f"{t['swap_publish_ns'] / 1e6:.1f} ms, pause {t['swap_pause_ns'] / 1e6:.1f} ms"
    )


@friendly
def costs_command(
    hardware: str = typer.Option("h100", help="h100, h200, a100, cpu, or profiled (with --profile)."),
    deployment: str = typer.Option(
        "llama3-8b", help="llama3-8b, qwen3-8b, llama3-70b, qwen3-coder-30b-a3b, proxy, or a deployment JSON file."
    ),
    accept_len: float = typer.Option(
        3.5, "--al", help="Acceptance length (tokens per verify round incl. the bonus; capped at γ+1)."
    ),
    context: int = typer.Option(512, help="Cached tokens per row."),
    batches: str = typer.Option("1,2,4,8,16,32,64,128", help="Batch sizes, comma-separated."),
    gammas: str = typer.Option("0,2,4,5,6", help="Draft lengths γ, comma-separated."),
    profile: Path = typer.Option(None, help="Profile table for --hardware profiled."),
    proxy_model: str = typer.Option("tiny", help="With --deployment proxy: the proxy target (tier or directory)."),
    proxy_draft: str = typer.Option("eagle3", help="With --deployment proxy: eagle3, lm or same."),
    train_tokens: int = typer.Option(4096, help="Tokens per trainer step to cost."),
    as_json: bool = typer.Option(False, "--json", help="Print the model's description and the table as JSON."),
):
    """Print a cost model: round time against batch and γ, and the speedup it implies at an acceptance length."""
    from aurora_sim.costs import implied_speedup, make_cost_model
    from aurora_sim.costs.shapes import RoundShape

    spec = None
    if deployment == "proxy":
        from aurora_sim.models.llama import LlamaSpec, read_config
        from aurora_sim.models.registry import resolve_model

        spec = LlamaSpec.from_hf(read_config(resolve_model(proxy_model)))
    cost = make_cost_model(hardware, deployment, proxy_target=spec, proxy_draft_kind=proxy_draft, profile_path=profile)
    bs, gs = parse_ints(batches, "batches"), parse_ints(gammas, "gammas")
    rows = [
        {
            "batch": b,
            "gamma": g,
            "round_ms": cost.round_ns(RoundShape.steady(b, g, context, min(accept_len, g + 1))) / 1e6,
            "speedup": implied_speedup(cost, b, g, accept_len, context),
        }
        for b in bs
        for g in gs
    ]
    publish, pause = cost.swap_ns()
    if as_json:
        print(
            json.dumps(
                {
                    "model": cost.describe(),
                    "accept_len": accept_len,
                    "context": context,
                    "table": rows,
                    "train_step_ns": cost.train_step_ns(train_tokens),
                    "train_tokens": train_tokens,
                    "swap_publish_ns": publish,
                    "swap_pause_ns": pause,
                },
                indent=1,
            )
        )
        return
    table = Table(
        "batch",
        *(f"γ={g}" for g in gs),
        title=f"{cost.name}: round ms (speedup at AL {accept_len:g}, {context} cached tokens/row)",
    )
    by = {(r["batch"], r["gamma"]): r for r in rows}
    for b in bs:
        cells = []
        for g in gs:
            r = by[b, g]
            cells.append(f"{r['round_ms']:.2f}" if g == 0 else f"{r['round_ms']:.2f} ({r['speedup']:.2f}x)")
        table.add_row(str(b), *cells)
    console = Console()
    console.print(table)
    console.print(
        f"train step ({train_tokens} tokens): {cost.train_step_ns(train_tokens) / 1e6:.1f} ms · "
        f"swap: publish {publish / 1e6:.0f} ms, pause {pause / 1e6:.0f} ms"
    )
