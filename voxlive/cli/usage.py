"""How ``voxlive``'s help reads: descriptions and examples kept as written, defaults shown."""

from __future__ import annotations

import argparse

__all__ = ["Formatter", "add_command"]


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the layout of descriptions and examples; shows defaults that say something."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if text == argparse.SUPPRESS:
            return text
        shown = action.default not in (None, False, argparse.SUPPRESS)
        if shown and "default" not in text and action.option_strings:
            text += " (default: %(default)s)"
        return text


def add_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    description: str,
    examples: str,
) -> argparse.ArgumentParser:
    """A subcommand with its one-line summary, description and examples."""
    p = sub.add_parser(
        name,
        help=summary,
        description=description,
        epilog="examples:\n" + examples,
        formatter_class=Formatter,
    )
    # Also after the command (`voxlive serve -v`); SUPPRESS keeps a -v given before it.
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="debug logging, and tracebacks of errors",
    )
    return p
