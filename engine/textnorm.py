"""Normalization of what people type in live chat, before espeak-ng reads it.

Only what espeak-ng gets wrong is rewritten: it already reads plain numbers,
ordinals, decimals, "50%", "3:30pm", "&", "@" and most shorthand ("lol",
"omg") well. Everything dropped is reported in ``warnings``, never silently.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Final, TypeAlias
from urllib.parse import urlsplit

__all__ = ["clean_unicode", "count_scripts", "drop_foreign", "rewrite"]


_Replacement: TypeAlias = str | Callable[[re.Match[str]], str]

_LINE_BREAKS: Final = "\n\r\v\f\x85\u2028\u2029"
_FRACTIONS: Final = {"½": "a half", "¼": "a quarter", "¾": "three quarters", "⅓": "a third"}
_FRACTION_RE: Final = re.compile(r"(\d?)\s*([½¼¾⅓])")
_PUNCTUATION_MAP: Final = str.maketrans(
    {"。": ". ", "、": ", ", "・": " ", "•": " ", "·": " ", "⁄": "/"}
    | dict.fromkeys("「」『』【】〈〉《》〔〕", " ")
)
_TAG_RE: Final = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")

_PHONETIC_BLOCKS: Final = ((0x0250, 0x02FF), (0x1D00, 0x1DBF))
_SCRIPT_NAMES: Final = {"CJK": "CJK", "IDEOGRAPHIC": "CJK", "KATAKANA-HIRAGANA": "Katakana"}

_MD_LINK_RE: Final = re.compile(r"!?\[([^\]\n]*)\]\(([^)\s]*)\)")
_URL_RE: Final = re.compile(r"\b(?:https?://|www\.)[^\s<>\"]+", re.IGNORECASE)
_URL_TAIL_RE: Final = re.compile(r"[.,!?;:)\]'\"]*$")
_EMOTICON_RE: Final = re.compile(
    r"(?<![\w:;=<>^])(?:"
    r"[:;=][-'^o]?[)(\]\[|/\\*]+"  # :) :( ;] :-/ :*
    r"|[:;=][-'^o]?[DPpOoSs3](?!\w)"  # :D :P :o :3
    r"|</?3+"  # <3 </3
    r"|\^[_.-]?\^|[Tt]_[Tt]|[oO0]_[oO0]|-_-|>[_.]<|;_;"
    r"|[xX][dD]+(?!\w)"  # xD XD
    r")"
)
_MD_LINE_RE: Final = re.compile(r"^[ \t]*(?:#{1,6}[ \t]+|>+[ \t]?|[-*+][ \t]+)", re.MULTILINE)
_TIMES_RE: Final = re.compile(r"(?<=\d)\s*\*\s*(?=\d)")
_SNAKE_RE: Final = re.compile(r"(?<=[^\W_])_+(?=[^\W_])")
_MARKUP_RE: Final = re.compile(r"[*_`]+|~~")
_APPROX_RE: Final = re.compile(r"~\s?(?=\d)")
_KEPT_SYMBOLS: Final = frozenset("©®°")
_LINE_BREAK_RE: Final = re.compile(r"[ \t]*\n\s*")

_CURRENCIES: Final = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "€": ("euro", "euros", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "¥": ("yen", "yen", "", ""),
    "₹": ("rupee", "rupees", "paisa", "paise"),
    "₩": ("won", "won", "", ""),
}
_MAGNITUDES: Final = {"k": "thousand", "m": "million", "b": "billion", "bn": "billion"} | {
    word: word for word in ("thousand", "million", "billion", "trillion")
}
_AMOUNT: Final = r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?"
_MAGNITUDE: Final = r"(?:\s?(k|m|bn|b|thousand|million|billion|trillion)\b)?"
_MONEY_BEFORE_RE: Final = re.compile(r"([$€£¥₹₩])\s?" + _AMOUNT + _MAGNITUDE, re.IGNORECASE)
_MONEY_AFTER_RE: Final = re.compile(_AMOUNT + _MAGNITUDE + r"\s?([€£¥₹₩])", re.IGNORECASE)
_DECADES: Final = (
    "- - twenties thirties forties fifties sixties seventies eighties nineties".split()
)
_DECADE_RE: Final = re.compile(r"(?<![\w.,'’])['’]?(\d\d)?(\d)0['’]?s\b")
_TIME_RE: Final = re.compile(
    r"\b([01]?\d|2[0-3]):([0-5]\d)(?![\d:])(\s?[ap]\.?m\b\.?)?", re.IGNORECASE
)
_CAMEL_RE: Final = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")

# fmt: off
_ABBREVIATIONS: Final = {
    "dr": "Doctor", "mr": "Mister", "mrs": "Missus", "ms": "Miz", "prof": "Professor",
    "mt": "Mount", "jr": "Junior", "sr": "Senior", "vs": "versus", "etc": "et cetera",
    "approx": "approximately", "e.g": "for example", "i.e": "that is",
}
# fmt: on
_TITLES: Final = frozenset({"Doctor", "Mister", "Missus", "Miz", "Professor", "Mount", "Saint"})
_ABBREVIATION_RE: Final = re.compile(
    r"\b(dr|mrs|mr|ms|prof|mt|jr|sr|vs|etc|approx|e\.g|i\.e|st)\.(?!\w)|\b(vs)\b", re.IGNORECASE
)
_CAPITAL_NEXT_RE: Final = re.compile(r"\s+[A-Z]")
_END_RE: Final = re.compile(r"\s*$")

# fmt: off
_SHORTHAND: Final = {
    "afaik": "as far as I know", "b4": "before", "brb": "be right back", "btw": "by the way",
    "gg": "good game", "ggwp": "good game, well played", "gl": "good luck", "gtg": "got to go",
    "hbu": "how about you", "hf": "have fun", "idk": "I don't know", "ikr": "I know, right",
    "ily": "I love you", "imho": "in my humble opinion", "imo": "in my opinion",
    "irl": "in real life", "jk": "just kidding", "ngl": "not gonna lie", "np": "no problem",
    "nvm": "never mind", "omw": "on my way", "pls": "please", "plz": "please", "ppl": "people",
    "rn": "right now", "smh": "shaking my head", "tbh": "to be honest", "thx": "thanks",
    "ttyl": "talk to you later", "ty": "thank you", "tysm": "thank you so much", "ur": "your",
    "wp": "well played", "wyd": "what are you doing", "xoxo": "hugs and kisses",
}
# fmt: on
_SHORTHAND_RE: Final = re.compile(
    r"\b(" + "|".join(sorted(_SHORTHAND, key=len, reverse=True)) + r")\b", re.IGNORECASE
)

_PUNCT_RUN_RE: Final = re.compile(r"(?:\s*[!?.,;:]){2,}")
_SPACED_PUNCT_RE: Final = re.compile(r"\s+([!?.,;:])")
_LEADING_PUNCT_RE: Final = re.compile(r"^[\s!?.,;:]+")
_GLUED_PUNCT_RE: Final = re.compile(r"([!?,;])(?=[^\W\d_])")
_WORD_NEXT_RE: Final = re.compile(r"\s*\w")
_LETTER_RUN_RE: Final = re.compile(r"([^\W\d_])\1{3,}")
_SPACES_RE: Final = re.compile(r"\s+")


def clean_unicode(text: str, warnings: list[str]) -> str:
    """NFKC, HTML entities and tags, invisible characters, native digits, CJK punctuation."""
    text = _FRACTION_RE.sub(_say_fraction, text)
    text = unicodedata.normalize("NFKC", html.unescape(text))
    text = _TAG_RE.sub(" ", text).translate(_PUNCTUATION_MAP)
    out: list[str] = []
    unknown = 0
    for ch in text:
        category = unicodedata.category(ch)
        if ch.isspace():
            out.append("\n" if ch in _LINE_BREAKS else " ")
        elif category in ("Cc", "Cf"):
            continue  # controls, zero-width and bidi marks, emoji joiners: nothing to say
        elif category in ("Co", "Cn", "Cs"):
            unknown += 1
        else:
            out.append(str(unicodedata.decimal(ch)) if category == "Nd" else ch)
    if unknown:
        warnings.append(f"skipped {unknown} unassigned or private-use characters")
    return "".join(out)


def _say_fraction(match: re.Match[str]) -> str:
    whole, fraction = match.groups()
    return f"{whole} and {_FRACTIONS[fraction]}" if whole else f" {_FRACTIONS[fraction]}"


def _script_of(ch: str) -> str:
    """The script of a letter, from its Unicode name (``"Latin"``, ``"CJK"``, ``"Cyrillic"``)."""
    if any(low <= ord(ch) <= high for low, high in _PHONETIC_BLOCKS):
        return "IPA"
    name = unicodedata.name(ch, "")
    if name.startswith("LATIN "):
        return "Latin"
    first = name.split(" ", 1)[0]
    return _SCRIPT_NAMES.get(first, first.title() or "unnamed")


def count_scripts(text: str) -> Counter[str]:
    return Counter(_script_of(ch) for ch in text if unicodedata.category(ch)[0] == "L")


def drop_foreign(text: str, foreign: Mapping[str, int], warnings: list[str]) -> str:
    """Drop non-Latin letters (reported), and combining marks not on a kept Latin letter."""
    out: list[str] = []
    skipped: list[str] = []
    last = ""  # what became of the previous character: "skip", "latin" or "keep"
    for ch in text:
        category = unicodedata.category(ch)[0]
        if category == "L" and _script_of(ch) != "Latin":
            if skipped and last != "skip":
                skipped.append(" ")
            skipped.append(ch)
            out.append(" ")
            last = "skip"
        elif category == "M" and last != "latin":
            if last == "skip":  # a vowel sign or accent of a dropped letter
                skipped.append(ch)
            # else: emoji variation selectors, keycaps, stray marks: nothing to say
        else:
            out.append(ch)
            last = "latin" if category in ("L", "M") else "keep"
    if foreign:
        count, names = sum(foreign.values()), ", ".join(foreign)
        sample = _shorten("".join(skipped))
        warnings.append(f"skipped {count} characters in an unsupported script ({names}): {sample}")
    return "".join(out)


def rewrite(text: str, warnings: list[str]) -> str:
    """Everything after Unicode clean-up and script filtering, in order."""
    text = _URL_RE.sub(_say_url, _MD_LINK_RE.sub(lambda m: m.group(1) or m.group(2), text))
    text = _drop_emoticons(text, warnings)
    text = _strip_markup(text)
    text = _drop_symbols(text, warnings)
    text = _LINE_BREAK_RE.sub(lambda m: _line_break(m.string, m.start()), text)
    for pattern, replacement in _EXPANSIONS:
        text = pattern.sub(replacement, text)
    return _tidy(text)


def _say_url(match: re.Match[str]) -> str:
    """A URL is read as its domain: ``https://www.example.com/x`` -> ``example dot com``."""
    url = match.group()
    tail = _URL_TAIL_RE.search(url)
    core, end = (url[: tail.start()], tail.group()) if tail else (url, "")
    try:
        host = urlsplit(core if "://" in core else f"http://{core}").hostname or ""
    except ValueError:
        host = ""
    parts = [part for part in host.removeprefix("www.").split(".") if part]
    return f" {' dot '.join(parts) or 'a link'}{end} "


def _drop_emoticons(text: str, warnings: list[str]) -> str:
    found = dict.fromkeys(_EMOTICON_RE.findall(text))
    if not found:
        return text
    warnings.append(f"dropped emoticons: {_shorten(' '.join(found))}")
    return _EMOTICON_RE.sub(" ", text)


def _strip_markup(text: str) -> str:
    """Markdown headings, quotes, bullets, emphasis and code marks; ``5*3`` -> ``5 times 3``."""
    text = _MD_LINE_RE.sub("", text)
    text = _TIMES_RE.sub(" times ", text)
    text = _MARKUP_RE.sub("", _SNAKE_RE.sub(" ", text))
    return _APPROX_RE.sub("about ", text).replace("~", " ")


def _is_emoji(ch: str) -> bool:
    code = ord(ch)
    return (
        code >= 0x1F000
        or 0x2300 <= code <= 0x23FF
        or 0x2600 <= code <= 0x27BF
        or 0x2B00 <= code <= 0x2BFF
        or code in (0x3030, 0x303D, 0x3297, 0x3299)
    )


def _is_pictograph(ch: str) -> bool:
    """Symbols espeak-ng would read by name ("right arrow"), but the ones it reads well."""
    if ch in _KEPT_SYMBOLS:
        return False
    return unicodedata.category(ch) in ("So", "Sk") or 0x2190 <= ord(ch) <= 0x21FF  # arrows


def _drop_symbols(text: str, warnings: list[str]) -> str:
    """Drop pictographs so espeak-ng never reads "grinning face" or "black heart suit"."""
    emoji: dict[str, None] = {}
    symbols: dict[str, None] = {}
    out: list[str] = []
    for ch in text:
        if _is_pictograph(ch):
            (emoji if _is_emoji(ch) else symbols)[ch] = None
            out.append(" ")
        else:
            out.append(ch)
    if emoji:
        warnings.append(f"dropped emoji: {_shorten(' '.join(emoji))}")
    if symbols:
        warnings.append(f"dropped symbols: {_shorten(' '.join(symbols))}")
    return "".join(out)


def _line_break(text: str, at: int) -> str:
    """A line break ends a sentence (lists, headings, chat lines) unless punctuation does."""
    before = text[at - 1] if at else ""
    return ". " if before.isalnum() or before in ")\"'" else " "


def _say_hashtag(match: re.Match[str]) -> str:
    return f"hashtag {_CAMEL_RE.sub(' ', match.group(1))}"


def _say_money(match: re.Match[str]) -> str:
    """``$3.50`` -> ``3 dollars 50 cents``; ``$1.5M`` -> ``1.5 million dollars``."""
    symbol, whole, fraction, magnitude = _money_parts(match)
    one, many, cent, cents = _CURRENCIES[symbol]
    number = f"{whole}.{fraction}" if fraction else whole
    if magnitude:
        return f" {number} {_MAGNITUDES[magnitude.lower()]} {many} "
    if not fraction or not cent or len(fraction) > 2:
        return f" {number} {one if number == '1' else many} "
    major, minor = int(whole.replace(",", "")), int(fraction.ljust(2, "0"))
    parts = [f"{whole} {one if major == 1 else many}"] if major or not minor else []
    if minor:
        parts.append(f"{minor} {cent if minor == 1 else cents}")
    return f" {' '.join(parts)} "


def _money_parts(match: re.Match[str]) -> tuple[str, str, str | None, str | None]:
    if match.re is _MONEY_BEFORE_RE:
        symbol, whole, fraction, magnitude = match.groups()
    else:
        whole, fraction, magnitude, symbol = match.groups()
    return symbol, whole, fraction, magnitude


def _say_decade(match: re.Match[str]) -> str:
    """``1990s`` -> ``19 nineties``, ``'80s`` -> ``eighties``, ``2000s`` -> ``2 thousands``."""
    century, tens = match.group(1), int(match.group(2))
    if tens > 1:
        return f"{century} {_DECADES[tens]}" if century else _DECADES[tens]
    if not century or tens == 1:
        return match.group()
    hundreds = int(century)
    return f"{hundreds // 10} thousands" if hundreds % 10 == 0 else f"{century} hundreds"


def _say_time(match: re.Match[str]) -> str:
    """``10:00`` -> ``10 o'clock``, ``9:05`` -> ``9 oh 5``; espeak-ng reads other times well."""
    hour, minute, meridiem = int(match.group(1)), match.group(2), match.group(3) or ""
    if minute == "00":
        if meridiem:
            return f"{hour}{meridiem}"
        return f"{hour} o'clock" if hour <= 12 else f"{hour} hundred"
    if minute.startswith("0"):
        return f"{hour} oh {minute[1]}{meridiem}"
    return match.group()


def _say_abbreviation(match: re.Match[str]) -> str:
    """``Dr.`` -> ``Doctor``; keeps the full stop when the abbreviation ends a sentence."""
    key = (match.group(1) or match.group(2)).lower()
    text, end = match.string, match.end()
    capital_next = _CAPITAL_NEXT_RE.match(text, end) is not None
    if key == "st":
        word = "Saint" if capital_next else "Street"
    else:
        word = _ABBREVIATIONS[key]
    at_end = _END_RE.match(text, end) is not None
    has_stop = match.group(1) is not None
    ends_sentence = has_stop and (at_end or (capital_next and word not in _TITLES))
    return f"{word}." if ends_sentence else word


def _say_shorthand(match: re.Match[str]) -> str:
    token = match.group()
    if not (token.islower() or token.isupper()):  # "Ty", "Gl": probably a name
        return token
    return _SHORTHAND[token.lower()]


_EXPANSIONS: Final[tuple[tuple[re.Pattern[str], _Replacement], ...]] = (
    (re.compile(r"(?<!\S)#(\d+)"), r"number \1"),
    (re.compile(r"(?<![\w&])#([^\W\d_]\w*)"), _say_hashtag),
    (re.compile(r"(?<![\w.])@(?=\w)"), "at "),
    (re.compile(r"\s*&\s*"), " and "),
    (_MONEY_BEFORE_RE, _say_money),
    (_MONEY_AFTER_RE, _say_money),
    (re.compile(r"\b(\d+(?:\.\d+)?)[kK]\b"), r"\1 thousand"),
    (_DECADE_RE, _say_decade),
    (_TIME_RE, _say_time),
    # "2-3", "1990-2000"; not dates ("2024-01-05") nor phone numbers ("555-1234").
    (re.compile(r"(?<![\w.,-])(?!\d{3}-\d{4})(\d{1,4})[-–](\d{1,4})(?![\w,-]|\.\d)"), r"\1 to \2"),
    (re.compile(r"\b(\d+) ?x ?(\d+)\b"), r"\1 by \2"),
    (re.compile(r"\b(\d+)x\b"), r"\1 times"),
    (re.compile(r"\bno\.\s*(?=\d)", re.IGNORECASE), "number "),
    (re.compile(r"\bw/o\b", re.IGNORECASE), "without"),
    (re.compile(r"\bw/(?=\s)", re.IGNORECASE), "with"),
    (_ABBREVIATION_RE, _say_abbreviation),
    (_SHORTHAND_RE, _say_shorthand),
)


def _tidy(text: str) -> str:
    """Collapse ``!!!``/``?!?``/``......``, re-attach stray punctuation, cap letter runs."""
    text = _PUNCT_RUN_RE.sub(_collapse_punctuation, _SPACES_RE.sub(" ", text))
    text = _LEADING_PUNCT_RE.sub("", _SPACED_PUNCT_RE.sub(r"\1", text))
    text = _GLUED_PUNCT_RE.sub(r"\1 ", text)
    text = _LETTER_RUN_RE.sub(r"\1\1\1", text)
    return _SPACES_RE.sub(" ", text).strip()


def _collapse_punctuation(match: re.Match[str]) -> str:
    marks = "".join(match.group().split())
    for mark in "?!":
        if mark in marks:
            return mark
    if "." not in marks:
        return marks[0]
    if set(marks) == {"."} and _WORD_NEXT_RE.match(match.string, match.end()):
        # An ellipsis before more words is a pause. Left as "...", espeak-ng ends the clause
        # with no terminator and Piper glues the two clauses' phonemes together.
        return ","
    return "."


def _shorten(sample: str, limit: int = 40) -> str:
    return sample if len(sample) <= limit else sample[: limit - 1] + "…"
