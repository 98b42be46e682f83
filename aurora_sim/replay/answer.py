"""The main job's answer: would online learning pay on this traffic? A learning replay is shown
beside the same starting draft *frozen* on the same requests (same trace, seed and cost model),
per segment: acceptance length, and throughput as a ratio to the frozen draft's."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from aurora_sim.replay.config import ReplayConfig
from aurora_sim.replay.summary import segment_speedups

PAYS = 1.0  # online must be faster than frozen, on the whole trace, to "pay"


def frozen_twin(cfg: ReplayConfig) -> ReplayConfig:
    """The same run with the starting draft frozen: no learner, no swaps, one draft."""
    return cfg.with_(learner_enabled=False, floor_draft="")


def twin_dir(out: Path) -> Path:
    return out.with_name(out.name + "-frozen")


def answer(online: dict, frozen: dict) -> dict:
    """The numbers the table shows (also written with --json)."""
    seg = segment_speedups(online, frozen)
    overall = online["throughput_tok_s"] / frozen["throughput_tok_s"] if frozen.get("throughput_tok_s") else None
    return {
        "frozen_run": frozen["run_id"],
        "speedup_vs_frozen": None if overall is None else round(overall, 4),
        "segments": [
            {
                "segment": a["segment"],
                "domain": a["domain"],
                "frozen_al": b["acceptance_length"],
                "online_al": a["acceptance_length"],
                "speedup_vs_frozen": x,
            }
            for a, b, x in zip(online["segments"], frozen["segments"], seg)
        ],
        "pays": overall is not None and overall > PAYS,
    }


def print_answer(online: dict, frozen: dict, ans: dict) -> None:
    t = Table(title=f"online ({online['name']}) vs the same draft frozen, same traffic")
    for col in ("segment", "AL frozen", "AL online", "speedup vs frozen"):
        t.add_column(col, justify="left" if col == "segment" else "right")
    for s in ans["segments"]:
        t.add_row(f"{s['segment']} {s['domain']}", _f(s["frozen_al"]), _f(s["online_al"]), _x(s["speedup_vs_frozen"]))
    t.add_row("all", _f(frozen["acceptance_length"]), _f(online["acceptance_length"]), _x(ans["speedup_vs_frozen"]))
    tm = online.get("time") or {}
    if tm.get("swaps"):
        t.caption = (
            f"{tm['swaps']} {tm['mechanism']} swaps stalled serving {tm['pause_s']:.2f} s of {tm['makespan_s']:.2f} s "
            f"(each must add {_f(tm['break_even_al_gain'])} AL to pay for itself)"
        )
    con = Console()
    con.print(t)
    verdict = "pays" if ans["pays"] else "does not pay"
    con.print(
        f"online learning {verdict} on this traffic: {_x(ans['speedup_vs_frozen'])} the frozen draft's throughput"
    )


def _f(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def _x(x) -> str:
    return "-" if x is None else f"{x:.3f}x"
