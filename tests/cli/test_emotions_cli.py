"""``voxlive emotions``: the vocabulary and profile table, as text and as JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from voxlive.cli.emotions import KEYS
from voxlive.cli.parser import main
from voxlive.engine.emotion import EMOTIONS, resolve

ROOT = Path(__file__).resolve().parents[2]


def test_json_lists_every_emotion_with_its_profile_and_synonyms(capsys) -> None:
    assert main(["emotions", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in rows] == list(EMOTIONS)
    assert set(KEYS) == {
        "name", "rate", "pause", "f0_shift_st", "f0_range", "gain_db",
        "tilt_db_per_octave", "breathiness", "end_contour_st", "synonyms",
    }  # fmt: skip
    for row in rows:
        assert list(row) == list(KEYS)
        assert all(resolve(tag) == row["name"] for tag in row["synonyms"])
    by_name = {row["name"]: row for row in rows}
    assert "伤心" in by_name["sad"]["synonyms"] and "开心" in by_name["happy"]["synonyms"]
    assert "furious" in by_name["angry"]["synonyms"]
    # The numbers are the profiles at intensity 1: sad is slower, lower, quieter, falling.
    sad, excited = by_name["sad"], by_name["excited"]
    assert sad["rate"] < 1 < excited["rate"] and sad["pause"] > 1 > excited["pause"]
    assert sad["f0_shift_st"] < 0 < excited["f0_shift_st"] and sad["gain_db"] < 0
    assert sad["end_contour_st"] < 0 < by_name["surprised"]["end_contour_st"]
    assert by_name["neutral"] | {"synonyms": []} == {
        "name": "neutral", "rate": 1.0, "pause": 1.0, "f0_shift_st": 0.0, "f0_range": 1.0,
        "gain_db": 0.0, "tilt_db_per_octave": 0.0, "breathiness": 0.0, "end_contour_st": 0.0,
        "synonyms": [],
    }  # fmt: skip


def test_text_shows_the_table_and_the_synonyms(capsys) -> None:
    assert main(["emotions"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("emotion "))
    for column in ("rate", "pauses", "F0 level", "F0 range", "loudness", "tilt", "end contour"):
        assert column in header
    sad_row = next(line for line in lines if line.startswith("sad ") and "st" in line)
    assert "×0.82" in sad_row and "-2.0 st" in sad_row and "-4.0 dB" in sad_row
    synonyms = next(line for line in lines if line.strip().startswith("sad ") and "伤心" in line)
    assert "unhappy" in synonyms


def test_it_answers_without_loading_the_engine() -> None:
    code = (
        "import sys; from voxlive.cli.parser import main; rc = main(['emotions', '--json']); "
        "sys.exit(rc or ('torch' in sys.modules and 'torch was imported'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)) == len(EMOTIONS)


def test_a_reader_that_stops_early_gets_no_error() -> None:
    """`voxlive emotions --json | head -3`: a reader that went away is not an error."""
    import os
    import subprocess
    import sys

    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written: every write fails
    code = "import sys; from voxlive.cli.parser import main; sys.exit(main(['emotions', '--json']))"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code], stdout=write, stderr=subprocess.PIPE, timeout=60
        )
    finally:
        os.close(write)
    assert proc.returncode == 0 and b"Broken pipe" not in proc.stderr, proc.stderr
    assert b"Error" not in proc.stderr, proc.stderr


@pytest.mark.slow
@pytest.mark.usefixtures("shared_voice")
def test_bench_emotions_reports_each_emotions_change_and_both_rtfs(capsys) -> None:
    argv = ["bench", "emotions", "--sentences", "1", "--intensities", "1", "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sentences"] == 1 and report["intensities"] == [1.0]
    table = report["voices"]["default"]
    assert set(table["change"]) == set(EMOTIONS) - {"neutral"}
    sad, excited = table["change"]["sad"]["1.0"], table["change"]["excited"]["1.0"]
    assert sad["rate_phones_s"] < 0 < excited["rate_phones_s"] and sad["rms_db"] < 0
    assert report["rtf"]["engine"] > 0 and report["rtf"]["stage"] > 0
    assert report["rtf"]["world_stage"] == report["rtf"]["stage"]  # the older name
