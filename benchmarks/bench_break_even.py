"""The AL gain a swap must bring to pay for its pause (issue 31), per swap mechanism, batch, swap
interval and output length, under the H100 / Llama-3-8B cost model.

    python3 benchmarks/bench_break_even.py [--al 3.0] [--gamma 4] [--context 512]

A swap every R requests of L output tokens, served at batch B and acceptance length AL at depth γ,
comes every R·L / throughput seconds; a pause P then needs AL' >= AL·interval / (interval − P)
(costs/swap.break_even_al_gain). Throughput is the cost model's steady round at that batch, AL
and context. Rows: the fast recipe's cadence (8 steps ≈ 64 requests), the paper's (50 steps ≈ 400
requests), at our replays' 32-token outputs and the paper example's 512. -> benchmarks/results/break-even.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aurora_sim.costs import RoundShape, make_cost_model  # noqa: E402
from aurora_sim.costs.swap import MECHANISMS, break_even_al_gain  # noqa: E402


def rows(al: float, gamma: int, context: int) -> list[dict]:
    out = []
    for batch in (1, 8, 64):
        for requests, cadence in ((64, "fast: 8 steps"), (400, "paper: 50 steps")):
            for length in (32, 512):
                for mech in MECHANISMS:
                    cost = make_cost_model("h100", "llama3-8b", swap=mech, max_batch=batch)
                    round_ns = cost.round_ns(RoundShape.steady(batch, gamma, context, al))
                    tok_s = batch * al / (round_ns / 1e9)
                    interval = requests * length / tok_s
                    pause = cost.swap_ns()[1] / 1e9
                    gain = break_even_al_gain(al, pause, interval)
                    out.append(
                        {
                            "batch": batch,
                            "cadence": cadence,
                            "requests_between_swaps": requests,
                            "output_tokens": length,
                            "mechanism": mech,
                            "interval_s": round(interval, 3),
                            "pause_s": round(pause, 4),
                            "break_even_al_gain": None if gain is None else round(gain, 4),
                        }
                    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--al", type=float, default=3.0)
    ap.add_argument("--gamma", type=int, default=4)
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "break-even.json")
    a = ap.parse_args()
    table = rows(a.al, a.gamma, a.context)
    doc = {"al": a.al, "gamma": a.gamma, "context": a.context, "cost_model": "h100 / llama3-8b", "rows": table}
    tmp = a.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(a.out)
    print(f"AL {a.al}, γ {a.gamma}, context {a.context}: the AL gain each swap must bring")
    print("| batch | between swaps | output tokens | interval (s) | in-place: pause, gain | recapture: pause, gain |")
    print("|---|---|---|---|---|---|")
    for i in range(0, len(table), 2):
        p, r = table[i], table[i + 1]
        g = lambda x: "never pays" if x["break_even_al_gain"] is None else f"+{x['break_even_al_gain']:.3f}"  # noqa: E731
        print(
            f"| {p['batch']} | {p['requests_between_swaps']} requests ({p['cadence']}) | {p['output_tokens']} | "
            f"{p['interval_s']:.2f} | {p['pause_s'] * 1e3:.1f} ms, {g(p)} | {r['pause_s']:.1f} s, {g(r)} |"
        )
    print(f"-> {a.out}")


if __name__ == "__main__":
    main()
