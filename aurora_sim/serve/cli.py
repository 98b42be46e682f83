"""`aurora serve`: load the target and the draft, start the engine thread, run uvicorn.

Also runnable as `python -m aurora_sim.serve ...` (tests start it as a real subprocess)."""

from __future__ import annotations

from pathlib import Path

import typer

from aurora_sim.cli_errors import err_console, friendly
from aurora_sim.errors import AuroraError
from aurora_sim.serve.config import ServeConfig


def load_models(cfg: ServeConfig):
    """(target, tokenizer, draft, model_dir) for a config; the draft is version 0."""
    from aurora_sim.models import drafts
    from aurora_sim.models.linear import set_weight_format
    from aurora_sim.models.registry import load_target, load_tokenizer, resolve_model

    model_dir = resolve_model(cfg.model)
    target = set_weight_format(load_target(cfg.model, device=cfg.device), cfg.weight_format)
    target.requires_grad_(False)
    tokenizer = load_tokenizer(model_dir)
    if cfg.draft == "none":
        draft = None
    elif cfg.draft == "static":
        from aurora_sim.learner.offline import train_static_draft

        draft = drafts.load_draft(train_static_draft(cfg.model, "eagle3", progress=False), target)
    else:
        draft = drafts.load_draft(cfg.draft, target)  # an operator's path at start-up (safetensors only)
    return target, tokenizer, draft, model_dir


def ensure_weights_dir(path: Path) -> None:
    """--weights-dir, created (empty) when missing: it is where `aurora live` publishes the draft
    versions the server then loads, so on a first run it does not exist yet."""
    if path.is_dir():
        return
    if path.exists() or path.is_symlink():
        raise AuroraError(f"{path}: --weights-dir exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AuroraError(f"{path}: cannot create the weights directory ({exc.strerror or exc})") from None
    err_console.print(
        f"serve: created the weights directory {path} (empty; `aurora live --weights-dir {path}` "
        "publishes draft versions there)",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )


def build_state(cfg: ServeConfig, models=None):
    """Everything a server needs, loaded and started (the engine thread runs on return).
    `models`: a `load_models` result to share (several in-process servers, tests)."""
    import torch

    from aurora_sim.engine.torch_engine import TorchSpecEngine
    from aurora_sim.generate import stop_ids
    from aurora_sim.serve.app import ServerState
    from aurora_sim.serve.worker import EngineWorker, ServedFeed, Stats

    torch.set_num_threads(cfg.threads)
    if cfg.gamma < 1 or cfg.batch < 1 or cfg.max_concurrent < 1:
        raise AuroraError("gamma, batch and max_concurrent must be >= 1")
    if cfg.weights_dir is not None:
        ensure_weights_dir(Path(cfg.weights_dir))
    target, tokenizer, draft, model_dir = models or load_models(cfg)
    max_len = cfg.max_prompt_tokens + cfg.max_tokens_limit + cfg.gamma + 1
    if max_len > target.spec.max_position:
        raise AuroraError(
            f"max_prompt_tokens + max_tokens_limit + gamma + 1 = {max_len} exceeds the model's "
            f"context window ({target.spec.max_position})"
        )
    engine = TorchSpecEngine(target, draft, gamma=cfg.gamma, max_batch=cfg.batch, max_len=max_len, draft_version=0)
    worker = EngineWorker(engine, Stats(draft_version=0), ServedFeed(cfg.feed_size), threads=cfg.threads)
    worker.depth = _depth_policy(cfg, engine)
    worker.start()
    name = cfg.model if cfg.model in ("tiny", "smollm2") else Path(cfg.model).name
    return ServerState(cfg, worker, target, tokenizer, stop_ids(tokenizer, model_dir), name)


def _depth_policy(cfg: ServeConfig, engine):
    """The round-depth policy, installed on the engine (None for `fixed`: rounds as before).
    `cost` prices rounds with this machine's measured round times (`aurora calibrate`'s table)."""
    from aurora_sim.replay.config import DEPTHS, DepthConfig
    from controller.depth import make_depth_policy

    if cfg.depth not in DEPTHS:
        raise AuroraError(f"unknown depth policy {cfg.depth!r} (choose {', '.join(DEPTHS)})")
    if cfg.depth == "fixed" or engine.draft is None:
        return None
    round_time = None
    if cfg.depth == "cost":
        if cfg.profile is None:
            raise AuroraError("--depth cost needs --profile P.json (from `aurora calibrate`) to price rounds here")
        from aurora_sim.costs import RoundShape, make_cost_model

        cost = make_cost_model("profiled", profile_path=cfg.profile)

        def round_time(b, g, c, a):
            return cost.round_ns(RoundShape.steady(b, g, c, a))

    policy = make_depth_policy(DepthConfig(policy=cfg.depth, threshold=cfg.depth_threshold), cfg.gamma, round_time)
    engine.depth_fn = policy.choose
    engine.confidence_floor = policy.confidence_floor
    return policy


def run_server(cfg: ServeConfig) -> None:
    import uvicorn

    from aurora_sim.serve.app import make_app

    if not cfg.loopback_only and cfg.api_key is None:
        err_console.print(
            f"[yellow]warning:[/yellow] listening on {cfg.host} without --api-key: "
            "anyone who can reach it may generate; weight updates are refused"
        )
    st = build_state(cfg)
    updates = f"draft updates from {cfg.weights_dir}" if cfg.weights_dir is not None else "draft updates disabled"
    err_console.print(
        f"serve: starting {st.model_name} (draft {cfg.draft}) on http://{cfg.host}:{cfg.port}; {updates}",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )
    try:
        uvicorn.run(
            make_app(st),
            host=cfg.host,
            port=cfg.port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,
        )
    finally:
        st.worker.stop()


@friendly
def serve_command(
    model: str = typer.Option("tiny", help="Target: tiny, smollm2, or a HF Llama directory."),
    draft: str = typer.Option("static", help="static (the distilled EAGLE-3 head), none, or a draft directory."),
    host: str = typer.Option("127.0.0.1", help="Address to bind (loopback unless told otherwise)."),
    port: int = typer.Option(30000, help="Port."),
    api_key: str | None = typer.Option(
        None, envvar="AURORA_API_KEY", help="Require `Authorization: Bearer KEY` on every endpoint."
    ),
    weights_dir: Path | None = typer.Option(
        None,
        help="The only directory /update_weights_from_disk loads drafts from; created if missing (unset: updates disabled).",
    ),
    gamma: int = typer.Option(4, help="Draft tokens per verify round (the maximum under an adaptive --depth)."),
    depth: str = typer.Option(
        "fixed",
        help="Speculation depth per round: fixed (γ), ema (SGLang's adaptive mode), cost (most tokens per unit of the --profile's round time), confidence (chains stop below --depth-threshold). See docs/depth.md.",
    ),
    depth_threshold: float = typer.Option(
        0.5, help="With --depth confidence: the top draft probability below which a chain stops."
    ),
    profile: Path | None = typer.Option(
        None, help="An `aurora calibrate` table of this machine's round times (needed by --depth cost)."
    ),
    batch: int = typer.Option(8, help="Engine slots (continuous batching across clients)."),
    max_body_bytes: int = typer.Option(1 << 20, help="Largest request body accepted (413 beyond)."),
    max_prompt_tokens: int = typer.Option(512, help="Longest prompt accepted (400 beyond)."),
    max_tokens_limit: int = typer.Option(256, help="Largest max_tokens accepted (400 beyond)."),
    max_concurrent: int = typer.Option(64, help="Requests in flight at once (429 beyond)."),
    threads: int = typer.Option(1, help="Torch threads for the engine."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    weight_format: str = typer.Option(
        "fp32",
        help="CPU serving format of target and draft weights: fp32, or fp16 "
        "(half the bytes read per step; a slightly different model).",
    ),
):
    """Serve the target with speculative decoding over HTTP (OpenAI + SGLang-compatible endpoints)."""
    run_server(
        ServeConfig(
            model=model,
            draft=draft,
            host=host,
            port=port,
            api_key=api_key,
            weights_dir=weights_dir,
            gamma=gamma,
            depth=depth,
            depth_threshold=depth_threshold,
            profile=profile,
            batch=batch,
            max_body_bytes=max_body_bytes,
            max_prompt_tokens=max_prompt_tokens,
            max_tokens_limit=max_tokens_limit,
            max_concurrent=max_concurrent,
            threads=threads,
            device=device,
            weight_format=weight_format,
        )
    )
