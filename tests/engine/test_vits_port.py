"""Our torch VITS port against Piper's own runtime, and its batching and streaming.

All on the real bundled voice, on CPU, with deterministic settings
(noise_scale = noise_w = 0), where every path must give the same samples.
"""

from __future__ import annotations

import numpy as np
import pytest

from voxlive.engine.chunking import ChunkSchedule
from voxlive.engine.voice import SynthesisParams, SynthesisRequest

from .sentences import SENTENCES

pytestmark = pytest.mark.slow  # the real voice end to end

DET = SynthesisParams.deterministic()


def snr_db(test: np.ndarray, ref: np.ndarray) -> float:
    assert test.shape == ref.shape, (test.shape, ref.shape)
    noise = float(np.sum((test.astype(np.float64) - ref) ** 2))
    return 10 * np.log10(float(np.sum(ref.astype(np.float64) ** 2)) / max(noise, 1e-30))


@pytest.fixture(scope="module")
def piper_ids(voice):
    """Phoneme ids exactly as Piper builds them (independent of our front end)."""
    from piper.phoneme_ids import phonemes_to_ids
    from piper.phonemize_espeak import EspeakPhonemizer

    phonemizer = EspeakPhonemizer()
    id_map = voice.config["phoneme_id_map"]
    return [phonemes_to_ids(phonemizer.phonemize("en-us", s)[0], id_map) for s in SENTENCES]


@pytest.fixture(scope="module")
def onnx_audio(piper_ids):
    import onnxruntime

    from voxlive.engine.loader import default_voice_files

    session = onnxruntime.InferenceSession(
        str(default_voice_files().model), providers=["CPUExecutionProvider"]
    )
    out = []
    for ids in piper_ids:
        audio = session.run(
            None,
            {
                "input": np.array([ids], dtype=np.int64),
                "input_lengths": np.array([len(ids)], dtype=np.int64),
                "scales": np.array([0.0, 1.0, 0.0], dtype=np.float32),
            },
        )[0]
        out.append(audio.reshape(-1))
    return out


@pytest.fixture(scope="module")
def alone(voice, piper_ids):
    return [voice.synthesize_requests([SynthesisRequest(ids, DET)])[0] for ids in piper_ids]


def test_port_matches_onnxruntime_on_twenty_sentences(alone, onnx_audio) -> None:
    assert len(alone) >= 20
    snrs = [snr_db(ours, ref) for ours, ref in zip(alone, onnx_audio)]
    assert min(snrs) >= 40.0, snrs


def test_batched_items_equal_the_same_items_alone(voice, piper_ids, alone) -> None:
    batch = voice.synthesize_requests([SynthesisRequest(ids, DET) for ids in piper_ids[:8]])
    for got, ref in zip(batch, alone[:8]):
        assert snr_db(got, ref) >= 40.0


def test_padding_never_leaks_into_a_short_item(voice, piper_ids, alone) -> None:
    # "Yes." next to the longest sentence: its padded tail must not become audio.
    short = SENTENCES.index("Yes.")
    longest = max(range(len(piper_ids)), key=lambda i: len(piper_ids[i]))
    reqs = [SynthesisRequest(piper_ids[i], DET) for i in (longest, short)]
    _, got = voice.synthesize_requests(reqs)
    assert len(got) == len(alone[short])
    assert snr_db(got, alone[short]) >= 40.0


def test_each_item_keeps_its_own_length_scale(voice, piper_ids) -> None:
    ids = piper_ids[1]
    slow, normal = voice.synthesize_requests(
        [SynthesisRequest(ids, SynthesisParams.deterministic(1.5)), SynthesisRequest(ids, DET)]
    )
    assert 1.35 < len(slow) / len(normal) < 1.65


def test_seeded_noise_is_reproducible_and_batch_independent(voice, piper_ids) -> None:
    reqs = [
        SynthesisRequest(ids, SynthesisParams(seed=11 + i)) for i, ids in enumerate(piper_ids[:3])
    ]
    batched = voice.synthesize_requests(reqs)
    for req, got in zip(reqs, batched):
        (again,) = voice.synthesize_requests([req])
        assert snr_db(got, again) >= 40.0


def test_different_seeds_give_different_audio(voice, piper_ids) -> None:
    a, b = voice.synthesize_requests(
        [
            SynthesisRequest(piper_ids[0], SynthesisParams(seed=1)),
            SynthesisRequest(piper_ids[0], SynthesisParams(seed=2)),
        ]
    )
    n = min(len(a), len(b))
    assert snr_db(a[:n], b[:n]) < 20.0


def _stream(voice, reqs, schedule):
    chunks = list(voice.stream(reqs, schedule))
    return chunks


def test_streamed_chunks_join_into_the_whole_decode(voice, piper_ids, onnx_audio) -> None:
    schedule = ChunkSchedule(first_frames=8, growth=2.0, max_frames=32)
    ids = piper_ids[6]
    chunks = _stream(voice, [SynthesisRequest(ids, DET)], schedule)
    assert len(chunks) >= 4
    assert [c.offset for c in chunks] == list(
        np.cumsum([0] + [len(c.samples) for c in chunks[:-1]])
    )
    assert [c.is_last for c in chunks] == [False] * (len(chunks) - 1) + [True]
    joined = np.concatenate([c.samples for c in chunks])
    assert snr_db(joined, onnx_audio[6]) >= 40.0


def test_seams_have_no_jump_larger_than_the_audio_elsewhere(voice, piper_ids) -> None:
    schedule = ChunkSchedule(first_frames=4, growth=1.0, max_frames=4)  # a seam every 46 ms
    chunks = _stream(voice, [SynthesisRequest(piper_ids[0], DET)], schedule)
    joined = np.concatenate([c.samples for c in chunks])
    jumps = np.abs(np.diff(joined))
    seams = np.array([c.offset for c in chunks[1:]]) - 1
    inner = np.delete(jumps, seams)
    assert jumps[seams].max() <= inner.max()


def test_streaming_a_batch_interleaves_items_and_sends_first_chunks_first(voice, piper_ids) -> None:
    reqs = [SynthesisRequest(ids, DET) for ids in piper_ids[:4]]
    chunks = _stream(voice, reqs, ChunkSchedule(first_frames=8, max_frames=32))
    assert sorted(c.item for c in chunks[:4]) == [0, 1, 2, 3]
    assert all(c.offset == 0 and c.phoneme_samples is not None for c in chunks[:4])
    for i in range(4):
        mine = [c for c in chunks if c.item == i]
        assert [c.offset for c in mine] == sorted(c.offset for c in mine)
        assert mine[-1].is_last and not any(c.is_last for c in mine[:-1])


def test_phoneme_durations_add_up_to_the_audio_length(voice, piper_ids, alone) -> None:
    chunks = _stream(voice, [SynthesisRequest(piper_ids[3], DET)], None)
    durations = chunks[0].phoneme_samples
    assert len(durations) == len(piper_ids[3])
    assert sum(durations) == len(alone[3])
    assert durations[0] >= 0 and max(durations) > 0


def test_pcm16_is_little_endian_and_clipped(voice) -> None:
    from voxlive.engine.voice import AudioChunk

    chunk = AudioChunk(
        item=0, samples=np.array([0.0, 1.0, -1.5, 0.5], np.float32), offset=0, is_last=True
    )
    assert np.frombuffer(chunk.pcm16(), "<i2").tolist() == [0, 32767, -32768, 16384]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"length_scale": 0.0},
        {"length_scale": 9.0},
        {"noise_scale": -1.0},
        {"noise_w": 3.0},
        {"seed": -1},
    ],
)
def test_out_of_range_params_are_rejected(kwargs) -> None:
    with pytest.raises(ValueError):
        SynthesisParams(**kwargs)


def test_bad_ids_are_rejected_with_a_clear_error(voice) -> None:
    with pytest.raises(ValueError, match="outside"):
        voice.prepare([SynthesisRequest([1, 999, 2], DET)])
    with pytest.raises(ValueError, match="no phoneme ids"):
        voice.prepare([SynthesisRequest([], DET)])
    with pytest.raises(ValueError, match="at least one"):
        voice.prepare([])


def test_items_begun_later_join_a_running_batch_and_stay_exact(voice, piper_ids, alone) -> None:
    schedule = ChunkSchedule(first_frames=8, max_frames=32)
    first = voice.begin([SynthesisRequest(piper_ids[0], DET)], schedule, tags=["a"])
    chunks = list(voice.step(first))  # "a" is one chunk in when "b" arrives
    second = voice.begin([SynthesisRequest(piper_ids[2], DET)], schedule, tags=["b"])
    running = first + second
    while not all(it.done for it in running):
        chunks += voice.step(running)
    for tag, ref in (("a", alone[0]), ("b", alone[2])):
        mine = [c for c in chunks if c.tag == tag]
        assert snr_db(np.concatenate([c.samples for c in mine]), ref) >= 40.0
