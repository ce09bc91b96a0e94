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
