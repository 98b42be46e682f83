"""`Linear`: nn.Linear with faster CPU serving kernels for the few-row products of decoding.

Why: decoding multiplies a handful of rows (batch x (γ+1)) by each weight. On the CPUs this
project runs on (AMD, AVX2), torch's default fp32 path (MKL sgemm) scales almost linearly in the
number of rows there: measured on SmolLM2-135M, one thread, a forward over 3 tokens cost 1.7 single
steps, and its 49,152-row LM head 3x a one-row product. That erases what speculative decoding
relies on, that verifying γ+1 tokens costs about one step.

Two serving formats, chosen per model with `set_weight_format`:
  fp32 (default)  one row, or a small weight: MKL (the faster there); more rows: oneDNN
                  with the weight reordered once into its blocked layout, whose cost grows far more
                  slowly with rows (measured: 3 tokens 1.35 steps, 5 tokens 1.55).
  fp16            weights stored in half precision, products in fp32 (FBGEMM): half the bytes to
                  read, so one step costs about 0.75 of fp32 and 3 tokens 1.14 steps. It serves a
                  slightly different model (weights rounded to fp16, relative error <= 2^-11), so
                  compare speculative and target-only decoding under the same format.
Same parameters and state-dict names as nn.Linear. A packed copy is used only where no gradient is
needed (serving, a frozen target under no_grad); it is rebuilt when the weight changes (an
optimizer step bumps the weight's version) and costs a second copy of the weight. Anywhere else
(CUDA, other dtypes, training, a torch without oneDNN or FBGEMM) it is plain nn.Linear.
"""

from __future__ import annotations

import os
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from aurora_sim.errors import AuroraError

WEIGHT_FORMATS = ("fp32", "fp16")
# torch marks the FBGEMM fp16-weight product deprecated; it is the only fp16-weight CPU kernel it
# ships, and the pinned torch has it (fp16 is refused, with a message, where it is missing)
warnings.filterwarnings("ignore", message=".*fbgemm_.*deprecated")


def _onednn_available() -> bool:
    if os.environ.get("AURORA_ONEDNN_LINEAR", "1") == "0":  # escape hatch: back to MKL for every product
        return False
    try:
        return bool(torch.backends.mkldnn.is_available()) and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    except (AttributeError, RuntimeError):
        return False


def fp16_available() -> bool:
    return hasattr(torch, "fbgemm_linear_fp16_weight") and "fbgemm" in torch.backends.quantized.supported_engines


ONEDNN = _onednn_available()
# oneDNN's fixed cost per call outweighs its better kernel on small weights, and MKL's
# matrix-vector product wins on one row. Measured over 30 distinct weights, one thread, 2-160 rows:
# MKL faster below ~300k elements (192x192: 1.1-2.6x; 576x576: mixed), oneDNN faster from ~800k
# (1536x576: 1.2-1.5x; 49152x576 LM head: 2-3x).
ONEDNN_MIN_WEIGHT = 1 << 19


class Linear(nn.Linear):
    weight_format = "fp32"  # per instance via set_weight_format

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        if (
            w.device.type != "cpu"
            or w.dtype != torch.float32
            or x.dtype != torch.float32
            or (torch.is_grad_enabled() and (w.requires_grad or x.requires_grad))
        ):
            return F.linear(x, w, self.bias)
        if self.weight_format == "fp16":
            packed, bias = self._packed("fp16")
            return torch.fbgemm_linear_fp16_weight(x, packed, bias)
        if not ONEDNN or x.numel() <= x.shape[-1] or w.numel() < ONEDNN_MIN_WEIGHT:
            return F.linear(x, w, self.bias)
        packed, _ = self._packed("onednn")
        return torch.ops.mkldnn._linear_pointwise(x, packed, self.bias, "none", [None], "")

    def _packed(self, kind: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        w = self.weight
        key = (kind, w.data_ptr(), w._version, tuple(w.shape))
        cached = self.__dict__.get("_packed_cache")
        if cached is None or cached[0] != key:
            # a plain tensor even when first called under inference_mode, so it can be reused
            # outside it; packing reads the weight once (milliseconds)
            with torch.inference_mode(False), torch.no_grad():
                if kind == "fp16":
                    bias = self.bias.detach().clone() if self.bias is not None else torch.zeros(self.out_features)
                    cached = (key, (torch.fbgemm_pack_gemm_matrix_fp16(w.detach()), bias))
                else:
                    cached = (key, (torch.ops.mkldnn._reorder_linear_weight(w.detach(), None), None))
            self.__dict__["_packed_cache"] = cached  # not a buffer: never saved, never moved
        return cached[1]


def set_weight_format(module: nn.Module, fmt: str) -> nn.Module:
    """Serve every `Linear` in `module` in `fmt` (see the module docstring); returns `module`."""
    if fmt not in WEIGHT_FORMATS:
        raise AuroraError(f"unknown weight format {fmt!r} (one of {', '.join(WEIGHT_FORMATS)})")
    if fmt == "fp16" and not fp16_available():
        raise AuroraError("fp16 weights need torch's FBGEMM fp16 kernel, which this torch build lacks")
    if fmt == "fp16" and any(p.device.type != "cpu" for p in module.parameters()):
        raise AuroraError("the fp16 weight format is for CPU serving; on CUDA load the model in float16 instead")
    for m in module.modules():
        if isinstance(m, Linear) and m.weight_format != fmt:
            m.weight_format = fmt
            m.__dict__.pop("_packed_cache", None)
    return module


def weight_format_of(module: nn.Module) -> str:
    """The serving format `module`'s Linears were set to ("fp32" when it has none)."""
    return next((m.weight_format for m in module.modules() if isinstance(m, Linear)), "fp32")
