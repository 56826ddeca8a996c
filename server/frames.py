"""Cutting an utterance's audio into protocol frames (SPEC.md §8)."""

from __future__ import annotations

import numpy as np

from voxlive.engine.pcm import pcm16_bytes
from voxlive.protocol.messages import AudioFrame
from voxlive.protocol.types import AudioFormat, StreamId

__all__ = ["Packetizer", "encode_pcm"]


def encode_pcm(samples: np.ndarray, fmt: AudioFormat) -> bytes:
    """Float samples in [-1, 1] as little-endian ``s16le`` or ``f32le`` bytes."""
    if fmt == "f32le":
        return np.asarray(samples, "<f4").tobytes()
    return pcm16_bytes(samples)


class Packetizer:
    """Frames of ``frame_samples``, holding back ``fade_samples`` until the end is known.

    The held-back tail is what a cancel fades out, so a cancelled utterance
    ends with a short ramp to silence instead of a click.
    """

    def __init__(
        self, stream: StreamId, frame_samples: int, fade_samples: int, fmt: AudioFormat
    ) -> None:
        self.stream = stream
        self.frame_samples = frame_samples
        self.fade_samples = fade_samples
        self.fmt = fmt
        self.buffer = np.zeros(0, np.float32)
        self.seq = 0
        self.sent = 0  # samples sent so far

    def push(self, samples: np.ndarray) -> list[AudioFrame]:
        """Add samples; returns the frames now complete."""
        self.buffer = np.concatenate([self.buffer, np.asarray(samples, np.float32)])
        frames = []
        while len(self.buffer) >= self.frame_samples + self.fade_samples:
            frames.append(self._frame(self.buffer[: self.frame_samples]))
            self.buffer = self.buffer[self.frame_samples :]
        return frames

    def finish(self) -> list[AudioFrame]:
        """The rest, the final frame flagged ``last`` (empty if nothing is left)."""
        frames = []
        while len(self.buffer) > self.frame_samples:
            frames.append(self._frame(self.buffer[: self.frame_samples]))
            self.buffer = self.buffer[self.frame_samples :]
        frames.append(self._frame(self.buffer, last=True))
        self.buffer = self.buffer[:0]
        return frames

    def fade_out(self) -> list[AudioFrame]:
        """Cancel: the held-back samples ramped down to zero, flagged last and cancelled."""
        tail = self.buffer[: self.fade_samples] * np.linspace(
            1.0, 0.0, min(len(self.buffer), self.fade_samples), dtype=np.float32
        )
        self.buffer = self.buffer[:0]
        return [self._frame(tail, last=True, cancelled=True)]

    def _frame(
        self, samples: np.ndarray, last: bool = False, cancelled: bool = False
    ) -> AudioFrame:
        frame = AudioFrame(
            stream=self.stream,
            seq=self.seq,
            offset=self.sent,
            pcm=encode_pcm(samples, self.fmt),
            last=last,
            cancelled=cancelled,
        )
        self.seq += 1
        self.sent += len(samples)
        return frame
