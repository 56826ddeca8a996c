"""Admission limits: token buckets, hourly windows, session counts, the client's address.

Everything here reads one clock, ``time.monotonic`` unless a test hands in its own,
and runs on the event loop thread. The server's settings (``config.py``) become one
:class:`Quotas`; its answers are seconds to wait (0 when admitted), which the
connection turns into ``rate_limited`` errors with ``retry_after_ms`` (SPEC.md §6) or
into close 1013 for sessions (SPEC.md §7).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .config import Config

__all__ = [
    "Clock",
    "Network",
    "Quotas",
    "RateLimiter",
    "SessionCounts",
    "TokenBucket",
    "WindowLimiter",
    "client_ip",
    "parse_networks",
    "retry_after_ms",
]

Clock = Callable[[], float]
"""Seconds on a monotonic clock."""

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

HOUR_S: Final = 3600.0


class TokenBucket:
    """``burst`` tokens at most, refilled at ``rate_per_s``; one token per event.

    Args:
        rate_per_s: Tokens added per second (> 0).
        burst: Capacity, and the tokens a new bucket starts with (≥ 1).
        now: The clock's time at creation.
    """

    __slots__ = ("burst", "rate_per_s", "tokens", "updated")

    def __init__(self, rate_per_s: float, burst: int, now: float) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.tokens = float(burst)
        self.updated = now

    def wait_s(self, now: float) -> float:
        """Seconds until a token is there (0.0: one is there now)."""
        self._refill(now)
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate_per_s

    def take(self, now: float) -> None:
        """Use one token; call only after ``wait_s(now)`` returned 0."""
        self._refill(now)
        self.tokens -= 1.0

    def full(self, now: float) -> bool:
        """Whether the bucket is back to ``burst`` (it holds nothing worth keeping)."""
        self._refill(now)
        return self.tokens >= self.burst

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.burst), self.tokens + elapsed * self.rate_per_s)
        self.updated = now


class RateLimiter:
    """One :class:`TokenBucket` per subject (a client address, an API key).

    A rate of 0 turns the limiter off. Buckets that refilled completely are dropped
    now and then, so memory follows the subjects active in the last ``burst / rate``
    seconds, not every subject ever seen.
    """

    def __init__(self, rate_per_s: float, burst: int, clock: Clock = time.monotonic) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._pruned_at = clock()

    @property
    def enabled(self) -> bool:
        return self.rate_per_s > 0

    def __len__(self) -> int:
        return len(self._buckets)

    def wait_s(self, subject: str) -> float:
        """Seconds until ``subject`` may have a token (0.0: now, or the limiter is off)."""
        if not self.enabled:
            return 0.0
        bucket = self._buckets.get(subject)
        return 0.0 if bucket is None else bucket.wait_s(self.clock())

    def take(self, subject: str) -> None:
        """Use one of ``subject``'s tokens (after ``wait_s`` said 0)."""
        if not self.enabled:
            return
        now = self.clock()
        self._prune(now)
        bucket = self._buckets.get(subject)
        if bucket is None:
            bucket = self._buckets[subject] = TokenBucket(self.rate_per_s, self.burst, now)
        bucket.take(now)

    def _prune(self, now: float) -> None:
        if now - self._pruned_at < self.burst / self.rate_per_s:
            return
        self._pruned_at = now
        for subject in [s for s, b in self._buckets.items() if b.full(now)]:
            del self._buckets[subject]


def take_all(limits: Iterable[tuple[RateLimiter, str]]) -> float:
    """One token from each (limiter, subject), or none at all.

    Returns:
        0.0 when every token was taken; else the seconds until all of them are there
        (nothing is taken, so a refused request costs the client nothing).
    """
    pairs = list(limits)
    wait = max((limiter.wait_s(subject) for limiter, subject in pairs), default=0.0)
    if wait == 0.0:
        for limiter, subject in pairs:
            limiter.take(subject)
    return wait


class WindowLimiter:
    """At most ``count`` events per subject in any ``window_s`` (a sliding log).

    Exact where a token bucket of the same rate would allow twice ``count`` in the
    first window. ``count`` 0 turns it off.
    """

    def __init__(self, count: int, window_s: float, clock: Clock = time.monotonic) -> None:
        self.count = count
        self.window_s = window_s
        self.clock = clock
        self._events: dict[str, deque[float]] = {}

    def take(self, subject: str) -> float:
        """Count one event for ``subject``; returns 0.0, or the seconds until one is allowed
        (the event is then not counted)."""
        if self.count <= 0:
            return 0.0
        now = self.clock()
        self._forget(now)
        events = self._events.setdefault(subject, deque())
        if len(events) >= self.count:
            return max(events[0] + self.window_s - now, 1e-3)
        events.append(now)
        return 0.0

    def _forget(self, now: float) -> None:
        for subject in list(self._events):
            events = self._events[subject]
            while events and events[0] <= now - self.window_s:
                events.popleft()
            if not events:
                del self._events[subject]


class SessionCounts:
    """Sessions open, in all and per client address."""

    def __init__(self, max_total: int, max_per_ip: int) -> None:
        self.max_total = max_total
        self.max_per_ip = max_per_ip
        self.total = 0
        self._per_ip: dict[str, int] = {}

    def open(self, ip: str) -> str | None:
        """Count a new session from ``ip``; returns why it is refused (then not counted)."""
        if self.total >= self.max_total:
            return "server at capacity"
        if self._per_ip.get(ip, 0) >= self.max_per_ip:
            return "too many sessions from this address"
        self.total += 1
        self._per_ip[ip] = self._per_ip.get(ip, 0) + 1
        return None

    def close(self, ip: str) -> None:
        """A session counted by ``open(ip)`` ended."""
        self.total -= 1
        left = self._per_ip[ip] - 1
        if left:
            self._per_ip[ip] = left
        else:
            del self._per_ip[ip]

    def of(self, ip: str) -> int:
        return self._per_ip.get(ip, 0)


class Quotas:
    """The server's limits on sessions, utterances and voice registrations (``Config``).

    Args:
        config: ``max_sessions``, ``max_sessions_per_ip``, the ``utterances_per_s_*``
            and ``utterance_burst_*`` pairs and ``registrations_per_hour``.
        clock: Monotonic seconds (tests pass their own).
    """

    def __init__(self, config: Config, clock: Clock = time.monotonic) -> None:
        self.sessions = SessionCounts(config.max_sessions, config.max_sessions_per_ip)
        self.per_ip = RateLimiter(
            config.utterances_per_s_per_ip, config.utterance_burst_per_ip, clock
        )
        self.per_key = RateLimiter(
            config.utterances_per_s_per_key, config.utterance_burst_per_key, clock
        )
        self.registrations = WindowLimiter(config.registrations_per_hour, HOUR_S, clock)

    def utterance(self, ip: str, key: str | None) -> float:
        """Admit one utterance from ``ip`` (and API key id ``key``): 0.0, or seconds to wait.

        Both buckets apply; a refusal takes from neither.
        """
        limits = [(self.per_ip, ip)]
        if key is not None:
            limits.append((self.per_key, key))
        return take_all(limits)

    def registration(self, ip: str, key: str | None) -> float:
        """Admit one voice registration: counted per API key, or per address without one."""
        return self.registrations.take(f"key:{key}" if key is not None else f"ip:{ip}")


def retry_after_ms(wait_s: float) -> int:
    """A wait as ``retry_after_ms``: whole milliseconds, rounded up, at least 1."""
    return max(1, math.ceil(wait_s * 1000))


def parse_networks(text: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 127.0.0.1"`` as networks (a bare address is a network of one).

    Raises:
        ValueError: an entry is not an address or a network.
    """
    networks = []
    for entry in (e.strip() for e in text.split(",")):
        if entry:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network") from None
    return tuple(networks)


def client_ip(peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str:
    """The client's address: the socket's peer, or, when the peer is a trusted proxy, the
    nearest untrusted address in ``X-Forwarded-For`` (read from the right, since each
    proxy appends the address it received from; the left end is the client's word).

    Args:
        peer: The socket's peer address (``None`` for a socket without one).
        forwarded_for: The ``X-Forwarded-For`` header, all its values joined by commas.
        trusted: The ``trusted_proxies`` networks.
    """
    address = _normal(peer) or peer or "unknown"
    if not trusted or not forwarded_for or not _within(address, trusted):
        return address
    for hop in reversed(forwarded_for.split(",")):
        normal = _normal(hop.strip())
        if normal is None:
            return address  # a malformed hop: believe nothing left of it
        address = normal
        if not _within(address, trusted):
            break
    return address


def _normal(address: str | None) -> str | None:
    """An address in its one spelling (IPv4-mapped IPv6 as IPv4); ``None`` if not one."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _within(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in n for n in networks)
