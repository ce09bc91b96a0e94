"""The driver's mouth interior carried into the photo (reenact.render.interior, `drive --mouth driver`)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from reenact.errors import InputError
from reenact.face import FaceAnalyzer
from reenact.io.image import read_image
from reenact.params import ARKIT52
from reenact.pipeline import RenderOptions
from reenact.render.interior import (
    INNER_LOOP,
    KEEP,
    OUTER,
    Carrier,
    DriverMouth,
    DriverMouths,
    crop_mouth,
    luma_of,
    neutral_teeth,
)
from reenact.render.renderer import FaceRenderer
from reenact.render.shade import DriverCreases
from reenact.rig import load_rig
from tests.cli_utils import run

DARK, WHITE = (12, 12, 12), (240, 240, 240)


@pytest.fixture(scope="module")
def photo():
    image = read_image("samples/source.jpg")
    face = FaceAnalyzer().analyze(image, name="source.jpg")
    return image, face.points, FaceRenderer(image, face.points, np.zeros(52, np.float32), load_rig())


def open_jaw(amount: float = 0.6) -> np.ndarray:
    s = np.zeros((1, 52), np.float32)
    s[0, ARKIT52.index("jawOpen")] = amount
    return s


def driver_frame(image: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A driver frame: the photo with its mouth pulled open and the opening filled with a pattern no painted cavity
    has (black on the left half of the mouth, white on the right: the carried light keeps it, whatever colour the
    photo gives it), and its (40, 2) KEEP points."""
    pts = points[KEEP, :2].copy()
    centre = pts[:20].mean(0)
    upper, lower = pts[:20, 1] < centre[1], pts[:20, 1] >= centre[1]
    gap = 0.3 * np.linalg.norm(pts[10] - pts[0])
    pts[np.flatnonzero(upper), 1] -= gap / 2  # inner lips apart ...
    pts[np.flatnonzero(lower), 1] += gap / 2
    pts[[0, 10]] = points[KEEP[[0, 10]], :2]  # ... the corners kept
    frame = image.copy()
    opening = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillPoly(opening, [np.round(pts[:20]).astype(np.int32)], 1)
    left = np.arange(frame.shape[1])[None, :] < 0.5 * (pts[0, 0] + pts[10, 0])
    frame[(opening > 0) & left] = DARK
    frame[(opening > 0) & ~left] = WHITE
    return frame, pts


def carried_pattern(frame: np.ndarray, target: np.ndarray, margin: int = 4) -> np.ndarray:
    """(H, W) bool: where a rendered frame shows the driver's pattern (dark left of the target mouth's middle,
    bright right of it; `margin` px about the middle, where the two meet, count as both)."""
    y = frame.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    x = np.arange(frame.shape[1])[None, :] - 0.5 * (target[78, 0] + target[308, 0])
    return ((x < -margin) & (y < 100)) | ((x > margin) & (y > 150)) | (np.abs(x) <= margin)


def inner_mask(points: np.ndarray, shape: tuple[int, ...], grow: int = 0) -> np.ndarray:
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(points[INNER_LOOP, :2]).astype(np.int32)], 1)
    if grow > 0:
        mask = cv2.dilate(mask, np.ones((2 * grow + 1,) * 2, np.uint8))
    elif grow < 0:
        mask = cv2.erode(mask, np.ones((-2 * grow + 1,) * 2, np.uint8))
    return mask.astype(bool)


def test_carried_interior_lands_inside_the_target_contour_only(photo) -> None:
    image, points, renderer = photo
    mouth = crop_mouth(*driver_frame(image, points))
    assert mouth is not None
    shapes = open_jaw()
    painted, targets = renderer.render_with_points(shapes)
    carried, targets2 = renderer.render_with_points(shapes, interior=[mouth])
    assert np.array_equal(targets, targets2)
    changed = np.abs(carried.astype(int) - painted).max(-1)[0] > 0
    assert changed.any()
    # Nothing outside the target's inner-lip contour (1 px for the anti-aliased edge) differs from the painted one,
    # and the painted one itself only differs from the warp inside it: the lips and the face are untouched.
    assert not (changed & ~inner_mask(targets[0], image.shape, grow=1)).any()
    # Inside, away from the feathered lip line, the driver's interior (its light: dark left, bright right) is what
    # shows, except where the photo shows its own teeth (the sample photo's lips are parted): those are re-sampled
    # as with paint.
    inside = inner_mask(targets[0], image.shape, grow=-2)
    shown = carried_pattern(carried[0], targets[0])
    assert inside.sum() > 20 and shown[inside].mean() > 0.3
    assert carried_pattern(painted[0], targets[0])[inside].mean() < shown[inside].mean() - 0.2  # not the cavity
    kept = inside & ~changed  # the photo's own teeth under the upper lip
    assert kept.any()
    near_kept = cv2.dilate(kept.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)  # their soft edge
    core = inside & ~near_kept
    assert shown[core].mean() > 0.9


def test_closed_mouth_leaves_the_frame_unchanged(photo) -> None:
    image, points, renderer = photo
    mouth = crop_mouth(*driver_frame(image, points))
    out = renderer.render(np.zeros((1, 52), np.float32))
    with_interior = renderer.render_with_points(np.zeros((1, 52), np.float32), interior=[mouth])[0]
    assert np.array_equal(with_interior[0], image) and np.array_equal(out[0], image)


def test_missing_driver_mouths_fall_back_to_paint(photo) -> None:
    _, _, renderer = photo
    shapes = np.repeat(open_jaw(), 2, 0)
    painted = renderer.render(shapes)
    mixed = renderer.render_with_points(shapes, interior=[None, None])[0]
    assert np.array_equal(painted, mixed)


def test_bad_inputs_raise_clearly(photo) -> None:
    image, points, renderer = photo
    frame, pts = driver_frame(image, points)
    with pytest.raises(ValueError, match="40, 2"):
        crop_mouth(frame, pts[:20])
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        crop_mouth(frame[..., 0], pts)
    with pytest.raises(ValueError, match="one per frame"):
        renderer.render_with_points(np.repeat(open_jaw(), 2, 0), interior=[crop_mouth(frame, pts)])
    mouth = crop_mouth(frame, pts)
    with pytest.raises(ValueError, match="478, 2"):
        renderer.carrier.fill(mouth, points[:100], (0, 0, 10, 10))
    with pytest.raises(ValueError, match="empty box"):
        renderer.carrier.fill(mouth, points, (5, 5, 5, 9))
    with pytest.raises(InputError, match="--mouth"):
        RenderOptions(mouth="teeth")


def test_no_face_or_no_frame_gives_no_mouth(photo, tmp_path: Path) -> None:
    image, points, _ = photo
    frame, pts = driver_frame(image, points)
    assert crop_mouth(frame, np.full_like(pts, np.nan)) is None
    mouths = DriverMouths(tmp_path / "driver.mp4")
    mouths.on_frame(None, None)  # a frame without a face
    mouths.on_frame(None, SimpleNamespace(points=points))  # FaceLandmarks-like: (478, 3) points
    assert np.isnan(mouths.points[0]).all() and np.allclose(mouths.points[1], points[KEEP, :2])
    assert mouths.crop(0, frame) is None
    assert isinstance(mouths.crop(1, frame), DriverMouth)
    assert mouths.crop(2, frame) is None and mouths.crop(1, None) is None


def test_colour_is_matched_to_the_photo(photo) -> None:
    image, points, renderer = photo
    frame, pts = driver_frame(image, points)
    bright = crop_mouth(frame, pts)
    dark = crop_mouth((frame * 0.6).astype(np.uint8), pts)  # the same mouth under dimmer light
    target = renderer.target_points(open_jaw())[0]
    origin = np.array([renderer.warper.roi.x0, renderer.warper.roi.y0], np.float32)
    t = target[:, :2] - origin
    box = tuple(int(v) for v in (*np.floor(t[KEEP[OUTER]].min(0)), *np.ceil(t[KEEP[OUTER]].max(0))))
    a, b = renderer.carrier.fill(bright, t, box), renderer.carrier.fill(dark, t, box)
    assert np.abs(a - b).mean() < 4.0  # the gains undo the light change (up to rounding of the dimmed frame)


def test_driver_teeth_take_the_photos_teeth_colour_and_keep_their_light(photo) -> None:
    # Issue 19: the driver's yellow teeth are the driver's. Its teeth keep their light (luma) but take the photo's
    # own teeth colour, or the library's neutral prior where the photo shows none; the rest keeps the skin gains.
    image, points, renderer = photo
    frame, pts = driver_frame(image, points)
    yellow = np.array([200, 193, 171], np.uint8)  # whiter than the skin (interior.teeth_weight), but yellow
    frame[(frame == WHITE).all(-1)] = yellow
    mouth = crop_mouth(frame, pts)
    target = renderer.target_points(open_jaw())[0]
    origin = np.array([renderer.warper.roi.x0, renderer.warper.roi.y0], np.float32)
    t = target[:, :2] - origin
    box = tuple(int(v) for v in (*np.floor(t[KEEP[OUTER]].min(0)), *np.ceil(t[KEEP[OUTER]].max(0))))
    carrier = Carrier(image, points)
    own = Carrier(image, points)
    own.teeth = np.array([180.0, 200.0, 240.0], np.float32)  # a photo with bluish teeth
    default = carrier.fill(mouth, t, box)
    out = own.fill(mouth, t, box)
    local = t - np.array(box[:2], np.float32)
    inside = inner_mask(local, out.shape, grow=-2)
    right = np.arange(out.shape[1])[None, :] > 0.5 * (local[78, 0] + local[308, 0]) + 4
    teeth = inside & right  # the driver's teeth (its opening's right half), away from the lip line and the middle
    assert teeth.sum() > 20
    px = out[teeth]
    assert np.allclose(px / luma_of(px)[:, None], own.teeth / luma_of(own.teeth), atol=0.02)
    assert np.allclose(luma_of(px), luma_of(default[teeth]), atol=1.0)  # the same light with either colour
    carrier.teeth = None  # a photo showing no teeth: the neutral prior, not the driver's yellow
    prior = carrier.fill(mouth, t, box)[teeth]
    assert np.allclose(prior / luma_of(prior)[:, None], (lambda c: c / luma_of(c))(neutral_teeth(carrier.skin)),
                       atol=0.02)
    dark = inside & np.fliplr(right)  # the rest (the dark left half): the skin gains as before, whatever the teeth
    dark &= luma_of(out) < 40
    assert dark.sum() > 20 and np.allclose(out[dark], default[dark], atol=0.5)


def test_cli_rejects_an_unknown_mouth(tmp_path: Path) -> None:
    code, err = run("drive", "samples/source.jpg", "samples/driver.mp4", "-o", str(tmp_path / "o.mp4"),
                    "--mouth", "teeth")
    assert code == 2 and "--mouth" in err and "driver, library, paint" in err


def test_driver_creases_are_the_fine_change_against_the_first_face(photo) -> None:
    # Issue 19 item 4: a crease drawn on the driver's cheek comes out as a dark line in texture space; the driver's
    # first face against itself, or a change of its overall light, carries nothing.
    image, points, _ = photo
    creases = DriverCreases()
    creases.remember(image, points)
    assert np.abs(creases.at(image, points)).max() == 0
    dimmer = (image * 0.8).astype(np.uint8)
    assert np.abs(creases.at(dimmer, points)).mean() < 0.01
    creased = image.copy()
    a, b = points[205, :2], points[50, :2]  # across the cheek, off the lips and eyes
    cv2.line(creased, tuple(int(v) for v in a), tuple(int(v) for v in b), (60, 40, 40), 2)
    fine = creases.at(creased, points)
    assert fine.min() < -0.15 and fine.min() < -1.5 * fine.max()  # dark, with a thin light halo (a high-pass)
    assert (np.abs(fine) > 0.03).sum() < 0.05 * (np.abs(creases.reference[0]) > 0).sum()  # only near the line
    assert creases.at(image, np.full_like(points, np.nan)) is None and DriverCreases().at(image, points) is None


def test_driver_creases_reach_the_photo_only_behind_the_shading_gate(photo) -> None:
    from reenact.analysis import Models

    image, points, _ = photo
    models = Models()
    if models.shading is None:  # the gate refused the shading maps: nothing to test the creases behind
        pytest.skip("expression shading is off")
    renderer = FaceRenderer(image, points, np.zeros(52, np.float32), load_rig(), shading=models.shading)
    assert renderer.shading.crease_gain([None]) is None
    flat = renderer.shading.crease_gain([np.zeros((128, 128), np.float32)])
    assert torch.allclose(flat, torch.ones_like(flat))
    frame, pts = driver_frame(image, points)
    mouth = crop_mouth(frame, pts)
    shapes = open_jaw(0.3)
    plain = renderer.render_with_points(shapes, interior=[mouth])[0]
    mouth.creases = np.full((128, 128), -0.3, np.float32)  # darker everywhere on the face's skin
    darker = renderer.render_with_points(shapes, interior=[mouth])[0]
    assert darker.astype(int).sum() < plain.astype(int).sum()
    off = FaceRenderer(image, points, np.zeros(52, np.float32), load_rig())  # no shading: no creases either
    assert np.array_equal(off.render_with_points(shapes, interior=[mouth])[0],
                          off.render_with_points(shapes, interior=[crop_mouth(frame, pts)])[0])


def test_driver_creases_are_opt_in(photo) -> None:
    # Off by default: on another person they carry the driver's skin texture as blotches (docs/mouth.md); without
    # them no driver mesh is kept either, only the mouth's 40 points.
    image, points, _ = photo
    mouths = DriverMouths(Path("driver.mp4"))
    mouths.on_frame(SimpleNamespace(rgb=image), SimpleNamespace(points=points))
    mouths.on_frame(None, None)
    assert mouths.found is None and mouths.faces == [] and len(mouths.points) == 2
    mouth = mouths.crop(0, image)
    assert mouth is not None and mouth.creases is None and mouths.crop(1, image) is None


def test_driver_meshes_are_kept_small_and_exact_enough(photo) -> None:
    image, points, _ = photo
    mouths = DriverMouths(Path("driver.mp4"), creases=True)
    mouths.on_frame(SimpleNamespace(rgb=image), SimpleNamespace(points=points))
    mouths.on_frame(None, None)
    assert mouths.faces[0].dtype == np.int16 and mouths.faces[1] is None
    back = mouths.faces[0].astype(np.float32) / 4 + mouths.points[0][0]
    assert np.abs(back - points[:468, :2]).max() <= 0.13
    mouth = mouths.crop(0, image)
    assert mouth is not None and mouth.creases is not None and np.abs(mouth.creases).max() < 1e-6  # its own reference


def test_cli_creases_flag_reaches_the_drive_job(tmp_path: Path, monkeypatch) -> None:
    import reenact.pipeline

    seen = {}

    def fake_drive(spec, *args, **kwargs):
        seen["creases"] = spec.creases
        raise InputError("stopped here")

    monkeypatch.setattr(reenact.pipeline, "drive", fake_drive)
    for flag, want in (([], False), (["--creases"], True)):
        code, err = run("drive", "samples/source.jpg", "samples/driver.mp4", "-o", str(tmp_path / "o.mp4"), *flag)
        assert code == 2 and "stopped here" in err and seen.pop("creases") is want
