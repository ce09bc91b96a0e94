"""Speech -> visemes -> mouth weights: shipped head, silence, bilabial closures on a held-out voice, streaming."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from reenact import speech, transcript
from reenact.errors import InputError

FIX = Path(__file__).parent / "fixtures" / "speech"


@pytest.fixture(scope="module")
def head() -> speech.AudioHead:
    return speech.load_head("cpu")


@pytest.fixture(scope="module")
def papa() -> tuple[np.ndarray, int, dict]:
    wave, sr = sf.read(FIX / "papa.wav", dtype="float32")
    return wave, sr, json.loads((FIX / "papa.json").read_text())


def test_head_loads_from_shipped_weights(head):
    assert head.contract.channels == list(speech.VISEMES) + list(speech.AMPLITUDES)
    assert head.contract.input["sample_rate"] == 16000 and head.contract.input["n_mels"] == 80
    post, amp = head.predict(torch.zeros(2, 16000))
    assert post.shape == (2, 100, 15) and amp.shape == (2, 100, 2)
    assert torch.allclose(post.sum(-1), torch.ones(2, 100), atol=1e-5)
    assert float(amp.min()) >= 0 and float(amp.max()) <= 1


def test_silence_closes_the_mouth(head):
    tr = speech.speech_to_track(np.zeros(32000, np.float32), 16000, 25, model=head)
    assert len(tr) == 50 and tr.weights.shape == (50, len(speech.MOUTH)) and tr.visemes.shape == (50, 15)
    assert np.abs(tr.weights).max() == 0.0
    assert (tr.visemes.argmax(1) == speech.V["sil"]).all()
    assert tr.loudness.max() == 0.0


def test_bilabials_close_the_lips_on_held_out_voice(head, papa):
    wave, sr, meta = papa
    fps = 25
    tr = speech.speech_to_track(wave, sr, fps, model=head)
    assert len(tr) == round(len(wave) / sr * fps)
    gap = speech.lip_gap(tr.weights)
    pp = [(a, b) for v, a, b in meta["visemes"] if v == "PP"]
    closed = 0
    for a, b in pp:  # a closure within one video frame of the labelled p/b/m
        lo, hi = int(np.floor(a * fps)) - 1, int(np.ceil(b * fps)) + 1
        closed += gap[max(lo, 0):hi].min() < 0.03
    assert closed >= len(pp) - 2, f"only {closed}/{len(pp)} bilabials closed the lips"
    vowels = [int((a + b) / 2 * fps) for v, a, b in meta["visemes"] if v in ("aa", "O")]
    assert np.mean(gap[vowels]) > 0.15  # and the vowels open it
    assert tr.loudness[vowels].mean() > 0.5


def test_streaming_matches_one_pass(head, papa):
    wave, sr, _ = papa
    whole = speech.speech_to_track(wave, sr, 30, model=head)
    parts = list(speech.stream_speech_track((wave[i:i + 1234] for i in range(0, len(wave), 1234)), 30, head,
                                            block_s=0.5))
    assert len(parts) > 3
    joined = speech.concat_tracks(parts)
    assert len(joined) == len(whole)
    np.testing.assert_allclose(joined.weights, whole.weights, atol=1e-4)
    np.testing.assert_allclose(joined.visemes, whole.visemes, atol=1e-4)


def test_rates_and_channels(head, papa):
    wave, sr, _ = papa
    ref = speech.speech_to_track(wave, sr, 25, model=head)
    tel = speech.speech_to_track(wave[::2], 8000, 25, model=head)  # crude 8 kHz telephone copy
    stereo = speech.speech_to_track(np.stack([wave, wave], 1), sr, 25, model=head)
    assert len(tel) == len(ref) == len(stereo)
    np.testing.assert_allclose(stereo.weights, ref.weights, atol=1e-5)
    assert np.corrcoef(speech.lip_gap(tel.weights), speech.lip_gap(ref.weights))[0, 1] > 0.6


def test_bad_input(head):
    with pytest.raises(InputError):
        speech.speech_to_track(np.zeros(0, np.float32), 16000, 25, model=head)
    with pytest.raises(InputError):
        speech.speech_to_track(np.zeros(1600, np.float32), 16000, 0, model=head)
    with pytest.raises(InputError):
        speech.speech_to_track(np.zeros((2, 2, 2), np.float32), 16000, 25, model=head)


def test_normalize_text():
    assert transcript.normalize_text("Press 1, or 162 [beep] it's") == ["press", "one", "or", "one", "hundred", "sixty",
                                                                     "two", "it's"]


def test_align_transcript(papa):
    pytest.importorskip("pocketsphinx")
    wave, sr, meta = papa
    segs = transcript.align_transcript(wave, sr, meta["text"])
    vis = speech.phones_to_visemes([(s.phone, s.start, s.end) for s in segs])
    found = [(a + b) / 2 for v, a, b in vis if v == "PP"]
    truth = [(a + b) / 2 for v, a, b in meta["visemes"] if v == "PP"]
    assert len(found) == len(truth)
    assert np.median(np.abs(np.array(found) - np.array(truth))) < 0.05
    tr = speech.speech_to_track(wave, sr, 25, text=meta["text"])
    gap = speech.lip_gap(tr.weights)
    assert sum(gap[int(t * 25)] < 0.03 for t in found) >= len(found) - 1
