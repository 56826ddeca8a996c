"""The client's in-flight utterances: what it may send, what the server may answer.

The bookkeeping is the server's own ``Utterances`` (SPEC.md §4.5, §8.3), fed from the
other side: the client's messages are accounted for as the server accounts for them, and
the server's must pass the checks it makes on its own output (``started`` once, frames
in order with contiguous offsets and one ``last``, ``marks`` for the utterance's stream,
``done`` once and after ``last``). An utterance whose messages break them is given up
(a ``Violation``); the connection goes on.

On top of that the client knows what the server does not: streams claimed by
``open_stream`` that got no text yet (the server has never heard of them).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace

from .client_events import REJECTED_CODES, ClientEvent, Ignored, Received, Violation
from .client_requests import is_id
from .codec import SAMPLE_WIDTH, encode_client
from .errors import InvalidMessage, InvalidState
from .messages import (
    Append,
    AudioFrame,
    Cancel,
    ClientMessage,
    Done,
    End,
    Error,
    Flush,
    Limits,
    Marks,
    Speak,
    SpeakOptions,
    Started,
)
from .schema import U32_MAX
from .types import AudioFormat, Status, UtteranceId
from .utterances import Utterances

__all__ = ["ClientUtterances"]


class ClientUtterances:
    """The utterances of one client connection.

    Args:
        limits: From ``welcome``; checked before sending.
        audio_format: From ``welcome``; frames must hold whole samples of it.
        events: Where events are appended.
        outgoing: Where encoded messages to send are appended.
    """

    __slots__ = ("_broken", "_events", "_ids", "_limits", "_outgoing", "_unopened", "_width", "_u")

    def __init__(
        self,
        limits: Limits,
        audio_format: AudioFormat,
        events: list[ClientEvent],
        outgoing: list[bytes | str],
    ) -> None:
        self._limits = limits
        self._width = SAMPLE_WIDTH[audio_format]
        self._events = events
        self._outgoing = outgoing
        # The server counts in-flight utterances itself; the client's count lags it by
        # a done on the wire, so the server alone refuses too many (too_many_inflight).
        self._u = Utterances(replace(limits, max_inflight=U32_MAX))
        self._unopened: dict[UtteranceId, SpeakOptions] = {}
        self._broken: set[UtteranceId] = set()
        self._ids = itertools.count(1)

    @property
    def ids(self) -> frozenset[UtteranceId]:
        """Utterances opened (or streams claimed) and not yet done."""
        return self._u.ids | frozenset(self._unopened)

    # --- client output: raises ValueError / InvalidState -------------------------------

    def check_text(self, text: str, *, allow_blank: bool = False) -> None:
        """See ``ClientSession.check_text``."""
        if not text or (text.isspace() and not allow_blank):
            raise ValueError("empty_text: there is nothing to say")
        limit = self._limits.max_text_chars
        if len(text) > limit:
            raise ValueError(f"text_too_long: {len(text)} characters; the limit is {limit}")

    def speak(self, text: str, options: SpeakOptions, id: str | None) -> UtteranceId:
        """See ``ClientSession.send_speak``."""
        self.check_text(text)
        claimed = self._claim(id)
        self._queue(Speak(claimed, text, options))
        self._u.open(claimed, streamed=False)
        return claimed

    def open_stream(self, options: SpeakOptions, id: str | None) -> UtteranceId:
        """See ``ClientSession.open_stream``."""
        claimed = self._claim(id)
        self._unopened[claimed] = options
        return claimed

    def append(self, id: UtteranceId, text: str) -> None:
        """See ``ClientSession.send_append``."""
        self._check_input(id, "append")
        if not text:
            return
        self.check_text(text, allow_blank=True)
        options = self._unopened.get(id)
        data = encode_client(Append(id, text, options))
        try:
            if options is None:
                self._u.append(Append(id, text))
            else:
                self._u.open(id, streamed=True, text_chars=len(text))
        except InvalidMessage as exc:
            raise ValueError(f"{exc.code}: {exc.message}") from exc
        self._unopened.pop(id, None)
        self._outgoing.append(data)

    def input(self, message: Flush | End) -> None:
        """See ``ClientSession.send_flush`` and ``send_end``."""
        self._check_input(message.id, type(message).__name__.lower())
        if message.id not in self._unopened:
            self._u.input(message)
            self._queue(message)
        elif isinstance(message, End):
            self._finish_locally(message.id, "completed")

    def cancel(self, id: UtteranceId | None) -> None:
        """See ``ClientSession.send_cancel``."""
        targets = list(self.ids) if id is None else [id] if id in self.ids else []
        opened = [t for t in targets if t not in self._unopened]
        for target in targets:
            if target in self._unopened:
                self._finish_locally(target, "cancelled")
        if opened:
            self._u.cancel(Cancel(id))
            self._queue(Cancel(id))

    def accepting(self, id: UtteranceId) -> bool:
        """See ``ClientSession.accepting``."""
        if id in self._unopened:
            return True
        try:
            self._u.input(Flush(id))  # checks only: a flush changes nothing
        except InvalidMessage:
            return False
        return True

    def _check_input(self, id: UtteranceId, action: str) -> None:
        if not self.accepting(id):
            raise InvalidState(f"cannot {action}: stream {id} was ended or cancelled")

    def _claim(self, id: str | None) -> UtteranceId:
        if id is None:
            while (new := UtteranceId(f"u{next(self._ids)}")) in self.ids:
                pass
            return new
        if not is_id(id):
            raise ValueError(f"utterance id {id!r}: use 1-64 characters of A-Z a-z 0-9 . _ : -")
        if id in self.ids:
            raise ValueError(f"utterance {id} is already in flight")
        return UtteranceId(id)

    # --- server input: events, never raises ---------------------------------------------

    def on_audio(self, frame: AudioFrame) -> None:
        """An audio frame: it must be the next one of a started stream."""
        id = self._u.owner(frame.stream)
        if id is None:
            self._events.append(Ignored(f"dropped an audio frame of unknown stream {frame.stream}"))
        elif id not in self._broken:
            sent = f"sent (seq, offset) {(frame.seq, frame.offset)}"
            if self._check(id, lambda: self._u.audio(frame, self._width), sent):
                self._events.append(Received(id, frame))

    def on_started(self, started: Started) -> None:
        """``started``: once per utterance; any other is ignored."""
        if started.id in self._broken:
            return
        try:
            self._u.start(started.id, started.stream)
        except InvalidState as exc:
            reason = f"ignored started for {started.id}, which is not waiting to start: {exc}"
            self._events.append(Ignored(reason))
            return
        self._events.append(Received(started.id, started))

    def on_marks(self, marks: Marks) -> None:
        """``marks``: for a started utterance and its own stream."""
        if marks.id not in self._u or marks.id in self._broken:
            return
        if self._check(marks.id, lambda: self._u.check_marks(marks), "sent marks"):
            self._events.append(Received(marks.id, marks))

    def on_done(self, done: Done) -> None:
        """``done``: after the stream's ``last`` frame; ends the utterance either way."""
        if done.id not in self._u:
            self._events.append(Ignored(f"ignored done for {done.id}, which is not in flight"))
            return
        if done.id in self._broken or not self._check(
            done.id, lambda: self._u.finish(done), "sent done"
        ):
            self._u.discard(done.id)
            self._broken.discard(done.id)
        elif self._u.ended_early(done.id):
            # The server ended the stream before our end: the id stays reserved until
            # we send end (SPEC.md §4.3), which also tells it no more text will come.
            self._u.release(done.id)
            self._queue(End(done.id))
        self._events.append(Received(done.id, done))

    def on_error(self, error: Error) -> bool:
        """An ``error``; return whether it named an utterance in flight."""
        if error.id is None or error.id not in self.ids:
            return False
        if error.id not in self._broken:
            self._events.append(Received(error.id, error))
            if error.code in REJECTED_CODES and self._u.stream_of(error.id) is None:
                # The server refused to open it: no done will follow (REJECTED_CODES).
                self._finish_locally(error.id, "failed")
        return True

    def _check(self, id: UtteranceId, rule: Callable[[], None], what: str) -> bool:
        """Apply ``rule`` (it raises ``InvalidState``); on failure give ``id`` up."""
        try:
            rule()
        except InvalidState as exc:
            self._broken.add(id)
            stream = self._u.stream_of(id)
            message = f"utterance {id}: stream {stream} {what}: {exc}"
            self._events.append(Violation(message, utterance=id))
            return False
        return True

    def _finish_locally(self, id: UtteranceId, status: Status) -> None:
        self._unopened.pop(id, None)
        self._u.discard(id)
        self._events.append(Received(id, Done(id=id, stream=None, status=status)))

    def _queue(self, message: ClientMessage) -> None:
        self._outgoing.append(encode_client(message))
