"""The Perth watermark: port parity, streaming, robustness, and every engine's output marked.

Fast lane: espeak-ng's speech and the fake engine (the real voice is in
``test_watermark_voice.py``, slow).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import pytest
import torch

from tests.fakes import FakeEngine
from tests.perth_ref import package_watermarker
from tests.speech import espeak
from voxlive.bench.watermark import mp3
from voxlive.engine import watermark as W
from voxlive.engine.interface import Controls, FinalChunk
from voxlive.engine.marked import MarkedEngine, Watermarker
from voxlive.engine.offline import speak
from voxlive.engine.resample import resample
from voxlive.engine.transform import VoiceTransform

SERVER_CHUNKS = [4096, 8192, 16384, 32768, 32768, 32768, 32768, 32768]
"""Samples of the server's chunks at 22.05 kHz (16 latent frames, doubling to 128)."""


@pytest.fixture(scope="module")
def net() -> W.PerthNet:
    return W.load_perthnet()


@pytest.fixture(scope="module")
def speech() -> tuple[np.ndarray, int]:
    """Five seconds of speech at 22.05 kHz (espeak-ng's, resampled)."""
    audio, rate = espeak(
        "Thanks for the follow! Tonight we are going to try the hardest level of the "
        "game, so wish me luck, and tell me in the chat which boss you want next."
    )
    return resample(audio, rate, 22050), 22050


def attacked(audio: np.ndarray, rate: int) -> dict[str, tuple[np.ndarray, int]]:
    """What a clip goes through after it leaves us (the robustness set)."""
    half = rate // 2
    return {
        "as is": (audio, rate),
        "16 kHz": (resample(audio, rate, 16000), 16000),
        "mp3 64 kbps": mp3(audio, rate),
        "+6 dB": (np.clip(audio * 2, -1, 1), rate),
        "-6 dB": (audio * 0.5, rate),
        "0.5 s cut off both ends": (audio[half:-half], rate),
    }


def streamed(net: W.PerthNet, audio: np.ndarray, rate: int, sizes: Sequence[int], **kw):
    """``audio`` through one :class:`MarkStream` in chunks of ``sizes`` (the last final)."""
    stream = W.MarkStream(rate, **kw)
    out, at = [], 0
    for n in sizes:
        chunk = audio[at : at + n]
        at += n
        final = at >= len(audio)
        block = stream.feed(chunk, final)
        residual = None
        if block is not None:
            with torch.inference_mode():
                residual = net.residual(block.sub[None], block.mask[None])[0][:, block.keep]
        out.append(stream.take(residual))
        if final:
            break
    return np.concatenate(out)


def relative_error(marked: np.ndarray, reference: np.ndarray, clean: np.ndarray) -> float:
    mark = reference - clean
    return float(np.sqrt(np.mean((marked - reference) ** 2)) / np.sqrt(np.mean(mark**2)))


# -- the port --------------------------------------------------------------------------


def test_the_port_marks_and_scores_as_the_package_does(net, speech):
    audio = resample(*speech, W.RATE)
    package = package_watermarker()
    theirs = package.apply_watermark(audio, W.RATE)  # rebuilt whole, a frame shorter
    ours = W.embed(net, audio, W.RATE, strength=1.0)  # the package's own strength
    n = len(theirs)
    assert len(ours) == len(audio)
    assert relative_error(ours[:n], theirs, audio[:n]) < 1e-4
    for clip in (audio, ours):
        expected = float(package.get_watermark(clip, W.RATE, round=False))
        assert W.score(net, clip, W.RATE) == pytest.approx(expected, abs=1e-4)


def test_the_mark_is_small_and_below_2_khz(net, speech):
    audio, rate = speech
    mark = W.embed(net, audio, rate) - audio
    spectrum = np.abs(np.fft.rfft(mark)) ** 2
    freqs = np.fft.rfftfreq(len(mark), 1 / rate)
    assert spectrum[freqs > 2300].sum() < 0.01 * spectrum.sum()
    assert np.sqrt(np.mean(mark**2)) < 0.3 * np.sqrt(np.mean(audio**2))


def test_a_bad_checkpoint_is_refused(tmp_path):
    path = tmp_path / "bad.pth.tar"
    torch.save({"model": {"encoder.layers.0.conv.weight": torch.zeros(1)}}, path)
    with pytest.raises(ValueError, match="does not fit"):
        W.load_perthnet(path=path)


# -- streaming -------------------------------------------------------------------------


def test_streamed_equals_the_whole_clip_within_tolerance(net, speech):
    audio, rate = speech
    whole = W.embed(net, audio, rate)
    out = streamed(net, audio, rate, SERVER_CHUNKS)
    assert len(out) == len(audio)
    # docs/watermark.md: 4 frames of the encoder's 15 of right context.
    assert relative_error(out, whole, audio) < 0.05
    assert W.score(net, out, rate) > 0.7
    # With the encoder's whole reach the stream is the clip, to float rounding.
    exact = streamed(net, audio, rate, SERVER_CHUNKS, lookahead=W.REACH, first_lookahead=W.REACH)
    assert relative_error(exact, whole, audio) < 1e-4


def test_tiny_chunks_are_still_marked_and_nothing_is_lost(net, speech):
    audio, rate = speech
    out = streamed(net, audio, rate, [300] * (len(audio) // 300 + 1))
    assert len(out) == len(audio)
    assert W.score(net, out, rate) > 0.7


def test_the_first_chunk_comes_out_at_once_less_the_hold_back(net, speech):
    audio, rate = speech
    stream = W.MarkStream(rate)
    block = stream.feed(audio[:4096])
    assert block is not None
    with torch.inference_mode():
        first = stream.take(net.residual(block.sub[None], block.mask[None])[0][:, block.keep])
    held = 4096 - len(first)
    assert 0 < held <= W.hold_back() * rate + 64  # + the resamplers' reach


@pytest.mark.parametrize("rate", [16000, 22050, 24000, 44100])
def test_any_chunking_keeps_every_sample(net, rate):
    rng = np.random.default_rng(rate)
    stream = W.MarkStream(rate)
    fed = out = 0
    for _ in range(40):
        n = int(rng.choice([0, 1, 7, 500, 1500, 5000]))
        final = bool(rng.random() < 0.3)
        block = stream.feed(rng.standard_normal(n).astype(np.float32) * 0.1, final)
        residual = None
        if block is not None:
            with torch.inference_mode():
                residual = net.residual(block.sub[None], block.mask[None])[0][:, block.keep]
        got = stream.take(residual)
        assert np.isfinite(got).all()
        fed, out = fed + n, out + len(got)
        if final:
            assert out == fed
    assert out <= fed


def test_a_batch_of_padded_blocks_equals_each_block_alone(net):
    rng = np.random.default_rng(3)
    subs = [torch.from_numpy(rng.random((128, n), dtype=np.float32)) for n in (40, 23, 7)]
    masks = [torch.ones(s.shape[1]) for s in subs]
    width = max(s.shape[1] for s in subs)
    sub = torch.stack([torch.nn.functional.pad(s, (0, width - s.shape[1])) for s in subs])
    mask = torch.stack([torch.nn.functional.pad(m, (0, width - len(m))) for m in masks])
    with torch.inference_mode():
        batch = net.residual(sub, mask, torch.tensor([s.shape[1] for s in subs]))
        for i, (s, m) in enumerate(zip(subs, masks)):
            alone = net.residual(s[None], m[None])[0]
            torch.testing.assert_close(batch[i, :, : s.shape[1]], alone, atol=1e-5, rtol=1e-4)


# -- detection -------------------------------------------------------------------------


def test_marked_speech_is_found_after_what_it_goes_through(net, speech):
    audio, rate = speech
    marked = W.embed(net, audio, rate)
    for what, (clip, r) in attacked(marked, rate).items():
        # espeak-ng's buzzy source carries the mark less firmly than the voices do
        # (bench watermark: every attacked sentence of theirs scores 0.6 or more).
        assert W.detect(net, clip, r) >= 0.5, what


def test_clean_speech_is_not_found(net, speech):
    audio, rate = speech
    for what, (clip, r) in attacked(audio, rate).items():
        assert W.detect(net, clip, r) < 0.1, what
    zh, zh_rate = espeak("谢谢大家的关注，欢迎来到直播间。", "cmn")
    assert W.detect(net, zh, zh_rate) < 0.1


def test_silence_and_scraps_score_zero(net):
    assert W.score(net, np.zeros(22050, np.float32), 22050) == 0.0
    assert W.score(net, np.zeros(10, np.float32), 22050) == 0.0


def test_a_long_recording_with_one_marked_sentence_is_found(net, speech):
    audio, rate = speech
    clean = np.concatenate([audio] * 16)  # 80 s of unmarked speech
    marked = W.embed(net, np.concatenate([audio] * 3), rate)  # 15 s of it marked
    at = 9 * len(audio)
    mixed = np.concatenate([clean[:at], marked, clean[at:]])
    assert W.detect(net, clean, rate) < 0.1
    assert W.detect(net, mixed, rate) > 0.7


# -- every engine's output -------------------------------------------------------------


class _Collect:
    def __init__(self) -> None:
        self.chunks: list[FinalChunk] = []
        self.failures: list[str] = []
        self.done = threading.Event()

    def audio(self, chunk: FinalChunk) -> None:
        self.chunks.append(chunk)

    def failed(self, reason: str) -> None:
        self.failures.append(reason)
        self.done.set()


TEXT = "Thanks for the follow, everyone. Tonight we try the hardest level. Wish me luck!"


@pytest.fixture(autouse=True)
def fake_speech(speech, monkeypatch):
    """The fake engine speaks espeak-ng's speech instead of tones (the watermark lives in
    speech; a pure tone carries it poorly)."""
    audio = speech[0]

    def talk(index: int, n: int, rate: int, gain: float = 0.3) -> np.ndarray:
        start = (index * 7919) % (len(audio) // 2)
        return np.resize(audio[start:], n).astype(np.float32)

    monkeypatch.setattr("tests.fakes.tone", talk)


def spoken(engine, controls: Controls = Controls()):
    return speak(engine, TEXT, controls)


def test_a_marked_engine_marks_its_output_and_keeps_its_length_and_marks(net):
    plain = spoken(FakeEngine(samples_per_char=300))
    marker = Watermarker()
    try:
        marked = spoken(MarkedEngine(FakeEngine(samples_per_char=300), marker))
    finally:
        marker.close()
    assert len(marked.audio) == len(plain.audio)
    assert marked.marks == plain.marks
    assert [len(s) for s in marked.sentences] == [len(s) for s in plain.sentences]
    assert not np.array_equal(marked.audio, plain.audio)
    assert W.detect(net, plain.audio, 22050) < 0.1
    assert W.detect(net, marked.audio, 22050) > 0.7


def test_registered_voices_are_marked_even_with_the_watermark_off(net):
    marker = Watermarker(all_output=False)
    try:
        engine = MarkedEngine(FakeEngine(samples_per_char=300), marker)
        builtin = spoken(engine)
        cloned = spoken(engine, Controls(voice=VoiceTransform(f0_shift_st=2.0)))
    finally:
        marker.close()
    reference = spoken(FakeEngine(samples_per_char=300))
    np.testing.assert_array_equal(builtin.audio, reference.audio)  # untouched, bit for bit
    assert W.detect(net, cloned.audio, 22050) > 0.7


def test_many_utterances_at_once_are_each_marked_in_order(net):
    marker = Watermarker(max_batch=4)
    engine = MarkedEngine(FakeEngine(samples_per_char=600, chunk_samples=2048), marker)
    try:
        from voxlive.engine.offline import speak_many

        texts = [engine.prepare(f"Comment number {i} in the chat. Thanks a lot!") for i in range(9)]
        many = speak_many(engine, texts, [Controls()] * 9)
    finally:
        marker.close()
    plain = speak_many(
        FakeEngine(samples_per_char=600, chunk_samples=2048), texts, [Controls()] * 9
    )
    for m, p in zip(many, plain):
        assert len(m.audio) == len(p.audio)
        assert W.detect(net, m.audio, 22050) > 0.7


def test_a_failure_reaches_the_listener_after_the_audio_before_it():
    marker = Watermarker()
    engine = MarkedEngine(FakeEngine(), marker)
    listener = _Collect()
    try:
        performance = engine.perform(Controls(), listener)
        performance.listener.audio(  # type: ignore[attr-defined]
            FinalChunk(np.ones(3000, np.float32) * 0.1, 0, True)
        )
        performance.listener.failed("engine broke")  # type: ignore[attr-defined]
        assert listener.done.wait(10)
    finally:
        marker.close()
    assert sum(len(c.samples) for c in listener.chunks) == 3000
    assert listener.failures == ["engine broke"]


def test_nothing_is_delivered_after_cancel():
    marker = Watermarker()
    engine = MarkedEngine(FakeEngine(), marker)
    listener = _Collect()
    try:
        performance = engine.perform(Controls(), listener)
        performance.cancel()
        performance.listener.audio(FinalChunk(np.ones(3000, np.float32), 0, True))  # type: ignore[attr-defined]
        gate = threading.Event()
        marker.call(marker.stream(22050), gate.set)
        assert gate.wait(10)
    finally:
        marker.close()
    assert listener.chunks == []
