"""A strict, typed reader over one decoded msgpack/JSON map.

The codec reads every field through ``Fields`` so that all type and range rules live in
one place (SPEC.md §4.1): integers are never booleans, numbers are finite, strings are
valid Unicode, and, for client messages, unknown keys are an error.

Error messages never echo peer input beyond a short, escaped excerpt of a key or value
(``show``), so they are always safe to encode and send back.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Final, TypeVar

from .errors import InvalidMessage
from .types import ErrorCode, UtteranceId

__all__ = ["MISSING", "Fields", "Missing", "show"]

T = TypeVar("T")

_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_SHOW_CHARS: Final = 32


class Missing:
    """Type of ``MISSING``: marks a field that has no default (it is required)."""

    __slots__ = ()


MISSING: Final = Missing()


def show(value: object) -> str:
    """Return a short, escaped description of a peer value for an error message.

    Strings and bytes are shown as a truncated ``repr`` (lone surrogates come out
    escaped); anything else only by its type name, since ``repr`` of a deeply nested
    peer value could be slow or recurse too deep.
    """
    if isinstance(value, str | bytes):
        text = repr(value[:_SHOW_CHARS])
        return text if len(value) <= _SHOW_CHARS else text + "..."
    return f"a value of type {type(value).__name__}"


class Fields:
    """Typed getters over one map; every getter raises ``InvalidMessage``.

    Args:
        obj: The decoded map.
        where: Prefix for error messages, such as ``"speak"`` or ``"hello.audio"``.
        id: Utterance id attached to the errors raised, if known.
    """

    __slots__ = ("_obj", "_where", "id")

    def __init__(
        self, obj: Mapping[object, object], where: str, *, id: UtteranceId | None = None
    ) -> None:
        self._obj = obj
        self._where = where
        self.id = id

    @property
    def where(self) -> str:
        """The map's name in error messages (``"voice.register.consent"``)."""
        return self._where

    def error(self, message: str, code: ErrorCode = "invalid_message") -> InvalidMessage:
        """Return an ``InvalidMessage`` about this map (for the caller to raise)."""
        return InvalidMessage(message, code=code, id=self.id)

    def _fail(self, name: str, expected: str) -> InvalidMessage:
        return self.error(f"{self._where}.{name} must be {expected}")

    def check_known(self, allowed: Collection[str]) -> None:
        """Raise ``InvalidMessage`` if the map has a key outside ``allowed``."""
        unknown = [show(key) for key in self._obj if key not in allowed]
        if unknown:
            raise self.error(f"unknown field(s) in {self._where}: {', '.join(unknown[:4])}")

    def items(self) -> Iterable[tuple[object, object]]:
        """Return the raw ``(key, value)`` pairs of the map."""
        return self._obj.items()

    def has(self, name: str) -> bool:
        """Return whether the map has the key ``name`` (even with a null value)."""
        return name in self._obj

    def _get(self, name: str, default: object) -> object:
        if name in self._obj:
            return self._obj[name]
        if isinstance(default, Missing):
            raise self.error(f"{self._where}.{name} is required")
        return default

    def get_int(self, name: str, default: int | Missing = MISSING, *, lo: int, hi: int) -> int:
        """Return an integer in ``[lo, hi]``; booleans and floats are rejected."""
        value = self._get(name, default)
        if isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi:
            return value
        raise self._fail(name, f"an integer in [{lo}, {hi}]")

    def get_opt_int(self, name: str, *, lo: int, hi: int) -> int | None:
        """Return an integer in ``[lo, hi]`` or ``None`` (absent or null)."""
        if self._obj.get(name) is None:
            return None
        return self.get_int(name, lo=lo, hi=hi)

    def get_float(
        self, name: str, default: float | Missing = MISSING, *, lo: float, hi: float
    ) -> float:
        """Return a finite number in ``[lo, hi]`` as a float; integers are accepted.

        NaN and infinities fail the range test; huge integers are compared exactly
        before conversion, so they never overflow.
        """
        value = self._get(name, default)
        if isinstance(value, int | float) and not isinstance(value, bool) and lo <= value <= hi:
            return float(value)
        raise self._fail(name, f"a finite number in [{lo:g}, {hi:g}]")

    def get_float_or_unset(self, name: str, *, lo: float, hi: float) -> float | None:
        """Return a finite number in ``[lo, hi]``, or ``None`` when the field is absent.

        Unlike ``get_opt_float``, ``null`` is an error: the field is optional but not
        nullable (SPEC.md §4.1), and absent it takes the server's default.
        """
        if name not in self._obj:
            return None
        return self.get_float(name, lo=lo, hi=hi)

    def get_opt_float(self, name: str, *, lo: float, hi: float) -> float | None:
        """Return a finite number in ``[lo, hi]`` or ``None`` (absent or null)."""
        if self._obj.get(name) is None:
            return None
        return self.get_float(name, lo=lo, hi=hi)

    def get_bool(self, name: str, default: bool | Missing = MISSING) -> bool:
        """Return a boolean; integers are rejected."""
        value = self._get(name, default)
        if not isinstance(value, bool):
            raise self._fail(name, "a boolean")
        return value

    def get_str(self, name: str, default: str | Missing = MISSING, *, max_len: int) -> str:
        """Return a valid Unicode string of at most ``max_len`` code points."""
        value = self._get(name, default)
        if not isinstance(value, str) or not _is_unicode(value):
            raise self._fail(name, "a string")
        if len(value) > max_len:
            raise self._fail(name, f"at most {max_len} characters long")
        return value

    def get_opt_str(self, name: str, *, max_len: int) -> str | None:
        """Return a string (see ``get_str``) or ``None`` (absent or null)."""
        if self._obj.get(name) is None:
            return None
        return self.get_str(name, max_len=max_len)

    def get_choice(self, name: str, choices: tuple[T, ...], default: T | Missing = MISSING) -> T:
        """Return the element of ``choices`` equal to the field's string value."""
        value = self._get(name, default)
        if isinstance(value, str) and value in choices:
            return choices[choices.index(value)]
        raise self._fail(name, "one of " + ", ".join(f'"{c}"' for c in choices))

    def get_id(self, name: str = "id") -> UtteranceId:
        """Return an utterance id: 1–64 characters of ``[A-Za-z0-9._:-]``."""
        value = self._get(name, MISSING)
        if not isinstance(value, str) or not _ID_PATTERN.fullmatch(value):
            raise self._fail(name, "1-64 characters of A-Z a-z 0-9 . _ : -")
        return UtteranceId(value)

    def get_opt_id(self, name: str = "id") -> UtteranceId | None:
        """Return an utterance id or ``None`` (absent or null)."""
        if self._obj.get(name) is None:
            return None
        return self.get_id(name)

    def get_bytes(self, name: str) -> bytes:
        """Return binary data: a msgpack ``bin`` value, or a base64 string (JSON)."""
        value = self._get(name, MISSING)
        if isinstance(value, bytes):
            return value
        if isinstance(value, str):
            try:
                return base64.b64decode(value.encode("ascii"), validate=True)
            except (UnicodeEncodeError, binascii.Error):
                pass
        raise self._fail(name, "binary data (msgpack bin, or a base64 string)")

    def get_map(self, name: str) -> Fields | None:
        """Return a reader over a nested map, or ``None`` when the field is absent."""
        if name not in self._obj:
            return None
        value = self._obj[name]
        if not isinstance(value, dict):
            raise self._fail(name, "a map")
        return Fields(value, f"{self._where}.{name}", id=self.id)

    def get_opt_map(self, name: str) -> Fields | None:
        """Return a reader over a nested map, or ``None`` (absent or null)."""
        if self._obj.get(name) is None:
            return None
        return self.get_map(name)

    def get_list(self, name: str) -> list[object]:
        """Return a list (a msgpack array / JSON array)."""
        value = self._get(name, MISSING)
        if not isinstance(value, list):
            raise self._fail(name, "a list")
        return value

    def get_str_list(self, name: str, *, max_len: int) -> tuple[str, ...]:
        """Return a list of strings (see ``get_str``) as a tuple."""
        strings: list[str] = []
        for item in self.get_list(name):
            if not isinstance(item, str) or len(item) > max_len or not _is_unicode(item):
                raise self._fail(name, f"a list of strings of at most {max_len} characters")
            strings.append(item)
        return tuple(strings)

    def get_map_list(self, name: str) -> list[Fields]:
        """Return a reader over each map of a list of maps."""
        readers: list[Fields] = []
        for n, item in enumerate(self.get_list(name)):
            if not isinstance(item, dict):
                raise self._fail(name, "a list of maps")
            readers.append(Fields(item, f"{self._where}.{name}[{n}]", id=self.id))
        return readers


def _is_unicode(text: str) -> bool:
    """Return whether ``text`` encodes to UTF-8 (JSON ``\\ud800`` escapes do not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
