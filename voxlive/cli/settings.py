"""The flags of ``voxlive serve``, generated from :class:`voxlive.server.config.Config`.

Each field becomes ``--field-name`` (its ``doc`` as help, its default and variable
shown); values stay the strings typed so that ``Config.from_args`` parses flags
and ``VOXLIVE_*`` variables alike and names the one that is wrong.
"""

from __future__ import annotations

import argparse
import typing
from typing import Any, Final, Literal

from voxlive.server.config import Config, env_name, flag_name

__all__ = ["ALIASES", "NEGATIONS", "add_settings"]

ALIASES: Final[dict[str, tuple[str, ...]]] = {"redis_url": ("--redis",)}
"""Other names a setting's flag answers to (``--redis`` is the documented short form)."""
NEGATIONS: Final[dict[str, str]] = {"watermark": "--no-watermark"}
"""Boolean settings with a flag of no value that turns them off (``--no-watermark`` is
``--watermark false``)."""

_METAVARS: Final = {
    "host": "ADDRESS",
    "redis_url": "URL",
    "device": "DEVICE",
    "token": "TOKEN",
    "audit_log": "PATH",
}


def add_settings(parser: argparse.ArgumentParser) -> None:
    """One flag per ``Config`` field, in declaration order."""
    hints = typing.get_type_hints(Config)
    for f in Config.settings():
        parser.add_argument(
            flag_name(f.name),
            *ALIASES.get(f.name, ()),
            dest=f.name,
            default=None,
            metavar=_metavar(f.name, hints[f.name]),
            help=f"{_phrase(f.metadata['doc'])} (default: {_shown(f.default)}; "
            f"env {env_name(f.name)})".replace("%", "%%"),
        )
        if f.name in NEGATIONS:
            parser.add_argument(
                NEGATIONS[f.name],
                dest=f.name,
                action="store_const",
                const="false",
                help=f"the same as {flag_name(f.name)} false",
            )


def _metavar(name: str, kind: Any) -> str:
    if typing.get_origin(kind) is Literal:
        return "{" + ",".join(typing.get_args(kind)) + "}"
    if kind is int:
        return "N"
    if kind is float:
        return "SECONDS" if name.endswith("_s") else "X"
    return _METAVARS.get(name, name.upper())


def _phrase(doc: str) -> str:
    """A field's doc sentence in the style of the other flags' help: lower case, no stop."""
    if len(doc) > 1 and doc[1].islower():
        doc = doc[0].lower() + doc[1:]
    return doc.removesuffix(".")


def _shown(default: object) -> str:
    return "unset" if default is None else str(default)
