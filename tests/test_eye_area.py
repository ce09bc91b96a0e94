"""The eye area's own motion (reenact.rig.EyeArea): its shipped modes, a clip's track carrying them, drawing them over
the rig's eyes, and `render` from an extracted track drawing what `drive` draws."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from reenact.analysis import Models, video_track
from reenact.io.video import VideoWriter, read_frames
from reenact.params import ARKIT52, EYE_AREA, Track
from reenact.retarget import RetargetOptions, area_gain
from reenact.rig import load_eye_area, load_rig
from tests.cli_utils import run

SOURCE = Path("samples/source.jpg")


@pytest.fixture(scope="module")
def models() -> Models:
    return Models()


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample driver's first 48 frames (2 s)."""
    out = tmp_path_factory.mktemp("eye_area") / "driver.mp4"
    with read_frames("samples/driver.mp4", max_frames=48) as frames, VideoWriter(out, frames.fps, preset="ultrafast") as w:
        for f in frames:
            w.write(f.rgb)
    return out


def test_shipped_modes_are_orthonormal_and_cover_both_eyes() -> None:
    area = load_eye_area()
    k, p = len(EYE_AREA), len(area.points)
    assert area.basis.shape == (k, p, 2)
    flat = area.basis.flatten(1).double()
    assert torch.allclose(flat @ flat.T, torch.eye(k, dtype=torch.float64), atol=1e-5)
    points = set(area.points.tolist())
    assert {33, 133, 159, 145, 362, 263, 386, 374, 105, 334} <= points  # both eyes' corners and lids, both brows
    assert not points & {1, 13, 14, 61, 291}  # nothing of the nose tip or the mouth
    c = np.random.default_rng(0).normal(size=(3, k))
    assert np.allclose(area.coefficients(area.motion(torch.tensor(c)).numpy()), c, atol=1e-5)


def test_a_clip_track_carries_its_eye_area_and_a_photo_does_not(driver: Path, models: Models) -> None:
    track = video_track(driver, models)
    area = track.select(EYE_AREA)
    assert set(EYE_AREA) <= set(track.channels) and np.isfinite(area).all()
    assert area.std(0).max() > 0.05  # the driver's eyes and brows move
    norm = np.linalg.norm(area, axis=1)  # motion from the clip's resting face (tests/test_estimate.py): some frames
    assert norm.min() < 0.5 * np.median(norm)  # are at it, the talking ones away from it
    from reenact.extract import image_track

    assert not set(EYE_AREA) & set(image_track(SOURCE, models, None)[0].channels)


def test_area_gain_follows_the_lid_and_brow_shapes() -> None:
    assert area_gain(RetargetOptions()) == 1.0
    assert area_gain(RetargetOptions(strength=0.5)) == 0.5
    assert area_gain(RetargetOptions(gaze=False)) == 1.0  # the irises are not the eye area's
    for partial in (RetargetOptions(region="mouth"), RetargetOptions(region="eyes"), RetargetOptions(mute=["AU1"]),
                    RetargetOptions(scale={"eyeBlinkLeft": 2.0})):
        assert area_gain(partial) == 0.0, partial


def test_the_eye_area_is_drawn_over_the_rig_and_the_lids_give_way_to_a_blink() -> None:
    from reenact.face import FaceAnalyzer
    from reenact.io.image import read_image
    from reenact.render.renderer import FaceRenderer

    image = read_image(SOURCE)
    face = FaceAnalyzer().analyze(image)
    rig, area = load_rig(), load_eye_area()
    plain = FaceRenderer(image, face.points, np.zeros(52, np.float32), rig)
    carrying = FaceRenderer(image, face.points, np.zeros(52, np.float32), rig, eye_area=area)
    shapes = torch.zeros(2, 52)
    shapes[1, ARKIT52.index("eyeBlinkLeft")] = shapes[1, ARKIT52.index("eyeBlinkRight")] = 1.0
    assert torch.equal(plain.displacement(shapes), carrying.displacement(shapes))  # no area: the rig alone
    coeffs = torch.zeros(2, len(EYE_AREA))
    coeffs[:, 0] = 1.0  # 1 cm along the first mode
    moved = carrying.displacement(shapes, area=coeffs) - plain.displacement(shapes)  # (2, 478, 3)
    shifted = set(torch.nonzero(moved[0, :, :2].abs().amax(-1) > 1e-3).flatten().tolist())
    assert shifted and shifted <= set(area.points.tolist()) | set(range(468, 478))  # (irises follow their lids)
    lids = [159, 145, 386, 374]
    assert moved[0, lids, :2].abs().max() > 0.5  # px: open lids follow the driver's
    assert moved[1, lids, :2].abs().max() < 1e-3  # a full blink is the rig's: the eyes still shut
    brows = [105, 334, 66, 296]
    assert torch.allclose(moved[1, brows], moved[0, brows])  # ... and the brows stay the driver's
    assert moved[1, brows, :2].abs().max() > 0.5
    wink = torch.zeros(1, 52)
    wink[0, ARKIT52.index("eyeBlinkLeft")] = 1.0  # the subject's left eye: MediaPipe's 386 / 374, image right
    moved = carrying.displacement(wink, area=coeffs[:1]) - plain.displacement(wink)
    assert moved[0, [386, 374], :2].abs().max() < 1e-3 and moved[0, [159, 145], :2].abs().max() > 0.5


def test_render_of_an_extracted_track_draws_what_drive_draws(driver: Path, tmp_path: Path) -> None:
    track, drove, rendered = tmp_path / "track.csv", tmp_path / "drive.mp4", tmp_path / "render.mp4"
    for args in (("drive", str(SOURCE), str(driver), "-o", str(drove)), ("extract", str(driver), "-o", str(track)),
                 ("render", str(SOURCE), str(track), "-o", str(rendered))):
        # the library's mouths in both: `render` has no driver video to carry a mouth interior from
        code, err = run(*args, *(("--max-size", "320", "--mouth", "library") if args[0] != "extract" else ()))
        assert code == 0, err
    assert set(EYE_AREA) <= set(Track.read(track).channels)
    a, b = blurred(drove), blurred(rendered)
    assert len(a) == len(b) == 48
    # the CSV rounds each value to 1e-5: the same frames up to H.264 noise (speckle, gone in the blur)
    assert max(float(np.abs(x - y).max()) for x, y in zip(a, b)) < 10
    stripped = tmp_path / "rig_only.csv"  # a track without the eye area: the rig draws the eyes alone
    t = Track.read(track)
    keep = [c for c in t.channels if c not in EYE_AREA]
    Track(t.times, t.select(keep), keep, {"fps": str(Fraction(24))}).write(stripped)
    code, err = run("render", str(SOURCE), str(stripped), "-o", str(tmp_path / "rig.mp4"), "--max-size", "320",
                    "--mouth", "library")
    assert code == 0, err
    c = blurred(tmp_path / "rig.mp4")
    # the eye area's motion shows: well beyond the H.264 noise bound above (16 with the session-14 brow shapes, whose
    # full raise the rig alone draws closer to the driver's; 0 if the area were not drawn)
    assert max(float(np.abs(x - y).max()) for x, y in zip(b, c)) > 13


def blurred(video: Path) -> list[np.ndarray]:
    import cv2

    return [cv2.GaussianBlur(f.rgb.astype(np.float32), (0, 0), 2) for f in read_frames(video)]


def test_rest_first_draws_the_eye_area_from_the_first_frame() -> None:
    from reenact.pipeline import eye_area_motion

    values = np.arange(3 * len(EYE_AREA), dtype=np.float32).reshape(3, -1)
    track = Track(np.arange(3) / 25.0, values, list(EYE_AREA), {"fps": "25"})
    assert np.allclose(eye_area_motion(track, RetargetOptions()), values)
    first = eye_area_motion(track, RetargetOptions(rest="first"))
    assert np.allclose(first[0], 0.0) and np.allclose(first[2], values[2] - values[0])
