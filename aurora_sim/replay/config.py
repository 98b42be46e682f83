"""Everything that defines a replay, in one frozen dataclass (stored whole in the event log).

Two runs with equal configs give byte-identical event logs; `config_hash` names that identity.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace

from aurora_sim.errors import AuroraError

POLICIES = ("cadence", "lazy", "shadow", "payoff")
# The offline static draft each static init names: its flavour (aurora_sim.learner.offline):
# static-general is the paper's situation (a head trained on general chat only); ceiling-<domain>
# a head trained with the same budget on that domain alone (chat's is the general head itself).
STATIC_INITS = {
    "static": "ci",
    "static-full": "full",
    "static-general": "general",
    "ceiling-code": "code",
    "ceiling-finance": "finance",
    "ceiling-chat": "general",
}
INITS = ("none", *STATIC_INITS, "scratch")  # or a draft directory
ENGINES = ("auto", "fast", "exact")
DEPTHS = ("fixed", "ema", "cost", "confidence")  # controller/depth.py


@dataclass(frozen=True)
class LearnerConfig:
    enabled: bool = True
    lr: float = 1e-3
    # A draft that starts trained (static, a directory) learns at this rate instead (None: lr);
    # the paper fine-tunes at 1e-5 and trains from scratch at 1e-4 (replay/recipes.py).
    lr_finetune: float | None = 1e-4  # the fast recipe's (replay/recipes.py)
    batch_requests: int = 8  # served requests per optimizer step (new ones first, then replayed)
    min_new: int = 8  # a step starts only once this many unseen requests were captured
    capacity: int = 256  # buffer size in requests
    buffer: str = "fifo"  # fifo | reservoir
    max_staleness: int = 8  # drop samples drafted more than this many versions ago
    unroll: int = 4  # TTT unroll steps (Aurora: 5-7), weights decay**i
    decay: float = 0.8
    lambda_discard: float = 0.0  # 0 = Aurora's released code; > 0 = the paper's discard sampling
    discard: str = "branch"  # how rejections are used (learner/discard.py): branch | reject-point | ...
    discard_per_request: int = 4  # rejected branches kept per request (chosen by the learner RNG)
    branch_context: int = 16  # accepted tokens kept before a rejected branch
    grad_clip: float = 1.0
    explode_grad_norm: float = 1e3  # a step whose gradient norm exceeds this is dropped
    heldout_every: int = 10  # every Nth captured request goes to the held-out pool (lazy policy)
    eval_requests: int = 32  # requests a candidate is scored on (lazy: held-out; shadow: recent)
    # Trainer arithmetic. fp32 by default: the same numbers on every CPU (docs/reference.md measured
    # what bf16 changes). bf16 = autocast (weights and optimizer stay fp32), an opt-in speed-up of
    # ~2x per step where the CPU has native bf16 (AVX512-BF16, AMX); auto = bf16 there, fp32
    # elsewhere. Resolved when a run starts and recorded in its config.
    precision: str = "fp32"  # fp32 | bf16 | auto


@dataclass(frozen=True)
class ControllerConfig:
    policy: str = "cadence"
    every: int = 8  # optimizer steps between candidates (Aurora's cadence)
    delta: float = 0.02  # lazy: candidate must beat the serving draft's AL by this much
    tolerance: float = 0.0  # shadow: swap unless the candidate is worse by more than this
    rollback: bool = False
    rollback_window: int = 64  # verify rounds compared before/after a swap
    rollback_margin: float = 0.05  # revert if live AL falls below (1 - margin) x pre-swap AL
    # payoff: swap only if the last floor_window requests, with the pause added, still ran at
    # >= floor x no speculation (controller/floor.py); 0 = no guard
    floor: float = 0.98
    floor_window: int = 200


@dataclass(frozen=True)
class DepthConfig:
    """The speculation-depth policy (controller/depth.py) and its settings."""

    policy: str = "fixed"  # fixed | ema | cost | confidence
    threshold: float = 0.5  # confidence: stop a chain below this top draft probability
    alpha: float = 0.0005  # cost: decay per verified position of its acceptance walk (≈ 1/window)
    probe_every: int = 32  # cost: one round in this many runs one step deeper than the best (0 = never)


@dataclass(frozen=True)
class ReplayConfig:
    trace: str = "shift-ci"  # scenario name or a trace file
    trace_sha256: str = ""  # filled in by the loader, so a changed file is a different run
    limit: int | None = None
    model: str = "tiny"
    draft: str = "eagle3"  # eagle3 | lm
    # A from-scratch EAGLE-3 head's MLP width relative to the target's (0.5 = half, 2 = twice):
    # how much capacity the draft has beside the target (the discard experiment's axis).
    draft_width: float = 1.0
    # A from-scratch EAGLE-3 head's hot vocabulary (EAGLE-3's d2t): it proposes only the N most
    # frequent target tokens of the training split; 0 = the whole vocabulary. Aurora's drafts
    # (EAGLE-3 on Llama-3) propose 32,000 of 128,256 tokens, a quarter: 1024 on tiny's 4,096.
    draft_vocab: int = 0
    init: str = "static"  # none (no speculation) | static | static-full | scratch | a draft directory
    gamma: int = 4
    batch: int = 8  # max batch (engine slots)
    max_queue: int = 1024  # requests waiting beyond this are refused (open-loop overload)
    max_len: int = 1024  # engine context window (prompt + output + γ + 1 must fit)
    hardware: str = "h100"
    deployment: str = "llama3-8b"
    profile: str | None = None  # a calibrate table (hardware = profiled)
    # How a new draft goes live (aurora_sim/costs/swap.py): in-place (copy into the buffers the
    # CUDA graphs read: a ~ms stall) or recapture (Aurora's: reload and recapture the draft's
    # graphs for every captured batch size, ≈2.2 s each: 17.9 s at batch 8)
    swap: str = "in-place"
    # The two-draft arm (controller/router.py): a frozen floor head (a static init name or a draft
    # directory) drafts every domain the online head has not yet beaten it on; "" = one draft.
    floor_draft: str = ""
    seed: int = 0
    # auto: the fast path (rounds by bookkeeping over cached target trajectories) where it is
    # exact, i.e. greedy traffic; else the round-by-round engine. A run records which it used.
    engine: str = "auto"  # auto | fast | exact
    # The named learner recipe the learner/controller settings came from (replay/recipes.py);
    # fields changed after it are recorded as they are, so the config is always the truth.
    recipe: str = "fast"  # fast | paper
    flush_every: int = 200  # finished requests per event-log part
    keep_versions: int = 3  # draft versions kept on disk besides serving and rollback target
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    depth: DepthConfig = field(default_factory=DepthConfig)

    def __post_init__(self):
        if self.depth.policy not in DEPTHS:
            raise AuroraError(f"unknown depth policy {self.depth.policy!r} (choose {', '.join(DEPTHS)})")
        if not 0.0 <= self.depth.threshold <= 1.0:
            raise AuroraError(f"depth threshold must be in [0, 1], got {self.depth.threshold}")
        if not 0.0 < self.depth.alpha <= 1.0 or self.depth.probe_every < 0:
            raise AuroraError("depth alpha must be in (0, 1] and probe_every >= 0")
        if self.controller.policy not in POLICIES:
            raise AuroraError(f"unknown policy {self.controller.policy!r} (choose {', '.join(POLICIES)})")
        if not 0.0 <= self.controller.floor < 10.0 or self.controller.floor_window < 1:
            raise AuroraError(
                f"the payoff floor must be in [0, 10) and its window >= 1 request, got floor "
                f"{self.controller.floor}, window {self.controller.floor_window}"
            )
        if self.draft not in ("eagle3", "lm"):
            raise AuroraError(f"unknown draft kind {self.draft!r} (eagle3 or lm)")
        if self.draft_width != 1.0 and (self.draft_width <= 0 or self.init != "scratch" or self.draft != "eagle3"):
            raise AuroraError(
                f"draft width {self.draft_width} needs a from-scratch EAGLE-3 head (--init scratch) and a width > 0"
            )
        if self.draft_vocab and (self.draft_vocab < 1 or self.init != "scratch" or self.draft != "eagle3"):
            raise AuroraError(
                f"draft vocabulary {self.draft_vocab} needs a from-scratch EAGLE-3 head (--init scratch) and a size >= 1"
            )
        from aurora_sim.costs.swap import MECHANISMS

        if self.swap not in MECHANISMS:
            raise AuroraError(f"unknown swap mechanism {self.swap!r} (choose {', '.join(MECHANISMS)})")
        if self.floor_draft and (self.draft != "eagle3" or not self.learning):
            raise AuroraError(
                f"a floor draft ({self.floor_draft}) needs an online EAGLE-3 draft beside it (--learn, --draft eagle3)"
            )
        if self.floor_draft and self.engine == "exact":
            raise AuroraError("the two-draft arm (--floor-draft) runs on the fast path: greedy traces only")
        if self.engine not in ENGINES:
            raise AuroraError(f"unknown replay engine {self.engine!r} (choose {', '.join(ENGINES)})")
        if self.learner.precision not in ("auto", "bf16", "fp32"):
            raise AuroraError(f"unknown learner precision {self.learner.precision!r} (auto, bf16 or fp32)")
        if self.learner.buffer not in ("fifo", "reservoir"):
            raise AuroraError(f"unknown buffer policy {self.learner.buffer!r} (fifo or reservoir)")
        if self.gamma < 1 and self.init != "none":
            raise AuroraError("gamma must be >= 1 with a draft (use --init none for no speculation)")
        if self.batch < 1 or self.learner.batch_requests < 1 or self.learner.unroll < 1:
            raise AuroraError("batch, learner batch and unroll must be >= 1")
        from aurora_sim.replay.recipes import RECIPES

        if self.recipe not in RECIPES:
            raise AuroraError(f"unknown learner recipe {self.recipe!r} (choose {', '.join(RECIPES)})")
        if self.learner.lambda_discard < 0:
            raise AuroraError(f"lambda_discard must be >= 0, got {self.learner.lambda_discard}")
        from aurora_sim.learner.discard import VARIANTS

        if self.learner.discard not in VARIANTS:
            raise AuroraError(f"unknown discard variant {self.learner.discard!r}; choose one of {', '.join(VARIANTS)}")
        if self.learner.discard == "reach-weighted" and self.learner.branch_context < 1:
            raise AuroraError("--discard reach-weighted needs branch_context >= 1 (the state the rejection came from)")

    @property
    def learner_lr(self) -> float:
        """The learning rate this run's learner uses: lr_finetune for a draft that starts trained."""
        finetune = self.init not in ("none", "scratch") and self.learner.lr_finetune is not None
        return self.learner.lr_finetune if finetune else self.learner.lr

    def with_recipe(self, name: str, **overrides) -> ReplayConfig:
        """This config with a named recipe's settings, then `overrides` (ReplayConfig.with_ keys).
        A learner_lr override without a learner_lr_finetune one is one rate for every starting
        draft (as `aurora replay --lr` and a sweep's `lr:` mean it)."""
        from aurora_sim.replay.recipes import recipe_changes

        if "learner_lr" in overrides:
            overrides.setdefault("learner_lr_finetune", None)
        return self.with_(**{**recipe_changes(name), **overrides})

    @property
    def speculative(self) -> bool:
        return self.init != "none"

    @property
    def learning(self) -> bool:
        return self.speculative and self.learner.enabled

    @property
    def arm(self) -> str:
        """The paper's name for this kind of run: no-spec, static, online-static, online-scratch."""
        if not self.speculative:
            return "no-spec"
        if not self.learning:
            return "static" if self.init != "scratch" else "scratch-frozen"
        if self.floor_draft:
            return "two-draft"
        return "online-scratch" if self.init == "scratch" else "online-static"

    def to_dict(self) -> dict:
        d = asdict(self)
        # A run with the default depth policy records no `depth` key, so its config, run id and
        # event log bytes are what they were before depth policies existed (old runs resume,
        # baselines and default run directories keep their names).
        if self.depth == DepthConfig():
            del d["depth"]
        if self.draft_width == 1.0:
            del d["draft_width"]
        if self.draft_vocab == 0:
            del d["draft_vocab"]
        if not self.floor_draft:
            del d["floor_draft"]
        # likewise the default discard variant (the only one before variants existed)
        if self.learner.discard == "branch":
            del d["learner"]["discard"]
        # the payoff floor guard's settings, recorded only where set away from the defaults
        for key in ("floor", "floor_window"):
            if d["controller"][key] == getattr(ControllerConfig, key):
                del d["controller"][key]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def config_hash(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, d: dict) -> ReplayConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise AuroraError(f"unknown replay config keys: {', '.join(sorted(unknown))}")
        d = dict(d)
        d["learner"] = LearnerConfig(**d.get("learner", {}))
        d["controller"] = ControllerConfig(**d.get("controller", {}))
        d["depth"] = DepthConfig(**d.get("depth", {}))
        return cls(**d)

    def with_(self, **changes) -> ReplayConfig:
        learner = {k.removeprefix("learner_"): v for k, v in changes.items() if k.startswith("learner_")}
        ctrl = {k.removeprefix("controller_"): v for k, v in changes.items() if k.startswith("controller_")}
        depth = {k.removeprefix("depth_"): v for k, v in changes.items() if k.startswith("depth_")}
        rest = {k: v for k, v in changes.items() if not k.startswith(("learner_", "controller_", "depth_"))}
        return replace(
            self,
            learner=replace(self.learner, **learner),
            controller=replace(self.controller, **ctrl),
            depth=replace(self.depth, **depth),
            **rest,
        )
