"""What a server is configured with: addresses, the engine's shape and the request limits.

The limits exist so a hostile or careless client gets a 4xx/429 with a reason instead of
exhausting memory: the engine's KV cache is sized from max_prompt_tokens + max_tokens_limit.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServeConfig:
    model: str = "tiny"
    draft: str = "static"  # static | none | a draft directory (inside weights_dir or anywhere at start-up)
    host: str = "127.0.0.1"
    port: int = 30000
    api_key: str | None = None
    weights_dir: Path | None = None  # the only place /update_weights_from_disk loads from
    gamma: int = 4
    batch: int = 8
    max_body_bytes: int = 1 << 20
    max_prompt_tokens: int = 512
    max_tokens_limit: int = 256
    max_concurrent: int = 64  # requests admitted at once (running + waiting); more get 429
    feed_size: int = 4096  # completed requests kept for GET /aurora/served
    threads: int = 1
    device: str = "cpu"
    weight_format: str = "fp32"  # CPU serving format of target and draft (aurora_sim.models.linear)
    depth: str = "fixed"  # speculation depth policy per round (controller/depth.py)
    depth_threshold: float = 0.5  # confidence: stop a chain below this top draft probability
    profile: Path | None = None  # an `aurora calibrate` table: the round times `--depth cost` prices with

    @property
    def loopback_only(self) -> bool:
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name we cannot judge: treat as exposed
