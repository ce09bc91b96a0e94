"""dlib's face-recognition ResNet (`dlib_face_recognition_resnet_model_v1`) in PyTorch.

dlib's network (dnn_face_recognition_ex.cpp) is a 29-conv ResNet on a 150x150 RGB "face chip":

    con 7x7/2 (32) -> affine -> relu -> max_pool 3x3/2
    3 x res(32) | res_down(64) + 3 x res(64) | res_down(128) + 2 x res(128)
    | res_down(256) + 2 x res(256) | res_down(256) -> global average -> fc 128 (no bias)

Every `affine` layer is a batch-norm that dlib froze after training (y = gamma * x + beta). It always directly
follows a convolution, so tools/convert_dlib.py folds it into that convolution's weight and bias; here each
conv therefore carries a bias and there is no normalisation layer.

dlib quirks reproduced exactly (they matter for parity):
- a conv with stride 2 has no padding (dlib's default padding is `stride != 1 ? 0 : k // 2`), and so do the pools;
- the down-sampling shortcut is a 2x2/2 average pool of the block input; when the block output is smaller
  (8 -> 3 vs 4 and 4 -> 1 vs 2) or has more channels, dlib's `add_prev` zero-pads both to the larger shape
  (bottom/right and trailing channels) before adding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reenact.registry import register_model

# dlib's `input_rgb_image_sized<150>` subtracts these per-channel means and divides by 256.
DLIB_MEAN_RGB = (122.782, 117.001, 104.298)


def _pad_to(x: torch.Tensor, channels: int, height: int, width: int) -> torch.Tensor:
    """Zero-pad (B, C, H, W) at the end of C, H and W (dlib's add_prev semantics)."""
    _, c, h, w = x.shape
    if (c, h, w) == (channels, height, width):
        return x
    return F.pad(x, (0, width - w, 0, height - h, 0, channels - c))


class ResBlock(nn.Module):
    """conv3x3(stride) -> relu -> conv3x3 -> + shortcut -> relu, with the affines folded into the convs."""

    def __init__(self, in_ch: int, out_ch: int, down: bool) -> None:
        super().__init__()
        self.down = down
        stride = 2 if down else 1
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=0 if down else 1)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, Cin, H, W)
        out = self.conv2(F.relu(self.conv1(x)))
        short = F.avg_pool2d(x, 2, 2) if self.down else x
        c = max(out.shape[1], short.shape[1])
        h = max(out.shape[2], short.shape[2])
        w = max(out.shape[3], short.shape[3])
        return F.relu(_pad_to(out, c, h, w) + _pad_to(short, c, h, w))


@register_model("dlib_face")
class DlibFaceNet(nn.Module):
    """150x150 RGB chip -> 128-d descriptor (not normalised; reenact.identity compares unit-norm descriptors).

    `forward` takes chips as float in [0, 255], (B, 3, 150, 150) RGB, and applies dlib's input normalisation.
    """

    def __init__(
        self,
        *,
        stem: int = 32,
        widths: tuple[int, ...] | list[int] = (32, 64, 128, 256, 256),
        depths: tuple[int, ...] | list[int] = (3, 4, 3, 3, 1),
        dim: int = 128,
        input_size: int = 150,
    ) -> None:
        super().__init__()
        if len(widths) != len(depths):
            raise ValueError("widths and depths must have the same length")
        self.input_size = input_size
        self.stem = nn.Conv2d(3, stem, 7, stride=2, padding=0)
        blocks: list[nn.Module] = []
        ch = stem
        for i, (width, depth) in enumerate(zip(widths, depths)):
            for j in range(depth):
                # dlib's first level (alevel4) keeps the stem width and has no down-sampling block.
                down = j == 0 and i > 0
                blocks.append(ResBlock(ch, width, down))
                ch = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(ch, dim, bias=False)
        self.register_buffer("mean", torch.tensor(DLIB_MEAN_RGB).view(1, 3, 1, 1), persistent=False)

    def forward(self, chips: torch.Tensor) -> torch.Tensor:  # (B, 3, 150, 150) in [0, 255] -> (B, 128)
        x = (chips - self.mean) / 256.0
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)  # (B, 32, 35, 35)
        x = self.blocks(x)  # (B, 256, 2, 2)
        return self.fc(x.mean(dim=(2, 3)))


# --- MobileFaceNet (sirius-ai MobileFaceNet_TF, ArcFace loss) -------------------------------------------------
# (expansion width, output width, stride of the first block, blocks) per stage, as in MobileFaceNet_TF's
# `inverted_residual_setting` with its width choices (expansion 2 / 4 of a 64 / 128 bottleneck).
MOBILEFACENET_STAGES = ((128, 64, 2, 5), (256, 128, 2, 1), (256, 128, 1, 6), (512, 128, 2, 1), (256, 128, 1, 2))


class SameConv(nn.Conv2d):
    """3x3 convolution (dense or depthwise) with TensorFlow SAME padding, without a padded copy of the input.

    At stride 1 SAME is the symmetric padding of 1. At stride 2 on an even size TensorFlow pads only the bottom/right,
    so output i reads input rows 2i..2i+2; a 4x4 kernel whose first row and column are zero, with symmetric padding
    1, reads rows 2i-1..2i+2 with a zero weight on 2i-1: the same sums, and no F.pad of a large activation (which
    cost as much as the convolution itself here).
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, groups: int = 1) -> None:
        super().__init__(in_ch, out_ch, 3, stride=stride, padding=1, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride[0] == 1:
            return super().forward(x)
        return F.conv2d(x, F.pad(self.weight, (1, 0, 1, 0)), self.bias, self.stride, 1, 1, self.groups)


class InvertedResidual(nn.Module):
    """1x1 expand -> PReLU -> 3x3 depthwise (stride) -> PReLU -> 1x1 project (linear), + input when shapes match."""

    def __init__(self, in_ch: int, expand: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.residual = stride == 1 and in_ch == out_ch
        self.expand = nn.Conv2d(in_ch, expand, 1)
        self.act1 = nn.PReLU(expand)
        self.depthwise = SameConv(expand, expand, stride, groups=expand)
        self.act2 = nn.PReLU(expand)
        self.project = nn.Conv2d(expand, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.act2(self.depthwise(self.act1(self.expand(x)))))
        return out + x if self.residual else out


@register_model("mobilefacenet")
class MobileFaceNet(nn.Module):
    """112x112 RGB face chip -> 192-d embedding (not normalised), sirius-ai's MobileFaceNet_TF as frozen to TFLite.

    Every batch-norm was folded into its convolution by the TFLite export, so each conv carries a bias. `forward`
    takes chips as float in [0, 255], (B, 3, 112, 112) RGB, and applies the model's (x - 127.5) / 128.
    The registered order of the Conv2d / PReLU layers is the TFLite graph's order (tools/convert_mobilefacenet.py
    relies on it): stem, stem PReLU, depthwise, PReLU, pointwise, blocks, head conv, PReLU, 7x7 depthwise, two 1x1.
    """

    def __init__(
        self,
        *,
        stem: int = 64,
        stages: list[list[int]] | tuple[tuple[int, ...], ...] = MOBILEFACENET_STAGES,
        head: int = 512,
        dim: int = 192,
        input_size: int = 112,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.stem = SameConv(3, stem, 2)
        self.stem_act = nn.PReLU(stem)
        self.stem_dw = SameConv(stem, stem, 1, groups=stem)
        self.stem_dw_act = nn.PReLU(stem)
        self.stem_pw = nn.Conv2d(stem, stem, 1)
        blocks: list[nn.Module] = []
        ch = stem
        for expand, out_ch, stride, repeat in stages:
            for j in range(repeat):
                blocks.append(InvertedResidual(ch, expand, out_ch, stride if j == 0 else 1))
                ch = out_ch
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Conv2d(ch, head, 1)
        self.head_act = nn.PReLU(head)
        side = input_size // 16
        # Global depthwise conv (the "GDConv" of MobileFaceNet) over the whole 7x7 map: a learned spatial pooling.
        self.gdconv = nn.Conv2d(head, head, side, groups=head)
        self.linear = nn.Conv2d(head, head, 1)
        self.embedding = nn.Conv2d(head, dim, 1)

    def forward(self, chips: torch.Tensor) -> torch.Tensor:  # (B, 3, 112, 112) in [0, 255] -> (B, 192)
        x = (chips - 127.5) / 128.0
        x = self.stem_pw(self.stem_dw_act(self.stem_dw(self.stem_act(self.stem(x)))))
        x = self.head_act(self.head(self.blocks(x)))  # (B, 512, 7, 7)
        return self.embedding(self.linear(self.gdconv(x))).flatten(1)
