"""Entry point of the ``voxlive`` command (and ``python -m voxlive``).

The only place that configures logging.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: the process's), set up logging, run; returns the exit status."""
    from .parser import build_parser, dispatch

    args = build_parser().parse_args(argv)
    verbose = getattr(args, "verbose", False)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if verbose:  # the server's socket chatter too (server/app.py keeps it at WARNING)
        logging.getLogger("voxlive.server.app.sockets").setLevel(logging.DEBUG)
    return dispatch(args)


if __name__ == "__main__":
    sys.exit(main())
