"""Entry point of the ``voxlive`` command (and ``python -m voxlive``).

The only place that configures logging.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from voxlive.server.logs import formatter

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: the process's), set up logging, run; returns the exit status."""
    from .parser import build_parser, dispatch

    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # --workers N starts it again
    verbose = getattr(args, "verbose", False)
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(_log_format(args)))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    if verbose:  # the server's socket chatter too (server/app.py keeps it at WARNING)
        logging.getLogger("voxlive.server.app.sockets").setLevel(logging.DEBUG)
    return dispatch(args)


def _log_format(args: argparse.Namespace) -> str:
    """``voxlive serve``'s ``log_format`` setting (flag or variable); ``text`` elsewhere.

    A setting that does not parse leaves the text format: ``dispatch`` reports it.
    """
    if args.command != "serve":
        return "text"
    from voxlive.server.config import Config

    try:
        config = Config.from_args(args)
    except ValueError:
        return "text"
    log_format: str = config.log_format
    return log_format


if __name__ == "__main__":
    sys.exit(main())
