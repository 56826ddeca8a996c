"""The Mandarin port on the real weights: determinism, batching, windows, controls, speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from voxlive.engine.mandarin.assets import find_assets
from voxlive.engine.mandarin.model import MandarinModel, load_mandarin
from voxlive.engine.pitch import yin_median, yin_track

from .phones import SENTENCES, baker_symbols

pytestmark = pytest.mark.slow

REFERENCE = Path(__file__).parent / "data" / "reference.npz"


@pytest.fixture(scope="module")
def zh() -> MandarinModel:
    return load_mandarin()


def _ids(zh: MandarinModel, pinyin: str) -> list[int]:
    return zh.table.encode(baker_symbols(pinyin, find_assets().mapper))


def _batch(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.zeros(len(seqs), max(map(len, seqs)), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
    return ids, torch.tensor([len(s) for s in seqs])


def _speak(zh: MandarinModel, pinyin: str, **controls: torch.Tensor) -> np.ndarray:
    ids, lengths = _batch([_ids(zh, pinyin)])
    acoustic = zh.acoustic.infer(ids, lengths, **controls)
    return zh.vocoder(acoustic.mel)[0].numpy()


def test_same_input_twice_gives_identical_audio(zh: MandarinModel) -> None:
    first = _speak(zh, SENTENCES[0])
    assert np.array_equal(first, _speak(zh, SENTENCES[0]))


def test_batched_items_match_their_alone_output(zh: MandarinModel) -> None:
    seqs = [_ids(zh, SENTENCES[3]), _ids(zh, SENTENCES[0])]
    ids, lengths = _batch(seqs)
    together = zh.acoustic.infer(ids, lengths)
    for i, seq in enumerate(seqs):
        alone = zh.acoustic.infer(*_batch([seq]))
        frames = int(alone.frames[0])
        assert torch.equal(together.durations[i, : len(seq)], alone.durations[0])
        assert int(together.frames[i]) == frames
        # Only float summation order differs between the two shapes.
        torch.testing.assert_close(together.mel[i, :frames], alone.mel[0], atol=1e-4, rtol=0)
        assert not together.mel[i, frames:].any()  # padding frames are zero
        assert not together.durations[i, len(seq) :].any()


def test_windowed_vocoder_equals_whole_decode(zh: MandarinModel) -> None:
    mel = zh.acoustic.infer(*_batch([_ids(zh, SENTENCES[3])])).mel
    whole = zh.vocoder(mel)
    total = mel.shape[1]
    for start, end in [(0, 16), (16, 40), (100, 133), (total - 20, total), (5, 6)]:
        window = zh.vocoder.decode_window(mel, start, end)
        torch.testing.assert_close(window, whole[:, start * 300 : end * 300], atol=1e-5, rtol=0)


def test_windows_from_first_stage_features_equal_whole_decode(zh: MandarinModel) -> None:
    mel = zh.acoustic.infer(*_batch([_ids(zh, SENTENCES[3])])).mel
    whole = zh.vocoder(mel)
    features = zh.vocoder.features(mel)
    total = mel.shape[1]
    for start, end in [(0, 16), (16, 48), (48, 112), (100, 133), (total - 20, total), (5, 6)]:
        window = zh.vocoder.decode_features(features, start, end)
        torch.testing.assert_close(window, whole[:, start * 300 : end * 300], atol=1e-5, rtol=0)


def test_context_frames_covers_the_receptive_field(zh: MandarinModel) -> None:
    mel = zh.acoustic.infer(*_batch([_ids(zh, SENTENCES[3])])).mel
    whole = zh.vocoder(mel)
    ctx = zh.vocoder.context_frames
    bumped = mel.clone()
    bumped[:, 100] += 1.0
    changed = (zh.vocoder(bumped) - whole).abs()[0].reshape(-1, 300).amax(1) > 0
    reach = changed.nonzero().flatten()
    assert reach.min() >= 100 - ctx and reach.max() <= 100 + ctx
    assert reach.max() - reach.min() > ctx  # the bound is not wildly loose


def test_speed_two_halves_the_frames(zh: MandarinModel) -> None:
    ids, lengths = _batch([_ids(zh, SENTENCES[3])])
    normal = int(zh.acoustic.infer(ids, lengths).frames[0])
    fast = int(zh.acoustic.infer(ids, lengths, speed=torch.tensor([2.0])).frames[0])
    assert abs(fast - normal / 2) <= 0.1 * normal


def test_duration_scale_lengthens_only_the_scaled_symbol(zh: MandarinModel) -> None:
    ids, lengths = _batch([_ids(zh, SENTENCES[0])])
    scale = torch.ones(ids.shape)
    scale[0, 2] = 3.0  # i3
    base = zh.acoustic.infer(ids, lengths).durations[0]
    longer = zh.acoustic.infer(ids, lengths, duration_scale=scale).durations[0]
    assert longer[2] >= 3 * base[2] - 1
    assert torch.equal(torch.cat([longer[:2], longer[3:]]), torch.cat([base[:2], base[3:]]))


def test_pitch_shift_raises_f0(zh: MandarinModel) -> None:
    neutral = yin_median(_speak(zh, SENTENCES[3]), 24000)
    higher = yin_median(_speak(zh, SENTENCES[3], pitch_shift=torch.tensor([1.0])), 24000)
    lower = yin_median(_speak(zh, SENTENCES[3], pitch_shift=torch.tensor([-1.0])), 24000)
    assert higher > neutral * 1.06  # a unit is a clear step (docs/performance.md)
    assert lower < neutral / 1.06


def test_pitch_scale_widens_the_f0_range(zh: MandarinModel) -> None:
    def spread(audio: np.ndarray) -> float:
        f0 = yin_track(audio, 24000, hop_s=0.01)
        low, high = np.percentile(f0[f0 > 0], [10, 90])
        return float(high / low)

    ids, lengths = _batch([_ids(zh, SENTENCES[3])])
    base = zh.acoustic.infer(ids, lengths)
    wide = zh.acoustic.infer(ids, lengths, pitch_scale=torch.tensor([2.0]))
    assert torch.equal(base.pitch, wide.pitch)  # `pitch` is the prediction, before controls
    assert spread(zh.vocoder(wide.mel)[0].numpy()) > 1.1 * spread(zh.vocoder(base.mel)[0].numpy())
    assert base.voiced.any() and not base.voiced[0, 0]  # `sil` is not a toned final


def test_real_sentence_sounds_like_speech(zh: MandarinModel) -> None:
    audio = _speak(zh, SENTENCES[1])
    assert audio.dtype == np.float32 and np.isfinite(audio).all()
    assert audio.shape[0] > 0.8 * 24000
    rms = np.sqrt(np.mean(audio.reshape(-1, 240) ** 2, axis=1))  # 10 ms frames
    assert np.abs(audio).max() < 1.0
    assert (rms > 0.02).mean() > 0.4  # mostly voiced, not silence
    assert rms[:3].max() < rms.max() / 10  # leading `sil` is quiet
    f0 = yin_median(audio, 24000)
    assert 120 < f0 < 400  # a female voice, not a buzz or an octave error


def test_bad_inputs_raise_value_error(zh: MandarinModel) -> None:
    ids, lengths = _batch([_ids(zh, SENTENCES[0])])
    with pytest.raises(ValueError):
        zh.acoustic.infer(ids, lengths + 1)
    with pytest.raises(ValueError):
        zh.acoustic.infer(ids, lengths, speed=torch.tensor([0.0]))
    with pytest.raises(ValueError):
        zh.acoustic.infer(ids + 1000, lengths)
    with pytest.raises(ValueError):
        zh.vocoder(torch.zeros(1, 5, 80))
    with pytest.raises(ValueError):
        zh.table.encode(["sil", "xx9"])


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as data:
        return dict(data)


def test_vocoder_matches_tflite(zh: MandarinModel, reference: dict[str, np.ndarray]) -> None:
    mel = torch.from_numpy(reference["vocoder_mel"].astype(np.float32))[None]
    audio = zh.vocoder(mel)[0].numpy()
    np.testing.assert_allclose(audio, reference["vocoder_audio"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("n", range(len(SENTENCES)))
def test_acoustic_matches_tflite(
    zh: MandarinModel, reference: dict[str, np.ndarray], n: int
) -> None:
    """TFLite's hybrid kernels put activations on an int8 grid; our float port does not.

    Durations may differ by a frame on a symbol, so the mel is compared with the
    reference durations forced. Pitch and energy are per-symbol predictions.
    """
    ids = torch.from_numpy(reference[f"ids{n}"]).long()[None]
    lengths = torch.tensor([ids.shape[1]])
    ref_durations = torch.from_numpy(reference[f"durations{n}"]).long()
    ours = zh.acoustic.infer(ids, lengths)
    assert (ours.durations[0] - ref_durations).abs().max() <= 1
    assert abs(int(ours.frames[0]) - int(ref_durations.sum())) <= 3
    assert np.abs(ours.pitch[0].numpy() - reference[f"pitch{n}"]).mean() < 0.06
    assert np.abs(ours.energy[0].numpy() - reference[f"energy{n}"]).mean() < 0.03
    forced = zh.acoustic.infer(ids, lengths, durations=ref_durations[None])
    error = np.abs(forced.mel[0].numpy() - reference[f"mel{n}"].astype(np.float32))
    assert error.mean() < 0.06


def test_hybrid_mode_tracks_tflite_closer(
    zh: MandarinModel, reference: dict[str, np.ndarray]
) -> None:
    """With activations on TFLite's int8 grid, the mel lands much nearer the reference."""
    errors = {}
    for hybrid in (False, True):
        zh.acoustic.set_hybrid(hybrid)
        try:
            ids = torch.from_numpy(reference["ids1"]).long()[None]
            durations = torch.from_numpy(reference["durations1"]).long()[None]
            mel = zh.acoustic.infer(ids, torch.tensor([ids.shape[1]]), durations=durations).mel
        finally:
            zh.acoustic.set_hybrid(False)
        errors[hybrid] = np.abs(mel[0].numpy() - reference["mel1"].astype(np.float32)).mean()
    assert errors[True] < 0.002
    assert errors[True] < errors[False] / 10
