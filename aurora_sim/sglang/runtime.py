"""Is SGLang usable on this machine? One-line errors for `--engine sglang` where it is not.

SGLang's speculative decoding needs a CUDA GPU: its kernel package is CUDA-only and its CPU
backend needs an AMX Xeon plus a source-built kernel (docs/sglang.md). The checks run in the
order a user can act on: GPU first, then the package, then whether it imports.
"""

from __future__ import annotations

import importlib.metadata
import re

from aurora_sim.errors import AuroraError

STAGE_HINT = "scripts/sglang_gpu_stage.sh stages SGLang 0.5.17 onto a GPU host; see docs/sglang.md"


def version_tuple(version: str) -> tuple[int, ...]:
    # leading digits of the first three fields: "0.5.8.post1" -> (0, 5, 8), "0.5.23rc1" -> (0, 5, 23)
    return tuple(int(m.group()) if (m := re.match(r"\d+", p)) else 0 for p in version.split(".")[:3])


def installed_version() -> str | None:
    try:
        return importlib.metadata.version("sglang")
    except importlib.metadata.PackageNotFoundError:
        return None


def require_sglang(what: str = "--engine sglang") -> str:
    """The installed SGLang version, or an AuroraError saying why it cannot run here."""
    import torch

    if not torch.cuda.is_available():
        raise AuroraError(
            f"{what} needs a CUDA GPU and this machine has none (torch {torch.__version__}); "
            f"use --engine torch here ({STAGE_HINT})"
        )
    version = installed_version()
    if version is None:
        raise AuroraError(f"{what}: SGLang is not installed ({STAGE_HINT})")
    if version_tuple(version) < (0, 5, 12):
        raise AuroraError(
            f"{what}: SGLang {version} is too old (0.5.12 or newer: per-request draft counts "
            "and draft-reaching weight updates)"
        )
    try:
        import sglang  # noqa: F401
    except Exception as exc:  # a broken install fails in many ways (missing kernels, libcuda, ...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise AuroraError(f"{what}: `import sglang` {version} failed ({type(exc).__name__}: {first})") from None
    return version


def check_replay_engine(engine: str) -> None:
    """`aurora replay --engine`: torch runs; sglang says exactly why it cannot run here."""
    if engine == "torch":
        return
    if engine != "sglang":
        raise AuroraError(f"unknown engine {engine!r} (torch or sglang)")
    require_sglang("--engine sglang")
    # SGLang is usable here, but its statistics are per request, while the replay's virtual
    # clock, event log and learner consume per-round outcomes: not wired yet.
    raise AuroraError(
        "--engine sglang: the replay loop needs per-round outcomes, which SGLang does not "
        "report; run scripts/sglang_gpu_checks.py (docs/sglang.md, 'What remains')"
    )
