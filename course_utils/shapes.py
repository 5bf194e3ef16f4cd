"""Shape arithmetic of CNN layers: output shapes by formula, and a layer-by-layer table of a model.

Shapes are given without the batch dimension: ``(C, H, W)`` for feature maps, ``(F,)`` for vectors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
import torch
from torch import nn

from .config import ModelDevice

# Layers that keep the shape of their input (element-wise, normalization, regularization)
PASS_THROUGH_LAYERS: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.GELU, nn.SiLU, nn.Mish, nn.Sigmoid, nn.Tanh,
    nn.Hardswish, nn.Hardsigmoid, nn.Softmax, nn.LogSoftmax, nn.Identity, nn.Dropout, nn.Dropout2d, nn.AlphaDropout,
    nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d, nn.LayerNorm, nn.LocalResponseNorm,
)
POOL_LAYERS: tuple[type[nn.Module], ...] = (nn.MaxPool2d, nn.AvgPool2d)
ADAPTIVE_POOL_LAYERS: tuple[type[nn.Module], ...] = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def ToPair(value: int | Sequence[int], name: str = 'value', minValue: int | None = None) -> tuple[int, int]:
    """``3 -> (3, 3)``, ``(3, 5) -> (3, 5)``: the (height, width) pair of a layer argument, validated.

    Raises ``ValueError`` naming ``name`` for anything but an int or a pair of ints (``>= minValue`` if given).
    """
    tuValue = (value, value) if isinstance(value, int) else tuple(value)
    if len(tuValue) != 2 or any(not isinstance(v, int) or (minValue is not None and v < minValue) for v in tuValue):
        bound = f' >= {minValue}' if minValue is not None else ''
        raise ValueError(f'{name} must be an int or a pair of ints{bound}, got {value!r}.')
    return tuValue


def ConvOutputSize(inSize: int, kernelSize: int, stride: int = 1, padding: int = 0, dilation: int = 1,
                   ceilMode: bool = False) -> int:
    """Output length along one axis: ``floor((I + 2P - D (K - 1) - 1) / S) + 1`` (``ceil`` with ``ceilMode``).

    With ``D = 1`` this is ``floor((I - K + 2P) / S) + 1``. With ``ceilMode`` (pooling) a last window that would
    start in the right padding is dropped, as PyTorch does.
    """
    numerator = inSize + 2 * padding - dilation * (kernelSize - 1) - 1
    if not ceilMode:
        return numerator // stride + 1
    outSize = -(-numerator // stride) + 1
    if (outSize - 1) * stride >= inSize + padding:
        outSize -= 1
    return outSize


def ConvTransposeOutputSize(inSize: int, kernelSize: int, stride: int = 1, padding: int = 0,
                            outputPadding: int = 0, dilation: int = 1) -> int:
    """Output length of a transposed convolution along one axis: ``(I - 1) S - 2P + D (K - 1) + P_out + 1``.

    It inverts ``ConvOutputSize``: a convolution with the same ``K, S, P, D`` maps this size back to ``inSize``.
    ``outputPadding`` (< ``S``) picks among the sizes that a strided convolution maps to the same output.
    """
    if not 0 <= outputPadding < max(stride, dilation):
        raise ValueError(f'outputPadding must be in [0, max(stride, dilation)) = [0, {max(stride, dilation)}), '
                         f'got {outputPadding}.')
    return (inSize - 1) * stride - 2 * padding + dilation * (kernelSize - 1) + outputPadding + 1


def _ConvTransposeShape(oLayer: nn.ConvTranspose2d, tuInShape: tuple[int, ...]) -> tuple[int, ...]:
    _CheckSpatialInput(oLayer, tuInShape)
    numChannels, *lSizes = tuInShape
    if numChannels != oLayer.in_channels:
        raise ValueError(f'{oLayer} expects {oLayer.in_channels} input channels, got {numChannels} (shape {tuInShape}).')
    lOut = [ConvTransposeOutputSize(i, k, s, p, op, d) for i, k, s, p, op, d in
            zip(lSizes, oLayer.kernel_size, oLayer.stride, oLayer.padding, oLayer.output_padding, oLayer.dilation)]
    if min(lOut) <= 0:
        raise ValueError(f'{oLayer} on an input of size {tuple(lSizes)} gives an output of size {tuple(lOut)}: '
                         f'the padding removes more than the layer adds. Use less padding.')
    return (oLayer.out_channels, *lOut)


def _CheckSpatialInput(oLayer: nn.Module, tuInShape: tuple[int, ...]) -> None:
    if len(tuInShape) != 3:
        raise ValueError(f'{oLayer} expects a C x H x W input, got shape {tuInShape}.')


def _ConvShape(oLayer: nn.Conv2d, tuInShape: tuple[int, ...]) -> tuple[int, ...]:
    _CheckSpatialInput(oLayer, tuInShape)
    numChannels, *lSizes = tuInShape
    if numChannels != oLayer.in_channels:
        raise ValueError(f'{oLayer} expects {oLayer.in_channels} input channels, got {numChannels} (shape {tuInShape}).')
    if oLayer.padding == 'same':
        return (oLayer.out_channels, *lSizes)
    tuPad = (0, 0) if oLayer.padding == 'valid' else ToPair(oLayer.padding)
    lOut = [ConvOutputSize(i, k, s, p, d) for i, k, s, p, d in
            zip(lSizes, oLayer.kernel_size, oLayer.stride, tuPad, oLayer.dilation)]
    if min(lOut) <= 0:
        raise ValueError(f'{oLayer} on an input of size {tuple(lSizes)} gives an output of size {tuple(lOut)}: the '
                         f'(dilated) kernel is larger than the padded input. Pad more or use a smaller kernel.')
    return (oLayer.out_channels, *lOut)


def _PoolShape(oLayer: nn.Module, tuInShape: tuple[int, ...]) -> tuple[int, ...]:
    _CheckSpatialInput(oLayer, tuInShape)
    numChannels, *lSizes = tuInShape
    tuKernel, tuPad = ToPair(oLayer.kernel_size), ToPair(oLayer.padding)
    tuStride = ToPair(oLayer.stride if oLayer.stride is not None else oLayer.kernel_size)
    tuDilation = ToPair(getattr(oLayer, 'dilation', 1))  #<! AvgPool2d has no dilation
    for k, p in zip(tuKernel, tuPad):
        if p > k / 2:  #<! PyTorch's rule: padding at most half the (undilated) kernel size
            raise ValueError(f'{oLayer}: padding {p} is more than half the kernel size {k}; PyTorch allows at most '
                             f'{k / 2:g}.')
    lOut = [ConvOutputSize(i, k, s, p, d, oLayer.ceil_mode) for i, k, s, p, d in
            zip(lSizes, tuKernel, tuStride, tuPad, tuDilation)]
    if min(lOut) <= 0:
        raise ValueError(f'{oLayer} on an input of size {tuple(lSizes)} gives an output of size {tuple(lOut)}: the '
                         f'pooling window is larger than the padded input.')
    return (numChannels, *lOut)


def _AdaptivePoolShape(oLayer: nn.Module, tuInShape: tuple[int, ...]) -> tuple[int, ...]:
    _CheckSpatialInput(oLayer, tuInShape)
    numChannels, *lSizes = tuInShape
    tuOut = (oLayer.output_size, oLayer.output_size) if isinstance(oLayer.output_size, int) else oLayer.output_size
    return (numChannels, *[i if o is None else o for i, o in zip(lSizes, tuOut)])


def _FlattenShape(oLayer: nn.Flatten, tuInShape: tuple[int, ...]) -> tuple[int, ...]:
    # Dimensions of the layer count the batch dimension (dim 0); the shapes here leave it out
    tuFull = (1, *tuInShape)
    startDim = oLayer.start_dim % len(tuFull)
    endDim = oLayer.end_dim % len(tuFull)
    if startDim == 0:
        raise ValueError(f'{oLayer} flattens the batch dimension; use start_dim >= 1.')
    tuOut = (*tuFull[:startDim], math.prod(tuFull[startDim:endDim + 1]), *tuFull[endDim + 1:])
    return tuOut[1:]


def _LinearShape(oLayer: nn.Linear, tuInShape: tuple[int, ...]) -> tuple[int, ...]:
    if tuInShape[-1] != oLayer.in_features:
        raise ValueError(f'{oLayer} expects {oLayer.in_features} input features, got {tuInShape[-1]} (shape '
                         f'{tuInShape}). Set in_features to {tuInShape[-1]} or fix the layers before it.')
    return (*tuInShape[:-1], oLayer.out_features)


def LayerOutputShape(oLayer: nn.Module, tuInShape: Sequence[int]) -> tuple[int, ...]:
    """Output shape of one layer for an input of shape ``tuInShape`` (no batch dimension), by formula.

    Supports ``Conv2d``, ``ConvTranspose2d``, ``MaxPool2d`` / ``AvgPool2d``, ``AdaptiveAvgPool2d`` / ``AdaptiveMaxPool2d``, ``Flatten``,
    ``Linear``, ``Sequential`` (layer by layer) and shape-preserving layers (activations, normalization, dropout).
    Raises ``ValueError`` naming the layer and the sizes when the combination is invalid (output size <= 0).
    """
    tuInShape = tuple(int(s) for s in tuInShape)
    if isinstance(oLayer, nn.Sequential):
        for oSubLayer in oLayer:
            tuInShape = LayerOutputShape(oSubLayer, tuInShape)
        return tuInShape
    if isinstance(oLayer, nn.Conv2d):
        return _ConvShape(oLayer, tuInShape)
    if isinstance(oLayer, nn.ConvTranspose2d):
        return _ConvTransposeShape(oLayer, tuInShape)
    if isinstance(oLayer, POOL_LAYERS):
        return _PoolShape(oLayer, tuInShape)
    if isinstance(oLayer, ADAPTIVE_POOL_LAYERS):
        return _AdaptivePoolShape(oLayer, tuInShape)
    if isinstance(oLayer, nn.Flatten):
        return _FlattenShape(oLayer, tuInShape)
    if isinstance(oLayer, nn.Linear):
        return _LinearShape(oLayer, tuInShape)
    if isinstance(oLayer, PASS_THROUGH_LAYERS):
        return tuInShape
    raise TypeError(f'LayerOutputShape does not know {type(oLayer).__name__}; run the model on a dummy input '
                    f'(e.g. torchinfo.summary) to get its shape.')


def _LayerWindow(oLayer: nn.Module, tuInShape: tuple[int, ...]) -> tuple[int, int] | None:
    """Effective kernel size and stride of a spatial layer along the height (``None`` if not spatial)."""
    if isinstance(oLayer, nn.Conv2d):
        return oLayer.dilation[0] * (oLayer.kernel_size[0] - 1) + 1, oLayer.stride[0]
    if isinstance(oLayer, POOL_LAYERS):
        kernel = ToPair(oLayer.kernel_size)[0]
        stride = ToPair(oLayer.stride if oLayer.stride is not None else oLayer.kernel_size)[0]
        return ToPair(getattr(oLayer, 'dilation', 1))[0] * (kernel - 1) + 1, stride
    if isinstance(oLayer, ADAPTIVE_POOL_LAYERS):
        inSize = tuInShape[1]
        outSize = _AdaptivePoolShape(oLayer, tuInShape)[1]
        return math.ceil(inSize / outSize), inSize // outSize  #<! Exact when outSize divides inSize
    return (1, 1) if isinstance(oLayer, PASS_THROUGH_LAYERS) else None


def ModelShapeTable(oModel: nn.Sequential, tuInShape: Sequence[int]) -> pd.DataFrame:
    """Step-by-step table of a ``Sequential`` model: shape after every layer, parameters and receptive field.

    The receptive field (along the height) is the size of the input region that one output pixel sees:
    ``r_out = r_in + (k_eff - 1) * j_in`` and ``j_out = j_in * s``, with ``j`` the jump (distance in input pixels
    between neighboring outputs). After ``Flatten`` every output sees the whole input (shown as ``<NA>``).
    """
    if not isinstance(oModel, nn.Sequential):
        raise TypeError(f'ModelShapeTable walks an nn.Sequential, got {type(oModel).__name__}.')
    tuShape = tuple(int(s) for s in tuInShape)
    receptiveField, jump = 1, 1
    lRows = [{'Layer': 'Input', 'Type': '', 'Output Shape': tuShape, 'Parameters': 0, 'Receptive Field': 1}]
    for layerName, oLayer in oModel.named_children():
        tuWindow = _LayerWindow(oLayer, tuShape) if receptiveField is not None else None
        tuShape = LayerOutputShape(oLayer, tuShape)
        if tuWindow is None:
            receptiveField = None
        else:
            receptiveField += (tuWindow[0] - 1) * jump
            jump *= tuWindow[1]
        lRows.append({'Layer': layerName, 'Type': type(oLayer).__name__, 'Output Shape': tuShape,
                      'Parameters': sum(p.numel() for p in oLayer.parameters()),
                      'Receptive Field': receptiveField})
    dfTable = pd.DataFrame(lRows)
    dfTable['Receptive Field'] = dfTable['Receptive Field'].astype('Int64')
    return dfTable


def ForwardShapes(oModel: nn.Sequential, tuInShape: Sequence[int]) -> list[tuple[int, ...]]:
    """Real output shape (no batch dimension) of every child of a ``Sequential``, from a dry run on zeros."""
    tX = torch.zeros(1, *tuInShape, device=ModelDevice(oModel))
    lShapes = []
    wasTraining = oModel.training
    oModel.eval()  #<! BatchNorm cannot train on a batch of one, and its running statistics must not change
    try:
        with torch.no_grad():
            for oLayer in oModel.children():
                tX = oLayer(tX)
                lShapes.append(tuple(tX.shape[1:]))
    finally:
        oModel.train(wasTraining)
    return lShapes
