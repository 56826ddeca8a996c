"""``voxlive emotions``: the emotion vocabulary and what each emotion does to the voice.

Reads the profile table of ``engine/emotion.py`` (values at intensity 1;
intensity scales every deviation from neutral) and its synonyms. Loads no
model, so it answers at once.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from voxlive.engine.emotion import DEFAULT_INTENSITY, EMOTIONS, SYNONYMS

__all__ = ["KEYS", "emotion_table", "format_emotions", "run_emotions"]

KEYS = (
    "name",
    "rate",
    "pause",
    "f0_shift_st",
    "f0_range",
    "gain_db",
    "tilt_db_per_octave",
    "breathiness",
    "end_contour_st",
    "synonyms",
)
"""The keys of each ``--json`` object, in order."""


def emotion_table() -> list[dict[str, Any]]:
    """One object per emotion (vocabulary order): its profile at intensity 1 and synonyms."""
    rows = []
    for name, p in EMOTIONS.items():
        rows.append(
            {
                "name": name,
                "rate": p.rate,
                "pause": p.pause,
                "f0_shift_st": p.f0_shift_st,
                "f0_range": p.f0_range,
                "gain_db": p.gain_db,
                "tilt_db_per_octave": p.tilt_db_per_octave,
                "breathiness": p.breathiness,
                "end_contour_st": p.end_contour_st,
                "synonyms": [tag for tag, target in SYNONYMS.items() if target == name],
            }
        )
    return rows


_COLUMNS = (  # header, key, format
    ("emotion", "name", "{}"),
    ("rate", "rate", "×{:.2f}"),
    ("pauses", "pause", "×{:.2f}"),
    ("F0 level", "f0_shift_st", "{:+.1f} st"),
    ("F0 range", "f0_range", "×{:.2f}"),
    ("loudness", "gain_db", "{:+.1f} dB"),
    ("tilt", "tilt_db_per_octave", "{:+.1f} dB/oct"),
    ("breathiness", "breathiness", "{:+.2f}"),
    ("end contour", "end_contour_st", "{:+.1f} st"),
)


def format_emotions(rows: list[dict[str, Any]]) -> str:
    """The table as aligned text, then each emotion's synonyms."""
    cells = [[header for header, _, _ in _COLUMNS]]
    cells += [[fmt.format(row[key]) for _, key, fmt in _COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(_COLUMNS))]
    lines = [
        "  ".join(
            (c.ljust(w) if i == 0 else c.rjust(w)) for i, (c, w) in enumerate(zip(line, widths))
        ).rstrip()
        for line in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    out = [
        f"Emotions at intensity 1 (intensity 0–1 scales each change; default "
        f"{DEFAULT_INTENSITY:g}):",
        "",
        *lines,
        "",
        "Synonyms (also accepted as --emotion / emotion tags):",
    ]
    width = max(len(row["name"]) for row in rows)
    for row in rows:
        out.append(f"  {row['name'].ljust(width)}  {', '.join(row['synonyms']) or '—'}")
    return "\n".join(out)


def run_emotions(args: argparse.Namespace) -> int:
    """Print the table (JSON list of objects with ``--json``); returns 0."""
    rows = emotion_table()
    print(json.dumps(rows, indent=2, ensure_ascii=False) if args.json else format_emotions(rows))
    return 0
