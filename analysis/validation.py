"""The report's "simulator vs real clock" section: runs that carry validation data.

`aurora validate` writes its predicted-vs-measured data into the measured run's directory
(RUN/validation/: aurora_sim.validate.store). For every run given to `aurora report` that has it,
the figure draws, per run, the round times on both clocks in round order, the cost model on each
measured round's own shape against that round's wall time, and per-request latency and TTFT
predicted against measured; the table gives the headline numbers and their relative errors.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from analysis.figures import _new, _rows
from aurora_sim.validate import store

FIGURES = {
    "validation": "Simulator vs real clock (aurora validate): per run, round time in round order on both clocks; "
    "the cost model on each measured round's shape against its wall time (y = x, ±5 % shaded; rounds that "
    "admit requests in orange); per-request latency and TTFT, predicted against measured.",
}


def validated(con) -> list[dict]:
    """label, run_dir and the validation data (summary, rounds, requests) of each run that has it."""
    out = []
    for r in _rows(con, "SELECT label, run_dir FROM run_dirs ORDER BY ord"):
        if store.has_arm(r["run_dir"]):
            summary, rounds, requests = store.read_arm(r["run_dir"])
            out.append({**r, "summary": summary, "rounds": rounds, "requests": requests})
    return out


def _footnote(fig: Figure, text: str) -> None:
    height = fig.get_size_inches()[1]
    fig.get_layout_engine().set(rect=(0, 0.3 / height, 1, 1 - 0.3 / height))
    fig.text(0.01, 0.008, text, fontsize=7, color="#444444", ha="left", va="bottom")


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:+.1f} %"


def fig_validation(con) -> Figure | None:
    runs = validated(con)
    if not runs:
        return None
    fig, axes = _new(13, 3.5 * len(runs) + 0.4, rows=len(runs), cols=3)
    for (ax_t, ax_r, ax_q), run in zip(axes, runs):
        s, rounds, req = run["summary"], run["rounds"], run["requests"]
        err = s["relative_error"]
        for clock, color, lw in (("predicted", "#1f77b4", 1.2), ("measured", "#d62728", 0.8)):
            part = rounds.filter(rounds["clock"] == clock).sort("round")
            ax_t.plot(part["round"].to_list(), (part["dur_ns"] / 1e6).to_list(), color=color, lw=lw, label=clock)
        ax_t.set_xlabel("round")
        ax_t.set_ylabel("round time (ms)")
        ax_t.set_title(
            f"{run['label']} ({s['arm']}, batch {s['batch']}, γ {s['gamma']})\nthroughput error "
            f"{_pct(err['throughput_tok_s'])}, mean latency {_pct(err['latency_ms.mean'])}",
            loc="left",
        )
        ax_t.legend(loc="upper right", fontsize=7)
        ax_t.grid(alpha=0.25)
        meas = rounds.filter(rounds["clock"] == "measured")
        admits = meas["prefill_requests"] > 0
        x, y = (meas["model_ns"] / 1e6).to_list(), (meas["dur_ns"] / 1e6).to_list()
        top = max(x + y + [1e-3]) * 1.05
        ax_r.fill_between([0, top], [0, top * 0.95], [0, top * 1.05], color="#999999", alpha=0.2, lw=0)
        ax_r.plot([0, top], [0, top], color="#555555", lw=0.8)
        colors = ["#ff7f0e" if a else "#1f77b4" for a in admits.to_list()]
        ax_r.scatter(x, y, s=6, c=colors, alpha=0.6, lw=0)
        ax_r.set_xlim(0, top)
        ax_r.set_ylim(0, top)
        ax_r.set_xlabel("cost model on the round's shape (ms)")
        ax_r.set_ylabel("measured round (ms)")
        parts = s["breakdown"]["makespan_error_parts"]
        ax_r.set_title(
            f"per round\nmakespan error: round costs {_pct(parts['round_cost'])}, server loop {_pct(parts['server_loop'])}",
            loc="left",
        )
        ax_r.grid(alpha=0.25)
        both = req.filter(req["clock"] == "predicted").join(
            req.filter(req["clock"] == "measured"), on="request_index", suffix="_m"
        )
        top = 1e-3
        for name, end, marker in (("latency", "finish_ns", "o"), ("TTFT", "first_token_ns", "^")):
            px = ((both[end] - both["arrival_ns"]) / 1e6).to_list()
            my = ((both[f"{end}_m"] - both["arrival_ns_m"]) / 1e6).to_list()
            top = max([top, *px, *my])
            ax_q.scatter(px, my, s=9, marker=marker, alpha=0.6, lw=0, label=name)
        top *= 1.05
        ax_q.plot([0, top], [0, top], color="#555555", lw=0.8)
        ax_q.set_xlim(0, top)
        ax_q.set_ylim(0, top)
        ax_q.set_xlabel("predicted (ms)")
        ax_q.set_ylabel("measured (ms)")
        ax_q.set_title(f"per request ({len(both)})\nTTFT mean error {_pct(err['ttft_ms.mean'])}", loc="left")
        ax_q.legend(loc="upper left", fontsize=7)
        ax_q.grid(alpha=0.25)
    _footnote(
        fig,
        "Relative error = (predicted - measured) / measured. Measured on the machine's clock, which other load "
        "moves: see the table's drift and CPU-share columns.",
    )
    return fig


def table_rows(con) -> tuple[list[str], list[list[str]]] | None:
    runs = validated(con)
    if not runs:
        return None
    headers = [
        "run",
        "arm",
        "batch / γ",
        "throughput predicted / measured (tok/s)",
        "throughput error",
        "latency mean / p50 / p99 error",
        "TTFT mean / p99 error",
        "round p50 / p99 error",
        "same rounds",
        "look-ups outside the table",
        "machine drift since calibration",
        "serving thread on a core",
    ]
    body = []
    for run in runs:
        s = run["summary"]
        e, b, out = s["relative_error"], s["breakdown"], s["lookups_outside"]["predicted"]
        drift = (s["machine"].get("reference") or {}).get("drift")
        share = b["serving_cpu_share"]
        body.append(
            [
                run["label"],
                s["arm"],
                f"{s['batch']} / {s['gamma']}",
                f"{s['predicted']['throughput_tok_s']:.1f} / {s['measured']['throughput_tok_s']:.1f}",
                _pct(e["throughput_tok_s"]),
                " / ".join(_pct(e[f"latency_ms.{k}"]) for k in ("mean", "p50", "p99")),
                " / ".join(_pct(e[f"ttft_ms.{k}"]) for k in ("mean", "p99")),
                " / ".join(_pct(e[f"round_ms.{k}"]) for k in ("p50", "p99")),
                "yes" if b["same_rounds"] else "no",
                f"{out['outside']} of {out['lookups']}"
                + (f" ({', '.join(f'{k} {v}' for k, v in out['by_axis'].items())})" if out["by_axis"] else ""),
                _pct(drift),
                "–" if share is None else f"{100 * share:.0f} %",
            ]
        )
    return headers, body
