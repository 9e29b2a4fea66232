"""A small convolutional network for one image column, in PyTorch (the ``deep`` extra; importing this module
imports torch, so callers import it lazily).

Three stages of 3x3 convolutions (batch norm, ReLU), each but the last followed by 2x2 max pooling, then
global average pooling: a ``4 * width``-number embedding of the picture. When the table has other columns,
their scaled values join the embedding before the head (a hidden layer, then the outputs). ``width`` sizes
the network to the time budget (8, 16 or 32 channels in the first stage). ``augment`` shifts, turns and
scales a batch of pictures a little at random, the usual augmentation for pictures trained from scratch.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ImageNet", "augment", "warm"]


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ImageNet(nn.Module):
    """Pictures (n, c, h, w) and other columns (n, t) to outputs (n, k)."""

    def __init__(self, channels: int, n_tabular: int, outputs: int, *, width: int = 16, dropout: float = 0.2) -> None:
        super().__init__()
        w = int(width)
        self.trunk = nn.Sequential(
            _block(channels, w), nn.MaxPool2d(2),
            _block(w, 2 * w), _block(2 * w, 2 * w), nn.MaxPool2d(2),
            _block(2 * w, 4 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Linear(4 * w + n_tabular, 128), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                  nn.Linear(128, outputs))

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return self.trunk(images)

    def forward(self, images: torch.Tensor, tabular: torch.Tensor) -> torch.Tensor:
        z = self.embed(images)
        if tabular.shape[1]:
            z = torch.cat([z, tabular], dim=1)
        return self.head(z)


def augment(images: torch.Tensor, generator: torch.Generator, *, degrees: float = 10.0, shift: float = 0.1,
            scale: float = 0.1) -> torch.Tensor:
    """Each picture of the batch turned, shifted and scaled a little at random (one affine warp per batch,
    bilinear, edges filled with the border's value)."""
    n = images.shape[0]
    u = torch.rand(n, 4, generator=generator) * 2 - 1
    angle = u[:, 0] * math.radians(degrees)
    s = 1 + u[:, 1] * scale
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack([torch.stack([cos, -sin, u[:, 2] * shift * 2], dim=1),
                         torch.stack([sin, cos, u[:, 3] * shift * 2], dim=1)], dim=1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


@functools.cache
def warm() -> None:
    """Run one small training step once per process: torch sets up its convolutions on the first (seconds on
    a busy machine), which would otherwise be charged to the first fit's time limit."""
    net = ImageNet(1, 1, 2, width=4).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    images = torch.rand(2, 1, 8, 8).contiguous(memory_format=torch.channels_last)
    net(augment(images, torch.Generator().manual_seed(0)), torch.zeros(2, 1)).sum().backward()
