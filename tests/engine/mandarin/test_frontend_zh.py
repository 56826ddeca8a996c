"""The Mandarin front end: chat text -> Baker symbols, read the way a listener expects."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxlive.engine.mandarin._mapper import load_baker_mapper
from voxlive.engine.mandarin.frontend import MAX_SENTENCE_SYMBOLS, MandarinFrontend, ZhSentence
from voxlive.engine.mandarin.g2p import LETTER_PINYIN, syllable_symbols, to_words
from voxlive.engine.mandarin.normalize import normalize

from .polyphones import POLYPHONES

FRONTEND = MandarinFrontend()
PAUSES = {"sil", "#0", "#1", "#2", "#3", "eos"}


def is_han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"


def reading(text: str) -> list[str]:
    """Syllables of every word, in order."""
    words, _ = to_words(normalize(text).text)
    return [s for w in words for s in w.syllables]


def only(text: str) -> ZhSentence:
    result = FRONTEND.prepare(text)
    assert len(result.sentences) == 1, result
    return result.sentences[0]


# --- normalization --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "spoken"),
    [
        ("我有123个苹果", "我有一百二十三个苹果"),
        ("10000人", "一万人"),
        ("20000", "两万"),
        ("101", "一百零一"),
        ("3.14", "三点一四"),
        ("-5", "负五"),
        ("2个人", "两个人"),
        ("2024年", "二零二四年"),
        ("3月5日", "三月五日"),
        ("2024-03-05", "二零二四年三月五日"),
        ("2024/3/5", "二零二四年三月五日"),
        ("12:30开始", "十二点三十分开始"),
        ("8:05", "八点零五分"),
        ("下午3点", "下午三点"),
        ("¥50", "五十元"),
        ("￥50", "五十元"),
        ("50元", "五十元"),
        ("$5", "五美元"),
        ("50%", "百分之五十"),
        ("１２３", "一百二十三"),
        ("13812345678", "幺三八幺二三四五六七八"),
        ("房间号12345678", "房间号一二三四五六七八"),
        ("007", "零零七"),
        ("跑了5km", "跑了五公里"),
        ("60kg", "六十公斤"),
        ("180cm", "一百八十厘米"),
        ("今天-5℃", "今天零下五摄氏度"),
        ("比分3:2", "比分三比二"),
        ("5~10个", "五到十个"),
        ("我說話", "我说话"),
        ("ＯＫ", "OK"),
        ("666", "六六六"),
        ("23333333", "二三三三"),
        ("哈哈哈哈哈哈哈哈", "哈哈哈哈"),
        ("yyds", "永远的神"),
        ("AWSL", "啊我死了"),
        ("xswl", "笑死我了"),
        ("太nb了", "太牛了"),
    ],
)
def test_normalizer_reads_chat_text_as_chinese(raw: str, spoken: str) -> None:
    assert normalize(raw).text == spoken


def test_a_repeated_digit_quantity_is_read_as_a_number() -> None:
    assert normalize("666个").text == "六百六十六个"
    assert normalize("666.").text == "六六六."
    assert normalize("666.5").text == "六百六十六点五"


@pytest.mark.parametrize(
    ("raw", "dropped"),
    [
        ("(╯°□°）╯气死了", "(╯°□°)╯"),
        ("ヽ(✿ﾟ▽ﾟ)ノ好耶", "ヽ("),
        ("^_^谢谢", "^_^"),
        ("😂😂笑死", "😂😂"),
        ("看 https://example.com/x 这个", "https://example.com/x"),
    ],
)
def test_normalizer_drops_emoji_and_kaomoji_and_names_them(raw: str, dropped: str) -> None:
    result = normalize(raw)
    assert dropped in " ".join(result.warnings)
    assert all(is_han(ch) for ch in result.text.replace(" ", ""))


def test_normalizer_reports_shortened_repeats_and_slang() -> None:
    assert any("哈" in w for w in normalize("哈哈哈哈哈哈哈").warnings)
    assert any("yyds" in w for w in normalize("yyds").warnings)


@given(st.text())
def test_normalizer_never_raises(text: str) -> None:
    assert isinstance(normalize(text).text, str)


# --- readings -------------------------------------------------------------------------------

KNOWN_WRONG = {"他背着书包"}


@pytest.mark.parametrize(
    ("sentence", "char", "expected"),
    [
        pytest.param(*case, marks=pytest.mark.xfail(reason="pypinyin reads 背着 bei4"))
        if case[0] in KNOWN_WRONG
        else case
        for case in POLYPHONES
    ],
)
def test_polyphones_are_read_by_context(sentence: str, char: str, expected: str) -> None:
    assert reading(sentence)[sentence.index(char)] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("你好", ["ni2", "hao3"]),
        ("一个", ["yi2", "ge4"]),
        ("不对", ["bu2", "dui4"]),
        ("不好", ["bu4", "hao3"]),
        ("一天", ["yi4", "tian1"]),
        ("第一", ["di4", "yi1"]),
        ("看一看", ["kan4", "yi5", "kan4"]),
        ("十一", ["shi2", "yi1"]),
        ("一九九八年", ["yi1", "jiu2", "jiu3", "ba1", "nian2"]),
        ("展览馆", ["zhan2", "lan2", "guan3"]),
        ("小老虎", ["xiao3", "lao2", "hu3"]),
        ("我们的朋友", ["wo3", "men5", "de5", "peng2", "you5"]),
        ("妈妈", ["ma1", "ma5"]),
    ],
)
def test_tone_sandhi_and_neutral_tones(text: str, expected: list[str]) -> None:
    assert reading(text) == expected


def test_erhua_joins_the_syllable_before_without_a_break() -> None:
    sentence = only("等一会儿")
    assert "h uei4 er5" in " ".join(sentence.symbols)


def test_sentence_is_laid_out_as_the_baker_model_was_trained() -> None:
    sentence = only("你好，世界")
    assert sentence.symbols == ("sil n i2 #0 h ao3 #3 sh iii4 #0 j ie4 sil eos".split())
    mapper = load_baker_mapper()
    assert sentence.ids == [mapper.symbol_to_id[s] for s in sentence.symbols]
    assert sentence.words == ["你好", "世界"]
    assert sentence.word_of_symbol == [-1, 0, 0, -1, 0, 0, -1, 1, 1, -1, 1, 1, -1, -1]


def test_zero_initial_and_special_finals_follow_the_voice_table() -> None:
    assert syllable_symbols("wen2") == ("^", "uen2")
    assert syllable_symbols("yu3") == ("^", "v3")
    assert syllable_symbols("lv4") == ("l", "v4")
    assert syllable_symbols("zhi1") == ("zh", "iii1")
    assert syllable_symbols("ci2") == ("c", "ii2")
    assert syllable_symbols("er2") == ("^", "er2")
    assert syllable_symbols("xyz1") is None


def test_short_latin_words_are_spelled_with_chinese_letter_names() -> None:
    sentence = only("GG了")
    assert sentence.words[0] == "GG"
    assert sentence.symbols[:6] == ["sil", "j", "i4", "#0", "j", "i4"]


def test_every_letter_name_is_readable_by_the_voice() -> None:
    for letter, syllables in LETTER_PINYIN.items():
        assert all(syllable_symbols(s) is not None for s in syllables), letter


def test_long_latin_words_are_dropped_with_a_warning() -> None:
    result = FRONTEND.prepare("今天的stream很好")
    assert any("stream" in w for w in result.warnings)
    assert "".join(s.text for s in result.sentences).startswith("今天的")


def test_text_is_cut_into_sentences() -> None:
    result = FRONTEND.prepare("你好！今天天气不错。我们去公园玩吧？\n下次见")
    assert [s.words[0] for s in result.sentences] == ["你好", "今天天气", "我们", "下次"]


def test_long_sentences_are_cut_at_commas_below_the_cap() -> None:
    clause = "今天我们一起去公园散步然后吃饭"
    result = FRONTEND.prepare("，".join([clause] * 8))
    assert len(result.sentences) > 1
    assert all(len(s.symbols) <= MAX_SENTENCE_SYMBOLS for s in result.sentences)
    assert all(s.text.endswith(("饭", ",")) for s in result.sentences)
    assert sum(len(s.text.replace(",", "")) for s in result.sentences) == 8 * len(clause)


def test_nothing_speakable_gives_no_sentences_and_says_what_was_dropped() -> None:
    result = FRONTEND.prepare("😂😂 (╯°□°）╯")
    assert result.sentences == []
    assert any("😂" in w for w in result.warnings)
    assert any("nothing speakable" in w for w in result.warnings)


def test_blank_text_gives_no_sentences_and_no_warning() -> None:
    result = FRONTEND.prepare("  \n ")
    assert result.sentences == []
    assert result.warnings == []


# --- properties -----------------------------------------------------------------------------

HAN = st.sampled_from("的一是不了人我在有他这中大来上个们到说国和地也子时道出而要于就下得可你")
CHAT = st.text(
    alphabet=st.one_of(
        HAN,
        st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
        st.sampled_from("0123456789.%:-¥$年月日点个，。！？、 \nABCGOKabs😂(╯°□°）^_哈儿"),
    ),
    max_size=80,
)


def check_sentence(sentence: ZhSentence, symbol_to_id: dict[str, int]) -> None:
    assert sentence.symbols[0] == "sil" and sentence.symbols[-2:] == ["sil", "eos"]
    assert len(sentence.symbols) <= MAX_SENTENCE_SYMBOLS
    assert sentence.ids == [symbol_to_id[s] for s in sentence.symbols]
    assert len(sentence.word_of_symbol) == len(sentence.symbols)
    for symbol, owner in zip(sentence.symbols, sentence.word_of_symbol, strict=True):
        assert (owner == -1) == (symbol in PAUSES)
        assert owner < len(sentence.words)
    for index, word in enumerate(sentence.words):
        toned = [
            s
            for s, o in zip(sentence.symbols, sentence.word_of_symbol, strict=True)
            if o == index and s[-1].isdigit()
        ]
        if all(is_han(ch) for ch in word):
            assert len(toned) == len(word)  # one syllable per character, erhua 儿 included


@settings(max_examples=150, deadline=None)
@given(st.one_of(CHAT, st.text(max_size=60)))
def test_prepare_never_raises_and_accounts_for_every_character(text: str) -> None:
    result = FRONTEND.prepare(text)
    symbol_to_id = load_baker_mapper().symbol_to_id
    for sentence in result.sentences:
        check_sentence(sentence, symbol_to_id)
    spoken = Counter(ch for s in result.sentences for w in s.words for ch in w if is_han(ch))
    written = Counter(ch for line in text.splitlines() for ch in normalize(line).text if is_han(ch))
    missing = written - spoken
    warned = " ".join(result.warnings)
    assert all(ch in warned for ch in missing), (missing, result.warnings)
    if text.strip() and not result.sentences:
        assert result.warnings
