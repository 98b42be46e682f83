"""When does online learning pay? (issue 31's benchmark.) The paper's situation replayed: a
general static head (trained on chat only) meets traffic with domains it never saw, frozen and
learning online, beside the two-draft arm, the in-domain static head, the per-domain adaptation
ceilings, the learner's settings and both swap mechanisms, over several seeds (each seed its own
distinct traffic: the trace is drawn with that seed).

    python3 benchmarks/bench_online_pays.py [--trace unseen] [--seeds 0 1 2] [--jobs 2] [--only NAME ...]
    python3 benchmarks/bench_online_pays.py --report     # aggregate the runs already made

Every arm is a run directory under --out/<arm>-s<seed>; a complete one is read, not replayed, so
the benchmark resumes where it stopped. Online arms keep every draft version (keep_versions 64)
so forgetting can be measured: after each shift, the version serving at the end of the new
segment against the one serving at the end of the old, both scored on 64 held-out requests of
the old domain (drawn with another seed), the learner's own walk (learner/evaluate.py).
Per arm and segment: AL, and throughput as a ratio to the same starting draft frozen (paired by
seed, mean and 95 % t-interval); the share of the gap to the ceiling the online head closes, and
after how many requests its rolling AL (W = 50) first closes half of it; the time breakdown
(swap pauses, drafting, publishing). -> <out>/results.json and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from analysis.paper_numbers import interval  # noqa: E402
from aurora_sim.replay.config import ReplayConfig  # noqa: E402

KEEP = 64  # draft versions kept on disk by online arms (forgetting is scored on them)
PROBE = 64  # held-out requests per domain the forgetting probe scores
MIN_GAP = 0.1  # AL between the frozen draft and the ceiling below which no share is reported
ROLL = 50  # window of the rolling AL that times how fast the gap closes

# arm -> (ReplayConfig.with_ changes, the frozen arm it is paired with)
ARMS: dict[str, tuple[dict, str | None]] = {
    "general-frozen": ({"init": "static-general", "learner_enabled": False}, None),
    "general-online": ({"init": "static-general"}, "general-frozen"),
    "general-two-draft": ({"init": "static-general", "floor_draft": "static-general"}, "general-frozen"),
    "static-frozen": ({"init": "static", "learner_enabled": False}, None),
    "static-online": ({"init": "static"}, "static-frozen"),
    "static-two-draft": ({"init": "static", "floor_draft": "static"}, "static-frozen"),
    "full-frozen": ({"init": "static-full", "learner_enabled": False}, None),
    "ceiling-code": ({"init": "ceiling-code", "learner_enabled": False}, None),
    "ceiling-finance": ({"init": "ceiling-finance", "learner_enabled": False}, None),
    "ceiling-chat": ({"init": "ceiling-chat", "learner_enabled": False}, None),
}
SETTINGS = {
    "lr1e-5": {"learner_lr": 1e-5},
    "lr1e-4": {"learner_lr": 1e-4},
    "every50": {"controller_every": 50},
    # half of every optimizer step replays earlier traffic, kept by reservoir (against forgetting)
    "replay": {"learner_batch_requests": 16, "learner_buffer": "reservoir", "learner_capacity": 1024},
    "shadow": {"controller_policy": "shadow"},
    "payoff": {"controller_policy": "payoff"},
}
for _init, _frozen in (("general", "general-frozen"), ("static", "static-frozen")):
    for _name, _ch in SETTINGS.items():
        ARMS[f"{_init}-online-{_name}"] = ({"init": ARMS[_frozen][0]["init"], **_ch}, _frozen)
ARMS["general-online-recapture"] = ({"init": "static-general", "swap": "recapture"}, "general-frozen")
ARMS["general-online-every50-recapture"] = (
    {"init": "static-general", "swap": "recapture", "controller_every": 50},
    "general-frozen",
)
# speculation depth per round by the cost model (controller/depth_cost.py) on top
ARMS["general-frozen-cost"] = (
    {"init": "static-general", "learner_enabled": False, "depth_policy": "cost"},
    "general-frozen",
)
ARMS["general-two-draft-cost"] = (
    {"init": "static-general", "floor_draft": "static-general", "depth_policy": "cost"},
    "general-frozen",
)
# the settings that beat frozen on every seed, combined, and under the two-draft arm
for _init, _frozen in (("general", "general-frozen"), ("static", "static-frozen")):
    _start = ARMS[_frozen][0]["init"]
    ARMS[f"{_init}-two-draft-lr1e-4"] = ({"init": _start, "floor_draft": _start, "learner_lr": 1e-4}, _frozen)
    ARMS[f"{_init}-online-lr1e-4-replay"] = ({"init": _start, "learner_lr": 1e-4, **SETTINGS["replay"]}, _frozen)
ARMS["general-online-payoff-recapture"] = (
    {"init": "static-general", "swap": "recapture", "controller_policy": "payoff"},
    "general-frozen",
)
ARMS["general-two-draft-recapture"] = (
    {"init": "static-general", "floor_draft": "static-general", "swap": "recapture"},
    "general-frozen",
)
CEILINGS = {"code": "ceiling-code", "finance": "ceiling-finance", "chat": "ceiling-chat"}


def config(arm: str, trace: str, seed: int) -> ReplayConfig:
    """The arm's config: the fast recipe at lr 1e-3 for every starting draft (its setting before
    this benchmark; the lr arms change it), then the arm's changes."""
    changes, _ = ARMS[arm]
    cfg = ReplayConfig(trace=trace, seed=seed)
    cfg = cfg.with_recipe("fast", learner_lr=changes.get("learner_lr", 1e-3))
    cfg = cfg.with_(**{k: v for k, v in changes.items() if k != "learner_lr"})
    return cfg.with_(keep_versions=KEEP) if cfg.learning else cfg


def _complete(d: Path) -> bool:
    from aurora_sim.replay.eventlog import read_table

    try:
        return read_table(d, "runs")["status"][0] == "complete"
    except Exception:
        return False


def run_one(arm: str, trace: str, seed: int, out: str) -> str:
    from aurora_sim.replay.loop import Replay

    d = Path(out) / f"{arm}-s{seed}"
    cfg = config(arm, trace, seed)
    if not _same(d, cfg):
        Replay(cfg, d, overwrite=True).run()
    return str(d)


def _same(d: Path, cfg: ReplayConfig) -> bool:
    """A complete run of this config is in d (fields the run resolves at its start aside)."""
    if not _complete(d):
        return False
    done = _config_of(d)
    return done == cfg.with_(trace_sha256=done.trace_sha256, engine=done.engine)


def _config_of(d: Path) -> ReplayConfig:
    from aurora_sim.replay.eventlog import read_table

    return ReplayConfig.from_dict(json.loads(read_table(d, "runs")["config_json"][0]))


# ---- measures ------------------------------------------------------------------------------------
def version_at(run_dir: Path, t_ns: int) -> int:
    """The draft version serving at virtual time t (the last swap or rollback that went live)."""
    import polars as pl

    from aurora_sim.replay.eventlog import read_table

    sw = read_table(run_dir, "swaps").filter(
        pl.col("kind").is_in(["swap", "rollback"]) & (pl.col("effective_ns") <= t_ns)
    )
    return int(sw.sort("effective_ns")["to_version"][-1]) if sw.height else 0


def probe_samples(trace: str, seed: int, domain: str):
    """PROBE held-out requests of `domain` from the trace drawn with another seed, as learner
    samples (prompt + the target's greedy output)."""
    from aurora_sim.generate import stop_ids
    from aurora_sim.learner.samples import Sample
    from aurora_sim.models.registry import load_target, load_tokenizer, resolve_model
    from aurora_sim.replay.trajectories import trajectories_for
    from aurora_sim.replay.workload import build_workload

    model_dir = resolve_model("tiny")
    tok = load_tokenizer(model_dir)
    target = load_target("tiny")
    wl = build_workload(trace, 10_000 + seed, tok, stop_ids(tok, model_dir), None)
    reqs = [it.request for it in wl.items if it.domain == domain][:PROBE]
    trajs, _ = trajectories_for(target, model_dir, reqs, progress=False)
    return target, [
        Sample(i, tuple(r.prompt_ids) + tuple(t.output_ids), len(r.prompt_ids), (), 0, 0)
        for i, (r, t) in enumerate(zip(reqs, trajs))
    ]


def forgetting(run_dir: Path, trace: str, seed: int) -> list[dict]:
    from aurora_sim.learner.evaluate import acceptance_profile
    from aurora_sim.models import drafts
    from aurora_sim.replay.summary import summarize

    s = summarize(run_dir)
    req = _requests(run_dir)
    seg_end = [int(req.filter(req["segment"] == k)["finish_ns"].max()) for k in range(len(s["segments"]))]
    out = []
    for k in range(len(s["segments"]) - 1):
        old = s["segments"][k]["domain"]
        target, samples = probe_samples(trace, seed, old)
        als = {}
        for when, t in (("before", seg_end[k]), ("after", seg_end[k + 1])):
            v = version_at(run_dir, t)
            path = run_dir / "drafts" / f"v{v:05d}"
            if not path.is_dir():
                return out  # pruned: not measurable
            head = drafts.load_draft(path, target)
            als[when] = (v, acceptance_profile(head, target, samples, 4, tuple(head.target_layers))[0])
        out.append(
            {
                "domain": old,
                "version_before": als["before"][0],
                "version_after": als["after"][0],
                "al_before": round(als["before"][1], 4),
                "al_after": round(als["after"][1], 4),
                "change": round(als["after"][1] / als["before"][1] - 1, 4),
            }
        )
    return out


def _requests(run_dir: Path):
    from aurora_sim.replay.eventlog import read_table

    req = read_table(run_dir, "requests")
    return req.filter(req["status"] == "completed")


def half_gap_requests(run_dir: Path, seg: dict, frozen_al: float, ceiling_al: float) -> int | None:
    """Requests into the segment until the rolling AL (W = ROLL) first reaches frozen + half the
    gap to the ceiling; None if never (or no gap)."""
    from aurora_sim.replay.summary import per_request

    if ceiling_al is None or frozen_al is None or ceiling_al - frozen_al < MIN_GAP:
        return None
    frame = per_request(run_dir)
    part = frame.filter(
        (frame["request_index"] >= seg["first_request"])
        & (frame["request_index"] < seg["first_request"] + seg["requests"])
    )
    gen, rnd = part["generated"].to_list(), part["spec_rounds"].to_list()
    goal = frozen_al + 0.5 * (ceiling_al - frozen_al)
    for i in range(ROLL, len(gen) + 1):
        r = sum(rnd[i - ROLL : i])
        if r and sum(gen[i - ROLL : i]) / r >= goal:
            return i
    return None


def measure(out: Path, trace: str, seeds: list[int]) -> dict:
    from aurora_sim.replay.summary import segment_speedups, summarize

    runs = {(a, s): out / f"{a}-s{s}" for a in ARMS for s in seeds if _same(out / f"{a}-s{s}", config(a, trace, s))}
    summ = {k: summarize(d) for k, d in runs.items()}
    result: dict = {"trace": trace, "seeds": seeds, "arms": {}}
    for arm, (changes, frozen) in ARMS.items():
        have = [s for s in seeds if (arm, s) in summ]
        if not have:
            continue
        per_seed = []
        for s in have:
            a = summ[(arm, s)]
            row = {
                "seed": s,
                "al": a["acceptance_length"],
                "segments_al": [x["acceptance_length"] for x in a["segments"]],
                "time": a["time"],
            }
            if frozen and (frozen, s) in summ:
                f = summ[(frozen, s)]
                row["speedup_vs_frozen"] = round(a["throughput_tok_s"] / f["throughput_tok_s"], 4)
                row["segments_speedup_vs_frozen"] = segment_speedups(a, f)
                ceil = []
                for k, seg in enumerate(a["segments"]):
                    c = summ.get((CEILINGS.get(seg["domain"], ""), s))
                    c_al = c["segments"][k]["acceptance_length"] if c else None
                    f_al = f["segments"][k]["acceptance_length"]
                    gap = (c_al - f_al) if c_al is not None and f_al is not None else None
                    ceil.append(
                        {
                            "ceiling_al": c_al,
                            # only where there is a gap to close (>= MIN_GAP AL): a share of none is noise
                            "captured": round((seg["acceptance_length"] - f_al) / gap, 4)
                            if gap is not None and gap >= MIN_GAP
                            else None,
                            "half_gap_requests": half_gap_requests(runs[(arm, s)], seg, f_al, c_al),
                        }
                    )
                row["ceiling"] = ceil
            if changes.get("learner_enabled", True) is not False:
                row["forgetting"] = forgetting(runs[(arm, s)], trace, s)
            per_seed.append(row)
        nseg = len(per_seed[0]["segments_al"])
        agg = {
            "seeds": have,
            "al": interval([r["al"] for r in per_seed]),
            "segments_al": [interval([r["segments_al"][k] for r in per_seed]) for k in range(nseg)],
            "pause_s": interval([(r["time"] or {}).get("pause_s") for r in per_seed]),
            "drafting_share": interval([(r["time"] or {}).get("drafting_share") for r in per_seed]),
            "swaps": interval([(r["time"] or {}).get("swaps") for r in per_seed]),
        }
        if all("speedup_vs_frozen" in r for r in per_seed):
            agg["speedup_vs_frozen"] = interval([r["speedup_vs_frozen"] for r in per_seed])
            agg["segments_speedup_vs_frozen"] = [
                interval([r["segments_speedup_vs_frozen"][k] for r in per_seed]) for k in range(nseg)
            ]
            agg["captured"] = [interval([r["ceiling"][k]["captured"] for r in per_seed]) for k in range(nseg)]
            agg["half_gap_requests"] = [[r["ceiling"][k]["half_gap_requests"] for r in per_seed] for k in range(nseg)]
            agg["beats_frozen_every_seed"] = all(r["speedup_vs_frozen"] > 1.0 for r in per_seed)
        if per_seed[0].get("forgetting"):
            agg["forgetting"] = [
                interval([r["forgetting"][k]["change"] for r in per_seed if len(r.get("forgetting", [])) > k])
                for k in range(len(per_seed[0]["forgetting"]))
            ]
        agg["domains"] = [x["domain"] for x in summ[(arm, have[0])]["segments"]]
        result["arms"][arm] = {"aggregate": agg, "per_seed": per_seed, "paired_with": frozen}
    return result


def print_table(result: dict) -> None:
    def ci(d: dict | None) -> str:
        if not d or not d.get("n"):
            return "-"
        if "ci95" not in d:
            return f"{d['mean']:.3f}"
        return f"{d['mean']:.3f} [{d['ci95'][0]:.3f}, {d['ci95'][1]:.3f}]"

    for arm, r in result["arms"].items():
        a = r["aggregate"]
        segs = " | ".join(f"{dom} {ci(x)}" for dom, x in zip(a["domains"], a["segments_al"]))
        line = f"{arm:38s} n={len(a['seeds'])} AL {ci(a['al'])}  ({segs})"
        if "speedup_vs_frozen" in a:
            line += f"\n{'':38s} vs frozen {ci(a['speedup_vs_frozen'])}  per segment " + " | ".join(
                ci(x) for x in a["segments_speedup_vs_frozen"]
            )
            line += f"\n{'':38s} captured share " + " | ".join(ci(x) for x in a["captured"])
            line += f"  half-gap requests {a['half_gap_requests']}"
            line += f"  swaps {ci(a['swaps'])} pauses {ci(a['pause_s'])} s"
        if a.get("forgetting"):
            line += f"\n{'':38s} forgetting (previous domain's held-out AL change) " + " | ".join(
                ci(x) for x in a["forgetting"]
            )
        print(line)


def markdown(result: dict) -> str:
    """The docs' tables (docs/when-online-pays.md), from results.json."""

    def ci(d: dict | None, digits: int = 3) -> str:
        if not d or not d.get("n"):
            return "–"
        if "ci95" not in d:
            return f"{d['mean']:.{digits}f}"
        return f"{d['mean']:.{digits}f} [{d['ci95'][0]:.{digits}f}, {d['ci95'][1]:.{digits}f}]"

    arms = result["arms"]
    lines = [
        "| arm | seeds | AL | AL per segment | vs frozen | vs frozen per segment | swaps | pauses (s) |",
        "|" + "---|" * 8,
    ]
    for arm, r in arms.items():
        a = r["aggregate"]
        segs = " / ".join(ci(x, 2).split(" ")[0] for x in a["segments_al"])
        vs = ci(a.get("speedup_vs_frozen"))
        per = " / ".join(ci(x).split(" ")[0] if x.get("n") else "–" for x in a.get("segments_speedup_vs_frozen", []))
        lines.append(
            f"| {arm} | {len(a['seeds'])} | {ci(a['al'])} | {segs} | {vs} | {per or '–'} | "
            f"{ci(a['swaps'], 0).split(' ')[0]} | {ci(a['pause_s'], 2).split(' ')[0]} |"
        )
    lines += [
        "",
        "| arm | per segment: share of the gap to the ceiling closed | requests to half the gap (per seed) | forgetting after each shift |",
        "|---|---|---|---|",
    ]
    for arm, r in arms.items():
        a = r["aggregate"]
        if "captured" not in a:
            continue
        cap = " / ".join(ci(x) for x in a["captured"])
        half = " / ".join(",".join("–" if v is None else str(v) for v in seg) for seg in a["half_gap_requests"])
        forget = " / ".join(ci(x) for x in a.get("forgetting", []))
        lines.append(f"| {arm} | {cap} | {half} | {forget or '–'} |")
    return "\n".join(lines)


PLOTTED = ("general-online", "general-online-lr1e-4", "general-two-draft", "static-online-lr1e-4", "static-two-draft")


def plot(result: dict, path: Path) -> None:
    """Speedup vs the same head frozen, per segment and overall, with 95 % intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis.paper_draw import interval_bars

    def minus_one(iv: dict) -> dict:  # the bars read as a gain over frozen (0 = level)
        out = {k: v for k, v in iv.items() if k not in ("mean", "ci95")}
        if "mean" in iv:
            out["mean"] = iv["mean"] - 1
        if "ci95" in iv:
            out["ci95"] = [x - 1 for x in iv["ci95"]]
        return out

    arms = [a for a in PLOTTED if "speedup_vs_frozen" in result["arms"].get(a, {}).get("aggregate", {})]
    if not arms:
        return
    domains = result["arms"][arms[0]]["aggregate"]["domains"]
    colors = ("#999999", "#1f77b4", "#2ca02c", "#ff7f0e", "#d62728")
    series = []
    for arm, color in zip(arms, colors):
        a = result["arms"][arm]["aggregate"]
        series.append((arm, color, [minus_one(x) for x in [*a["segments_speedup_vs_frozen"], a["speedup_vs_frozen"]]]))
    fig, ax = plt.subplots(figsize=(8, 3.6))
    interval_bars(ax, [*domains, "all"], series)
    ax.set_ylabel("speedup vs the head frozen − 1")
    ax.set_title(
        f"{result['trace']}: online learning and two drafts against the frozen head ({len(result['seeds'])} seeds)"
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trace", default="unseen")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", nargs="+", default=None, help=f"a subset of the arms ({', '.join(ARMS)})")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "online-pays")
    ap.add_argument("--report", action="store_true", help="only aggregate the runs already made")
    ap.add_argument("--markdown", action="store_true", help="print the docs' tables instead")
    args = ap.parse_args()
    unknown = sorted(set(args.only or ()) - set(ARMS))
    if unknown:
        sys.exit(f"bench_online_pays: unknown arm(s) {', '.join(unknown)} (choose from {', '.join(ARMS)})")
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.report:
        jobs = [(a, s) for a in (args.only or ARMS) for s in args.seeds]
        with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as ex:
            futs = {ex.submit(run_one, a, args.trace, s, str(args.out)): (a, s) for a, s in jobs}
            for f in as_completed(futs):
                print(f"done {futs[f]}: {f.result()}", flush=True)
    result = measure(args.out, args.trace, args.seeds)
    path = args.out / "results.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1, sort_keys=True))
    tmp.replace(path)
    plot(result, args.out / "online-pays.png")
    print(markdown(result) if args.markdown else "", end="\n" if args.markdown else "")
    if not args.markdown:
        print_table(result)
    print(f"-> {path}")


if __name__ == "__main__":
    main()
