"""Process settings that a CPU engine under a live load needs (oneDNN, the allocator).

- **Kernel cache.** oneDNN builds (just in time) one kernel per convolution and input
  shape and keeps the last 1024. Streamed chunks, batched as they come, have many
  shapes (rows × width), so with the default cache a live server keeps rebuilding
  kernels for as long as it runs; with room for them the rebuilds die out.
- **Freed memory.** glibc gives large freed blocks back to the system at once and
  maps them again on the next request, so every decoder call's activations cost
  fresh page faults; keeping freed memory in the process stops that, and the peak
  memory stays what it was.

Figures: ``docs/performance.md``, "Server".
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from typing import Final

__all__ = ["KERNEL_CACHE", "keep_freed_memory", "reserve_kernel_cache"]

logger = logging.getLogger(__name__)

KERNEL_CACHE: Final = 8192
"""Kernels kept (oneDNN's ``ONEDNN_PRIMITIVE_CACHE_CAPACITY``; its default is 1024)."""
_M_TRIM_THRESHOLD: Final = -1
_M_MMAP_THRESHOLD: Final = -3
_MMAP_THRESHOLD_BYTES: Final = 32 << 20
"""glibc's largest: blocks up to this size come from the heap and are reused."""
_TRIM_THRESHOLD_BYTES: Final = 256 << 20
"""Free memory at the top of the heap kept before any is given back."""


def reserve_kernel_cache() -> None:
    """Ask oneDNN for :data:`KERNEL_CACHE` kernels, unless the environment already says.

    oneDNN reads the setting at its first convolution in the process, so engines call
    this before loading their weights; later calls change nothing.
    """
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(KERNEL_CACHE))


def keep_freed_memory() -> bool:
    """Keep freed blocks in the process instead of unmapping them (glibc only).

    A process-wide choice, so the commands that run an engine make it (``voxlive
    serve``, ``say``, ``bench``), not the library. Returns whether it applied.
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl, macOS): nothing to set
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    done = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES)
    )
    if not done:
        logger.debug("mallopt refused the allocator settings")
    return done
