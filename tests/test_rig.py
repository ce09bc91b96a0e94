"""The shipped ARKit52 rig: shapes do what their names say (reenact.rig, weights/rig_arkit52)."""

import numpy as np
import pytest
import torch

from reenact.face.canonical import load_canonical
from reenact.params import ARKIT52
from reenact.rig import Rig, eye_opening, load_rig, procrustes


@pytest.fixture(scope="module")
def rig():
    return load_rig()


def pose(rig, **weights):
    p = torch.zeros(1, 52)
    for k, v in weights.items():
        p[0, ARKIT52.index(k)] = v
    return rig(p)[0]


def test_zero_params_leave_the_neutral_mesh(rig):
    assert rig.basis.shape == (52, 478, 3)
    assert torch.allclose(pose(rig), rig.neutral)
    assert torch.all(rig.deltas(torch.zeros(3, 52)) == 0)


def test_blink_closes_the_lids(rig):
    open_l, open_r = eye_opening(rig.neutral, "Left"), eye_opening(rig.neutral, "Right")
    shut = pose(rig, eyeBlinkLeft=1.0)
    assert eye_opening(shut, "Left") < 0.1 * open_l
    assert eye_opening(shut, "Right") == pytest.approx(open_r, rel=1e-4)  # the other eye stays open
    both = pose(rig, eyeBlinkLeft=1.0, eyeBlinkRight=1.0)
    assert eye_opening(both, "Right") < 0.1 * open_r
    assert eye_opening(pose(rig, eyeWideLeft=1.0), "Left") > 1.3 * open_l


def test_jaw_open_opens_the_mouth_and_drops_the_chin(rig):
    m = pose(rig, jawOpen=1.0)
    n = rig.neutral
    gap = float(m[14, 1] - m[13, 1])  # lower inner lip minus upper inner lip (y down)
    assert gap > 2.0  # cm
    assert float(m[152, 1] - n[152, 1]) > 0.5  # chin drops (refined on real video: less than a pure hinge)
    assert float(m[152, 1] - n[152, 1]) < gap  # ... and less than the lips part
    assert float((m[10] - n[10]).abs().max()) < 1e-3  # forehead still
    assert float(m[13, 1] - n[13, 1]) < 0  # the upper lip lifts a little, it does not follow the jaw
    assert float((m[13] - n[13]).abs().max()) < 0.6


def test_smile_pulls_corners_up_and_out(rig):
    n = rig.neutral
    s = pose(rig, mouthSmileLeft=1.0, mouthSmileRight=1.0)
    for corner, side in ((291, 1), (61, -1)):
        assert float(s[corner, 1] - n[corner, 1]) < -0.4  # up (y down)
        assert side * float(s[corner, 0] - n[corner, 0]) > 0.3  # outward
    width = lambda m: float(m[291, 0] - m[61, 0])  # noqa: E731
    assert width(pose(rig, mouthPucker=1.0)) < 0.8 * width(n)
    f = pose(rig, mouthFrownLeft=1.0)
    assert float(f[291, 1] - n[291, 1]) > 0.3


def test_brows_move(rig):
    n = rig.neutral
    assert float(pose(rig, browInnerUp=1.0)[336, 1] - n[336, 1]) < -0.3
    assert float(pose(rig, browDownLeft=1.0)[334, 1] - n[334, 1]) > 0.2
    assert float(pose(rig, browOuterUpLeft=1.0)[300, 1] - n[300, 1]) < -0.3


def test_a_full_brow_raise_lifts_the_whole_brow(rig):
    """browInnerUp + browOuterUp (AU1 + AU2: surprise) lift the brow in one arch; the first rig's shares left its
    middle at 0.55 of its ends (a W that the render gain amplified)."""
    n = rig.neutral
    for side in ("Left", "Right"):
        upper = torch.as_tensor(load_canonical().group(f"{side.lower()}_eyebrow_upper").copy())  # 5: outer end to inner
        rise = -(pose(rig, browInnerUp=1.0, **{f"browOuterUp{side}": 1.0})[upper, 1] - n[upper, 1])  # (5,) cm
        assert float(rise.min()) > 0.85 * float(rise.max())
        inner_only = -(pose(rig, browInnerUp=1.0)[upper, 1] - n[upper, 1])
        assert float(inner_only[-1]) > 4 * float(inner_only[0])  # AU1 alone still slants: the inner end rises


def test_iris_follows_eye_look_only(rig):
    n = rig.neutral
    look = pose(rig, eyeLookOutLeft=1.0)
    assert float(look[473, 0] - n[473, 0]) > 0.3  # left iris turns to the subject's left (+x)
    assert float(pose(rig, eyeLookInRight=1.0)[468, 0] - n[468, 0]) > 0.3  # right iris turns to the nose (+x)
    assert float(pose(rig, eyeLookDownLeft=1.0)[473, 1] - n[473, 1]) > 0.3
    assert torch.allclose(pose(rig, eyeBlinkLeft=1.0)[468:], n[468:])


def test_left_right_shapes_are_mirrors(rig):
    mirror = torch.tensor(np.array(load_canonical().mirror), dtype=torch.long)
    for base in ("eyeBlink", "mouthSmile", "browDown", "cheekSquint"):
        left = rig.basis[ARKIT52.index(base + "Left"), :468]
        right = rig.basis[ARKIT52.index(base + "Right"), :468]
        assert torch.allclose(right, left[mirror] * torch.tensor([-1.0, 1.0, 1.0]), atol=1e-5)


def test_scaled_to_a_person(rig):
    rng = np.random.default_rng(0)
    a = np.radians(20)
    rot = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]], np.float32)
    face = rig.neutral.numpy() @ rot.T * 12.0 + np.array([300.0, 200.0, 0.0], np.float32)
    face = face + rng.normal(0, 0.05, face.shape).astype(np.float32)
    person = rig.scaled_to(face[:468])
    assert person.neutral.shape == (478, 3)
    assert torch.allclose(person.neutral[:468], torch.as_tensor(face[:468]))
    p = torch.zeros(1, 52)
    p[0, ARKIT52.index("jawOpen")] = 1.0
    d_person = person.deltas(p)[0].numpy()
    d_canon = rig.deltas(p)[0].numpy() @ rot.T * 12.0
    np.testing.assert_allclose(d_person, d_canon, atol=0.05)
    # A person whose eyes are half as open gets a blink half as long, so it still just closes them.
    half = rig.neutral.clone()
    for up, lo in ((386, 374), (385, 380), (387, 373), (159, 145), (158, 153), (160, 144)):
        half[up, 1] = (half[up, 1] + half[lo, 1]) / 2
    ph = rig.scaled_to(half[:468])
    p = torch.zeros(1, 52)
    p[0, ARKIT52.index("eyeBlinkLeft")] = 1.0
    assert eye_opening(ph(p)[0], "Left") < 0.2 * eye_opening(half, "Left")


def test_procrustes_recovers_similarity():
    g = torch.Generator().manual_seed(0)
    src = torch.randn(50, 3, generator=g)
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=g))
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    dst = 2.5 * src @ q.T + torch.tensor([1.0, -2.0, 3.0])
    s, r, t = procrustes(src, dst)
    assert s == pytest.approx(2.5, rel=1e-4)
    assert torch.allclose(r, q, atol=1e-4)


def test_rig_rejects_wrong_width():
    from reenact.errors import InputError

    with pytest.raises(InputError):
        Rig().deltas(torch.zeros(1, 17))
