"""A half-written model archive is never served: training names an archive only once it is whole on disk, and
`kefu run` skips a newest archive that does not load (a copy cut short), says which, and serves the one before."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from bot.model import ModelError, archives
from bot.server import ServerSettings


def truncated_copy(source: Path, target: Path) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


def test_a_truncated_newest_archive_is_skipped_and_the_previous_one_served(
        starter_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    models = tmp_path / "models"
    models.mkdir()
    good = shutil.copy(starter_model, models / "20260101-090000.tar.gz")
    cut = truncated_copy(starter_model, models / "20260102-090000.tar.gz")
    (models / ".partial-abc123.tar.gz").write_bytes(b"a training that was interrupted")
    assert archives(models) == [cut, Path(good)]  # the cut one is the newest; the partial one is never a candidate

    with caplog.at_level(logging.WARNING, logger="bot.model"):
        model = ServerSettings(project_dir=tmp_path).load_model()

    assert model.path == Path(good)
    assert model.faq.entries  # a working model, not a shell
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(cut) in warnings[0] and "corrupt or half-written" in warnings[0]


def test_a_named_archive_that_does_not_load_is_an_error_not_a_fallback(starter_model: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(starter_model, models / "20260101-090000.tar.gz")
    cut = truncated_copy(starter_model, models / "20260102-090000.tar.gz")
    with pytest.raises(ModelError, match="corrupt or half-written"):
        ServerSettings(project_dir=tmp_path, model_path=cut).load_model()  # --model F: exactly that one


def test_when_no_archive_loads_the_error_names_each(starter_model: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    first = truncated_copy(starter_model, models / "20260101-090000.tar.gz")
    second = models / "20260102-090000.tar.gz"
    second.write_bytes(b"not gzip at all")
    with pytest.raises(ModelError) as raised:
        ServerSettings(project_dir=tmp_path).load_model()
    assert f"no model archive in {models} loads" in str(raised.value)
    assert str(first) in str(raised.value) and str(second) in str(raised.value)
