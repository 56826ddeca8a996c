"""One utterance's audio on its way out: resample, cut into frames, send; fade on cancel."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

import numpy as np

from voxlive.engine.resample import StreamResampler
from voxlive.protocol.messages import AudioFrame
from voxlive.protocol.types import AudioFormat, StreamId

from .frames import Packetizer

__all__ = ["FADE_MS", "OutputStream"]

FADE_MS: Final = 10
"""Length of the ramp that ends a cancelled stream (and the audio held back for it)."""


class OutputStream:
    """Final engine audio at ``in_rate`` → frames at ``out_rate`` → ``send``."""

    def __init__(
        self,
        stream: StreamId,
        in_rate: int,
        out_rate: int,
        frame_ms: int,
        fmt: AudioFormat,
        send: Callable[[AudioFrame], None],
    ) -> None:
        self.resampler = StreamResampler(in_rate, out_rate)
        self.packets = Packetizer(
            stream, out_rate * frame_ms // 1000, out_rate * FADE_MS // 1000, fmt
        )
        self._send = send
        self.first_audio_at: float | None = None
        """``time.monotonic()`` of the first frame with samples."""

    @property
    def sent(self) -> int:
        """Samples sent so far (at the output rate)."""
        return self.packets.sent

    def push(self, samples: np.ndarray) -> None:
        self._out(self.packets.push(self.resampler.process(samples)))

    def finish(self) -> None:
        """The end: what the resampler and packetizer hold, the last frame flagged."""
        self._out(self.packets.push(self.resampler.flush()))
        self._out(self.packets.finish())

    def fade_out(self) -> None:
        """Cancelled: the held-back samples ramped to silence, flagged last and cancelled."""
        self._out(self.packets.fade_out())

    def _out(self, frames: list[AudioFrame]) -> None:
        for frame in frames:
            if self.first_audio_at is None and frame.pcm:
                self.first_audio_at = time.monotonic()
            self._send(frame)
