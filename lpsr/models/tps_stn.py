"""Thin-plate-spline spatial transformer (ASTER / TSRN / TBSRN front end), any input size.

``STNHead`` predicts 20 control points (10 along the top edge, 10 along the bottom, in
[0, 1] image coordinates) from the image; ``TPSWarp`` resamples the image so that those
source points land on fixed target points (margins 0.05).  The head is ASTER's localisation
net (six conv3x3-BN-ReLU stages, five max-pools, FC 512 -> 512 -> 40) initialised to the
identity layout.

Adaptation to any input size (the originals hard-code 16x64 LR): the localisation net
always sees the input resized bilinearly to 16x64, so its FC layer keeps the published
shape (2 x 256 inputs) whatever the plate size; the sampling grid is built for the actual
input height x width at run time (cached per size, never a buffer).

Written by hand: torchvision has no TPS, and kornia's (a dependency we do not otherwise
need) solves a linear system per batch where ASTER pre-inverts one fixed kernel.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LOCALISATION_SIZE = (16, 64)  # the TextZoom LR size the original STN head was built for


def _edge_points(count: int, margin: float) -> torch.Tensor:
    """``count`` points: half along the top edge, half along the bottom, as (x, y) in [0, 1]."""
    per_side = count // 2
    xs = torch.linspace(margin, 1.0 - margin, per_side)
    top = torch.stack([xs, torch.full_like(xs, margin)], 1)
    bottom = torch.stack([xs, torch.full_like(xs, 1.0 - margin)], 1)
    return torch.cat([top, bottom], 0)


def _radial(points: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """TPS radial basis U(r) = r^2 log r, i.e. 0.5 * d log d with d = r^2 (0 at r = 0)."""
    d = (points[:, None, :] - centres[None, :, :]).pow(2).sum(-1)
    return 0.5 * d * torch.log(d.clamp_min(1e-12))


class TPSWarp(nn.Module):
    def __init__(self, control_points: int = 20, margins: tuple[float, float] = (0.05, 0.05)) -> None:
        super().__init__()
        if margins[0] != margins[1]:
            raise ValueError("TPSWarp: only equal x/y margins are supported")
        target = _edge_points(control_points, margins[0])
        n = control_points
        kernel = torch.zeros(n + 3, n + 3)
        kernel[:n, :n] = _radial(target, target)
        kernel[:n, n] = 1
        kernel[n, :n] = 1
        kernel[:n, n + 1 :] = target
        kernel[n + 1 :, :n] = target.t()
        self.register_buffer("target", target, persistent=False)
        self.register_buffer("inverse_kernel", torch.linalg.inv(kernel), persistent=False)
        self._grids: dict[tuple, torch.Tensor] = {}

    def _grid_basis(self, height: int, width: int, device: torch.device) -> torch.Tensor:
        key = (height, width, str(device))
        if key not in self._grids:
            ys, xs = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
            pts = torch.stack([xs.reshape(-1), ys.reshape(-1)], 1)
            basis = torch.cat([_radial(pts, self.target.cpu()), torch.ones(len(pts), 1), pts], 1)
            self._grids[key] = basis.to(device)
        return self._grids[key]

    def forward(self, image: torch.Tensor, source_points: torch.Tensor) -> torch.Tensor:
        n, _, h, w = image.shape
        padded = torch.cat([source_points, source_points.new_zeros(n, 3, 2)], 1)
        mapping = self.inverse_kernel @ padded  # (N, K+3, 2)
        coords = self._grid_basis(h, w, image.device) @ mapping  # (N, H*W, 2) in [0, 1]
        grid = coords.view(n, h, w, 2).clamp(0, 1) * 2 - 1
        return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class STNHead(nn.Module):
    def __init__(self, in_channels: int = 3, control_points: int = 20, init_margin: float = 0.01) -> None:
        super().__init__()
        self.control_points = control_points
        pool = lambda k: nn.MaxPool2d(k, k)  # noqa: E731
        self.features = nn.Sequential(
            _conv_bn_relu(in_channels, 32), pool(2),  # 16x64 -> 8x32
            _conv_bn_relu(32, 64), pool(2),  # -> 4x16
            _conv_bn_relu(64, 128), pool(2),  # -> 2x8
            _conv_bn_relu(128, 256), pool(2),  # -> 1x4
            _conv_bn_relu(256, 256), pool((1, 2)),  # -> 1x2
            _conv_bn_relu(256, 256),
        )
        self.fc1 = nn.Sequential(nn.Linear(2 * 256, 512), nn.BatchNorm1d(512), nn.ReLU(inplace=True))
        self.fc2 = nn.Linear(512, control_points * 2)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, (2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)) ** 0.5)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.001)
                nn.init.zeros_(m.bias)
        # start from the identity layout: zero weights, bias = evenly spread edge points
        nn.init.zeros_(self.fc2.weight)
        with torch.no_grad():
            self.fc2.bias.copy_(_edge_points(control_points, init_margin).reshape(-1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(image, size=LOCALISATION_SIZE, mode="bilinear", align_corners=True)
        x = self.features(x).flatten(1)
        return self.fc2(0.1 * self.fc1(x)).view(-1, self.control_points, 2)


class TPSSTN(nn.Module):
    """Rectify an image with the predicted TPS warp (same size in and out)."""

    def __init__(self, in_channels: int = 3, control_points: int = 20) -> None:
        super().__init__()
        self.head = STNHead(in_channels, control_points)
        self.warp = TPSWarp(control_points)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.warp(image, self.head(image))
