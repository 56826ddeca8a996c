"""Bookkeeping of one connection's in-flight utterances (SPEC.md §4.5 and §8.3).

``Utterances`` enforces the per-utterance rules in both directions:

* what the client may say about an id (``duplicate_id``, ``unknown_id``,
  ``too_many_inflight``, speak-vs-append misuse, the appended-text budget): violations
  raise ``InvalidMessage`` and the connection stays open;
* what the server may send about it (``started`` once, frames in order with one
  ``last`` frame, ``done`` once): violations raise ``InvalidState``, a server bug.

Every method checks before it changes anything, so a raise leaves the state untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .errors import InvalidMessage, InvalidState
from .messages import Append, AudioFrame, Cancel, Done, End, Flush, Limits, Marks
from .schema import U32_MAX
from .types import StreamId, UtteranceId

__all__ = ["INFLIGHT_RETRY_AFTER_MS", "Utterance", "Utterances"]

INFLIGHT_RETRY_AFTER_MS: Final = 500
"""``retry_after_ms`` of ``too_many_inflight`` (SPEC.md §4.5): a slot frees with the
next ``done``, which the session cannot time; half a second is about one sentence of
synthesis on a CPU server, the usual time for an utterance to finish."""


@dataclass(slots=True)
class Utterance:
    """What is known about one in-flight utterance."""

    streamed: bool
    """Opened by ``append`` (else by ``speak``)."""
    text_chars: int = 0
    """Code points appended so far (streamed only)."""
    accepting: bool = True
    """Still takes ``append``/``flush``/``end``: streamed, neither ended nor cancelled."""
    stream: StreamId | None = None
    """Assigned by ``started``."""
    next_seq: int = 0
    next_offset: int = 0
    """Samples sent so far: the ``offset`` of the next frame."""
    finished: bool = False
    """The ``last`` audio frame was sent."""


class Utterances:
    """The in-flight utterances of one connection, by id and by stream.

    Args:
        limits: ``max_inflight`` and ``max_pending_text_chars`` are enforced here.
    """

    __slots__ = ("_by_id", "_by_stream", "_limits", "_ended_early")

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._by_id: dict[UtteranceId, Utterance] = {}
        self._by_stream: dict[StreamId, UtteranceId] = {}
        self._ended_early: dict[UtteranceId, None] = {}  # insertion-ordered set

    def ended_early(self, id: UtteranceId) -> bool:
        """Whether ``id`` is a streamed utterance the server finished before its ``end``.

        Such an id stays reserved (SPEC.md §4.3, ``append``) until the client sends
        ``end`` or ``cancel`` for it, so that text still on the wire cannot silently
        open a new utterance with default options.
        """
        return id in self._ended_early

    def release(self, id: UtteranceId) -> None:
        """The client acknowledged an early end (``end``/``cancel``): the id is free."""
        self._ended_early.pop(id, None)

    @property
    def ids(self) -> frozenset[UtteranceId]:
        """Ids opened and not yet reported ``done``."""
        return frozenset(self._by_id)

    def __contains__(self, id: object) -> bool:
        return id in self._by_id

    # --- client input: raises InvalidMessage -------------------------------------------

    def open(self, id: UtteranceId, *, streamed: bool, text_chars: int = 0) -> None:
        """Register a new utterance (``speak`` or first ``append``).

        Raises:
            InvalidMessage: ``duplicate_id`` if ``id`` is in flight, ``too_many_inflight``
                if ``limits.max_inflight`` are, ``text_too_long`` if ``text_chars``
                exceeds the appended-text budget.
        """
        if id in self._by_id:
            raise InvalidMessage(f"utterance {id} is already in flight", code="duplicate_id", id=id)
        if len(self._by_id) >= self._limits.max_inflight:
            message = f"{self._limits.max_inflight} utterances are already in flight"
            raise InvalidMessage(
                message, code="too_many_inflight", id=id, retry_after_ms=INFLIGHT_RETRY_AFTER_MS
            )
        self._check_budget(id, text_chars)
        self._by_id[id] = Utterance(streamed=streamed, text_chars=text_chars)

    def withdraw(self, id: UtteranceId) -> None:
        """Forget an utterance just opened that the server's policy refused (no ``done``)."""
        self._by_id.pop(id, None)

    def append(self, append: Append) -> None:
        """Account for a later ``append`` to an open streamed utterance.

        Raises:
            InvalidMessage: ``unknown_id``; ``invalid_message`` if the id was opened by
                ``speak``, was ended or cancelled, or the append carries options;
                ``text_too_long`` past the appended-text budget.
        """
        utterance = self._accepting(append.id, "append")
        if append.options is not None:
            message = "options are allowed only on the first append of an utterance"
            raise InvalidMessage(message, id=append.id)
        total = utterance.text_chars + len(append.text)
        self._check_budget(append.id, total)
        utterance.text_chars = total

    def input(self, message: Flush | End) -> None:
        """Account for ``flush`` or ``end``; ``end`` stops further text.

        Raises:
            InvalidMessage: ``unknown_id``; ``invalid_message`` if the id was opened by
                ``speak`` or was ended or cancelled.
        """
        utterance = self._accepting(message.id, type(message).__name__.lower())
        if isinstance(message, End):
            utterance.accepting = False

    def cancel(self, cancel: Cancel) -> None:
        """Account for ``cancel``: the utterances concerned take no more text.

        Raises:
            InvalidMessage: ``unknown_id`` if ``cancel.id`` is set and not in flight.
        """
        if cancel.id is None:
            targets = list(self._by_id.values())
        else:
            targets = [self._find(cancel.id, "cancel")]
        for utterance in targets:
            utterance.accepting = False

    def _find(self, id: UtteranceId, kind: str) -> Utterance:
        utterance = self._by_id.get(id)
        if utterance is None:
            message = f"{kind}: no utterance {id} is in flight"
            raise InvalidMessage(message, code="unknown_id", id=id)
        return utterance

    def _accepting(self, id: UtteranceId, kind: str) -> Utterance:
        utterance = self._find(id, kind)
        if not utterance.streamed:
            message = f"{kind} needs an utterance opened by append; {id} was opened by speak"
            raise InvalidMessage(message, id=id)
        if not utterance.accepting:
            raise InvalidMessage(f"utterance {id} was ended or cancelled", id=id)
        return utterance

    def _check_budget(self, id: UtteranceId, text_chars: int) -> None:
        limit = self._limits.max_pending_text_chars
        if text_chars > limit:
            message = f"utterance {id} would exceed {limit} characters of appended text"
            raise InvalidMessage(message, code="text_too_long", id=id)

    # --- server output: raises InvalidState --------------------------------------------

    def start(self, id: UtteranceId, stream: StreamId) -> None:
        """Assign ``stream`` to ``id`` (``started``).

        Raises:
            InvalidState: ``id`` is not in flight or already started; ``stream`` does not
                fit in a u32 or belongs to another in-flight utterance.
        """
        utterance = self._local(id)
        if utterance.stream is not None:
            raise InvalidState(f"utterance {id} has already started")
        if stream in self._by_stream or not 0 <= stream <= U32_MAX:
            raise InvalidState(f"stream {stream} is in use or does not fit in a u32")
        utterance.stream = stream
        self._by_stream[stream] = id

    def check_marks(self, marks: Marks) -> None:
        """Check that ``marks`` names a started utterance and its stream.

        Raises:
            InvalidState: ``marks.id`` is not in flight or does not own ``marks.stream``.
        """
        utterance = self._local(marks.id)
        if utterance.stream is None or utterance.stream != marks.stream:
            raise InvalidState(f"marks for stream {marks.stream}, which {marks.id} does not own")

    def audio(self, frame: AudioFrame, sample_width: int) -> None:
        """Account for one audio frame of a started stream.

        Raises:
            InvalidState: the stream was not started or already had its last frame;
                ``seq``/``offset`` are not the next ones; the PCM is not whole samples.
        """
        id = self._by_stream.get(frame.stream)
        if id is None:
            raise InvalidState(f"stream {frame.stream} has not been started")
        utterance = self._by_id[id]
        expected = (utterance.next_seq, utterance.next_offset)
        if utterance.finished or (frame.seq, frame.offset) != expected:
            raise InvalidState(f"stream {frame.stream} expects (seq, offset) {expected}")
        samples, rest = divmod(len(frame.pcm), sample_width)
        if rest:
            raise InvalidState(f"{len(frame.pcm)} bytes are not whole {sample_width}-byte samples")
        utterance.next_seq += 1
        utterance.next_offset += samples
        utterance.finished = frame.last

    def finish(self, done: Done) -> None:
        """Forget ``done.id`` and free its stream (``done``).

        Raises:
            InvalidState: ``done.id`` is not in flight; ``done.stream`` is not its stream
                (``None`` if it never started); a started stream had no ``last`` frame.
        """
        utterance = self._local(done.id)
        if done.stream != utterance.stream:
            raise InvalidState(f"done.stream must be {utterance.stream}, not {done.stream}")
        if utterance.stream is not None and not utterance.finished:
            raise InvalidState(f"stream {utterance.stream} needs its last frame before done")
        del self._by_id[done.id]
        if utterance.stream is not None:
            del self._by_stream[utterance.stream]
        if utterance.streamed and utterance.accepting:
            self._ended_early[done.id] = None
            if len(self._ended_early) > 4 * self._limits.max_inflight:
                del self._ended_early[next(iter(self._ended_early))]  # bounded memory

    def owner(self, stream: StreamId) -> UtteranceId | None:
        """Return the in-flight utterance that ``stream`` was started for, if any."""
        return self._by_stream.get(stream)

    def stream_of(self, id: UtteranceId) -> StreamId | None:
        """Return the stream of in-flight ``id``, or ``None`` if it has not started."""
        utterance = self._by_id.get(id)
        return None if utterance is None else utterance.stream

    def discard(self, id: UtteranceId) -> None:
        """Forget ``id`` and its stream without any check.

        For the client side, which gives up on an utterance the server refused (no
        ``done`` follows) or whose messages broke these rules.
        """
        utterance = self._by_id.pop(id, None)
        if utterance is not None and utterance.stream is not None:
            del self._by_stream[utterance.stream]

    def _local(self, id: UtteranceId) -> Utterance:
        utterance = self._by_id.get(id)
        if utterance is None:
            raise InvalidState(f"utterance {id} is not in flight")
        return utterance
