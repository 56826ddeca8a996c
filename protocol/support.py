"""Whether a ``speak`` asks for more than the server's capabilities offer (SPEC.md §4.4)."""

from __future__ import annotations

from .capabilities import AUTO_LANG, Capabilities
from .fields import show
from .messages import SpeakOptions

__all__ = ["listing", "unsupported_option"]


def unsupported_option(options: SpeakOptions, caps: Capabilities) -> str | None:
    """Return why ``options`` need more than ``caps`` offers, or ``None`` (SPEC.md §4.4)."""
    if options.emotion is not None and caps.resolve_emotion(options.emotion) is None:
        # Names only: the alias list is long, and sits in welcome for whoever wants it.
        synonyms = (
            " (or a synonym from capabilities.emotion_aliases)" if caps.emotion_aliases else ""
        )
        names = listing(caps.emotions)
        return f"emotion {show(options.emotion)} is not supported; {names}{synonyms}"
    # With voice registration the server checks the voice itself (SPEC.md §4.6).
    unchecked = caps.voice_registration
    if options.voice is not None and options.voice not in caps.voices and not unchecked:
        return f"voice {show(options.voice)} is not supported; {listing(caps.voices)}"
    if options.lang is not None and options.lang != AUTO_LANG:
        if options.lang.lower() not in caps.languages():
            langs = listing((AUTO_LANG, *caps.languages()))
            return f"lang {show(options.lang)} is not supported; {langs}"
    if options.pitch != 0.0 and not caps.pitch:
        return "pitch must be 0: this server cannot shift pitch"
    if options.volume != 0.0 and not caps.volume:
        return "volume must be 0: this server cannot change volume"
    if options.timestamps and not caps.timestamps:
        return "timestamps must be false: this server cannot produce marks"
    return None


def listing(names: tuple[str, ...]) -> str:
    return "supported: " + ", ".join(names) if names else "this server supports none"
