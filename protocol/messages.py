"""Typed values for every protocol message (SPEC.md §4–§5).

Each message is a frozen, slotted dataclass. The codec (``protocol/codec.py``) turns them
into msgpack or JSON maps and back; the session (``protocol/session.py``) decides which are
allowed when. Constructors do not validate peer-facing ranges (the codec does that on
decode); only the configuration values, ``Limits`` and ``Capabilities``, check themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .capabilities import BuiltinVoice, Capabilities, Limits, Watermark
from .controls import INTENSITY, PITCH, SPEED, VOLUME
from .types import (
    AudioFormat,
    ErrorAbout,
    ErrorCode,
    Priority,
    Status,
    StreamId,
    UtteranceId,
    VoiceScope,
)

__all__ = [
    "AudioFrame",
    "AudioSpec",
    "Append",
    "Cancel",
    "BuiltinVoice",
    "Capabilities",
    "ClientMessage",
    "Consent",
    "Done",
    "End",
    "Error",
    "Flush",
    "Hello",
    "Limits",
    "Marks",
    "Phoneme",
    "ServerMessage",
    "SessionEvent",
    "Speak",
    "SpeakOptions",
    "Started",
    "Welcome",
    "Viseme",
    "VoiceDelete",
    "VoiceDeleted",
    "VoiceInfo",
    "VoiceList",
    "VoiceListing",
    "VoiceReady",
    "VoiceRegister",
    "VoiceSummary",
    "Watermark",
    "Word",
]


# --- client -> server ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AudioSpec:
    """Output audio: asked for in ``hello.audio``, resolved in ``welcome.audio``."""

    sample_rate: int | None = None
    """Hz, 8000–48000; ``None`` asks for the voice's own rate (always set in ``welcome``)."""
    format: AudioFormat = "s16le"
    """PCM sample encoding of every audio frame."""
    frame_ms: int = 40
    """Target duration of one audio frame, in milliseconds (10–200)."""


@dataclass(frozen=True, slots=True)
class SpeakOptions:
    """How to speak one utterance (the optional fields of ``speak`` / first ``append``)."""

    voice: str | None = None
    """Voice name from ``capabilities.voices``; ``None`` is the server's default voice."""
    lang: str | None = None
    """``"auto"``: the text's script picks the built-in voice; a language of
    ``capabilities.builtin_voices`` (``"zh"``): that language's voice; ``None``: ``voice``
    decides (v1.4)."""
    emotion: str | None = None
    """Emotion name from ``capabilities.emotions``; ``None`` is neutral."""
    intensity: float | None = INTENSITY.default
    """Strength of ``emotion``, 0–1 (``controls.INTENSITY``); ignored without an emotion.
    ``None`` leaves it out: the server's default applies (``started.intensity`` says
    which)."""
    speed: float = SPEED.default_value
    """Speaking-rate factor (``controls.SPEED``)."""
    pitch: float = PITCH.default_value
    """Pitch shift in semitones (``controls.PITCH``)."""
    volume: float = VOLUME.default_value
    """Gain in dB (``controls.VOLUME``)."""
    priority: Priority = "normal"
    """Scheduling class."""
    deadline_ms: int | None = None
    """Give up (status ``expired``) if audio has not started this many ms after receipt."""
    timestamps: bool = False
    """Ask for ``marks`` messages with word and phoneme timings."""
    seed: int | None = None
    """Random seed (0 – 2**63−1) for reproducible synthesis; ``None``: the server's fixed
    default (``controls.DEFAULT_SEED``, v1.8)."""
    cache: bool = True
    """May the server answer from its cache of repeated lines (v1.8); left out on the
    wire when true (a server before v1.8 refuses unknown fields)."""


@dataclass(frozen=True, slots=True)
class Hello:
    """First message of a connection: protocol version, auth token, output audio."""

    version: int
    token: str | None = None
    audio: AudioSpec = field(default_factory=AudioSpec)


@dataclass(frozen=True, slots=True)
class Speak:
    """Synthesize one complete text as one utterance."""

    id: UtteranceId
    text: str
    options: SpeakOptions = field(default_factory=SpeakOptions)


@dataclass(frozen=True, slots=True)
class Append:
    """Add a piece of text to a streamed utterance; the first append opens it.

    ``options`` is set only on the first append of an id. Events delivered by
    ``Session`` always carry options on the first append (defaults if the client sent
    none) and ``None`` on later ones, so ``options is not None`` means "opens".
    """

    id: UtteranceId
    text: str
    options: SpeakOptions | None = None


@dataclass(frozen=True, slots=True)
class Flush:
    """Synthesize the buffered text of a streamed utterance now."""

    id: UtteranceId


@dataclass(frozen=True, slots=True)
class End:
    """No more text for a streamed utterance; synthesize what is left."""

    id: UtteranceId


@dataclass(frozen=True, slots=True)
class Cancel:
    """Stop one utterance, or all of this connection's utterances when ``id`` is None."""

    id: UtteranceId | None = None


VoiceSummary = dict[str, str | int | float | bool]
"""What the server measured on a reference clip (``usable_s``, ``snr_db``, ...)."""


@dataclass(frozen=True, slots=True)
class Consent:
    """The client's attestation that the speaker of a clip consents to its voice being
    cloned (SPEC.md §4.6, v1.7). The server stores it with the voice and lists it.

    The codec checks it on decode (``schema.consent_from_wire``): ``by`` and ``method``
    1–200 characters and not blank, ``at`` an ISO 8601 date or date-time, ``statement``
    at most 2000 characters.
    """

    granted: bool
    """Whether the speaker consents; a server requiring consent refuses ``False``."""
    by: str
    """Who consents: the speaker's name or an id the client knows them by."""
    method: str
    """How consent was given: ``"signed form"``, ``"recorded verbal statement"``,
    ``"self (own voice)"``…"""
    at: str
    """When, as sent: an ISO 8601 date (``2024-05-01``) or date-time
    (``2024-05-01T12:30:00Z``)."""
    statement: str | None = None
    """The consent's wording or a note, if any."""


@dataclass(frozen=True, slots=True)
class VoiceRegister:
    """Upload a reference clip to register a voice (SPEC.md §4.6).

    On the wire this is one chunk: ``seq`` 0, 1, 2, … with ``final`` on the last one,
    and ``name``/``scope``/``consent`` only on chunk 0. The event ``Session`` delivers once the
    final chunk arrived carries the whole upload in ``audio`` (``seq`` 0, ``final``).
    """

    id: UtteranceId
    """Request id (same syntax as utterance ids, its own namespace)."""
    audio: bytes
    """This chunk of the file (in the event: the whole file)."""
    seq: int = 0
    final: bool = True
    name: str | None = None
    """Voice id wanted (1–64 of ``[A-Za-z0-9._:-]``); ``None``: the server picks one."""
    scope: VoiceScope = "session"
    consent: Consent | None = None
    """The speaker's consent (v1.7; chunk 0 only); ``None``: none was attested."""


@dataclass(frozen=True, slots=True)
class VoiceList:
    """Ask for the voices this session can use."""

    id: UtteranceId


@dataclass(frozen=True, slots=True)
class VoiceDelete:
    """Delete a registered voice this session can see."""

    id: UtteranceId
    voice: str


# --- server -> client ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Welcome:
    """Answer to ``hello``: the negotiated session parameters."""

    version: int
    session: str
    """Server-assigned session id, for logs and support requests."""
    audio: AudioSpec
    """Resolved output audio; ``sample_rate`` is always set. Channels are always 1."""
    limits: Limits
    capabilities: Capabilities


@dataclass(frozen=True, slots=True)
class Started:
    """Synthesis of an utterance started; its audio frames carry ``stream``."""

    id: UtteranceId
    stream: StreamId
    queue_ms: float
    """Time from receipt of the utterance's first message to the start, in ms."""
    emotion: str | None = None
    """The canonical emotion applied (a name of ``capabilities.emotions``), ``None`` when
    the server does not say (v1.3; left out of the wire map when ``None``)."""
    intensity: float | None = None
    """The intensity applied to ``emotion``, 0–1; ``None`` when the server does not say
    (v1.3; left out of the wire map when ``None``)."""


@dataclass(frozen=True, slots=True)
class Word:
    """One word's position in the utterance's audio, in output samples."""

    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Phoneme:
    """One phoneme's position in the utterance's audio, in output samples."""

    p: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Viseme:
    """One mouth shape's span in the utterance's audio, in output samples (v1.5).

    ``v`` is one of 15 names (``sil``, ``PP``, ``FF``, ``TH``, ``DD``, ``kk``, ``CH``,
    ``SS``, ``nn``, ``RR``, ``aa``, ``E``, ``ih``, ``oh``, ``ou``; SPEC.md §5.3).
    """

    v: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Marks:
    """Word, phoneme and viseme timings for the audio of ``stream`` from sample ``offset`` on."""

    id: UtteranceId
    stream: StreamId
    offset: int
    """First sample of the audio these timings describe (same axis as frame offsets)."""
    words: tuple[Word, ...] = ()
    phonemes: tuple[Phoneme, ...] = ()
    visemes: tuple[Viseme, ...] = ()
    """Mouth shapes from ``offset`` on, contiguous, for lip-sync (v1.5; empty from an
    older server, or for a voice whose language has no viseme table)."""


@dataclass(frozen=True, slots=True)
class Done:
    """An utterance finished; its id may be reused afterwards."""

    id: UtteranceId
    stream: StreamId | None
    """The utterance's stream, or ``None`` if it never started."""
    status: Status
    samples: int = 0
    """Samples sent in audio frames (per channel)."""
    audio_ms: float = 0.0
    """Duration of the audio sent, in ms."""
    first_audio_ms: float | None = None
    """Receipt of the utterance to its first audio frame, in ms; ``None`` without audio."""
    rtf: float | None = None
    """Real-time factor: synthesis time / audio duration; ``None`` without audio."""
    warnings: tuple[str, ...] = ()
    """What was skipped or read other than written in the text (v1.4; empty otherwise)."""


@dataclass(frozen=True, slots=True)
class Error:
    """Something went wrong; ``id`` names the utterance when it concerns one."""

    code: ErrorCode
    message: str
    """Human-readable detail; never parse it."""
    id: UtteranceId | None = None
    retryable: bool = False
    """Whether sending the same request again later may succeed."""
    retry_after_ms: int | None = None
    """Suggested wait before retrying, in ms."""
    about: ErrorAbout | None = None
    """What ``id`` names (v1.6): ``"utterance"`` or ``"request"`` (a voice request);
    ``None`` when ``id`` is ``None``, or from a server before v1.6. The server session
    fills it in when it sends the error (``Session.send_error``)."""


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """One binary audio frame: a 16-byte header and mono PCM (SPEC.md §8)."""

    stream: StreamId
    seq: int
    """0, 1, 2, … within the stream."""
    offset: int
    """Sample offset of the frame's first sample within the utterance's audio."""
    pcm: bytes | memoryview
    """Mono PCM in the session's format; empty only on a ``last`` frame. A
    ``memoryview`` lets the engine hand over its buffer without a copy; decoding
    always gives ``bytes``."""
    last: bool = False
    """Final frame of the stream."""
    cancelled: bool = False
    """The utterance was cancelled; this frame fades out."""


@dataclass(frozen=True, slots=True)
class VoiceReady:
    """A ``voice.register`` succeeded: ``voice`` may be named in ``speak.voice``."""

    id: UtteranceId
    voice: str
    cached: bool
    """The clip was known already: nothing was analysed again."""
    summary: VoiceSummary = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VoiceInfo:
    """One entry of a ``voice.list`` answer."""

    voice: str
    scope: VoiceScope
    summary: VoiceSummary = field(default_factory=dict)
    consent: Consent | None = None
    """The consent registered with the voice (v1.7); ``None``: none was given (or the
    server is older)."""


@dataclass(frozen=True, slots=True)
class VoiceListing:
    """Answer to ``voice.list`` (wire type ``voice.list``)."""

    id: UtteranceId
    voices: tuple[VoiceInfo, ...] = ()


@dataclass(frozen=True, slots=True)
class VoiceDeleted:
    """Answer to ``voice.delete``; ``deleted`` is false when no such voice was visible."""

    id: UtteranceId
    voice: str
    deleted: bool


ClientMessage = (
    Hello | Speak | Append | Flush | End | Cancel | VoiceRegister | VoiceList | VoiceDelete
)
"""Every message a client may send."""

SessionEvent = Speak | Append | Flush | End | Cancel | VoiceRegister | VoiceList | VoiceDelete
"""Every message ``Session.events_received`` hands to the server (``Hello`` stays inside)."""

ServerMessage = Welcome | Started | Marks | Done | Error | VoiceReady | VoiceListing | VoiceDeleted
"""Every control message a server may send (audio frames are ``AudioFrame``)."""
