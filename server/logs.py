"""The server's log lines: one per finished utterance, and the JSON line format.

``voxlive serve --log-format json`` writes one JSON object per line: ``timestamp``
(UTC, ISO 8601), ``level``, ``logger``, ``message``, then the record's structured
fields (what the call passed as ``extra``, e.g. a session's ``session``). Each
finished utterance is one INFO line of the logger ``voxlive.server.utterances``
(:class:`UtteranceLog`) with its figures and never its text, unless the server is
told to log text (``log_text``): what viewers typed stays out of log pipelines by
default.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

if TYPE_CHECKING:  # the command line imports this module for every command: keep it light
    from .config import Config
    from .metrics import Finished

__all__ = [
    "LOG_FORMATS",
    "TEXT_FORMAT",
    "UTTERANCE_LOGGER",
    "JsonFormatter",
    "LogFormat",
    "UtteranceLog",
    "formatter",
]

LogFormat = Literal["text", "json"]
LOG_FORMATS: Final[tuple[LogFormat, ...]] = get_args(LogFormat)
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""The ``text`` format's line."""
UTTERANCE_LOGGER: Final = "voxlive.server.utterances"

logger = logging.getLogger(UTTERANCE_LOGGER)

# What every LogRecord carries; anything else on a record came in as ``extra``.
_STANDARD: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (see module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of a ``log_format`` setting.

    Raises:
        ValueError: ``log_format`` is not one of :data:`LOG_FORMATS`.
    """
    if log_format == "json":
        return JsonFormatter()
    if log_format == "text":
        return logging.Formatter(TEXT_FORMAT)
    raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")


class UtteranceLog:
    """The line each finished utterance leaves in the log (logger :data:`UTTERANCE_LOGGER`).

    Args:
        include_text: log the utterance's text too (off by default: it is what viewers
            typed).
    """

    def __init__(self, include_text: bool = False) -> None:
        self.include_text = include_text

    @classmethod
    def from_config(cls, config: Config) -> UtteranceLog:
        """As the server's settings say (``log_text``)."""
        return cls(include_text=config.log_text)

    def finished(self, report: Finished) -> None:
        """Log one utterance that sent its ``done``."""
        if not logger.isEnabledFor(logging.INFO):
            return
        fields: dict[str, Any] = {
            "utterance": report.id,
            "session": report.session,
            "status": report.status,
            "error_code": report.error_code,
            "queue_ms": _ms(report.queue_s),
            "first_audio_ms": _ms(report.first_audio_s),
            "audio_ms": _ms(report.audio_s),
            "total_ms": _ms(report.total_s),
            "rtf": None if report.rtf is None else round(report.rtf, 4),
            "sentences": report.sentences,
            "voice": report.voice,
            "emotion": report.emotion,
            "text_chars": report.text_chars,
            "cache": report.cache,
        }
        text = "utterance %s %s: session %s, queue %s ms, first audio %s ms, audio %s ms, "
        text += "rtf %s, %d sentences, voice %s, emotion %s, %d chars"
        args: list[object] = [
            report.id,
            report.status,
            report.session,
            fields["queue_ms"],
            fields["first_audio_ms"],
            fields["audio_ms"],
            fields["rtf"],
            report.sentences,
            report.voice or "default",
            report.emotion,
            report.text_chars,
        ]
        if report.error_code is not None:
            text += ", error %s"
            args.append(report.error_code)
        if report.cache is not None:
            text += ", cache %s"
            args.append(report.cache)
        if self.include_text and report.text is not None:
            fields["text"] = report.text
            text += ", text %r"
            args.append(report.text)
        logger.info(text, *args, extra=fields)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)
