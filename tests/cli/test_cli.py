"""The ``voxlive`` command line, run in-process on the real voice."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile

from voxlive.cli.parser import main


def read(path):
    audio, rate = soundfile.read(str(path), dtype="float32")
    return audio, rate


@pytest.mark.slow
@pytest.mark.usefixtures("shared_voice")
def test_say_writes_a_16_bit_wav_at_the_voice_rate(tmp_path) -> None:
    out = tmp_path / "out.wav"
    assert main(["say", "Welcome back to the stream.", "-o", str(out), "--seed", "3"]) == 0
    info = soundfile.info(str(out))
    assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
    audio, _ = read(out)
    assert 0.8 < len(audio) / 22050 < 4.0
    assert np.abs(audio).max() > 0.1


@pytest.mark.slow
@pytest.mark.usefixtures("shared_voice")
def test_deterministic_say_is_reproducible(tmp_path) -> None:
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    for path in (a, b):
        assert main(["say", "Same words twice.", "-o", str(path), "--deterministic"]) == 0
    assert np.array_equal(read(a)[0], read(b)[0])


@pytest.mark.slow
@pytest.mark.usefixtures("shared_voice")
def test_speed_shortens_the_audio(tmp_path) -> None:
    normal, fast = tmp_path / "n.wav", tmp_path / "f.wav"
    text = "The quick brown fox jumps over the lazy dog."
    assert main(["say", text, "-o", str(normal), "--deterministic"]) == 0
    assert main(["say", text, "-o", str(fast), "--deterministic", "--speed", "1.5"]) == 0
    ratio = len(read(fast)[0]) / len(read(normal)[0])
    assert 0.55 < ratio < 0.8


@pytest.mark.slow
@pytest.mark.usefixtures("shared_voice")
def test_say_file_writes_one_wav_per_non_empty_line_in_order(tmp_path) -> None:
    lines = tmp_path / "lines.txt"
    lines.write_text("Hello there.\n\n   \nA much longer second line, with a pause.\nBye!\n")
    outdir = tmp_path / "out"
    assert main(["say", "-f", str(lines), "-o", str(outdir), "--deterministic"]) == 0
    assert sorted(p.name for p in outdir.iterdir()) == ["0001.wav", "0002.wav", "0003.wav"]
    lengths = [len(read(outdir / f"{n:04d}.wav")[0]) for n in (1, 2, 3)]
    assert lengths[1] > lengths[0] > 0 and lengths[1] > lengths[2] > 0
    # Batched lines equal the same lines spoken alone (to within 2 LSB of 16-bit PCM).
    single = tmp_path / "single.wav"
    assert main(["say", "Hello there.", "-o", str(single), "--deterministic"]) == 0
    alone, batched = read(single)[0], read(outdir / "0001.wav")[0]
    assert alone.shape == batched.shape
    assert np.abs(alone - batched).max() <= 2 / 32768


@pytest.mark.slow
@pytest.mark.usefixtures("shared_voice")
def test_say_file_reports_bad_lines_and_still_writes_the_others(tmp_path, capsys) -> None:
    lines = tmp_path / "lines.txt"
    lines.write_text("First line.\nПривет мир\nThird line.\n")
    outdir = tmp_path / "out"
    assert main(["say", "-f", str(lines), "-o", str(outdir)]) == 1
    assert sorted(p.name for p in outdir.iterdir()) == ["0001.wav", "0003.wav"]
    assert "line 2: unsupported_language" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "code"),
    [("", "empty_text"), ("Привет мир", "unsupported_language"), ("x" * 5001, "text_too_long")],
)
@pytest.mark.slow
@pytest.mark.usefixtures("shared_voice")
def test_say_rejects_unspeakable_text_with_its_code(tmp_path, capsys, text, code) -> None:
    out = tmp_path / "out.wav"
    assert main(["say", text, "-o", str(out)]) == 2
    assert code in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.usefixtures("shared_voice")
def test_say_warns_about_skipped_emoji(tmp_path, capsys) -> None:
    assert main(["say", "Nice play 😀", "-o", str(tmp_path / "o.wav")]) == 0
    assert "emoji" in capsys.readouterr().err


def test_out_of_range_speed_is_a_usage_error(tmp_path, capsys) -> None:
    assert main(["say", "Hi.", "-o", str(tmp_path / "o.wav"), "--speed", "9"]) == 2
    assert "--speed" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.usefixtures("shared_voice")
def test_bench_engine_json_has_the_documented_keys(tmp_path, capsys) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text("Hello there, friend.\nThanks for the follow!\n")
    args = [
        "bench",
        "engine",
        "--json",
        "--texts",
        str(texts),
        "--batches",
        "1,2",
        "--repeats",
        "2",
        "--items",
        "4",
    ]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    engine = report["engine"]
    assert set(engine["audio_s_per_s"]) == {"1", "2"}
    assert all(v > 0 for v in engine["audio_s_per_s"].values())
    assert engine["rtf_batch1"] > 0 and engine["peak_rss_mb"] > 0
    assert engine["first_chunk_ms"]["p95"] >= engine["first_chunk_ms"]["p50"] > 0
    assert report["piper"]["audio_s_per_s"] > 0 and report["piper"]["sentence_ms"]["p50"] > 0
    assert report["ratios"]["throughput"] > 0 and report["ratios"]["first_audio"] > 0


@pytest.mark.slow
def test_bench_engine_zh_json_has_the_documented_keys(tmp_path, capsys) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text("你好，朋友。\n谢谢关注！\n", encoding="utf-8")
    args = ["bench", "engine", "--voice", "zh", "--json", "--texts", str(texts)]
    assert main([*args, "--batches", "1,2", "--repeats", "2", "--items", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["voice"] == "zh" and report["texts"] == 2 and "piper" not in report
    engine = report["engine"]
    assert set(engine["audio_s_per_s"]) == {"1", "2"}
    assert all(v > 0 for v in engine["audio_s_per_s"].values())
    assert engine["rtf_batch1"] > 0 and engine["peak_rss_mb"] > 0
    assert engine["first_chunk_ms"]["p95"] >= engine["first_chunk_ms"]["p50"] > 0
    assert report["reference"]["measured"] is False and report["reference"]["why"]


def test_bench_engine_zh_refuses_reduced_precision(capsys) -> None:
    args = ["bench", "engine", "--voice", "zh", "--precision", "bfloat16", "--items", "1"]
    assert main(args) != 0
    assert "float32" in capsys.readouterr().err


@pytest.mark.slow
def test_say_never_touches_the_network(tmp_path, monkeypatch) -> None:
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    assert main(["say", "Offline and fine.", "-o", str(tmp_path / "o.wav")]) == 0


@pytest.mark.slow
@pytest.mark.usefixtures("shared_voice")
def test_say_with_a_reference_voice_moves_the_voice(tmp_path, capsys) -> None:
    from voxlive.engine.pitch import yin_median
    from voxlive.engine.transform import VoiceTransform
    from voxlive.engine.world import analyze, apply, synthesize

    plain = tmp_path / "plain.wav"
    assert main(["say", "Long reference sentences make good clips.", "-o", str(plain)]) == 0
    # A reference speaker: the bundled voice, 5 semitones up with shorter formants.
    long_text = (
        "The old library at the end of the street opens early in the morning. "
        "Inside, the shelves reach all the way to the ceiling."
    )
    ref_src = tmp_path / "src.wav"
    assert main(["say", long_text, "-o", str(ref_src), "--seed", "8"]) == 0
    audio, rate = read(ref_src)
    moved = synthesize(
        apply(analyze(audio, rate), VoiceTransform(f0_shift_st=5, formant_scale=1.12))
    )
    ref = tmp_path / "ref.flac"
    soundfile.write(str(ref), moved, rate, format="FLAC")
    out = tmp_path / "cloned.wav"
    text = "Welcome back to the stream, everyone."
    assert main(["say", text, "-o", str(out), "--voice", str(ref), "--seed", "3"]) == 0
    assert "similarity" in capsys.readouterr().err
    base = tmp_path / "base.wav"
    assert main(["say", text, "-o", str(base), "--seed", "3"]) == 0
    cloned, plain_audio = read(out)[0], read(base)[0]
    assert len(cloned) == len(plain_audio)
    assert yin_median(cloned, rate) > 1.2 * yin_median(plain_audio, rate)


@pytest.mark.slow
@pytest.mark.usefixtures("shared_voice")
def test_say_with_an_unusable_reference_reports_its_code(tmp_path, capsys) -> None:
    bad = tmp_path / "ref.wav"
    bad.write_bytes(b"RIFF....not really a wav")
    assert main(["say", "Hi.", "-o", str(tmp_path / "o.wav"), "--voice", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "corrupt_audio" in err or "unsupported_format" in err
