"""A source photo is read and scaled to `max_size` once, in the decoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reenact.analysis import Models, load_source

SOURCE = Path("samples/source.jpg")


@pytest.fixture(scope="module")
def models() -> Models:
    return Models(torch.device("cpu"))


@pytest.fixture(scope="module")
def large_photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample portrait enlarged to 2560 x 2560 (a phone photo's size), as a JPEG."""
    path = tmp_path_factory.mktemp("large") / "large.jpg"
    Image.open(SOURCE).resize((2560, 2560), Image.Resampling.BICUBIC).save(path, quality=92)
    return path


@pytest.mark.parametrize("max_size", [320, 1280])
def test_a_large_photo_is_read_at_max_size_with_its_face(models: Models, large_photo: Path, max_size: int) -> None:
    source = load_source(large_photo, models, max_size)
    assert max(source.image.shape[:2]) == max_size
    h, w = source.image.shape[:2]
    xy = source.points[:, :2]
    assert (xy >= 0).all() and (xy[:, 0] < w).all() and (xy[:, 1] < h).all()
    # the same face as the sample's, scaled: its eye distance is the sample's times max_size / 512
    small = load_source(SOURCE, models, 512)
    eyes = lambda p: float(np.linalg.norm(p[33, :2] - p[263, :2]))  # noqa: E731
    assert eyes(source.points) == pytest.approx(eyes(small.points) * max_size / 512, rel=0.05)


def test_a_photo_smaller_than_max_size_keeps_its_pixels(models: Models) -> None:
    source = load_source(SOURCE, models, 1280)
    assert source.image.shape[:2] == (512, 512)
    assert np.array_equal(source.image, np.asarray(Image.open(SOURCE).convert("RGB")))
