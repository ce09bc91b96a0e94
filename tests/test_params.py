"""Named spaces, linear maps and track files (reenact.params)."""

import json

import numpy as np
import pytest

from reenact import params as P
from reenact.errors import TrackError


def test_spaces_have_documented_sizes_and_unique_names():
    assert len(P.AU17) == 17 and len(P.ARKIT52) == 52 and len(P.VISEME15) == 15
    assert len(set(P.ALL_CHANNELS)) == len(P.ALL_CHANNELS)
    assert P.ARKIT52[0] == "eyeBlinkLeft" and P.ARKIT52[17] == "jawOpen" and P.ARKIT52[-1] == "tongueOut"
    # Live Link order differs from Apple's only by the Jaw/Mouth Left/Right swaps.
    assert sorted(n.lower() for n in P.LIVELINK52) == sorted(n.lower() for n in P.ARKIT52)
    assert P.LIVELINK52[15:17] == ("JawRight", "JawLeft")


def test_au_arkit_maps():
    au = np.zeros(17, np.float32)
    au[P.AU17.index("AU12")] = 0.8
    ar = P.au_to_arkit(au)
    assert ar[P.ARKIT52.index("mouthSmileLeft")] == pytest.approx(0.8)
    assert ar[P.ARKIT52.index("mouthSmileRight")] == pytest.approx(0.8)
    assert np.count_nonzero(ar) == 2
    rng = np.random.default_rng(0)
    aus = rng.uniform(0, 1, (10, 17)).astype(np.float32)
    aus[:, P.AU17.index("AU25")] *= 0.5  # AU25 maps to 0.6 * lowerDown, so stays within range
    np.testing.assert_allclose(P.arkit_to_au(P.au_to_arkit(aus)), aus, atol=1e-5)
    assert P.arkit_to_au(np.eye(52, dtype=np.float32)[P.ARKIT52.index("jawOpen")])[P.AU17.index("AU26")] == 1.0


def test_viseme_map_mouth_only_and_open_vowel():
    m = P.VISEME_TO_ARKIT
    assert np.all(m[:, 0] == 0)  # silence: nothing moves
    eyes_brows = [i for i, n in enumerate(P.ARKIT52) if n.startswith(("eye", "brow", "nose", "cheek"))]
    assert np.all(m[eyes_brows] == 0)
    jaw = P.ARKIT52.index("jawOpen")
    assert m[jaw, P.VISEME15.index("aa")] > m[jaw, P.VISEME15.index("PP")]
    assert m[P.ARKIT52.index("mouthPucker"), P.VISEME15.index("U")] > 0.5


def test_canonical_channel_spellings():
    assert P.canonical_channel("AU01_r") == "AU1"
    assert P.canonical_channel("au12") == "AU12"
    assert P.canonical_channel("EyeBlinkLeft") == "eyeBlinkLeft"
    with pytest.raises(TrackError, match="smirk"):
        P.canonical_channel("smirk")


def _track(n=5):
    t = np.arange(n) / 25.0
    v = np.linspace(0, 1, n * 3, dtype=np.float32).reshape(n, 3)
    return P.Track(t, v, ["AU12", "jawOpen", "yaw"], {"fps": 25.0})


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_csv_json_round_trip(tmp_path, suffix):
    tr = _track()
    back = P.Track.read(tr.write(tmp_path / f"t{suffix}"))
    assert back.channels == tr.channels
    np.testing.assert_allclose(back.times, tr.times, atol=1e-6)
    np.testing.assert_allclose(back.values, tr.values, atol=1e-5)


def test_csv_has_time_column_and_named_channels(tmp_path):
    path = _track().write(tmp_path / "t.csv")
    header = path.read_text().splitlines()[0].split(",")
    assert header == ["time", "AU12", "jawOpen", "yaw"]


def test_openface_round_trip(tmp_path):
    au = np.random.default_rng(1).uniform(0, 1, (4, 17)).astype(np.float32)
    tr = P.Track(np.arange(4) / 30.0, au, list(P.AU17))
    path = tr.write(tmp_path / "of.csv", "openface")
    header = path.read_text().splitlines()[0].split(",")
    assert "AU01_r" in header and "AU45_r" in header
    assert float(path.read_text().splitlines()[1].split(",")[2]) == pytest.approx(5 * au[0, 0], abs=0.01)
    back = P.Track.read(path)
    np.testing.assert_allclose(back.select(P.AU17), au, atol=0.002)


def test_livelink_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    ar = rng.uniform(0, 1, (6, 52)).astype(np.float32)
    pose = np.array([[10.0, -5.0, 2.0]] * 6, np.float32)
    tr = P.Track(np.arange(6) / 60.0, np.concatenate([ar, pose], 1), list(P.ARKIT52) + ["yaw", "pitch", "roll"],
                 {"fps": 60.0})
    path = tr.write(tmp_path / "ll.csv", "livelink")
    lines = path.read_text().splitlines()
    assert lines[0].startswith("Timecode,BlendShapeCount,EyeBlinkLeft,EyeLookDownLeft")
    assert lines[0].endswith("RightEyeYaw,RightEyePitch,RightEyeRoll")
    assert lines[2].startswith("00:00:00:01.000,61,")
    back = P.Track.read(path)
    np.testing.assert_allclose(back.select(P.ARKIT52), ar, atol=1e-4)
    np.testing.assert_allclose(back.select(["yaw", "pitch", "roll"]), pose, atol=1e-3)
    np.testing.assert_allclose(back.times, tr.times, atol=1e-4)


def test_unknown_column_names_column(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("time,AU12,smirk\n0,0.1,0.2\n")
    with pytest.raises(TrackError, match="smirk"):
        P.Track.read(p)


def test_out_of_range_names_column_and_row(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("time,AU12,jawOpen\n0,0.1,0.2\n0.04,0.1,1.7\n")
    with pytest.raises(TrackError, match=r"jawOpen row 2"):
        P.Track.read(p)


def test_not_a_number_and_missing_time(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("time,AU12\n0,0.1\n0.04,abc\n")
    with pytest.raises(TrackError, match=r"AU12 row 2"):
        P.Track.read(p)
    q = tmp_path / "notime.csv"
    q.write_text("AU12\n0.1\n")
    with pytest.raises(TrackError, match="time"):
        P.Track.read(q)


def test_time_must_increase(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("time,AU12\n0,0.1\n0,0.2\n")
    with pytest.raises(TrackError, match="row 2"):
        P.Track.read(p)


def test_bad_json(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps({"channels": ["AU12"]}))
    with pytest.raises(TrackError):
        P.Track.read(p)


def test_track_select_and_interpolate():
    tr = _track()
    sel = tr.select(["jawOpen", "AU45"])
    assert sel.shape == (5, 2) and np.all(sel[:, 1] == 0)
    mid = tr.at(np.array([0.02]))
    np.testing.assert_allclose(mid[0], (tr.values[0] + tr.values[1]) / 2, atol=1e-6)
