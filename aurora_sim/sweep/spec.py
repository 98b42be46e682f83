"""A sweep spec (YAML or JSON) → the list of replay configs it names.

    name: lambda-study          # optional, shown in the summary
    base:                       # every run: `aurora replay` option names, or config fields
      trace: shift-mini         #   (learner.capacity, controller.delta, ... for the rest)
      limit: 200
    grid:                       # the cartesian product of these lists, in this order
      arm: [static, online-static, online-scratch]
      lambda_discard: [0, 0.5]
      seed: [0, 1]
    runs:                       # and/or explicit runs, each merged over base
      - {arm: online-static, policy: lazy}

`arm` is one of the paper's four (compare.arm_config); `static_draft` is the static arms' draft
directory. A run that does not learn has its learner and controller settings reset to their
defaults, so a grid over λ_discard does not replay the same no-spec run twice; runs whose configs
are then equal are made once. Trace files are resolved against the spec's folder.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, fields
from pathlib import Path

import traces
from aurora_sim.errors import AuroraError
from aurora_sim.replay.compare import NAMED_ARMS, arm_config
from aurora_sim.replay.config import INITS, ControllerConfig, LearnerConfig, ReplayConfig

# `aurora replay` option names → ReplayConfig.with_ keys
ALIASES = {
    "policy": "controller_policy",
    "every": "controller_every",
    "rollback": "controller_rollback",
    "lambda_discard": "learner_lambda_discard",
    "discard": "learner_discard",
    "lr": "learner_lr",
    "unroll": "learner_unroll",
    "learn": "learner_enabled",
}
SPECIAL = ("arm", "static_draft", "name")
TOP_KEYS = ("name", "base", "grid", "runs")


@dataclass(frozen=True)
class SweepRun:
    name: str  # the run directory's name: what varies, then the config hash
    config: ReplayConfig
    also: tuple[str, ...] = ()  # names of duplicate entries that collapsed into this run


@dataclass(frozen=True)
class Sweep:
    name: str
    source: str  # the spec file
    runs: tuple[SweepRun, ...]


def _defaults() -> dict[str, object]:
    out = {f.name: f.default for f in fields(ReplayConfig) if f.name not in ("learner", "controller", "trace_sha256")}
    out.update({f"learner_{f.name}": f.default for f in fields(LearnerConfig)})
    out.update({f"controller_{f.name}": f.default for f in fields(ControllerConfig)})
    return out


DEFAULTS = _defaults()


def canonical_key(key: str, where: str) -> str:
    k = str(key).strip().replace("-", "_")
    k = ALIASES.get(k, k)
    if k.startswith(("learner.", "controller.")):
        k = k.replace(".", "_", 1)
    if k in DEFAULTS or k in SPECIAL:
        return k
    top = [d for d in DEFAULTS if not d.startswith(("learner_", "controller_"))]
    raise AuroraError(
        f"{where}: unknown key {key!r} (known: {', '.join(list(SPECIAL) + sorted(ALIASES) + top)}, "
        "learner.<field>, controller.<field>)"
    )


def _coerce(key: str, value, where: str):
    """YAML's 0 where a float is meant must hash like 0.0, or the same run gets two names."""
    if key in SPECIAL:
        if key == "arm" and value not in NAMED_ARMS:
            raise AuroraError(f"{where}: arm {value!r} is not one of {', '.join(NAMED_ARMS)}")
        return str(value)
    default = DEFAULTS[key]
    if value is None:
        if default is None:
            return None
        raise AuroraError(f"{where}: {key} cannot be empty")
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise AuroraError(f"{where}: {key} must be true or false, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise AuroraError(f"{where}: {key} must be a number, got {value!r}")
        return float(value)
    if isinstance(default, int) or key == "limit":
        if isinstance(value, bool) or not isinstance(value, int):
            raise AuroraError(f"{where}: {key} must be an integer, got {value!r}")
        return value
    if isinstance(value, (dict, list)):
        raise AuroraError(f"{where}: {key} must be a single value, got {value!r}")
    return str(value)


def _entries(doc: dict, src: str) -> list[tuple[dict, dict]]:
    """(settings, what names the run) for every entry: the grid's product, then the explicit runs."""
    base = doc.get("base") or {}
    grid = doc.get("grid") or {}
    runs = doc.get("runs") or []
    if not isinstance(base, dict) or not isinstance(grid, dict) or not isinstance(runs, list):
        raise AuroraError(f"{src}: base and grid must be mappings and runs a list")
    base = {canonical_key(k, f"{src}: base"): v for k, v in base.items()}
    base = {k: _coerce(k, v, f"{src}: base") for k, v in base.items()}
    axes = []
    for k, values in grid.items():
        key = canonical_key(k, f"{src}: grid")
        if not isinstance(values, list) or not values:
            raise AuroraError(f"{src}: grid.{k} must be a non-empty list")
        axes.append([(key, _coerce(key, v, f"{src}: grid.{k}")) for v in values])
    out = []
    if axes:
        for combo in itertools.product(*axes):
            out.append(({**base, **dict(combo)}, dict(combo)))
    for i, entry in enumerate(runs):
        if not isinstance(entry, dict):
            raise AuroraError(f"{src}: runs[{i}] must be a mapping of settings")
        own = {canonical_key(k, f"{src}: runs[{i}]"): v for k, v in entry.items()}
        own = {k: _coerce(k, v, f"{src}: runs[{i}]") for k, v in own.items()}
        out.append(({**base, **own}, own))
    if not axes and not runs:
        out.append((base, {}))
    return out


def _slug(named: dict, cfg: ReplayConfig) -> str:
    parts = [named.get("arm") or cfg.arm]
    for k, v in named.items():
        if k in ("arm", "name") or (not cfg.learning and k.startswith(("learner_", "controller_"))):
            continue  # settings a run without learning ignores (and was normalised away)
        short = k.removeprefix("learner_").removeprefix("controller_")
        val = Path(v).stem if k in ("trace", "static_draft", "init", "profile", "deployment") and v else v
        parts.append(f"{short}{val:g}" if isinstance(val, float) else f"{short}{val}")
    text = "-".join(str(p) for p in parts)
    return "".join(c if c.isalnum() or c in "-_.=" else "_" for c in text)[:80]


def _normalise(cfg: ReplayConfig) -> ReplayConfig:
    if cfg.learning:
        return cfg
    return cfg.with_(
        learner_enabled=False,
        **{f"learner_{f.name}": f.default for f in fields(LearnerConfig) if f.name != "enabled"},
        **{f"controller_{f.name}": f.default for f in fields(ControllerConfig)},
    )


def _resolve_file(value: str | None, folder: Path) -> str | None:
    """A value naming a file or folder that exists next to the spec becomes its absolute path (so
    the config, its hash and the run do not depend on where `aurora sweep` was started)."""
    if not value:
        return value
    p = Path(value).expanduser()
    cand = p if p.is_absolute() else folder / p
    return str(cand.resolve()) if cand.exists() else value


def build_config(settings: dict, folder: Path, where: str) -> ReplayConfig:
    s = dict(settings)
    arm, static, _ = s.pop("arm", None), s.pop("static_draft", None), s.pop("name", None)
    # only values that can name a file: not scenario, init or deployment names
    if "trace" in s and s["trace"] not in traces.SCENARIOS:
        s["trace"] = _resolve_file(s["trace"], folder)
    if "init" in s and s["init"] not in INITS:
        s["init"] = _resolve_file(s["init"], folder)
    if "deployment" in s and s["deployment"].endswith(".json"):
        s["deployment"] = _resolve_file(s["deployment"], folder)
    if "profile" in s:
        s["profile"] = _resolve_file(s["profile"], folder)
    if s.get("profile"):
        s["hardware"] = "profiled"
    try:
        recipe = s.pop("recipe", "fast")  # a recipe first; the entry's own settings override it
        cfg = ReplayConfig().with_recipe(recipe, **s)
        if arm:
            cfg = arm_config(cfg, arm, _resolve_file(static, folder) or "static")
    except AuroraError as exc:
        raise AuroraError(f"{where}: {exc}") from None
    return _normalise(cfg)


def parse_spec(doc, source: str, folder: Path) -> Sweep:
    if not isinstance(doc, dict):
        raise AuroraError(f"{source}: a sweep spec is a mapping with base, grid and/or runs")
    extra = set(doc) - set(TOP_KEYS)
    if extra:
        raise AuroraError(f"{source}: unknown top-level key {min(extra)!r} (known: {', '.join(TOP_KEYS)})")
    by_hash: dict[str, SweepRun] = {}
    for i, (settings, named) in enumerate(_entries(doc, source)):
        cfg = build_config(settings, folder, f"{source}: run {i + 1}")
        h = cfg.config_hash()
        name = settings.get("name") or _slug(named, cfg)
        name = f"{name}-{h[:8]}"
        if h in by_hash:
            prev = by_hash[h]
            by_hash[h] = SweepRun(prev.name, prev.config, prev.also + (name,))
        else:
            by_hash[h] = SweepRun(name, cfg)
    names = [r.name for r in by_hash.values()]
    if len(set(names)) != len(names):
        raise AuroraError(f"{source}: two runs are both named {min(n for n in names if names.count(n) > 1)!r}")
    return Sweep(str(doc.get("name") or Path(source).stem), source, tuple(by_hash.values()))


def load_spec(path: Path | str) -> Sweep:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise AuroraError(f"{path}: no such sweep spec")
    try:
        doc = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AuroraError(f"{path}: not valid YAML ({first})") from None
    return parse_spec(doc, str(path), path.parent.resolve())
