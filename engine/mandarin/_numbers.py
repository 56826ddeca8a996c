"""Chinese readings of numbers: cardinals, decimals and digit-by-digit strings."""

from __future__ import annotations

from typing import Final

__all__ = ["read_cardinal", "read_decimal", "read_digits"]

_DIGITS: Final = "零一二三四五六七八九"
_SMALL_UNITS: Final = ("", "十", "百", "千")
_BIG_UNITS: Final = ("", "万", "亿", "万亿")
_MAX_CARDINAL_DIGITS: Final = 16
"""Longer integers are read digit by digit (nobody says 万亿亿)."""


def read_digits(digits: str, *, phone: bool = False) -> str:
    """Read ``digits`` one by one: ``"2024"`` -> ``"二零二四"``.

    Args:
        digits: ASCII digits (anything else is kept as it is).
        phone: Read 1 as 幺, the way phone numbers and codes are read aloud.
    """
    table = dict(zip("0123456789", _DIGITS, strict=True))
    if phone:
        table["1"] = "幺"
    return "".join(table.get(ch, ch) for ch in digits)


def _read_group(group: int, *, leading: bool) -> str:
    """Read 0 < ``group`` < 10000; ``leading``: no higher group precedes it."""
    out: list[str] = []
    zero_pending = False
    for power in (3, 2, 1, 0):
        digit = group // 10**power % 10
        if digit == 0:
            zero_pending = bool(out)
            continue
        if zero_pending:
            out.append("零")
            zero_pending = False
        if digit == 1 and power == 1 and leading and not out:
            out.append("十")  # 12 -> 十二, not 一十二
            continue
        word = _DIGITS[digit]
        if digit == 2 and power >= 2 and leading and not out:
            word = "两"  # 两百, 两千 as spoken at the head of a number
        out.append(word + _SMALL_UNITS[power])
    return "".join(out)


def read_cardinal(number: str) -> str:
    """Read a non-negative integer written in ASCII digits: ``"10000"`` -> ``"一万"``.

    Integers longer than sixteen digits are read digit by digit.
    """
    digits = number.lstrip("0")
    if not digits:
        return "零"
    if len(digits) > _MAX_CARDINAL_DIGITS:
        return read_digits(number)
    value = int(digits)
    groups: list[int] = []
    while value:
        groups.append(value % 10000)
        value //= 10000
    out: list[str] = []
    zero_pending = False
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            zero_pending = True
            continue
        leading = not out
        if out and (zero_pending or group < 1000):
            out.append("零")
        zero_pending = False
        word = _read_group(group, leading=leading)
        if leading and group == 2 and index > 0:
            word = "两"  # 两万, 两亿
        out.append(word + _BIG_UNITS[index])
    return "".join(out)


def read_decimal(number: str) -> str:
    """Read ``"3.14"`` as ``"三点一四"`` (integer part as a cardinal, fraction digit by digit)."""
    whole, _, fraction = number.partition(".")
    spoken = read_cardinal(whole or "0")
    return spoken + ("点" + read_digits(fraction) if fraction else "")
