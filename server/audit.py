"""The audit log of cloned voices: who registered, was refused, used and deleted which
voice, and with whose consent (SPEC.md §4.6, v1.7).

One JSON object per record, one record per line. Every record has ``ts`` (UTC, ISO 8601,
milliseconds, ``Z``) and ``event``, then who asked: ``session`` (the id ``welcome``
announced), ``server`` (this process's instance), ``client`` (the client's address),
``tenant`` and ``key`` (the API key's tenant and short digest, never the key; ``null``
without keys). Then, by ``event``:

- ``voice.registered``: ``request``, ``voice``, ``scope``, ``cached``, ``consent`` (the
  map stored with the voice, or ``null``) and ``reference``, the clip's summary numbers
  (``usable_s`` seconds of speech kept, ``snr_db``, ``clipping``, rates, …);
- ``voice.refused``: ``request``, ``reason`` (the error code sent: ``consent_required``,
  ``rate_limited``, ``too_short``, …), ``voice`` (the name asked for, or ``null``),
  ``scope`` and ``consent`` (as sent, or ``null``);
- ``voice.used``: ``voice``, ``scope``, ``utterances`` and ``audio_s``: how many of the
  session's utterances spoke in that voice and the seconds of audio they sent. Written
  when the session ends, and when the voice is deleted (the uses until then, for every
  session of this process);
- ``voice.deleted``: ``voice`` and ``scope``; the session that deleted it is the record's.

Never audio, and never the text of an utterance. An utterance in a registered voice only
adds to a counter (:meth:`AuditLog.used`); lines are written at a registration, a
refusal, a deletion and a session's end.

``--audit-log -`` (the default) makes each record the message of an INFO line of the
logger ``voxlive.audit``; a path appends the lines to that file (opened at start,
line-buffered, so each record reaches the file when it is written).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TextIO

from voxlive.protocol.messages import Consent, VoiceRegister
from voxlive.protocol.schema import consent_to_wire

from .store import Scope, VoiceProfile

__all__ = ["AUDIT_LOGGER", "Actor", "AuditLog"]

AUDIT_LOGGER: Final = "voxlive.audit"
"""The logger the records go to with ``--audit-log -``."""

audit_logger = logging.getLogger(AUDIT_LOGGER)
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who a record is about: a session and where it comes from."""

    session: str
    """The session's id (``welcome.session``)."""
    client: str
    """The client's address (``App.client_ip``)."""
    server: str | None = None
    """The server process's instance (``App.instance``)."""
    tenant: str | None = None
    """The API key's tenant; ``None`` without keys."""
    key: str | None = None
    """The API key's short digest (``Principal.key_id``), never the key."""

    def fields(self) -> dict[str, Any]:
        return {
            "session": self.session,
            "server": self.server,
            "client": self.client,
            "tenant": self.tenant,
            "key": self.key,
        }


@dataclass(slots=True)
class _Uses:
    """One session's uses of one voice, not yet written."""

    actor: Actor
    scope: Scope
    utterances: int = 0
    audio_s: float = 0.0


class AuditLog:
    """See module docstring. Every method runs on the event loop's thread.

    Args:
        file: Where the lines go; ``None``: the logger ``voxlive.audit``.
    """

    def __init__(self, file: TextIO | None = None) -> None:
        self._file = file
        self._uses: dict[str, dict[str, _Uses]] = {}
        """Session → voice → uses not yet written."""

    @classmethod
    def open(cls, target: str) -> AuditLog:
        """The audit log of a ``--audit-log`` setting: ``-``, or a file to append to.

        Raises:
            OSError: the file cannot be opened for appending.
        """
        if target == "-":
            return cls()
        return cls(Path(target).expanduser().open("a", encoding="utf-8", buffering=1))

    def registered(
        self, actor: Actor, request: str, profile: VoiceProfile, *, cached: bool
    ) -> None:
        """A registration succeeded: ``profile`` is the voice it was answered with."""
        reference = {
            k: v
            for k, v in profile.summary.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        self._write(
            "voice.registered",
            actor,
            request=request,
            voice=profile.voice_id,
            scope=profile.scope,
            cached=cached,
            consent=_consent(profile.consent),
            reference=reference,
        )

    def refused(self, actor: Actor, event: VoiceRegister, reason: str) -> None:
        """A registration was refused with the error code ``reason``."""
        self._write(
            "voice.refused",
            actor,
            request=event.id,
            reason=reason,
            voice=event.name,
            scope=event.scope,
            consent=_consent(event.consent),
        )

    def used(self, actor: Actor, voice: str, scope: Scope, audio_s: float) -> None:
        """An utterance of ``actor``'s session spoke ``audio_s`` seconds in ``voice``.

        Only counts (O(1), nothing written): see :meth:`session_ended`.
        """
        voices = self._uses.setdefault(actor.session, {})
        uses = voices.get(voice)
        if uses is None:
            uses = voices[voice] = _Uses(actor, scope)
        uses.utterances += 1
        uses.audio_s += audio_s

    def session_ended(self, session: str) -> None:
        """Write the uses of every voice by ``session``, which ended."""
        for voice, uses in self._uses.pop(session, {}).items():
            self._write_uses(voice, uses)

    def deleted(self, actor: Actor, profile: VoiceProfile) -> None:
        """``actor`` deleted ``profile``: its uses until now are written, then the deletion."""
        for session in list(self._uses):
            voices = self._uses[session]
            uses = voices.pop(profile.voice_id, None)
            if uses is not None:
                self._write_uses(profile.voice_id, uses)
            if not voices:
                del self._uses[session]
        self._write("voice.deleted", actor, voice=profile.voice_id, scope=profile.scope)

    def close(self) -> None:
        """Write the uses of sessions still open (the server is stopping), then close."""
        for session in list(self._uses):
            self.session_ended(session)
        if self._file is not None:
            self._file.close()

    def _write_uses(self, voice: str, uses: _Uses) -> None:
        self._write(
            "voice.used",
            uses.actor,
            voice=voice,
            scope=uses.scope,
            utterances=uses.utterances,
            audio_s=round(uses.audio_s, 3),
        )

    def _write(self, event: str, actor: Actor, **values: Any) -> None:
        ts = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        record = {"ts": ts, "event": event, **actor.fields(), **values}
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        if self._file is None:
            audit_logger.info("%s", line)
            return
        try:
            self._file.write(line + "\n")
        except (OSError, ValueError):  # a full disk, or closed: the server goes on
            logger.error("writing the audit log failed: %s", line, exc_info=True)


def _consent(consent: Consent | None) -> dict[str, Any] | None:
    return None if consent is None else consent_to_wire(consent)
