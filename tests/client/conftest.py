"""The real server's fixtures, shared with ``tests/server``."""

from __future__ import annotations

from tests.server.conftest import server_voice  # noqa: F401
