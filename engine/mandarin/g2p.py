"""Normalized Chinese -> words with pinyin -> the Baker voice's symbols.

The steps:

1. jieba cuts the text into words; pypinyin reads each word with its phrase dictionary, so
   polyphones follow the word (银行 hang2, 行走 xing2).
2. Neutral tones pypinyin misses are set (朋友 you5, 妈妈 ma5); erhua (一会儿) becomes the
   syllable before it plus ``er5`` with no break, as the Baker labels write it.
3. Tone sandhi (see :mod:`._sandhi`).
4. Short Latin words are spelled with Chinese letter names (:data:`LETTER_PINYIN`); longer
   ones are dropped with a warning (the language splitter routes them to an English voice).
5. Breaks: ``#0`` between syllables, ``#3`` at commas and other pauses inside a
   sentence; ``sil`` opens and closes the sentence and ``eos`` ends it. The Baker labels
   also mark prosodic words (``#1``) and phrases (``#2``), but the shipped model is
   understood better with ``#0`` in their place, as its own inference code writes them
   (measured in docs/performance.md).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import jieba
from pypinyin import Style, lazy_pinyin
from pypinyin.constants import PHRASES_DICT

from ._mapper import load_baker_mapper
from ._sandhi import sandhi_bu_yi, sandhi_third_across, sandhi_third_in_word

__all__ = [
    "LETTER_PINYIN",
    "MAX_SPELLED_LETTERS",
    "Word",
    "syllable_symbols",
    "to_symbols",
    "to_words",
]

jieba.setLogLevel(logging.WARNING)

MAX_SPELLED_LETTERS: Final = 4
"""Latin words up to this long are spelled letter by letter (and all-caps ones up to 6)."""
_MAX_ACRONYM: Final = 6

LETTER_PINYIN: Final[dict[str, tuple[str, ...]]] = {
    "A": ("ei1",),
    "B": ("bi4",),
    "C": ("xi1",),
    "D": ("di4",),
    "E": ("yi4",),
    "F": ("ai2", "fu5"),
    "G": ("ji4",),
    "H": ("ai2", "qi1"),
    "I": ("ai4",),
    "J": ("jie4",),
    "K": ("kai4",),
    "L": ("ai2", "luo5"),
    "M": ("ai2", "mu5"),
    "N": ("en1",),
    "O": ("ou1",),
    "P": ("pi1",),
    "Q": ("qiu1",),
    "R": ("a4", "er5"),
    "S": ("ai2", "si1"),
    "T": ("ti4",),
    "U": ("you1",),
    "V": ("wei1",),
    "W": ("da2", "bu5", "liu5"),
    "X": ("ai2", "ke4", "si1"),
    "Y": ("wai1",),
    "Z": ("zei4",),
}
"""How a Chinese speaker names each Latin letter, in Baker syllables (GG -> ji4 ji4)."""

_PAUSE_BREAK: Final = {"、": 2, " ": 2} | dict.fromkeys("，,：:；;—…", 3)
_PARTICLES: Final = frozenset("的了吗呢吧啊着过们地得么呀啦嘛哦哇呗")
_MAX_PROSODIC_WORD: Final = 4
_NEUTRAL_SECOND: Final = frozenset(
    "朋友 东西 先生 明白 意思 衣服 事情 知道 喜欢 告诉 时候 地方 漂亮 休息 认识 关系 清楚"
    " 舒服 麻烦 客气 豆腐 窗户 耳朵 眼睛 脑袋 钥匙 名字 月亮 商量 打扮 打听 收拾 热闹 凉快"
    " 聪明 糊涂 结实 厉害 姑娘 丈夫 师傅 萝卜 亲戚 扫帚 云彩 队伍 便宜 笑话 头发 指甲 买卖"
    " 困难 消息 规矩 生意 部分 主意 学生 玻璃 晚上 早上 牌子 日子 孩子".split()
)
"""Common words whose second syllable is neutral in standard speech and in pypinyin is not."""
_REDUPLICATED_NEUTRAL: Final = frozenset("妈爸哥姐弟妹爷奶叔婶姑舅姥宝娃星谢看听想试")
_NOT_ERHUA: Final = frozenset(
    "女儿 儿儿 婴儿 幼儿 孤儿 健儿 男儿 胎儿 少儿 混血儿 新生儿 宠儿 患儿 孩儿 犬儿 鱼儿 花儿"
    " 猫儿 狗儿 鸟儿 雏儿 倒儿".split()
)
"""Words ending in 儿 read with a full er2 (花儿 is said both ways; the full one is clearer)."""
_DEI_BEFORE: Final = frozenset("我 你 他 她 它 咱 您 大家 就 还 也 都 必须 总 可 真".split())
_MEASURE_END: Final = frozenset("块片亩这那")

_TONE3_RE: Final = re.compile(r"^[a-zv]+[1-5]$")
_LATIN_RE: Final = re.compile(r"[A-Za-z]+")
_HAN_RE: Final = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")
_FALLBACK_FINALS: Final = {"n": "en", "ng": "en", "m": "mu", "hm": "hen", "hng": "heng"}


@dataclass(slots=True)
class Word:
    """One word of a sentence with its reading."""

    text: str
    """The word as written: Han characters or Latin letters."""
    syllables: list[str]
    """TONE3 pinyin after sandhi, one per Han character (an erhua 儿 is ``er5``)."""
    erhua: bool = False
    """The last syllable is an erhua ``er5`` joined to the one before it without a break."""
    spelled: bool = False
    """A Latin word read letter by letter."""
    break_after: int = 1
    """Prosodic break after the word: 0 (same prosodic word), 1, 2 or 3."""
    tail: str = ""
    """Punctuation or space written after the word."""


def syllable_symbols(syllable: str) -> tuple[str, str] | None:
    """Split TONE3 pinyin into the Baker (initial, final+tone) pair: ``wen2`` -> (^, uen2).

    Returns:
        None if the voice has no symbols for the syllable.
    """
    if not _TONE3_RE.match(syllable):
        return None
    base, tone = syllable[:-1], syllable[-1]
    pinyin_dict = load_baker_mapper().pinyin_dict
    pair = pinyin_dict.get(base)
    if pair is None and base in _FALLBACK_FINALS:
        pair = pinyin_dict.get(_FALLBACK_FINALS[base])
    if pair is None:
        return None
    return pair[0], pair[1] + tone


def _pinyin(text: str) -> list[str]:
    """pypinyin TONE3 readings of Han characters, one per character."""
    readings = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True)
    if len(readings) == len(text):
        return readings
    return [(_pinyin_char(ch)) for ch in text]


def _pinyin_char(ch: str) -> str:
    return (lazy_pinyin(ch, style=Style.TONE3, neutral_tone_with_five=True) or [""])[0]


def _read_run(tokens: Sequence[str]) -> list[list[str]]:
    """Readings of consecutive Han tokens (jieba words), one list per token.

    pypinyin reads the whole run, so its phrase dictionary sees across jieba's cuts
    (还|钱 is the phrase 还钱 huan2); a jieba word that pypinyin also lists as a phrase keeps
    that phrase's reading; 得 and 地 alone get the reading their neighbours imply.
    """
    run = _pinyin("".join(tokens))
    out: list[list[str]] = []
    start = 0
    for i, token in enumerate(tokens):
        readings = run[start : start + len(token)]
        start += len(token)
        if len(token) >= 2 and token in PHRASES_DICT:
            readings = _pinyin(token)
        elif token in ("得", "地") and i > 0:
            nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
            readings = [_particle(token, tokens[i - 1], nxt, readings[0])]
        elif token not in PHRASES_DICT:
            readings = _particles_inside(token, readings)
            if token[0] == "地" and i > 0 and len(tokens[i - 1]) >= 2:
                readings[0] = _particle("地", tokens[i - 1], token[1:], readings[0])  # 高兴|地说
        if token in _NEUTRAL_SECOND or (
            len(token) == 2 and token[0] == token[1] and token[0] in _REDUPLICATED_NEUTRAL
        ):
            readings[1] = readings[1][:-1] + "5"
        out.append(readings)
    return out


def _particles_inside(token: str, readings: list[str]) -> list[str]:
    """得 inside a word jieba keeps whole (说得对) is de5; so is 地 ending one (开心地)."""
    out = list(readings)
    for k, ch in enumerate(token):
        if (ch == "得" and k > 0) or (ch == "地" and k == len(token) - 1 and k >= 2):
            out[k] = "de5"
    return out


def _particle(token: str, prev: str, nxt: str, reading: str) -> str:
    """Read 得 or 地 standing alone between the words ``prev`` and ``nxt``.

    得 before 了 is de2 (得了第一), after a pronoun or modal word dei3 (你得去), after a verb
    de5 (跑得快). 地 after a word of two or more syllables and before another word is the
    adverbial de5 (高兴地说), but not after a measure word (这块地).
    """
    if token == "得":
        if nxt.startswith("了"):
            return "de2"
        if prev in _DEI_BEFORE or prev.endswith("们"):
            return "dei3"
        return "de5"
    if len(prev) >= 2 and nxt and prev[-1] not in _MEASURE_END:
        return "de5"
    return reading


def _spell(token: str) -> Word:
    syllables = [s for letter in token.upper() for s in LETTER_PINYIN[letter]]
    return Word(text=token, syllables=syllables, spelled=True)


def _tokens(text: str) -> list[str]:
    """jieba tokens, each Han-only, Latin-only or a single other character."""
    out: list[str] = []
    for token in jieba.lcut(text, HMM=True):
        for piece in re.findall(r"[\u3400-\u4dbf\u4e00-\u9fff]+|[A-Za-z]+|.", token, re.S):
            out.append(piece)
    return out


def _attach_tail(words: list[Word], tail: str) -> None:
    if not words:
        return
    last = words[-1]
    last.tail += tail
    pause = _PAUSE_BREAK.get(" " if tail.isspace() else tail, 3)
    last.break_after = max(last.break_after, pause)


def to_words(text: str) -> tuple[list[Word], list[str]]:
    """Read one normalized sentence.

    Args:
        text: Output of :func:`.normalize.normalize` (Han, Latin, spaces, punctuation).

    Returns:
        The words with readings and prosodic breaks, and warnings for what was dropped.
    """
    words: list[Word] = []
    warnings: list[str] = []
    tokens = _tokens(text)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if _HAN_RE.fullmatch(token):
            end = i
            while end < len(tokens) and _HAN_RE.fullmatch(tokens[end]):
                end += 1
            for han, readings in zip(tokens[i:end], _read_run(tokens[i:end]), strict=True):
                word = _han_word(han, readings, warnings)
                if word is not None:
                    words.append(word)
            i = end
            continue
        if _LATIN_RE.fullmatch(token):
            acronym = token.isupper() and len(token) <= _MAX_ACRONYM
            if len(token) <= MAX_SPELLED_LETTERS or acronym:
                words.append(_spell(token))
            else:
                warnings.append(f"dropped English word {token!r} (too long to spell)")
        elif token in _PAUSE_BREAK or token.isspace() or token in "。！？!?.":
            _attach_tail(words, token)
        else:
            warnings.append(f"dropped character {token!r}")
        i += 1
    _group_prosodic_words(words)
    _apply_sandhi(words)
    return words, warnings


def _han_word(token: str, readings: list[str], warnings: list[str]) -> Word | None:
    kept_text: list[str] = []
    kept: list[str] = []
    for ch, reading in zip(token, readings, strict=True):
        if syllable_symbols(reading) is None:
            warnings.append(f"dropped {ch!r}: no reading {reading!r} in the voice")
            continue
        kept_text.append(ch)
        kept.append(reading)
    if not kept:
        return None
    text = "".join(kept_text)
    erhua = len(kept) >= 2 and text.endswith("儿") and not any(text.endswith(w) for w in _NOT_ERHUA)
    if erhua:
        kept[-1] = "er5"
    return Word(text=text, syllables=kept, erhua=erhua)


def _group_prosodic_words(words: list[Word]) -> None:
    """Set ``break_after`` to 0 where neighbouring words form one prosodic word.

    A particle (的, 了, 吗...) leans on the word before it; another one-syllable word leans on
    the word after it (很|重要 -> 很重要), or before it when that is not possible. A prosodic
    word stays within :data:`_MAX_PROSODIC_WORD` syllables and never crosses a pause.
    """
    size = 0
    for i, word in enumerate(words):
        prev = words[i - 1] if i > 0 else None
        joinable = prev is not None and prev.break_after == 1
        joinable = joinable and not word.spelled and not (prev is not None and prev.spelled)
        fits = size + len(word.syllables) <= _MAX_PROSODIC_WORD
        if prev is not None and joinable and fits and _leans_back(prev, word, words, i):
            prev.break_after = 0
            size += len(word.syllables)
        else:
            size = len(word.syllables)


def _leans_back(prev: Word, word: Word, words: list[Word], i: int) -> bool:
    """Whether ``word`` joins the prosodic word that ``prev`` ends."""
    if len(word.syllables) == 1 and word.text in _PARTICLES:
        return True
    if len(prev.syllables) == 1 and prev.text not in _PARTICLES:
        return True  # a one-syllable word leans forward
    nxt = words[i + 1] if i + 1 < len(words) else None
    forward_possible = nxt is not None and word.break_after == 1 and len(nxt.syllables) <= 2
    return len(word.syllables) == 1 and not forward_possible


def _apply_sandhi(words: list[Word]) -> None:
    for word in words:
        if not word.spelled:
            sandhi_third_in_word(word.text, word.syllables)
    phrase: list[Word] = []
    for word in words:
        phrase.append(word)
        if word.break_after >= 2:
            _phrase_sandhi(phrase)
            phrase = []
    _phrase_sandhi(phrase)


def _phrase_sandhi(phrase: Sequence[Word]) -> None:
    han = [w for w in phrase if not w.spelled]
    chars = [ch for w in han for ch in w.text]
    pinyin = [p for w in han for p in w.syllables]
    sandhi_bu_yi(chars, pinyin)
    start = 0
    for w in han:
        w.syllables[:] = pinyin[start : start + len(w.syllables)]
        start += len(w.syllables)
    for left, right in zip(phrase, phrase[1:], strict=False):
        if left.break_after == 0 and not left.spelled and not right.spelled:
            sandhi_third_across(left.syllables, right.syllables)


_BREAK_SYMBOL: Final = ("#0", "#0", "#0", "#3")
"""The symbol for each break level (see the module docstring, step 5)."""


def to_symbols(words: Sequence[Word]) -> tuple[list[str], list[int]]:
    """Lay words out as the model's input: ``sil`` syllables-with-breaks ``sil eos``.

    Args:
        words: Words of one sentence, as :func:`to_words` returns them.

    Returns:
        The symbols and, per symbol, the index of its word (-1 for ``sil``, ``#k``, ``eos``).
    """
    symbols = ["sil"]
    owner = [-1]
    for index, word in enumerate(words):
        for k, syllable in enumerate(word.syllables):
            erhua_tail = word.erhua and k == len(word.syllables) - 1
            if erhua_tail:
                symbols.append("er5")
                owner.append(index)
                continue
            if k > 0:
                symbols.append("#0")
                owner.append(-1)
            pair = syllable_symbols(syllable)
            assert pair is not None, syllable  # to_words keeps only readable syllables
            symbols.extend(pair)
            owner.extend((index, index))
        if index + 1 < len(words):
            symbols.append(_BREAK_SYMBOL[word.break_after])
            owner.append(-1)
    symbols += ["sil", "eos"]
    owner += [-1, -1]
    return symbols, owner
