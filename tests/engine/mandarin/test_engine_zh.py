"""The Mandarin voice as users hear it, through the engine interface (real model, real judge)."""

from __future__ import annotations

import numpy as np
import pytest

from voxlive.engine.chunking import ChunkSchedule
from voxlive.engine.emotion import EMOTIONS
from voxlive.engine.interface import Controls, TextError
from voxlive.engine.mandarin.engine import MandarinEngine
from voxlive.engine.measure import measure
from voxlive.engine.offline import speak, speak_many

from ...judge_zh import cer, transcribe_zh
from .sentences_zh import SENTENCES_ZH

pytestmark = pytest.mark.slow

RATE = 24000


def test_chinese_is_understood_across_numbers_dates_and_danmaku(mandarin, whisper_zh) -> None:
    texts = [mandarin.prepare(t) for t in SENTENCES_ZH]
    spoken = speak_many(mandarin, texts, [Controls()] * len(texts))
    heard = [transcribe_zh(whisper_zh, s.audio, RATE) for s in spoken]
    assert len(SENTENCES_ZH) >= 20
    assert cer(SENTENCES_ZH, heard) <= 0.06, list(zip(SENTENCES_ZH, heard))


def test_every_emotion_stays_intelligible(mandarin, whisper_zh) -> None:
    texts = [mandarin.prepare(t) for t in SENTENCES_ZH]
    for emotion in EMOTIONS:
        if emotion == "neutral":
            continue  # the test above
        controls = [Controls(emotion=emotion, intensity=1.0)] * len(texts)
        spoken = speak_many(mandarin, texts, controls)
        heard = [transcribe_zh(whisper_zh, s.audio, RATE) for s in spoken]
        assert cer(SENTENCES_ZH, heard) <= 0.12, (emotion, heard)


def _measures(engine: MandarinEngine, controls: Controls) -> dict[str, float]:
    texts = [engine.prepare(t) for t in SENTENCES_ZH[:6]]
    tones = [sum(p[-1:] in "12345" for s in t.sentences for p in s.phonemes) for t in texts]
    spoken = speak_many(engine, texts, [controls] * len(texts))
    ms = [measure(s.audio, RATE, n) for s, n in zip(spoken, tones)]
    keys = ("f0_mean_st", "f0_range_st", "rate_phones_s", "rms_db")
    return {k: float(np.mean([getattr(m, k) for m in ms])) for k in keys}


def test_emotions_move_pitch_loudness_and_rate_the_stated_way(mandarin) -> None:
    neutral = _measures(mandarin, Controls())

    def change(emotion: str) -> dict[str, float]:
        moved = _measures(mandarin, Controls(emotion=emotion, intensity=1.0))
        return {k: moved[k] - neutral[k] for k in neutral}

    happy, sad, angry, calm = (change(e) for e in ("happy", "sad", "angry", "calm"))
    assert happy["f0_mean_st"] >= 1.0 and happy["rate_phones_s"] > 0
    assert sad["f0_mean_st"] <= -1.5 and sad["rate_phones_s"] < 0 and sad["rms_db"] < -3
    assert sad["f0_range_st"] < 0
    assert angry["rms_db"] >= 3.0
    assert calm["f0_range_st"] < 0 and calm["rate_phones_s"] < 0


def test_pitch_and_volume_controls_move_the_voice(mandarin) -> None:
    neutral = _measures(mandarin, Controls())
    up = _measures(mandarin, Controls(pitch_st=2.0, volume_db=-6.0))
    assert 1.0 <= up["f0_mean_st"] - neutral["f0_mean_st"] <= 3.0
    assert -7.5 <= up["rms_db"] - neutral["rms_db"] <= -4.5


def test_batched_equals_alone_and_streamed_equals_whole(mandarin) -> None:
    texts = [mandarin.prepare(t) for t in ("欢迎来到直播间！", "感谢老板送的火箭，老板大气！")]
    together = speak_many(mandarin, texts, [Controls(), Controls(emotion="happy")])
    alone = [
        speak_many(mandarin, [t], [c])[0]
        for t, c in zip(texts, (Controls(), Controls(emotion="happy")))
    ]
    for a, b in zip(together, alone):
        # Float summation order differs in a padded batch; the vocoder rounds its band
        # signals to int8, so a rare sample may move by one step of that grid (1/127).
        assert len(a.audio) == len(b.audio)
        diff = np.abs(a.audio - b.audio)
        assert diff.max() <= 2 / 127 and np.mean(diff > 1e-4) < 0.01
    whole = MandarinEngine(mandarin.model, ChunkSchedule(first_frames=4096, max_frames=4096))
    once = speak_many(whole, texts, [Controls(), Controls(emotion="happy")])
    for a, b in zip(together, once):
        assert len(a.audio) == len(b.audio)
        diff = np.abs(a.audio - b.audio)
        assert diff.max() <= 2 / 127 and np.mean(diff > 1e-5) < 0.01


def test_marks_name_the_words_in_order_inside_the_audio(mandarin) -> None:
    spoken = speak(mandarin, "欢迎来到直播间！感谢老板送的火箭。", Controls())
    words = [w for m in spoken.marks for w in m.words]
    assert [w.text for w in words][:3] == ["欢迎", "来到", "直播间"]
    starts = [w.start for w in words]
    assert starts == sorted(starts) and words[-1].end <= len(spoken.audio)
    assert all(w.end > w.start for w in words)


def test_text_with_nothing_chinese_to_say_is_refused_with_a_reason(mandarin) -> None:
    with pytest.raises(TextError) as err:
        mandarin.prepare("😂😂 (╯°□°）╯")
    assert err.value.code == "empty_text" and "emoji" in str(err.value)


def test_a_registered_voice_moves_the_chinese_voices_pitch_toward_its_own(voice, mandarin) -> None:
    from voxlive.engine.multivoice import MultiVoiceEngine
    from voxlive.engine.pitch import yin_median
    from voxlive.engine.transform import VoiceTransform
    from voxlive.engine.vits import VitsEngine

    english = VitsEngine(voice)
    both = MultiVoiceEngine([english, mandarin], default="en")
    # A reference pitched 1 st above the Chinese voice's own centre: fitted against the
    # English voice, its transform says "so many semitones above the English centre".
    shift = 12 * np.log2(mandarin.center_hz / english.center_hz) + 1.0
    lower = VoiceTransform(f0_shift_st=shift - 4.0)
    text = "欢迎来到直播间，感谢大家的支持。"
    plain = speak(both, text, Controls(), "zh").audio
    moved = speak(both, text, Controls(voice=lower), "zh").audio
    change = 12 * np.log2(yin_median(moved, both.sample_rate) / yin_median(plain, both.sample_rate))
    assert -4.0 <= change <= -1.5, change
