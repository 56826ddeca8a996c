"""The VITS voice with its conveniences: whole texts in, whole audio (or chunks) out.

:class:`Voice` is the streaming core (:class:`~.streaming.StreamingVoice`:
``prepare``, ``begin``, ``step``) plus what the command line, benchmarks and
tests call: text to requests, and ``synthesize*`` over whole texts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from .chunking import ChunkSchedule
from .frontend import FrontendResult
from .interface import Precision
from .streaming import (
    AudioChunk,
    Batch,
    ItemStream,
    StreamingVoice,
    SynthesisParams,
    SynthesisRequest,
)

__all__ = [
    "AudioChunk",
    "Batch",
    "ItemStream",
    "PROBE_SENTENCE",
    "Precision",
    "SynthesisParams",
    "SynthesisRequest",
    "Voice",
]

PROBE_SENTENCE = "Please call Stella and ask her to bring these things with her from the store."
"""What the bundled voice says when a transform is fitted (a phonetically rich classic)."""


class Voice(StreamingVoice):
    """A loaded VITS voice on one device. Not thread-safe: one caller at a time."""

    # -- text ------------------------------------------------------------------------

    def requests(
        self, text: str, params: SynthesisParams | None = None
    ) -> tuple[list[SynthesisRequest], FrontendResult]:
        """Text → one request per sentence (sharing ``params``; seeds offset per sentence).

        Raises:
            engine.frontend.TextError: empty, too long, or unsupported text.
        """
        params = params or SynthesisParams()
        result = self.frontend.process(text)
        reqs = []
        for i, sentence in enumerate(result.sentences):
            reqs.append(SynthesisRequest(sentence.ids, params.offset_seed(i)))
        return reqs, result

    # -- conveniences ------------------------------------------------------------------

    def synthesize_requests(
        self,
        requests: Sequence[SynthesisRequest],
        schedule: ChunkSchedule | None = None,
        durations: list[list[int]] | None = None,
    ) -> list[np.ndarray]:
        """Whole audio of each request, synthesized as one batch.

        ``durations``, if given, receives each request's samples per phoneme id.
        """
        parts: list[list[np.ndarray]] = [[] for _ in requests]
        timings: list[list[int]] = [[] for _ in requests]
        for chunk in self.stream(requests, schedule):
            parts[chunk.item].append(chunk.samples)
            if chunk.phoneme_samples is not None:
                timings[chunk.item] = chunk.phoneme_samples
        if durations is not None:
            durations.extend(timings)
        return [np.concatenate(p) for p in parts]

    def synthesize(
        self,
        text: str,
        params: SynthesisParams | None = None,
        schedule: ChunkSchedule | None = None,
    ) -> Iterator[AudioChunk]:
        """Stream one text, sentence after sentence (``item`` is always 0).

        The first chunk carries the front end's warnings.

        Raises:
            engine.frontend.TextError: empty, too long, or unsupported text.
        """
        reqs, result = self.requests(text, params)
        warnings = list(result.warnings)
        offset = 0
        for s, req in enumerate(reqs):
            sentence_samples = 0
            for chunk in self.stream([req], schedule):
                sentence_samples = chunk.offset + len(chunk.samples)
                chunk.offset += offset
                chunk.is_last = chunk.is_last and s == len(reqs) - 1
                if warnings:
                    chunk.warnings, warnings = warnings, []
                yield chunk
            offset += sentence_samples

    def synthesize_texts(
        self,
        texts: Sequence[str],
        params: Sequence[SynthesisParams] | SynthesisParams | None = None,
        max_batch: int = 8,
    ) -> list[np.ndarray]:
        """Whole audio of each text; all their sentences batched together.

        Raises:
            engine.frontend.TextError: for the first text that cannot be spoken.
        """
        if params is None or isinstance(params, SynthesisParams):
            params = [params or SynthesisParams()] * len(texts)
        groups = [self.requests(text, p)[0] for text, p in zip(texts, params)]
        return self.synthesize_groups(groups, max_batch)

    def synthesize_groups(
        self,
        groups: Sequence[Sequence[SynthesisRequest]],
        max_batch: int = 8,
        durations: list[list[list[int]]] | None = None,
    ) -> list[np.ndarray]:
        """Whole audio of each group of sentences (one text each), batched longest-first.

        Sorting by length keeps each batch's items alike, so padding stays small.
        ``durations``, if given, receives per group the per-id samples of each sentence.
        """
        if max_batch < 1:
            raise ValueError(f"max_batch must be ≥ 1, got {max_batch}")
        flat = [(g, r) for g, reqs in enumerate(groups) for r in reqs]
        order = sorted(range(len(flat)), key=lambda j: -len(flat[j][1].ids))
        audio: dict[int, np.ndarray] = {}
        timing: dict[int, list[int]] = {}
        for b in range(0, len(order), max_batch):
            part = order[b : b + max_batch]
            found: list[list[int]] = []
            audio.update(
                zip(part, self.synthesize_requests([flat[j][1] for j in part], None, found))
            )
            timing.update(zip(part, found))
        out: list[list[np.ndarray]] = [[] for _ in groups]
        times: list[list[list[int]]] = [[] for _ in groups]
        for j, (g, _) in enumerate(flat):
            out[g].append(audio[j])
            times[g].append(timing[j])
        if durations is not None:
            durations.extend(times)
        return [np.concatenate(p) if p else np.zeros(0, np.float32) for p in out]
