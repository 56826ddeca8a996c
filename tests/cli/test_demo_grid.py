"""``voxlive say --demo-grid``: every emotion as WAVs, grid.json and a page to compare them."""

from __future__ import annotations

import json
import math
from html.parser import HTMLParser

import pytest
import soundfile

from voxlive.cli.demo_grid import MEASURES
from voxlive.cli.parser import main
from voxlive.engine.emotion import EMOTIONS
from voxlive.engine.voice import Voice

pytestmark = pytest.mark.slow  # the real voice end to end

TEXT = "We did it, yes!"


@pytest.fixture(scope="module")
def grid(voice, tmp_path_factory):
    """The grid of a short sentence, rendered once (with the session's voice)."""
    outdir = tmp_path_factory.mktemp("grid") / "demo"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Voice, "load", classmethod(lambda cls, *args, **kwargs: voice))
        assert main(["say", "--demo-grid", str(outdir), TEXT, "--seed", "2"]) == 0
    return outdir


class Page(HTMLParser):
    """The parts of the page a listener uses: players, table rows, outside references."""

    def __init__(self) -> None:
        super().__init__()
        self.audio: list[str] = []
        self.rows = 0
        self.outside: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "audio":
            assert "controls" in a
            self.audio.append(a["src"] or "")
        if tag == "tr":
            self.rows += 1
        if tag in ("script", "link", "img", "iframe") or "://" in (a.get("src") or ""):
            self.outside.append(tag)


def test_every_emotion_and_intensity_is_a_wav(grid) -> None:
    wavs = sorted(p.name for p in grid.glob("*.wav"))
    expected = ["neutral-1.0.wav"] + [
        f"{name}-{k}.wav" for name in EMOTIONS if name != "neutral" for k in ("0.5", "1.0")
    ]
    assert wavs == sorted(expected) and len(wavs) == 15
    for name in wavs:
        info = soundfile.info(str(grid / name))
        assert (info.samplerate, info.subtype) == (22050, "PCM_16")
        assert 0.4 < info.duration < 4.0


def test_the_page_plays_every_clip_from_a_file_next_to_it(grid) -> None:
    text = (grid / "index.html").read_text(encoding="utf-8")
    page = Page()
    page.feed(text)
    page.close()
    assert sorted(page.audio) == sorted(p.name for p in grid.glob("*.wav"))
    assert all((grid / src).is_file() for src in page.audio)
    assert page.rows == 1 + len(EMOTIONS)  # header + one row per emotion
    assert page.outside == []  # self-contained: no scripts, styles or media from elsewhere
    assert TEXT in text


def test_grid_json_has_the_measured_numbers_shown_on_the_page(grid) -> None:
    data = json.loads((grid / "grid.json").read_text(encoding="utf-8"))
    page = (grid / "index.html").read_text(encoding="utf-8")
    assert data["text"] == TEXT and data["seed"] == 2 and data["n_phones"] > 5
    clips = {(c["emotion"], c["intensity"]): c for c in data["clips"]}
    assert len(data["clips"]) == len(clips) == 15
    for clip in data["clips"]:
        assert (grid / clip["file"]).is_file()
        assert all(isinstance(clip[k], float) and math.isfinite(clip[k]) for k in MEASURES)
        assert f"F0 mean {clip['f0_mean_st']:+.1f} st" in page
        assert f"rate {clip['rate_phones_s']:.1f} ph/s" in page
    # The figures move the way the profiles say (full intensity, same noise seed).
    neutral, sad, excited = clips["neutral", 1.0], clips["sad", 1.0], clips["excited", 1.0]
    assert sad["f0_mean_st"] < neutral["f0_mean_st"] < excited["f0_mean_st"]
    assert sad["rms_db"] < neutral["rms_db"] < excited["rms_db"]
    assert sad["duration_s"] > neutral["duration_s"] > excited["duration_s"]
    assert clips["sad", 0.5]["duration_s"] < sad["duration_s"]


def test_an_unspeakable_grid_sentence_exits_2_and_writes_nothing(
    voice, tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.setattr(Voice, "load", classmethod(lambda cls, *args, **kwargs: voice))
    outdir = tmp_path / "grid"
    assert main(["say", "--demo-grid", str(outdir), "太棒了主播加油"]) == 2
    assert "unsupported_language" in capsys.readouterr().err
    assert not outdir.exists()
