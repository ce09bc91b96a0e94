"""Discrete emotions and the continuous VAD space (reenact.emotion)."""

import numpy as np
import pytest

from reenact import emotion as E
from reenact.errors import InputError
from reenact.params import ARKIT52, AU17


def _au(vec, name):
    return float(vec[AU17.index(name)])


def test_prototypes_follow_emfacs():
    happy = E.emotion_to_au("happy", 1.0)
    assert _au(happy, "AU12") == 1.0 and _au(happy, "AU6") > 0.5
    sad = E.emotion_to_au("sadness", 1.0)
    assert min(_au(sad, "AU1"), _au(sad, "AU4"), _au(sad, "AU15")) > 0.5
    surprise = E.emotion_to_au("surprised", 1.0)
    assert min(_au(surprise, a) for a in ("AU1", "AU2", "AU5", "AU26")) > 0.5
    angry = E.emotion_to_au("anger", 1.0)
    assert min(_au(angry, a) for a in ("AU4", "AU7", "AU23")) > 0.5
    assert _au(E.emotion_to_au("disgusted"), "AU9") == 1.0
    assert not np.any(E.emotion_to_au("neutral"))
    np.testing.assert_allclose(E.emotion_to_au("happy", 0.5), 0.5 * happy)


def test_contempt_is_one_sided_in_arkit():
    ar = E.emotion_to_arkit("contempt", 1.0)
    assert ar[ARKIT52.index("mouthSmileRight")] > 0 and ar[ARKIT52.index("mouthSmileLeft")] == 0


def test_parse_emotion():
    assert E.parse_emotion("happy:0.6") == ("happy", 0.6)
    assert E.parse_emotion(" Fearful ") == ("fear", 1.0)
    assert E.parse_emotion("anger=0.25") == ("angry", 0.25)
    for bad in ("happy:1.5", "bored:0.5", "happy:x", ""):
        with pytest.raises(InputError):
            E.parse_emotion(bad)


def test_vad_hits_prototypes_and_origin_is_neutral():
    for name in E.EMOTIONS:
        np.testing.assert_allclose(E.vad_to_au(*E.VAD[name]), E.prototype(name), atol=1e-4)
    assert np.abs(E.vad_to_au(0, 0, 0)).max() < 1e-4
    # Half-way towards happiness is a weaker smile, classified as happy.
    name, k = E.classify(E.vad_to_au(*(0.5 * np.array(E.VAD["happy"]))))
    assert name == "happy" and 0.2 < k < 0.8
    with pytest.raises(InputError):
        E.vad_to_au(2.0, 0.0, 0.0)


def test_axes_regression_orders_valence():
    v = E.au_to_vad(np.stack([E.prototype(n) for n in ("happy", "sad", "angry")]))
    assert v[0, 0] > 0 > v[1, 0] and v[2, 0] < 0
    assert E.AXES.shape == (17, 3)


def test_classify_recovers_emotion():
    for name in ("happy", "sad", "surprise", "fear", "angry", "disgust", "contempt"):
        got, k = E.classify(E.emotion_to_au(name, 0.7))
        assert got == name and k == pytest.approx(0.7, abs=1e-4)


def test_vad_ratings_are_the_1977_table_rows():
    # Russell & Mehrabian (1977) Table 4 rows (docs/params.md: how they were checked).
    assert E.VAD["happy"] == (0.81, 0.51, 0.46) and E.VAD["angry"] == (-0.51, 0.59, 0.25)
    assert E.VAD["sad"] == (-0.63, -0.27, -0.33) and E.VAD["fear"] == (-0.64, 0.60, -0.43)
    assert set(E.VAD_TERMS) == set(E.EMOTIONS) - {"neutral"}
    assert all(max(map(abs, v)) <= 1.0 for v in E.VAD.values())


def test_emotion_edit_replaces_the_photos_expression() -> None:
    from reenact.edit import Controls
    from reenact.params import ARKIT52

    i = {n: k for k, n in enumerate(ARKIT52)}
    smiling = np.zeros(52, np.float32)
    smiling[[i["mouthSmileLeft"], i["mouthSmileRight"]]] = 0.8
    smiling[i["eyeLookInLeft"]] = 0.3  # gaze is not expression: kept
    angry = Controls.parse([], [], "angry", None).apply(smiling)
    assert angry[i["mouthSmileLeft"]] < 0.05 and angry[i["browDownLeft"]] > 0.3 and angry[i["eyeLookInLeft"]] == 0.3
    neutral = Controls.parse([], [], "neutral", None).apply(smiling)
    assert np.abs(np.delete(neutral, i["eyeLookInLeft"])).max() == 0.0
    half = Controls.parse([], [], "neutral:0.5", None).apply(smiling)
    assert abs(half[i["mouthSmileLeft"]] - 0.4) < 1e-6
    # --au / --arkit adjust the emotion afterwards; the sweep scale goes from the photo (0) to the edit (1)
    c = Controls.parse(["12=0.2"], [], "happy", None)
    assert abs(c.apply(smiling)[i["mouthSmileLeft"]] - Controls.parse(["12=0.2"], [], None, None).apply(smiling)[i["mouthSmileLeft"]]) < 1e-6
    np.testing.assert_allclose(c.apply(smiling, scale=0.0), smiling)
