"""The course's CNN builders, written once: each lesson shows a design, then imports it from here.

- ``LeNet5``: LeCun et al. (1998), faithful (tanh, average-pool subsampling, C5 as a 5 x 5 convolution, F6 of 84).
- ``LeNet5Modern``: the same layout with ReLU, max-pooling and BatchNorm.
- ``BuildVggCnn``: the VGG-style Conv / BatchNorm / ReLU network of the CIFAR-10 training lesson.
- ``BuildResNet9``: the small residual network of the fast-training lesson (``Residual``, ``ScaleLogits``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


# ------------------------------------------------------------------------------------------------
# Building blocks
# ------------------------------------------------------------------------------------------------
def ConvBnRelu(numChnIn: int, numChnOut: int, kernelSize: int = 3, stride: int = 1) -> nn.Sequential:
    """``Conv2d`` ('same' padding for odd kernels) -> ``BatchNorm2d`` -> ``ReLU``.

    The convolution has no bias: the BatchNorm right after it subtracts the mean and adds its own shift.
    """
    return nn.Sequential(
        nn.Conv2d(numChnIn, numChnOut, kernelSize, stride=stride, padding=kernelSize // 2, bias=False),
        nn.BatchNorm2d(numChnOut), nn.ReLU(inplace=True))


class Residual(nn.Module):
    """``x + oBlock(x)``: the block learns a correction to the identity (He et al., 2015)."""

    def __init__(self, oBlock: nn.Module) -> None:
        super().__init__()
        self.oBlock = oBlock

    def forward(self, tX: torch.Tensor) -> torch.Tensor:
        return tX + self.oBlock(tX)


class ScaleLogits(nn.Module):
    """Multiply the logits by a constant: small logits at the start give a calmer first phase of training."""

    def __init__(self, valScale: float) -> None:
        super().__init__()
        self.valScale = valScale

    def forward(self, tX: torch.Tensor) -> torch.Tensor:
        return tX * self.valScale

    def extra_repr(self) -> str:
        return f'valScale={self.valScale}'


# ------------------------------------------------------------------------------------------------
# LeNet-5
# ------------------------------------------------------------------------------------------------
class LeNet5(nn.Module):
    """LeNet-5 as published (LeCun, Bottou, Bengio & Haffner, 1998), for 1 x 32 x 32 inputs.

    C1 (6 maps 5 x 5) -> S2 (2 x 2 average subsampling) -> C3 (16 maps 5 x 5) -> S4 -> C5 (120 maps, a 5 x 5
    convolution that sees the whole 5 x 5 input) -> F6 (84 units) -> output (10). tanh activations throughout.
    Two simplifications, stated: S2 / S4 use plain average pooling (the paper adds a trainable gain and bias per
    map), C3 connects to all 6 S2 maps (the paper uses a sparse table), and the output is a linear layer (the
    paper uses RBF units). 28 x 28 MNIST-style images are padded to 32 x 32 with ``inputPadding=2``.
    """

    def __init__(self, numClasses: int = 10, numChnIn: int = 1, inputPadding: int = 0) -> None:
        super().__init__()
        self.oFeatures = nn.Sequential(
            nn.ZeroPad2d(inputPadding) if inputPadding else nn.Identity(),
            nn.Conv2d(numChnIn, 6, 5), nn.Tanh(), nn.AvgPool2d(2),  #<! C1: 32 -> 28, S2: 28 -> 14
            nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),        #<! C3: 14 -> 10, S4: 10 -> 5
            nn.Conv2d(16, 120, 5), nn.Tanh(),                       #<! C5: 5 -> 1
        )
        self.oClassifier = nn.Sequential(nn.Flatten(), nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, numClasses))

    def forward(self, tX: torch.Tensor) -> torch.Tensor:
        return self.oClassifier(self.oFeatures(tX))


class LeNet5Modern(nn.Module):
    """LeNet-5's layout with today's defaults: ReLU, max-pooling and BatchNorm (same input size and widths)."""

    def __init__(self, numClasses: int = 10, numChnIn: int = 1, inputPadding: int = 0) -> None:
        super().__init__()
        self.oFeatures = nn.Sequential(
            nn.ZeroPad2d(inputPadding) if inputPadding else nn.Identity(),
            nn.Conv2d(numChnIn, 6, 5, bias=False), nn.BatchNorm2d(6), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(16, 120, 5, bias=False), nn.BatchNorm2d(120), nn.ReLU(inplace=True),
        )
        self.oClassifier = nn.Sequential(nn.Flatten(), nn.Linear(120, 84), nn.ReLU(inplace=True),
                                         nn.Linear(84, numClasses))

    def forward(self, tX: torch.Tensor) -> torch.Tensor:
        return self.oClassifier(self.oFeatures(tX))


# ------------------------------------------------------------------------------------------------
# CIFAR-10 networks of the course
# ------------------------------------------------------------------------------------------------
def BuildVggCnn(numClasses: int = 10, dropP: float = 0.2, lWidths: Sequence[int] = (32, 64, 128, 256),
                firstKernelSize: int = 3, numChnIn: int = 3) -> nn.Sequential:
    """The VGG-style network of the CIFAR-10 training lesson.

    Blocks of ``ConvBnRelu`` with ``MaxPool2d`` halving the size after each but the last (32 -> 16 -> 8 -> 4),
    ``Dropout2d`` before the last block, global max pooling, ``Dropout`` and a linear classifier.
    ``firstKernelSize=5`` gives larger first-layer filters (easier to look at, as in the visualization lesson).
    """
    if len(lWidths) < 2:
        raise ValueError(f'lWidths needs at least 2 widths (pooled blocks, then the last block), got {list(lWidths)}.')
    lLayers: list[nn.Module] = []
    numChnPrev = numChnIn
    for blockIdx, numChn in enumerate(lWidths):
        isLast = blockIdx == len(lWidths) - 1
        if isLast:
            lLayers.append(nn.Dropout2d(dropP / 2))  #<! Whole maps: neighbouring pixels of a map are correlated
        lLayers += list(ConvBnRelu(numChnPrev, numChn, firstKernelSize if blockIdx == 0 else 3))
        if not isLast:
            lLayers.append(nn.MaxPool2d(2))
        numChnPrev = numChn
    return nn.Sequential(*lLayers, nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Dropout(dropP),
                         nn.Linear(numChnPrev, numClasses))


def BuildResNet9(lWidths: Sequence[int] = (16, 32, 64, 128), numClasses: int = 10,
                 logitScale: float = 0.125) -> nn.Sequential:
    """A ResNet-9 for 32 x 32 images (after the DAWNBench entries of Page, 2018), at configurable width.

    ``(64, 128, 256, 512)`` is the full-width GPU network; the default is a quarter of it, for CPUs.
    """
    if len(lWidths) != 4:
        raise ValueError(f'lWidths needs 4 widths (stem, then 3 stages), got {list(lWidths)}.')
    w0, w1, w2, w3 = lWidths
    return nn.Sequential(
        ConvBnRelu(3, w0),                                                                     #<! 32 x 32
        ConvBnRelu(w0, w1), nn.MaxPool2d(2), Residual(nn.Sequential(ConvBnRelu(w1, w1), ConvBnRelu(w1, w1))),  #<! 16
        ConvBnRelu(w1, w2), nn.MaxPool2d(2),                                                   #<! 8 x 8
        ConvBnRelu(w2, w3), nn.MaxPool2d(2), Residual(nn.Sequential(ConvBnRelu(w3, w3), ConvBnRelu(w3, w3))),  #<! 4
        nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(w3, numClasses, bias=False), ScaleLogits(logitScale))


def CountParameters(oModel: nn.Module, onlyTrainable: bool = False) -> int:
    """The number of parameters (elements of every parameter tensor) of a model."""
    return sum(p.numel() for p in oModel.parameters() if p.requires_grad or not onlyTrainable)
