"""Chunk maths: pure functions, no model."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxlive.engine.chunking import (
    ChunkSchedule,
    chunk_bounds,
    decoder_context,
    flow_context,
    windows,
)


def test_decoder_context_of_the_medium_voice_is_twelve_frames() -> None:
    ctx = decoder_context((8, 8, 4), (16, 16, 8), (3, 5, 7), ((1, 2), (2, 6), (3, 12)))
    assert ctx == 12


def test_flow_context_adds_up_over_couplings() -> None:
    assert flow_context(n_couplings=4, wn_layers=4, kernel_size=5) == 32
    assert flow_context(n_couplings=1, wn_layers=2, kernel_size=3, dilation_rate=2) == 3


def test_first_chunk_is_small_and_later_chunks_grow_to_the_cap() -> None:
    bounds = chunk_bounds(1000, ChunkSchedule(first_frames=8, growth=2.0, max_frames=64))
    sizes = [e - s for s, e in bounds]
    assert sizes[:4] == [8, 16, 32, 64]
    assert max(sizes) <= 64 + 64 // 4


def test_short_utterance_is_one_chunk() -> None:
    assert chunk_bounds(5, ChunkSchedule(first_frames=16)) == [(0, 5)]


def test_zero_frames_give_no_chunks() -> None:
    assert chunk_bounds(0, ChunkSchedule()) == []


def test_negative_total_is_rejected() -> None:
    with pytest.raises(ValueError, match="total"):
        chunk_bounds(-1, ChunkSchedule())


@pytest.mark.parametrize(
    "kwargs",
    [{"first_frames": 0}, {"first_frames": 32, "max_frames": 16}, {"growth": 0.5}],
)
def test_bad_schedules_are_rejected(kwargs) -> None:
    with pytest.raises(ValueError):
        ChunkSchedule(**kwargs)


@settings(max_examples=300, deadline=None)
@given(
    total=st.integers(0, 5000),
    first=st.integers(1, 64),
    growth=st.floats(1.0, 4.0),
    extra=st.integers(0, 256),
    context=st.integers(0, 40),
)
def test_windows_tile_the_utterance_exactly(total, first, growth, extra, context) -> None:
    schedule = ChunkSchedule(first_frames=first, growth=growth, max_frames=first + extra)
    wins = windows(total, schedule, context)
    assert [(w.start, w.end) for w in wins] == chunk_bounds(total, schedule)
    covered = [f for w in wins for f in range(w.start, w.end)]
    assert covered == list(range(total))
    for w in wins:
        assert 0 <= w.lo <= w.start < w.end <= w.hi <= total
        assert w.start - w.lo == min(context, w.start)
        assert w.hi - w.end == min(context, total - w.end)
        trimmed = w.trim(256)
        assert trimmed.stop - trimmed.start == (w.end - w.start) * 256
