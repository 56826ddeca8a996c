"""``voxlive say`` with emotions, intensity, pitch and volume, run in-process on the real voice."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile

from voxlive.cli.parser import main
from voxlive.engine.emotion import EMOTIONS
from voxlive.engine.pitch import yin_median
from voxlive.engine.voice import SynthesisParams, Voice

RATE = 22050


@pytest.fixture
def no_model(monkeypatch) -> None:
    """Fail the test if ``say`` loads the voice (bad flags must be refused before that)."""

    def refuse(*args, **kwargs):
        raise AssertionError("the voice was loaded before the flags were checked")

    monkeypatch.setattr(Voice, "load", classmethod(refuse))


def pcm(path) -> np.ndarray:
    audio, rate = soundfile.read(str(path), dtype="int16")
    assert rate == RATE
    return audio


def as_pcm(audio: np.ndarray) -> np.ndarray:
    """What ``say`` writes for these float samples (16-bit PCM), read back."""
    buf = io.BytesIO()
    scaled = np.clip(np.round(np.asarray(audio, np.float32) * 32767.0), -32768, 32767)
    soundfile.write(buf, scaled.astype(np.int16), RATE, format="WAV", subtype="PCM_16")
    buf.seek(0)
    return soundfile.read(buf, dtype="int16")[0]


@pytest.mark.slow
def test_without_emotion_pitch_or_volume_the_output_is_the_plain_engine(
    tmp_path, shared_voice
) -> None:
    text = "Welcome back, everyone. It is good to see you."
    out = tmp_path / "plain.wav"
    # Unmarked, to compare with the engine (test_watermark_voice.py: say marks by default).
    assert main(["say", text, "-o", str(out), "--seed", "3", "--no-watermark"]) == 0
    (want,) = shared_voice.synthesize_texts([text], SynthesisParams(seed=3))
    assert np.array_equal(pcm(out), as_pcm(want))
    # Neutral by name, at any intensity, with zero pitch/volume: the same samples.
    named = tmp_path / "neutral.wav"
    flags = ["--emotion", "neutral", "--intensity", "1", "--pitch", "0", "--volume", "0"]
    flags.append("--no-watermark")
    assert main(["say", text, "-o", str(named), "--seed", "3", *flags]) == 0
    assert named.read_bytes() == out.read_bytes()


@pytest.mark.slow
def test_file_lines_without_emotion_are_the_plain_engine_batch(tmp_path, shared_voice) -> None:
    lines = ["Hello there.", "A much longer second line, with a pause.", "Bye!"]
    path = tmp_path / "lines.txt"
    path.write_text("\n".join(lines) + "\n")
    outdir = tmp_path / "out"
    flags = ["--seed", "5", "--batch", "2", "--no-watermark"]
    assert main(["say", "-f", str(path), "-o", str(outdir), *flags]) == 0
    # What `say -f` has always done: every line's sentences in one batch, seeds per line.
    params = SynthesisParams(seed=5)
    groups = [
        shared_voice.requests(line, params.offset_seed(n))[0]
        for n, line in enumerate(lines, start=1)
    ]
    want = shared_voice.synthesize_groups(groups, max_batch=2)
    for n, audio in enumerate(want, start=1):
        assert np.array_equal(pcm(outdir / f"{n:04d}.wav"), as_pcm(audio)), n


@pytest.mark.slow
def test_an_emotion_moves_length_and_pitch_the_right_way(tmp_path, shared_voice) -> None:
    text = "Well, I suppose we should head home now, it is getting late."
    paths = {}
    for emotion in ("neutral", "sad", "excited", "伤心"):
        paths[emotion] = tmp_path / f"{emotion}.wav"
        args = ["say", text, "-o", str(paths[emotion]), "--deterministic"]
        assert main([*args, "--emotion", emotion]) == 0
    audio = {name: pcm(path) for name, path in paths.items()}
    assert not np.array_equal(audio["sad"][: len(audio["neutral"])], audio["neutral"])
    assert len(audio["sad"]) > 1.1 * len(audio["neutral"])
    assert len(audio["excited"]) < 0.95 * len(audio["neutral"])
    pitch = {name: yin_median(a / 32768.0, RATE) for name, a in audio.items()}
    assert pitch["sad"] < pitch["neutral"] < pitch["excited"]
    # A Chinese synonym is the same emotion: the very same samples.
    assert np.array_equal(audio["伤心"], audio["sad"])


@pytest.mark.slow
def test_intensity_scales_the_emotion(tmp_path, shared_voice) -> None:
    text = "Thanks for the follow, see you tomorrow."
    lengths = {}
    for k in ("0", "0.5", "1"):
        out = tmp_path / f"{k}.wav"
        args = ["say", text, "-o", str(out), "--deterministic", "--emotion", "sad"]
        assert main([*args, "--intensity", k]) == 0
        lengths[k] = len(pcm(out))
    plain = tmp_path / "plain.wav"
    assert main(["say", text, "-o", str(plain), "--deterministic"]) == 0
    assert lengths["0"] == len(pcm(plain)) < lengths["0.5"] < lengths["1"]


@pytest.mark.slow
def test_pitch_and_volume_flags_move_the_voice(tmp_path, shared_voice) -> None:
    text = "This is a pitch and volume test."
    plain, moved = tmp_path / "plain.wav", tmp_path / "moved.wav"
    assert main(["say", text, "-o", str(plain), "--deterministic"]) == 0
    flags = ["--pitch", "4", "--volume", "-6"]
    assert main(["say", text, "-o", str(moved), "--deterministic", *flags]) == 0
    a, b = pcm(plain) / 32768.0, pcm(moved) / 32768.0
    assert len(a) == len(b)
    assert abs(12 * np.log2(yin_median(b, RATE) / yin_median(a, RATE)) - 4.0) < 1.2
    level = 20 * np.log10(np.sqrt(np.mean(b**2)) / np.sqrt(np.mean(a**2)))
    assert -8.0 < level < -4.0


@pytest.mark.slow
def test_file_lines_take_the_emotion_and_bad_lines_are_still_reported(
    tmp_path, shared_voice, capsys
) -> None:
    path = tmp_path / "lines.txt"
    path.write_text("First line here.\n🎉🎉🎉\nThird line, a little longer.\n")
    plain, sad = tmp_path / "plain", tmp_path / "sad"
    assert main(["say", "-f", str(path), "-o", str(plain), "--deterministic"]) == 1
    capsys.readouterr()
    args = ["say", "-f", str(path), "-o", str(sad), "--deterministic", "--emotion", "sad"]
    assert main(args) == 1
    assert "line 2: empty_text" in capsys.readouterr().err
    assert sorted(p.name for p in sad.iterdir()) == ["0001.wav", "0003.wav"]
    for name in ("0001.wav", "0003.wav"):
        assert len(pcm(sad / name)) > 1.1 * len(pcm(plain / name))


@pytest.mark.slow
def test_a_reference_voice_and_an_emotion_apply_together(tmp_path, shared_voice) -> None:
    from voxlive.engine.transform import VoiceTransform
    from voxlive.engine.world import analyze, apply, synthesize

    long_text = (
        "The old library at the end of the street opens early in the morning. "
        "Inside, the shelves reach all the way to the ceiling."
    )
    (source,) = shared_voice.synthesize_texts([long_text], SynthesisParams(seed=8))
    moved = synthesize(apply(analyze(source, RATE), VoiceTransform(f0_shift_st=5)))
    ref = tmp_path / "ref.wav"
    soundfile.write(str(ref), moved, RATE, subtype="PCM_16")
    text = "Welcome back to the stream, everyone."
    cloned, excited = tmp_path / "cloned.wav", tmp_path / "excited.wav"
    base = ["say", text, "--voice", str(ref), "--deterministic"]
    assert main([*base, "-o", str(cloned)]) == 0
    assert main([*base, "-o", str(excited), "--emotion", "excited", "--intensity", "1"]) == 0
    a, b = pcm(cloned) / 32768.0, pcm(excited) / 32768.0
    assert len(b) < 0.95 * len(a)
    assert 12 * np.log2(yin_median(b, RATE) / yin_median(a, RATE)) > 2.0


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--emotion", "bored"], "--emotion: unknown emotion 'bored'; supported: neutral"),
        (["--intensity", "1.5"], "--intensity must be in [0, 1]"),
        (["--intensity", "-0.1"], "--intensity must be in [0, 1]"),
        (["--pitch", "13"], "--pitch must be in [-12, 12] semitones"),
        (["--volume", "-31"], "--volume must be in [-30, 12] dB"),
        (["--volume", "nan"], "--volume must be in [-30, 12] dB"),
        (["--emotion", "excited", "--speed", "4"], "speed 4 with emotion 'excited'"),
        (["--demo-grid", "grid", "--speed", "0.3"], "speed 0.3 with emotion 'sad'"),
    ],
)
def test_bad_controls_exit_2_with_one_line_before_loading_the_voice(
    tmp_path, no_model, monkeypatch, capsys, flags, expected
) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "o.wav"
    output = [] if "--demo-grid" in flags else ["-o", str(out)]
    assert main(["say", "Hi.", *output, *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("voxlive: ") and err.count("\n") == 1
    assert expected in err
    assert not out.exists()


def test_an_unknown_emotion_lists_every_supported_one(tmp_path, no_model, capsys) -> None:
    assert main(["say", "Hi.", "-o", str(tmp_path / "o.wav"), "--emotion", "joyous"]) == 2
    err = capsys.readouterr().err
    assert all(name in err for name in EMOTIONS)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["say", "Hi."], "-o/--output is required"),
        (["say", "-f", "lines.txt"], "-o/--output is required"),
        (["say", "-o", "o.wav"], "say needs TEXT, -f FILE or --demo-grid OUTDIR"),
        (["say", "-f", "lines.txt", "--demo-grid", "grid"], "cannot be combined"),
        (["say", "Hi.", "--demo-grid", "grid", "-o", "o.wav"], "drop -o"),
        (["say", "--demo-grid", "grid", "--emotion", "sad"], "drop --emotion"),
    ],
)
def test_source_and_output_mistakes_are_usage_errors(
    tmp_path, no_model, monkeypatch, capsys, args, expected
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("voxlive: ") and expected in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_chinese_text_is_spoken_by_the_mandarin_voice(tmp_path, shared_voice, whisper_zh) -> None:
    from ..judge_zh import cer, transcribe_zh

    out = tmp_path / "zh.wav"
    text = "欢迎来到直播间！"
    assert main(["say", text, "-o", str(out), "--emotion", "开心"]) == 0
    audio = pcm(out) / 32768.0
    assert soundfile.info(out).samplerate == RATE and len(audio) > RATE
    assert cer([text], [transcribe_zh(whisper_zh, audio, RATE)]) <= 0.15


@pytest.mark.slow
def test_emoji_only_chinese_line_is_reported_and_the_others_written(
    tmp_path, shared_voice, capsys
) -> None:
    path = tmp_path / "lines.txt"
    path.write_text("谢谢老板！\n😂😂\nThank you 谢谢!\n", encoding="utf-8")
    outdir = tmp_path / "out"
    assert main(["say", "-f", str(path), "-o", str(outdir)]) == 1
    assert "line 2: empty_text" in capsys.readouterr().err
    assert sorted(p.name for p in outdir.iterdir()) == ["0001.wav", "0003.wav"]
