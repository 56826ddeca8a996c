"""Mixed Chinese/English text through both real voices: every run is spoken and heard."""

from __future__ import annotations

import numpy as np
import pytest

from voxlive.engine.interface import Controls
from voxlive.engine.measure import measure
from voxlive.engine.multivoice import AUTO, MultiVoiceEngine
from voxlive.engine.offline import speak
from voxlive.engine.vits import VitsEngine

from ...judge import transcribe, wer
from ...judge_zh import cer, transcribe_zh

pytestmark = pytest.mark.slow

MIXED = [
    "Thank you 谢谢 for the gift!",
    "Welcome back everyone, 欢迎大家来到直播间, let's go!",
    "今天的直播太棒了，thank you so much everybody.",
    "我们下一局再来，good luck and have fun!",
]


@pytest.fixture(scope="module")
def bilingual(voice, mandarin) -> MultiVoiceEngine:
    return MultiVoiceEngine([VitsEngine(voice), mandarin], default="en")


def test_every_run_of_mixed_text_is_spoken_by_its_voice_and_heard(
    bilingual, whisper, whisper_zh
) -> None:
    en_refs, en_heard, zh_refs, zh_heard = [], [], [], []
    for text in MIXED:
        prepared = bilingual.prepare(text, AUTO)
        assert {s.voice for s in prepared.sentences} == {"en", "zh"}
        spoken = speak(bilingual, text, Controls(seed=1), AUTO)
        for sentence, audio in zip(prepared.sentences, spoken.sentences, strict=True):
            assert len(audio) > 0.2 * bilingual.sample_rate, sentence.text
            if sentence.voice == "en":
                en_refs.append(sentence.text)
                en_heard.append(transcribe(whisper, audio, bilingual.sample_rate))
            else:
                zh_refs.append(sentence.text)
                zh_heard.append(transcribe_zh(whisper_zh, audio, bilingual.sample_rate))
    assert wer(en_refs, en_heard) <= 0.2, list(zip(en_refs, en_heard))
    assert cer(zh_refs, zh_heard) <= 0.15, list(zip(zh_refs, zh_heard))


def test_the_two_voices_play_at_one_level(bilingual) -> None:
    text = "Welcome back everyone, 欢迎大家来到直播间, let's go!"
    prepared = bilingual.prepare(text, AUTO)
    spoken = speak(bilingual, text, Controls(seed=1), AUTO)
    levels: dict[str, list[float]] = {"en": [], "zh": []}
    for sentence, audio in zip(prepared.sentences, spoken.sentences, strict=True):
        levels[sentence.voice].append(measure(audio, bilingual.sample_rate, 10).rms_db)
    assert abs(np.mean(levels["en"]) - np.mean(levels["zh"])) <= 3.0, levels
