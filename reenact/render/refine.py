"""GANimation-style refiner on top of the mesh warp (docs/architecture.md, docs/refiner.md): draws what a warp cannot
(mouth interior, eyelid skin, wrinkles) and leaves everything else to the warp through a learned attention mask.

    crop  = aligned similarity crop of the warped face (S x S, [-1, 1])
    C, A  = RefinerNet(crop, target ARKit52 tiled as maps)         C: colour, A: attention (sigmoid)
            C = clamp(crop + 2 tanh(head), -1, 1): a residual on the warped crop (starts as the warp itself)
    out   = A * crop + (1 - A) * C                                 A = 1 keeps the warped pixel

`Refiner.refine` works on the renderer's warped ROI: it crops (batched `grid_sample`), runs the net (with a region
prior only on the window of the crop around the prior's regions, `prior_window`: the same output, cheaper), maps the
correction (1 - A)(C - crop) back through the inverse similarity and adds it to the ROI at the ROI's own
resolution. Outside the crop A = 1, and (1 - A) is feathered to 0 over the crop's border band, so the refined region
has no seam. `Critic` (training only) is a PatchGAN without
normalisation with a parameter-regression head on the same trunk (GANimation's D_y, SliderGAN's D_p).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reenact.errors import InputError
from reenact.face.align import crop_matrix
from reenact.face.canonical import load_canonical
from reenact.registry import register_model

CROP_SIZE = 128
FACE_FRACTION = 0.72  # tighter than reenact.face.align's 0.62: more crop pixels on mouth and eyes, chin still inside
N_PARAMS = 52
MASK_FACE, MASK_MOUTH, MASK_EYES, MASK_INNER = 1, 2, 4, 8  # region bits (training shards and the run-time prior)
PRIOR_SIGMA = 2.0  # crop px: how softly a region prior fades out around its regions


SHARPNESS_MIN = 0.9  # unseen faces: Laplacian variance refined / warp-only; below it the refiner visibly blurs
SKIN_CHANGE_MAX = 2.0  # unseen faces: mean |refined - warp| (0..255) on skin away from mouth and eyes
MOUTH_OPEN_MIN = 0.9  # unseen faces: tracked inner-lip gap of a jaw-open render, refined / warp-only
# ... and at most this: a cavity painted over the lips reads as a wider opening (1.06-1.09 on the sample photo with
# the issue-18 rig, whose jaw opens further; the shipped refiner measures 1.02)
MOUTH_OPEN_MAX = 1.05


def gate(extra: dict) -> str | None:
    """Why a refiner whose contract carries `extra` must not be used, or None when it may.

    It must beat the warp on the held-out frames of its training videos (extra["held_out_l1"], written by
    reenact.train.refiner.export), on videos of other people where they were measured (extra["unseen_people"],
    tools/eval_refiner.py --people --record; the shipped refiner always carries it), and keep unseen faces sharp,
    their skin unchanged and their open mouths as open as the warp draws them, no less and no more (extra["unseen"],
    reenact.train.refiner_check.record_unseen): a refiner that only learned its training people, or that paints over
    an open mouth, does more harm than good to everyone else."""
    held = extra.get("held_out_l1", {})
    refined, warp = held.get("region_refined", float("inf")), held.get("region_warp", float("-inf"))
    if not refined < warp:
        return f"it does not beat the warp on held-out video (mouth/eye L1 {refined:.3f} vs {warp:.3f})"
    people = extra.get("unseen_people", {})  # pairs from videos of people in no training clip (tools/eval_refiner.py)
    if people and not people["region_refined"] < people["region_warp"]:
        return (f"it is worse than the warp on people outside its training videos (mouth/eye L1 "
                f"{people['region_refined']:.3f} vs {people['region_warp']:.3f})")
    unseen = extra.get("unseen")
    if not unseen:
        return "it was not checked on unseen faces (tools/eval_refiner.py --unseen --record)"
    if unseen["sharpness_min"] < SHARPNESS_MIN:
        return f"it blurs unseen faces (sharpness {unseen['sharpness_min']:.2f} of the warp's, needs {SHARPNESS_MIN})"
    if unseen["skin_change_max"] > SKIN_CHANGE_MAX:
        return f"it changes the skin of unseen faces ({unseen['skin_change_max']:.1f} grey levels, at most {SKIN_CHANGE_MAX})"
    if unseen.get("mouth_open_min", 0.0) < MOUTH_OPEN_MIN:  # records made before this check count as failing it
        return (f"it makes open mouths read as less open (the face tracker measures {unseen.get('mouth_open_min', 0.0):.2f} "
                f"of the warp's lip gap, needs {MOUTH_OPEN_MIN}; tools/eval_refiner.py --unseen --record)")
    if unseen.get("mouth_open_max", float("inf")) > MOUTH_OPEN_MAX:  # records made before this check fail it too
        return (f"it makes open mouths read as more open (the face tracker measures {unseen.get('mouth_open_max', float('inf')):.2f} "
                f"of the warp's lip gap, at most {MOUTH_OPEN_MAX}: it paints the opening over the lips; "
                f"tools/eval_refiner.py --unseen --record)")
    return None


def _conv(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride, padding=(k - 1) // 2 if stride == 1 else 1)


class ResBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.a, self.b = _conv(ch, ch), _conv(ch, ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, h, w)
        return x + self.b(F.leaky_relu(self.a(x), 0.2))


@register_model("refiner")
class RefinerNet(nn.Module):
    """Light U-Net generator. warped (B, 3, S, S) in [-1, 1] [+ source (B, 3, S, S)], params (B, n_params) ->
    colour (B, 3, S, S) in [-1, 1], attention (B, 1, S, S) in [0, 1].

    The parameters enter twice: embedded to `cond` channels tiled over the input (GANimation's conditioning, but
    through a small linear embedding so the first conv stays cheap) and as a bias on the bottleneck features.
    """

    def __init__(self, size: int = CROP_SIZE, widths: Sequence[int] = (16, 32, 64, 128), n_params: int = N_PARAMS,
                 cond: int = 8, use_source: bool = False, n_res: int = 2, attention_bias: float = 2.0,
                 residual: bool = True) -> None:
        super().__init__()
        self.size, self.n_params, self.use_source, self.residual = size, n_params, use_source, residual
        w = list(widths)
        self.embed = nn.Linear(n_params, cond)
        self.stem = _conv(3 * (2 if use_source else 1) + cond, w[0])
        self.down = nn.ModuleList([_conv(a, b, 4, 2) for a, b in pairwise(w)])
        self.bottleneck_bias = nn.Linear(n_params, w[-1])
        self.res = nn.Sequential(*[ResBlock(w[-1]) for _ in range(n_res)])
        # Decoder: 1x1 channel reduction, upsample, add the skip, 3x3 conv. Adding instead of concatenating halves
        # the cost of the full-resolution convs, which dominate on a CPU.
        self.reduce = nn.ModuleList([nn.Conv2d(b, a, 1) for a, b in zip(w[-2::-1], w[:0:-1])])
        self.up = nn.ModuleList([_conv(a, a) for a in w[-2::-1]])
        self.color = _conv(w[0], 3)
        self.attention = _conv(w[0], 1)
        if residual:  # C starts as the warped crop: training only has to learn the corrections
            nn.init.normal_(self.color.weight, std=1e-3)
            nn.init.zeros_(self.color.bias)
        nn.init.constant_(self.attention.bias, attention_bias)  # start at A ~ 0.88: mostly the warp, with enough gradient to C

    def forward(self, warped: torch.Tensor, params: torch.Tensor, source: torch.Tensor | None = None,
                raw: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """raw: return the attention logits instead of A (training guards them against saturation)."""
        color, logits = self.raw(warped, params, source)
        return (color, logits) if raw else (color, torch.sigmoid(logits))

    def raw(self, warped: torch.Tensor, params: torch.Tensor, source: torch.Tensor | None = None
            ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> colour (B, 3, S, S) in [-1, 1] and attention logits (B, 1, S, S) (training guards the logits)."""
        b, _, h, w = warped.shape
        maps = self.embed(params).view(b, -1, 1, 1).expand(-1, -1, h, w)  # (B, cond, S, S)
        x = torch.cat([warped, source, maps] if self.use_source else [warped, maps], 1)
        x = F.leaky_relu(self.stem(x), 0.2)
        skips = [x]
        for conv in self.down:
            x = F.leaky_relu(conv(x), 0.2)
            skips.append(x)
        x = self.res(x + self.bottleneck_bias(params).view(b, -1, 1, 1))  # (B, w[-1], S/8, S/8)
        for reduce, conv, skip in zip(self.reduce, self.up, skips[-2::-1]):
            x = F.interpolate(reduce(x), size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = F.leaky_relu(conv(x + skip), 0.2)
        color = (warped + 2 * torch.tanh(self.color(x))).clamp(-1, 1) if self.residual else torch.tanh(self.color(x))
        return color, self.attention(x)


def compose(warped: torch.Tensor, color: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    """GANimation's blend: A = 1 keeps the warped pixel, A = 0 takes the generated colour."""
    return attention * warped + (1 - attention) * color


PRIORS = {"": 0, "mouth": MASK_MOUTH, "eyes": MASK_EYES, "mouth+eyes": MASK_MOUTH | MASK_EYES, "inner-mouth": MASK_INNER}


def prior_bits(name: str) -> int:
    """A region prior's name (contract extra["prior"]: "", "mouth", "eyes", "mouth+eyes") -> its region bits."""
    if name not in PRIORS:
        raise InputError(f"Unknown refiner region prior {name!r}; use one of {', '.join(repr(k) for k in PRIORS)}.")
    return PRIORS[name]


def prior_reach(sigma: float = PRIOR_SIGMA) -> tuple[int, int]:
    """(r, half): region_prior grows the regions by r px, then fades over half px; it is 0 beyond r + half."""
    return max(round(2 * sigma), 1), max(round(3 * sigma), 1)


def region_prior(masks: torch.Tensor, bits: int = MASK_MOUTH | MASK_EYES, sigma: float = PRIOR_SIGMA) -> torch.Tensor:
    """(B, 1, S, S) uint8 region bits -> (B, 1, S, S) float: 1 on the regions in `bits`, grown by 2 sigma and
    fading to 0 over 3 sigma around that, so the repainted area never ends in a seam."""
    r, half = prior_reach(sigma)
    hard = ((masks & bits) > 0).float()
    grown = F.max_pool2d(F.max_pool2d(hard, (1, 2 * r + 1), 1, (0, r)), (2 * r + 1, 1), 1, (r, 0))  # square dilation, separable
    x = torch.arange(-half, half + 1, dtype=torch.float32, device=masks.device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    soft = F.conv2d(grown, k.view(1, 1, 1, -1), padding=(0, half))
    return F.conv2d(soft, k.view(1, 1, -1, 1), padding=(half, 0)).clamp(0, 1)


def apply_prior(attention: torch.Tensor, masks: torch.Tensor, bits: int) -> torch.Tensor:
    """A refiner with a region prior repaints only there: A_eff = 1 - prior (1 - A); bits 0 = no prior."""
    return attention if not bits else 1 - region_prior(masks, bits) * (1 - attention)


class Critic(nn.Module):
    """PatchGAN critic without normalisation (WGAN-GP forbids batch norm) + parameter-regression head.

    image (B, 3, S, S) in [-1, 1] -> (patch scores (B, 1, S/16, S/16), params (B, n_params)).
    """

    def __init__(self, size: int = CROP_SIZE, widths: Sequence[int] = (32, 64, 128, 256), n_params: int = N_PARAMS
                 ) -> None:
        super().__init__()
        chans = [3, *widths]
        self.trunk = nn.Sequential(*[m for a, b in pairwise(chans) for m in (_conv(a, b, 4, 2), nn.LeakyReLU(0.2))])
        self.patch = _conv(chans[-1], 1)
        cells = size // 2 ** len(widths)
        self.params = nn.Conv2d(chans[-1], n_params, cells)  # one kernel over the whole feature map (GANimation D_y)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(image)
        return self.patch(h), self.params(h).flatten(1)


# ---- crop / uncrop -------------------------------------------------------------------------------------------------

def crop_matrices(points: np.ndarray | torch.Tensor, size: int = CROP_SIZE, face_fraction: float = FACE_FRACTION
                  ) -> torch.Tensor:
    """(B, 478|468, 2|3) face points in some image's px -> (B, 2, 3) float32 matrices image px -> crop px."""
    pts = np.asarray(points.detach().cpu() if isinstance(points, torch.Tensor) else points, np.float64)
    if pts.ndim != 3 or pts.shape[1] < 468:
        raise InputError(f"The refiner needs (B, 478, 2|3) face points, got {pts.shape}.")
    return torch.tensor(np.stack([crop_matrix(p, size, face_fraction) for p in pts]), dtype=torch.float32)


def to_crop_points(points: np.ndarray | torch.Tensor, m: torch.Tensor) -> np.ndarray:
    """(B, 478, 2|3) face points, (B, 2, 3) matrices from crop_matrices -> (B, 478, 2) float64 points in crop px."""
    pts = np.asarray(points.detach().cpu() if isinstance(points, torch.Tensor) else points, np.float64)[:, :, :2]
    mm = m.detach().double().cpu().numpy()
    return pts @ mm[:, :, :2].transpose(0, 2, 1) + mm[:, None, :, 2]


def region_masks(points_crop: np.ndarray, size: int, bits: int = MASK_FACE | MASK_MOUTH | MASK_EYES | MASK_INNER
                 ) -> np.ndarray:
    """(478, 2) mesh in crop px -> (size, size) uint8 bit mask: face hull, mouth (outer lips, dilated), eyes,
    inner mouth (inner lips, dilated); only the regions in `bits` (the run-time prior needs one or two)."""
    mesh = load_canonical()
    out = np.zeros((size, size), np.uint8)
    width = float(np.ptp(points_crop[:468, 0]))
    grow = max(round(0.04 * width), 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))

    def hull(idx: np.ndarray, dilate: bool) -> np.ndarray:
        m = np.zeros((size, size), np.uint8)
        pts = np.round(points_crop[idx, :2]).astype(np.int32)
        cv2.fillConvexPoly(m, cv2.convexHull(pts), 1)
        return cv2.dilate(m, kernel) if dilate else m

    if bits & MASK_FACE:
        out |= hull(np.arange(468), False) * MASK_FACE
    if bits & MASK_MOUTH:
        out |= hull(mesh.group("lips_outer"), True) * MASK_MOUTH
    if bits & MASK_INNER:
        out |= hull(mesh.group("lips_inner"), True) * MASK_INNER  # the opening (a thin band when the lips are closed)
    if bits & MASK_EYES:
        for side in ("left", "right"):  # eyelids and brows move together (blink, squint, AU1/2/4)
            idx = np.concatenate([mesh.group(f"{side}_eye"), mesh.group(f"{side}_eyebrow_upper")])
            out |= hull(idx, True) * MASK_EYES
    return out


def _invert(m: torch.Tensor) -> torch.Tensor:
    """(B, 2, 3) affine -> its inverse (B, 2, 3)."""
    lin = torch.linalg.inv(m[:, :, :2])
    return torch.cat([lin, -lin @ m[:, :, 2:]], 2)


def _affine_grid(m: torch.Tensor, out_hw: tuple[int, int], in_hw: tuple[int, int]) -> torch.Tensor:
    """Sampling grid for output px -> input px matrix `m` (B, 2, 3), pixel centres at integers (cv2 convention),
    normalised for grid_sample(align_corners=True)."""
    h, w = out_hw
    ys, xs = torch.meshgrid(torch.arange(h, dtype=m.dtype, device=m.device),
                            torch.arange(w, dtype=m.dtype, device=m.device), indexing="ij")
    pix = torch.stack([xs, ys, torch.ones_like(xs)], -1).view(1, -1, 3)  # (1, h*w, 3)
    src = pix @ m.transpose(1, 2)  # (B, h*w, 2) input px
    scale = torch.tensor([2.0 / max(in_hw[1] - 1, 1), 2.0 / max(in_hw[0] - 1, 1)], dtype=m.dtype, device=m.device)
    return (src * scale - 1).view(-1, h, w, 2)


def to_crop(images: torch.Tensor, m: torch.Tensor, size: int | tuple[int, int] = CROP_SIZE) -> torch.Tensor:
    """(B, C, H, W) images, (B, 2, 3) image px -> crop px -> (B, C, size, size) crops (bilinear, border replicate);
    size (h, w): the crop's top-left h x w part only."""
    hw = (size, size) if isinstance(size, int) else size
    grid = _affine_grid(_invert(m).to(images), hw, images.shape[-2:])
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=True)


def from_crop(crops: torch.Tensor, m: torch.Tensor, out_hw: tuple[int, int], padding: str = "zeros") -> torch.Tensor:
    """(B, C, S, S) crops made with image->crop matrices `m` -> (B, C, H, W) in the image frame."""
    grid = _affine_grid(m.to(crops), out_hw, crops.shape[-2:])
    return F.grid_sample(crops, grid, mode="bilinear", padding_mode=padding, align_corners=True)


def feather(size: int, band: int) -> torch.Tensor:
    """(1, 1, size, size): 1 inside, smooth ramp to 0 over the outer `band` px, so the refined crop has no seam."""
    r = torch.arange(size, dtype=torch.float32)
    edge = torch.minimum(r, size - 1 - r) / max(band, 1)  # 0 at the border
    ramp = torch.clamp(edge, 0, 1)
    ramp = ramp * ramp * (3 - 2 * ramp)  # smoothstep
    return (ramp[:, None] * ramp[None, :])[None, None]


# A region prior throws away (1 - A) outside its regions, so the net only has to see a window of the crop around them.
# Near the window's edge the U-Net sees zero padding instead of the face, and that reaches far: 4 convs at 1/8 scale in
# the bottleneck alone see +-32 crop px. Trained candidates with a prior differ from the full crop by up to 8 grey
# levels with a 32 px margin, 2.7 with 40, 0.005 with 48 (real faces, mouth and inner-mouth priors; measured with
# benchmarks/bench_refiner.py --photo --weights). A shallower net sees less far: its contract records the margin it
# needs (extra["window_margin"], measured the same way); this is the default for a contract without one.
WINDOW_MARGIN = 48


def prior_window(prior: torch.Tensor, margin: int, align: int) -> tuple[int, int, int, int] | None:
    """(B, 1, S, S) region prior -> the crop window (y0, y1, x0, x1) the net must see for it, None when it is empty:
    the prior's support over the batch, grown by `margin` px and snapped outward to multiples of `align` (2 ** the
    net's stride-2 levels), so every level's samples are the same samples as in the full crop's grid."""
    size = prior.shape[-1]
    spans = []
    for line in (prior.amax((0, 1, 3)), prior.amax((0, 1, 2))):  # (S,) rows, (S,) columns
        idx = torch.nonzero(line > 0)
        if not len(idx):
            return None
        lo, hi = int(idx[0]) - margin, int(idx[-1]) + 1 + margin
        spans += [max(lo // align * align, 0), min(-(-hi // align) * align, size)]
    return spans[0], spans[1], spans[2], spans[3]


def shift(m: torch.Tensor, x0: float, y0: float) -> torch.Tensor:
    """(B, 2, 3) image px -> crop px matrices -> image px -> window px, for the window of the crop whose top-left
    corner is crop px (x0, y0)."""
    out = m.clone()
    out[:, 0, 2] -= x0
    out[:, 1, 2] -= y0
    return out


def window_box(m: torch.Tensor, window: tuple[int, int, int, int], h: int, w: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) in ROI px: the box that the crop `window` (y0, y1, x0, x1, crop px) covers in every frame,
    `m` (B, 2, 3) mapping ROI px to crop px, clipped to the (h, w) ROI (one pixel more than the corners reach)."""
    y0, y1, x0, x1 = window
    corners = torch.tensor([[x0, y0, 1], [x1 - 1, y0, 1], [x0, y1 - 1, 1], [x1 - 1, y1 - 1, 1]], dtype=torch.float32,
                           device=m.device) @ _invert(m).transpose(1, 2)  # (B, 4, 2) ROI px
    bx0, by0 = (int(max(0, min(v, hi))) for v, hi in ((float(corners[..., 0].min()), w), (float(corners[..., 1].min()), h)))
    bx1, by1 = (int(max(0, min(v, hi))) for v, hi in ((float(corners[..., 0].max()) + 2, w), (float(corners[..., 1].max()) + 2, h)))
    return bx0, by0, bx1, by1


class Refiner:
    """Run-time wrapper the renderer calls. `net` None: load weights/refiner.safetensors through its contract."""

    def __init__(self, net: RefinerNet | None = None, device: torch.device | None = None,
                 name: str = "refiner", face_fraction: float | None = None,
                 window_margin: int | None | Literal["contract"] = "contract") -> None:
        """window_margin: crop px of context around a region prior's support when the net runs on a window of the
        crop only (prior_window); "contract": the net's contract's extra["window_margin"], else WINDOW_MARGIN; None
        runs it on the whole crop (the reference the window is checked against)."""
        device = device or torch.device("cpu")
        if net is None:
            from reenact.weights import load_model

            net = load_model(name, device)  # type: ignore[assignment]
        assert net is not None
        contract = getattr(net, "contract", None)
        extra = contract.extra if contract is not None else {}
        # channels_last: oneDNN's faster convolution layout on CPU (~20% here), harmless on CUDA.
        self.net = net.to(device).eval().to(memory_format=torch.channels_last)
        self.device = device
        self.size = int(net.size)
        self.face_fraction = float(face_fraction or extra.get("face_fraction", FACE_FRACTION))
        self.mask = feather(self.size, max(self.size // 16, 2)).to(device)  # (1, 1, S, S)
        self.prior = prior_bits(extra.get("prior", ""))  # region bits the refiner may repaint; 0 = anywhere
        self.window_margin = int(extra.get("window_margin", WINDOW_MARGIN)) if window_margin == "contract" else window_margin

    @torch.inference_mode()
    def refine(self, warped_roi: torch.Tensor, target_points: np.ndarray | torch.Tensor, shapes: np.ndarray | torch.Tensor,
               return_attention: bool = False, source_roi: torch.Tensor | None = None
               ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """warped_roi (B, 3, H, W) float 0..255 (after mouth paint), target_points (B, 478, 2|3) in ROI px, shapes
        (B, 52) target ARKit -> (B, 3, H, W) float 0..255 [, (B, 1, H, W) attention in the ROI, 1 = warp kept].

        source_roi (1|B, 3, H, W) 0..255: the same ROI of the unwarped photo, for a net that also looks at the
        person's own appearance (contract kwargs use_source); ignored otherwise."""
        if warped_roi.ndim != 4 or warped_roi.shape[1] != 3:
            raise InputError(f"The refiner needs (B, 3, H, W) warped frames, got {tuple(warped_roi.shape)}.")
        roi = warped_roi.to(self.device, torch.float32)
        params = torch.as_tensor(np.asarray(shapes, np.float32) if not isinstance(shapes, torch.Tensor) else shapes,
                                 dtype=torch.float32, device=self.device)
        if params.shape != (roi.shape[0], self.net.n_params):
            raise InputError(f"The refiner needs ({roi.shape[0]}, {self.net.n_params}) target shapes, got {tuple(params.shape)}.")
        m = crop_matrices(target_points, self.size, self.face_fraction).to(self.device)  # (B, 2, 3) ROI px -> crop px
        y0, y1, x0, x1 = 0, self.size, 0, self.size  # the window of the crop the net runs on
        if self.prior:
            crop_pts = to_crop_points(target_points, m)  # (B, 478, 2)
            bits = torch.from_numpy(np.stack([region_masks(p, self.size, self.prior) for p in crop_pts])[:, None])
            if self.window_margin is not None:  # (1 - A) is thrown away outside the prior: skip computing it there
                window = prior_window((bits & self.prior) > 0, self.window_margin + sum(prior_reach()),
                                      2 ** len(self.net.down))
                if window is None:  # no prior region in any crop: nothing to repaint
                    return (roi.clone(), torch.ones_like(roi[:, :1])) if return_attention else roi.clone()
                y0, y1, x0, x1 = window
            # exact on the window: its margin holds every region pixel the soft prior inside it depends on
            prior = region_prior(bits[..., y0:y1, x0:x1].to(self.device), self.prior)  # (B, 1, h, w), 0 = keep the warp
        mw = shift(m, x0, y0)  # (B, 2, 3) ROI px -> window px
        to_net = lambda x: (to_crop(x, mw, (y1 - y0, x1 - x0)) / 127.5 - 1).contiguous(memory_format=torch.channels_last)
        crop = to_net(roi)  # (B, 3, h, w) in [-1, 1]
        source = None
        if self.net.use_source:
            if source_roi is None or source_roi.shape[-2:] != roi.shape[-2:]:
                raise InputError("This refiner also needs the unwarped photo's ROI (source_roi), the size of the warped one.")
            source = to_net(source_roi.to(self.device, torch.float32).expand(roi.shape[0], -1, -1, -1))
        color, attn = self.net(crop, params.clamp(0, 1), source)  # (B, 3, h, w), (B, 1, h, w)
        if self.prior:
            attn = 1 - prior * (1 - attn)  # apply_prior, with the prior computed on the window only
        weight = (1 - attn) * self.mask[..., y0:y1, x0:x1]  # (B, 1, h, w): how much generated colour, 0 at the crop border
        # Map back only inside the box the window covers in the ROI (the rest stays the warp): saves most of the cost.
        bx0, by0, bx1, by1 = window_box(m, (y0, y1, x0, x1), roi.shape[-2], roi.shape[-1])
        out, keep = roi.clone(), torch.ones_like(roi[:, :1])
        if bx1 > bx0 and by1 > by0:
            boxed = mw.clone()
            boxed[:, :, 2] += mw[:, :, :2] @ torch.tensor([float(bx0), float(by0)], device=m.device)  # box px -> window px
            # The correction, not the colour, goes back: in the crop A x + (1 - A) C = x + (1 - A)(C - x), but pasting C
            # itself would replace the ROI's detail with the 128 px crop upsampled (a 300 px face at a third of its
            # resolution: blurred skin wherever A < 1). Adding the upsampled correction keeps the warp's detail.
            delta = weight * (color - crop) * 127.5  # (B, 3, h, w) in 0..255 units, 0 where A = 1
            back = from_crop(torch.cat([delta, weight], 1), boxed, (by1 - by0, bx1 - bx0))  # 0 outside the window
            box = roi[:, :, by0:by1, bx0:bx1]
            # exactly box where the weight is 0 (outside the crop, its feathered border, or A = 1)
            out[:, :, by0:by1, bx0:bx1] = (box + back[:, :3]).clamp(0, 255)
            if return_attention:
                keep[:, :, by0:by1, bx0:bx1] = 1 - back[:, 3:]
        return (out, keep) if return_attention else out
