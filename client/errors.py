"""The one exception of the client: the connection, not an utterance, went wrong."""

from __future__ import annotations

__all__ = ["ClientError"]


class ClientError(Exception):
    """The connection could not be opened, failed or closed, or the server broke the protocol.

    Args:
        message: What happened, for people.
        code: ``connect_failed``, ``closed`` (the connection is gone),
            ``protocol_violation``, or the server's error code when it refused the
            ``hello`` (``auth_failed``, ``unsupported``, …) or a voice request
            (``too_short``, ``silent``, ``unsupported_format``, …; SPEC.md §4.6).
        close_code: The WebSocket close code, when there was one.
    """

    def __init__(self, message: str, *, code: str = "closed", close_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.close_code = close_code

    def copy(self) -> ClientError:
        """A fresh exception with the same details (each waiter raises its own)."""
        return ClientError(self.message, code=self.code, close_code=self.close_code)
