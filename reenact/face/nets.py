"""PyTorch ports of MediaPipe's face networks: BlazeFace (short and full range), FaceMesh (468 points), the iris model.

Weights come from the original .tflite files via tools/convert_mediapipe.py; the layer order of every module here
matches the TFLite graph's dataflow order (backbone first, then each head branch in full), which is what the
converter relies on (it also checks every shape).

TFLite 'SAME' padding differs from PyTorch's symmetric padding on stride-2 layers: TF pads
total = max((out - 1) * stride + k - in, 0) with the extra pixel at the END (bottom/right). `SameConv` does that.
All modules take NCHW float tensors; input range is stated per network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reenact.registry import register_model


class SameConv(nn.Conv2d):
    """Conv2d with TensorFlow's 'SAME' (or 'VALID') padding, including its asymmetric stride-2 case."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, same: bool = True) -> None:
        symmetric = same and stride == 1 and k % 2 == 1  # stride 1, odd k: TF SAME == symmetric k // 2
        super().__init__(cin, cout, k, stride, padding=k // 2 if symmetric else 0, groups=groups)
        self.tf_pad = same and not symmetric

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tf_pad:
            pads = []
            for size, k, s in ((x.shape[-1], self.kernel_size[1], self.stride[1]), (x.shape[-2], self.kernel_size[0], self.stride[0])):
                total = max((-(-size // s) - 1) * s + k - size, 0)
                pads += [total // 2, total - total // 2]
            x = F.pad(x, pads)  # (left, right, top, bottom): the odd pixel goes right/bottom like TF
        return super().forward(x)


class PReLU(nn.PReLU):
    """Per-channel PReLU as relu(x) + a * min(x, 0): same parameter, several times faster on CPU than aten's kernel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(F.relu(x), self.weight.view(1, -1, 1, 1), x.clamp(max=0))


def _act(kind: str, channels: int) -> nn.Module:
    return PReLU(channels) if kind == "prelu" else nn.ReLU(inplace=True)


def _skip(x: torch.Tensor, stride: int, cout: int) -> torch.Tensor:
    """Residual path: 2x2 max-pool on stride 2, zero channels appended when the block widens."""
    if stride == 2:
        x = F.max_pool2d(x, 2, 2)
    if cout > x.shape[1]:
        x = F.pad(x, (0, 0, 0, 0, 0, cout - x.shape[1]))
    return x


class BlazeBlock(nn.Module):
    """depthwise 3x3 (stride) -> pointwise 1x1, plus the residual path, then ReLU/PReLU (BlazeFace, FaceMesh)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, act: str = "relu") -> None:
        super().__init__()
        self.stride, self.cout = stride, cout
        self.dw = SameConv(cin, cin, 3, stride, groups=cin)
        self.pw = nn.Conv2d(cin, cout, 1)
        self.act = _act(act, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.pw(self.dw(x)) + _skip(x, self.stride, self.cout))


class BottleneckBlock(nn.Module):
    """1x1 (or 2x2 stride 2) squeeze -> PReLU -> depthwise 3x3 -> 1x1 expand, plus residual, PReLU (iris model)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        mid = cout // 2
        self.stride, self.cout = stride, cout
        self.squeeze = SameConv(cin, mid, stride, stride, same=False)  # 1x1, or 2x2 stride 2 'VALID'
        self.act1 = PReLU(mid)
        self.dw = SameConv(mid, mid, 3, 1, groups=mid)
        self.expand = nn.Conv2d(mid, cout, 1)
        self.act = PReLU(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(self.dw(self.act1(self.squeeze(x))))
        return self.act(y + _skip(x, self.stride, self.cout))


@register_model("blazeface")
class BlazeFace(nn.Module):
    """BlazeFace short-range detector. Input (B, 3, 128, 128) RGB in [-1, 1].

    Returns (regressors (B, 896, 16), logits (B, 896)): per anchor [dx, dy, w, h, 6 x (kx, ky)] in input pixels
    relative to the anchor (see reenact.face.detect for the decode) and the face-score logit.
    """

    def __init__(self, stem: int = 24, channels: tuple[int, ...] = (24, 28, 32, 36, 42, 48, 56, 64, 72, 80, 88, 96, 96, 96, 96, 96),
                 strides: tuple[int, ...] = (1, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1),
                 split: int = 11, anchors: tuple[int, int] = (2, 6)) -> None:
        super().__init__()
        self.stem = SameConv(3, stem, 5, 2)
        cins = (stem,) + tuple(channels[:-1])
        self.blocks = nn.ModuleList(BlazeBlock(i, o, s, "relu") for i, o, s in zip(cins, channels, strides))
        self.split = split  # blocks[:split] give the 16x16 feature map, the rest the 8x8 one
        c16, c8 = channels[split - 1], channels[-1]
        # Order = TFLite dataflow order: the 8x8 heads come first there.
        self.cls_8x8 = nn.Conv2d(c8, anchors[1], 1)
        self.reg_8x8 = nn.Conv2d(c8, anchors[1] * 16, 1)
        self.cls_16x16 = nn.Conv2d(c16, anchors[0], 1)
        self.reg_16x16 = nn.Conv2d(c16, anchors[0] * 16, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.relu(self.stem(x))
        for b in self.blocks[: self.split]:
            x = b(x)
        f16 = x  # (B, 88, 16, 16)
        for b in self.blocks[self.split:]:
            x = b(x)
        f8 = x  # (B, 96, 8, 8)
        n = x.shape[0]

        def flat(t: torch.Tensor, k: int) -> torch.Tensor:  # NCHW -> (B, H*W*anchors, k) in TF's NHWC order
            return t.permute(0, 2, 3, 1).reshape(n, -1, k)

        reg = torch.cat([flat(self.reg_16x16(f16), 16), flat(self.reg_8x8(f8), 16)], 1)
        cls = torch.cat([flat(self.cls_16x16(f16), 1), flat(self.cls_8x8(f8), 1)], 1)
        return reg, cls[..., 0]


class FullBlock(nn.Module):
    """Full-range BlazeFace block: dw 3x3 (stride) -> 1x1 squeeze + ReLU -> dw 3x3 -> 1x1 expand, then ReLU.

    The residual is added (before the ReLU) only when the block keeps the shape; a downsampling block has none.
    Every 3x3 has TF's explicit 1-pixel zero pad, so plain symmetric padding matches even at stride 2.
    """

    def __init__(self, cin: int, mid: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.residual = stride == 1 and cin == cout
        self.dw1 = nn.Conv2d(cin, cin, 3, stride, 1, groups=cin)
        self.squeeze = nn.Conv2d(cin, mid, 1)
        self.dw2 = nn.Conv2d(mid, mid, 3, 1, 1, groups=mid)
        self.expand = nn.Conv2d(mid, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(self.dw2(F.relu(self.squeeze(self.dw1(x)))))
        return F.relu(y + x if self.residual else y)


class _Level(nn.Module):
    """Blocks at one resolution (the first may downsample), then an optional 1x1 + ReLU to `out` channels."""

    def __init__(self, cin: int, cout: int, mid: int, depth: int, stride: int, out: int = 0) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[FullBlock(cin if i == 0 else cout, mid, cout, stride if i == 0 else 1) for i in range(depth)])
        self.out = nn.Conv2d(cout, out, 1) if out else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = self.blocks(x)
        return x, (F.relu(self.out(x)) if self.out is not None else None)


class _SpaceHead(nn.Module):
    """1x1 to 4*k channels, dw 3x3 stride 2, then TF DEPTH_TO_SPACE(2): k values per cell of the input grid."""

    def __init__(self, cin: int, k: int) -> None:
        super().__init__()
        self.k = k
        self.proj = nn.Conv2d(cin, 4 * k, 1)
        self.dw = nn.Conv2d(4 * k, 4 * k, 3, 2, 1, groups=4 * k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dw(self.proj(x))  # (B, 4k, H/2, W/2)
        n, _, h, w = y.shape
        # TF's depth_to_space channel = (dy * 2 + dx) * k + c (not pixel_shuffle's c * 4 + dy * 2 + dx); rows then
        # columns then c, like the NHWC reshape to (B, H*W, k)
        return y.view(n, 2, 2, self.k, h, w).permute(0, 4, 1, 5, 2, 3).reshape(n, 4 * h * w, self.k)


@register_model("blazeface_full")
class BlazeFaceFull(nn.Module):
    """BlazeFace full-range detector (MediaPipe's sparse model). Input (B, 3, 192, 192) RGB in [-1, 1].

    Backbone of 5 levels (96, 48, 24, 12, 6 px), a top-down FPN with bilinear 2x upsampling back to 48x48, one anchor
    per cell. Returns (regressors (B, 2304, 16), logits (B, 2304)) like BlazeFace, in px of the 192 input.
    """

    def __init__(self, stem: int = 32, widths: tuple[int, ...] = (32, 64, 128, 192, 384), mids: tuple[int, ...] = (8, 16, 32, 48, 96),
                 depths: tuple[int, ...] = (2, 3, 3, 3, 4), lateral: tuple[int, ...] = (48, 64, 96, 96),
                 fpn_mids: tuple[int, ...] = (24, 32, 48), fpn_depths: tuple[int, ...] = (1, 2, 2), coords: int = 16) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, stem, 3, 2, 1)
        cins = (stem,) + tuple(widths[:-1])
        # Levels in TFLite dataflow order: each backbone level's lateral 1x1 right after its blocks.
        self.down = nn.ModuleList(_Level(cins[i], widths[i], mids[i], depths[i], 1 if i == 0 else 2, lateral[i - 1] if i else 0)
                                  for i in range(len(widths)))
        # Top-down levels from the coarsest: each adds the upsampled coarser map to its lateral, refines, projects.
        self.up = nn.ModuleList(_Level(lateral[i], lateral[i], fpn_mids[i], fpn_depths[i], 1, lateral[i - 1] if i else 0)
                                for i in reversed(range(len(fpn_mids))))
        self.cls = _SpaceHead(lateral[0], 1)
        self.reg = _SpaceHead(lateral[0], coords)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.relu(self.stem(x))  # (B, 32, 96, 96)
        laterals = []
        for level in self.down:
            x, lat = level(x)
            if lat is not None:
                laterals.append(lat)  # (B, 48, 48, 48), (B, 64, 24, 24), (B, 96, 12, 12), (B, 96, 6, 6)
        top = laterals.pop()
        for level in self.up:
            x = laterals.pop() + F.interpolate(top, scale_factor=2, mode="bilinear", align_corners=False)  # TF half-pixel
            x, top = level(x)
        return self.reg(x), self.cls(x)[..., 0]  # x: (B, 48, 48, 48)


class _Head(nn.Module):
    """Branch head: blocks at 128 channels (first one stride 2), squeeze to `mid`, one block, final VALID conv."""

    def __init__(self, cin: int, n_blocks: int, mid: int, out: int, k: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[BlazeBlock(cin, cin, 2 if i == 0 else 1, "prelu") for i in range(n_blocks)])
        self.squeeze = nn.Conv2d(cin, mid, 1)
        self.act = PReLU(mid)
        self.block = BlazeBlock(mid, mid, 1, "prelu")
        self.out = nn.Conv2d(mid, out, k, stride=k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.block(self.act(self.squeeze(self.blocks(x))))).flatten(1)


@register_model("facemesh")
class FaceMesh(nn.Module):
    """FaceMesh landmark net. Input (B, 3, 192, 192) RGB in [0, 1].

    Returns (landmarks (B, 468, 3) in input pixels (z on the x scale), face-presence logit (B,)).
    """

    def __init__(self, stem: int = 16, channels: tuple[int, ...] = (16, 16, 32, 32, 32, 64, 64, 64, 128, 128, 128, 128, 128, 128),
                 strides: tuple[int, ...] = (1, 1, 2, 1, 1, 2, 1, 1, 2, 1, 1, 2, 1, 1),
                 num_landmarks: int = 468) -> None:
        super().__init__()
        self.num_landmarks = num_landmarks
        self.stem = SameConv(3, stem, 3, 2)
        self.stem_act = PReLU(stem)
        cins = (stem,) + tuple(channels[:-1])
        self.blocks = nn.Sequential(*[BlazeBlock(i, o, s, "prelu") for i, o, s in zip(cins, channels, strides)])
        c = channels[-1]
        self.landmarks = _Head(c, 3, 32, num_landmarks * 3, 3)
        self.presence = _Head(c, 1, 32, 1, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.blocks(self.stem_act(self.stem(x)))  # (B, 128, 6, 6)
        return self.landmarks(f).view(-1, self.num_landmarks, 3), self.presence(f)[:, 0]


class _IrisBranch(nn.Module):
    def __init__(self, c: int, out: int) -> None:
        super().__init__()
        strides = (1, 1, 2, 1, 1, 2, 1, 1)
        self.blocks = nn.Sequential(*[BottleneckBlock(c, c, s) for s in strides])
        self.out = nn.Conv2d(c, out, 2)  # 2x2 VALID on the 2x2 map

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.blocks(x)).flatten(1)


@register_model("iris")
class IrisNet(nn.Module):
    """Iris landmark net for a LEFT-looking eye crop (image-left eye; flip the other). Input (B, 3, 64, 64) RGB in [0, 1].

    Returns (eye contour + brow (B, 71, 3), iris (B, 5, 3): centre then 4 contour points), in input pixels.
    """

    def __init__(self, stem: int = 64, channels: tuple[int, ...] = (64, 64, 64, 64, 128, 128, 128, 128, 128, 128),
                 strides: tuple[int, ...] = (1, 1, 1, 1, 2, 1, 1, 1, 1, 2)) -> None:
        super().__init__()
        self.stem = SameConv(3, stem, 3, 2)
        self.stem_act = PReLU(stem)
        cins = (stem,) + tuple(channels[:-1])
        self.blocks = nn.Sequential(*[BottleneckBlock(i, o, s) for i, o, s in zip(cins, channels, strides)])
        self.contours = _IrisBranch(channels[-1], 71 * 3)
        self.iris = _IrisBranch(channels[-1], 5 * 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.blocks(self.stem_act(self.stem(x)))  # (B, 128, 8, 8)
        return self.contours(f).view(-1, 71, 3), self.iris(f).view(-1, 5, 3)


# --- FaceMesh with attention (MediaPipe's refine_landmarks=True model) -----------------------------------------
# The mesh vertices each region's crop is fitted to, in the order of that region's outputs (MediaPipe's
# LandmarksRefinementCalculator maps the region outputs onto exactly these vertices). The eyes are image-left
# (subject's right; 33 -> 133) then image-right (362 -> 263), as in reenact.face.landmarks.EYE_CONTOUR.
LIPS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269, 270, 409,
        78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 191, 80, 81, 82, 13, 312, 311, 310, 415,
        76, 77, 90, 180, 85, 16, 315, 404, 320, 307, 306, 184, 74, 73, 72, 11, 302, 303, 304, 408,
        62, 96, 89, 179, 86, 15, 316, 403, 319, 325, 292, 183, 42, 41, 38, 12, 268, 271, 272, 407)
LEFT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173,
            130, 25, 110, 24, 23, 22, 26, 112, 243, 247, 30, 29, 27, 28, 56, 190,
            226, 31, 228, 229, 230, 231, 232, 233, 244, 113, 225, 224, 223, 222, 221, 189,
            35, 124, 46, 53, 52, 65, 143, 111, 117, 118, 119, 120, 121, 128, 245, 156, 70, 63, 105, 66, 107, 55, 193)
RIGHT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398,
             359, 255, 339, 254, 253, 252, 256, 341, 463, 467, 260, 259, 257, 258, 286, 414,
             446, 261, 448, 449, 450, 451, 452, 453, 464, 342, 445, 444, 443, 442, 441, 413,
             265, 353, 276, 283, 282, 295, 372, 340, 346, 347, 348, 349, 350, 357, 465, 383, 300, 293, 334, 296, 336, 285, 417)
# (left, right) vertices whose line sets each crop's rotation (the custom op's left/right_rotation_idx)
REGION_AXES = {"lips": (61, 291), "left_eye": (33, 133), "right_eye": (362, 263)}
REGION_POINTS = {"lips": LIPS, "left_eye": LEFT_EYE, "right_eye": RIGHT_EYE}
EYE_LIDS = 16  # the first 16 eye points are the lid contours; the iris depth is their mean (MediaPipe's refinement)


def region_matrices(mesh: torch.Tensor, axis: tuple[int, int], subset: torch.Tensor, scale: float, out: int) -> torch.Tensor:
    """MediaPipe's Landmarks2TransformMatrix (v2) for a batch: (B, 2, 3) affine, attention-grid px -> mesh px.

    The crop is the box of the `subset` vertices in a frame rotated so that axis[0] -> axis[1] is horizontal, grown
    `scale` times; grid px u (0..out) maps to centre + R(angle) diag(scale * w / out, scale * h / out) (u - out / 2).
    `mesh` (B, 468, 2) is in the units of the feature map being sampled.
    """
    d = mesh[:, axis[1]] - mesh[:, axis[0]]
    angle = torch.atan2(d[:, 1], d[:, 0])  # (B,)
    c, s = torch.cos(angle), torch.sin(angle)
    rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)  # (B, 2, 2): rotation by +angle
    pts = mesh[:, subset] @ rot  # (B, N, 2): rows times rot = R(-angle) p, the upright frame
    lo, hi = pts.min(1).values, pts.max(1).values
    centre = (rot @ ((lo + hi) / 2).unsqueeze(-1)).squeeze(-1)  # back to the mesh frame
    lin = rot * (scale * (hi - lo) / out).unsqueeze(1)  # R diag(sx, sy): column j scaled
    return torch.cat([lin, (centre - lin.sum(-1) * out / 2).unsqueeze(-1)], -1)


def transform_bilinear(x: torch.Tensor, mat: torch.Tensor, out: int) -> torch.Tensor:
    """MediaPipe's TransformTensorBilinear (v2): sample x (B, C, H, W) on the out x out grid mapped by mat (B, 2, 3).

    Pixel centres: grid px u samples mat @ (u + 0.5) - 0.5 of the input. A sample whose position lies outside
    [0, W - 1] x [0, H - 1] is zero as a whole (the op does not blend with a zero border), hence the mask.
    """
    h, w = x.shape[-2:]
    u = torch.arange(out, device=x.device, dtype=x.dtype) + 0.5
    gy, gx = torch.meshgrid(u, u, indexing="ij")
    grid = torch.stack([gx, gy, torch.ones_like(gx)], -1).view(1, out * out, 3)  # (1, out*out, 3)
    tc = grid @ mat.transpose(1, 2) - 0.5  # (B, out*out, 2) input px
    inside = ((tc >= 0) & (tc <= torch.tensor([w - 1, h - 1], device=x.device, dtype=x.dtype))).all(-1)
    norm = tc * torch.tensor([2 / (w - 1), 2 / (h - 1)], device=x.device, dtype=x.dtype) - 1  # align_corners=True
    y = F.grid_sample(x, norm.view(-1, out, out, 2), mode="bilinear", padding_mode="zeros", align_corners=True)
    return y * inside.view(-1, 1, out, out).to(y.dtype)


class _RegionHead(nn.Module):
    """One output of a region: 128-channel blocks (the third halves the 4x4 map), squeeze to `mid`, one block, 2x2 conv."""

    def __init__(self, c: int, mid: int, points: int, strides: tuple[int, ...]) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[BlazeBlock(c, c, s, "prelu") for s in strides])
        self.squeeze = nn.Conv2d(c, mid, 1)
        self.act = PReLU(mid)
        self.block = BlazeBlock(mid, mid, 1, "prelu")
        self.out = nn.Conv2d(mid, points * 2, 2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.out(self.block(self.act(self.squeeze(self.blocks(x)))))  # (B, 2N, 1, 1)
        return y.view(y.shape[0], -1, 2)  # (B, N, 2) px of the region's virtual 4x crop


class _Region(nn.Module):
    """Attention branch: blocks on the region's 16x16 resampled features (32 -> 128 channels, down to 4x4), then heads."""

    def __init__(self, channels: tuple[int, ...], strides: tuple[int, ...], head_strides: tuple[int, ...], mid: int,
                 outputs: tuple[int, ...]) -> None:
        super().__init__()
        cins = (channels[0],) + tuple(channels[:-1])
        self.blocks = nn.Sequential(*[BlazeBlock(i, o, s, "prelu") for i, o, s in zip(cins, channels, strides)])
        self.heads = nn.ModuleList(_RegionHead(channels[-1], mid, n, head_strides) for n in outputs)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f = self.blocks(x)  # (B, 128, 4, 4)
        return [h(f) for h in self.heads]


@register_model("facemesh_attention")
class FaceMeshAttention(nn.Module):
    """FaceMesh with attention (MediaPipe's face_landmark_with_attention): the 468-point mesh plus refined lips, eyes
    and irises. Input (B, 3, 192, 192) RGB in [0, 1].

    The mesh head sees the whole face; each region (lips, image-left eye, image-right eye) then resamples the 48x48
    feature map of the backbone's second level on a 16x16 grid fitted (rotated box, 1.5x) to the mesh's vertices of
    that region, and regresses its points from that crop (MediaPipe's custom ops Landmarks2TransformMatrix,
    TransformTensorBilinear and TransformLandmarks, here `region_matrices` / `transform_bilinear` / a matrix product).

    Returns, all in input px (z on the x scale): mesh (B, 468, 3), lips (B, 80, 3), left eye (B, 71, 3), right eye
    (B, 71, 3), left iris (B, 5, 3), right iris (B, 5, 3) and the face-presence logit (B,). "Left" is the image-left
    eye (the subject's right), as in MediaPipe. The regions regress x, y only: their z is the mesh's at the same
    vertices (LIPS / LEFT_EYE / RIGHT_EYE) and an iris's z the mean of its eye's lid points, as MediaPipe's
    refinement sets them.
    """

    # long: one keyword per field of the contract's config (weights/facemesh_attention.json), as every registered net
    def __init__(self, stem: int = 16,
                 channels: tuple[int, ...] = (16, 16, 32, 32, 32, 64, 64, 64, 128, 128, 128, 128, 128, 128, 128, 128, 128),
                 strides: tuple[int, ...] = (1, 1, 2, 1, 1, 2, 1, 1, 2, 1, 1, 2, 1, 1, 2, 1, 1),
                 attention_block: int = 3, mid: int = 32,
                 region_channels: tuple[int, ...] = (32, 32, 64, 64, 64, 128),
                 region_strides: tuple[int, ...] = (1, 1, 2, 1, 1, 2),
                 head_strides: tuple[int, ...] = (1, 1, 2, 1, 1),
                 grid: int = 16, crop_scale: float = 1.5, num_landmarks: int = 468) -> None:
        super().__init__()
        self.num_landmarks, self.grid, self.crop_scale = num_landmarks, grid, crop_scale
        self.attention_block = attention_block  # regions sample the output of blocks[:attention_block] (48x48x32)
        self.stem = SameConv(3, stem, 3, 2)
        self.stem_act = PReLU(stem)
        cins = (stem,) + tuple(channels[:-1])
        self.blocks = nn.Sequential(*[BlazeBlock(i, o, s, "prelu") for i, o, s in zip(cins, channels, strides)])
        c = channels[-1]
        # Layer order = the TFLite graph's dataflow order: mesh head, lips, left eye (+ iris), right eye (+ iris), flag.
        self.squeeze = nn.Conv2d(c, mid, 1)
        self.squeeze_act = PReLU(mid)
        self.block = BlazeBlock(mid, mid, 1, "prelu")
        self.mesh = nn.Conv2d(mid, num_landmarks * 3, 3, stride=3)
        region = (region_channels, region_strides, head_strides, mid)
        self.lips = _Region(*region, (len(LIPS),))
        self.left_eye = _Region(*region, (len(LEFT_EYE), 5))
        self.right_eye = _Region(*region, (len(RIGHT_EYE), 5))
        self.flag = nn.Conv2d(mid, 1, 3, stride=3)
        for name, points in REGION_POINTS.items():
            self.register_buffer(f"{name}_idx", torch.tensor(points), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        f = self.stem_act(self.stem(x))
        f48 = self.blocks[: self.attention_block](f)  # (B, 32, 48, 48)
        head = self.block(self.squeeze_act(self.squeeze(self.blocks[self.attention_block:](f48))))  # (B, 32, 3, 3)
        mesh = self.mesh(head).view(-1, self.num_landmarks, 3)  # (B, 468, 3) input px
        k = x.shape[-1] / f48.shape[-1]  # input px per feature px (4)
        out = []
        for name in REGION_POINTS:
            # Crop geometry in float32 even under fp16 autocast: a half-precision angle or box would shift the crop.
            with torch.autocast(x.device.type, enabled=False):
                idx = getattr(self, f"{name}_idx")
                mat = region_matrices(mesh[..., :2].float() / k, REGION_AXES[name], idx, self.crop_scale, self.grid)
                crop = transform_bilinear(f48.float(), mat, self.grid).to(f48.dtype)  # (B, 32, 16, 16)
            for pts in getattr(self, name)(crop):
                with torch.autocast(x.device.type, enabled=False):
                    # The heads regress px of a k times larger crop: back to grid px, through the matrix, to input px.
                    out.append(k * ((pts.float() / k) @ mat[:, :, :2].transpose(1, 2) + mat[:, None, :, 2]))  # (B, N, 2)
        lips, left_eye, left_iris, right_eye, right_iris = out
        mesh = mesh.float()
        z = mesh[..., 2]

        def with_z(xy: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:  # (B, N, 2), (B, N) -> (B, N, 3)
            return torch.cat([xy, depth.unsqueeze(-1)], -1)

        lids = (self.left_eye_idx[:EYE_LIDS], self.right_eye_idx[:EYE_LIDS])
        iris_z = [z[:, idx].mean(1, keepdim=True).expand(-1, 5) for idx in lids]
        return (mesh,
                with_z(lips, z[:, self.lips_idx]),
                with_z(left_eye, z[:, self.left_eye_idx]),
                with_z(right_eye, z[:, self.right_eye_idx]),
                with_z(left_iris, iris_z[0]),
                with_z(right_iris, iris_z[1]),
                self.flag(head)[:, 0, 0, 0].float())
