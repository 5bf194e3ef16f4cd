"""Plots of the course. Every function returns what it drew on and can draw into given axes / figure."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.ticker import LogFormatter, MaxNLocator

ArrayLike = np.ndarray | torch.Tensor | Sequence


def IntegerTicks(hA: Axes, axis: str = 'x') -> Axes:
    """Ticks at whole numbers only on ``axis`` ('x', 'y' or 'both'): epochs, steps and counts are never 1.5."""
    for name in ('x', 'y') if axis == 'both' else (axis,):
        getattr(hA, f'{name}axis').set_major_locator(MaxNLocator(integer=True))
    return hA


class _PlainLogFormatter(LogFormatter):
    """matplotlib's LogFormatter (which picks the minor ticks worth a label) writing every label as a plain number."""

    def _num_to_string(self, x: float, vmin: float, vmax: float) -> str:
        return f'{x:g}'


def PlainLogTicks(hA: Axes, axis: str = 'y') -> Axes:
    """Plain numbers (2, 3, 50, 0.01) on a log ``axis`` ('x', 'y' or 'both'), on the major and the labelled minor
    ticks, instead of matplotlib's mix of ``10^1`` and ``2 x 10^1``. Call it after the axis is set to log scale."""
    for name in ('x', 'y') if axis == 'both' else (axis,):
        oAxis = getattr(hA, f'{name}axis')
        if oAxis.get_scale() != 'log':
            raise ValueError(f'PlainLogTicks: the {name} axis is {oAxis.get_scale()!r}, not log; set its scale first '
                             f'(hA.set_{name}scale("log")).')
        oAxis.set_major_formatter(_PlainLogFormatter(labelOnlyBase=False))
        oAxis.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    return hA


def _ToNumpy(mX: ArrayLike) -> np.ndarray:
    if torch.is_tensor(mX):
        return mX.detach().cpu().numpy()
    return np.asarray(mX)


def GridAxes(numImg: int, numCols: int | None, hF: Figure | SubFigure | None, cellSize: float = 1.6,
            aspect: float = 1.0) -> tuple[Figure | SubFigure, np.ndarray]:
    """A grid of ``numImg`` axes (``numCols`` per row, default about square) in ``hF`` or a new figure.

    Returns the figure and the ``numImg`` axes in reading order; the unused cells of the last row are hidden.
    """
    # `aspect` (height / width of one image) sizes the cells so wide images leave no empty bands
    numCols = numCols or min(numImg, int(np.ceil(np.sqrt(numImg))))
    numRows = int(np.ceil(numImg / numCols))
    if hF is None:
        hF = plt.figure(figsize=(cellSize * numCols, (cellSize * aspect + 0.3) * numRows), layout='constrained')
    vHa = np.atleast_1d(hF.subplots(numRows, numCols, squeeze=False).ravel())
    for hA in vHa[numImg:]:
        hA.set_axis_off()
    return hF, vHa[:numImg]


def _DisplayImages(tX: ArrayLike, vMean: Sequence[float] | None, vStd: Sequence[float] | None) -> np.ndarray:
    """N x C x H x W images, the ``Normalize(vMean, vStd)`` undone, as N x H x W (x C) arrays in [0, 1] for imshow."""
    tX = torch.as_tensor(_ToNumpy(tX), dtype=torch.float32)
    if tX.ndim != 4:
        raise ValueError(f'tX must be N x C x H x W, got shape {tuple(tX.shape)}.')
    if (vMean is None) != (vStd is None):
        raise ValueError('Give both vMean and vStd (the values of the Normalize transform) or neither.')
    if vMean is not None:
        tX = tX * torch.as_tensor(vStd).view(1, -1, 1, 1) + torch.as_tensor(vMean).view(1, -1, 1, 1)
    mImgs = tX.clamp(0, 1).permute(0, 2, 3, 1).numpy()
    return mImgs[..., 0] if mImgs.shape[-1] == 1 else mImgs


def _ShowImage(hA: Axes, mI: np.ndarray, title: str | None) -> None:
    hA.imshow(mI, cmap='gray' if mI.ndim == 2 else None)
    hA.set_xticks([])
    hA.set_yticks([])
    if title:
        hA.set_title(title, fontsize=9)


def PlotImages(mX: ArrayLike, vY: ArrayLike | None, numImg: int, lClasses: Sequence[str] | None = None,
               canvasRows: int | None = None, canvasCols: int | None = None,
               tuImgSize: tuple[int, ...] = (28, 28), randomChoice: bool = True, seed: int | None = None,
               hF: Figure | SubFigure | None = None) -> Figure | SubFigure:
    """Show ``numImg`` images from rows of ``mX`` with their labels (MNIST, Fashion-MNIST, CIFAR-10, ...).

    ``mX`` is N x D (each row a flattened image, reshaped to ``tuImgSize``) or N x H x W (x C).
    For CIFAR-10 rows use ``tuImgSize=(32, 32, 3)`` (``dsTrain.data`` works as it is).
    ``canvasRows`` / ``canvasCols`` set the grid (default: about square).
    """
    mX = _ToNumpy(mX)
    numSamples = mX.shape[0]
    if numImg > numSamples:
        raise ValueError(f'numImg={numImg} is larger than the number of images ({numSamples}).')
    if mX.ndim == 2:
        if int(np.prod(tuImgSize)) != mX.shape[1]:
            raise ValueError(f'Rows of length {mX.shape[1]} cannot be reshaped to tuImgSize={tuImgSize}.')
        mX = mX.reshape(numSamples, *tuImgSize)
    vY = None if vY is None else _ToNumpy(vY)
    vIdx = (np.random.default_rng(seed).choice(numSamples, numImg, replace=False) if randomChoice
            else np.arange(numImg))
    if canvasRows is not None and canvasCols is None:
        canvasCols = int(np.ceil(numImg / canvasRows))
    hF, vHa = GridAxes(numImg, canvasCols, hF)
    for hA, idx in zip(vHa, vIdx):
        title = None
        if vY is not None:
            title = lClasses[int(vY[idx])] if lClasses is not None else str(vY[idx])
        _ShowImage(hA, mX[idx], title)
    return hF


# The name FixelCourses uses, kept so that code written for it runs unchanged
PlotMnistImages = PlotImages


def PlotLabelsHistogram(vY: ArrayLike, lClasses: Sequence[str] | None = None, xLabelRot: int | None = None,
                        hA: Axes | None = None) -> Axes:
    """Bar plot of the number of samples per label (all labels shown, also the missing ones)."""
    vY = _ToNumpy(vY).astype(np.int64).ravel()
    numClasses = len(lClasses) if lClasses is not None else int(vY.max()) + 1
    vCounts = np.bincount(vY, minlength=numClasses)
    if hA is None:
        _, hA = plt.subplots(figsize=(8, 4), layout='constrained')
    hA.bar(np.arange(numClasses), vCounts, width=0.8, align='center', color='tab:blue', edgecolor='black')
    hA.set_xticks(np.arange(numClasses), lClasses if lClasses is not None else np.arange(numClasses),
                  rotation=xLabelRot or 0)
    hA.set_xlabel('Class')
    hA.set_ylabel('Number of Samples')
    hA.set_title('Histogram of Classes / Labels')
    hA.grid(axis='y', alpha=0.3)
    return hA


def PlotTrainResults(lTrainLoss: Sequence[float], lTrainScore: Sequence[float], lValLoss: Sequence[float],
                     lValScore: Sequence[float], lLearnRate: Sequence[float] | None = None,
                     scoreName: str = 'Score', hF: Figure | SubFigure | None = None,
                     scoreLabels: tuple[str, str] = ('Train', 'Validation')) -> Figure | SubFigure:
    """Loss and score per epoch (train vs validation), plus the learning rate schedule if given.

    ``lLearnRate`` may hold one value per epoch or one per optimizer step (``TrainModel`` with a
    per-batch scheduler); it is drawn on its own axis in epochs either way. ``scoreLabels`` names the two score
    curves, e.g. when the training score is a mean over batches and the validation score a global one.
    """
    numAxes = 3 if lLearnRate else 2
    if hF is None:
        hF = plt.figure(figsize=(5 * numAxes, 4), layout='constrained')
    vHa = hF.subplots(1, numAxes)
    vEpoch = np.arange(1, len(lTrainLoss) + 1)
    bestIdx = int(np.argmax(lValScore)) if len(lValScore) else None
    for hA, lTrain, lVal, name, tuLabels in ((vHa[0], lTrainLoss, lValLoss, 'Loss', ('Train', 'Validation')),
                                             (vHa[1], lTrainScore, lValScore, scoreName, scoreLabels)):
        hA.plot(vEpoch, lTrain, lw=2, marker='.', label=tuLabels[0])
        hA.plot(vEpoch, lVal, lw=2, marker='.', label=tuLabels[1])
        if bestIdx is not None:
            hA.axvline(bestIdx + 1, color='gray', ls='--', lw=1, label=f'Best (epoch {bestIdx + 1})')
        IntegerTicks(hA)
        hA.set_xlabel('Epoch')
        hA.set_ylabel(name)
        hA.set_title(f'{name} per Epoch')
        hA.grid(alpha=0.3)
        hA.legend()
    if lLearnRate:
        vX = np.linspace(0, len(vEpoch), len(lLearnRate), endpoint=False) + (
            1 if len(lLearnRate) == len(vEpoch) else 0)
        vHa[2].plot(vX, lLearnRate, lw=2)
        IntegerTicks(vHa[2])
        vHa[2].set_xlabel('Epoch')
        vHa[2].set_ylabel('Learning Rate')
        vHa[2].set_title('Learning Rate Schedule')
        vHa[2].grid(alpha=0.3)
    return hF


def PlotConfusionMatrix(vY: ArrayLike, vYPred: ArrayLike, lClasses: Sequence[str] | None = None,
                        normalize: str | None = 'true', hA: Axes | None = None) -> tuple[Axes, np.ndarray]:
    """Confusion matrix (rows: true label, columns: predicted label); returns ``(hA, mConfMat)``.

    ``normalize``: ``'true'`` (each row sums to 1: per-class recall on the diagonal), ``'pred'``,
    ``'all'`` or ``None`` (counts).
    """
    vY = _ToNumpy(vY).astype(np.int64).ravel()
    vYPred = _ToNumpy(vYPred).astype(np.int64).ravel()
    if vY.shape != vYPred.shape:
        raise ValueError(f'vY and vYPred must have the same length, got {vY.shape[0]} and {vYPred.shape[0]}.')
    numClasses = len(lClasses) if lClasses is not None else int(max(vY.max(), vYPred.max())) + 1
    mConfMat = np.bincount(vY * numClasses + vYPred, minlength=numClasses ** 2).reshape(numClasses, numClasses)
    mConfMat = mConfMat.astype(np.float64)
    dNormAxis = {'true': 1, 'pred': 0, 'all': None}
    if normalize is not None:
        if normalize not in dNormAxis:
            raise ValueError(f"normalize must be 'true', 'pred', 'all' or None, got {normalize!r}.")
        mDenom = mConfMat.sum(axis=dNormAxis[normalize], keepdims=normalize != 'all')
        mConfMat = np.divide(mConfMat, mDenom, out=np.zeros_like(mConfMat), where=mDenom > 0)
    if hA is None:
        _, hA = plt.subplots(figsize=(0.7 * numClasses + 2, 0.7 * numClasses + 1.5), layout='constrained')
    hIm = hA.imshow(mConfMat, cmap='Blues')
    hA.figure.colorbar(hIm, ax=hA, fraction=0.046, pad=0.04)
    valThr = mConfMat.max() / 2
    for ii in range(numClasses):
        for jj in range(numClasses):
            hA.text(jj, ii, f'{mConfMat[ii, jj]:.2f}' if normalize else f'{int(mConfMat[ii, jj])}',
                    ha='center', va='center', fontsize=7, color='white' if mConfMat[ii, jj] > valThr else 'black')
    vTicks = np.arange(numClasses)
    lNames = list(lClasses) if lClasses is not None else [str(ii) for ii in vTicks]
    hA.set_xticks(vTicks, lNames, rotation=45, ha='right')
    hA.set_yticks(vTicks, lNames)
    hA.set_xlabel('Predicted Label')
    hA.set_ylabel('True Label')
    hA.set_title('Confusion Matrix' + (f' (normalized: {normalize})' if normalize else ''))
    return hA, mConfMat


def PlotImageGrid(tX: ArrayLike, vY: ArrayLike | None = None, lClasses: Sequence[str] | None = None,
                  vMean: Sequence[float] | None = None, vStd: Sequence[float] | None = None,
                  numCols: int | None = 8, vYPred: ArrayLike | None = None,
                  hF: Figure | SubFigure | None = None) -> Figure | SubFigure:
    """Show a batch of image tensors (N x C x H x W), undoing ``Normalize(vMean, vStd)`` first.

    With ``vYPred`` each title reads ``true / predicted``, red where they differ.
    """
    mImgs = _DisplayImages(tX, vMean, vStd)
    vY = None if vY is None else _ToNumpy(vY)
    vYPred = None if vYPred is None else _ToNumpy(vYPred)
    hF, vHa = GridAxes(len(mImgs), numCols, hF)

    def LabelName(label: int) -> str:
        return lClasses[int(label)] if lClasses is not None else str(int(label))

    for ii, hA in enumerate(vHa):
        title = None if vY is None else LabelName(vY[ii])
        if vYPred is not None:
            title = f'{title} / {LabelName(vYPred[ii])}' if title else LabelName(vYPred[ii])
        _ShowImage(hA, mImgs[ii], title)
        if vY is not None and vYPred is not None and int(vY[ii]) != int(vYPred[ii]):
            hA.title.set_color('red')
    return hF


def PlotFeatureMaps(tMaps: ArrayLike, lTitles: Sequence[str] | None = None, numCols: int | None = None,
                    cmap: str = 'gray', showColorbar: bool = False, sharedScale: bool = False,
                    hF: Figure | SubFigure | None = None) -> Figure | SubFigure:
    """Show 2D maps (``N x H x W``, e.g. the channels of a convolution output), each with its own color scale, or
    one scale for all with ``sharedScale`` (then a constant map shows its value's colour, not a blank square; add
    ``showColorbar`` to read it).

    Signed maps (such as Sobel responses) keep their sign: nothing is clipped.
    """
    mMaps = _ToNumpy(tMaps)
    if mMaps.ndim == 2:
        mMaps = mMaps[None]
    if mMaps.ndim != 3:
        raise ValueError(f'tMaps must be N x H x W (or H x W), got shape {mMaps.shape}.')
    if lTitles is not None and len(lTitles) != len(mMaps):
        raise ValueError(f'Got {len(lTitles)} titles for {len(mMaps)} maps.')
    hF, vHa = GridAxes(len(mMaps), numCols, hF, cellSize=2.4, aspect=mMaps.shape[1] / mMaps.shape[2])
    dScale = dict(vmin=float(mMaps.min()), vmax=float(mMaps.max())) if sharedScale else {}
    for ii, hA in enumerate(vHa):
        hIm = hA.imshow(mMaps[ii], cmap=cmap, **dScale)
        hA.set_xticks([])
        hA.set_yticks([])
        if lTitles is not None:
            hA.set_title(lTitles[ii], fontsize=9)
        if showColorbar:
            hA.figure.colorbar(hIm, ax=hA, fraction=0.046, pad=0.04)
    return hF


def PlotMatrix(mX: ArrayLike, title: str | None = None, valFormat: str = '{:g}', cmap: str = 'Blues',
               hA: Axes | None = None) -> Axes:
    """Show a small matrix as a heat map with every value written in its cell (for worked examples)."""
    mX = _ToNumpy(mX)
    if mX.ndim != 2:
        raise ValueError(f'mX must be a 2D matrix, got shape {mX.shape}.')
    if hA is None:
        _, hA = plt.subplots(figsize=(0.6 * mX.shape[1] + 1, 0.6 * mX.shape[0] + 0.8), layout='constrained')
    hA.imshow(mX, cmap=cmap)
    valMid = (np.nanmax(mX) + np.nanmin(mX)) / 2
    for (ii, jj), valX in np.ndenumerate(mX):
        hA.text(jj, ii, valFormat.format(valX), ha='center', va='center',
                color='white' if valX > valMid else 'black')
    hA.set_xticks([])
    hA.set_yticks([])
    if title:
        hA.set_title(title)
    return hA


def PlotClassProbabilities(tX: ArrayLike, mProb: ArrayLike, vY: ArrayLike | None = None,
                           lClasses: Sequence[str] | None = None, vMean: Sequence[float] | None = None,
                           vStd: Sequence[float] | None = None, numCols: int = 2,
                           hF: Figure | SubFigure | None = None) -> Figure | SubFigure:
    """Each image (N x C x H x W, un-normalized with ``vMean`` / ``vStd``) beside a bar chart of its class
    probabilities (``mProb``: N x numClasses, rows summing to 1). The predicted class is orange, or red when it is
    wrong; the true class (``vY``) is outlined in black.
    """
    mImgs = _DisplayImages(tX, vMean, vStd)
    mProb = _ToNumpy(mProb).astype(np.float64)
    if mProb.ndim != 2 or mProb.shape[0] != mImgs.shape[0]:
        raise ValueError(f'mProb must be N x numClasses with one row per image: got {mProb.shape} for '
                         f'{mImgs.shape[0]} images.')
    if np.any(mProb < 0) or not np.allclose(mProb.sum(axis=1), 1, atol=1e-4):
        raise ValueError('mProb rows must be probabilities (non-negative, summing to 1): apply softmax to logits.')
    if lClasses is not None and len(lClasses) != mProb.shape[1]:
        raise ValueError(f'Got {len(lClasses)} class names for {mProb.shape[1]} probability columns.')
    vY = None if vY is None else _ToNumpy(vY).astype(np.int64)
    numImg, numClasses = mProb.shape
    numCols = max(1, min(numCols, numImg))
    numRows = int(np.ceil(numImg / numCols))
    lNames = list(lClasses) if lClasses is not None else [str(ii) for ii in range(numClasses)]
    if hF is None:
        hF = plt.figure(figsize=(5.6 * numCols, 0.3 * numClasses * numRows + 0.7 * numRows), layout='constrained')
    mHa = hF.subplots(numRows, 2 * numCols, squeeze=False, width_ratios=[1, 1.8] * numCols)
    for ii in range(numRows * numCols):
        hAImg, hABar = mHa[ii // numCols, 2 * (ii % numCols)], mHa[ii // numCols, 2 * (ii % numCols) + 1]
        if ii >= numImg:
            hAImg.set_axis_off()
            hABar.set_axis_off()
            continue
        predIdx = int(np.argmax(mProb[ii]))
        isWrong = vY is not None and predIdx != int(vY[ii])
        _ShowImage(hAImg, mImgs[ii], None if vY is None else f'True: {lNames[int(vY[ii])]}')
        lColors = ['tab:blue'] * numClasses
        lColors[predIdx] = 'tab:red' if isWrong else 'tab:orange'
        vBars = hABar.barh(np.arange(numClasses), mProb[ii], color=lColors)
        if vY is not None:
            vBars[int(vY[ii])].set_edgecolor('black')
            vBars[int(vY[ii])].set_linewidth(1.5)
        hABar.set_yticks(np.arange(numClasses), lNames, fontsize=9)  #<! Readable at the notebook's width
        hABar.invert_yaxis()  #<! Class 0 on top, as in the list of classes
        hABar.set_xlim(0, 1)
        hABar.tick_params(axis='x', labelsize=8)
        hABar.set_title(f'p = {mProb[ii, predIdx]:.2f} {lNames[predIdx]}', fontsize=10,
                        color='red' if isWrong else 'black')
    return hF


# ------------------------------------------------------------------------------------------------
# Diagrams of convolution (lessons 01 and 02): filters and maps, the kernel flip, sliding windows, groups
# ------------------------------------------------------------------------------------------------
def _CheckPositiveInts(**dValues: int) -> None:
    for name, value in dValues.items():
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f'{name} must be a positive int, got {value!r}.')


def PlotFiltersToMaps(numChnIn: int = 3, numFilters: int = 2, kernelSize: int = 3,
                      hA: Axes | None = None) -> Axes:
    """Diagram of ``Conv2d(numChnIn, numFilters, kernelSize)``: each filter spans EVERY input channel
    (``numChnIn x k x k``) and sums them into ONE output map, so ``numFilters`` filters make ``numFilters`` maps.

    The patches carry a ``gid`` (``'input-channel'``, ``'filter-slice'``, ``'output-map'``) to find them.
    """
    _CheckPositiveInts(numChnIn=numChnIn, numFilters=numFilters, kernelSize=kernelSize)
    if numChnIn > 8 or numFilters > 8 or kernelSize > 7:
        raise ValueError(f'The diagram is readable up to 8 channels, 8 filters and 7 x 7 kernels, got '
                         f'numChnIn={numChnIn}, numFilters={numFilters}, kernelSize={kernelSize}.')
    rowHeight, imgSize, numPixels = 3.0, 4.0, 12  #<! The input is drawn as numPixels x numPixels
    inDepth, filterDepth = 0.3, 0.15  #<! Offset between stacked channels, so a stack reads as a block
    filterSize, mapSize = 0.3 * kernelSize, 2.2
    totalHeight = max(numFilters * rowHeight, imgSize + inDepth * numChnIn + 1)
    if hA is None:
        _, hA = plt.subplots(figsize=(10, 0.55 * totalHeight + 1), layout='constrained')
    vColors = plt.get_cmap('tab10')(np.arange(numFilters) % 10)
    windowSize = kernelSize * imgSize / numPixels

    # Input: numChnIn channels (front = channel 0), the window of output pixel (0, 0) outlined on each
    inY0 = (totalHeight - imgSize - inDepth * (numChnIn - 1)) / 2
    for cc in reversed(range(numChnIn)):
        x0, y0 = inDepth * cc, inY0 + inDepth * cc
        hA.add_patch(plt.Rectangle((x0, y0), imgSize, imgSize, fc=plt.get_cmap('Greys')(0.1 + 0.08 * cc), ec='black',
                                   lw=1, gid='input-channel'))
        hA.add_patch(plt.Rectangle((x0, y0 + imgSize - windowSize), windowSize, windowSize, fill=False, ec='red',
                                   lw=1.5))
    inRight = imgSize + inDepth * (numChnIn - 1)
    hA.text(inRight / 2, inY0 - 0.3, f'Input\n{numChnIn} x H x W', ha='center', va='top', fontsize=9)

    filterX0 = inRight + 2.5
    filterRight = filterX0 + filterSize + filterDepth * (numChnIn - 1)
    mapX0 = filterRight + 2.8
    for oo in range(numFilters):
        rowY = totalHeight - (oo + 0.5) * totalHeight / numFilters  #<! Center of this filter's row
        y0 = rowY - (filterSize + filterDepth * (numChnIn - 1)) / 2
        for cc in reversed(range(numChnIn)):
            hA.add_patch(plt.Rectangle((filterX0 + filterDepth * cc, y0 + filterDepth * cc), filterSize, filterSize,
                                       fc=vColors[oo], alpha=0.9 - 0.5 * cc / max(numChnIn - 1, 1), ec='black',
                                       lw=0.8, gid='filter-slice'))
        for kk in range(1, kernelSize):  #<! The k x k weights of the front slice
            valPos = kk * filterSize / kernelSize
            hA.plot([filterX0 + valPos] * 2, [y0, y0 + filterSize], color='black', lw=0.4)
            hA.plot([filterX0, filterX0 + filterSize], [y0 + valPos] * 2, color='black', lw=0.4)
        hA.text(filterX0 + filterSize / 2, y0 - 0.15, f'Filter {oo}\n{numChnIn} x {kernelSize} x {kernelSize}',
                ha='center', va='top', fontsize=8)
        hA.annotate('', xy=(filterX0 - 0.15, rowY), xytext=(inRight + 0.15, totalHeight / 2),
                    arrowprops=dict(arrowstyle='->', color='gray', lw=1))
        # The map of this filter: its top left pixel sums the products over the red window on ALL channels
        hA.add_patch(plt.Rectangle((mapX0, rowY - mapSize / 2), mapSize, mapSize, fc=vColors[oo], alpha=0.25,
                                   ec=vColors[oo], lw=2, gid='output-map'))
        pixelSize = mapSize / (numPixels - kernelSize + 1)
        hA.add_patch(plt.Rectangle((mapX0, rowY + mapSize / 2 - pixelSize), pixelSize, pixelSize, fc='red',
                                   ec='black', lw=0.5))
        hA.annotate('', xy=(mapX0 - 0.15, rowY), xytext=(filterRight + 0.15, rowY),
                    arrowprops=dict(arrowstyle='->', color=vColors[oo], lw=2))
        hA.text((filterRight + mapX0) / 2, rowY + 0.15, f'sum over\n{numChnIn} channels', ha='center', va='bottom',
                fontsize=8)
        hA.text(mapX0 + mapSize + 0.2, rowY, f'Map {oo}', va='center', fontsize=9)
    hA.text(mapX0 + mapSize / 2, -0.1, f'Output\n{numFilters} x H\' x W\'', ha='center', va='top', fontsize=9)
    hA.set_xlim(-0.2, mapX0 + mapSize + 1.3)
    hA.set_ylim(-1.2, totalHeight + 0.2)
    hA.set_aspect('equal')
    hA.set_axis_off()
    hA.set_title(f'Conv2d({numChnIn}, {numFilters}, kernel_size={kernelSize}): {numFilters} filter'
                 f'{"s" if numFilters > 1 else ""} of {numChnIn} x {kernelSize} x {kernelSize} -> '
                 f'{numFilters} map{"s" if numFilters > 1 else ""}\n(the red window, on every channel, '
                 f'makes the red output pixel)', fontsize=10)
    return hA


def PlotKernelFlip(mK: ArrayLike, hF: Figure | SubFigure | None = None) -> Figure | SubFigure:
    """The flip that turns cross-correlation into convolution: ``K``, ``K`` flipped up-down, and flipped along
    both axes (rotated by 180 degrees). Each weight keeps its color, so its move can be followed.
    """
    mK = _ToNumpy(mK)
    if mK.ndim != 2:
        raise ValueError(f'mK must be a 2D kernel (k_h x k_w), got shape {mK.shape}.')
    numRows, numCols = mK.shape
    mIdx = np.arange(mK.size).reshape(mK.shape)  #<! Which weight sits where: follows the flips
    lPanels = [('K as is\n(cross-correlation: PyTorch)', mIdx), ('Flipped up-down', mIdx[::-1, :]),
               ('Flipped up-down and left-right\n= rotated 180° (convolution)', mIdx[::-1, ::-1])]
    if hF is None:
        hF = plt.figure(figsize=(3 * len(lPanels) * max(1, numCols / 3), 0.8 * numRows + 1.6), layout='constrained')
    vHa = hF.subplots(1, len(lPanels))
    hCmap = plt.get_cmap('tab20')
    for hA, (title, mPanelIdx) in zip(vHa, lPanels):
        hA.imshow(hCmap(mPanelIdx % 20), interpolation='nearest')
        for (ii, jj), idx in np.ndenumerate(mPanelIdx):
            srcRow, srcCol = divmod(int(idx), numCols)
            hA.text(jj, ii, f'K[{srcRow},{srcCol}]\n{mK[srcRow, srcCol]:g}', ha='center', va='center', fontsize=8)
        hA.set_xticks([])
        hA.set_yticks([])
        hA.set_title(title, fontsize=9)
    return hF


def PlotSlidingWindow(inSize: int, kernelSize: int, stride: int = 1, padding: int = 0, dilation: int = 1,
                      numPanels: int = 4, hF: Figure | SubFigure | None = None) -> tuple[Figure | SubFigure, np.ndarray]:
    """A ``K x K`` window (stride ``S``, dilation ``D``) sliding along the first row of a zero-padded ``I x I`` input.

    One panel per window position (at most ``numPanels``, the first and the last included), then the output
    grid. Input pixels that no window reads, such as the ones the floor in
    ``O = floor((I + 2P - D (K - 1) - 1) / S) + 1`` drops, are marked.
    Returns the figure and the coverage mask of the padded input (``True`` where a window reads the pixel).
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    _CheckPositiveInts(inSize=inSize, kernelSize=kernelSize, stride=stride, dilation=dilation, numPanels=numPanels)
    if not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ValueError(f'padding must be a non-negative int, got {padding!r}.')
    padSize = inSize + 2 * padding
    kernelSpan = dilation * (kernelSize - 1) + 1
    if kernelSpan > padSize:
        raise ValueError(f'The window spans {kernelSpan} pixels, more than the padded input ({padSize}): '
                         f'use a smaller kernel or dilation, or more padding.')
    outSize = (padSize - kernelSpan) // stride + 1
    vTaps = dilation * np.arange(kernelSize)  #<! Offsets of the taps inside the window
    vCovered1D = np.zeros(padSize, dtype=bool)
    for oo in range(outSize):
        vCovered1D[oo * stride + vTaps] = True
    mCovered = np.outer(vCovered1D, vCovered1D)  #<! The same windows along both axes
    mIsPad = np.ones((padSize, padSize), dtype=bool)
    mIsPad[padding:padding + inSize, padding:padding + inSize] = False
    numDropped = int((~mCovered & ~mIsPad).sum())

    vPositions = np.unique(np.round(np.linspace(0, outSize - 1, min(numPanels, outSize))).astype(int))
    if hF is None:
        hF = plt.figure(figsize=(2.6 * (len(vPositions) + 1), 3.3), layout='constrained')
    vHa = hF.subplots(1, len(vPositions) + 1)
    # Colors: 0 input, 1 padding, 2 pixel no window reads, 3 a tap of the current window
    hCmap = ListedColormap(['white', '#d9d9d9', '#f4a6a6', '#4c9be8'])
    for hA, oo in zip(vHa, vPositions):
        mCode = np.where(mIsPad, 1, np.where(mCovered, 0, 2))
        vWinTaps = oo * stride + vTaps
        mCode[np.ix_(vTaps, vWinTaps)] = 3  #<! Output pixel (0, oo): rows from 0, columns from oo * S
        hA.imshow(mCode, cmap=hCmap, vmin=-0.5, vmax=3.5)
        hA.add_patch(plt.Rectangle((oo * stride - 0.5, -0.5), kernelSpan, kernelSpan, fill=False, ec='#1f4e99', lw=2))
        hA.set_title(f'Output (0, {oo}): columns\n{oo * stride - padding} to {oo * stride + kernelSpan - 1 - padding}'
                     f' of the input', fontsize=9)
    mOutCode = np.zeros((outSize, outSize))
    mOutCode[0, vPositions] = 3
    vHa[-1].imshow(mOutCode, cmap=hCmap, vmin=-0.5, vmax=3.5)
    vHa[-1].set_title(f'Output: {outSize} x {outSize}\n(blue: the windows shown)', fontsize=9)
    for hA in vHa:
        numPix = hA.images[0].get_array().shape[0]
        hA.set_xticks(np.arange(-0.5, numPix), minor=True)
        hA.set_yticks(np.arange(-0.5, numPix), minor=True)
        hA.grid(which='minor', color='gray', lw=0.5)
        hA.tick_params(which='both', length=0, labelbottom=False, labelleft=False)
    lHandles = [Patch(fc=hCmap(3), label='Window taps'),
                Patch(fc=hCmap(1), ec='gray', label=f'Padding (P = {padding})'),
                Patch(fc=hCmap(2), label=f'Never read ({numDropped} input pixels)')]
    hF.legend(handles=lHandles, loc='outside lower center', ncols=3, fontsize=9)
    hF.suptitle(f'I = {inSize}, K = {kernelSize}, S = {stride}, P = {padding}, D = {dilation}: '
                f'O = ⌊({inSize} + {2 * padding} - {kernelSpan - 1} - 1) / {stride}⌋ + 1 = {outSize}', fontsize=10)
    return hF, mCovered


def PlotGroupedConv(numChnIn: int, numChnOut: int, groups: int = 1, hA: Axes | None = None) -> Axes:
    """Which input channels each output channel of ``Conv2d(numChnIn, numChnOut, k, groups=groups)`` reads.

    A line is one ``k x k`` kernel; the colors are the groups. ``groups=numChnIn`` is a depthwise convolution.
    The lines carry ``gid='connection'``.
    """
    _CheckPositiveInts(numChnIn=numChnIn, numChnOut=numChnOut, groups=groups)
    if numChnIn % groups or numChnOut % groups:
        raise ValueError(f'groups={groups} must divide both numChnIn={numChnIn} and numChnOut={numChnOut} '
                         f'(PyTorch requires it too).')
    if hA is None:
        _, hA = plt.subplots(figsize=(3, 0.35 * max(numChnIn, numChnOut) + 1.2), layout='constrained')
    numInPerGroup, numOutPerGroup = numChnIn // groups, numChnOut // groups
    vYIn = np.linspace(1, 0, numChnIn) if numChnIn > 1 else np.array([0.5])
    vYOut = np.linspace(1, 0, numChnOut) if numChnOut > 1 else np.array([0.5])
    vColors = plt.get_cmap('tab10')(np.arange(groups) % 10)
    for oo in range(numChnOut):
        gg = oo // numOutPerGroup
        for cc in range(gg * numInPerGroup, (gg + 1) * numInPerGroup):
            hA.plot([0, 1], [vYIn[cc], vYOut[oo]], color=vColors[gg], lw=1.2, alpha=0.8, gid='connection')
    hA.scatter(np.zeros(numChnIn), vYIn, s=60, c=vColors[np.arange(numChnIn) // numInPerGroup], ec='black', zorder=3)
    hA.scatter(np.ones(numChnOut), vYOut, s=60, c=vColors[np.arange(numChnOut) // numOutPerGroup], ec='black',
               zorder=3)
    hA.text(0, 1.06, 'In', ha='center', va='bottom', fontsize=9)
    hA.text(1, 1.06, 'Out', ha='center', va='bottom', fontsize=9)
    hA.set_xlim(-0.2, 1.2)
    hA.set_ylim(-0.08, 1.16)
    hA.set_axis_off()
    hA.set_title(f'groups = {groups}: {numChnOut * numInPerGroup} kernels\n(each output reads {numInPerGroup} of '
                 f'{numChnIn} inputs)', fontsize=9)
    return hA


def PlotPairedDifferences(lNames: Sequence[str], lResults: Sequence, xlabel: str = 'Difference',
                          title: str | None = None, valFormat: str = '{:+.3f}', hA: Axes | None = None) -> Axes:
    """The paired rule's results (``course_utils.PairedDifference``), one row per comparison: the mean difference as
    a dot, its confidence interval as a bar, and a line at 0. A bar that crosses 0 is a tie (grey); the others are
    coloured by their verdict (better: green, worse: red), and each row is labelled with its mean and verdict."""
    if len(lNames) != len(lResults):
        raise ValueError(f'Got {len(lNames)} names and {len(lResults)} paired results: give one name per comparison.')
    if len(lNames) == 0:
        raise ValueError('Nothing to plot: give at least one comparison.')
    if hA is None:
        _, hA = plt.subplots(figsize=(7.5, 0.9 + 0.6 * len(lNames)), layout='constrained')
    dColors = {'better': 'tab:green', 'worse': 'tab:red', 'tie': 'tab:gray'}
    vY = np.arange(len(lNames))[::-1]  #<! The first comparison on top
    for valY, oResult in zip(vY, lResults):
        color = dColors[oResult.verdict]
        hA.errorbar(oResult.meanDiff, valY, xerr=[[oResult.meanDiff - oResult.low], [oResult.high - oResult.meanDiff]],
                    fmt='o', color=color, capsize=5, lw=2)
        hA.annotate(f'{valFormat.format(oResult.meanDiff)} ({oResult.verdict})', (oResult.high, valY),
                    xytext=(6, 0), textcoords='offset points', va='center', fontsize=9, color=color)
    hA.axvline(0, color='k', lw=1, ls='--')
    hA.set_yticks(vY, lNames)
    hA.set_ylim(-0.6, len(lNames) - 0.4)
    vLow = np.array([o.low for o in lResults] + [0.0])
    vHigh = np.array([o.high for o in lResults] + [0.0])
    valPad = 0.1 * max(float(vHigh.max() - vLow.min()), 1e-6)
    hA.set_xlim(float(vLow.min()) - valPad, float(vHigh.max()) + 4 * valPad)  #<! Room for the labels on the right
    oResult = lResults[0]
    hA.set_xlabel(f'{xlabel} (mean of {oResult.numPairs} paired differences, {oResult.confidence:.0%} t interval)')
    hA.grid(axis='x', alpha=0.3)
    if title:
        hA.set_title(title)
    return hA


# ------------------------------------------------------------------------------------------------
# Normalization layers: which values share one mean and variance
# ------------------------------------------------------------------------------------------------
NORM_LAYER_NAMES = ('BatchNorm', 'LayerNorm', 'InstanceNorm', 'GroupNorm')


def _NormSharedMask(normType: str, tuShape: tuple[int, int, int], numGroups: int) -> np.ndarray:
    """Boolean ``N x C x HW`` mask of the values normalized together with the value at ``(0, 0, 0)``."""
    numN, numC, numHW = tuShape
    vN, vC = np.arange(numN)[:, None, None], np.arange(numC)[None, :, None]
    mAll = np.ones(tuShape, dtype=bool)
    match normType:
        case 'BatchNorm':     #<! One channel, over the batch and the pixels
            return mAll & (vC == 0)
        case 'LayerNorm':     #<! One sample, over the channels and the pixels
            return mAll & (vN == 0)
        case 'InstanceNorm':  #<! One sample and one channel, over the pixels
            return mAll & (vN == 0) & (vC == 0)
        case 'GroupNorm':     #<! One sample and one group of C / G channels, over the pixels
            return mAll & (vN == 0) & (vC < numC // numGroups)
    raise ValueError(f'Unknown normalization {normType!r}: use one of {NORM_LAYER_NAMES}.')


def PlotNormalizationAxes(lNormTypes: Sequence[str] = NORM_LAYER_NAMES, numGroups: int = 2,
                          tuShape: tuple[int, int, int] = (6, 6, 4), color: str = 'tab:blue',
                          hF: Figure | SubFigure | None = None) -> Figure | SubFigure:
    """The classic figure of normalization layers (Wu & He, 2018): a cube of feature maps per layer.

    Each cube holds ``N x C x (H, W)`` values (``tuShape``; H and W share one axis); the cells in ``color`` are the
    values that one mean and one variance are computed over. ``numGroups`` sets the GroupNorm groups (it must
    divide C). Returns the figure (one 3D axes per layer, titled by its name).
    """
    from matplotlib.colors import to_rgba

    numN, numC, numHW = tuShape
    if min(tuShape) < 1:
        raise ValueError(f'tuShape must hold 3 positive sizes (N, C, HW), got {tuShape}.')
    if numGroups < 1 or numC % numGroups:
        raise ValueError(f'numGroups must divide the number of channels C={numC}, got {numGroups}.')
    lMasks = [_NormSharedMask(normType, tuShape, numGroups) for normType in lNormTypes]  #<! Validates the names
    if hF is None:
        hF = plt.figure(figsize=(3.4 * len(lMasks), 3.4), layout='constrained')
    for plotIdx, (normType, mShared) in enumerate(zip(lNormTypes, lMasks)):
        hA = hF.add_subplot(1, len(lMasks), plotIdx + 1, projection='3d')
        # Voxel axes: x = C (to the right), y = N (into the page), z = H, W (up)
        mFilled = np.ones((numC, numN, numHW), dtype=bool)
        mSharedXyz = mShared.transpose(1, 0, 2)
        mFace = np.where(mSharedXyz[..., None], to_rgba(color), (0.93, 0.93, 0.93, 1.0))  #<! RGBA per cell
        hA.voxels(mFilled, facecolors=mFace, edgecolors=(0.2, 0.2, 0.2, 0.4), linewidth=0.4)
        hA.set_box_aspect((numC, numN, numHW))
        hA.view_init(elev=22, azim=-58)
        hA.set_axis_off()
        hA.text(numC / 2, -0.4, -0.4, 'C', ha='center', va='top', fontsize=11)
        hA.text(numC + 0.4, numN / 2, -0.4, 'N', ha='left', va='top', fontsize=11)
        hA.text(-0.3, 0, numHW / 2, 'H, W', ha='right', va='center', fontsize=11)
        title = f'{normType} (G = {numGroups})' if normType == 'GroupNorm' else normType
        hA.set_title(title)
    return hF


# ------------------------------------------------------------------------------------------------
# Attribution maps (the interpretability lesson)
# ------------------------------------------------------------------------------------------------
def MapColors(mMap: np.ndarray, cmap: str | None = None, clipPercentile: float = 99.0) -> dict:
    """``imshow`` arguments that draw one attribution map honestly: a signed map on a diverging scale with 0 in its
    middle (``RdBu_r``, symmetric limits), a non-negative one on ``inferno`` from 0. The limits are the
    ``clipPercentile`` of the absolute values (Smilkov et al. 2017 clip the few largest), so one pixel cannot wash
    the rest out. A constant zero map gets the limits [0, 1]."""
    mMap = np.asarray(mMap, dtype=float)
    valTop = float(np.percentile(np.abs(mMap), clipPercentile)) if mMap.size else 0.0
    valTop = valTop if valTop > 0 else (float(np.abs(mMap).max()) or 1.0)
    if (mMap < 0).any():
        return {'cmap': cmap or 'RdBu_r', 'vmin': -valTop, 'vmax': valTop}
    return {'cmap': cmap or 'inferno', 'vmin': 0.0, 'vmax': valTop}


def _ShowMap(hA: Axes, mMap: np.ndarray, mImg: np.ndarray | None, cmap: str | None, alpha: float):
    """The map alone, or over the gray image; the same colour scale either way (returned for a colour bar)."""
    dColors = MapColors(mMap, cmap)
    if mImg is not None:
        hA.imshow(mImg.mean(-1) if mImg.ndim == 3 else mImg, cmap='gray')
    hIm = hA.imshow(mMap, alpha=alpha if mImg is not None else 1.0, **dColors)
    hA.set_xticks([])
    hA.set_yticks([])
    return hIm


def PlotAttributionGrid(tX: ArrayLike, dMaps: dict[str, ArrayLike], vMean: Sequence[float] | None = None,
                        vStd: Sequence[float] | None = None, lRowTitles: Sequence[str] | None = None,
                        showOverlay: bool = True, cmap: str | None = None, alpha: float = 0.55,
                        cellSize: float = 1.7, hF: Figure | SubFigure | None = None) -> Figure | SubFigure:
    """A grid of methods by images: a row per image, its picture first, then one column per map of ``dMaps``
    (``{method name: N x H x W}``), each on its own colour scale (``MapColors``: diverging for a signed map, from 0
    for a non-negative one), drawn over the image (``showOverlay``) or alone. ``vMean`` / ``vStd`` undo the
    standardization for display. Returns the figure."""
    mImgs = _DisplayImages(tX, vMean, vStd)
    dNp = {name: _ToNumpy(tMaps) for name, tMaps in dMaps.items()}
    for name, mMaps in dNp.items():
        if mMaps.shape != mImgs.shape[:3]:
            raise ValueError(f'The maps of {name!r} must be N x H x W = {mImgs.shape[:3]}, got {mMaps.shape}.')
    if lRowTitles is not None and len(lRowTitles) != len(mImgs):
        raise ValueError(f'Got {len(lRowTitles)} row titles for {len(mImgs)} images.')
    numRows, numCols = len(mImgs), 1 + len(dNp)
    if hF is None:
        hF = plt.figure(figsize=(cellSize * numCols, (cellSize + 0.15) * numRows), layout='constrained')
    mHa = hF.subplots(numRows, numCols, squeeze=False)
    for ii in range(numRows):
        _ShowImage(mHa[ii, 0], mImgs[ii], lRowTitles[ii] if lRowTitles is not None else None)
        for jj, (name, mMaps) in enumerate(dNp.items(), start=1):
            _ShowMap(mHa[ii, jj], mMaps[ii], mImgs[ii] if showOverlay else None, cmap, alpha)
            if ii == 0:
                mHa[ii, jj].set_title(name, fontsize=9)
    return hF


def PlotImageMapOverlay(tX: ArrayLike, tMap: ArrayLike, vMean: Sequence[float] | None = None,
                        vStd: Sequence[float] | None = None, title: str | None = None, cmap: str | None = None,
                        alpha: float = 0.55, hF: Figure | SubFigure | None = None) -> Figure | SubFigure:
    """One image (``C x H x W``), its map (``H x W``) and the map over the image, side by side; the map and the
    overlay share one colour scale (``MapColors``), shown by the colour bar."""
    mImg = _DisplayImages(torch.as_tensor(_ToNumpy(tX))[None], vMean, vStd)[0]
    mMap = _ToNumpy(tMap)
    if mMap.shape != mImg.shape[:2]:
        raise ValueError(f'tMap must be H x W = {mImg.shape[:2]}, got {mMap.shape}.')
    if hF is None:
        hF = plt.figure(figsize=(9.5, 3.2), layout='constrained')
    vHa = hF.subplots(1, 3)
    _ShowImage(vHa[0], mImg, 'Image')
    _ShowMap(vHa[1], mMap, None, cmap, alpha)
    vHa[1].set_title('Map', fontsize=9)
    hIm = _ShowMap(vHa[2], mMap, mImg, cmap, alpha)
    vHa[2].set_title('Overlay', fontsize=9)
    hF.colorbar(hIm, ax=list(vHa[1:]), fraction=0.046, pad=0.04)
    if title:
        hF.suptitle(title, fontsize=10)
    return hF


def PlotMeanCurves(vX: ArrayLike, dCurves: dict[str, ArrayLike], xlabel: str, ylabel: str, title: str | None = None,
                   lReferences: Sequence[str] = (), hA: Axes | None = None) -> Axes:
    """The mean over rows of each ``{name: N x K}`` curve set against ``vX`` (K values), with a band of +- one
    standard error of that mean; the legend (outside the axes) gives each set's mean area under the curve
    (trapezoid rule). The sets named in ``lReferences`` are drawn dashed, without a band."""
    if hA is None:
        _, hA = plt.subplots(figsize=(7.5, 3.8), layout='constrained')
    vX = _ToNumpy(vX).astype(float)
    for name, mCurves in dCurves.items():
        mC = _ToNumpy(mCurves).astype(float)
        if mC.ndim != 2 or mC.shape[1] != len(vX):
            raise ValueError(f'The curves of {name!r} must be N x {len(vX)}, got shape {mC.shape}.')
        vMean = mC.mean(0)
        valAuc = float(np.mean(((mC[:, 1:] + mC[:, :-1]) / 2 * np.diff(vX)).sum(1)))  #<! Trapezoid rule
        isReference = name in lReferences
        hLine, = hA.plot(vX, vMean, linestyle='--' if isReference else '-', linewidth=2.0 if isReference else 1.5,
                         label=f'{name} (mean AUC {valAuc:.3f})')
        if len(mC) > 1 and not isReference:
            vSe = mC.std(0, ddof=1) / np.sqrt(len(mC))
            hA.fill_between(vX, vMean - vSe, vMean + vSe, color=hLine.get_color(), alpha=0.2, linewidth=0)
    hA.set_xlabel(xlabel)
    hA.set_ylabel(ylabel)
    hA.set_xlim(vX[0], vX[-1])
    if title:
        hA.set_title(title)
    hA.legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    hA.grid(True, alpha=0.3)
    return hA


def PlotStageCorrelations(lStages: Sequence[str], dRho: dict[str, ArrayLike], dFloor: dict[str, float] | None = None,
                          title: str | None = None, hA: Axes | None = None) -> Axes:
    """Sanity check by model randomization: for each method (``{name: stages x images}`` rank correlations, NaN
    allowed) the mean correlation between the trained model's map and the map after each cascading stage, with a
    band of +- one standard error over the images, starting from the trained model itself (1). ``dFloor`` (method:
    the correlation of unrelated maps) is drawn as a dashed line of the method's colour: a map that no longer depends
    on the weights falls to it."""
    if hA is None:
        _, hA = plt.subplots(figsize=(8.0, 3.8), layout='constrained')
    vPos = np.arange(len(lStages) + 1)
    for name, mRho in dRho.items():
        mR = _ToNumpy(mRho).astype(float)
        if mR.ndim != 2 or mR.shape[0] != len(lStages):
            raise ValueError(f'The correlations of {name!r} must be {len(lStages)} stages x images, got {mR.shape}.')
        vMean = np.concatenate([[1.0], np.nanmean(mR, axis=1)])
        vCount = np.concatenate([[1], np.sum(~np.isnan(mR), axis=1)])
        vSd = [np.std(vR[~np.isnan(vR)], ddof=1) if np.sum(~np.isnan(vR)) > 1 else 0.0 for vR in mR]
        vSe = np.concatenate([[0.0], vSd]) / np.sqrt(np.maximum(vCount, 1))
        hLine, = hA.plot(vPos, vMean, marker='o', label=name)
        hA.fill_between(vPos, vMean - vSe, vMean + vSe, color=hLine.get_color(), alpha=0.2, linewidth=0)
        if dFloor is not None and name in dFloor:
            hA.axhline(dFloor[name], color=hLine.get_color(), linestyle='--', linewidth=1.0)
    hA.axhline(0, color='k', linewidth=0.8)
    hA.set_xticks(vPos, ['Trained', *lStages], rotation=30, ha='right', fontsize=8)
    hA.set_xlabel('Randomized from the top down to (cascading)')
    hA.set_ylabel('Spearman rank correlation\nwith the trained map')
    if title:
        hA.set_title(title)
    hA.legend(fontsize=8, loc='upper left', bbox_to_anchor=(1.01, 1.0), borderaxespad=0,
              title='dashed: unrelated maps' if dFloor else None, title_fontsize=7)
    hA.grid(True, alpha=0.3)
    return hA
