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
