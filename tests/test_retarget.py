import numpy as np
import pytest

from reenact.errors import InputError
from reenact.params import ARKIT52
from reenact.retarget import RetargetOptions, arkit_indices, parse_assignments, retarget

I = {n: i for i, n in enumerate(ARKIT52)}


def test_relative_keeps_source_expression_and_adds_driver_change() -> None:
    src = np.zeros(52, np.float32)
    src[I["mouthSmileLeft"]] = src[I["mouthSmileRight"]] = 0.5
    neutral = np.full(52, 0.1, np.float32)
    drv = np.tile(neutral, (3, 1))
    drv[1, I["jawOpen"]] = 0.7
    out = retarget(drv, neutral, src, RetargetOptions())
    assert np.allclose(out[0], src)  # driver at its neutral: the source is unchanged
    assert out[1, I["jawOpen"]] == pytest.approx(0.6)
    assert out[1, I["mouthSmileLeft"]] == pytest.approx(0.5)


def test_a_blink_closes_a_share_of_what_the_photo_has_open() -> None:
    # A photo whose open eyes read eyeBlink 0.2 / 0 (a resting face read as part-expression) takes a half blink on
    # both eyes alike: the driver's closure is composed with the photo's (the opening left is the photo's times the
    # driver's), not added to it; added, the eye read 0.2 reached 0.7 against the other's 0.5.
    src = np.zeros(52, np.float32)
    src[I["eyeBlinkLeft"]] = 0.2
    drv = np.zeros((3, 52), np.float32)
    drv[1, [I["eyeBlinkLeft"], I["eyeBlinkRight"]]] = 0.5
    drv[2, [I["eyeBlinkLeft"], I["eyeBlinkRight"]]] = 1.0
    out = retarget(drv, np.zeros(52, np.float32), src, RetargetOptions())
    assert np.allclose(out[0], src)
    left, right = out[:, I["eyeBlinkLeft"]], out[:, I["eyeBlinkRight"]]
    assert left[1] == pytest.approx(0.2 + 0.5 * 0.8) and right[1] == pytest.approx(0.5)
    assert left[2] == pytest.approx(1.0) and right[2] == pytest.approx(1.0)  # a full blink shuts both
    # a driver that opens its eyes wider than its rest opens the photo's share of closure the same way
    wide = retarget(-drv[1:2], np.zeros(52, np.float32), src, RetargetOptions())
    assert wide[0, I["eyeBlinkLeft"]] == pytest.approx(0.1) and wide[0, I["eyeBlinkRight"]] == 0.0


def test_absolute_and_strength() -> None:
    src = np.zeros(52, np.float32)
    drv = np.full((1, 52), 0.8, np.float32)
    out = retarget(drv, np.zeros(52), src, RetargetOptions(absolute=True, strength=0.5))
    assert np.allclose(out, 0.4)


def test_region_scale_and_mute() -> None:
    drv = np.full((1, 52), 0.5, np.float32)
    opts = RetargetOptions(region="mouth", scale={"AU12": 1.4}, mute=["jawOpen"])
    out = retarget(drv, np.zeros(52), np.zeros(52), opts)[0]
    assert out[I["eyeBlinkLeft"]] == 0.0 and out[I["browInnerUp"]] == 0.0
    assert out[I["mouthSmileRight"]] == pytest.approx(0.7)
    assert out[I["jawOpen"]] == 0.0
    assert out[I["mouthFunnel"]] == pytest.approx(0.5)


def test_au_expands_to_both_sides_and_bad_names_are_input_errors() -> None:
    assert sorted(arkit_indices("AU45")) == sorted([I["eyeBlinkLeft"], I["eyeBlinkRight"]])
    with pytest.raises(InputError, match="Unknown channel"):
        arkit_indices("AU99")
    with pytest.raises(InputError, match="not an expression channel"):
        arkit_indices("yaw")
    assert parse_assignments(["12=0.8", "jawOpen=0.5"], "--au") == {"AU12": 0.8, "jawOpen": 0.5}
    with pytest.raises(InputError, match="NAME=NUMBER"):
        parse_assignments(["AU12"], "--au")
    with pytest.raises(InputError, match="--region"):
        RetargetOptions(region="nose").gains()


def test_a_photo_with_parted_lips_closes_them_when_the_driver_does() -> None:
    from reenact.clip_geometry import lip_gap_per_unit
    from reenact.retarget import driver_reference

    per_unit = lip_gap_per_unit()  # cm per unit of each shape, from the shipped rig
    jaw = ARKIT52.index("jawOpen")
    assert per_unit[jaw] > 2.0 and per_unit[ARKIT52.index("mouthClose")] < 0
    driver = np.zeros((100, 52), np.float32)
    driver[:, jaw] = np.linspace(0.0, 0.8, 100)  # a driver whose median opening is 0.4 of jawOpen
    assert not driver_reference(driver, 0.05, per_unit).any()  # closed lips: the driver's rest, as always
    ref = driver_reference(driver, 0.5, per_unit)  # lips 0.5 cm apart: that much of the driver's opening
    assert ref[jaw] == pytest.approx(0.5 / per_unit[jaw], rel=1e-4) and np.count_nonzero(ref) == 1
    source = np.zeros(52, np.float32)
    source[jaw] = 0.3  # the photo's reading of its parted lips
    out = retarget(driver, ref, source, RetargetOptions())
    assert out[0, jaw] < source[jaw] - 0.15 and out[-1, jaw] > 0.7  # closes at the driver's rest, opens with it
    # A smile's parted lips (3 cm, read as a closed jaw): at most the driver's median opening, so the mouth still
    # opens with the driver's (a smiling photo's lips are apart because they are drawn back, not dropped).
    smile = driver_reference(driver, 3.0, per_unit, photo_jaw=0.05)
    assert smile[jaw] == pytest.approx(0.4, abs=0.01)
    # A yell (3 cm, read 0.9 open): the jaw's own reading, so the mouth shuts at the driver's rest; capped at the
    # median it never shut (docs/fidelity.md, "Sixth pass"). The reading never counts for more than the gap.
    yell = driver_reference(driver, 3.0, per_unit, photo_jaw=0.9)
    assert yell[jaw] == pytest.approx(0.9)
    assert driver_reference(driver, 0.5, per_unit, photo_jaw=0.9)[jaw] == pytest.approx(0.5 / per_unit[jaw], rel=1e-4)
    source[jaw] = 0.9
    out = retarget(driver, yell, source, RetargetOptions())
    assert out[0, jaw] == 0.0 and out[-1, jaw] == pytest.approx(0.8, abs=0.01)


def test_rest_first_measures_the_driver_from_its_first_frame_but_the_jaw_from_its_rest() -> None:
    """--rest first: a photo holds its own expression wherever the driver's face is as in its first frame (a pout
    the driver's rest reads stays off the photo); the jaw keeps the clip's rest so a clip starting mid-word closes."""
    from reenact.clip_geometry import lip_gap_per_unit
    from reenact.retarget import driver_reference

    pucker, smile, jaw = (ARKIT52.index(n) for n in ("mouthPucker", "mouthSmileLeft", "jawOpen"))
    driver = np.zeros((50, 52), np.float32)
    driver[:, pucker] = 0.7  # the driver's resting face reads as a pout...
    driver[25:, pucker], driver[25:, smile] = 0.0, 0.8  # ...which its smiles read away
    driver[0, jaw] = 0.5  # and it starts mid-word
    source = np.zeros(52, np.float32)
    clip = retarget(driver, driver_reference(driver, 0.0, lip_gap_per_unit()), source, RetargetOptions())
    first_opts = RetargetOptions(rest="first")
    first = retarget(driver, driver_reference(driver, 0.0, lip_gap_per_unit(), "first"), source, first_opts)
    assert clip[1, pucker] == pytest.approx(0.7) and first[1, pucker] == 0.0  # at rest: a pout, or the photo's own
    assert first[30, smile] == pytest.approx(0.8)  # the smile is drawn as before
    assert first[0, jaw] == pytest.approx(0.5) and first[1, jaw] == 0.0  # the jaw opens and closes from its rest
    with pytest.raises(InputError):
        RetargetOptions(rest="last")
