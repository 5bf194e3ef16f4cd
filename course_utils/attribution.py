"""Attribution maps: which input pixels a CNN's prediction depends on (the interpretability lesson).

The lesson writes each method by hand once and checks it against Captum; the rest of the course uses these helpers,
which call Captum and reduce its output to one ``N x H x W`` map per image:

- ``SaliencyMaps``: gradient saliency (Simonyan et al. 2014), ``|d score / d x|`` maximized over the channels; with
  ``numSamples > 0`` SmoothGrad (Smilkov et al. 2017): ``|d score / d x|`` averaged over noisy copies of the input,
  then maximized over the channels (Captum's ``NoiseTunnel``).
- ``GradCamMaps``: Grad-CAM (Selvaraju et al. 2017) at one layer, upsampled bilinearly to the input size.
- ``OcclusionMaps``: occlusion sensitivity (Zeiler & Fergus 2014), the drop of the class probability when a patch
  is replaced by a baseline, averaged over the patches that cover each pixel.
- Sanity checks: ``CascadingRandomization`` (Adebayo et al. 2018), ``MapRankCorrelation`` (Spearman per image).
- Faithfulness: ``DeletionCurves`` (deletion and insertion, Petsiuk et al. 2018) and ``CurveAuc``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence

import numpy as np
import scipy.stats
import torch
import torch.nn.functional as F
from captum.attr import LayerAttribution, LayerGradCam, NoiseTunnel, Occlusion, Saliency
from torch import nn

from .config import ModelDevice

CURVE_MODES = ('deletion', 'insertion')


def _CheckBatch(tX: torch.Tensor, vTarget: torch.Tensor) -> None:
    if tX.ndim != 4:
        raise ValueError(f'tX must be a batch of images, N x C x H x W; got shape {tuple(tX.shape)}.')
    if vTarget.ndim != 1 or len(vTarget) != len(tX):
        raise ValueError(f'vTarget must hold one class index per image ({len(tX)}); got shape {tuple(vTarget.shape)}.')


class EvalMode:
    """Context manager: the model in eval mode inside the block (dropout off, BatchNorm's running statistics), every
    sub-module's previous mode restored afterwards (a frozen BatchNorm in a training model stays frozen), also on an
    error. An attribution of a model in train mode is random (dropout) and mixes the images (BatchNorm)."""

    def __init__(self, oModel: nn.Module) -> None:
        self.oModel = oModel
        self.lModes: list[tuple[nn.Module, bool]] = []  #<! Read when the block starts, not when the object is made

    def __enter__(self) -> nn.Module:
        self.lModes = [(oSub, oSub.training) for oSub in self.oModel.modules()]
        self.oModel.eval()
        return self.oModel

    def __exit__(self, *tuExc: object) -> None:
        for oSub, wasTraining in self.lModes:
            oSub.training = wasTraining


def _Prepare(oModel: nn.Module, tX: torch.Tensor, vTarget: torch.Tensor | Sequence[int]
             ) -> tuple[torch.Tensor, torch.Tensor]:
    vTarget = torch.as_tensor(vTarget, dtype=torch.long)
    _CheckBatch(tX, vTarget)
    oDevice = ModelDevice(oModel)
    return tX.detach().to(oDevice), vTarget.to(oDevice)


def SaliencyMaps(oModel: nn.Module, tX: torch.Tensor, vTarget: torch.Tensor | Sequence[int], numSamples: int = 0,
                 noiseStd: float = 0.15, batchSize: int = 256) -> torch.Tensor:
    """Gradient saliency of the class score (the logit of ``vTarget``): ``max_c |d score / d x_c|``, ``N x H x W``.

    With ``numSamples > 0``, SmoothGrad: ``max_c`` of the mean of ``|gradient|`` over ``numSamples`` copies of each
    image with Gaussian noise of standard deviation ``noiseStd`` added (in the model's input units: standardized
    images). At most about ``batchSize`` images (copies included) go through one backward pass, so many images or
    samples fit a small GPU. The model runs in eval mode (restored afterwards). On the CPU.
    """
    if numSamples < 0 or noiseStd < 0 or batchSize < 1:
        raise ValueError(f'numSamples and noiseStd must be non-negative and batchSize positive, got {numSamples}, '
                         f'{noiseStd} and {batchSize}.')
    tX, vTarget = _Prepare(oModel, tX, vTarget)
    numPerChunk = max(1, batchSize // max(1, numSamples))
    lMaps = []
    with EvalMode(oModel):
        oSaliency = Saliency(oModel)
        for start in range(0, len(tX), numPerChunk):
            tXc = tX[start:start + numPerChunk].clone().requires_grad_()  #<! Captum warns if it must set this itself
            vTc = vTarget[start:start + numPerChunk]
            if numSamples == 0:
                tAttr = oSaliency.attribute(tXc, target=vTc, abs=True)
            else:
                tAttr = NoiseTunnel(oSaliency).attribute(tXc, nt_type='smoothgrad', nt_samples=numSamples,
                                                         nt_samples_batch_size=min(numSamples, batchSize),
                                                         stdevs=float(noiseStd), target=vTc, abs=True)
            lMaps.append(tAttr.amax(dim=1).detach().cpu())
    return torch.cat(lMaps)


def GradCamMaps(oModel: nn.Module, oLayer: nn.Module, tX: torch.Tensor,
                vTarget: torch.Tensor | Sequence[int]) -> torch.Tensor:
    """Grad-CAM at ``oLayer``: ``ReLU(sum_k alpha_k A_k)`` with ``alpha_k`` the spatial mean of ``d score / d A_k``,
    upsampled bilinearly to the input's size, ``N x H x W`` (on the CPU). The model runs in eval mode."""
    tX, vTarget = _Prepare(oModel, tX, vTarget)
    with EvalMode(oModel):
        tCam = LayerGradCam(oModel, oLayer).attribute(tX, target=vTarget, relu_attributions=True)
    tCam = LayerAttribution.interpolate(tCam, tuple(tX.shape[-2:]), interpolate_mode='bilinear')
    return tCam[:, 0].detach().cpu()


class _Probabilities(nn.Module):
    """The model's softmax probabilities: occlusion and deletion curves measure a probability, not a logit."""

    def __init__(self, oModel: nn.Module) -> None:
        super().__init__()
        self.oModel = oModel

    def forward(self, tX: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.oModel(tX), dim=1)


def _CheckCovered(size: int, patchSize: int, stride: int) -> None:
    if patchSize < 1 or stride < 1 or patchSize > size:
        raise ValueError(f'patchSize must be in [1, {size}] and stride >= 1; got {patchSize} and {stride}.')
    if (size - patchSize) % stride:
        raise ValueError(f'Patches of {patchSize} at stride {stride} leave the last {(size - patchSize) % stride} '
                         f'row(s) of a {size}-pixel image uncovered: pick them so that (size - patchSize) % stride '
                         f'== 0 (e.g. patchSize {patchSize}, stride {_Divisor(size - patchSize, stride)}).')


def _Divisor(valGap: int, stride: int) -> int:
    return max(ii for ii in range(1, stride + 1) if valGap % ii == 0)


def OcclusionMaps(oModel: nn.Module, tX: torch.Tensor, vTarget: torch.Tensor | Sequence[int], patchSize: int = 8,
                  stride: int = 4, baseline: float = 0.0, batchSize: int = 256) -> torch.Tensor:
    """Occlusion sensitivity, ``N x H x W`` (on the CPU): each square patch (all channels) is replaced by ``baseline``
    in turn; a pixel's value is the mean, over the patches that cover it, of the drop of the target's probability.

    ``baseline=0`` in standardized units is the training mean color. The patches must tile the image exactly:
    ``(H - patchSize) % stride == 0`` (same for W).
    """
    tX, vTarget = _Prepare(oModel, tX, vTarget)
    for size in tX.shape[-2:]:
        _CheckCovered(int(size), patchSize, stride)
    numChn = tX.shape[1]
    with EvalMode(oModel), torch.no_grad():
        tAttr = Occlusion(_Probabilities(oModel)).attribute(
            tX, sliding_window_shapes=(numChn, patchSize, patchSize), strides=(numChn, stride, stride),
            baselines=float(baseline), target=vTarget, perturbations_per_eval=max(1, batchSize // len(tX)))
    return tAttr[:, 0].detach().cpu()  #<! The same value in every channel: the patch covers all of them


def EdgeMaps(tX: torch.Tensor) -> torch.Tensor:
    """A map that knows nothing of the model: the Sobel gradient magnitude of the images (max over channels).
    Adebayo et al. (2018) found that some attribution maps look like this one."""
    tKernel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    tK = torch.stack([tKernel, tKernel.T])[:, None]  #<! 2 x 1 x 3 x 3: d/dx, d/dy
    numImg, numChn = tX.shape[:2]
    tG = F.conv2d(F.pad(tX.detach().float().cpu().reshape(-1, 1, *tX.shape[-2:]), (1, 1, 1, 1), mode='replicate'),
                  tK)
    return tG.norm(dim=1).reshape(numImg, numChn, *tX.shape[-2:]).amax(dim=1)


# ------------------------------------------------------------------------------------------------
# Sanity checks (Adebayo et al. 2018)
# ------------------------------------------------------------------------------------------------
def CascadingRandomization(oModel: nn.Module, lStages: Sequence[Sequence[str]],
                           seed: int = 0) -> Iterator[tuple[str, nn.Module]]:
    """Model randomization, cascading from the top: yields ``(stageName, model)`` for each stage of ``lStages``
    (lists of module names, top first), where the model is a copy of ``oModel`` with that stage AND every stage
    before it in the list re-initialized (``reset_parameters``: weights, biases, BatchNorm's statistics).

    The stage's name is its modules' names joined by ``+``. The copies are in eval mode; ``oModel`` is not changed.
    """
    dModules = dict(oModel.named_modules())
    lMissing = [name for lNames in lStages for name in lNames if name not in dModules]
    if lMissing:
        raise ValueError(f'The model has no module named {lMissing}; names are those of model.named_modules().')
    oDevice = ModelDevice(oModel)
    # The draws happen on a CPU copy, from the CPU generator alone: the same random weights on every device, and the
    # caller's random streams (CPU and accelerator) untouched
    oRandom = copy.deepcopy(oModel).cpu().eval()
    dRandom = dict(oRandom.named_modules())
    oGen = torch.Generator().manual_seed(seed)
    for lNames in lStages:
        for name in lNames:
            for oSub in dRandom[name].modules():
                if hasattr(oSub, 'reset_parameters'):
                    with torch.random.fork_rng(devices=[]):
                        torch.default_generator.manual_seed(int(torch.randint(0, 2 ** 31 - 1, (1,), generator=oGen)))
                        oSub.reset_parameters()
                if isinstance(oSub, nn.modules.batchnorm._BatchNorm):
                    oSub.reset_running_stats()
        yield '+'.join(lNames), copy.deepcopy(oRandom).to(oDevice)


def MapRankCorrelation(tMapsA: torch.Tensor, tMapsB: torch.Tensor, useAbs: bool = True) -> np.ndarray:
    """Spearman rank correlation between two maps of each image (``N x H x W`` each), one value per image.

    ``useAbs`` compares absolute values, as Adebayo et al. (2018) do (a sign flip is not a different explanation).
    A constant map has no ranking: its correlation is NaN.
    """
    if tMapsA.shape != tMapsB.shape or tMapsA.ndim != 3:
        raise ValueError(f'Both map batches must be N x H x W of one shape; got {tuple(tMapsA.shape)} and '
                         f'{tuple(tMapsB.shape)}.')
    mA, mB = (t.detach().float().cpu().flatten(1).numpy() for t in (tMapsA, tMapsB))
    if useAbs:
        mA, mB = np.abs(mA), np.abs(mB)
    vRho = np.full(len(mA), np.nan)
    for ii in range(len(mA)):
        if np.ptp(mA[ii]) > 0 and np.ptp(mB[ii]) > 0:
            vRho[ii] = scipy.stats.spearmanr(mA[ii], mB[ii]).statistic
    return vRho


# ------------------------------------------------------------------------------------------------
# Faithfulness: deletion and insertion (Petsiuk et al. 2018)
# ------------------------------------------------------------------------------------------------
def DeletionCurves(oModel: nn.Module, tX: torch.Tensor, tMaps: torch.Tensor, vTarget: torch.Tensor | Sequence[int],
                   mode: str = 'deletion', numSteps: int = 16, baseline: float = 0.0,
                   batchSize: int = 512, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The target's probability as pixels are removed (``'deletion'``: set to ``baseline``, most important first)
    or revealed (``'insertion'``: the image starts as ``baseline`` everywhere), in the order of ``tMaps``
    (``N x H x W``, higher = more important). Ties (the zeros of a Grad-CAM map, the cells of an occlusion map) are
    broken in a random order drawn from ``seed``, the same for every map: a raster order would sweep the image.

    Returns ``vFrac`` (``numSteps + 1`` fractions of pixels changed, 0 to 1) and ``mProb`` (``N x (numSteps + 1)``),
    on the CPU. A faithful map gives a low area under the deletion curve and a high one under the insertion curve.
    """
    if mode not in CURVE_MODES:
        raise ValueError(f'mode must be one of {CURVE_MODES}, got {mode!r}.')
    if numSteps < 1:
        raise ValueError(f'numSteps must be at least 1, got {numSteps}.')
    tX, vTarget = _Prepare(oModel, tX, vTarget)
    numImg, numChn, numRows, numCols = tX.shape
    if tuple(tMaps.shape) != (numImg, numRows, numCols):
        raise ValueError(f'tMaps must be N x H x W = {(numImg, numRows, numCols)}, got {tuple(tMaps.shape)}.')
    numPix = numRows * numCols
    vFrac = torch.linspace(0, 1, numSteps + 1)
    vNumChanged = torch.round(vFrac * numPix).long()
    # Rank of each pixel in its image's order (0 = most important); a pixel is changed at step s if rank < count[s]
    mTieBreak = torch.argsort(torch.rand(numImg, numPix, generator=torch.Generator().manual_seed(seed)), dim=1)
    mValues = tMaps.detach().float().cpu().flatten(1).gather(1, mTieBreak)  #<! The pixels in a random order...
    mOrder = mTieBreak.gather(1, torch.argsort(mValues, dim=1, descending=True, stable=True))  #<! ...then by value
    mRank = torch.empty_like(mOrder)
    mRank.scatter_(1, mOrder, torch.arange(numPix).expand(numImg, -1).contiguous())
    tChanged = (mRank[:, None, :] < vNumChanged[None, :, None]).view(numImg, numSteps + 1, 1, numRows, numCols)
    if mode == 'insertion':
        tChanged = ~tChanged  #<! Insertion: the pixels not yet revealed are the ones at the baseline
    tChanged = tChanged.to(tX.device)
    mProb = torch.empty(numImg, numSteps + 1)
    with EvalMode(oModel), torch.no_grad():
        numPerBatch = max(1, batchSize // (numSteps + 1))
        for start in range(0, numImg, numPerBatch):
            tXb = tX[start:start + numPerBatch, None]
            tSteps = torch.where(tChanged[start:start + numPerBatch], torch.full_like(tXb, baseline), tXb)
            mP = torch.softmax(oModel(tSteps.flatten(0, 1)), dim=1).view(len(tXb), numSteps + 1, -1)
            vT = vTarget[start:start + numPerBatch]
            mProb[start:start + numPerBatch] = mP.gather(2, vT[:, None, None].expand(-1, numSteps + 1, 1))[..., 0].cpu()
    return vFrac, mProb


def CurveAuc(vFrac: torch.Tensor, mProb: torch.Tensor) -> np.ndarray:
    """Area under each row's curve (trapezoid rule over the fractions), one value per image."""
    return torch.trapezoid(mProb, vFrac, dim=-1).numpy()


def RandomMaps(numImg: int, numRows: int, numCols: int, seed: int = 0, blockSize: int = 1) -> torch.Tensor:
    """Maps of uniform noise: a random order, the reference every attribution map must beat. With ``blockSize`` > 1
    the noise is drawn per ``blockSize x blockSize`` block, so the order removes whole blocks: a reference as
    spatially coherent as a coarse map (a random order of single pixels scatters holes over the whole image)."""
    if blockSize < 1 or numRows % blockSize or numCols % blockSize:
        raise ValueError(f'blockSize must be a positive divisor of the map size {numRows} x {numCols}, got {blockSize}.')
    tNoise = torch.rand(numImg, 1, numRows // blockSize, numCols // blockSize,
                        generator=torch.Generator().manual_seed(seed))
    return F.interpolate(tNoise, scale_factor=blockSize, mode='nearest')[:, 0]
