"""How the ``voxlive`` command reports a failure: one line on stderr and an exit status.

- ``CommandError``: a failure the user can act on (a busy port): its message, its status;
- ``ValueError`` (a bad flag or variable, text that cannot be read) and ``OSError``
  (a file that cannot be read or written): the message, exit status 2, as argparse
  gives usage errors;
- anything else is unexpected: its type and message, exit status 1.

The traceback follows only under ``-v``.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Final

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "INPUT_FILES",
    "CommandError",
    "check_inputs",
    "run_reporting_errors",
]

EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130


class CommandError(Exception):
    """A failure to report as one line (``voxlive: error: MESSAGE``), exiting with ``status``."""

    def __init__(self, message: str, status: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.status = status


INPUT_FILES = {"file": "-f/--file", "voice": "--voice", "voice_file": "--voice", "texts": "--texts"}
"""Arguments that name a file to read, and the flag a message names for each."""


def check_inputs(args: argparse.Namespace) -> None:
    """Every input file given exists, checked before any model loads.

    Raises:
        FileNotFoundError: one is missing (the message names the flag and the path).
    """
    for dest, flag in INPUT_FILES.items():
        path = getattr(args, dest, None)
        if isinstance(path, Path) and not path.is_file():
            what = "is a directory, not a file" if path.is_dir() else "no such file"
            raise FileNotFoundError(f"{flag} {path}: {what}")


def run_reporting_errors(run: Callable[[], int], *, verbose: bool) -> int:
    """``run()``'s exit status, or the status of the error it raised, reported."""
    try:
        return run()
    except CommandError as exc:
        return _report(str(exc), exc.status, verbose)
    except OSError as exc:
        return _report(_describe(exc), EXIT_USAGE, verbose)
    except ValueError as exc:
        return _report(str(exc), EXIT_USAGE, verbose)
    except KeyboardInterrupt:
        print("voxlive: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        hint = "" if verbose else " (run with -v for the traceback)"
        return _report(f"unexpected {type(exc).__name__}: {exc}{hint}", EXIT_FAILED, verbose)


def _report(message: str, status: int, verbose: bool) -> int:
    print(f"voxlive: error: {message}", file=sys.stderr)
    if verbose:
        traceback.print_exc()
    return status


def _describe(exc: OSError) -> str:
    """``[Errno 2] No such file or directory: 'x'`` → ``x: No such file or directory``."""
    if exc.strerror and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)
