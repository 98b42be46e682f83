"""The paper's acceptance-over-traffic figures (1 ordered, 2 three shifts, 3 mixed, 5 day-0,
6 discard sampling), each drawn from its runs' views: draw(ctx) -> (Figure, numbers, caption).

Figures 4 (batch) and 7 (swap policies) are in analysis.paper_figures_sys.
"""

from __future__ import annotations

from analysis import paper_numbers as num
from analysis.paper_draw import (
    Ctx,
    al_axes,
    arm_color,
    finish,
    interval_bars,
    mark_shifts,
    new_figure,
    plot_rolling,
)
from analysis.paper_plan import ARMS, discard_runs

NOT_RECOVERED = "not within the segment"


def _arm_label(arm: str) -> str:
    return {
        "no-spec": "no-spec (target only)",
        "static": "static draft (frozen)",
        "online-static": "online, from static",
        "online-scratch": "online, from scratch",
    }.get(arm, arm)


def _bars(ax, groups: list[str], series: list[tuple], ylabel: str, fmt="{:.2f}", hatch_none=False):
    """Grouped bars: one group per x label, one bar per series (label, color, values[, alpha]);
    a None value: no bar, or with hatch_none a hatched outline (e.g. not recovered)."""
    width = 0.8 / max(len(series), 1)
    top = max([v for s in series for v in s[2] if v is not None] + [1.0])
    crowded = len(series) * len(groups) > 12  # labels turned upright so they do not overlap
    for k, (label, color, vals, *rest) in enumerate(series):
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(groups))]
        hs = [v if v is not None else (top * 1.02 if hatch_none else 0) for v in vals]
        bars = ax.bar(
            xs, hs, width=width * 0.92, color=color, label=label, alpha=rest[0] if rest else None, edgecolor="white"
        )
        for b, v in zip(bars, vals):
            if v is None and hatch_none:
                b.set_facecolor("none")
                b.set_edgecolor(color)
                b.set_hatch("///")
        none = "n/r" if hatch_none else "–"  # hatched: not recovered within the segment
        ax.bar_label(
            bars,
            labels=[none if v is None else fmt.format(v) for v in vals],
            fontsize=6.5,
            padding=1,
            rotation=90 if crowded else 0,
        )
    ax.set_xticks(range(len(groups)), groups, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, top * (1.5 if hatch_none else 1.22))  # room for the legend above n/r bars
    ax.grid(axis="y", alpha=0.25)


def _segment_panel(ax, ctx: Ctx, runs: list[tuple[str, str, str]]) -> None:
    """AL per segment, one bar per run (label, color, run_id)."""
    segs = num.segments(ctx, runs[0][2])
    groups = [f"{s['segment']}: {s['domain']}" for s in segs]
    series = [(lab, col, [s["al"] for s in num.segments(ctx, rid)]) for lab, col, rid in runs]
    _bars(ax, groups, series, "acceptance length (segment)")
    ax.axhline(1.0, color="#999999", lw=0.8)
    ax.set_title("Acceptance length per segment", loc="left")


def _recovery_panel(ax, ctx: Ctx, runs: list[tuple], alphas: list[float] | None = None) -> None:
    rec = {r[2]: num.recovery(ctx, r[2]) for r in runs}
    first = rec[runs[0][2]]
    groups = [f"@{r['shift_at']} → {r['to']}" for r in first]
    series = [
        (lab, col, [r["recovery_requests"] for r in rec[rid]], alphas[k] if alphas else 1.0)
        for k, (lab, col, rid) in enumerate(runs)
    ]
    _bars(ax, groups, series, "requests to recover", fmt="{:.0f}", hatch_none=True)
    ax.set_title(f"Recovery per shift (hatched: {NOT_RECOVERED})", loc="left")
    ax.legend(fontsize=7, loc="upper right", ncols=2)


def _speedup_panel(ax, ctx: Ctx, runs: list[tuple[str, str, str]]) -> None:
    rows = [(lab, col, num.summary(ctx, rid)) for lab, col, rid in runs]
    rows = [r for r in rows if r[2]["speedup_vs_no_spec"] is not None]
    xs = range(len(rows))
    bars = ax.bar(xs, [r[2]["speedup_vs_no_spec"] for r in rows], color=[r[1] for r in rows], width=0.6)
    ax.bar_label(bars, labels=[f"{r[2]['speedup_vs_no_spec']:.3f}×" for r in rows], fontsize=7, padding=1)
    ax.axhline(1.0, color="#7f7f7f", ls=":", lw=1.0)
    ax.set_xticks(list(xs), [r[0].replace(", ", ",\n") for r in rows], fontsize=7.5)
    ax.set_ylabel("throughput speedup vs no-spec")
    ax.set_ylim(0, max([r[2]["speedup_vs_no_spec"] for r in rows] + [1.0]) * 1.25)
    ax.set_title("Speedup (virtual time)", loc="left")
    ax.grid(axis="y", alpha=0.25)


def _arm_runs(ctx: Ctx, trace, arms=ARMS) -> list[tuple[str, str, str]]:
    return [(_arm_label(a), arm_color(a), ctx.id(trace, a)) for a in arms]


def _rolling_panel(ax, ctx: Ctx, runs, title: str, styles=None) -> None:
    top = 1.0
    for k, (lab, col, rid) in enumerate(runs):
        ls = styles[k] if styles else "-"
        top = max(top, plot_rolling(ax, ctx, rid, lab, col, ls))
    mark_shifts(ax, ctx, runs[0][2])
    n = ctx.one("SELECT requests FROM runs WHERE run_id = ?", [runs[0][2]])["requests"]
    al_axes(ax, ctx, top, n)
    ax.set_title(title, loc="left")
    ax.legend(loc="lower right", ncols=2, fontsize=7.5)


def _arm_numbers(ctx: Ctx, trace, arms=ARMS) -> dict:
    return {
        a: {
            **num.summary(ctx, ctx.id(trace, a)),
            "segments": num.segments(ctx, ctx.id(trace, a)),
            "shifts": num.recovery(ctx, ctx.id(trace, a)),
        }
        for a in arms
    }


def fig1_ordered(ctx: Ctx):
    t = ctx.plan.ordered
    runs = _arm_runs(ctx, t)
    fig, ax = new_figure(10, 7.2, [["al", "al"], ["seg", "speed"]])
    _rolling_panel(ax["al"], ctx, runs, f"Ordered stream ({t.describe()}): acceptance length vs request")
    _segment_panel(ax["seg"], ctx, runs)
    _speedup_panel(ax["speed"], ctx, runs)
    cap = (
        f"Figure 1, ordered stream: the paper's four arms on {t.describe()}; rolling AL (last W requests) "
        "vs request, AL per segment, throughput speedup vs no-spec in virtual time."
    )
    finish(fig, ctx, cap)
    return fig, _arm_numbers(ctx, t), cap


def fig2_shifts(ctx: Ctx):
    t = ctx.plan.shifts
    runs = _arm_runs(ctx, t)
    fig, ax = new_figure(10, 7.4, [["al", "al"], ["seg", "rec"]])
    shifts = len(num.recovery(ctx, runs[0][2]))
    _rolling_panel(ax["al"], ctx, runs, f"{shifts} abrupt domain shift{'s' if shifts != 1 else ''} ({t.describe()})")
    _segment_panel(ax["seg"], ctx, runs)
    _recovery_panel(ax["rec"], ctx, runs[1:])  # no-spec has nothing to recover (AL 1.0 throughout)
    cap = (
        f"Figure 2, domain shift: the four arms on {t.describe()} ({shifts} abrupt shifts); recovery = requests "
        f"after a shift until the AL over the last W (all after it) is back to ≥ 90 % of the W before it."
    )
    finish(fig, ctx, cap)
    return fig, _arm_numbers(ctx, t), cap


def fig3_mixed(ctx: Ctx):
    t = ctx.plan.mixed
    arms = ("no-spec", "static", "online-scratch")
    runs = _arm_runs(ctx, t, arms)
    fig, ax = new_figure(10, 7.0, [["al", "al"], ["dom", "speed"]])
    _rolling_panel(ax["al"], ctx, runs, f"Mixed traffic ({t.describe()}): online from scratch vs the static draft")
    doms = sorted(num.by_domain(ctx, runs[1][2]))
    _bars(
        ax["dom"],
        doms,
        [(lab, col, [num.by_domain(ctx, rid).get(d) for d in doms]) for lab, col, rid in runs[1:]],
        "acceptance length (domain)",
    )
    ax["dom"].set_title("Acceptance length per domain (whole run)", loc="left")
    _speedup_panel(ax["speed"], ctx, runs)
    nums = _arm_numbers(ctx, t, arms)
    for a in arms:
        nums[a]["by_domain"] = num.by_domain(ctx, ctx.id(t, a))
    cap = (
        f"Figure 3, mixed traffic: online-from-scratch vs the static draft on {t.describe()}; the day-0 ramp "
        "is the first request at which the scratch draft's rolling AL reaches the static run's."
    )
    finish(fig, ctx, cap)
    return fig, nums, cap


def fig5_day0(ctx: Ctx):
    t = ctx.plan.ordered
    sc, st, ns = (ctx.id(t, a) for a in ("online-scratch", "static", "no-spec"))
    segs = ctx.rows("SELECT first_request, end_request, domain FROM segments WHERE run_id = ? ORDER BY segment", [sc])
    n0 = segs[0]["end_request"]  # the first segment: day-0 without a shift mixed in
    fig, ax = new_figure(10, 4.6, [["al", "tp"]])
    a = ax["al"]
    top = 1.0
    for lab, col, rid in (
        (_arm_label("online-scratch"), arm_color("online-scratch"), sc),
        (_arm_label("static"), arm_color("static"), st),
    ):
        top = max(top, plot_rolling(a, ctx, rid, lab, col))
    swaps = [s for s in num.swap_requests(ctx, sc) if s < n0]
    for k, s in enumerate(swaps):
        a.axvline(
            s, color=arm_color("online-scratch"), lw=0.6, alpha=0.35, label="swap took effect" if k == 0 else None
        )
    ramp = ctx.one("SELECT ramp_requests FROM day0_ramp WHERE run_id = ?", [sc]).get("ramp_requests")
    if ramp is not None and ramp < n0:
        a.axvline(ramp, color="#d62728", ls="--", lw=1.0, label=f"reaches static AL ({ramp} requests)")
    al_axes(a, ctx, top, n0)
    a.set_xlim(0, n0)
    a.set_title(f"Day-0: acceptance length, first {n0} requests ({segs[0]['domain']})", loc="left")
    a.legend(loc="lower right", fontsize=7.5)
    b = ax["tp"]
    for lab, col, rid in (
        (_arm_label("online-scratch"), arm_color("online-scratch"), sc),
        (_arm_label("static"), arm_color("static"), st),
        (_arm_label("no-spec"), arm_color("no-spec"), ns),
    ):
        xs, ys = num.windowed_throughput(ctx, rid, ctx.window)
        keep = [(x, y) for x, y in zip(xs, ys) if x <= n0]
        b.plot([x for x, _ in keep], [y for _, y in keep], color=col, lw=1.3, label=lab)
    b.set_xlim(0, n0)
    b.set_ylim(bottom=0)
    b.set_xlabel("requests completed")
    b.set_ylabel(f"throughput (output tokens / virtual s,\nlast {ctx.window} requests)")
    b.set_title("Day-0: throughput over the first requests", loc="left")
    b.grid(alpha=0.25)
    b.legend(loc="lower right", fontsize=7.5)
    counts = sorted({c for c in (ctx.window, 2 * ctx.window, 50, 100, 200, 400, 1000) if c <= n0})
    nums = {
        "first_segment_requests": n0,
        "domain": segs[0]["domain"],
        "ramp_requests": ramp,
        "swaps_in_first_segment": len(swaps),
        "first_swap_at_request": swaps[0] if swaps else None,
        "scratch_al_first_n": num.al_at(ctx, sc, counts),
        "static_al_first_n": num.al_at(ctx, st, counts),
    }
    for name, rid in (("online-scratch", sc), ("static", st), ("no-spec", ns)):
        xs, ys = num.windowed_throughput(ctx, rid, ctx.window)
        pts = [y for x, y in zip(xs, ys) if x <= n0]
        nums[f"{name}_throughput_first_window"] = num.r4(pts[0]) if pts else None
        nums[f"{name}_throughput_end_of_segment"] = num.r4(pts[-1]) if pts else None
    cap = (
        f"Figure 5, day-0: a from-scratch draft served from the first request of {t.describe()} (first segment, "
        f"{segs[0]['domain']}), beside the static draft and target-only decoding; thin verticals = swaps taking "
        "effect. Throughput = output tokens of the last W completed requests / the virtual time they took."
    )
    finish(fig, ctx, cap)
    return fig, nums, cap


def _variants_panel(ax, ctx: Ctx) -> dict:
    """Each discard variant minus `none`, paired by seed: AL over the first N requests of every
    segment (sample efficiency) and over the whole run, with 95 % intervals."""
    p = ctx.plan
    rows: dict[str, dict[int, tuple]] = {}
    for seed, v, spec in discard_runs(p):
        rid = ctx.id(spec.trace, spec.variant)
        rows.setdefault(v, {})[seed] = (num.head_al(ctx, rid, p.discard_head), num.summary(ctx, rid)["al"])
    ref = rows["none"]
    out, names = {}, list(p.discard_variants)
    metrics = ((0, f"AL, first {p.discard_head} of each segment", "#4c72b0"), (1, "AL, whole run", "#dd8452"))
    series = []
    for i, label, color in metrics:
        ivs = []
        for v in names:
            diffs = [
                rows[v][s][i] - ref[s][i]
                for s in p.discard_seeds
                if rows[v][s][i] is not None and ref[s][i] is not None
            ]
            ivs.append(num.interval(diffs))
            out.setdefault(v, {})["head_al_minus_none" if i == 0 else "al_minus_none"] = ivs[-1]
        series.append((label, color, ivs))
    interval_bars(ax, names, series)
    ax.set_ylabel("Δ AL vs served KL alone")
    ax.set_title(f"Discard variants at λ = {p.lambda_discard:g}, paired over {len(p.discard_seeds)} seeds", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    return out


def fig6_discard(ctx: Ctx):
    p = ctx.plan
    t, lam = p.shifts, p.lambda_discard
    runs, styles = [], []
    for k, arm in enumerate(p.discard_arms):
        for v, ls in ((0.0, "-"), (lam, "--")):
            variant = arm if not v else f"{arm}-lambda{v:g}"
            runs.append((f"{_arm_label(arm)}, λ = {v:g}", arm_color(arm, k), ctx.id(t, variant)))
            styles.append(ls)
    fig, ax = new_figure(10, 10.6, [["al"], ["rec"], ["var"]])
    _rolling_panel(
        ax["al"], ctx, runs, f"Discard sampling on {t.describe()}: λ = 0 (Aurora's code) vs λ = {lam:g}", styles
    )
    _recovery_panel(ax["rec"], ctx, runs, [1.0 if ls == "-" else 0.55 for ls in styles])  # λ > 0 lighter
    nums = {}
    for lab, _, rid in runs:
        s = num.summary(ctx, rid)
        nums[lab] = {"al": s["al"], "shifts": num.recovery(ctx, rid), "train_steps": s["train_steps"]}
    nums["variants"] = _variants_panel(ax["var"], ctx)
    seeds = len(p.discard_seeds)
    cap = (
        f"Figure 6, discard sampling: loss = KL on accepted positions + λ × KL on the rejected proposals' "
        f"branches; λ = 0 is Aurora's released code, λ = {lam:g} the paper's discard sampling, on {t.describe()}. "
        "Middle: requests to recover after each shift. Bottom: every discard variant (aurora_sim/learner/discard.py) "
        f"at λ = {lam:g}, online from scratch, minus the served KL alone on the same traffic, over {seeds} seeds "
        f"(each its own distinct traffic); mean and 95 % Student-t interval. `control` spends reject-point's "
        "extra weight on random served states: a variant that does not clear it gains from more updates, "
        "not from the rejections."
    )
    finish(fig, ctx, cap)
    return fig, nums, cap
