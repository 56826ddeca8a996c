"""``voxlive detect``: does a file carry voxlive's watermark?"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from .errors import EXIT_FAILED, EXIT_USAGE

__all__ = ["run_detect"]


def run_detect(args: argparse.Namespace) -> int:
    """Score every file; print a line each (or one JSON array).

    Returns:
        0 when every file is marked, 1 when one is not, 2 when one cannot be read.
    """
    from voxlive.engine.watermark import THRESHOLD, detect, load_perthnet

    net = load_perthnet(args.device)
    results: list[dict[str, Any]] = []
    for path in args.files:
        try:
            audio, rate = _read(path)
        except (OSError, ValueError) as exc:
            results.append({"file": str(path), "error": _reason(exc)})
            continue
        value = detect(net, audio, rate)
        results.append(
            {
                "file": str(path),
                "marked": value >= THRESHOLD,
                "score": round(value, 4),
                "seconds": round(len(audio) / rate, 3),
            }
        )
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
    else:
        for r in results:
            if "error" in r:
                print(f"{r['file']}: unreadable: {r['error']}")
            else:
                verdict = "marked" if r["marked"] else "not marked"
                print(f"{r['file']}: {verdict} (score {r['score']:.3f}, {r['seconds']:.1f} s)")
    if any("error" in r for r in results):
        return EXIT_USAGE
    return 0 if all(r["marked"] for r in results) else EXIT_FAILED


def _read(path: Path) -> tuple[np.ndarray, int]:
    """A file's audio as float32 mono, and its rate."""
    from voxlive.engine.watermark import decode_audio

    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory")
    if not path.exists():
        raise FileNotFoundError(path)
    return decode_audio(path.read_bytes())


def _reason(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
