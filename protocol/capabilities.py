"""What a server offers and enforces: ``Limits`` and ``Capabilities`` (SPEC.md §5.1).

Both travel in ``welcome``; both check themselves on construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType

from .types import AUDIO_FORMATS, AudioFormat

__all__ = ["AUTO_LANG", "BuiltinVoice", "Capabilities", "Limits", "Watermark"]

AUTO_LANG = "auto"
"""``speak.lang`` that lets the text's script pick the built-in voice (SPEC.md §4.4, v1.4)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-connection limits, announced to the client in ``welcome`` (SPEC.md §5.1).

    Raises:
        ValueError: if a limit is not a positive integer.
    """

    max_message_bytes: int = 64 * 1024
    """Largest control message accepted, in bytes (UTF-8 bytes for JSON text frames)."""
    max_text_chars: int = 5000
    """Longest ``text`` of one ``speak`` or one ``append``, in Unicode code points."""
    max_inflight: int = 64
    """Most utterances one connection may have in flight (opened and not yet ``done``)."""
    max_pending_text_chars: int = 20000
    """Most code points all ``append`` pieces of one streamed utterance may add up to."""
    max_reference_bytes: int = 10 * 1024 * 1024
    """Largest assembled ``voice.register`` upload, in bytes (SPEC.md §4.6)."""
    max_registrations: int = 2
    """Most ``voice.register`` requests one connection may have in flight (uploading or
    waiting for their answer)."""

    def __post_init__(self) -> None:
        for limit in fields(self):
            _require_positive(limit.name, getattr(self, limit.name))


@dataclass(frozen=True, slots=True)
class BuiltinVoice:
    """A voice the server speaks without registration (``capabilities.builtin_voices``)."""

    voice: str
    """Its name, for ``speak.voice``."""
    language: str
    """BCP 47 tag (``en-US``, ``zh-CN``)."""
    sample_rate: int
    """Its own rate in Hz (output is resampled to the session's rate)."""
    license: str
    """Terms of its weights and training data, in a line."""

    @property
    def lang(self) -> str:
        """The primary language subtag (``en``, ``zh``): what ``speak.lang`` names."""
        return self.language.split("-")[0].lower()


@dataclass(frozen=True, slots=True)
class Watermark:
    """The imperceptible watermark in the server's audio (``capabilities.watermark``, v1.7)."""

    model: str
    """The scheme, for a detector: ``"perthnet-implicit"`` (Perth's implicit neural
    watermark, which ``voxlive detect`` finds)."""
    all_output: bool
    """Every output is marked; ``False``: only speech in registered voices is."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What this server can do; options needing more are answered ``unsupported``.

    Raises:
        ValueError: if ``default_sample_rate`` is outside 8000–48000, ``formats`` is
            empty or names an unknown format, or an ``emotion_aliases`` entry has a
            blank alias or maps to a name missing from ``emotions``.
    """

    emotions: tuple[str, ...] = ()
    """Canonical emotion names ``speak.emotion`` may take; empty means emotion is
    unsupported. Matched case-insensitively (see ``resolve_emotion``)."""
    voices: tuple[str, ...] = ()
    """Voice names ``speak.voice`` may take; empty means voice selection is unsupported."""
    timestamps: bool = True
    """Whether ``speak.timestamps`` (``marks`` messages) is supported."""
    default_sample_rate: int = 22050
    """Output rate in Hz when ``hello.audio.sample_rate`` is absent (the voice's own rate)."""
    pitch: bool = False
    """Whether a non-zero ``speak.pitch`` is supported."""
    volume: bool = False
    """Whether a non-zero ``speak.volume`` is supported."""
    formats: tuple[AudioFormat, ...] = AUDIO_FORMATS
    """PCM formats ``hello.audio.format`` may ask for."""
    voice_registration: bool = False
    """Whether ``voice.register``/``voice.list``/``voice.delete`` are served (SPEC.md §4.6).
    When set, ``speak.voice`` may also name a registered voice: the server, not the
    session, then checks it (``unknown_voice``)."""
    emotion_aliases: Mapping[str, str] = field(default_factory=dict)
    """Synonyms ``speak.emotion`` may also take, each mapped to its canonical name in
    ``emotions`` (``{"开心": "happy", "furious": "angry"}``; SPEC.md §4.4, v1.3). Kept
    as a read-only copy, so the caller's dict may change afterwards."""

    builtin_voices: tuple[BuiltinVoice, ...] = ()
    """The built-in voices in detail (v1.4; empty from older servers): each one's name is
    also in ``voices``. Their languages are what ``speak.lang`` may name."""
    consent_required: bool = False
    """Whether ``voice.register`` must carry ``consent`` with ``granted: true`` (SPEC.md
    §4.6, v1.7); otherwise the server refuses it with ``consent_required``. ``False``
    from servers before v1.7."""
    watermark: Watermark | None = None
    """How the server watermarks its audio (v1.7); ``None``: it does not say (a server
    before v1.7)."""

    def __post_init__(self) -> None:
        if not 8000 <= self.default_sample_rate <= 48000:
            raise ValueError(f"default_sample_rate out of range: {self.default_sample_rate}")
        if not self.formats or not set(self.formats) <= set(AUDIO_FORMATS):
            raise ValueError(f"formats must be a non-empty subset of {AUDIO_FORMATS}")
        aliases = dict(self.emotion_aliases)
        for alias, name in aliases.items():
            if not isinstance(alias, str) or not alias.strip():
                raise ValueError(f"emotion_aliases: alias {alias!r} must be a non-blank string")
            if name not in self.emotions:
                raise ValueError(
                    f"emotion_aliases: {alias!r} maps to {name!r}, which is not in emotions"
                )
        # Frozen, and not sharing the caller's dict: the session trusts it never changes.
        object.__setattr__(self, "emotion_aliases", MappingProxyType(aliases))

    def languages(self) -> tuple[str, ...]:
        """The languages (primary subtags) of the built-in voices, in order, once each."""
        return tuple(dict.fromkeys(v.lang for v in self.builtin_voices))

    def resolve_emotion(self, emotion: str) -> str | None:
        """Return the canonical name ``emotion`` stands for, or ``None`` if it is unknown.

        ``emotion`` matches a name of ``emotions`` or an alias of ``emotion_aliases``
        after surrounding whitespace is stripped and letters are lowercased on both
        sides (``" Happy"`` is ``happy``; Chinese has no case). A canonical name wins
        over an alias spelled the same way.
        """
        key = _emotion_key(emotion)
        for name in self.emotions:
            if _emotion_key(name) == key:
                return name
        for alias, name in self.emotion_aliases.items():
            if _emotion_key(alias) == key:
                return name
        return None


def _emotion_key(name: str) -> str:
    """The form emotion names and aliases are compared in (SPEC.md §4.4)."""
    return name.strip().lower()


def _require_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
