"""Audio input: formats, rates, channels, streaming blocks, log-mel alignment, bad files."""

from __future__ import annotations

import wave as wavemod
from fractions import Fraction as F
from pathlib import Path

import numpy as np
import pytest
from media_utils import make_audio, make_video, tone

from reenact.errors import MediaError
from reenact.io.audio import load_audio, log_mel, stream_audio


@pytest.mark.parametrize(
    ("name", "sr", "channels"),
    [("a.wav", 8000, 1), ("b.wav", 44100, 2), ("c.mp3", 44100, 2), ("d.m4a", 48000, 1), ("e.flac", 22050, 1)],
)
def test_load_any_format_resampled(tmp_path: Path, name: str, sr: int, channels: int) -> None:
    path = make_audio(tmp_path / name, seconds=0.5, sr=sr, channels=channels)
    x, out_sr = load_audio(path, sr=16000)
    assert out_sr == 16000 and x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) - 8000) <= 400  # lossy codecs add up to one frame of padding
    # a 440 Hz tone (first channel; mono = mean of channels) survives: its energy sits at 440 Hz
    spec = np.abs(np.fft.rfft(x[1000:7000]))
    assert abs(np.argmax(spec) * 16000 / 6000 - 440) < 10
    stereo, _ = load_audio(path, sr=16000, mono=False)
    assert stereo.shape[0] == channels and stereo.ndim == 2


def test_stereo_downmix_is_the_mean(tmp_path: Path) -> None:
    w = tone(0.5, 48000, 1)
    path = make_audio(tmp_path / "same.wav", sr=48000, wave=np.concatenate([w, w]))
    x, _ = load_audio(path, sr=48000)
    assert np.abs(x).max() == pytest.approx(0.3, abs=0.01)  # not 0.42 (FFmpeg's +3 dB downmix)


def test_audio_of_a_video_file(tmp_path: Path) -> None:
    video = make_video(tmp_path / "v.mp4", n=25, fps=25, audio="aac", sr=48000)
    x, _ = load_audio(video, sr=16000)
    assert abs(len(x) / 16000 - 1.0) < 0.05


def test_stream_audio_blocks_match_load(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "long.wav", seconds=2.3, sr=22050, channels=2)
    whole, _ = load_audio(path, sr=16000)
    blocks = list(stream_audio(path, sr=16000, block_seconds=0.5))
    assert [len(b) for b in blocks[:-1]] == [8000] * 4 and 0 < len(blocks[-1]) <= 8000
    np.testing.assert_array_equal(np.concatenate(blocks), whole)
    stereo = list(stream_audio(path, sr=16000, block_seconds=1.0, mono=False))
    assert stereo[0].shape == (2, 16000)


def test_zero_length_and_non_audio_files(tmp_path: Path) -> None:
    empty_wav = tmp_path / "silence.wav"
    with wavemod.open(str(empty_wav), "wb") as w:  # a valid WAV header with no samples
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"")
    with pytest.raises(MediaError, match="no audio samples"):
        load_audio(empty_wav)
    with pytest.raises(MediaError, match="no audio samples"):
        list(stream_audio(empty_wav))
    silent_video = make_video(tmp_path / "mute.mp4", n=3)
    with pytest.raises(MediaError, match="no audio stream"):
        load_audio(silent_video)
    text = tmp_path / "speech.wav"
    text.write_text("not audio at all\n" * 10)
    with pytest.raises(MediaError, match="speech.wav"):
        load_audio(text)
    with pytest.raises(MediaError, match="not found"):
        load_audio(tmp_path / "missing.mp3")
    (tmp_path / "zero.mp3").write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        load_audio(tmp_path / "zero.mp3")


@pytest.mark.parametrize("fps", [F(25), F(30000, 1001)])
def test_log_mel_rows_are_aligned_to_frames(fps: F) -> None:
    sr = 16000
    x = np.zeros(sr * 2, np.float32)
    k = 20  # a short 2 kHz burst centred exactly on video frame k
    centre = int(round(k / fps * sr))
    x[centre - 80: centre + 80] = np.sin(2 * np.pi * 2000 * np.arange(160) / sr)
    mel = log_mel(x, sr, fps, n_mels=40)
    assert mel.shape == (int(np.ceil(2 * fps)), 40) and mel.dtype == np.float32
    assert int(np.argmax(mel.mean(axis=1))) == k
    sub = log_mel(x, sr, fps, n_mels=40, steps_per_frame=4, n_frames=100)
    assert sub.shape == (400, 40)
    assert int(np.argmax(sub.mean(axis=1))) == 4 * k  # step 0 of frame k is centred on the frame's time
    assert np.all(sub[-4:] == sub[-1])  # frames past the audio are silence


def test_write_wav_round_trips(tmp_path) -> None:
    import numpy as np

    from reenact.io.audio import load_audio, write_wav

    t = np.arange(16000) / 16000
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.25 * np.sin(2 * np.pi * 220 * t)]).astype(np.float32)
    path = write_wav(tmp_path / "s.wav", stereo, 16000)
    back, sr = load_audio(path, sr=16000, mono=False)
    assert sr == 16000 and back.shape == stereo.shape
    assert np.abs(back - stereo).max() < 1e-3
