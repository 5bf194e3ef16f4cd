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
    Three simplifications, stated: S2 / S4 use plain average pooling (the paper adds a trainable gain and bias per
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


# ------------------------------------------------------------------------------------------------
# Reference architectures (lesson 07): ResNet, Inception and MobileNet blocks, CIFAR-10 networks, FLOPs
# ------------------------------------------------------------------------------------------------
class _ZeroPadShortcut(nn.Module):
    """The paper's option A shortcut: subsample by ``stride`` and zero-pad the new channels (no parameters)."""

    def __init__(self, numChnIn: int, numChnOut: int, stride: int) -> None:
        super().__init__()
        self.numChnIn, self.numChnOut, self.stride = numChnIn, numChnOut, stride

    def forward(self, tX: torch.Tensor) -> torch.Tensor:
        tX = tX[:, :, ::self.stride, ::self.stride]
        return nn.functional.pad(tX, (0, 0, 0, 0, 0, self.numChnOut - self.numChnIn))


class BasicBlock(nn.Module):
    """ResNet basic block (He et al., 2015): 3x3 Conv-BN-ReLU, 3x3 Conv-BN, add the shortcut, ReLU.

    When the shape changes (``stride != 1`` or other widths) the shortcut is a projection, a 1x1 convolution with
    that stride and a BatchNorm (option B), or with ``projection=False`` a subsampled, zero-padded identity
    (option A, no parameters, the paper's CIFAR choice). ``residual=False`` drops the shortcut: the plain twin.
    """

    def __init__(self, numChnIn: int, numChnOut: int, stride: int = 1, residual: bool = True,
                 projection: bool = True) -> None:
        super().__init__()
        self.oConv1 = nn.Conv2d(numChnIn, numChnOut, 3, stride=stride, padding=1, bias=False)
        self.oBn1 = nn.BatchNorm2d(numChnOut)
        self.oConv2 = nn.Conv2d(numChnOut, numChnOut, 3, padding=1, bias=False)
        self.oBn2 = nn.BatchNorm2d(numChnOut)
        self.residual = residual
        self.oShortcut: nn.Module | None = None  #<! None: the identity
        if residual and (stride != 1 or numChnIn != numChnOut):
            self.oShortcut = (nn.Sequential(nn.Conv2d(numChnIn, numChnOut, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(numChnOut)) if projection
                              else _ZeroPadShortcut(numChnIn, numChnOut, stride))

    def forward(self, tX: torch.Tensor) -> torch.Tensor:
        tY = self.oBn2(self.oConv2(torch.relu(self.oBn1(self.oConv1(tX)))))
        if self.residual:
            tY = tY + (tX if self.oShortcut is None else self.oShortcut(tX))
        return torch.relu(tY)


class Bottleneck(nn.Module):
    """ResNet bottleneck block: 1x1 (reduce to ``numChnMid``), 3x3 (with the stride), 1x1 (expand to
    ``numChnMid * expansion``), each with BatchNorm; projection shortcut (1x1, stride) when the shape changes."""

    expansion = 4

    def __init__(self, numChnIn: int, numChnMid: int, stride: int = 1) -> None:
        super().__init__()
        numChnOut = numChnMid * self.expansion
        self.oBranch = nn.Sequential(
            ConvBnRelu(numChnIn, numChnMid, 1), ConvBnRelu(numChnMid, numChnMid, 3, stride=stride),
            nn.Conv2d(numChnMid, numChnOut, 1, bias=False), nn.BatchNorm2d(numChnOut))
        self.oShortcut: nn.Module = nn.Identity()
        if stride != 1 or numChnIn != numChnOut:
            self.oShortcut = nn.Sequential(nn.Conv2d(numChnIn, numChnOut, 1, stride=stride, bias=False),
                                           nn.BatchNorm2d(numChnOut))

    def forward(self, tX: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.oBranch(tX) + self.oShortcut(tX))


class CifarResNet(nn.Module):
    """The CIFAR-10 ResNet of He et al. (2015), section 4.2: depth ``6n + 2`` (20, 32, 44, 56, 110).

    3x3 stem (16 maps), three stages of ``n`` ``BasicBlock`` at widths ``lWidths`` (32x32, 16x16, 8x8), global
    average pooling, a linear classifier. ``residual=False`` gives the plain network with the same layers.
    ``projection=False`` uses the paper's zero-padded shortcuts (ResNet-20: 0.27 M parameters).
    """

    def __init__(self, depth: int = 20, numClasses: int = 10, residual: bool = True, projection: bool = True,
                 lWidths: Sequence[int] = (16, 32, 64)) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6 != 0:
            raise ValueError(f'depth must be 6n + 2 with n >= 1 (20, 32, 44, 56, 110), got {depth}.')
        if len(lWidths) != 3:
            raise ValueError(f'lWidths needs 3 widths (one per stage), got {list(lWidths)}.')
        numBlocks = (depth - 2) // 6
        self.oStem = ConvBnRelu(3, lWidths[0])
        lStages, numChnPrev = [], lWidths[0]
        for stageIdx, numChn in enumerate(lWidths):
            lBlocks = [BasicBlock(numChnPrev if ii == 0 else numChn, numChn,
                                  stride=2 if (ii == 0 and stageIdx > 0) else 1, residual=residual,
                                  projection=projection) for ii in range(numBlocks)]
            lStages.append(nn.Sequential(*lBlocks))
            numChnPrev = numChn
        self.oStages = nn.Sequential(*lStages)
        self.oHead = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(numChnPrev, numClasses))
        for oModule in self.modules():
            if isinstance(oModule, nn.Conv2d):
                nn.init.kaiming_normal_(oModule.weight, mode='fan_out', nonlinearity='relu')  #<! He init, as the paper

    def forward(self, tX: torch.Tensor) -> torch.Tensor:
        return self.oHead(self.oStages(self.oStem(tX)))


class InceptionBlock(nn.Module):
    """GoogLeNet's Inception module (Szegedy et al., 2014): parallel 1x1, 1x1 -> 3x3, 1x1 -> 5x5 and
    3x3 max-pool -> 1x1 branches, concatenated along the channels (each convolution with BatchNorm and ReLU).

    The 1x1 "reduce" convolutions are bottlenecks: they cut the channels the 3x3 and 5x5 convolutions see.
    Output channels: ``numChn1x1 + numChn3x3 + numChn5x5 + numChnPool``.
    """

    def __init__(self, numChnIn: int, numChn1x1: int, numChn3x3Red: int, numChn3x3: int, numChn5x5Red: int,
                 numChn5x5: int, numChnPool: int) -> None:
        super().__init__()
        self.oBranch1 = ConvBnRelu(numChnIn, numChn1x1, 1)
        self.oBranch3 = nn.Sequential(ConvBnRelu(numChnIn, numChn3x3Red, 1), ConvBnRelu(numChn3x3Red, numChn3x3, 3))
        self.oBranch5 = nn.Sequential(ConvBnRelu(numChnIn, numChn5x5Red, 1), ConvBnRelu(numChn5x5Red, numChn5x5, 5))
        self.oBranchPool = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), ConvBnRelu(numChnIn, numChnPool, 1))

    def forward(self, tX: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.oBranch1(tX), self.oBranch3(tX), self.oBranch5(tX), self.oBranchPool(tX)], dim=1)


def DepthwiseSeparableConv(numChnIn: int, numChnOut: int, stride: int = 1, kernelSize: int = 3) -> nn.Sequential:
    """MobileNet's factorized convolution: a depthwise ``kernelSize`` convolution (``groups=numChnIn``, one filter
    per channel) -> BN -> ReLU, then a pointwise 1x1 convolution mixing the channels -> BN -> ReLU.

    Cost relative to a standard convolution: ``1 / numChnOut + 1 / kernelSize**2``.
    """
    return nn.Sequential(
        nn.Conv2d(numChnIn, numChnIn, kernelSize, stride=stride, padding=kernelSize // 2, groups=numChnIn,
                  bias=False),
        nn.BatchNorm2d(numChnIn), nn.ReLU(inplace=True),
        nn.Conv2d(numChnIn, numChnOut, 1, bias=False), nn.BatchNorm2d(numChnOut), nn.ReLU(inplace=True))


# MobileNet v1 (Howard et al., 2017), table 1: (output channels, stride) of the 13 depthwise separable layers
_MOBILENET_V1_LAYERS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1),
                        (512, 1), (512, 1), (1024, 2), (1024, 1))


def BuildMobileNetV1(numClasses: int = 10, widthMult: float = 1.0, stemStride: int = 1) -> nn.Sequential:
    """MobileNet v1: a 3x3 convolution stem (32 maps) and 13 ``DepthwiseSeparableConv`` layers, global average
    pooling, a linear classifier. ``widthMult`` (alpha) scales every width.

    ``stemStride=1`` suits 32x32 images (final maps 2x2); ``stemStride=2`` with ``numClasses=1000`` is the ImageNet
    network of the paper (224x224 -> 7x7; 4.2 M parameters, 569 M multiply-adds).
    """
    if widthMult <= 0:
        raise ValueError(f'widthMult must be positive, got {widthMult}.')
    hWidth = lambda numChn: max(8, int(numChn * widthMult))  # noqa: E731
    lLayers: list[nn.Module] = [ConvBnRelu(3, hWidth(32), 3, stride=stemStride)]
    numChnPrev = hWidth(32)
    for numChn, stride in _MOBILENET_V1_LAYERS:
        lLayers.append(DepthwiseSeparableConv(numChnPrev, hWidth(numChn), stride))
        numChnPrev = hWidth(numChn)
    return nn.Sequential(*lLayers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(numChnPrev, numClasses))


def ResNet18Cifar(numClasses: int = 10) -> nn.Module:
    """torchvision's ``resnet18`` adapted to 32x32 images: a 3x3 stride-1 stem and no max-pool (final maps 4x4)."""
    from torchvision.models import resnet18  #<! Imported here: torchvision is needed by this builder only
    oModel = resnet18(num_classes=numClasses)
    oModel.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
    oModel.maxpool = nn.Identity()
    return oModel


def CountFlops(oModel: nn.Module, tuInShape: Sequence[int] = (1, 3, 32, 32)) -> int:
    """FLOPs of one forward pass on a zero input of shape ``tuInShape`` (``FlopCounterMode``; MACs = FLOPs / 2).

    Counts the matrix products and convolutions (2 FLOPs per multiply-add); BatchNorm, activations and pooling are
    not counted (a few percent). The model runs in eval mode, on its own device, without gradients; its mode is
    restored.
    """
    from torch.utils.flop_counter import FlopCounterMode
    if len(tuInShape) < 2:
        raise ValueError(f'tuInShape must include the batch dimension, e.g. (1, 3, 32, 32); got {tuple(tuInShape)}.')
    oParam = next(oModel.parameters(), None)
    tX = torch.zeros(tuple(tuInShape), device=oParam.device if oParam is not None else 'cpu')
    wasTraining = oModel.training
    oModel.eval()
    try:
        oCounter = FlopCounterMode(display=False)
        with oCounter, torch.no_grad():
            oModel(tX)
    finally:
        oModel.train(wasTraining)
    return int(oCounter.get_total_flops())
