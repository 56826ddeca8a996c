"""voxlive: a real-time, emotional text-to-speech streaming server for live interaction.

The installed package holds the product's parts under one name:

- ``voxlive.protocol``: the wire protocol, sans I/O (``protocol/SPEC.md``);
- ``voxlive.engine``: the speech engine (torch), behind ``voxlive.engine.interface``;
- ``voxlive.server``: the WebSocket server, batcher and stores;
- ``voxlive.client``: an asyncio client for bots and tools;
- ``voxlive.cli`` and ``voxlive.bench``: the ``voxlive`` command and its benchmarks.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
