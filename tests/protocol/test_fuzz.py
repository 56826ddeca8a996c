"""Fuzzing: no peer input makes ``Session.receive_data`` raise (SPEC.md §9.3).

Every input must end in exactly one outcome: one event, one ``welcome`` or one ``error``
(and, for connection-level errors, a close code).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import msgpack  # type: ignore[import-untyped]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voxlive.protocol import (
    Capabilities,
    Done,
    Error,
    Limits,
    Session,
    State,
    VoiceReady,
    Welcome,
)
from voxlive.protocol.schema import OPTION_FIELDS

from .helpers import CAPS, decode_all, open_session, uid

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEYS = ["type", "id", "text", "version", "token", "audio", "sample_rate", "format", "frame_ms"]
KEYS += list(OPTION_FIELDS) + ["seq", "final", "name", "scope", "voice"]
TYPES = ["hello", "speak", "append", "flush", "end", "cancel", "welcome", ""]
TYPES += ["voice.register", "voice.list", "voice.delete", "voice.ready"]
VOICE_CAPS = Capabilities(emotions=("happy",), voices=("joe",), voice_registration=True)
capabilities = st.sampled_from([CAPS, VOICE_CAPS])

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.binary(max_size=12)
    | st.sampled_from(TYPES)
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=20,
)

VALID: list[dict[str, Any]] = [
    {"type": "hello", "version": 1, "token": "t", "audio": {"sample_rate": 16000}},
    {"type": "speak", "id": "a", "text": "Hello.", "speed": 1.2, "emotion": "happy"},
    {"type": "append", "id": "b", "text": "Hi", "voice": "joe", "timestamps": True},
    {"type": "append", "id": "a", "text": " more"},
    {"type": "flush", "id": "b"},
    {"type": "end", "id": "b"},
    {"type": "cancel", "id": "a"},
    {"type": "cancel"},
    {"type": "voice.register", "id": "r", "audio": b"RIFF", "seq": 0, "final": True},
    {"type": "voice.register", "id": "r", "audio": "UklGRg==", "seq": 0, "final": False},
    {"type": "voice.register", "id": "r", "audio": b"", "seq": 0, "final": True, "name": "v"},
    {"type": "voice.list", "id": "l"},
    {"type": "voice.delete", "id": "d", "voice": "v"},
]


def assert_one_outcome(session: Session) -> None:
    """Exactly one event, welcome or error; a close code only after an error.

    The one input with no outcome is an accepted ``voice.register`` chunk that is not
    final: its upload is then in progress (SPEC.md §4.6).
    """
    events = session.events_received()
    sent = decode_all(session.data_to_send())
    if not events and not sent and session.uploading:
        return
    assert len(events) + len(sent) == 1, (events, sent)
    assert all(isinstance(message, Error | Welcome) for message in sent)
    if session.close_code() is not None:
        assert session.state is State.CLOSED
        assert isinstance(sent[0], Error)
        assert session.last_error is not None


def encode_value(value: object, binary: bool) -> bytes | str:
    if binary:
        return msgpack.packb(value, use_bin_type=True)
    return json.dumps(value, default=lambda b: base64.b64encode(b).decode())


@FUZZ
@given(data=st.binary(max_size=200), opened=st.booleans(), caps=capabilities)
def test_arbitrary_bytes_never_raise(data, opened, caps) -> None:
    session = open_session(caps) if opened else Session(Limits(), CAPS, "s-1")
    session.receive_data(data)
    assert_one_outcome(session)


@FUZZ
@given(text=st.text(max_size=200), opened=st.booleans())
def test_arbitrary_text_never_raises(text, opened) -> None:
    session = open_session() if opened else Session(Limits(), CAPS, "s-1")
    session.receive_data(text)
    assert_one_outcome(session)


@FUZZ
@given(value=values, binary=st.booleans(), opened=st.booleans(), caps=capabilities)
def test_arbitrary_values_never_raise(value, binary, opened, caps) -> None:
    session = open_session(caps) if opened else Session(Limits(), CAPS, "s-1")
    session.receive_data(encode_value(value, binary))
    assert_one_outcome(session)


mutations = st.lists(
    st.tuples(st.sampled_from(["set", "delete", "add"]), st.sampled_from(KEYS), values),
    min_size=1,
    max_size=3,
)


def mutate(base: dict[str, Any], changes: list[tuple[str, str, Any]]) -> dict[str, Any]:
    """``base`` with ``changes`` (``set`` an existing key, ``add`` any, ``delete``)."""
    wire = dict(base)
    for action, key, value in changes:
        if action == "delete":
            wire.pop(key, None)
        elif action == "add" or key in wire:
            wire[key] = value
    return wire


@FUZZ
@given(base=st.sampled_from(VALID), changes=mutations, binary=st.booleans())
def test_mutated_valid_messages_never_raise(base, changes, binary) -> None:
    wire = mutate(base, changes)
    caps = VOICE_CAPS if base["type"].startswith("voice.") else CAPS
    session = Session(Limits(), caps, "s-1") if base["type"] == "hello" else open_session(caps)
    session.receive_data(encode_value(wire, binary))
    assert_one_outcome(session)


ops = st.lists(
    st.tuples(
        st.sampled_from(["speak", "append", "append+", "flush", "end", "cancel", "done"]),
        st.sampled_from(["a", "b", "c", None]),
    ),
    max_size=30,
)


SILENT = "silent"


class Model:
    """What the session should answer, from SPEC.md §4 alone (streamed, accepting, chars)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.inflight: dict[str, list[Any]] = {}
        self.ended_early: set[str] = set()  # SPEC.md §4.3: reserved until end/cancel

    def expect(self, op: str, name: str | None) -> str | None:
        """Return the expected error code, None for an event, SILENT for neither."""
        if name in self.ended_early:
            if op in ("end", "cancel"):
                self.ended_early.discard(name)
                return SILENT
            if op != "speak":
                return "invalid_message"
        if name is None:
            if op != "cancel":
                return "invalid_message"
            for opened in self.inflight.values():
                opened[1] = False
            return None
        entry = self.inflight.get(name)
        if op in ("speak", "append", "append+") and (entry is None or op == "speak"):
            if entry is not None:
                return "duplicate_id"
            if len(self.inflight) >= self.limits.max_inflight:
                return "too_many_inflight"
            self.inflight[name] = [op != "speak", op != "speak", 5]
            self.ended_early.discard(name)  # only speak reaches here for a reserved id
            return None
        if entry is None:
            return "unknown_id"
        streamed, accepting, chars = entry
        if op == "cancel":
            entry[1] = False
            return None
        if not streamed or not accepting or op == "append+":
            return "invalid_message"
        if op == "append":
            if chars + 5 > self.limits.max_pending_text_chars:
                return "text_too_long"
            entry[2] += 5
        entry[1] = op != "end"
        return None


@FUZZ
@given(script=ops)
def test_random_utterance_traffic_matches_a_reference_model(script) -> None:
    limits = Limits(max_inflight=2, max_text_chars=10, max_pending_text_chars=12)
    session = open_session(limits=limits)
    model = Model(limits)
    for op, name in script:
        if op == "done":
            if name is not None and name in model.inflight:
                session.send_done(Done(uid(name), None, "cancelled"))
                assert len(session.data_to_send()) == 1
                streamed, accepting, _ = model.inflight.pop(name)
                if streamed and accepting:  # the server ended it before the client's end
                    model.ended_early.add(name)
            continue
        wire: dict[str, object] = {"type": op.rstrip("+")}
        if name is not None:
            wire["id"] = name
        if op in ("speak", "append", "append+"):
            wire["text"] = "hello"
        if op == "append+":
            wire["speed"] = 1.5
        expected = model.expect(op, name)
        session.receive_data(encode_value(wire, binary=True))
        sent = decode_all(session.data_to_send())
        events = session.events_received()
        if expected == SILENT:
            assert (events, sent) == ([], [])
        elif expected is None:
            assert (len(events), sent) == (1, [])
        else:
            assert events == []
            assert [(e.code, e.id) for e in sent if isinstance(e, Error)] == [(expected, name)]
        assert session.inflight == set(model.inflight)
        assert session.close_code() is None


chunk_ops = st.lists(
    st.tuples(
        st.sampled_from(["r", "q", "p"]),
        st.integers(min_value=0, max_value=3),  # seq
        st.booleans(),  # final
        st.integers(min_value=0, max_value=6),  # bytes
        st.booleans(),  # name on the chunk
    )
    | st.tuples(st.just("answer"), st.sampled_from(["r", "q", "p"])),
    max_size=25,
)


@FUZZ
@given(script=chunk_ops)
def test_random_uploads_match_a_reference_model(script) -> None:
    """SPEC.md §4.6 from the text alone: order, limits and assembly of voice.register."""
    limits = Limits(max_reference_bytes=8, max_registrations=2)
    session = open_session(VOICE_CAPS, limits=limits)
    uploads: dict[str, list[Any]] = {}  # id -> [next seq, bytes so far]
    pending: set[str] = set()
    for step in script:
        if step[0] == "answer":
            if step[1] in pending:
                session.send_voice_ready(VoiceReady(uid(step[1]), "v", False))
                session.data_to_send()
                pending.discard(step[1])
            continue
        name, seq, final, size, named = step
        wire = {"type": "voice.register", "id": name, "audio": b"x" * size, "seq": seq}
        wire |= {"final": final} | ({"name": "n"} if named else {})
        expected: str | None = None
        upload = uploads.get(name)
        if seq == 0:
            if upload is not None or name in pending:
                uploads.pop(name, None)
                expected = "duplicate_id"
            elif len(uploads) + len(pending) >= 2:
                expected = "too_many_inflight"
            else:
                upload = [0, b""]
        elif upload is None:
            expected = "invalid_message"
        elif seq != upload[0] or named:
            del uploads[name]
            expected = "invalid_message"
        if expected is None and len(upload[1]) + size > 8:
            uploads.pop(name, None)
            expected = "too_large"
        session.receive_data(encode_value(wire, binary=True))
        events = session.events_received()
        sent = decode_all(session.data_to_send())
        if expected is not None:
            assert events == []
            assert [(e.code, e.id) for e in sent if isinstance(e, Error)] == [(expected, name)]
        elif final:
            uploads.pop(name, None)
            pending.add(name)
            assert sent == []
            assert [(e.id, e.audio) for e in events] == [(name, upload[1] + b"x" * size)]
        else:
            uploads[name] = [seq + 1, upload[1] + b"x" * size]
            assert (events, sent) == ([], [])
        assert session.registrations == set(uploads) | pending
        assert session.close_code() is None
