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
