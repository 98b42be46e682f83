"""The paper's system figures: 4 (batch size: where speculation stops paying) and 7 (swap
policies: cadence, lazy, shadow, shadow + rollback). draw(ctx) -> (Figure, numbers, caption).

Figure 4 sets measured runs beside the cost model's steady-state prediction. Greedy acceptance in
our engine does not depend on the batch (each request's tokens and acceptances are the same at
any batch), so the static draft's AL is one number across batches; what the batch changes is
the cost of a round (virtual time) and, for a learning draft, how many requests pass while the
trainer works (trainer lag in requests).
"""

from __future__ import annotations

from analysis import paper_numbers as num
from analysis.figures import PALETTE
from analysis.paper_draw import (
    Ctx,
    al_axes,
    arm_color,
    finish,
    mark_shifts,
    new_figure,
    plot_rolling,
)
from analysis.paper_figures import _bars, _segment_panel
from analysis.paper_plan import batch_trace

PAPER_AL = 3.0  # the paper's batch-8 from-scratch acceptance length (Qwen3-Coder-Next, ≈3)
GRID = tuple(range(1, 513))


def cost_model(cfg):
    from aurora_sim.costs import make_cost_model

    spec = None
    if cfg.deployment == "proxy":
        from aurora_sim.models.registry import load_target

        spec = load_target(cfg.model).spec
    return make_cost_model(
        cfg.hardware,
        cfg.deployment,
        proxy_target=spec,
        proxy_draft_kind=cfg.draft,
        train_unroll=cfg.learner.unroll,
        profile_path=cfg.profile,
    )


def breakeven_al(cost, batch: int, gamma: int, context: int) -> float | None:
    """The AL at which a speculative round pays for itself at this batch (None: above γ+1, never)."""
    from aurora_sim.costs.shapes import RoundShape

    base = cost.round_ns(RoundShape.steady(batch, 0, context))
    al = 1.0
    for _ in range(20):  # the round's cost grows slightly with AL (the draft's catch-up): fixed point
        al = cost.round_ns(RoundShape.steady(batch, gamma, context, min(al, gamma + 1))) / base
    return al if al <= gamma + 1 else None


def breakeven_batch(cost, gamma: int, al: float, context: int) -> int | None:
    """The smallest batch at which speculation at this AL is slower than target-only (None: not up to 512)."""
    from aurora_sim.costs.speedup import implied_speedup

    for b in GRID:
        if implied_speedup(cost, b, gamma, al, context) < 1.0:
            return b
    return None


def fig4_batch(ctx: Ctx):
    from aurora_sim.costs.speedup import implied_speedup

    p = ctx.plan
    rows = []
    for b in p.batches:
        t = batch_trace(p, b)
        row = {"batch": b}
        for arm in ("no-spec", "static", "online-scratch"):
            if (t.key, arm) in ctx.ids:
                rid = ctx.id(t, arm)
                row[arm] = {**num.summary(ctx, rid), "lag": num.lag(ctx, rid) if arm.startswith("online") else None}
        rows.append(row)
    st_id = ctx.id(batch_trace(p, p.batches[0]), "static")
    cfg = p.base
    gamma = cfg.gamma
    context = int(
        ctx.one(
            "SELECT avg(prompt_tokens + output_tokens / 2.0) AS c FROM requests WHERE run_id = ? "
            "AND status = 'completed'",
            [st_id],
        )["c"]
        or 1
    )
    cost = cost_model(cfg)
    static_al = rows[0]["static"]["al"]
    online = [r for r in rows if "online-scratch" in r]
    online_al = sum(r["online-scratch"]["al"] for r in online) / len(online) if online else None
    fig, ax = new_figure(11, 7.6, [["speed", "speed", "al"], ["lag", "curve", "curve"]])

    a = ax["speed"]
    xs = [r["batch"] for r in rows]
    curves = [(f"cost model at static AL {static_al:.2f}", static_al, arm_color("static"))]
    if online_al:
        curves.append((f"cost model at online-scratch AL {online_al:.2f}", online_al, arm_color("online-scratch")))
    curves.append((f"cost model at AL {PAPER_AL:g} (paper, batch 8 from scratch)", PAPER_AL, "#555555"))
    fine = [b for b in GRID if b <= max(xs) * 2]
    for lab, al, col in curves:
        a.plot(fine, [implied_speedup(cost, b, gamma, al, context) for b in fine], color=col, ls=":", lw=1.1, label=lab)
    a.plot(
        xs,
        [r["static"]["speedup_vs_no_spec"] for r in rows],
        "o-",
        color=arm_color("static"),
        label="static draft (measured)",
    )
    if online:
        a.plot(
            [r["batch"] for r in online],
            [r["online-scratch"]["speedup_vs_no_spec"] for r in online],
            "s",
            color=arm_color("online-scratch"),
            ms=7,
            label="online from scratch (measured)",
        )
    a.axhline(1.0, color="#d62728", lw=0.9)
    a.annotate(
        "speculation pays above this line",
        (xs[0], 1.0),
        xytext=(2, 3),
        textcoords="offset points",
        fontsize=7,
        color="#d62728",
    )
    a.set_xscale("log", base=2)
    a.set_xticks(xs, [str(x) for x in xs])
    a.set_xlabel("batch (max concurrent requests; closed loop of the same size)")
    a.set_ylabel("throughput speedup vs no-spec")
    a.set_title("Speedup vs batch", loc="left")
    a.grid(alpha=0.25)
    a.legend(fontsize=7, loc="best")

    b = ax["al"]
    b.plot(xs, [r["static"]["al"] for r in rows], "o-", color=arm_color("static"), label="static (measured)")
    if online:
        b.plot(
            [r["batch"] for r in online],
            [r["online-scratch"]["al"] for r in online],
            "s",
            color=arm_color("online-scratch"),
            ms=7,
            label="online from scratch (measured)",
        )
    b.set_xscale("log", base=2)
    b.set_xticks(xs, [str(x) for x in xs])
    b.set_xlabel("batch")
    b.set_ylabel("acceptance length (whole run)")
    b.set_ylim(0.9, max(PAPER_AL, *(r["static"]["al"] for r in rows)) + 0.4)
    b.set_title("AL does not depend on the batch (greedy)", loc="left")
    b.grid(alpha=0.25)
    b.legend(fontsize=7)

    c = ax["curve"]
    need = [(bb, breakeven_al(cost, bb, gamma, context)) for bb in fine]
    c.plot(
        [x for x, y in need if y],
        [y for x, y in need if y],
        color="#d62728",
        lw=1.4,
        label=f"AL needed to break even (γ = {gamma}, {context} tokens of context)",
    )
    c.axhline(static_al, color=arm_color("static"), ls="--", lw=1.0, label=f"static AL {static_al:.2f}")
    if online_al:
        c.axhline(
            online_al, color=arm_color("online-scratch"), ls="--", lw=1.0, label=f"online-scratch AL {online_al:.2f}"
        )
    c.axhline(PAPER_AL, color="#555555", ls="--", lw=1.0, label=f"AL {PAPER_AL:g} (paper)")
    if not any(y for _, y in need):
        c.text(0.5, 0.5, f"no batch breaks even at AL ≤ γ+1 = {gamma + 1}", transform=c.transAxes, ha="center")
    c.set_xscale("log", base=2)
    c.set_xlim(1, max(fine))
    ticks = [2**k for k in range(max(fine).bit_length())]
    c.set_xticks(ticks, [str(t) for t in ticks])
    c.set_xlabel("batch")
    c.set_ylabel("acceptance length")
    c.set_ylim(1.0, gamma + 1.2)
    c.set_title("Where speculation stops paying (cost model)", loc="left")
    c.grid(alpha=0.25)
    c.legend(fontsize=7, loc="upper left")

    d = ax["lag"]
    if online:
        groups = [f"batch {r['batch']}" for r in online]
        _bars(
            d,
            groups,
            [
                (
                    "requests served meanwhile (mean)",
                    arm_color("online-scratch"),
                    [r["online-scratch"]["lag"]["req_mean"] for r in online],
                )
            ],
            "requests",
            fmt="{:.0f}",
        )
        for k, r in enumerate(online):
            d.annotate(
                f"{r['online-scratch']['lag']['ms_mean'] or 0:.0f} ms",
                (k, 0),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                fontsize=7,
                color="white",
            )
        d.legend(fontsize=7, loc="upper left")
    d.set_title("Trainer lag (online from scratch)", loc="left")

    nums = {
        "context_tokens_per_row": context,
        "gamma": gamma,
        "cost_model": cost.name,
        "rows": rows,
        "static_al": static_al,
        "online_scratch_al_mean": num.r4(online_al) if online_al else None,
        "breakeven_batch": {f"al_{al:.2f}": breakeven_batch(cost, gamma, al, context) for _, al, _ in curves},
        "breakeven_al": [[bb, num.r4(breakeven_al(cost, bb, gamma, context))] for bb in xs],
    }
    cap = (
        f"Figure 4, batch size: no-spec and the static draft at batches {', '.join(map(str, xs))} (the paper's "
        f"4 and 8 also online from scratch) on {p.mixed.key} traffic as a closed loop of B; dotted: the cost "
        f"model's steady-state speedup at a fixed AL ({cost.name}, γ = {gamma}). Greedy AL is batch-independent; "
        "virtual time and trainer lag in requests are not."
    )
    finish(fig, ctx, cap)
    return fig, nums, cap


def _policy_label(variant: str) -> str:
    rest = variant.removeprefix("online-static").strip("-")
    return {"": "cadence", "lazy": "lazy", "shadow": "shadow", "shadow-rollback": "shadow + rollback"}.get(rest, rest)


def fig7_policies(ctx: Ctx):
    p = ctx.plan
    t = p.shifts
    variants = []
    for policy, rollback in p.policies:
        v = (
            "online-static"
            if (policy, rollback) == ("cadence", False)
            else f"online-static-{policy}" + ("-rollback" if rollback else "")
        )
        variants.append(v)
    runs = [(_policy_label(v), PALETTE[k + 2], ctx.id(t, v)) for k, v in enumerate(variants)]
    st = ctx.id(t, "static")
    fig, ax = new_figure(11, 7.6, [["al", "al", "al"], ["seg", "swaps", "lag"]])
    a = ax["al"]
    top = plot_rolling(a, ctx, st, "static draft (reference)", arm_color("static"), lw=1.0)
    for lab, col, rid in runs:
        top = max(top, plot_rolling(a, ctx, rid, f"online from static, {lab}", col))
    mark_shifts(a, ctx, st)
    al_axes(a, ctx, top, ctx.one("SELECT requests FROM runs WHERE run_id = ?", [st])["requests"])
    a.set_title(f"Swap policies on {t.describe()}", loc="left")
    a.legend(loc="lower right", ncols=3, fontsize=7.5)
    _segment_panel(ax["seg"], ctx, [("static", arm_color("static"), st)] + runs)
    sums = {lab: num.summary(ctx, rid) for lab, _, rid in runs}
    _bars(
        ax["swaps"],
        [lab for lab, _, _ in runs],
        [
            (k, c, [sums[lab][k] for lab, _, _ in runs])
            for k, c in (("swaps", "#2ca02c"), ("holds", "#7f7f7f"), ("rollbacks", "#d62728"))
        ],
        "decisions",
        fmt="{:.0f}",
    )
    ax["swaps"].set_title("Controller decisions", loc="left")
    ax["swaps"].legend(fontsize=7)
    lags = {lab: num.lag(ctx, rid) for lab, _, rid in runs}
    _bars(
        ax["lag"],
        [lab for lab, _, _ in runs],
        [
            ("mean", "#1f77b4", [lags[lab]["req_mean"] for lab, _, _ in runs]),
            ("p90", "#aec7e8", [lags[lab]["req_p90"] for lab, _, _ in runs]),
        ],
        "requests served meanwhile",
        fmt="{:.0f}",
    )
    ax["lag"].set_title("Trainer lag (capture → live), in requests", loc="left")
    ax["lag"].legend(fontsize=7)
    for k in ("seg", "swaps", "lag"):
        for lbl in ax[k].get_xticklabels():
            lbl.set_rotation(15)
    nums = {
        lab: {**sums[lab], "segments": num.segments(ctx, rid), "shifts": num.recovery(ctx, rid), "lag": lags[lab]}
        for lab, _, rid in runs
    }
    nums["static"] = {**num.summary(ctx, st), "segments": num.segments(ctx, st)}
    cap = (
        f"Figure 7, swap policies for a draft learning from the static one on {t.describe()}: cadence (every "
        f"{p.base.controller.every} trainer steps, as Aurora), lazy (held-out gain ≥ δ), shadow (no worse on recent "
        "traffic), shadow + rollback (revert a swap whose live AL drops). Trainer lag = requests completed between "
        "the newest request a draft learned from and the draft going live."
    )
    finish(fig, ctx, cap)
    return fig, nums, cap
