"""The numeric speak controls: each one's range, default, unit and help, defined once.

The codec validates ``speak`` / first ``append`` options against this table (SPEC.md
§4.4), ``SpeakOptions`` takes its defaults from it, and the command line builds its
control flags (default, help, range check) from it, so a range or a default is stated
in exactly one place.

A default of ``None`` means *unset*: the field is left out on the wire and the server
applies its own value. ``intensity`` is such a control: the engine's emotion default
applies, and the server reports the value it applied in ``started.intensity`` (SPEC.md
§5.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Generic, TypeVar

__all__ = [
    "CONTROLS",
    "DEADLINE_MS",
    "DEFAULT_SEED",
    "INTENSITY",
    "PITCH",
    "SEED",
    "SPEED",
    "VOLUME",
    "Control",
]

N = TypeVar("N", int, float)


@dataclass(frozen=True, slots=True)
class Control(Generic[N]):
    """One numeric control of an utterance (SPEC.md §4.4)."""

    name: str
    """Its field in ``speak`` / first ``append``, and its command-line flag (``--name``)."""
    min: N
    """Smallest accepted value (inclusive)."""
    max: N
    """Largest accepted value (inclusive)."""
    default: N | None
    """Value when left out; ``None``: unset (the server decides, see the module doc)."""
    unit: str
    """Unit shown after the range in messages and help (``""`` for a plain factor)."""
    help: str
    """What it does, in a few words, for command-line help."""

    @property
    def default_value(self) -> N:
        """The default of a control that has one.

        Raises:
            LookupError: the control is unset by default (``default`` is ``None``).
        """
        if self.default is None:
            raise LookupError(f"{self.name} has no default: the server applies its own")
        return self.default

    def contains(self, value: float) -> bool:
        """Return whether ``value`` is in range (NaN is not)."""
        return self.min <= value <= self.max

    @property
    def range_text(self) -> str:
        """The range as messages write it: ``[-12, 12] semitones``."""
        unit = f" {self.unit}" if self.unit else ""
        return f"[{_number(self.min)}, {_number(self.max)}]{unit}"

    def check(self, value: N, label: str | None = None) -> N:
        """Return ``value`` if it is in range.

        Args:
            value: The value to check.
            label: How the message names the control (default: its name), e.g.
                ``"--pitch"``.

        Raises:
            ValueError: ``value`` is out of range or NaN; the message names ``label``
                and the range.
        """
        if not self.contains(value):
            raise ValueError(f"{label or self.name} must be in {self.range_text}, got {value}")
        return value

    def flag_help(self, default_text: str | None = None) -> str:
        """Command-line help: what it does, its range and its default.

        Args:
            default_text: How to describe the default where this table has none
                (e.g. the engine's value); ``None`` leaves the default out.
        """
        shown = default_text if self.default is None else _number(self.default)
        tail = f", default {shown}" if shown is not None else ""
        return f"{self.help} ({self.range_text}{tail})"


def _number(value: float) -> str:
    # Integers exactly (a seed's 2**63 - 1), floats briefly (0.25, not 0.250000).
    return str(value) if isinstance(value, int) else f"{value:g}"


INTENSITY: Final[Control[float]] = Control(
    "intensity", 0.0, 1.0, None, "", "how strongly the emotion shows, 0 = neutral"
)
SPEED: Final[Control[float]] = Control("speed", 0.25, 4.0, 1.0, "", "speaking rate, 1 = normal")
PITCH: Final[Control[float]] = Control(
    "pitch", -12.0, 12.0, 0.0, "semitones", "pitch change, on top of the emotion's"
)
VOLUME: Final[Control[float]] = Control("volume", -30.0, 12.0, 0.0, "dB", "level change")
DEADLINE_MS: Final[Control[int]] = Control(
    "deadline_ms", 1, 600_000, None, "ms", "give up unless synthesis starts within this"
)
SEED: Final[Control[int]] = Control(
    "seed", 0, 2**63 - 1, None, "", "noise seed, for reproducible output"
)
DEFAULT_SEED: Final = 0
"""The seed of an utterance that sets none (SPEC.md §4.4, v1.8): the same text with the
same options sounds the same, so a server can replay a repeated line from its cache."""

CONTROLS: Final[tuple[Control[float] | Control[int], ...]] = (
    INTENSITY,
    SPEED,
    PITCH,
    VOLUME,
    DEADLINE_MS,
    SEED,
)
"""Every numeric control, in SPEC.md §4.4's order."""
