"""Build the audio head's training/evaluation data under .cache/speech/data/ (one .npz per source and voice).

Sources (all offline, from Debian packages):
  * asterisk: real speech (Allison Smith, CC-BY-SA-3.0) from `asterisk-core-sounds-en-wav`, transcripts from
    `asterisk-core-sounds-en` (core-sounds-en.txt), labels from pocketsphinx forced alignment;
  * espeak: espeak-ng (GPL-3.0+) synthetic speech with exact phoneme times from its phoneme events (libespeak-ng);
  * flite: flite (BSD-like) voices, labels from pocketsphinx forced alignment of the known text.
Held out for evaluation: ~1/7 of the asterisk prompts (by name), espeak voices and the flite voice `slt` never used
in training, speaking held-out prompt texts. Needs: apt-get install espeak-ng flite; pip install pocketsphinx.

Usage: .venv/bin/python tools/make_speech_data.py [--only asterisk,espeak,flite]
"""

from __future__ import annotations

import argparse
import ctypes as C
import gzip
import random
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from reenact import speech, transcript  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "speech"
OUT = CACHE / "data"
ESPEAK_TRAIN = ["en-us", "en-us+m1", "en-us+f2", "en-us+klatt", "en+m3", "en+f1", "en-gb-x-rp+m7", "en-gb-x-rp+f4",
                "en-029+m4", "en-029+f2", "en-gb-x-gbclan+Andy", "en-us+annie", "en+m6", "en-us+f1", "en-us+m3",
                "en-gb-x-rp+klatt2"]
ESPEAK_HELDOUT = ["en-gb-scotland+f3", "en-gb-x-gbcwmd+m2", "en-us+f5"]
FLITE_TRAIN = ["kal16", "awb", "rms"]
FLITE_HELDOUT = ["slt"]

# espeak-ng English phoneme mnemonics -> visemes (vowels by their leading symbols, see _espeak_visemes).
_ESPEAK_CONS = {"p": "PP", "b": "PP", "m": "PP", "m-": "PP", "f": "FF", "v": "FF", "T": "TH", "D": "TH",
                "t": "DD", "d": "DD", "t#": "DD", "d#": "DD", "t2": "DD", "d2": "DD", "?": "DD", "k": "kk",
                "g": "kk", "N": "kk", "x": "kk", "tS": "CH", "dZ": "CH", "S": "CH", "Z": "CH", "s": "SS", "z": "SS",
                "n": "nn", "n-": "nn", "l": "nn", "l/": "nn", "l-": "nn", "L": "nn", "r": "RR", "r-": "RR",
                "w": "U", "j": "I", "z#": "SS"}
_ESPEAK_VOWEL = [("aI", ("aa", "I")), ("aU", ("aa", "U")), ("eI", ("E", "I")), ("OI", ("O", "I")),
                 ("oU", ("O", "U")), ("i@", ("I", "aa")), ("e@", ("E",)), ("U@", ("U",)), ("3", ("RR",)),
                 ("a", ("aa",)), ("A", ("aa",)), ("V", ("aa",)), ("@", ("aa",)), ("E", ("E",)), ("e", ("E",)),
                 ("I", ("I",)), ("i", ("I",)), ("0", ("O",)), ("O", ("O",)), ("o", ("O",)), ("U", ("U",)),
                 ("u", ("U",))]


def espeak_table(name: str) -> tuple[str, ...]:
    if name.startswith("_") or not name:
        return ("sil",)
    if name == "h":
        return ("",)
    if name in _ESPEAK_CONS:
        return (_ESPEAK_CONS[name],)
    for prefix, vis in _ESPEAK_VOWEL:
        if name.startswith(prefix):
            return vis
    return (_ESPEAK_CONS.get(name[0], "sil"),)


class _Table(dict):  # phones_to_visemes looks names up with .get
    def get(self, key, default=None):  # type: ignore[override]
        return espeak_table(key)


class Espeak:
    """libespeak-ng through ctypes: synthesise text, collect audio and phoneme events (audio_position in ms)."""

    class _Id(C.Union):
        _fields_ = [("number", C.c_int), ("name", C.c_char_p), ("string", C.c_char * 8)]

    class _Event(C.Structure):
        pass

    def __init__(self) -> None:
        self._Event._fields_ = [("type", C.c_int), ("unique_identifier", C.c_uint), ("text_position", C.c_int),
                                ("length", C.c_int), ("audio_position", C.c_int), ("sample", C.c_int),
                                ("user_data", C.c_void_p), ("id", self._Id)]
        self.lib = C.CDLL("libespeak-ng.so.1")
        self.sr = self.lib.espeak_Initialize(2, 0, None, 1)  # synchronous, phoneme events on
        cb_type = C.CFUNCTYPE(C.c_int, C.POINTER(C.c_short), C.c_int, C.POINTER(self._Event))
        self._cb = cb_type(self._collect)
        self.lib.espeak_SetSynthCallback(self._cb)

    def _collect(self, wav, n, ev) -> int:
        if n > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while ev[i].type != 0:
            if ev[i].type == 7:  # espeakEVENT_PHONEME
                self.events.append((ev[i].audio_position / 1000.0, ev[i].id.string.decode("ascii", "replace")))
            i += 1
        return 0

    def say(self, text: str, voice: str, rate: int, pitch: int) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
        self.chunks, self.events = [], []
        self.lib.espeak_SetVoiceByName(voice.encode())
        self.lib.espeak_SetParameter(1, rate, 0)  # espeakRATE (words per minute)
        self.lib.espeak_SetParameter(3, pitch, 0)  # espeakPITCH (0-100)
        data = text.encode()
        self.lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, 0, None, None)
        self.lib.espeak_Synchronize()
        wave = np.concatenate(self.chunks).astype(np.float32) / 32768.0 if self.chunks else np.zeros(1, np.float32)
        wave = resample_poly(wave, 320, 441).astype(np.float32) if self.sr == 22050 else wave
        dur = len(wave) / speech.SR
        phones = [(name, t, self.events[i + 1][0] if i + 1 < len(self.events) else dur)
                  for i, (t, name) in enumerate(self.events)]
        return wave, phones


def fetch_asterisk() -> tuple[Path, dict[str, str]]:
    debs = CACHE / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    if not list(debs.glob("asterisk-core-sounds-en-wav_*.deb")):
        subprocess.run(["apt-get", "download", "asterisk-core-sounds-en-wav", "asterisk-core-sounds-en"],
                       cwd=debs, check=True)
    root = CACHE / "asterisk"
    for deb in sorted(debs.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    txt = next(root.rglob("core-sounds-en.txt.gz"))
    prompts = {}
    for line in gzip.open(txt, "rt", encoding="utf-8", errors="replace"):
        name, sep, text = line.partition(":")
        if sep and not line.startswith(";") and transcript.normalize_text(text):
            prompts[name.strip()] = text.strip()
    return next(root.rglob("en_US_f_Allison")), prompts


def heldout(name: str) -> bool:
    return zlib.crc32(name.encode()) % 7 == 0


def save(path: Path, items: list[tuple[str, np.ndarray, np.ndarray]]) -> None:
    """items: (name, wave float32 16 kHz, labels (frames,) viseme ids at 100 Hz) -> one npz without pickles."""
    audio = np.concatenate([(np.clip(w, -1, 1) * 32767).astype(np.int16) for _, w, _ in items])
    labels = np.concatenate([lab.astype(np.uint8) for _, _, lab in items])
    np.savez(path, audio=audio, labels=labels, names=np.array([n for n, _, _ in items]),
             audio_off=np.cumsum([0] + [len(w) for _, w, _ in items]),
             label_off=np.cumsum([0] + [len(lab) for _, _, lab in items]))
    print(f"{path.name}: {len(items)} utterances, {len(audio) / speech.SR / 60:.1f} min", flush=True)


def aligned_labels(wave: np.ndarray, text: str) -> np.ndarray:
    segs = transcript.align_transcript(wave, speech.SR, text)
    vis = speech.phones_to_visemes([(s.phone, s.start, s.end) for s in segs])
    return speech.segments_to_frames(vis, len(wave) // speech.HOP)


def make_asterisk(prompts: dict[str, str], folder: Path) -> None:
    split: dict[str, list] = {"train": [], "heldout": []}
    for name, text in sorted(prompts.items()):
        path = folder / f"{name}.wav"
        if not path.exists():
            continue
        wave, sr = sf.read(path, dtype="float32")
        wave = speech.mono16k(wave, sr)
        try:
            labels = aligned_labels(wave, text)
        except speech.InputError as exc:
            print(f"skip {name}: {exc}", flush=True)
            continue
        split["heldout" if heldout(name) else "train"].append((name, wave, labels))
    for part, items in split.items():
        save(OUT / f"asterisk_allison_{part}.npz", items)


def texts(prompts: dict[str, str], part: str, n: int, seed: int, vocab: list[str]) -> list[str]:
    rng = random.Random(seed)
    pool = [t for k, t in prompts.items() if heldout(k) == (part == "heldout")]
    out = []
    for i in range(n):
        if i % 2 == 0:
            out.append(rng.choice(pool))
        else:
            out.append(" ".join(rng.choice(vocab) for _ in range(rng.randint(4, 12))) + ".")
    return out


def make_espeak(prompts: dict[str, str], vocab: list[str]) -> None:
    es = Espeak()
    table = _Table()
    for part, voices, n in (("train", ESPEAK_TRAIN, 110), ("heldout", ESPEAK_HELDOUT, 50)):
        for vi, voice in enumerate(voices):
            rng = random.Random(vi + (1000 if part == "heldout" else 0))
            items = []
            for i, text in enumerate(texts(prompts, part, n, rng.randint(0, 10**6), vocab)):
                wave, phones = es.say(text, voice, rng.randint(135, 230), rng.randint(25, 75))
                labels = speech.segments_to_frames(speech.phones_to_visemes(phones, table), len(wave) // speech.HOP)
                items.append((f"{voice}/{i}", wave, labels))
            save(OUT / f"espeak_{voice.replace('+', '_')}_{part}.npz", items)


def make_flite(prompts: dict[str, str], vocab: list[str]) -> None:
    for part, voices, n in (("train", FLITE_TRAIN, 220), ("heldout", FLITE_HELDOUT, 80)):
        for vi, voice in enumerate(voices):
            items = []
            with tempfile.TemporaryDirectory() as tmp:
                for i, text in enumerate(texts(prompts, part, n, 77 + vi, vocab)):
                    wav = Path(tmp) / "x.wav"
                    subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(wav)], check=True)
                    wave, sr = sf.read(wav, dtype="float32")
                    wave = speech.mono16k(wave, sr)
                    try:
                        items.append((f"{voice}/{i}", wave, aligned_labels(wave, text)))
                    except speech.InputError as exc:
                        print(f"skip flite {voice}/{i}: {exc}", flush=True)
            save(OUT / f"flite_{voice}_{part}.npz", items)


def vocabulary() -> list[str]:
    import pocketsphinx

    words = []
    for line in open(Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict", encoding="utf-8"):
        w = line.split(" ", 1)[0]
        if w.isalpha() and 2 <= len(w) <= 9:
            words.append(w)
    return words[::7]  # a spread sample; the dictionary is alphabetical


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="asterisk,espeak,flite")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    folder, prompts = fetch_asterisk()
    vocab = vocabulary()
    only = args.only.split(",")
    if "espeak" in only:
        make_espeak(prompts, vocab)
    if "asterisk" in only:
        make_asterisk(prompts, folder)
    if "flite" in only:
        make_flite(prompts, vocab)


if __name__ == "__main__":
    main()
