"""The bundled model is converted once per cache, written aside and moved into place: processes sharing a
cache (the suite's parallel workers, several jobs on one node) may all convert at the same moment, and
none may fail or leave a partial directory behind."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from kubetune_jobs import models


def written_aside(parent: Path, marker: str) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix="smollm2-135m.", suffix=".tmp", dir=parent))
    (tmp / "config.json").write_text(marker)
    return tmp


def test_the_first_copy_moves_into_place(tmp_path: Path) -> None:
    dest = tmp_path / "smollm2-135m"
    models.install(written_aside(tmp_path, "first"), dest)
    assert (dest / "config.json").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == [dest.name]


def test_a_later_copy_yields_to_the_one_in_place_and_is_removed(tmp_path: Path) -> None:
    dest = tmp_path / "smollm2-135m"
    first, second = written_aside(tmp_path, "first"), written_aside(tmp_path, "second")
    assert first != second  # each process writes a directory of its own
    models.install(first, dest)
    models.install(second, dest)
    assert (dest / "config.json").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == [dest.name]


def test_a_partial_directory_in_the_way_is_an_error_not_a_model(tmp_path: Path) -> None:
    dest = tmp_path / "smollm2-135m"
    dest.mkdir()
    (dest / "model.safetensors").write_text("half")
    tmp = written_aside(tmp_path, "mine")
    with pytest.raises(OSError):
        models.install(tmp, dest)
