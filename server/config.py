"""Server configuration: one frozen dataclass, from flags or ``VOXLIVE_*`` environment variables."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, get_args

from voxlive.engine.interface import Precision

__all__ = ["Config"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """Everything ``voxlive serve`` can be told. Units are in the names."""

    host: str = "127.0.0.1"
    port: int = 8765
    device: str = "cpu"
    """``cpu``, ``cuda`` or ``cuda:N``."""
    precision: Precision = "float32"
    """dtype of the prior flow and decoder."""
    token: str | None = None
    """When set, ``hello.token`` must equal it (else close 4003)."""
    max_active_items: int = 16
    """Sentences decoded together at most (the rest wait in the queue)."""
    step_budget_frames: int = 192
    """Latent frames decoded per engine turn at most (≈ 60 ms of CPU work here); keeps new
    utterances from waiting behind long steps. Measured with 16 sessions: 384 gave a
    p95 first audio of ~420 ms, 192 ~290 ms, at the same throughput."""
    max_queued_items: int = 512
    """Sentences waiting at most; beyond, ``speak`` gets ``overloaded``."""
    max_inflight: int = 64
    """Utterances in flight per connection."""
    max_message_bytes: int = 64 * 1024
    max_text_chars: int = 5000
    first_chunk_frames: int = 16
    """Latent frames (× 256 samples at 22.05 kHz) in each utterance's first chunk."""
    send_buffer_bytes: int = 4 * 1024 * 1024
    """Audio queued for one client beyond which it counts as not reading."""
    slow_consumer_timeout_s: float = 5.0
    """How long a client may stay over ``send_buffer_bytes`` before it is closed (4008)."""
    graceful_shutdown_s: float = 10.0
    """On SIGTERM: how long in-flight utterances may take to finish."""
    frontend_threads: int = 1
    """Threads that turn text into phonemes (espeak-ng is serialized anyway)."""
    redis_url: str | None = None
    """Where registered voices live (``redis://host:port/db``); ``None``: in process."""
    max_reference_bytes: int = 10 * 1024 * 1024
    """Largest ``voice.register`` upload, in bytes."""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in [0, 65535], got {self.port}")
        for name in ("max_active_items", "max_queued_items", "max_inflight", "frontend_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.precision not in get_args(Precision):
            raise ValueError(f"precision must be float32, bfloat16 or float16: {self.precision}")
        if self.graceful_shutdown_s < 0 or self.slow_consumer_timeout_s <= 0:
            raise ValueError("timeouts must be positive")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        """``VOXLIVE_PORT=9000`` etc.; ``overrides`` (e.g. from flags) win.

        Raises:
            ValueError: a variable does not parse as its field's type.
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"VOXLIVE_{f.name.upper()}")
            if raw is not None:
                values[f.name] = _parse(f.name, raw, getattr(cls(), f.name))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @classmethod
    def from_args(cls, args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Config:
        """Flags of ``voxlive serve`` over environment over defaults."""
        names = {f.name for f in fields(cls)}
        return cls.from_env(env, **{k: v for k, v in vars(args).items() if k in names})


def _parse(name: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            return raw.lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError as exc:
        raise ValueError(
            f"VOXLIVE_{name.upper()}={raw!r} is not a valid {type(default).__name__}"
        ) from exc
    return raw
