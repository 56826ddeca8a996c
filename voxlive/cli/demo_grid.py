"""``voxlive say --demo-grid OUTDIR``: one sentence in every emotion, to hear side by side.

Writes ``OUTDIR/<emotion>-<intensity>.wav`` for every emotion at each of
:data:`INTENSITIES` (neutral once), all rendered in one batch with the same
noise seed so that only the emotion differs; ``OUTDIR/grid.json`` with each
clip's measured prosody (``engine.measure``); and ``OUTDIR/index.html``, a
self-contained page with a table of players (rows: emotions, columns:
intensities) and those numbers under each player.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import sys
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from voxlive.bench import mos as mos_judge
from voxlive.engine.emotion import EMOTIONS
from voxlive.engine.expression import check_rate, render
from voxlive.engine.frontend import FrontendResult, TextError
from voxlive.engine.measure import ProsodyMeasure, measure
from voxlive.engine.pcm import write_wav
from voxlive.engine.phonemes import PAUSE_PHONEMES
from voxlive.engine.synthesizer import Synthesizer
from voxlive.engine.transform import VoiceTransform
from voxlive.engine.voice import SynthesisParams

__all__ = [
    "DEFAULT_SEED",
    "DEFAULT_TEXT",
    "INTENSITIES",
    "MEASURES",
    "Clip",
    "format_html",
    "grid_clips",
    "run_demo_grid",
    "spoken_phonemes",
    "write_demo_grid",
]

DEFAULT_TEXT = "I can't believe it, we actually made it to the finals tonight!"
"""A lively line with a pause in it: rate, pause, pitch and contour all show."""
INTENSITIES = (0.5, 1.0)
DEFAULT_SEED = 1
"""Noise seed when neither ``--seed`` nor ``--deterministic`` is given (the same for
every clip, so the clips differ by their emotion only)."""
MEASURES = ("f0_mean_st", "f0_range_st", "rate_phones_s", "rms_db", "mos")
"""The measured figures shown on the page (``grid.json`` has all of ``ProsodyMeasure``)."""
_LABELS = {  # name, value and unit in the cells, unit in the legend
    "f0_mean_st": ("F0 mean", "{:+.1f} st", "semitones re 100 Hz"),
    "f0_range_st": ("F0 range", "{:.1f} st", "10–90 %, semitones"),
    "rate_phones_s": ("rate", "{:.1f} ph/s", "phonemes per second of speech"),
    "rms_db": ("RMS", "{:.1f} dB", "speech level re full scale"),
    "mos": ("MOS", "{:.2f}", "Distill-MOS predicted quality, 1–5"),
}


@dataclass(frozen=True, slots=True)
class Clip:
    """One cell of the grid."""

    emotion: str
    intensity: float

    @property
    def file(self) -> str:
        return f"{self.emotion}-{self.intensity:.1f}.wav"


def grid_clips(intensities: tuple[float, ...] = INTENSITIES) -> list[Clip]:
    """Neutral once (at the highest intensity: it is the same at any), then every
    other emotion at each intensity, in the vocabulary's order."""
    clips = [Clip("neutral", max(intensities))]
    for name in EMOTIONS:
        if name != "neutral":
            clips.extend(Clip(name, k) for k in intensities)
    return clips


def spoken_phonemes(result: FrontendResult) -> int:
    """Phonemes a listener hears: every sentence's, less pauses (punctuation) and spaces."""
    return sum(
        1 for s in result.sentences for p in s.phonemes if p not in PAUSE_PHONEMES and p != " "
    )


def run_demo_grid(
    synth: Synthesizer,
    args: argparse.Namespace,
    params: SynthesisParams,
    voice: VoiceTransform | None,
) -> int:
    """The ``say --demo-grid`` command (flags already checked by ``server.say``).

    Returns:
        0, or 2 when the text cannot be spoken.

    Raises:
        ValueError: ``--speed`` leaves the engine's range for some emotion.
        OSError: the directory or a file cannot be written.
    """
    if params.seed is None:
        params = replace(params, seed=DEFAULT_SEED)
    text = args.text if args.text is not None else DEFAULT_TEXT
    try:
        grid = write_demo_grid(
            synth,
            args.demo_grid,
            text,
            params,
            voice=voice,
            voice_name=None if args.voice is None else str(args.voice),
            pitch_st=args.pitch,
            volume_db=args.volume,
            max_batch=args.batch,
        )
    except TextError as exc:
        print(f"voxlive: {exc.code}: {exc}", file=sys.stderr)
        return 2
    print(
        f"voxlive: wrote {len(grid['clips'])} clips, index.html and grid.json to {args.demo_grid}",
        file=sys.stderr,
    )
    return 0


def write_demo_grid(
    synth: Synthesizer,
    outdir: Path,
    text: str,
    params: SynthesisParams,
    *,
    voice: VoiceTransform | None = None,
    voice_name: str | None = None,
    pitch_st: float = 0.0,
    volume_db: float = 0.0,
    max_batch: int = 8,
) -> dict[str, Any]:
    """Render, measure and write the grid; returns what ``grid.json`` holds.

    Each clip's quality is judged by Distill-MOS when it is installed (``mos``).

    Raises:
        engine.frontend.TextError: the text cannot be spoken.
        ValueError: a control out of range (for some emotion).
        OSError: the directory or a file cannot be written.
    """
    result = synth.voice.frontend.process(text)
    clips = grid_clips()
    expressions = [
        synth.expression(
            emotion=c.emotion,
            intensity=c.intensity,
            pitch_st=pitch_st,
            volume_db=volume_db,
            voice=voice,
        )
        for c in clips
    ]
    for expression in expressions:
        check_rate(expression, params)
    n = len(clips)
    audio = render(
        synth.voice,
        [result] * n,
        expressions,
        [params] * n,
        max_batch=max_batch,
        marker=synth.watermarker,
    )
    n_phones = spoken_phonemes(result)
    rate = synth.sample_rate
    judge = mos_judge.mos if mos_judge.available() else None
    outdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for clip, samples in zip(clips, audio, strict=True):
        write_wav(outdir / clip.file, samples, rate)
        try:
            figures: dict[str, float | None] = dict(measure(samples, rate, n_phones).to_dict())
        except ValueError:  # nothing voiced to measure: the page says so
            figures = dict.fromkeys(f.name for f in fields(ProsodyMeasure))
        if judge is not None:
            figures["mos"] = round(judge(samples, rate), 3)
        rows.append(
            {
                "emotion": clip.emotion,
                "intensity": clip.intensity,
                "file": clip.file,
                "duration_s": round(len(samples) / rate, 3),
                **figures,
            }
        )
    grid = {
        "text": text,
        "mos": "Distill-MOS" if judge is not None else f"not measured ({mos_judge.INSTALL_HINT})",
        "voice": voice_name,
        "sample_rate": rate,
        "seed": params.seed,
        "deterministic": params.noise_scale == 0.0 and params.noise_w == 0.0,
        "speed": round(1.0 / params.length_scale, 4),
        "pitch_st": pitch_st,
        "volume_db": volume_db,
        "n_phones": n_phones,
        "intensities": list(INTENSITIES),
        "clips": rows,
    }
    (outdir / "grid.json").write_text(
        json.dumps(grid, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (outdir / "index.html").write_text(format_html(grid), encoding="utf-8")
    return grid


_STYLE = """
body { font: 15px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.3em; margin-bottom: 0.2em; }
.text { font-size: 1.15em; font-style: italic; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 0.5em 0.8em; vertical-align: top; }
thead th { background: #f3f3f3; }
tbody th { text-align: left; text-transform: capitalize; }
audio { width: 16em; display: block; }
.m { font-size: 0.85em; color: #555; margin-top: 0.3em; font-variant-numeric: tabular-nums; }
""".strip()


def format_html(grid: dict[str, Any]) -> str:
    """A self-contained page (inline style, no scripts or external assets) for ``grid``.

    Every ``<audio>`` points at its WAV by a relative path, so the directory can be
    moved or served as is.
    """
    intensities = [float(k) for k in grid["intensities"]]
    by_cell = {(c["emotion"], float(c["intensity"])): c for c in grid["clips"]}
    emotions = list(dict.fromkeys(c["emotion"] for c in grid["clips"]))
    head = "".join(f"<th>intensity {k:.1f}</th>" for k in intensities)
    body = []
    for emotion in emotions:
        row = [by_cell.get((emotion, k)) for k in intensities]
        present = [clip for clip in row if clip is not None]
        if len(present) == 1 and len(intensities) > 1:  # neutral: one clip across the row
            tds = f'<td colspan="{len(intensities)}">{_cell(present[0])}</td>'
        else:
            tds = "".join("<td></td>" if c is None else f"<td>{_cell(c)}</td>" for c in row)
        body.append(f"<tr><th>{html.escape(emotion)}</th>{tds}</tr>")
    legend = "; ".join(f"{name}: {long}" for name, _, long in _LABELS.values())
    voice = html.escape(grid["voice"]) if grid.get("voice") else "the bundled voice"
    title = f"voxlive emotion grid: {grid['text']}"
    rows = "\n".join(body)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>
{_STYLE}
</style>
</head>
<body>
<h1>Emotion grid</h1>
<p class="text">“{html.escape(grid["text"])}”</p>
<p>Voice: {voice}; noise seed {grid["seed"]}. Under each clip, measured on its audio:
{html.escape(legend)}.</p>
<table>
<thead><tr><th>emotion</th>{head}</tr></thead>
<tbody>
{rows}
</tbody>
</table>
</body>
</html>
"""


def _cell(clip: dict[str, Any]) -> str:
    src = html.escape(clip["file"], quote=True)
    label = html.escape(f"{clip['emotion']} at intensity {clip['intensity']:.1f}", quote=True)
    parts = []
    for key in MEASURES:
        name, fmt, _ = _LABELS[key]
        value = clip.get(key)
        ok = value is not None and math.isfinite(value)
        parts.append(f"{name} {fmt.format(value)}" if ok else f"{name} n/a")
    figures = html.escape(" · ".join(parts))
    return (
        f'<audio controls preload="none" src="{src}" aria-label="{label}"></audio>'
        f'<div class="m">{figures}</div>'
    )
