"""2D convolution (deep-learning style: cross-correlation) written out, to compare with ``torch.nn.functional.conv2d``.

Both functions follow ``conv2d``'s conventions: input ``N x C_in x H x W`` (or ``C_in x H x W``), weights
``C_out x C_in x kH x kW`` and an optional bias of length ``C_out``. A single-channel image ``H x W`` with a single
kernel ``kH x kW`` is accepted too and gives an ``H' x W'`` map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .shapes import ConvOutputSize, ToPair

IntPair = int | tuple[int, int]


def _PrepareConv(tX: torch.Tensor, tW: torch.Tensor, vB: torch.Tensor | None, stride: IntPair,
                 padding: IntPair | str, dilation: IntPair) -> tuple[torch.Tensor, torch.Tensor, tuple, tuple, tuple, int]:
    """Validate the arguments and bring them to 4D; returns what both implementations need."""
    numDimsIn = tX.ndim
    if tX.ndim == 2 and tW.ndim == 2:  #<! Single channel image with a single kernel
        tX, tW = tX[None, None], tW[None, None]
    elif tX.ndim == 3:
        tX = tX[None]
    if tX.ndim != 4:
        raise ValueError(f'tX must be H x W (with a kH x kW kernel), C x H x W or N x C x H x W; got shape {tuple(tX.shape)}.')
    if tW.ndim != 4:
        raise ValueError(f'tW must be C_out x C_in x kH x kW; got shape {tuple(tW.shape)}.')
    if tX.shape[1] != tW.shape[1]:
        raise ValueError(f'The input has {tX.shape[1]} channels but the kernels expect {tW.shape[1]} (tW.shape[1]).')
    if vB is not None and vB.shape != (tW.shape[0],):
        raise ValueError(f'vB must hold one bias per filter ({tW.shape[0]}), got shape {tuple(vB.shape)}.')
    tuStride = ToPair(stride, 'stride', 1)
    tuDilation = ToPair(dilation, 'dilation', 1)
    tuKernel = tuple(tW.shape[2:])
    if isinstance(padding, str):
        if padding == 'valid':
            tuPadding = (0, 0)
        elif padding == 'same':
            if tuStride != (1, 1):
                raise ValueError("padding='same' needs stride 1 (the output size would not equal the input size).")
            lTotal = [d * (k - 1) for d, k in zip(tuDilation, tuKernel)]
            if any(total % 2 for total in lTotal):
                raise ValueError("padding='same' needs an odd effective kernel size here (symmetric padding).")
            tuPadding = tuple(total // 2 for total in lTotal)
        else:
            raise ValueError(f"padding must be an int, a pair, 'valid' or 'same'; got {padding!r}.")
    else:
        tuPadding = ToPair(padding, 'padding', 0)
    for axisName, inSize, pad, k, d in zip(('height', 'width'), tX.shape[2:], tuPadding, tuKernel, tuDilation):
        effKernel = d * (k - 1) + 1
        if effKernel > inSize + 2 * pad:
            raise ValueError(f'The kernel {axisName} ({k}, dilated to {effKernel}) is larger than the padded input '
                             f'{axisName} ({inSize} + 2 * {pad} = {inSize + 2 * pad}).')
    return tX, tW, tuStride, tuPadding, tuDilation, numDimsIn


def Conv2DLoops(tX: torch.Tensor, tW: torch.Tensor, vB: torch.Tensor | None = None, stride: IntPair = 1,
                padding: IntPair | str = 0, dilation: IntPair = 1) -> torch.Tensor:
    """2D cross-correlation by loops over the output pixels, the definition written out.

    Output pixel ``(i, j)`` of filter ``o`` is the sum over input channels and kernel taps of
    ``X[c, i * s + p * d, j * s + q * d] * W[o, c, p, q]`` (on the zero-padded input), plus ``b[o]``.
    Same arguments and result as ``torch.nn.functional.conv2d``.
    """
    tX, tW, tuStride, tuPadding, tuDilation, numDimsIn = _PrepareConv(tX, tW, vB, stride, padding, dilation)
    (kH, kW), (sH, sW), (dH, dW) = tW.shape[2:], tuStride, tuDilation
    numOutH = ConvOutputSize(tX.shape[2], kH, sH, tuPadding[0], dH)
    numOutW = ConvOutputSize(tX.shape[3], kW, sW, tuPadding[1], dW)
    tXPad = F.pad(tX, (tuPadding[1], tuPadding[1], tuPadding[0], tuPadding[0]))
    # On the input's device: a CPU output would make every pixel's assignment a device-to-host copy
    tY = torch.zeros(tX.shape[0], tW.shape[0], numOutH, numOutW, dtype=torch.result_type(tX, tW), device=tX.device)
    for ii in range(numOutH):
        for jj in range(numOutW):
            # The input patch under the kernel: N x C_in x kH x kW (every d-th pixel when dilated)
            tPatch = tXPad[:, :, ii * sH:ii * sH + dH * (kH - 1) + 1:dH, jj * sW:jj * sW + dW * (kW - 1) + 1:dW]
            tY[:, :, ii, jj] = torch.einsum('ncpq,ocpq->no', tPatch, tW)  #<! Sum over channels and taps
    if vB is not None:
        tY += vB.view(1, -1, 1, 1)
    return _RestoreDims(tY, numDimsIn)


def Conv2DIm2Col(tX: torch.Tensor, tW: torch.Tensor, vB: torch.Tensor | None = None, stride: IntPair = 1,
                 padding: IntPair | str = 0, dilation: IntPair = 1) -> torch.Tensor:
    """2D cross-correlation as one matrix product (im2col): every patch becomes a column of ``unfold``.

    ``(C_out x C_in kH kW) @ (C_in kH kW x numPatches)``: the same sums as ``Conv2DLoops``, done by a fast
    matrix multiplication.
    """
    tX, tW, tuStride, tuPadding, tuDilation, numDimsIn = _PrepareConv(tX, tW, vB, stride, padding, dilation)
    (kH, kW), numOut = tW.shape[2:], tW.shape[0]
    numOutH = ConvOutputSize(tX.shape[2], kH, tuStride[0], tuPadding[0], tuDilation[0])
    numOutW = ConvOutputSize(tX.shape[3], kW, tuStride[1], tuPadding[1], tuDilation[1])
    tCols = F.unfold(tX, (kH, kW), dilation=tuDilation, padding=tuPadding, stride=tuStride)  #<! N x C_in kH kW x L
    tY = (tW.reshape(numOut, -1) @ tCols).reshape(tX.shape[0], numOut, numOutH, numOutW)
    if vB is not None:
        tY = tY + vB.view(1, -1, 1, 1)
    return _RestoreDims(tY, numDimsIn)


def _RestoreDims(tY: torch.Tensor, numDimsIn: int) -> torch.Tensor:
    if numDimsIn == 2:
        return tY[0, 0]
    if numDimsIn == 3:
        return tY[0]
    return tY
