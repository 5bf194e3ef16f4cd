"""Where a trained CNN breaks, measured: adversarial attacks, natural corruptions and shifts, test-time
augmentation and calibration (comparisons over seeds are ``course_utils.statistics``).

**Pixel range of standardized images.** The course's models see standardized images ``(x - µ) / σ`` (per channel,
``x`` in ``[0, 1]``). An attack or a corruption must keep the image a valid image, so every helper here states in
which space it works:

- The attacks (``FgsmAttack``, ``PgdAttack``) take and return **standardized** images. Their ``epsilon`` is in
  **pixel units** of ``[0, 1]`` (``8 / 255`` is 8 intensity levels), so in channel ``c`` the step is
  ``epsilon / σ_c`` and the valid range is ``[(0 - µ_c) / σ_c, (1 - µ_c) / σ_c]`` (``PixelBounds``). The sign of
  the gradient is the same in both spaces (``σ_c > 0``), so a step of ``epsilon / σ_c`` on the standardized image
  is exactly a step of ``epsilon`` on the pixels.
- The corruptions (``CorruptImages``) take and return **pixel** images in ``[0, 1]``: convert with
  ``Unstandardize`` / ``Standardize``.
- ``ShiftImages`` and ``PredictTta`` work in whatever space they are given; their fill value is a parameter (in
  standardized space, black is ``PixelBounds(vMean, vStd)[0]``).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.axes import Axes
from PIL import Image
from torch import nn
from torchmetrics.classification import MulticlassCalibrationError

from .config import ModelDevice

VectorLike = Sequence[float] | torch.Tensor


# ------------------------------------------------------------------------------------------------
# Pixel space <-> standardized space
# ------------------------------------------------------------------------------------------------
def _ChannelView(vValues: VectorLike, tLike: torch.Tensor, name: str) -> torch.Tensor:
    vValues = torch.as_tensor(vValues, dtype=tLike.dtype, device=tLike.device).flatten()
    if tLike.ndim != 4 or vValues.numel() != tLike.shape[1]:
        raise ValueError(f'{name} needs one value per channel of N x C x H x W images; got {vValues.numel()} values '
                         f'for images of shape {tuple(tLike.shape)}.')
    return vValues.view(1, -1, 1, 1)


def Standardize(tX01: torch.Tensor, vMean: VectorLike, vStd: VectorLike) -> torch.Tensor:
    """Pixel images in ``[0, 1]`` (``N x C x H x W``) -> standardized ``(x - µ) / σ`` per channel."""
    return (tX01 - _ChannelView(vMean, tX01, 'vMean')) / _ChannelView(vStd, tX01, 'vStd')


def Unstandardize(tX: torch.Tensor, vMean: VectorLike, vStd: VectorLike) -> torch.Tensor:
    """Standardized images -> pixel images ``x = σ z + µ`` (not clipped)."""
    return tX * _ChannelView(vStd, tX, 'vStd') + _ChannelView(vMean, tX, 'vMean')


def PixelBounds(vMean: VectorLike, vStd: VectorLike) -> tuple[torch.Tensor, torch.Tensor]:
    """The standardized image of the valid pixel range ``[0, 1]``: ``(tLow, tHigh)``, each ``1 x C x 1 x 1``."""
    vMean = torch.as_tensor(vMean, dtype=torch.float32).flatten()
    vStd = torch.as_tensor(vStd, dtype=torch.float32).flatten()
    if vMean.shape != vStd.shape or bool((vStd <= 0).any()):
        raise ValueError(f'vMean and vStd need the same length and vStd > 0; got {vMean.tolist()}, {vStd.tolist()}.')
    return (-vMean / vStd).view(1, -1, 1, 1), ((1 - vMean) / vStd).view(1, -1, 1, 1)


# ------------------------------------------------------------------------------------------------
# Adversarial attacks
# ------------------------------------------------------------------------------------------------
def _CheckAttackInput(tX: torch.Tensor, vY: torch.Tensor, epsilon: float) -> None:
    if tX.ndim != 4:
        raise ValueError(f'tX must be a batch N x C x H x W, got shape {tuple(tX.shape)}.')
    if len(vY) != len(tX):
        raise ValueError(f'Got {len(vY)} labels for {len(tX)} images.')
    if not epsilon >= 0:
        raise ValueError(f'epsilon must be >= 0 (in pixel units of [0, 1], e.g. 8 / 255), got {epsilon}.')
    if epsilon > 1:
        raise ValueError(f'epsilon = {epsilon} is larger than the whole pixel range [0, 1]: give it in pixel units '
                         f'(8 / 255, not 8).')


def _InputGradient(oModel: nn.Module, tX: torch.Tensor, vY: torch.Tensor, hL: Callable) -> torch.Tensor:
    # Gradient with respect to the input only: the model's parameters keep their .grad untouched
    tX = tX.detach().requires_grad_(True)
    valLoss = hL(oModel(tX), vY)
    return torch.autograd.grad(valLoss, tX)[0]


def _ProjectToBallAndRange(tAdv: torch.Tensor, tX: torch.Tensor, tEps: torch.Tensor, tLow: torch.Tensor,
                           tHigh: torch.Tensor) -> torch.Tensor:
    tAdv = torch.minimum(torch.maximum(tAdv, tX - tEps), tX + tEps)  #<! The eps-ball (L-inf) around the clean image
    return torch.minimum(torch.maximum(tAdv, tLow), tHigh)            #<! The valid pixel range


def FgsmAttack(oModel: nn.Module, tX: torch.Tensor, vY: torch.Tensor, epsilon: float, vMean: VectorLike,
               vStd: VectorLike, hL: Callable | None = None) -> torch.Tensor:
    """Fast Gradient Sign Method (Goodfellow et al., 2015): one step of ``epsilon`` along the sign of the gradient.

    Args:
        oModel:       The model, in the mode the caller chose (``oModel.eval()`` to evaluate).
        tX:           Standardized images ``N x C x H x W`` (on the model's device).
        vY:           Their labels.
        epsilon:      Perturbation size in pixel units of ``[0, 1]`` (L-infinity); ``0`` returns ``tX`` unchanged.
        vMean, vStd:  The standardization statistics of ``tX`` (they define the valid range and the per-channel step).
        hL:           Loss to increase (default: cross entropy).

    Returns:
        Standardized adversarial images (detached): within ``epsilon`` of ``tX`` in pixel units and inside the
        standardized image of ``[0, 1]``.
    """
    _CheckAttackInput(tX, vY, epsilon)
    if epsilon == 0:
        return tX.detach().clone()
    hL = hL or nn.CrossEntropyLoss()
    tLow, tHigh = (tB.to(tX.device, tX.dtype) for tB in PixelBounds(vMean, vStd))
    tEps = epsilon / _ChannelView(vStd, tX, 'vStd')  #<! epsilon pixels = epsilon / σ_c standardized units
    tGrad = _InputGradient(oModel, tX, vY, hL)
    tAdv = tX.detach() + tEps * tGrad.sign()
    return _ProjectToBallAndRange(tAdv, tX.detach(), tEps, tLow, tHigh)


def PgdAttack(oModel: nn.Module, tX: torch.Tensor, vY: torch.Tensor, epsilon: float, vMean: VectorLike,
              vStd: VectorLike, numSteps: int = 10, stepSize: float | None = None, randomStart: bool = False,
              seed: int = 0, hL: Callable | None = None) -> torch.Tensor:
    """Projected Gradient Descent (Madry et al., 2018): ``numSteps`` signed-gradient steps of ``stepSize``, each
    followed by a projection onto the ``epsilon``-ball around ``tX`` and the valid pixel range.

    Same space conventions as ``FgsmAttack`` (standardized images, ``epsilon`` and ``stepSize`` in pixel units).
    ``stepSize`` defaults to ``2.5 * epsilon / numSteps``; ``randomStart`` starts from a uniform random point of the
    ball (seeded). Without a random start, one step of ``stepSize = epsilon`` is FGSM.
    """
    _CheckAttackInput(tX, vY, epsilon)
    if numSteps < 1:
        raise ValueError(f'numSteps must be at least 1, got {numSteps}.')
    if epsilon == 0:
        return tX.detach().clone()
    stepSize = 2.5 * epsilon / numSteps if stepSize is None else stepSize
    if not stepSize > 0:
        raise ValueError(f'stepSize must be > 0 (pixel units), got {stepSize}.')
    hL = hL or nn.CrossEntropyLoss()
    tLow, tHigh = (tB.to(tX.device, tX.dtype) for tB in PixelBounds(vMean, vStd))
    vStdView = _ChannelView(vStd, tX, 'vStd')
    tEps, tStep = epsilon / vStdView, stepSize / vStdView
    tX = tX.detach()
    tAdv = tX.clone()
    if randomStart:
        oGen = torch.Generator().manual_seed(seed)
        tNoise = (2 * torch.rand(tX.shape, generator=oGen) - 1).to(tX.device, tX.dtype)
        tAdv = _ProjectToBallAndRange(tX + tEps * tNoise, tX, tEps, tLow, tHigh)
    for _ in range(numSteps):
        tGrad = _InputGradient(oModel, tAdv, vY, hL)
        tAdv = _ProjectToBallAndRange(tAdv + tStep * tGrad.sign(), tX, tEps, tLow, tHigh)
    return tAdv


def AccuracyUnderAttack(oModel: nn.Module, tX: torch.Tensor, vY: torch.Tensor, hAttack: Callable | None = None,
                        batchSize: int = 256, **kwargs) -> float:
    """Accuracy of ``oModel`` (in eval mode) on ``hAttack(oModel, tXBatch, vYBatch, **kwargs)``; clean without one.

    ``tX`` are standardized images (any device: batches follow the model). The model's mode is restored after.
    """
    oDevice = ModelDevice(oModel)
    wasTraining = oModel.training
    oModel.eval()  #<! BatchNorm with running statistics: the attack sees the deployed model
    tNumCorrect = torch.zeros((), dtype=torch.long, device=oDevice)  #<! Counted on the device, read back once
    try:
        for ii in range(0, len(tX), batchSize):
            tXBatch, vYBatch = tX[ii:ii + batchSize].to(oDevice), vY[ii:ii + batchSize].to(oDevice)
            if hAttack is not None:
                tXBatch = hAttack(oModel, tXBatch, vYBatch, **kwargs)
            with torch.no_grad():
                tNumCorrect += (oModel(tXBatch).argmax(dim=1) == vYBatch).sum()
    finally:
        oModel.train(wasTraining)
    return int(tNumCorrect) / len(tX)


# ------------------------------------------------------------------------------------------------
# Natural corruptions (CIFAR-10-C style) and shifts
# ------------------------------------------------------------------------------------------------
# Severities 1 to 5, the parameters of CIFAR-10-C (Hendrycks & Dietterich, 2019) for 32 x 32 images
CORRUPTION_SEVERITIES: dict[str, tuple[float, ...]] = {
    'Gaussian Noise': (0.04, 0.06, 0.08, 0.09, 0.10),  #<! Standard deviation of the added noise
    'Gaussian Blur':  (0.4, 0.6, 0.7, 0.8, 1.0),       #<! Standard deviation of the blur kernel, pixels
    'Contrast':       (0.75, 0.5, 0.4, 0.3, 0.15),     #<! Factor towards each channel's mean (per image)
    'JPEG':           (80, 65, 58, 50, 40),            #<! JPEG quality
}
CORRUPTIONS: tuple[str, ...] = tuple(CORRUPTION_SEVERITIES)
NUM_SEVERITIES = 5


def _JpegRoundTrip(tX01: torch.Tensor, quality: int) -> torch.Tensor:
    # PIL's encoder (torchvision's image codecs are deprecated from 0.29 on): encode, decode, back to [0, 1]
    mUInt8 = (tX01.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    lOut = []
    for mImg in mUInt8:
        oBuffer = io.BytesIO()
        Image.fromarray(mImg.squeeze(-1) if mImg.shape[-1] == 1 else mImg).save(oBuffer, format='JPEG',
                                                                               quality=quality)
        mDecoded = np.asarray(Image.open(oBuffer))
        lOut.append(mDecoded[..., None] if mDecoded.ndim == 2 else mDecoded)
    tOut = torch.from_numpy(np.stack(lOut)).permute(0, 3, 1, 2)
    return tOut.to(tX01.device, tX01.dtype) / 255


def CorruptImages(tX01: torch.Tensor, corruption: str, severity: int, seed: int = 0) -> torch.Tensor:
    """A corrupted copy of pixel images ``tX01`` (``N x C x H x W`` in ``[0, 1]``), values kept in ``[0, 1]``.

    Args:
        corruption: One of ``CORRUPTIONS``: ``'Gaussian Noise'``, ``'Gaussian Blur'``, ``'Contrast'``, ``'JPEG'``.
        severity:   ``1`` (mild) to ``5`` (strong), with the CIFAR-10-C parameters (``CORRUPTION_SEVERITIES``);
                    ``0`` returns a clean copy.
        seed:       Seed of the noise (the result is reproducible).
    """
    if corruption not in CORRUPTION_SEVERITIES:
        raise ValueError(f'Unknown corruption {corruption!r}; use one of {list(CORRUPTIONS)}.')
    if severity not in range(NUM_SEVERITIES + 1):
        raise ValueError(f'severity must be an integer 0 (clean) to {NUM_SEVERITIES}, got {severity!r}.')
    if tX01.ndim != 4 or not tX01.is_floating_point():
        raise ValueError(f'tX01 must be float pixel images N x C x H x W in [0, 1], got {tX01.dtype} of shape '
                         f'{tuple(tX01.shape)}.')
    if float(tX01.min()) < -1e-4 or float(tX01.max()) > 1 + 1e-4:
        raise ValueError(f'tX01 has values in [{float(tX01.min()):.2f}, {float(tX01.max()):.2f}]: pixel images in '
                         f'[0, 1] are expected (undo the standardization with Unstandardize first).')
    if severity == 0:
        return tX01.clone()
    valParam = CORRUPTION_SEVERITIES[corruption][severity - 1]
    match corruption:
        case 'Gaussian Noise':
            oGen = torch.Generator().manual_seed(seed)
            tOut = tX01 + valParam * torch.randn(tX01.shape, generator=oGen).to(tX01.device, tX01.dtype)
        case 'Gaussian Blur':
            # CIFAR-10-C blurs with skimage.filters.gaussian: a kernel of radius int(4 sigma + 0.5) (scipy's
            # truncate=4) and the border extended by its edge pixels (mode 'nearest'), as here
            import kornia.filters  #<! Here: importing Kornia takes a moment that only this corruption needs
            kernelSize = 2 * int(4 * valParam + 0.5) + 1
            tOut = kornia.filters.gaussian_blur2d(tX01, (kernelSize, kernelSize), (valParam, valParam),
                                                  border_type='replicate')
        case 'Contrast':
            # Towards each channel's own mean, as CIFAR-10-C: one mean over all channels would also desaturate
            tMean = tX01.mean(dim=(2, 3), keepdim=True)
            tOut = (tX01 - tMean) * valParam + tMean
        case 'JPEG':
            tOut = _JpegRoundTrip(tX01, int(valParam))
    return tOut.clamp(0, 1)


def ShiftImages(tX: torch.Tensor, numRows: int, numCols: int, fillValue: float | VectorLike = 0.0,
                circular: bool = False) -> torch.Tensor:
    """Translate images ``N x C x H x W`` by ``numRows`` down and ``numCols`` right (negative: up / left).

    The uncovered border is filled with ``fillValue`` (a scalar or one value per channel; in standardized space
    black is ``PixelBounds(vMean, vStd)[0]``), or, with ``circular=True``, the image wraps around (the shift under
    which convolution is exactly equivariant).
    """
    if tX.ndim != 4:
        raise ValueError(f'tX must be N x C x H x W, got shape {tuple(tX.shape)}.')
    numImgRows, numImgCols = tX.shape[-2:]
    if abs(numRows) >= numImgRows or abs(numCols) >= numImgCols:
        raise ValueError(f'A shift of ({numRows}, {numCols}) leaves nothing of a {numImgRows} x {numImgCols} image.')
    tOut = torch.roll(tX, shifts=(numRows, numCols), dims=(2, 3))
    if circular:
        return tOut
    tFill = torch.as_tensor(fillValue, dtype=tX.dtype, device=tX.device)
    tFill = tFill.view(1, -1, 1, 1) if tFill.numel() > 1 else tFill
    tMask = torch.zeros((1, 1, numImgRows, numImgCols), dtype=torch.bool, device=tX.device)
    if numRows > 0:
        tMask[..., :numRows, :] = True
    elif numRows < 0:
        tMask[..., numRows:, :] = True
    if numCols > 0:
        tMask[..., :, :numCols] = True
    elif numCols < 0:
        tMask[..., :, numCols:] = True
    return torch.where(tMask, tFill, tOut)


# ------------------------------------------------------------------------------------------------
# Test-time augmentation
# ------------------------------------------------------------------------------------------------
def TtaViews(tX: torch.Tensor, useFlip: bool = True, cropShift: int = 0,
             fillValue: float | VectorLike = 0.0) -> list[torch.Tensor]:
    """The views of a batch that test-time augmentation averages over.

    The image itself; with ``cropShift > 0`` also the 4 corner crops of the image padded by ``cropShift`` (the
    image shifted by ``(+-cropShift, +-cropShift)``, border filled with ``fillValue``: 5 crops); with ``useFlip``
    the horizontal flip of each.
    """
    if cropShift < 0:
        raise ValueError(f'cropShift must be >= 0, got {cropShift}.')
    lShifts = [(0, 0)] + ([(dy, dx) for dy in (-cropShift, cropShift) for dx in (-cropShift, cropShift)]
                          if cropShift else [])
    lViews = [tX if shift == (0, 0) else ShiftImages(tX, *shift, fillValue=fillValue) for shift in lShifts]
    if useFlip:
        lViews += [tView.flip(3) for tView in lViews]
    return lViews


def PredictTta(oModel: nn.Module, dlData, useFlip: bool = True, cropShift: int = 0,
               fillValue: float | VectorLike = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Like ``Predict``, with test-time augmentation: the softmax probabilities averaged over ``TtaViews``.

    Returns ``(mProb, vY)`` on the CPU (``mProb.argmax(1)`` is the prediction). Costs one forward pass per view.
    """
    oDevice = ModelDevice(oModel)
    oModel.eval()
    lProb, lY = [], []
    with torch.no_grad():
        for tX, vY in dlData:
            lViews = TtaViews(tX.to(oDevice), useFlip, cropShift, fillValue)
            lProb.append(torch.stack([oModel(tView).softmax(dim=1) for tView in lViews]).mean(dim=0).cpu())
            lY.append(vY.cpu())
    return torch.cat(lProb), torch.cat(lY)


# ------------------------------------------------------------------------------------------------
# Calibration
# ------------------------------------------------------------------------------------------------
def _CheckLogits(mLogits: torch.Tensor, vY: torch.Tensor) -> None:
    if mLogits.ndim != 2 or len(vY) != len(mLogits):
        raise ValueError(f'Expected logits N x C and N labels, got {tuple(mLogits.shape)} and {len(vY)} labels.')


def ScaleByTemperature(mLogits: torch.Tensor, valTemperature: float) -> torch.Tensor:
    """Temperature scaling: ``logits / T`` (``T > 1`` softens, ``T < 1`` sharpens; the argmax is unchanged)."""
    if not valTemperature > 0:
        raise ValueError(f'The temperature must be > 0, got {valTemperature}.')
    return mLogits / valTemperature


def FitTemperature(mLogits: torch.Tensor, vY: torch.Tensor, maxIter: int = 200) -> float:
    """The temperature ``T`` that minimizes the NLL of ``softmax(logits / T)`` (Guo et al., 2017).

    Fit it on the **validation** logits (never on the test set): one parameter, so it cannot overfit much, and the
    accuracy does not change. ``log T`` is optimized (L-BFGS), so ``T`` stays positive.
    """
    _CheckLogits(mLogits, vY)
    mLogits, vY = mLogits.detach().float().cpu(), vY.detach().long().cpu()
    tLogT = torch.zeros(1, requires_grad=True)
    oOpt = torch.optim.LBFGS([tLogT], lr=0.1, max_iter=maxIter, line_search_fn='strong_wolfe')

    def Closure() -> torch.Tensor:
        oOpt.zero_grad()
        valLoss = F.cross_entropy(mLogits / tLogT.exp(), vY)
        valLoss.backward()
        return valLoss

    oOpt.step(Closure)
    valT = float(tLogT.detach().exp())
    # Never worse than no scaling (L-BFGS can stop early on a flat objective)
    if F.cross_entropy(mLogits / valT, vY) > F.cross_entropy(mLogits, vY):
        return 1.0
    return valT


def ExpectedCalibrationError(mLogits: torch.Tensor, vY: torch.Tensor, numBins: int = 15) -> float:
    """ECE: the bin-weighted mean of ``|accuracy - confidence|`` over ``numBins`` equal-width confidence bins
    (torchmetrics ``MulticlassCalibrationError``, norm L1). ``mLogits`` are logits (``N x C``)."""
    _CheckLogits(mLogits, vY)
    oEce = MulticlassCalibrationError(num_classes=mLogits.shape[1], n_bins=numBins, norm='l1')
    return float(oEce(mLogits.detach().float().softmax(dim=1).cpu(), vY.detach().long().cpu()))


def CalibrationBins(mLogits: torch.Tensor, vY: torch.Tensor, numBins: int = 15) -> pd.DataFrame:
    """Per confidence bin: ``Low``, ``High``, ``Count``, mean ``Confidence`` and ``Accuracy`` (the reliability
    diagram's data; empty bins have NaN means). Bins are ``(low, high]``, as torchmetrics bins them."""
    _CheckLogits(mLogits, vY)
    mProb = mLogits.detach().float().softmax(dim=1).cpu()
    vConf, vPred = mProb.max(dim=1)
    vCorrect = (vPred == vY.cpu()).float()
    vEdges = torch.linspace(0, 1, numBins + 1)
    vBin = torch.bucketize(vConf, vEdges[1:-1], right=False)  #<! Bin k holds (edge_k, edge_k+1]
    lRows = []
    for binIdx in range(numBins):
        vIn = vBin == binIdx
        numIn = int(vIn.sum())
        lRows.append({'Low': float(vEdges[binIdx]), 'High': float(vEdges[binIdx + 1]), 'Count': numIn,
                      'Confidence': float(vConf[vIn].mean()) if numIn else math.nan,
                      'Accuracy': float(vCorrect[vIn].mean()) if numIn else math.nan})
    return pd.DataFrame(lRows)


def PlotReliabilityDiagram(mLogits: torch.Tensor, vY: torch.Tensor, numBins: int = 15, title: str | None = None,
                           hA: Axes | None = None) -> Axes:
    """Reliability diagram: accuracy per confidence bin (bars) against the diagonal of perfect calibration, the gap
    shaded, with the ECE in the title."""
    dfBins = CalibrationBins(mLogits, vY, numBins)
    valEce = ExpectedCalibrationError(mLogits, vY, numBins)
    if hA is None:
        _, hA = plt.subplots(figsize=(4.5, 4.5), layout='constrained')
    vCenter = ((dfBins['Low'] + dfBins['High']) / 2).to_numpy()
    binWidth = 1 / numBins
    vAcc = dfBins['Accuracy'].fillna(0).to_numpy()
    vConf = dfBins['Confidence'].fillna(0).to_numpy()
    hA.bar(vCenter, vAcc, width=binWidth, edgecolor='k', color='tab:blue', label='Accuracy')
    # The mean confidence of each bin as a red step over its bar: opaque, so no colour mixes that the legend lacks;
    # the vertical distance between the bar's top and the step is the bin's gap
    vFilled = dfBins['Count'].to_numpy() > 0  #<! Empty bins have no confidence to draw
    hA.hlines(vConf[vFilled], (vCenter - binWidth / 2)[vFilled], (vCenter + binWidth / 2)[vFilled],
              colors='tab:red', lw=2.5, label='Mean confidence (gap: bar to step)')
    hA.plot([0, 1], [0, 1], 'k--', lw=1, label='Perfect calibration')
    hA.set_xlim(0, 1)
    hA.set_ylim(0, 1)
    hA.set_xlabel('Confidence (max probability)')
    hA.set_ylabel('Accuracy')
    hA.set_title(f'{title + ": " if title else ""}ECE = {valEce:.3f}')
    hA.legend(loc='upper left', fontsize=8)
    return hA
