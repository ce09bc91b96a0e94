"""Face pipeline behaviour: errors, several faces, tracking with the face leaving, pose signs, alignment."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from media_utils import FACE_FIXTURES, face_fixture

from reenact.errors import InputError, NoFaceError
from reenact.face import FaceAnalyzer, track_video
from reenact.face.align import (
    crop_matrix,
    invert,
    paste_back,
    transform_points,
    warp_to_crop,
)
from reenact.face.landmarks import MESH_ONLY

FIX = FACE_FIXTURES


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    """The plain FaceMesh path: the references are MediaPipe's plain tracking mode (tools/make_face_fixtures.py)."""
    torch.set_num_threads(2)
    return FaceAnalyzer(torch.device("cpu"), mesh="plain")


@pytest.fixture(scope="module")
def images() -> dict[str, np.ndarray]:
    return face_fixture("images")


def test_no_face_names_the_file(analyzer):
    blank = np.full((200, 300, 3), 127, np.uint8)
    with pytest.raises(NoFaceError, match="empty_wall.png"):
        analyzer.analyze(blank, name="empty_wall.png")


def test_bad_arrays_are_input_errors(analyzer):
    with pytest.raises(InputError):
        analyzer.analyze(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(InputError):
        analyzer.analyze(np.zeros((4, 4, 3), np.uint8))
    gray = np.full((128, 128), 90, np.uint8)  # grayscale is accepted (and has no face)
    with pytest.raises(NoFaceError):
        analyzer.analyze(gray)


def test_several_faces_left_to_right_and_out_of_range(analyzer, images):
    a, b = images["image_4"], images["image_2"][::2, ::2]  # cage (large face), audrey at half size
    two = np.zeros((a.shape[0], a.shape[1] + b.shape[1], 3), np.uint8)
    two[:, : a.shape[1]] = a
    two[: b.shape[0], a.shape[1]:] = b
    dets = analyzer.detect(two)
    assert len(dets) == 2 and dets[0].box[0] < dets[1].box[0]
    left = analyzer.analyze(two, face=0)
    right = analyzer.analyze(two, face=1)
    assert right.box[0] > a.shape[1] - 5 > left.box[2] - 10
    largest = analyzer.analyze(two)  # cage's face is the bigger one
    np.testing.assert_allclose(largest.points, left.points, atol=1e-3)
    with pytest.raises(NoFaceError, match=r"2 face\(s\).*face 0: box .*face 1: box"):
        analyzer.analyze(two, face=5, name="pair.png")


def test_small_and_cut_off_faces(analyzer, images):
    img = images["image_2"]
    big = np.zeros((600, 600, 3), np.uint8)
    big[:] = 40
    small = img[::8, ::8]  # face ~ 10 px wide: below what even the full-range detector measures reliably
    big[300:300 + small.shape[0], 300:300 + small.shape[1]] = small
    # Too small: either the detector misses it (NoFaceError) or the size check names it; both are InputErrors.
    with pytest.raises(InputError, match="tiny.png"):
        analyzer.analyze(np.ascontiguousarray(big), name="tiny.png")
    half = np.ascontiguousarray(img[:, img.shape[1] // 2 + 10:])  # right part of audrey's face only
    with pytest.raises(InputError, match="half.png"):
        analyzer.analyze(half, name="half.png")


def test_tracking_flags_frames_without_face(analyzer):
    with np.load(FIX / "clip.npz") as d:
        frames, ref = d["frames"], d["mesh468"]
    blank = np.zeros_like(frames[0])
    seq = [*frames, blank, blank, *frames[::-1]]
    out = list(track_video(iter(seq), analyzer))
    missing = [i for i, o in enumerate(out) if o is None]
    assert missing == [6, 7]
    for i in range(6):  # tracking mode matches MediaPipe's tracking mode
        iod = np.linalg.norm(ref[i, 33, :2] - ref[i, 263, :2])
        assert (np.linalg.norm(out[i].points[MESH_ONLY, :2] - ref[i, MESH_ONLY, :2], axis=1) / iod).mean() < 0.005
    # re-detected after the gap (ROI from a detection, not from the previous mesh: close, not identical)
    iod = np.linalg.norm(out[5].points[33, :2] - out[5].points[263, :2])
    assert (np.linalg.norm(out[8].points[:, :2] - out[5].points[:, :2], axis=1) / iod).mean() < 0.02
    rec = out[0].to_record()
    assert len(rec["landmarks"]) == 478 and set(rec["pose"]) == {"yaw", "pitch", "roll", "tx", "ty", "scale"}


def test_batched_tracking_matches_frame_by_frame(analyzer):
    with np.load(FIX / "clip.npz") as d:
        frames, ref = d["frames"], d["mesh468"]
    blank = np.zeros_like(frames[0])
    h, w = frames[0].shape[:2]
    # the face pans 3 % of the frame per frame: chunks need pass 2 (their own ROI) for the frames that moved
    pan = [cv2.warpAffine(frames[0], np.float32([[1, 0, 0.03 * w * (k + 1)], [0, 1, 0]]), (w, h),
                          borderMode=cv2.BORDER_REPLICATE) for k in range(6)]
    seq = [*frames, blank, blank, *frames[::-1], *pan]
    one = analyzer.tracker()
    expected = [one.update(f) for f in seq]
    many, out = analyzer.tracker(), []
    for i in range(0, len(seq), 4):  # chunk edges fall inside the gap and the pan
        out += many.update_many(seq[i:i + 4])
    assert [i for i, o in enumerate(out) if o is None] == [6, 7]
    for i, (a, b) in enumerate(zip(expected, out)):
        if a is None:
            continue
        assert b.points.shape == (478, 3)
        iod = np.linalg.norm(a.points[33, :2] - a.points[263, :2])
        # the mesh moves by up to ~1 % of the eye distance when its crop moves by a few %: that is the tolerance
        assert (np.linalg.norm(a.points[:, :2] - b.points[:, :2], axis=1) / iod).mean() < 0.015, i
        if i < 6:  # and MediaPipe's own tracking mode
            assert (np.linalg.norm(b.points[MESH_ONLY, :2] - ref[i, MESH_ONLY, :2], axis=1) / iod).mean() < 0.01


def test_pose_signs_on_flipped_images(analyzer, images):
    for i in (1, 4):  # franck (turned), cage (tilted)
        img = images[f"image_{i}"]
        p = analyzer.analyze(img).pose
        q = analyzer.analyze(np.ascontiguousarray(img[:, ::-1])).pose
        assert abs(p.yaw + q.yaw) < 3 and abs(p.roll + q.roll) < 3 and abs(p.pitch - q.pitch) < 3
        assert abs(p.tx + q.tx - img.shape[1]) < 3 and abs(p.ty - q.ty) < 3
    cage = analyzer.analyze(images["image_4"]).pose
    assert cage.roll > 8  # cage2_crop.jpg: the head is tilted clockwise on screen
    # rotating the image by 25 degrees clockwise (on screen) adds ~25 degrees of roll
    img = images["image_2"]
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), -25, 1.0)  # OpenCV: positive = counter-clockwise
    rot = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
    r0, r1 = analyzer.analyze(img).pose.roll, analyzer.analyze(rot).pose.roll
    assert abs((r1 - r0) - 25) < 3


def test_align_crop_roundtrip(analyzer, images):
    img = images["image_4"]
    face = analyzer.analyze(img)
    m = crop_matrix(face.points, 128)
    crop = warp_to_crop(img, m, 128)
    pts = transform_points(face.points, m)
    # eyes level in the crop (roll removed) and the face centred
    le, re = pts[[362, 263], :2].mean(0), pts[[33, 133], :2].mean(0)
    assert abs(le[1] - re[1]) < 2 and abs((le[0] + re[0]) / 2 - 64) < 6
    back = transform_points(pts, invert(m))
    np.testing.assert_allclose(back[:, :2], face.points[:, :2], atol=1e-3)
    pasted = paste_back(img, crop, m)
    assert pasted.shape == img.shape and np.abs(pasted.astype(int) - img.astype(int)).mean() < 3
