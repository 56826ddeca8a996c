"""Who may open a session: API keys (each naming a tenant) and browser origins.

**Keys file** (``--keys-file``): UTF-8 text, one key a line, ``KEY TENANT`` separated by
spaces or tabs; blank lines and lines starting with ``#`` are skipped::

    # key                                tenant
    sk-3c0a1b6f8e2d4c5a9b7e1f0d2c4a6e8b   streamer-anna
    sk-9f8e7d6c5b4a39281706f5e4d3c2b1a0   streamer-anna     # a second key, for rotation
    sk-0123456789abcdef0123456789abcdef   studio-b

A key is 16–512 printable ASCII characters without spaces, not starting with ``#``; a
tenant 1–64 letters, digits, ``.``, ``_`` or ``-``. A key listed twice is an error. Keys
are held as SHA-256 digests and a presented key is compared with every one of them in
constant time (``hmac.compare_digest``, no early exit), so neither the time taken nor a
log line tells an attacker how much of a key was right.

**Origins** (``--allowed-origins``): a browser always sends ``Origin`` on a WebSocket
handshake, and a page on any site can open one to this server; the policy says which
pages may. Clients that send no ``Origin`` are not browsers (bots, game engines,
``voxlive client``) and are not affected.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

__all__ = ["KeyRing", "OriginPolicy", "Principal", "bearer", "parse_origins"]

_KEY: Final = re.compile(r"[!-~]{16,512}")
_TENANT: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")
_LOCAL_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "::1"})
_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ws": 80, "wss": 443}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a session authenticated as."""

    tenant: str | None
    """The key's tenant; ``None`` for the shared ``--token``."""
    key_id: str | None
    """A short digest of the key, naming it in logs and rate limits (never the key);
    ``None`` for the shared ``--token``, which is not a key of one client."""


class KeyRing:
    """The API keys (key → tenant) and the shared ``--token``, if any.

    Args:
        keys: Each key and its tenant.
        token: The single shared token (``--token``); it authenticates without a tenant.
    """

    def __init__(self, keys: Iterable[tuple[str, str]] = (), token: str | None = None) -> None:
        self._entries: list[tuple[bytes, Principal]] = []
        for key, tenant in keys:
            digest = _digest(key)
            self._entries.append((digest, Principal(tenant, digest.hex()[:12])))
        self.keys = len(self._entries)
        """How many API keys (the shared token not counted)."""
        if token is not None:
            self._entries.append((_digest(token), Principal(None, None)))

    @classmethod
    def load(cls, path: str | Path | None, token: str | None = None) -> KeyRing:
        """The keys of the file at ``path`` (none when ``path`` is None), and ``token``.

        Raises:
            OSError: the file cannot be read.
            ValueError: a line is not ``KEY TENANT``, or a key is listed twice (the
                message names the file and the line, never the key).
        """
        if path is None:
            return cls((), token)
        return cls(parse_keys(Path(path).read_text(encoding="utf-8"), str(path)), token)

    @property
    def required(self) -> bool:
        """Whether a client must authenticate (a key file or a token is configured)."""
        return bool(self._entries)

    def check(self, secret: str | None) -> Principal | None:
        """Who ``secret`` authenticates, or ``None``; compares against every entry."""
        if secret is None:
            return None
        digest = _digest(secret)
        found: Principal | None = None
        for known, principal in self._entries:
            if hmac.compare_digest(digest, known) and found is None:
                found = principal
        return found


def parse_keys(text: str, source: str = "keys file") -> list[tuple[str, str]]:
    """``KEY TENANT`` lines (see module docstring) as (key, tenant) pairs.

    Raises:
        ValueError: a line is malformed or a key repeats; the message names ``source``
            and the line number.
    """
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        comment = next((i for i, f in enumerate(fields) if f.startswith("#")), len(fields))
        fields = fields[:comment]  # "# …" to the end of the line is a comment
        if not fields:
            continue
        where = f"{source}, line {number}"
        if len(fields) != 2:
            raise ValueError(f"{where}: expected 'KEY TENANT', got {len(fields)} fields")
        key, tenant = fields
        if not _KEY.fullmatch(key):
            raise ValueError(f"{where}: a key is 16-512 printable ASCII characters")
        if not _TENANT.fullmatch(tenant):
            raise ValueError(f"{where}: a tenant is 1-64 of A-Z a-z 0-9 . _ -")
        if key in seen:
            raise ValueError(f"{where}: this key is listed already")
        seen.add(key)
        pairs.append((key, tenant))
    return pairs


def bearer(authorization: str | None) -> str | None:
    """The credentials of an ``Authorization: Bearer …`` header, or ``None``."""
    if authorization is None:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()


class OriginPolicy:
    """Which ``Origin`` may open a WebSocket.

    Args:
        allowed: ``--allowed-origins``: comma-separated origins (``https://example.com``,
            ``http://localhost:3000``), or ``*`` for any. ``None``: pages of this server
            itself and of ``localhost``/``127.0.0.1``/``[::1]`` (http or https, any port).
            A page of this server itself (its origin names the ``Host`` the handshake
            was sent to) is always allowed, so the demo page and overlay work.

    Raises:
        ValueError: an entry is not ``*`` or ``scheme://host[:port]``.
    """

    def __init__(self, allowed: str | None) -> None:
        entries = parse_origins(allowed) if allowed is not None else ()
        self.any = "*" in entries
        self.listed = frozenset(e for e in entries if e != "*")
        self.local = allowed is None

    def allows(self, origin: str | None, host: str | None) -> bool:
        """Whether a handshake with this ``Origin`` (``None``: not a browser) and ``Host``
        may go on."""
        if origin is None or self.any:
            return True
        normal = _normal_origin(origin)
        if normal is None:
            return False
        if normal in self.listed or _same_origin(normal, host):
            return True
        scheme, _, rest = normal.partition("://")
        return self.local and scheme in ("http", "https") and _hostname(rest) in _LOCAL_HOSTS


def parse_origins(text: str) -> tuple[str, ...]:
    """``--allowed-origins`` as normal origins (``*`` kept as is).

    Raises:
        ValueError: an entry is not ``*`` or ``scheme://host[:port]``.
    """
    origins = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        normal = "*" if entry == "*" else _normal_origin(entry)
        if normal is None:
            raise ValueError(f"{entry!r} is not an origin (scheme://host[:port]) or *")
        origins.append(normal)
    return tuple(origins)


def _normal_origin(origin: str) -> str | None:
    """``HTTPS://Example.com:443`` → ``https://example.com``; ``None`` if not an origin."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname or parts.path not in ("", "/"):
        return None
    if parts.query or parts.fragment or parts.username or parts.password:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    scheme = parts.scheme.lower()
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host += f":{port}"
    return f"{scheme}://{host}"


def _same_origin(origin: str, host: str | None) -> bool:
    """Whether ``origin`` (normal) is the origin of a page served at ``Host: host``."""
    if not host:
        return False
    scheme, _, netloc = origin.partition("://")
    return _normal_origin(f"{scheme}://{host.strip()}") == origin and bool(netloc)


def _hostname(netloc: str) -> str:
    """``[::1]:8765`` → ``::1``; ``localhost:3000`` → ``localhost``."""
    if netloc.startswith("["):
        return netloc[1:].partition("]")[0]
    return netloc.rpartition(":")[0] if ":" in netloc else netloc


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()
