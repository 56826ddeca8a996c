"""The Mandarin networks' batching and windowing rules, on random weights (fast lane)."""

from __future__ import annotations

import math

import pytest
import torch

from voxlive.engine.mandarin import fastspeech2
from voxlive.engine.mandarin.fastspeech2 import FastSpeech2
from voxlive.engine.mandarin.melgan import MultiBandMelGAN


@pytest.fixture(scope="module")
def acoustic() -> FastSpeech2:
    torch.manual_seed(0)
    model = FastSpeech2(n_symbols=20, voiced_ids=[5, 6, 7]).eval()
    with torch.no_grad():
        model.positions.normal_()
        model.positions[0] = 0
        model.duration.dense.bias.fill_(math.log(4.0))  # about 3 frames a symbol
    return model


@pytest.fixture(scope="module")
def vocoder() -> MultiBandMelGAN:
    torch.manual_seed(1)
    model = MultiBandMelGAN().eval()
    with torch.no_grad():
        model.pqmf_up.copy_(torch.eye(4)[:, :, None] * torch.tensor([4.0, 0, 0, 0]))
        model.pqmf_filter.normal_()
    return model


def _batch(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.full((len(seqs), max(map(len, seqs))), 3, dtype=torch.long)  # padding != 0
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
    return ids, torch.tensor([len(s) for s in seqs])


@pytest.mark.parametrize("padding_share", [1.0, fastspeech2.PADDING_SHARE])
def test_padding_does_not_change_an_item(
    acoustic: FastSpeech2, padding_share: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 1.0: one padded decoder batch; the default: grouped by length, rows put back in order.
    monkeypatch.setattr(fastspeech2, "PADDING_SHARE", padding_share)
    seqs = [[1, 6, 4, 1], [1, 5, 8, 6, 2, 7, 9, 1, 19], [1, 6, 4, 1, 2], [1, 5, 8, 6, 2, 7, 9, 1]]
    together = acoustic.infer(*_batch(seqs))
    for i, seq in enumerate(seqs):
        alone = acoustic.infer(*_batch([seq]))
        frames = int(alone.frames[0])
        assert frames > 0 and int(together.frames[i]) == frames
        assert torch.equal(together.durations[i, : len(seq)], alone.durations[0])
        torch.testing.assert_close(together.mel[i, :frames], alone.mel[0], atol=1e-4, rtol=0)
        assert not together.mel[i, frames:].any()


def test_forced_durations_set_the_frame_count(acoustic: FastSpeech2) -> None:
    ids, lengths = _batch([[1, 5, 8, 1]])
    out = acoustic.infer(ids, lengths, durations=torch.tensor([[2, 0, 5, 1]]))
    assert int(out.frames[0]) == 8 and out.mel.shape[1] == 8


def test_an_item_with_no_frames_gives_an_empty_mel(acoustic: FastSpeech2) -> None:
    ids, lengths = _batch([[1, 5]])
    out = acoustic.infer(ids, lengths, durations=torch.zeros(1, 2, dtype=torch.long))
    assert int(out.frames[0]) == 0 and not out.mel.any()


def test_controls_change_only_their_own_item(acoustic: FastSpeech2) -> None:
    ids, lengths = _batch([[1, 5, 8, 6, 2, 7, 1], [1, 6, 7, 1]])
    base = acoustic.infer(ids, lengths)
    moved = acoustic.infer(ids, lengths, pitch_shift=torch.tensor([0.0, 1.0]))
    assert torch.equal(moved.mel[0], base.mel[0])
    assert not torch.equal(moved.mel[1], base.mel[1])


def test_window_equals_whole_decode(vocoder: MultiBandMelGAN) -> None:
    torch.manual_seed(2)
    mel = torch.randn(2, 90, 80)
    whole = vocoder(mel)
    assert whole.shape == (2, 90 * 300)
    for start, end in [(0, 5), (30, 45), (60, 90), (44, 45)]:
        window = vocoder.decode_window(mel, start, end)
        torch.testing.assert_close(window, whole[:, start * 300 : end * 300], atol=1e-5, rtol=0)


def test_windows_from_first_stage_features_equal_whole_decode(vocoder: MultiBandMelGAN) -> None:
    torch.manual_seed(3)
    mel = torch.randn(2, 90, 80)
    whole = vocoder(mel)
    features = vocoder.features(mel)
    assert features.shape == (2, 192, 90 * 3)
    for start, end in [(0, 5), (0, 16), (16, 48), (30, 45), (60, 90), (44, 45), (89, 90)]:
        window = vocoder.decode_features(features, start, end)
        torch.testing.assert_close(window, whole[:, start * 300 : end * 300], atol=1e-5, rtol=0)


def test_decode_features_refuses_a_bad_range(vocoder: MultiBandMelGAN) -> None:
    features = vocoder.features(torch.randn(1, 20, 80))
    for start, end in [(-1, 5), (5, 5), (0, 21)]:
        with pytest.raises(ValueError):
            vocoder.decode_features(features, start, end)
    with pytest.raises(ValueError):
        vocoder.decode_features(features[..., :-1], 0, 5)


def test_band_signals_sit_on_the_int8_grid(vocoder: MultiBandMelGAN) -> None:
    bands = vocoder.bands(torch.randn(1, 12, 80)) * 128
    assert torch.equal(bands, bands.round()) and bands.abs().max() <= 128
