"""``voxlive detect``: one line (or JSON) a file, and an exit status a script can use."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import soundfile as sf

from tests.speech import espeak
from voxlive.cli.parser import main
from voxlive.engine.watermark import embed, load_perthnet


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    audio, rate = espeak("Thanks for the follow! Tonight we try the hardest level.")
    root = tmp_path_factory.mktemp("detect")
    clean, marked = root / "clean.wav", root / "marked.flac"
    sf.write(clean, audio, rate)
    sf.write(marked, np.stack([embed(load_perthnet(), audio, rate)] * 2, axis=1), rate)
    junk = root / "junk.wav"
    junk.write_text("not audio at all")
    return {"clean": clean, "marked": marked, "junk": junk, "missing": root / "none.wav"}


def detect(*args) -> tuple[int, str]:
    out = io.StringIO()
    from contextlib import redirect_stdout

    with redirect_stdout(out):
        status = main(["detect", *map(str, args)])
    return status, out.getvalue()


def test_a_marked_file_exits_0(files):
    status, out = detect(files["marked"])
    assert status == 0
    assert out.startswith(f"{files['marked']}: marked (score ")


def test_a_clean_file_exits_1_even_beside_a_marked_one(files):
    status, out = detect(files["marked"], files["clean"])
    assert status == 1
    assert f"{files['clean']}: not marked" in out


def test_an_unreadable_file_exits_2_and_the_others_are_still_scored(files, capsys):
    status, out = detect("--json", files["clean"], files["junk"], files["missing"], files["marked"])
    assert status == 2
    results = json.loads(out)
    assert [r["file"] for r in results] == [
        str(files[k]) for k in ("clean", "junk", "missing", "marked")
    ]
    assert results[0]["marked"] is False and results[0]["score"] < 0.1
    assert "error" in results[1] and "error" in results[2]
    assert results[2]["error"] == "no such file"
    assert results[3]["marked"] is True and results[3]["seconds"] > 2
