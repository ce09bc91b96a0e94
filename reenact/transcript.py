"""Forced alignment of a known transcript (`--text` / `--transcript`): text normalisation and pocketsphinx.

pocketsphinx is optional (the `[speech]` extra): it is imported only when a transcript is given. Its phone timings
replace the audio head's visemes in `reenact.speech.speech_to_track`, for the best lip timing.
"""

from __future__ import annotations

import re

import numpy as np

from reenact.errors import InputError
from reenact.phones import RATE, SR, PhoneSegment, frame_db, mono16k

_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen " \
        "seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def _number(n: int) -> list[str]:
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        return [_TENS[n // 10]] + ([_ONES[n % 10]] if n % 10 else [])
    if n < 1000:
        return [_ONES[n // 100], "hundred"] + (_number(n % 100) if n % 100 else [])
    if n < 1_000_000:
        return _number(n // 1000) + ["thousand"] + (_number(n % 1000) if n % 1000 else [])
    return [_ONES[int(d)] for d in str(n)]


def normalize_text(text: str) -> list[str]:
    """Lower-case words for the pronouncing dictionary: digits spelled out, bracketed notes and punctuation dropped."""
    text = re.sub(r"\[[^\]]*\]", " ", text.lower()).replace("&", " and ").replace("%", " percent ")
    words: list[str] = []
    for tok in re.findall(r"[a-z']+|\d+", text.replace("-", " ")):
        words.extend(_number(int(tok)) if tok.isdigit() else [tok.strip("'")] if tok.strip("'") else [])
    return words


_DECODERS: dict[int, object] = {}


def _decoder(sr: int):  # pocketsphinx is optional: imported only when a transcript is given
    try:
        from pocketsphinx import Decoder
    except ImportError as exc:
        raise InputError("--text/--transcript needs the optional package pocketsphinx: pip install pocketsphinx.") from exc
    if sr not in _DECODERS:
        _DECODERS[sr] = Decoder(samprate=sr, bestpath=False, loglevel="FATAL")
    return _DECODERS[sr]


def align_transcript(wave: np.ndarray, sr: int, text: str) -> list[PhoneSegment]:
    """Force-align `text` to mono `wave` (16 kHz or 8 kHz) with pocketsphinx; ARPAbet phones with times in seconds.

    Words missing from the pronouncing dictionary are dropped (their sound is absorbed by neighbours)."""
    wave = mono16k(wave, sr)
    dec = _decoder(SR)
    words = [w for w in normalize_text(text) if dec.lookup_word(w) is not None]
    if not words:
        raise InputError("The transcript has no words pocketsphinx knows; check the --text/--transcript language.")
    pcm = (np.clip(wave, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
    try:
        dec.set_align_text(" ".join(words))
        for _ in range(2):  # first pass: word search; second pass: phone/state alignment of its result
            dec.start_utt()
            dec.process_raw(pcm, full_utt=True)
            dec.end_utt()
            if _ == 0:
                dec.set_alignment()
        segs = [PhoneSegment(p.name, p.start / RATE, (p.start + p.duration) / RATE, w.name)
                for w in dec.get_alignment() for p in w]
    except (RuntimeError, ValueError) as exc:
        raise InputError(f"Could not align the transcript to the audio ({exc}); check that they match.") from exc
    return _trim_edges(segs, wave)


def _trim_edges(segs: list[PhoneSegment], wave: np.ndarray) -> list[PhoneSegment]:
    """pocketsphinx stretches the first/last phone over leading/trailing silence; cut them at the speech edges."""
    db = frame_db(wave)
    loud = np.nonzero(db > db.max() - 35.0)[0] if len(db) else np.array([], int)
    if not len(loud) or not segs:
        return segs
    first, last = loud[0] / RATE, (loud[-1] + 1) / RATE
    if segs[0].start < first - 0.05:
        segs[0].start = float(min(first, segs[0].end))
    if segs[-1].end > last + 0.05:
        segs[-1].end = float(max(last, segs[-1].start))
    return segs
