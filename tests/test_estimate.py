"""The shipped estimator head: params -> rig -> estimator -> params, pose recovery, track extraction."""

import numpy as np
import pytest
import torch

from reenact.errors import InputError, NoFaceError
from reenact.analysis import extract_track
from reenact.estimate import CHANNELS, Estimator, gaze_from_arkit
from reenact.params import ARKIT52, AU17, GAZE, POSE, arkit_to_au
from reenact.rig import load_rig
from reenact.train.estimator import Identities, TrainConfig, synth_batch


@pytest.fixture(scope="module")
def est():
    torch.set_num_threads(2)
    return Estimator()


@pytest.fixture(scope="module")
def rig():
    return load_rig()


@pytest.fixture()
def uncalibrated(est):
    """The network alone: its real-footage output scale (estimator_calibrate) set aside for synthetic checks."""
    scale = est.net.out_scale.clone()
    est.net.out_scale.fill_(1.0)
    yield est
    est.net.out_scale.copy_(scale)


def test_round_trip_mae_on_heldout_synthetic(uncalibrated, rig):
    # Held-out: a seed the training never used, no real-mesh identity basis (parametric identities only).
    est = uncalibrated
    g = torch.Generator().manual_seed(2024)
    ids = Identities(rig.neutral, rig.basis, None)
    pts, target = synth_batch(512, g, rig.basis, ids, TrainConfig())
    out = est.estimate(pts.numpy())
    arkit = out[:, : len(ARKIT52)]
    target = target.numpy()
    assert np.abs(arkit - target).mean() < 0.05
    au = out[:, len(ARKIT52): len(ARKIT52) + len(AU17)]
    assert np.abs(au - arkit_to_au(target)).mean() < 0.05
    # The strong actions that matter most are found: blinks and jaw within 0.1 where they are active.
    for name in ("eyeBlinkLeft", "jawOpen", "mouthSmileLeft"):
        k = ARKIT52.index(name)
        act = target[:, k] > 0.3
        assert np.abs(arkit[act, k] - target[act, k]).mean() < 0.12, name


def test_pose_recovered(est, rig):
    p = torch.zeros(1, 52)
    face = rig(p)[0].numpy()
    a = np.radians(20.0)  # yaw: nose toward image right
    rot = np.array([[np.cos(a), 0, -np.sin(a)], [0, 1, 0], [np.sin(a), 0, np.cos(a)]], np.float32)
    pts = face @ rot.T * 10.0 + np.array([320.0, 240.0, 0.0], np.float32)
    assert pts[1, 0] > 320.0  # nose tip (z < 0) moved to +x
    out = est.estimate(pts[None])[0]
    pose = dict(zip(POSE, out[len(ARKIT52) + len(AU17): len(ARKIT52) + len(AU17) + 6]))
    assert pose["yaw"] == pytest.approx(20.0, abs=1.0)
    assert abs(pose["pitch"]) < 1.0 and abs(pose["roll"]) < 1.0
    assert pose["scale"] == pytest.approx(10.0, rel=0.02)
    assert pose["tx"] == pytest.approx(320.0, abs=2.0)
    assert np.abs(out[: len(ARKIT52)]).max() < 0.15  # neutral face reads as (nearly) neutral


def test_gaze_channels():
    a = np.zeros(52, np.float32)
    a[ARKIT52.index("eyeLookOutLeft")] = 1.0
    a[ARKIT52.index("eyeLookInRight")] = 1.0
    g = dict(zip(GAZE, gaze_from_arkit(a)))
    assert g["gazeLeftYaw"] > 20 and g["gazeRightYaw"] > 20  # both eyes look to the subject's left


def test_missing_frames_and_bad_input(est, rig):
    pts = rig(torch.zeros(3, 52))[:, :478].numpy() * 10 + 100
    pts[1] = np.nan
    out = est.estimate(pts)
    assert np.isnan(out[1]).all() and np.isfinite(out[[0, 2]]).all()
    assert out.shape == (3, len(CHANNELS))
    with pytest.raises(InputError):
        est.estimate(np.zeros((2, 68, 2)))


def test_extract_track(est, rig):
    g = torch.Generator().manual_seed(7)
    params = torch.zeros(60, 52)
    params[20:30, ARKIT52.index("eyeBlinkLeft")] = 1.0
    params[20:30, ARKIT52.index("eyeBlinkRight")] = 1.0
    pts = (rig(params) * 12.0 + 200.0 + 0.02 * torch.randn(60, 478, 3, generator=g)).numpy()
    frames = [None if i == 5 else p for i, p in enumerate(pts)]
    tr = extract_track(frames, 30.0, est)
    assert tr.meta["missing_frames"] == 1 and len(tr) == 60
    blink = tr.column("AU45")
    assert blink[22:28].mean() > 0.6 and blink[:15].mean() < 0.1
    with pytest.raises(NoFaceError):
        extract_track([None, None], 30.0, est)


def test_rig_fit_recovers_weights_and_ignores_identity(rig):
    from reenact.train.estimator_real import fit_rig, mesh_residual

    g = torch.Generator().manual_seed(3)
    w = (torch.rand(64, 52, generator=g) < 0.15) * torch.rand(64, 52, generator=g)
    # An identity offset orthogonal to the rig's span (as Identities builds them) must not change the fit.
    u, sv, _ = torch.linalg.svd(rig.basis.flatten(1).double().T, full_matrices=False)  # (P*3, 52)
    u = u[:, sv > 1e-6 * sv[0]]  # the span (jawLeft = -jawRight makes the basis rank-deficient)
    ident = torch.randn(u.shape[0], generator=g, dtype=torch.float64) * 0.05
    ident = ident - u @ (u.T @ ident)
    canon = rig(w) + ident.view(478, 3).float()
    got = fit_rig(canon - rig.neutral, rig.basis)  # the default prior makes the solution unique
    same = fit_rig(rig(w) - rig.neutral, rig.basis)
    assert (got - same).abs().max() < 1e-3
    assert (got - w).abs().mean() < 0.03  # the small L1/L2 prior shrinks a little
    # The residual metric: ~0 for the fitted weights (the identity is constant), clearly > 0 for no expression.
    assert mesh_residual(got, canon, rig.neutral, rig.basis) < 0.3
    assert mesh_residual(torch.zeros_like(w), canon, rig.neutral, rig.basis) > 1.0


def test_real_frames_keep_the_test_clip_out(tmp_path, rig):
    from reenact.train.estimator_real import RealFrames

    face = (rig(torch.zeros(4, 52)) * 10 + 300).numpy()
    np.savez(tmp_path / "m.npz", franck_mp4=face, clip=face[:3], photos=face[:2])
    real = RealFrames(tmp_path / "m.npz", rig.neutral, torch.arange(0, 468, 7), rig.basis)
    assert len(real) == 5 and real.labels.shape == (5, 52) and real.labels.max() < 0.05
    pts, labels, canon = real.sample(8, torch.Generator().manual_seed(0), TrainConfig())
    assert pts.shape == (8, 478, 3) and labels.shape == (8, 52) and canon.shape == (8, 478, 3)


def test_calibration_scales_the_reading_and_only_upward(est):
    """The shipped estimator reads real faces with a per-channel scale fitted on real footage (a shut eye -> ~1)."""
    scale = est.net.out_scale
    assert scale.shape == (len(ARKIT52),) and bool((scale >= 1.0).all()) and bool((scale <= 3.0).all())
    assert float(scale[ARKIT52.index("eyeBlinkLeft")]) > 1.05  # the shut-eye apex calibration is in the weights
    assert all(float(scale[ARKIT52.index(n)]) == 1.0 for n in ARKIT52 if n.startswith("eyeLook"))  # gaze untouched


def test_a_glance_down_in_a_wide_eyed_clip_is_not_read_as_shut() -> None:
    # Read against the clip's 90th-percentile opening, a clip with wide-eyed moments read its half-lowered lids (a
    # glance at notes: half the median opening) as nearly shut, and the renderer drew them so (cap13, "Tenth pass").
    from reenact.clip_geometry import blinks_from_lids
    from reenact.estimate import CHANNELS
    values = np.zeros((60, len(CHANNELS)), np.float32)
    ears = np.full((60, 2), 0.3, np.float32)
    ears[:12] = 0.4  # wide-eyed
    ears[40:50] = 0.15  # lids half lowered
    ears[55] = 0.06  # a blink
    out = blinks_from_lids(values, ears)[:, [CHANNELS.index("eyeBlinkLeft"), CHANNELS.index("eyeBlinkRight")]]
    assert np.allclose(out[20], 0.0) and np.allclose(out[:12], 0.0)  # open, and wider than that
    assert 0.5 < out[45, 0] < 0.8  # half lowered: a part closure (0.85 against the 90th percentile)
    assert np.allclose(out[55], 1.0)


def test_a_clips_blinks_are_read_from_its_lids() -> None:
    from reenact.clip_geometry import blinks_from_lids
    from reenact.estimate import CHANNELS
    t = 40
    values = np.zeros((t, len(CHANNELS)), np.float32)
    left, right = CHANNELS.index("eyeBlinkLeft"), CHANNELS.index("eyeBlinkRight")
    values[:, [left, right]] = 0.05
    values[10, [left, right]] = 1.0  # the network reads a blink where the lids show none ...
    values[:, 52:52 + len(AU17)] = arkit_to_au(values[:, :52])
    ears = np.full((t, 2), 0.3, np.float32)
    ears[30] = 0.03  # ... and misses the one at frame 30
    ears[20, 0] = 0.3 * (1 - 0.375)  # the left eye half closed: closure 0.375, halfway from open (0.05) to shut (0.7)
    out = blinks_from_lids(values, ears)
    assert np.allclose(out[10, [left, right]], 0.0)
    assert np.allclose(out[30, [left, right]], 1.0)
    assert out[20, left] == pytest.approx(0.5, abs=1e-5) and out[20, right] == 0.0
    au45 = CHANNELS.index("AU45")
    assert out[10, au45] < values[10, au45] and out[30, au45] > values[30, au45]  # the AUs follow the shapes
    assert np.array_equal(blinks_from_lids(values[:5], ears[:5]), values[:5])  # too short for an open-eye reference
    smiling = values.copy()
    for side in ("Left", "Right"):  # the network reads the half-closed left eye as a smile's
        smiling[20, CHANNELS.index("cheekSquint" + side)] = 1.0
        smiling[20, CHANNELS.index("eyeSquint" + side)] = 0.5
    assert blinks_from_lids(smiling, ears)[20, left] < 0.1
    # A blink that shuts both lids alike stays a blink on both eyes when the network reads a squint on one side only
    # (a wink was drawn where it took that side's blink away).
    one_sided = values.copy()
    ears[30] = 0.3 * (1 - 0.6)  # both eyes most of the way shut
    one_sided[30, CHANNELS.index("eyeSquintLeft")] = 0.5
    out = blinks_from_lids(one_sided, ears)
    assert out[30, left] == pytest.approx(out[30, right]) and out[30, left] > 0.5
    # ... and that squint is not drawn again on top of the blink (it raised one lower lid alone)
    assert out[30, CHANNELS.index("eyeSquintLeft")] < 0.5 * 0.5


def test_a_clip_that_mostly_looks_down_still_shuts_both_eyes_alike() -> None:
    """A driver who looks down with her lids low for most of a clip (WolfgangLanger): the eyes' medians are not an open
    eye, and against them two shut eyes read 0.1 and 0.9, a wink. The open reference has a floor (the wider eye's),
    the other eye's in the proportion of their widest frames, so a turned head's narrower eye still reads open."""
    from reenact.clip_geometry import OPEN_EAR_FLOOR, blinks_from_lids
    from reenact.estimate import CHANNELS

    t = 40
    values = np.zeros((t, len(CHANNELS)), np.float32)
    left, right = CHANNELS.index("eyeBlinkLeft"), CHANNELS.index("eyeBlinkRight")
    ears = np.tile(np.array([[0.05, 0.1]], np.float32), (t, 1))  # lids low, the left read narrower, most frames
    ears[:8] = [0.2, 0.3]  # a few frames open: the left eye 2/3 of the right
    ears[8:10] = [0.25 * OPEN_EAR_FLOOR / 1.5, 0.25 * OPEN_EAR_FLOOR]  # both most of the way shut, in that proportion
    ears[10:12] = [0.01, 0.01]  # shut
    out = blinks_from_lids(values, ears)
    assert out[8, left] == pytest.approx(out[8, right], abs=0.05) and out[8, left] > 0.9
    assert out[10, left] == pytest.approx(1.0) and out[10, right] == pytest.approx(1.0)
    assert out[0, left] == 0.0 and out[0, right] == 0.0  # open


def test_a_clips_eye_area_is_read_from_its_resting_face() -> None:
    """A driver who smiles for most of the clip, his eyes narrowed by it: his resting frames (lips closed, not
    widened) read no eye-area motion, so the photo keeps its own eyes where he rests, and the smile's narrowing reads
    as motion. Of the resting frames, those with raised brows are not the rest (a talker's pauses)."""
    from reenact.clip_geometry import GEOMETRY, MOUTH, eye_area_channels, region_basis, resting_face
    from reenact.rig import load_eye_area

    t, area = 60, load_eye_area()
    basis = region_basis(MOUTH.shapes, MOUTH.points)
    mouth = np.tile(np.linspace(-2, 2, basis.shape[1]), (t, 1))
    smile = sum(0.6 * basis[MOUTH.shapes.index(n)] for n in ("mouthSmileLeft", "mouthSmileRight"))
    mouth[20:] += smile + 0.1 * basis[MOUTH.shapes.index("jawOpen")]  # frames 20-59 smile, lips a little apart
    brows = np.full((t, 4), -3.0)
    brows[:10] -= 0.3  # frames 0-9 rest with raised brows, 10-19 rest
    eyes = np.tile(np.linspace(-3, 3, 2 * len(area.points)), (t, 1))
    narrowed = 0.4 * area.basis[0].flatten().numpy()  # along the first mode, cm
    eyes[20:] += narrowed
    eyes[:10] -= 0.5 * narrowed  # the raised brows move the area too
    geometry = np.concatenate([np.full((t, 4), 0.3), brows, mouth, eyes], 1)
    assert geometry.shape[1] == GEOMETRY + eyes.shape[1]
    rest = resting_face(geometry)
    assert rest[10:20].all() and not rest[:10].any() and not rest[20:].any()
    coef = eye_area_channels(geometry)
    assert np.abs(coef[10:20]).max() < 1e-4  # at rest: nothing to draw
    assert coef[30, 0] == pytest.approx(0.4, abs=1e-4)  # the smile's narrowing, from the rest


def test_the_eyes_blink_together_unless_one_winks() -> None:
    """A laugh's lids read 0.61 / 0.43 (franck, frame 61; the judge reads them alike) close together; a wink (1 / 0)
    and a one-sided half closure (0.5 / 0) stay one-sided; two eyes both more than half shut (jwp looking down, 0.54 /
    1.0) are a blink, whatever their difference."""
    from reenact.clip_geometry import BOTH_SHUT, BOTH_SHUT_FROM, WINK_FULL, paired
    b = np.array([[0.61, 0.43], [1.0, 0.0], [0.5, 0.0], [0.3, 0.3], [0.0, 0.0], [0.54, 1.0], [1.0, 0.2]])
    out = paired(b)
    assert out[0] == pytest.approx([0.52, 0.52])
    assert np.allclose(out[1:5], b[1:5])
    assert out[5] == pytest.approx([0.77, 0.77])
    assert np.allclose(out[6], b[6])  # a wink that narrows the other eye a little
    assert np.allclose(out.mean(1), b.mean(1))  # the eyes' mean closure is the lids'
    half = paired(np.array([[BOTH_SHUT_FROM + WINK_FULL, BOTH_SHUT_FROM]]))[0]  # apart by WINK_FULL: kept
    assert half[0] - half[1] == pytest.approx(WINK_FULL)
    part = paired(np.array([[1.0, 0.5 * (BOTH_SHUT_FROM + BOTH_SHUT)]]))[0]  # the other eye half way: half kept
    assert part[0] - part[1] == pytest.approx(0.5 * (1.0 - 0.5 * (BOTH_SHUT_FROM + BOTH_SHUT)))


def test_a_clips_gaze_is_read_from_its_irises() -> None:
    from reenact.clip_geometry import IRIS_PER_LOOK, gaze_from_irises
    from reenact.estimate import gaze_from_arkit
    t = 40
    values = np.zeros((t, len(CHANNELS)), np.float32)
    values[:, CHANNELS.index("eyeLookOutRight")] = 0.3  # the network's reading, replaced
    offsets = np.zeros((t, 2), np.float32)
    offsets[10:20, 0] = 0.5 * IRIS_PER_LOOK[0]  # the irises turn toward image right (the subject's left) ...
    offsets[25, 1] = IRIS_PER_LOOK[1]  # ... then down for a frame
    ears = np.full((t, 2), 0.3, np.float32)
    ears[15] = 0.02  # a blink in the middle of the look: the covered iris is not read, the gaze holds
    offsets[15] = [-1.0, 1.0]
    out = gaze_from_irises(values, offsets, ears)
    i = {n: CHANNELS.index(n) for n in ("eyeLookOutLeft", "eyeLookInRight", "eyeLookOutRight", "eyeLookDownLeft")}
    assert out[12, i["eyeLookOutLeft"]] == pytest.approx(0.5) and out[12, i["eyeLookInRight"]] == pytest.approx(0.5)
    assert out[15, i["eyeLookOutLeft"]] == pytest.approx(0.5)  # held through the blink
    assert out[5, i["eyeLookOutRight"]] == 0.0 and out[5, i["eyeLookOutLeft"]] == 0.0
    assert out[25, i["eyeLookDownLeft"]] == pytest.approx(1.0)
    assert np.allclose(out[:, -len(GAZE):], gaze_from_arkit(out[:, :52]))


def test_a_clips_brows_are_read_from_its_mesh() -> None:
    from reenact.clip_geometry import INNER_UP_CM, OUTER_ON_INNER_CM, OUTER_UP_CM, brows_from_mesh
    t = 40
    values = np.zeros((t, len(CHANNELS)), np.float32)
    inner = CHANNELS.index("browInnerUp")
    values[:, inner] = 0.1  # the network's resting reading (kept as the rest) ...
    values[7, inner] = 0.9  # ... and a raise it reads where the brows did not move
    heights = np.zeros((t, 4), np.float32)  # canonical y (down) of inner L, inner R, outer L, outer R
    heights[10, :2] = 0.5 * INNER_UP_CM  # both inner halves up by half a browInnerUp
    heights[20, 3] = 0.8 * OUTER_UP_CM  # the right outer half up, with the share of its inner half it lifts
    heights[20, 1] = 0.8 * OUTER_ON_INNER_CM
    heights[30, 0] = 0.2  # the left inner half lowered 2 mm: a frown on that side
    out = brows_from_mesh(values, heights)
    assert out[7, inner] == pytest.approx(0.1)
    assert out[10, inner] == pytest.approx(0.6)
    assert out[20, CHANNELS.index("browOuterUpRight")] == pytest.approx(0.8)
    assert out[20, CHANNELS.index("browOuterUpLeft")] == 0.0
    assert out[20, inner] == pytest.approx(0.1)  # an outer raise is not an inner one
    assert out[30, CHANNELS.index("browDownLeft")] > 0.2 and out[30, CHANNELS.index("browDownRight")] == 0.0


def test_clip_geometry_constants_match_the_shipped_rig(rig) -> None:
    """The geometric readings turn cm and eye widths into shape units with the rig's own amplitudes."""
    from reenact.clip_geometry import BROW_HALVES, DOWN_CM, INNER_UP_CM, IRIS_PER_LOOK, OUTER_ON_INNER_CM, OUTER_UP_CM
    basis, neutral = rig.basis.numpy(), rig.neutral.numpy()

    def y(shape: str, half: int) -> float:
        return float(basis[ARKIT52.index(shape)][list(BROW_HALVES[half]), 1].mean())

    assert y("browInnerUp", 0) == pytest.approx(INNER_UP_CM, rel=0.05)
    assert y("browOuterUpLeft", 2) == pytest.approx(OUTER_UP_CM, rel=0.05)
    assert y("browOuterUpLeft", 0) == pytest.approx(OUTER_ON_INNER_CM, rel=0.05)
    assert abs(y("browInnerUp", 2)) < 0.01  # the inner raise leaves the outer halves
    assert y("browDownLeft", 0) == pytest.approx(DOWN_CM, rel=0.05)
    width = np.linalg.norm(neutral[362, :2] - neutral[263, :2])
    assert basis[ARKIT52.index("eyeLookOutLeft")][473, 0] / width == pytest.approx(IRIS_PER_LOOK[0], rel=0.05)
    assert basis[ARKIT52.index("eyeLookDownLeft")][473, 1] / width == pytest.approx(IRIS_PER_LOOK[1], rel=0.05)
    from reenact.clip_geometry import SQUINT_CLOSURE
    from reenact.face.landmarks import LID_PAIRS
    gap = np.mean([neutral[lo, 1] - neutral[up, 1] for up, lo in LID_PAIRS[1]])  # the subject's left eye
    for shape, per_unit in SQUINT_CLOSURE.items():
        d = basis[ARKIT52.index(shape + "Left")]
        closing = -np.mean([d[lo, 1] - d[up, 1] for up, lo in LID_PAIRS[1]]) / gap
        assert closing == pytest.approx(per_unit, rel=0.05)


def test_a_photos_brows_are_read_at_rest() -> None:
    """A still photo's brow-raise reading is anatomy: it is taken as 0 so a raise has its full travel."""
    from reenact.estimate import PHOTO_AT_REST, photo_reading
    values = np.zeros(len(CHANNELS), np.float32)
    for name in (*PHOTO_AT_REST, "browDownLeft", "mouthSmileLeft"):
        values[CHANNELS.index(name)] = 0.8
    values[52:52 + len(AU17)] = arkit_to_au(values[:52])
    out = photo_reading(values)
    assert all(out[CHANNELS.index(n)] == 0.0 for n in PHOTO_AT_REST)
    assert out[CHANNELS.index("browDownLeft")] == 0.8 and out[CHANNELS.index("mouthSmileLeft")] == 0.8
    assert out[CHANNELS.index("AU1")] == 0.0 and out[CHANNELS.index("AU12")] > 0.0  # the AUs follow the shapes
    assert values[CHANNELS.index("browInnerUp")] == 0.8  # the input is not changed


def test_bounded_ridge_recovers_weights_within_bounds() -> None:
    from reenact.clip_geometry import bounded_ridge
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(6, 40))
    truth = rng.uniform(0, 1, size=(50, 6))
    out = bounded_ridge(basis, truth @ basis, np.zeros_like(truth), 1e-6, steps=2000)
    assert np.abs(out - truth).max() < 1e-3
    over = bounded_ridge(basis, 3 * truth @ basis, np.zeros_like(truth), 1e-6)  # asks for more than 1
    assert over.min() >= 0.0 and over.max() <= 1.0
    pulled = bounded_ridge(basis, np.zeros((50, 40)), truth, 1e6)  # a heavy prior wins over the motion
    assert np.abs(pulled - truth).max() < 1e-3


def test_a_clips_mouth_is_solved_from_its_mesh() -> None:
    """The mouth shapes follow the lips' and chin's motion from the resting mouth through the rig."""
    from reenact.clip_geometry import MIN_CLIP_FRAMES, MOUTH, region_basis, shapes_from_mesh
    t, jaw = 40, CHANNELS.index("jawOpen")
    basis = region_basis(MOUTH.shapes, MOUTH.points)  # (K, 2M) cm per unit
    k = MOUTH.shapes.index("jawOpen")
    values = np.zeros((t, len(CHANNELS)), np.float32)
    values[:, jaw] = 0.05  # the network's resting reading ...
    values[5, jaw] = 0.6  # ... and an opening it reads where the mouth did not move
    mouth = np.tile(np.linspace(-2, 2, basis.shape[1]), (t, 1))  # (T, 2M) a resting mouth, cm
    mouth[20:24] += 0.5 * basis[k]  # the jaw opens by half a jawOpen for 4 frames
    out = shapes_from_mesh(values, mouth, MOUTH)
    assert out[22, jaw] == pytest.approx(0.5, abs=0.08)
    assert out[5, jaw] < 0.3 and out[10, jaw] == pytest.approx(0.0, abs=0.03)
    assert out[22, CHANNELS.index("AU26")] > out[10, CHANNELS.index("AU26")]  # the AUs follow the shapes
    short = MIN_CLIP_FRAMES - 1
    assert np.array_equal(shapes_from_mesh(values[:short], mouth[:short], MOUTH), values[:short])


def test_a_clip_that_mostly_smiles_rests_on_its_closed_lips() -> None:
    """single_face's man smiles for most of the clip; the network reads his resting lips as pucker, frown and press
    and his smile as none of them. His resting frames read no mouth shape (the photo keeps its own mouth when he
    rests) and his smiles read a smile, not the absence of a pout."""
    from reenact.clip_geometry import MOUTH, region_basis, shapes_from_mesh
    t = 60
    basis = region_basis(MOUTH.shapes, MOUTH.points)
    col = {n: CHANNELS.index(n) for n in ("mouthPucker", "mouthFrownLeft", "mouthSmileLeft", "mouthSmileRight")}
    values = np.zeros((t, len(CHANNELS)), np.float32)
    values[:20, [col["mouthPucker"], col["mouthFrownLeft"]]] = 0.7  # at rest (frames 0-19) ...
    values[20:, [col["mouthSmileLeft"], col["mouthSmileRight"]]] = 0.6  # ... then smiling
    mouth = np.tile(np.linspace(-2, 2, basis.shape[1]), (t, 1))
    smile = sum(0.6 * basis[MOUTH.shapes.index(n)] for n in ("mouthSmileLeft", "mouthSmileRight"))
    mouth[20:] += smile + 0.1 * basis[MOUTH.shapes.index("jawOpen")]  # the lips widen, lift and part a little
    out = shapes_from_mesh(values, mouth, MOUTH)
    assert np.abs(out[:20, [col["mouthPucker"], col["mouthFrownLeft"]]]).max() < 0.05
    assert out[30, col["mouthSmileLeft"]] == pytest.approx(0.6, abs=0.1)
    assert out[30, col["mouthPucker"]] < 0.05
