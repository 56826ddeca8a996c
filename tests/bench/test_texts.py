"""The one reader of text files of lines (``-f`` / ``--texts``), shared by every command."""

from __future__ import annotations

import pytest

from voxlive.bench.texts import read_lines


def test_blank_lines_are_skipped_and_the_others_stripped(tmp_path) -> None:
    path = tmp_path / "lines.txt"
    path.write_text("  First line. \n\n\t\nSecond, 开心!\r\nlast", encoding="utf-8")
    assert read_lines(path) == ["First line.", "Second, 开心!", "last"]


def test_a_missing_or_non_utf8_file_is_one_value_error_naming_it(tmp_path) -> None:
    with pytest.raises(ValueError, match="cannot read .*missing.txt"):
        read_lines(tmp_path / "missing.txt")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("café\n".encode("latin-1"))
    with pytest.raises(ValueError, match="cannot read .*latin.txt"):
        read_lines(latin)
