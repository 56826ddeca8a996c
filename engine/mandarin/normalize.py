"""Normalization of Chinese live-chat text (danmaku) into readable Chinese.

Everything that is not read as Chinese characters becomes Chinese characters or is dropped:
numbers, dates, clock times, money, percentages, units, phone numbers, chat slang
(``yyds``, ``awsl``, ``666``, ``23333``). Full-width forms are folded (NFKC) and Traditional
characters become Simplified. Latin letters and sentence punctuation are kept: the
grapheme-to-pinyin step spells short Latin words and turns punctuation into pauses.

Nothing is dropped silently: emoji, kaomoji, links and unreadable scripts are reported in
:attr:`Normalized.warnings`, as are readings that change the text beyond plain
normalization (slang, shortened repeats).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import zhconv

from ._numbers import read_cardinal, read_decimal, read_digits

__all__ = ["MAX_REPEAT", "Normalized", "is_slang", "normalize"]

MAX_REPEAT: Final = 4
"""Longest run of one repeated character kept (``哈哈哈哈哈哈`` -> ``哈哈哈哈``)."""

_LAUGH_THREES: Final = 3
"""``23333...`` is read ``二三三三``: at most this many threes."""


@dataclass(frozen=True, slots=True)
class Normalized:
    """Text ready for grapheme-to-pinyin conversion."""

    text: str
    """Han characters, short Latin words, spaces and sentence punctuation."""
    warnings: list[str] = field(default_factory=list)
    """What was dropped or read beyond plain normalization, one line each."""


_KEPT_PUNCTUATION: Final = frozenset("，。！？；：、,.!?;:…—")
_SILENT: Final = frozenset("\"'“”‘’()（）《》〈〉「」『』【】[]{}<>~～·・_-=*/\\|`^")
"""Quotes, brackets and marks removed without a warning: they are never read aloud."""

_MEASURE: Final = "个位次本只天件条张种点人周句块元岁斤次台部辆首杯碗瓶"
"""Measure words after which 2 is read 两 and a repeated-digit string is a quantity."""
_QUANTITY_NEXT: Final = _MEASURE + "年月日号分秒万亿千百%元"

_URL_RE: Final = re.compile(r"(?:https?://|www\.)[^\s\u4e00-\u9fff]+", re.IGNORECASE)
_KAOMOJI_RE: Final = re.compile(
    r"[oO٩ヽ\\╰┌ᕕ]?[(][^()\u4e00-\u9fffA-Za-z0-9\s]{1,15}[)][ノﾉ/╯ง۶ᕗ┐oO彡~]*"
    r"|┻━┻|┬─┬"
    r"|\^[_\-.ω]?\^|[Tt][_.][Tt]|[-=][_.][-=]|>[_.]<|[oO0]_[oO0]"
    r"|(?<![A-Za-z])(?:QAQ|QwQ|TAT|TwT|orz|OTZ|XD|xD)(?![A-Za-z])"
    r"|(?<![A-Za-z0-9])[:;=][-']?[)(DPpO|/\\](?![A-Za-z0-9])"
)
_SLANG: Final = {
    "awsl": "啊我死了",
    "yyds": "永远的神",
    "xswl": "笑死我了",
    "nb": "牛",
    "nbcs": "牛",
    "u1s1": "有一说一",
    "yysy": "有一说一",
    "dbq": "对不起",
    "xdm": "兄弟们",
    "tql": "太强了",
    "bhys": "不好意思",
    "nsdd": "你说得对",
    "zqsg": "真情实感",
    "plmm": "漂亮妹妹",
    "mdzz": "真是的",
    "gkd": "搞快点",
}
"""Chat abbreviations read as what they stand for (``nb`` gets the clean reading 牛)."""
_SLANG_RE: Final = re.compile(
    r"(?<![A-Za-z0-9])("
    + "|".join(sorted(_SLANG, key=len, reverse=True))
    + r"|h{3,})(?![A-Za-z0-9])",
    re.IGNORECASE,
)


def is_slang(word: str) -> bool:
    """Whether ``word`` is chat slang the normalizer reads as Chinese (``yyds``, ``hhh``)."""
    return _SLANG_RE.fullmatch(word) is not None


_CURRENCY: Final = {"¥": "元", "$": "美元", "€": "欧元", "£": "英镑", "₩": "韩元", "₹": "卢比"}
_UNITS: Final = {
    "km/h": "公里每小时",
    "km": "公里",
    "kg": "公斤",
    "cm": "厘米",
    "mm": "毫米",
    "ml": "毫升",
    "mg": "毫克",
    "°C": "摄氏度",
    "°F": "华氏度",
    "°": "度",
    "m": "米",
    "g": "克",
    "L": "升",
    "h": "小时",
    "min": "分钟",
    "s": "秒",
}
_NUM: Final = r"\d+(?:\.\d+)?"
_UNIT_RE: Final = re.compile(
    rf"(-?{_NUM})\s*("
    + "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
    + r")(?![A-Za-z])"
)
_PHONE_RE: Final = re.compile(
    r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d(?:[- ]?\d{4}){2}(?!\d)"
    r"|(?<!\d)0\d{2,3}-\d{7,8}(?!\d)|(?<!\d)\d{3}-\d{3,4}-\d{4}(?!\d)"
)
_DATE_RE: Final = re.compile(r"(?<!\d)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?![\d.])")
_YEAR_RE: Final = re.compile(r"(?<!\d)(\d{4})(?=\s*年)")
_TIME_RE: Final = re.compile(r"(?<!\d)(\d{1,2}):(\d{2})(?::(\d{2}))?(?!\d)")
_MONEY_RE: Final = re.compile(r"([¥$€£₩₹])\s*(" + _NUM + ")")
_PERCENT_RE: Final = re.compile(r"(-?" + _NUM + r")\s*%")
_LAUGH_RE: Final = re.compile(r"(?<![\d.])2(3{3,})(?!\d|\.\d)")
_REPEAT_DIGITS_RE: Final = re.compile(r"(?<![\d.])(\d)\1{2,}(?!\d|\.\d)")
_RANGE_RE: Final = re.compile(r"(?<=\d)\s*[~\-]\s*(?=\d)")
_SCORE_RE: Final = re.compile(r"(?<=\d):(?=\d)")
_ARITH_RE: Final = re.compile(r"(?<=\d)\s*([+=])\s*(?=\d)")
_NEGATIVE_RE: Final = re.compile(r"(?<![\w.])-(" + _NUM + ")")
_NUMBER_RE: Final = re.compile(r"\d+\.\d+|\d+")
_LONG_DIGITS: Final = 7
"""Digit strings at least this long (IDs, codes, room numbers) are read digit by digit."""
_RUN_RE: Final = re.compile(r"(.)\1{" + str(MAX_REPEAT) + r",}")


@functools.cache
def _load_zhconv() -> None:
    """Load zhconv's table by its path: its default loader leaves the file open."""
    folder = Path(zhconv.zhconv.__file__).parent
    zhconv.loaddict(str(folder / "zhcdict.json"))


def _to_simplified(text: str) -> str:
    _load_zhconv()
    return str(zhconv.convert(text, "zh-cn"))


def _is_emoji(ch: str) -> bool:
    code = ord(ch)
    return (
        0x1F000 <= code <= 0x1FAFF
        or 0x2600 <= code <= 0x27BF
        or 0x2B00 <= code <= 0x2BFF
        or code in (0x200D, 0xFE0F, 0xFE0E, 0x20E3)
        or unicodedata.category(ch) == "So"
    )


def _is_han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"


def _drop_kaomoji(text: str, notes: list[str]) -> str:
    def drop(match: re.Match[str]) -> str:
        notes.append(f"dropped kaomoji {match.group(0)!r}")
        return " "

    def drop_link(match: re.Match[str]) -> str:
        notes.append(f"dropped link {match.group(0)!r}")
        return " "

    text = _URL_RE.sub(drop_link, text)
    return _KAOMOJI_RE.sub(drop, text)


def _drop_emoji(text: str, notes: list[str]) -> str:
    out: list[str] = []
    dropped: list[str] = []
    for ch in text:
        if _is_emoji(ch):
            dropped.append(ch)
            continue
        if dropped:
            notes.append(f"dropped emoji {''.join(dropped)!r}")
            dropped = []
            out.append(" ")
        out.append(ch)
    if dropped:
        notes.append(f"dropped emoji {''.join(dropped)!r}")
    return "".join(out)


def _read_slang(text: str, notes: list[str]) -> str:
    def read(match: re.Match[str]) -> str:
        word = match.group(1)
        reading = _SLANG.get(word.lower(), "哈哈哈")
        notes.append(f"read slang {word!r} as {reading!r}")
        return reading

    return _SLANG_RE.sub(read, text)


def _quantity_follows(text: str, end: int) -> bool:
    rest = text[end:].lstrip()
    return bool(rest) and rest[0] in _QUANTITY_NEXT


def _read_danmaku_numbers(text: str, notes: list[str]) -> str:
    def laugh(match: re.Match[str]) -> str:
        if _quantity_follows(text, match.end()):
            return match.group(0)
        notes.append(f"read {match.group(0)!r} as laughter")
        return "二" + "三" * min(len(match.group(1)), _LAUGH_THREES)

    def repeated(match: re.Match[str]) -> str:
        digits = match.group(0)
        if _quantity_follows(text, match.end()):
            return digits
        if len(digits) > MAX_REPEAT:
            notes.append(f"shortened repeated {digits!r} to {MAX_REPEAT} digits")
        return read_digits(digits[:MAX_REPEAT])

    text = _LAUGH_RE.sub(laugh, text)
    return _REPEAT_DIGITS_RE.sub(repeated, text)


def _read_time(match: re.Match[str]) -> str:
    hour, minute, second = int(match.group(1)), int(match.group(2)), match.group(3)
    if hour > 24 or minute > 59 or (second is not None and int(second) > 59):
        return match.group(0).replace(":", "比")  # a score, 3:2 -> 三比二
    spoken = ("两" if hour == 2 else read_cardinal(str(hour))) + "点"
    if minute:
        spoken += ("零" if minute < 10 else "") + read_cardinal(str(minute)) + "分"
    if second is not None and int(second):
        spoken += read_cardinal(second) + "秒"
    return spoken


def _read_date(match: re.Match[str]) -> str:
    year, month, day = match.groups()
    if not (1 <= int(month) <= 12 and 1 <= int(day) <= 31):
        return match.group(0)
    return f"{read_digits(year)}年{read_cardinal(month)}月{read_cardinal(day)}日"


def _read_amount(amount: str) -> str:
    negative = amount.startswith("-")
    amount = amount.lstrip("-")
    spoken = read_decimal(amount) if "." in amount else read_cardinal(amount)
    if spoken == "二":
        spoken = "两"
    return ("负" if negative else "") + spoken


def _read_unit(match: re.Match[str]) -> str:
    amount, unit = match.groups()
    if unit == "°C" and amount.startswith("-"):
        return "零下" + _read_amount(amount[1:]) + _UNITS[unit]
    return _read_amount(amount) + _UNITS[unit]


def _read_integer(match: re.Match[str]) -> str:
    number = match.group(0)
    if "." in number:
        return read_decimal(number)
    if len(number) >= _LONG_DIGITS or (number.startswith("0") and len(number) > 1):
        return read_digits(number)
    text, end = match.string, match.end()
    if number == "2" and end < len(text) and text[end] in _MEASURE:
        return "两"
    return read_cardinal(number)


def _read_numbers(text: str) -> str:
    text = _PHONE_RE.sub(lambda m: read_digits(re.sub(r"\D", "", m.group(0)), phone=True), text)
    text = _DATE_RE.sub(_read_date, text)
    text = _YEAR_RE.sub(lambda m: read_digits(m.group(1)), text)
    text = _TIME_RE.sub(_read_time, text)
    text = _MONEY_RE.sub(lambda m: _read_amount(m.group(2)) + _CURRENCY[m.group(1)], text)
    text = _PERCENT_RE.sub(lambda m: "百分之" + _read_amount(m.group(1)), text)
    text = _UNIT_RE.sub(_read_unit, text)
    text = _RANGE_RE.sub("到", text)
    text = _SCORE_RE.sub("比", text)
    text = _ARITH_RE.sub(lambda m: "加" if m.group(1) == "+" else "等于", text)
    text = _NEGATIVE_RE.sub(lambda m: "负" + _read_amount(m.group(1)), text)
    return _NUMBER_RE.sub(_read_integer, text)


def _cap_repeats(text: str, notes: list[str]) -> str:
    def cap(match: re.Match[str]) -> str:
        ch = match.group(1)
        if ch.isspace():
            return ch
        if ch in _KEPT_PUNCTUATION or ch in _SILENT:
            return ch
        notes.append(f"shortened repeated {ch!r} ({len(match.group(0))} -> {MAX_REPEAT})")
        return ch * MAX_REPEAT

    return _RUN_RE.sub(cap, text)


def _keep_readable(text: str, notes: list[str]) -> str:
    out: list[str] = []
    dropped: list[str] = []
    for ch in text:
        if _is_han(ch) or ch in _KEPT_PUNCTUATION or ("a" <= ch.lower() <= "z" and ch.isascii()):
            out.append(ch)
        elif ch.isspace() or ch in _SILENT:
            out.append(" ")
        else:
            dropped.append(ch)
            out.append(" ")
    if dropped:
        notes.append(f"dropped unreadable characters {''.join(dict.fromkeys(dropped))!r}")
    return re.sub(r"\s+", " ", "".join(out)).strip()


def normalize(text: str) -> Normalized:
    """Rewrite chat text as readable Simplified Chinese.

    Args:
        text: Any string.

    Returns:
        The readable text and the warnings. Never raises.
    """
    notes: list[str] = []
    text = unicodedata.normalize("NFKC", text.replace("℃", "°C").replace("￥", "¥"))
    text = _to_simplified(text)
    text = _drop_kaomoji(text, notes)
    text = _read_slang(text, notes)
    text = _read_danmaku_numbers(text, notes)
    text = _read_numbers(text)
    text = _drop_emoji(text, notes)
    text = _cap_repeats(text, notes)
    text = _keep_readable(text, notes)
    return Normalized(text=text, warnings=notes)
