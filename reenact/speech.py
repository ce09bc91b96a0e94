"""Speech -> Viseme15 posteriors -> ARKit mouth weights (idle life is in reenact.idle).

Two sources of visemes:
  * the trained `AudioHead` (log-mel at 100 Hz -> viseme logits + jaw/energy amplitudes), the default;
  * `reenact.transcript.align_transcript` (pocketsphinx forced alignment of a known text), optional, for best timing.
Both give 100 Hz viseme posteriors that `mouth_from_visemes` turns into per-video-frame ARKit weights with
coarticulation. Long audio goes through `stream_speech_track` in overlapping windows, so memory stays flat.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch
from torch import nn

from reenact.errors import InputError, WeightsError
from reenact.idle import idle_track
from reenact.params import ARKIT52, RANGES, SPEECH, VISEME15, VISEME_TO_ARKIT_TABLE, Track
# The 16 kHz helpers live in reenact.phones, below reenact.transcript; reenact.speech.SR etc. stay importable.
from reenact.phones import HOP, RATE, SR, PhoneSegment, frame_db, mono16k  # noqa: F401
from reenact.registry import register_model
from reenact.transcript import align_transcript

VISEMES = VISEME15  # sil PP FF TH DD kk CH SS nn RR aa E I O U
AMPLITUDES = ("jaw", "energy")
V = {name: i for i, name in enumerate(VISEMES)}
# The ARKit channels speech drives (the mouth subset of ARKIT52, in Apple's order).
MOUTH = tuple(n for n in ARKIT52 if n.startswith(("jaw", "mouth", "tongue")) and n not in ("jawForward", "jawLeft",
              "jawRight", "mouthLeft", "mouthRight"))
M = {name: i for i, name in enumerate(MOUTH)}
_SHAPES = VISEME_TO_ARKIT_TABLE  # target mouth shape of each viseme; symmetric pairs written once


def _shape_matrix() -> np.ndarray:
    out = np.zeros((len(VISEMES), len(MOUTH)), np.float32)  # (15, K)
    for v, shape in _SHAPES.items():
        for key, w in shape.items():
            for name in (key, key + "Left", key + "Right"):
                if name in M:
                    out[V[v], M[name]] = w
    return out


SHAPES = _shape_matrix()
JAW = SHAPES[:, M["jawOpen"]].copy()  # (15,) jaw opening of each viseme; also the head's jaw training target

# CMU/ARPAbet (pocketsphinx) phone -> viseme(s); diphthongs get two visemes, each half the duration.
ARPABET: dict[str, tuple[str, ...]] = {
    "AA": ("aa",), "AE": ("aa",), "AH": ("aa",), "AO": ("O",), "AW": ("aa", "U"), "AY": ("aa", "I"),
    "EH": ("E",), "ER": ("RR",), "EY": ("E", "I"), "IH": ("I",), "IY": ("I",), "OW": ("O", "U"), "OY": ("O", "I"),
    "UH": ("U",), "UW": ("U",), "B": ("PP",), "M": ("PP",), "P": ("PP",), "F": ("FF",), "V": ("FF",),
    "TH": ("TH",), "DH": ("TH",), "T": ("DD",), "D": ("DD",), "K": ("kk",), "G": ("kk",), "NG": ("kk",),
    "CH": ("CH",), "JH": ("CH",), "SH": ("CH",), "ZH": ("CH",), "S": ("SS",), "Z": ("SS",), "N": ("nn",),
    "L": ("nn",), "R": ("RR",), "W": ("U",), "Y": ("I",), "HH": ("",),  # h takes the shape of what follows
}


def segments_to_frames(segments: list[tuple[str, float, float]], n_frames: int, rate: int = RATE) -> np.ndarray:
    """(viseme, start, end) segments -> (n_frames,) viseme indices at `rate` Hz; gaps are silence."""
    labels = np.zeros(n_frames, np.int64)
    for vis, start, end in segments:
        a, b = int(round(start * rate)), int(round(end * rate))
        labels[max(a, 0):max(min(b, n_frames), 0)] = V[vis]
    return labels


def phones_to_visemes(phones: list[tuple[str, float, float]], table: dict[str, tuple[str, ...]] = ARPABET
                      ) -> list[tuple[str, float, float]]:
    """Map phone segments to viseme segments: split diphthongs, let /h/ take the next viseme, rest -> sil."""
    out: list[tuple[str, float, float]] = []
    pending_h: list[tuple[float, float]] = []
    for phone, start, end in phones:
        vis = table.get(re.sub(r"\d", "", phone.upper()) if table is ARPABET else phone, ("sil",))
        if vis == ("",):
            pending_h.append((start, end))
            continue
        for hs, he in pending_h:
            out.append((vis[0], hs, he))
        pending_h = []
        step = (end - start) / len(vis)
        out.extend((v, start + i * step, start + (i + 1) * step) for i, v in enumerate(vis))
    out.extend(("sil", hs, he) for hs, he in pending_h)
    return out


# ---------------------------------------------------------------- the audio head
def mel_filterbank(n_mels: int = 80, n_fft: int = 512, fmin: float = 20.0, fmax: float = 7600.0) -> np.ndarray:
    """HTK-style triangular mel filters, (n_mels, n_fft // 2 + 1)."""
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)  # noqa: E731
    edges = hz(np.linspace(mel(fmin), mel(fmax), n_mels + 2))
    freqs = np.linspace(0, SR / 2, n_fft // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    fb = np.maximum(0.0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)))
    return fb.astype(np.float32)


class _Block(nn.Module):
    def __init__(self, channels: int, dilation: int, dropout: float) -> None:
        super().__init__()
        pad = dilation  # kernel 3: same length, non-causal (we look ahead as far as back)
        self.net = nn.Sequential(
            nn.Conv1d(channels, channels, 3, padding=pad, dilation=dilation), nn.BatchNorm1d(channels), nn.GELU(),
            nn.Dropout(dropout), nn.Conv1d(channels, channels, 3, padding=pad, dilation=dilation),
            nn.BatchNorm1d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.gelu(x + self.net(x))


@register_model("audio_head")
class AudioHead(nn.Module):
    """Log-mel (100 Hz) -> per-frame Viseme15 logits + jaw/energy amplitudes (temporal conv net, ~0.4 s context).

    BatchNorm (not GroupNorm/LayerNorm over time) keeps every output frame a function of its receptive field only,
    so windowed streaming gives the same numbers as one pass."""

    def __init__(self, n_mels: int = 80, channels: int = 96, dilations: tuple[int, ...] = (1, 2, 4, 8, 1, 2),
                 n_visemes: int = 15, n_amplitudes: int = 2, dropout: float = 0.1) -> None:
        super().__init__()
        self.n_visemes = n_visemes
        self.register_buffer("mel_mean", torch.zeros(n_mels))  # feature normalisation, set by training
        self.register_buffer("mel_std", torch.ones(n_mels))
        self.register_buffer("window", torch.hann_window(400), persistent=False)
        self.register_buffer("fb", torch.from_numpy(mel_filterbank(n_mels)), persistent=False)
        self.inp = nn.Sequential(nn.Conv1d(n_mels, channels, 5, padding=2), nn.BatchNorm1d(channels), nn.GELU())
        self.blocks = nn.Sequential(*[_Block(channels, d, dropout) for d in dilations])
        self.out = nn.Conv1d(channels, n_visemes + n_amplitudes, 1)
        self.receptive = 2 + 2 * sum(dilations)  # frames each side

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, N) 16 kHz samples -> (B, n_mels, N // HOP) normalised log-mel; frame i is centred on sample i*HOP."""
        spec = torch.stft(wave, 512, HOP, 400, self.window, center=True, pad_mode="constant", return_complex=True)
        power = spec.real**2 + spec.imag**2  # (B, 257, N // HOP + 1)
        mel = torch.log(torch.einsum("mf,bft->bmt", self.fb, power) + 1e-6)[..., : wave.shape[-1] // HOP]
        return (mel - self.mel_mean[:, None]) / self.mel_std[:, None]

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, T) -> (B, n_visemes + n_amplitudes, T): viseme logits then amplitude logits."""
        return self.out(self.blocks(self.inp(mel)))

    @torch.no_grad()
    def predict(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N) -> posteriors (B, T, 15), amplitudes in [0, 1] (B, T, 2)."""
        y = self(self.features(wave)).transpose(1, 2).float()
        return y[..., : self.n_visemes].softmax(-1), y[..., self.n_visemes:].sigmoid()


def load_head(device: torch.device | str = "cpu") -> AudioHead:
    """The shipped audio head (weights/audio_head.safetensors)."""
    from reenact.weights import load_model

    model = load_model("audio_head", device)
    if not isinstance(model, AudioHead):
        raise WeightsError("weights/audio_head.json does not describe an AudioHead; reinstall reenact.")
    return model


# ---------------------------------------------------------------- visemes -> mouth weights (coarticulation)
# Dominance: how strongly a viseme holds its shape against its neighbours (Cohen-Massaro style blending).
_DOMINANCE = np.array([1.0, 2.5, 2.0, 1.2, 0.8, 0.6, 1.3, 1.2, 0.7, 1.0, 1.2, 1.0, 1.0, 1.6, 1.6], np.float32)
SILENCE_DBFS = -60.0  # frames quieter than this are silence whatever the head says
_GAP = ("mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight", "mouthFunnel",
        "tongueOut")


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(x, sigma, axis=0, mode="nearest") if sigma > 0 else x


def coarticulate(post: np.ndarray, jaw: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """100 Hz posteriors (T, 15) [+ head jaw amplitude (T,)] -> blended mouth weights (T, K), lip-closure and
    teeth-on-lip strengths (T,) each, before pooling to video frames."""
    dom = _smooth(post * _DOMINANCE, 3.0)  # ~30 ms spread: neighbours blend
    blend = dom / np.maximum(dom.sum(1, keepdims=True), 1e-6)
    weights = blend @ SHAPES  # (T, K)
    # Lip rounding anticipates and lingers over neighbouring consonants (e.g. the s in "stew"): wider spread.
    round_ = _smooth(post[:, [V["O"], V["U"]]].sum(1), 8.0)[:, None]
    for name, gain in (("mouthFunnel", 0.45), ("mouthPucker", 0.6)):
        weights[:, M[name]] = np.maximum(weights[:, M[name]], gain * round_[:, 0])
    if jaw is not None:  # the head's own jaw estimate carries loudness/emphasis the class blend cannot
        speaking = 1.0 - blend[:, V["sil"]]
        weights[:, M["jawOpen"]] = 0.5 * weights[:, M["jawOpen"]] + 0.5 * jaw * speaking
    return weights, _smooth(post[:, V["PP"]], 1.5), _smooth(post[:, V["FF"]], 1.5)


def pool_frames(x: np.ndarray, n_frames: int, fps: float, offset: int = 0, reduce: str = "mean") -> np.ndarray:
    """100 Hz rows -> video frames: frame k averages (or maxes) the rows inside [k/fps, (k+1)/fps).
    `offset` is the video frame index of row 0's frame (for windows of a stream); rows start at frame offset's time."""
    base = int(np.floor(offset * RATE / fps))
    k = np.arange(offset, offset + n_frames + 1)
    edges = np.floor(k * RATE / fps).astype(np.int64) - base
    lo = np.clip(edges[:-1], 0, len(x) - 1)
    hi = np.clip(np.maximum(edges[1:], edges[:-1] + 1), lo + 1, len(x))  # at least one row per frame
    if reduce == "max":
        span = int((hi - lo).max()) if n_frames else 1
        idx = np.minimum(lo[:, None] + np.arange(span)[None], hi[:, None] - 1)  # (n_frames, span)
        return x[idx].max(1).astype(np.float32)
    csum = np.concatenate([np.zeros((1,) + x.shape[1:]), np.cumsum(x, 0, dtype=np.float64)])
    count = (hi - lo).reshape((-1,) + (1,) * (x.ndim - 1))
    return ((csum[hi] - csum[lo]) / count).astype(np.float32)


def lips_shut(closure: np.ndarray) -> np.ndarray:
    """(T,) p/b/m's pooled closure strength -> how far the lips are shut, 0..1."""
    return np.clip((closure - 0.3) / 0.3, 0.0, 1.0)


def apply_constraints(weights: np.ndarray, shut: np.ndarray, teeth: np.ndarray) -> np.ndarray:
    """Hard articulatory targets on video frames: p/b/m close the lips fully (`shut`: `lips_shut`), f/v tuck the lower
    lip (`teeth`: its pooled strength)."""
    w = weights.copy()
    c = shut  # (T,)
    for name in _GAP:
        w[:, M[name]] *= 1.0 - c
    w[:, M["jawOpen"]] = w[:, M["jawOpen"]] * (1.0 - 0.7 * c)
    w[:, M["mouthClose"]] = c * w[:, M["jawOpen"]] + (1.0 - c) * np.minimum(w[:, M["mouthClose"]], w[:, M["jawOpen"]])
    for name in ("mouthPressLeft", "mouthPressRight"):
        w[:, M[name]] = np.maximum(w[:, M[name]], 0.5 * c)
    f = np.clip((teeth - 0.3) / 0.3, 0.0, 1.0)
    w[:, M["mouthRollLower"]] = np.maximum(w[:, M["mouthRollLower"]], 0.6 * f)
    for name in ("mouthUpperUpLeft", "mouthUpperUpRight"):
        w[:, M[name]] = np.maximum(w[:, M[name]], 0.25 * f)
    return np.clip(w, 0.0, 1.0)


def lip_gap(weights: np.ndarray) -> np.ndarray:
    """A renderer-independent proxy of the vertical lip opening, (T, K) -> (T,): 0 means the lips touch."""
    open_ = weights[:, M["jawOpen"]] - weights[:, M["mouthClose"]]
    lips = 0.5 * (weights[:, M["mouthLowerDownLeft"]] + weights[:, M["mouthLowerDownRight"]]
                  + weights[:, M["mouthUpperUpLeft"]] + weights[:, M["mouthUpperUpRight"]]) / 2
    return np.maximum(open_, 0.0) + lips + 0.3 * weights[:, M["mouthFunnel"]]


@dataclass
class SpeechTrack:
    """Per-video-frame speech animation: viseme posteriors, ARKit mouth weights and loudness in [0, 1]."""

    visemes: np.ndarray  # (T, 15), rows sum to 1, names VISEMES
    weights: np.ndarray  # (T, K) ARKit mouth weights, names MOUTH
    loudness: np.ndarray  # (T,) for idle life
    fps: float
    names: tuple[str, ...] = MOUTH
    # (T,) how far p/b/m shut the lips, 0..1 (`lips_shut`): the renderer closes them whatever the photo's opening
    # (reenact.render.renderer.close_lips); None: as the weights draw them
    shut: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.weights)


def _loudness(db: np.ndarray) -> np.ndarray:
    return np.clip((db - SILENCE_DBFS) / 45.0, 0.0, 1.0)


def track_from_posteriors(post: np.ndarray, jaw: np.ndarray | None, db: np.ndarray, fps: float, n_frames: int,
                          offset: int = 0, skip: int = 0) -> SpeechTrack:
    """100 Hz posteriors (T, 15), optional head jaw (T,), frame levels in dBFS (T,) -> `n_frames` video frames
    from frame `offset` on; row `skip` is the row at frame `offset`'s start (earlier rows are context)."""
    post = post.copy()
    post[db < SILENCE_DBFS] = np.eye(len(VISEMES), dtype=np.float32)[V["sil"]]  # silence closes the mouth
    weights, closure, teeth = coarticulate(post, jaw)
    pool = lambda x, how="mean": pool_frames(x[skip:], n_frames, fps, offset, how)  # noqa: E731
    w, vis, loud, shut = pool(weights), pool(post), pool(_loudness(db)), lips_shut(pool(closure, "max"))
    return SpeechTrack(vis, apply_constraints(w, shut, pool(teeth, "max")), loud, fps, shut=shut)


def n_video_frames(n_samples: int, fps: float) -> int:
    return max(1, int(round(n_samples * fps / SR)))


def stream_speech_track(chunks: Iterable[np.ndarray], fps: float, model: AudioHead | None = None,
                        device: torch.device | str = "cpu", block_s: float = 20.0, context_s: float = 1.0
                        ) -> Iterator[SpeechTrack]:
    """16 kHz mono float chunks (any sizes) -> SpeechTrack blocks in order, ~`block_s` seconds each.

    Each block is computed on its audio plus `context_s` either side (more than the head's receptive field and
    the coarticulation spread), so the blocks join exactly as one pass would, and memory stays flat."""
    if fps <= 0:
        raise InputError(f"fps must be positive, got {fps}.")
    model = model if model is not None else load_head(device)
    ctx = int(context_s * RATE) * HOP
    block = max(1, int(round(block_s * fps)))
    buf, buf_start, total, f0 = np.zeros(0, np.float32), 0, 0, 0
    chunks = iter(chunks)
    while True:
        chunk = next(chunks, None)
        if chunk is not None:
            chunk = np.asarray(chunk, np.float32).reshape(-1)
            buf, total = np.concatenate([buf, chunk]), total + len(chunk)
        done = chunk is None
        while True:
            n_total = n_video_frames(total, fps) if done else None
            f1 = f0 + block if n_total is None else min(f0 + block, n_total)
            a0 = int(np.floor(f0 * RATE / fps)) * HOP
            a1 = int(np.ceil(f1 * RATE / fps)) * HOP + HOP
            if f1 <= f0 or (not done and a1 + ctx > total):
                break
            seg = np.zeros(a1 - a0 + 2 * ctx, np.float32)  # zeros outside the recording = silence
            lo, hi = max(a0 - ctx, buf_start), min(a1 + ctx, total)
            if hi > lo:
                seg[lo - (a0 - ctx):hi - (a0 - ctx)] = buf[lo - buf_start:hi - buf_start]
            with torch.inference_mode():
                post, amp = model.predict(torch.from_numpy(seg)[None].to(device))
            post, amp = post[0].cpu().numpy(), amp[0].cpu().numpy()
            yield track_from_posteriors(post, amp[:, 0], frame_db(seg), fps, f1 - f0, f0, ctx // HOP)
            f0 = f1
            keep = int(np.floor(f0 * RATE / fps)) * HOP - ctx
            if keep > buf_start:
                buf, buf_start = buf[keep - buf_start:], keep
        if done:
            return


def concat_tracks(parts: Iterable[SpeechTrack]) -> SpeechTrack:
    parts = list(parts)
    shut = None if any(p.shut is None for p in parts) else np.concatenate([p.shut for p in parts])
    return SpeechTrack(np.concatenate([p.visemes for p in parts]), np.concatenate([p.weights for p in parts]),
                       np.concatenate([p.loudness for p in parts]), parts[0].fps, shut=shut)


def speech_to_track(wave: np.ndarray, sr: int, fps: float, text: str | None = None, model: AudioHead | None = None,
                    device: torch.device | str = "cpu") -> SpeechTrack:
    """Audio samples (any rate, mono or stereo) -> per-video-frame visemes and ARKit mouth weights.

    With `text`, phone timings come from pocketsphinx forced alignment instead of the audio head."""
    wave = mono16k(wave, sr)
    if not len(wave):
        raise InputError("The audio is empty (zero samples); give a recording at least one frame long.")
    if text is None:
        return concat_tracks(stream_speech_track([wave], fps, model, device))
    if fps <= 0:
        raise InputError(f"fps must be positive, got {fps}.")
    segs = align_transcript(wave, SR, text)
    n = len(wave) // HOP + 1
    labels = segments_to_frames(phones_to_visemes([(s.phone, s.start, s.end) for s in segs]), n)
    post = np.eye(len(VISEMES), dtype=np.float32)[labels]  # (T, 15)
    db = frame_db(np.concatenate([wave, np.zeros(HOP, np.float32)]))[:n]
    return track_from_posteriors(post, None, db, fps, n_video_frames(len(wave), fps))


# ---------------------------------------------------------------- audio files (speak, drive --audio, extract)

_ARKIT_INDEX = {n: i for i, n in enumerate(ARKIT52)}


def speech_track(audio: Path, fps: float, device: torch.device | str = "cpu", text: str | None = None
                 ) -> SpeechTrack:
    """Per-video-frame visemes, mouth weights and loudness for an audio file (any format PyAV reads)."""
    from reenact.io.audio import load_audio, stream_audio

    if text is not None:
        if not text.strip():
            raise InputError("--text is empty; give the words spoken in the audio, or leave --text out.")
        wave, sr = load_audio(audio, sr=SR)
        return speech_to_track(wave, sr, fps, text=text, device=device)
    head = load_head(device)
    blocks = stream_speech_track(stream_audio(audio, SR, 10.0), fps, model=head, device=device)
    track = concat_tracks(blocks)
    if len(track) == 0:
        raise InputError(f"{audio} holds no audio samples; give a recording with speech (or silence) in it.")
    return track


def speech_columns(track: SpeechTrack) -> list[int]:
    return [_ARKIT_INDEX[name] for name in track.names]


def speech_to_track_file(audio: Path, fps: float, device: torch.device | str = "cpu",
                         text: str | None = None, idle: int | None = 0) -> Track:
    """`extract speech.wav`: a Track with the 15 viseme posteriors, the ARKit mouth weights and how far p/b/m shut the
    lips (`lipsShut`) per video frame, and `speak`'s idle life with seed `idle` (blinks, brow raises, head yaw /
    pitch / roll in degrees; None: none), so that `render --pose` of the track draws what `speak` draws."""
    tr = speech_track(audio, fps, device, text)
    columns = [tr.visemes, tr.weights] + ([] if tr.shut is None else [tr.shut[:, None]])
    names = list(VISEMES) + list(tr.names) + ([] if tr.shut is None else list(SPEECH))
    if idle is not None:
        life, idle_names = idle_track(len(tr), fps, tr.loudness, seed=idle)
        columns.append(life)
        names += list(idle_names)
    meta = {"fps": str(Fraction(fps).limit_denominator(1001)), "frames": len(tr), "source": audio.name,
            "missing_frames": 0}
    values = np.concatenate(columns, 1).astype(np.float32)
    lo, hi = np.array([RANGES[n] for n in names], np.float32).T  # mouth in [0, 1], head turns in degrees
    return Track(np.arange(len(tr)) / fps, np.clip(values, lo, hi), names, meta)
