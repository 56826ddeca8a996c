"""voxlive's asyncio client: many utterances over one WebSocket, for bots and tools.

See ``voxlive.client.client`` for a walkthrough. The protocol itself is kept by
``voxlive.protocol.client_session``; this package pumps the socket. It imports ``protocol``,
``websockets`` and ``numpy`` (``soundfile`` only to write WAV files), never the
server or the engine.
"""

from __future__ import annotations

from voxlive.protocol.messages import Consent

from .client import REJECTED_CODES, Client, SpeakKwargs
from .errors import ClientError
from .result import Result
from .utterance import Event, Stream, Utterance

__all__ = [
    "REJECTED_CODES",
    "Client",
    "ClientError",
    "Consent",
    "Event",
    "Result",
    "SpeakKwargs",
    "Stream",
    "Utterance",
]
