"""What goes between a gateway and a worker: one sentence to perform, its audio back.

A work entry is one :class:`SentenceJob`: the sentence as the gateway's front end made
it (ids included, so a worker never runs the front end), the utterance's controls (a
registered voice's fitted transform travels with them: no store lookup on the worker)
and where the audio goes. The worker performs the sentence alone
(:func:`voxlive.engine.interface.alone`): the same samples it has inside its utterance,
its marks counted from its own first sample (the gateway moves them into place).

A result is one chunk of final audio (float32 at the engine's rate, exactly as the
engine made it) with the sentence's marks on its first chunk, or a status
(``expired``, ``failed``) that ends the sentence. A sentence's chunk 0 says that the
worker's batcher began it (the gateway's ``started``), its audio follows from chunk 1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Final, Literal

import msgpack
import numpy as np

from voxlive.engine.interface import Controls, Sentence, SentenceMarks
from voxlive.engine.transform import VoiceTransform

from ..marks import marks_from_list, marks_to_list
from .base import AUDIO, MARKS

__all__ = [
    "STARTED",
    "STATUS",
    "Chunk",
    "SentenceJob",
    "Status",
    "chunk_fields",
    "job_fields",
    "read_chunk",
    "read_job",
    "started_fields",
    "status_fields",
]

STARTED: Final = "started"
"""Result field of a sentence's chunk 0: the worker's batcher began it."""
STATUS: Final = "status"
"""Result field that ends a sentence without audio: ``expired`` or ``failed``."""
_REASON: Final = "reason"
_JOB_VERSION: Final = b"1"
"""Layout of a work entry; a worker refuses entries of another (a gateway and workers of
different releases side by side during a rolling upgrade fail loudly, not garbled)."""

Status = Literal["expired", "failed"]
_CONTROL_NAMES: Final = tuple(f.name for f in fields(Controls) if f.name != "voice")
_TRANSFORM_NAMES: Final = frozenset(f.name for f in fields(VoiceTransform))


@dataclass(frozen=True, slots=True)
class SentenceJob:
    """One sentence of one utterance, to perform on a worker."""

    gateway: str
    """Whose result stream the audio goes to."""
    utterance: str
    """The utterance's key, unique across gateways (``<gateway>:<n>``)."""
    index: int
    """The sentence's position in its utterance."""
    session: str
    """Fairness key: a worker's batcher lets sessions take turns."""
    sentence: Sentence
    controls: Controls
    sample_rate: int
    """The gateway's engine rate: a worker whose engine has another refuses the job."""


def job_fields(job: SentenceJob) -> dict[str, bytes]:
    """``job`` as a work entry's fields."""
    s, c = job.sentence, job.controls
    controls: dict[str, Any] = {name: getattr(c, name) for name in _CONTROL_NAMES}
    controls["voice"] = None if c.voice is None else asdict(c.voice)
    body = {
        "gateway": job.gateway,
        "utterance": job.utterance,
        "index": job.index,
        "session": job.session,
        "sentence": [s.text, s.phonemes, s.ids, s.words, s.voice],
        "controls": controls,
        "rate": job.sample_rate,
    }
    return {"v": _JOB_VERSION, "job": msgpack.packb(body, use_bin_type=True)}


def read_job(entry: dict[str, bytes]) -> SentenceJob:
    """The job in a work entry's fields.

    Raises:
        ValueError: not a job this release can run (another layout, or malformed).
    """
    if entry.get("v") != _JOB_VERSION:
        raise ValueError(f"work entry of layout {entry.get('v')!r}, this worker reads 1")
    try:
        body = msgpack.unpackb(entry["job"], raw=False)
        text, phonemes, ids, words, voice = body["sentence"]
        raw = dict(body["controls"])
        transform = raw.pop("voice")
        if transform is not None and not set(transform) <= _TRANSFORM_NAMES:
            raise ValueError(f"unknown voice transform fields {sorted(transform)}")
        return SentenceJob(
            gateway=str(body["gateway"]),
            utterance=str(body["utterance"]),
            index=int(body["index"]),
            session=str(body["session"]),
            sentence=Sentence(str(text), list(phonemes), list(ids), list(words), str(voice)),
            controls=Controls(
                **{k: raw[k] for k in _CONTROL_NAMES},
                voice=None if transform is None else VoiceTransform(**transform),
            ),
            sample_rate=int(body["rate"]),
        )
    except ValueError:
        raise
    except Exception as exc:  # msgpack and unpacking raise many unrelated types
        raise ValueError(f"malformed work entry: {exc!r}") from exc


@dataclass(frozen=True, slots=True)
class Chunk:
    """A result's payload."""

    samples: np.ndarray
    """float32 at the engine's rate (empty for a status)."""
    marks: SentenceMarks | None
    """The sentence's marks, counted from its first sample (its first chunk only)."""
    status: Status | None = None
    """Set: the sentence ended without (more) audio, for ``reason``."""
    reason: str = ""
    started: bool = False
    """The worker began the sentence (no audio in this one)."""


def chunk_fields(samples: np.ndarray, marks: SentenceMarks | None) -> dict[str, bytes]:
    """A chunk of audio (and the sentence's marks) as a result's fields."""
    out = {AUDIO: np.ascontiguousarray(samples, dtype="<f4").tobytes()}
    if marks is not None:
        out[MARKS] = msgpack.packb(marks_to_list(marks), use_bin_type=True)
    return out


def started_fields() -> dict[str, bytes]:
    """A sentence's chunk 0: the worker's batcher began it."""
    return {STARTED: b"1"}


def status_fields(status: Status, reason: str) -> dict[str, bytes]:
    """A sentence's end without audio (deadline passed, synthesis failed)."""
    return {STATUS: status.encode(), _REASON: reason.encode()}


def read_chunk(entry: dict[str, bytes]) -> Chunk:
    """The payload of a result.

    Raises:
        ValueError: malformed.
    """
    if STARTED in entry:
        return Chunk(np.zeros(0, np.float32), None, started=True)
    status = entry.get(STATUS)
    if status is not None:
        if status not in (b"expired", b"failed"):
            raise ValueError(f"unknown result status {status!r}")
        kind: Status = "expired" if status == b"expired" else "failed"
        reason = entry.get(_REASON, b"").decode(errors="replace")
        return Chunk(np.zeros(0, np.float32), None, kind, reason)
    audio = entry.get(AUDIO, b"")
    if len(audio) % 4:
        raise ValueError(f"audio of {len(audio)} bytes is not float32 samples")
    marks = None
    if MARKS in entry:
        try:
            marks = marks_from_list(msgpack.unpackb(entry[MARKS], raw=False))
        except Exception as exc:  # msgpack and unpacking raise many unrelated types
            raise ValueError(f"malformed marks: {exc!r}") from exc
    return Chunk(np.frombuffer(audio, "<f4").astype(np.float32), marks)
