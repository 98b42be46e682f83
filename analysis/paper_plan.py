"""What `aurora figures --paper` runs: the traces and the replays behind each of the paper's figures.

A Plan names three traces (an ordered stream, a three-shift stream, mixed traffic) and the knobs
the figures vary (batch sizes, λ_discard, swap policies). `plan(mode, seed)` gives the quick set
(short traces built in the spirit of the named scenarios: prompts ≤ 160 chars, 32 new tokens,
closed loop of 8, a few hundred requests per segment) or the full set (the named scenarios'
requests, arriving as a closed loop of 8: see _closed_scenario).
`runs_for(plan, figure)` lists the replays a figure needs; figures that need the same replay
share it (figure 5 reads figure 1's runs), so every run is made once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aurora_sim.errors import AuroraError
from aurora_sim.replay.config import ReplayConfig

FIGURES = {
    1: "ordered",
    2: "shifts",
    3: "mixed",
    4: "batch",
    5: "day0",
    6: "discard",
    7: "policies",
}
ARMS = ("no-spec", "static", "online-static", "online-scratch")
PAPER_BATCHES = (4, 8)  # the paper's batch sizes (at most 12 concurrent requests)


@dataclass(frozen=True)
class Trace:
    """A named scenario (replayed by name) or a generator config written to DIR/traces/KEY.json."""

    key: str
    scenario: str | None = None
    config: dict | None = None
    limit: int | None = None
    note: str | None = None  # how to name it in captions (default: the scenario or the config file)

    def describe(self) -> str:
        what = self.note or (
            f"scenario `{self.scenario}`" if self.scenario else f"trace config `traces/{self.key}.json`"
        )
        return what + (f", first {self.limit} requests" if self.limit else "")


@dataclass(frozen=True)
class Plan:
    mode: str  # quick | full | a test's name
    ordered: Trace
    shifts: Trace
    mixed: Trace  # also the batch sweep's traffic (its arrivals replaced by a closed loop of B)
    base: ReplayConfig  # hardware, deployment, seed, learner and controller settings
    batches: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    batch_limit: int | None = None
    batch_arms_online: tuple[int, ...] = PAPER_BATCHES  # batches that also get an online-scratch run
    lambda_discard: float = 0.5
    discard_arms: tuple[str, ...] = ("online-static", "online-scratch")
    # the discard-loss variants (learner/discard.py), each at λ = lambda_discard against the served
    # KL alone, online from scratch, on distinct traffic per seed (paired: every variant of a seed
    # replays that seed's trace): the figure's bars are paired differences with a 95 % interval
    discard_variants: tuple[str, ...] = (
        "branch",
        "reach-weighted",
        "reject-point",
        "unlikelihood",
        "lk",
        "expected-length",
        "control",
    )
    discard_seeds: tuple[int, ...] = (0, 1, 2)
    discard_traffic: Trace | None = None  # the variants' traffic at the plan's seed; None = `shifts`
    discard_head: int = 100  # sample efficiency: AL over the first N requests of every segment
    policies: tuple[tuple[str, bool], ...] = (("cadence", False), ("lazy", False), ("shadow", False), ("shadow", True))
    # the static arms' draft: the paper's situation, a head trained offline on general chat only
    # (static-general: its Qwen3-8B runs start from a public EAGLE-3 head trained on chat data),
    # for which the traffic's code and finance are new; or static, static-full, a directory
    static: str = "static-general"
    window: int = 50  # W, the rolling window of the figures (requests)


@dataclass(frozen=True)
class RunSpec:
    """One replay: `arm` of compare.arm_config on `trace`, plus config changes (ReplayConfig.with_)."""

    trace: Trace
    arm: str
    changes: tuple[tuple[str, object], ...] = ()
    figures: frozenset = field(default_factory=frozenset, compare=False)

    @property
    def variant(self) -> str:
        """The run directory's name: the arm and what differs from the plain arm."""
        d = dict(self.changes)
        parts = [self.arm]
        if d.get("learner_lambda_discard"):
            parts.append(f"lambda{d['learner_lambda_discard']:g}")
        if d.get("learner_discard", "branch") != "branch":
            parts.append(d["learner_discard"])
        if "seed" in d:
            parts.append(f"s{d['seed']}")
        if "controller_policy" in d:
            parts.append(d["controller_policy"])
        if d.get("controller_rollback"):
            parts.append("rollback")
        return "-".join(parts)

    @property
    def key(self) -> tuple[str, str]:
        return self.trace.key, self.variant


def _closed(trace_config: dict, concurrency: int) -> dict:
    return {**trace_config, "arrivals": {"kind": "closed", "concurrency": concurrency}}


def _short(name: str, schedule: dict, seed: int) -> dict:
    """A generator config shaped like shift-ci's: short prompts, 32 new tokens, closed loop of 8."""
    import copy

    from traces.scenarios import SHORT_SHAPE

    return {"name": name, "seed": seed, "schedule": schedule, **copy.deepcopy(SHORT_SHAPE)}


def scenario_config(name: str, seed: int) -> dict:
    import traces

    return traces.scenario(name, seed=seed).to_dict()


def plan(mode: str, seed: int = 0) -> Plan:
    base = ReplayConfig(seed=seed)  # h100 + llama3-8b cost model, tiny proxy, γ 4, batch 8
    if mode == "quick":
        per = 200
        shifts = {
            "kind": "ordered",
            "segments": [{"domain": d, "requests": per} for d in ("code", "finance", "chat", "code")],
        }
        mixed = {"kind": "mixed", "requests": 3 * per, "mix": {"code": 0.4, "finance": 0.3, "chat": 0.3}}
        return Plan(
            "quick",
            ordered=Trace("shift-mini", scenario="shift-mini"),
            shifts=Trace("shift3-quick", config=_short("shift3-quick", shifts, seed)),
            mixed=Trace("mixed-quick", config=_short("mixed-quick", mixed, seed)),
            base=base,
            batches=(1, 2, 4, 8, 16, 32, 64),
            batch_limit=256,
            discard_seeds=(seed, seed + 1, seed + 2),
        )
    if mode == "full":
        # the paper's traces take the paper's learner settings (replay/recipes.py); the quick set
        # keeps the fast recipe, whose swaps every ≈64 requests show adaptation in 800 requests
        # and the static arms serve the general head (the plan's default, static-general)
        return Plan(
            "full",
            ordered=_closed_scenario("ordered", seed),
            shifts=_closed_scenario("shift-paper", seed),
            mixed=_closed_scenario("mixed", seed),
            base=base.with_recipe("paper"),
            # the variants on shift-ci's 2,400 distinct requests per seed, five seeds: 40 online
            # runs of shift-paper would take days, and the comparison is paired, not at scale
            discard_traffic=_closed_scenario("shift-ci", seed),
            discard_seeds=tuple(range(seed, seed + 5)),
            discard_head=200,
        )
    raise AuroraError(f"unknown figure-set mode {mode!r} (quick or full)")


def _closed_scenario(name: str, seed: int, concurrency: int = 8) -> Trace:
    """A named scenario's requests (same seed, same prompts and lengths) arriving as a closed loop.
    The named scenarios arrive open-loop (Poisson 4-10 req/s): shift-paper's 10 req/s overloads a
    batch of 8 under the H100 + Llama-3-8B cost model (≈6 req/s at ≈200-240 new tokens), so its
    queue fills and requests are refused; at 4 req/s throughput is the arrival rate and speedups
    say nothing. A closed loop of 8 keeps the batch full, as the quick traces and the paper's
    client (at most 12 concurrent requests) do."""
    key = f"{name}-c{concurrency}"
    return Trace(
        key,
        config=_closed({**scenario_config(name, seed), "name": key}, concurrency),
        note=f"scenario `{name}` (seed {seed}) as a closed loop of {concurrency}",
    )


def discard_trace(p: Plan, seed: int) -> Trace:
    """The discard variants' traffic for `seed`: the plan's at its own seed, else the same
    generator config drawn with that seed (distinct prompts, same shape)."""
    base = p.discard_traffic or p.shifts
    if seed == p.base.seed:
        return base
    cfg = base.config if base.config is not None else scenario_config(base.scenario, seed)
    key = f"{base.key}-s{seed}"
    note = (base.note or f"`{base.scenario or base.key}`") + f", seed {seed}"
    return Trace(key, config={**cfg, "name": key, "seed": seed}, limit=base.limit, note=note)


def discard_runs(p: Plan, figures=frozenset()) -> list[tuple[int, str, RunSpec]]:
    """(seed, variant, run) for every discard variant and `none` (λ = 0: the served KL alone),
    online from scratch, on each seed's traffic."""
    out = []
    for seed in p.discard_seeds:
        t = discard_trace(p, seed)
        own = (("seed", seed),) if seed != p.base.seed else ()
        out.append((seed, "none", RunSpec(t, "online-scratch", own, figures=figures)))
        for v in p.discard_variants:
            ch = (("learner_lambda_discard", p.lambda_discard),) + ((("learner_discard", v),) if v != "branch" else ())
            out.append((seed, v, RunSpec(t, "online-scratch", ch + own, figures=figures)))
    return out


def batch_trace(p: Plan, batch: int) -> Trace:
    """The mixed traffic as a closed loop of `batch` requests, so a batch of B is kept full."""
    cfg = p.mixed.config if p.mixed.config is not None else scenario_config(p.mixed.scenario, p.base.seed)
    stem = p.mixed.key.removesuffix("-c8")  # full: mixed-c8 is figure 3's trace, shared at batch 8
    key = f"{stem}-c{batch}" + (f"-n{p.batch_limit}" if p.batch_limit else "")
    note = (
        p.mixed.note.replace("closed loop of 8", f"closed loop of {batch}")
        if p.mixed.note
        else f"{p.mixed.key} as a closed loop of {batch}"
    )
    return Trace(key, config=_closed({**cfg, "name": key}, batch), limit=p.batch_limit, note=note)


def runs_for(p: Plan, figure: int) -> list[RunSpec]:
    f = frozenset({figure})
    if figure == 1:
        return [RunSpec(p.ordered, a, figures=f) for a in ARMS]
    if figure == 2:
        return [RunSpec(p.shifts, a, figures=f) for a in ARMS]
    if figure == 3:
        return [RunSpec(p.mixed, a, figures=f) for a in ("no-spec", "static", "online-scratch")]
    if figure == 4:
        out = []
        for b in p.batches:
            arms = ("no-spec", "static") + (("online-scratch",) if b in p.batch_arms_online else ())
            out += [RunSpec(batch_trace(p, b), a, (("batch", b),), figures=f) for a in arms]
        return out
    if figure == 5:
        return [RunSpec(p.ordered, a, figures=f) for a in ("no-spec", "static", "online-scratch")]
    if figure == 6:
        curves = [
            RunSpec(p.shifts, a, (("learner_lambda_discard", lam),) if lam else (), figures=f)
            for a in p.discard_arms
            for lam in (0.0, p.lambda_discard)
        ]
        once: dict = {}
        for r in curves + [r for _, _, r in discard_runs(p, f)]:
            once.setdefault(r.key, r)  # the served KL alone at the plan's seed is a curve's run
        return list(once.values())
    if figure == 7:
        out = [RunSpec(p.shifts, "static", figures=f)]  # the reference the policies should beat
        for policy, rollback in p.policies:
            ch = (
                ()
                if (policy, rollback) == ("cadence", False)
                else (("controller_policy", policy),) + ((("controller_rollback", True),) if rollback else ())
            )
            out.append(RunSpec(p.shifts, "online-static", ch, figures=f))
        return out
    raise AuroraError(f"no figure {figure} (figures: 1-{len(FIGURES)})")


def all_runs(p: Plan, figures: list[int]) -> list[RunSpec]:
    """The runs of these figures, each once (in figure order), with every figure it serves."""
    merged: dict[tuple, RunSpec] = {}
    for fig in figures:
        for r in runs_for(p, fig):
            old = merged.get(r.key)
            merged[r.key] = r if old is None else RunSpec(old.trace, old.arm, old.changes, old.figures | r.figures)
    return list(merged.values())


def parse_only(only: str | None) -> list[int]:
    if only is None or not only.strip():
        return sorted(FIGURES)
    out = []
    for part in only.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) not in FIGURES:
            raise AuroraError(
                f"--only: {part!r} is not a figure number (choose from 1-{len(FIGURES)}, comma-separated)"
            )
        if int(part) not in out:
            out.append(int(part))
    return sorted(out)
