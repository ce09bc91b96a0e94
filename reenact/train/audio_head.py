"""Train the audio head (reenact.speech.AudioHead) on .cache/speech/data/ (made by tools/make_speech_data.py).

Resumable: a checkpoint (model + Adam moments, safetensors) goes to .cache/speech/audio_head_ckpt.* every
`--ckpt-every` steps; re-running continues from it. At the end: weights/audio_head.safetensors + .json and an
evaluation of held-out speakers/voices in .cache/speech/eval.json (frame accuracy, confusions, p/b/m recall).

    OMP_NUM_THREADS=1 nohup .venv/bin/python -m reenact.train.audio_head > .cache/logs/audio_head.log 2>&1 &
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from scipy.signal import resample

from reenact import speech
from reenact.weights import Contract, save

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / ".cache" / "speech" / "data"
CKPT = ROOT / ".cache" / "speech" / "audio_head_ckpt"


@dataclass
class Config:
    steps: int = 3000
    batch: int = 24
    crop_s: float = 3.0
    lr: float = 2e-3
    channels: int = 96
    real_weight: float = 3.0  # oversample the one real speaker (asterisk) against synthetic voices
    ckpt_every: int = 200
    speed_prob: float = 0.5
    seed: int = 0


class Corpus:
    """Utterances of a set of .npz files: audio (16 kHz int16), labels (100 Hz viseme ids)."""

    def __init__(self, paths: list[Path]) -> None:
        self.utts: list[tuple[str, np.ndarray, np.ndarray]] = []  # (set name, wave float32, labels)
        for p in paths:
            d = np.load(p)
            ao, lo = d["audio_off"], d["label_off"]
            for i in range(len(ao) - 1):
                wave = d["audio"][ao[i]:ao[i + 1]].astype(np.float32) / 32767.0
                self.utts.append((p.stem, wave, d["labels"][lo[i]:lo[i + 1]].astype(np.int64)))


def targets(wave: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """jaw: the coarticulated jaw opening of the label sequence; energy: level relative to the utterance's peak."""
    jaw = speech._smooth(speech.JAW[labels], 3.0)
    db = speech.frame_db(wave)[: len(labels)]
    ref = np.percentile(db, 95) if len(db) else 0.0
    energy = np.clip((db - ref + 45.0) / 45.0, 0.0, 1.0)
    return jaw.astype(np.float32), np.pad(energy, (0, len(labels) - len(energy))).astype(np.float32)


def sample_batch(corpus: Corpus, weights: np.ndarray, cfg: Config, rng: np.random.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n = int(cfg.crop_s * speech.RATE)
    waves = np.zeros((cfg.batch, n * speech.HOP), np.float32)
    labels = np.zeros((cfg.batch, n), np.int64)
    amps = np.zeros((cfg.batch, 2, n), np.float32)
    for b, i in enumerate(rng.choice(len(corpus.utts), cfg.batch, p=weights)):
        name, wave, lab = corpus.utts[i]
        jaw, energy = targets(wave, lab)
        # speed perturbation on half the crops: m source frames played in n (pitch and formants scale too, a
        # cheap stand-in for other speakers' vocal tracts)
        m = int(round(n * rng.uniform(0.85, 1.2))) if rng.random() < cfg.speed_prob else n
        t = len(lab)
        s = int(rng.integers(-m // 4, max(t - 3 * m // 4, 1)))  # crops may hang over the ends: learn silence
        a, e = max(s, 0), min(s + m, t)
        if e <= a:
            continue
        src_lab = np.zeros(m, np.int64)
        src_amp = np.zeros((2, m), np.float32)
        src_wave = np.zeros(m * speech.HOP, np.float32)
        src_lab[a - s:e - s] = lab[a:e]
        src_amp[0, a - s:e - s], src_amp[1, a - s:e - s] = jaw[a:e], energy[a:e]
        seg = wave[a * speech.HOP:e * speech.HOP]
        src_wave[(a - s) * speech.HOP:(a - s) * speech.HOP + len(seg)] = seg
        if m != n:
            src_wave = resample(src_wave, n * speech.HOP).astype(np.float32)
        idx = np.minimum((np.arange(n) * m) // n, m - 1)
        waves[b], labels[b], amps[b] = src_wave, src_lab[idx], src_amp[:, idx]
    waves = augment(waves, rng)
    return torch.from_numpy(waves), torch.from_numpy(labels), torch.from_numpy(amps)


def augment(waves: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gain (+-15 dB), telephone band (<3.6 kHz) on a third, noise at 15-45 dB SNR on half."""
    out = waves * (10.0 ** (rng.uniform(-15, 10, (len(waves), 1)) / 20.0))
    spec = np.fft.rfft(out, axis=1)
    freqs = np.fft.rfftfreq(out.shape[1], 1.0 / speech.SR)
    tel = rng.random(len(out)) < 0.33
    spec[tel] *= (freqs < 3600.0)[None]
    out = np.fft.irfft(spec, n=out.shape[1], axis=1)
    for b in np.nonzero(rng.random(len(out)) < 0.5)[0]:
        power = np.mean(out[b] ** 2) + 1e-10
        out[b] += rng.normal(0, math.sqrt(power / 10 ** (rng.uniform(15, 45) / 10)), out.shape[1])
    return np.clip(out, -1, 1).astype(np.float32)


def set_mel_stats(model: speech.AudioHead, corpus: Corpus, rng: np.random.Generator) -> None:
    idx = rng.choice(len(corpus.utts), min(200, len(corpus.utts)), replace=False)
    with torch.no_grad():
        mels = torch.cat([model.features(torch.from_numpy(corpus.utts[i][1])[None])[0] for i in idx], dim=1)
    model.mel_mean.copy_(mels.mean(1))
    model.mel_std.copy_(mels.std(1).clamp_min(1e-3))


def save_ckpt(model: torch.nn.Module, opt: torch.optim.Optimizer, step: int) -> None:
    names = {id(p): n for n, p in model.named_parameters()}
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    for group in opt.param_groups:
        for p in group["params"]:
            for k, v in opt.state.get(p, {}).items():
                tensors[f"opt.{names[id(p)]}.{k}"] = torch.as_tensor(v).reshape(-1) if k == "step" else v
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(CKPT) + ".safetensors")
    Path(str(CKPT) + ".json").write_text(json.dumps({"step": step}))


def load_ckpt(model: torch.nn.Module, opt: torch.optim.Optimizer) -> int:
    meta = Path(str(CKPT) + ".json")
    if not meta.exists():
        return 0
    t = load_file(str(CKPT) + ".safetensors")
    model.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model.")})
    params = dict(model.named_parameters())
    for k, v in t.items():
        if k.startswith("opt."):
            name, _, key = k[4:].rpartition(".")
            opt.state[params[name]][key] = v.reshape(()) if key == "step" else v
    return int(json.loads(meta.read_text())["step"])


def evaluate(model: speech.AudioHead, paths: list[Path]) -> dict:
    """Frame accuracy and confusions per held-out set, at 100 Hz, on whole utterances."""
    model.eval()
    report: dict = {}
    k = len(speech.VISEMES)
    for p in paths:
        conf = np.zeros((k, k), np.int64)
        for _, wave, lab in Corpus([p]).utts:
            post, _ = model.predict(torch.from_numpy(wave)[None])
            pred = post[0].argmax(-1).numpy()
            n = min(len(pred), len(lab))
            np.add.at(conf, (lab[:n], pred[:n]), 1)
        report[p.stem] = confusion_summary(conf)
    return report


def track_eval(model: speech.AudioHead, paths: list[Path], fps: float = 25.0) -> dict:
    """What the renderer will see, per held-out set at `fps`: lag (frames) at which the lip opening best
    correlates with the speech envelope, and the share of labelled p/b/m whose lips close (gap < 0.03 within
    one frame of the label)."""
    report: dict = {}
    for p in paths:
        gaps, envs, closed, total = [], [], 0, 0
        for _, wave, lab in Corpus([p]).utts:
            tr = speech.speech_to_track(wave, speech.SR, fps, model=model)
            gap = speech.lip_gap(tr.weights)
            db = speech.frame_db(wave)
            env = speech.pool_frames(np.clip((db + 60) / 45, 0, 1)[:, None], len(gap), fps)[:, 0]
            gaps.append(gap - gap.mean())
            envs.append(env - env.mean())
            edges = np.flatnonzero(np.diff(np.r_[0, lab == speech.V["PP"], 0]))
            for a, b in zip(edges[::2], edges[1::2]):
                lo, hi = int(np.floor(a / speech.RATE * fps)) - 1, int(np.ceil(b / speech.RATE * fps)) + 1
                total += 1
                closed += bool(gap[max(lo, 0):min(hi, len(gap))].min(initial=1.0) < 0.03)
        g, e = np.concatenate(gaps), np.concatenate(envs)
        corr = {lag: float(np.corrcoef(np.roll(g, -lag), e)[0, 1]) for lag in range(-4, 5)}
        best = max(corr, key=corr.get)
        report[p.stem] = {"envelope_corr_at_0": round(corr[0], 3), "best_lag_frames": best,
                          "best_corr": round(corr[best], 3), "bilabials": total,
                          "bilabial_closure_rate": round(closed / max(total, 1), 3)}
    return report


def confusion_summary(conf: np.ndarray) -> dict:
    names = speech.VISEMES
    speech_rows = conf[1:]
    top = []
    off = conf.copy()
    np.fill_diagonal(off, 0)
    for flat in np.argsort(off, axis=None)[::-1][:5]:
        i, j = np.unravel_index(flat, off.shape)
        top.append(f"{names[i]}->{names[j]} {off[i, j] / max(conf[i].sum(), 1):.0%}")
    pp = conf[speech.V["PP"]]
    return {"frames": int(conf.sum()), "accuracy": float(np.trace(conf) / max(conf.sum(), 1)),
            "speech_accuracy": float(np.trace(conf[1:, 1:]) / max(speech_rows.sum(), 1)),
            "PP_recall": float(pp[speech.V["PP"]] / max(pp.sum(), 1)),
            "per_class_recall": {n: float(conf[i, i] / max(conf[i].sum(), 1)) for i, n in enumerate(names)},
            "top_confusions": top, "confusion": conf.tolist()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f, v in asdict(Config()).items():
        ap.add_argument("--" + f.replace("_", "-"), type=type(v), default=v)
    ap.add_argument("--eval-only", action="store_true")
    args = ap.parse_args()
    cfg = Config(**{f: getattr(args, f) for f in asdict(Config())})
    torch.set_num_threads(1)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    train_paths, held_paths = sorted(DATA.glob("*_train.npz")), sorted(DATA.glob("*_heldout.npz"))
    corpus = Corpus(train_paths)
    w = np.array([cfg.real_weight if n.startswith("asterisk") else 1.0 for n, _, _ in corpus.utts])
    w *= np.array([len(lab) for _, _, lab in corpus.utts])  # by duration
    w /= w.sum()
    counts = np.bincount(np.concatenate([lab for _, _, lab in corpus.utts]), minlength=len(speech.VISEMES))
    class_w = torch.tensor((counts / counts.sum() + 1e-3) ** -0.3, dtype=torch.float32)
    class_w /= class_w.mean()
    model = speech.AudioHead(channels=cfg.channels)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    step = load_ckpt(model, opt)
    if step == 0:
        set_mel_stats(model, corpus, rng)
    print(f"{len(corpus.utts)} training utterances, {sum(len(x) for _, x, _ in corpus.utts) / 16000 / 60:.0f} min;"
          f" resuming at step {step}", flush=True)
    t0 = time.time()
    while step < cfg.steps and not args.eval_only:
        model.train()
        lr = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / cfg.steps)) * min(1.0, (step + 1) / 100)
        for g in opt.param_groups:
            g["lr"] = lr
        waves, labels, amps = sample_batch(corpus, w, cfg, rng)
        y = model(model.features(waves))  # (B, 17, T)
        k = len(speech.VISEMES)
        loss_v = torch.nn.functional.cross_entropy(y[:, :k], labels, weight=class_w, label_smoothing=0.05)
        loss_a = torch.nn.functional.binary_cross_entropy_with_logits(y[:, k:], amps)
        loss = loss_v + 0.5 * loss_a
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 20 == 0:
            acc = (y[:, :k].argmax(1) == labels).float().mean().item()
            print(f"step {step} loss {loss_v.item():.3f}/{loss_a.item():.3f} acc {acc:.3f} lr {lr:.5f} "
                  f"{(time.time() - t0) / 60:.1f} min", flush=True)
        if step % cfg.ckpt_every == 0 or step == cfg.steps:
            save_ckpt(model, opt, step)
    report = evaluate(model, held_paths)
    for name, r in track_eval(model, held_paths).items():
        report[name]["track_25fps"] = r
        print(name, r, flush=True)
    (ROOT / ".cache" / "speech" / "eval.json").write_text(json.dumps(report, indent=1))
    for name, r in report.items():
        print(f"{name}: acc {r['accuracy']:.3f} speech-frames {r['speech_accuracy']:.3f} PP {r['PP_recall']:.3f} "
              f"| {', '.join(r['top_confusions'])}", flush=True)
    export(model, cfg, train_paths, report)


def export(model: speech.AudioHead, cfg: Config, train_paths: list[Path], report: dict) -> None:
    contract = Contract(
        name="audio_head", arch="audio_head", kwargs={"channels": cfg.channels},
        input={"sample_rate": speech.SR, "mono": True, "range": [-1, 1], "features": "log-mel", "n_mels": 80,
               "n_fft": 512, "win": 400, "hop": speech.HOP, "frame_rate_hz": speech.RATE, "fmin": 20, "fmax": 7600},
        outputs={"logits": "(B, 15 + 2, T) at 100 Hz: Viseme15 logits (softmax), then jaw and energy (sigmoid)"},
        channels=list(speech.VISEMES) + list(speech.AMPLITUDES),
        training_data=("Real speech: asterisk-core-sounds-en-wav 1.6.1 (Allison Smith, CC-BY-SA-3.0), labels by "
                       "pocketsphinx 5 forced alignment of core-sounds-en.txt; synthetic: espeak-ng 1.51 voices "
                       "(GPL-3.0-or-later program output) with exact phoneme events, flite 2.2 voices kal16/awb/rms "
                       "aligned by pocketsphinx. Files: " + ", ".join(p.stem for p in train_paths)),
        licence="Apache-2.0 (weights trained by reenact; see training_data for the data's own licences)",
        source="trained by reenact", script="tools/make_speech_data.py; python -m reenact.train.audio_head",
        extra={"config": asdict(cfg),
               "heldout_accuracy": {k: round(v["accuracy"], 4) for k, v in report.items()}})
    save("audio_head", model.state_dict(), contract)


if __name__ == "__main__":
    main()
