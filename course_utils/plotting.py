"""Plots of the course. Every function returns what it drew on and can draw into given axes / figure."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.ticker import MaxNLocator

ArrayLike = np.ndarray | torch.Tensor | Sequence


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
                     scoreName: str = 'Score', hF: Figure | SubFigure | None = None) -> Figure | SubFigure:
    """Loss and score per epoch (train vs validation), plus the learning rate schedule if given.

    ``lLearnRate`` may hold one value per epoch or one per optimizer step (``TrainModel`` with a
    per-batch scheduler); it is drawn on its own axis in epochs either way.
    """
    numAxes = 3 if lLearnRate else 2
    if hF is None:
        hF = plt.figure(figsize=(5 * numAxes, 4), layout='constrained')
    vHa = hF.subplots(1, numAxes)
    vEpoch = np.arange(1, len(lTrainLoss) + 1)
    bestIdx = int(np.argmax(lValScore)) if len(lValScore) else None
    for hA, lTrain, lVal, name in ((vHa[0], lTrainLoss, lValLoss, 'Loss'),
                                   (vHa[1], lTrainScore, lValScore, scoreName)):
        hA.plot(vEpoch, lTrain, lw=2, marker='.', label='Train')
        hA.plot(vEpoch, lVal, lw=2, marker='.', label='Validation')
        if bestIdx is not None:
            hA.axvline(bestIdx + 1, color='gray', ls='--', lw=1, label=f'Best (epoch {bestIdx + 1})')
        hA.xaxis.set_major_locator(MaxNLocator(integer=True))
        hA.set_xlabel('Epoch')
        hA.set_ylabel(name)
        hA.set_title(f'{name} per Epoch')
        hA.grid(alpha=0.3)
        hA.legend()
    if lLearnRate:
        vX = np.linspace(0, len(vEpoch), len(lLearnRate), endpoint=False) + (
            1 if len(lLearnRate) == len(vEpoch) else 0)
        vHa[2].plot(vX, lLearnRate, lw=2)
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
    tX = torch.as_tensor(_ToNumpy(tX), dtype=torch.float32)
    if tX.ndim != 4:
        raise ValueError(f'tX must be N x C x H x W, got shape {tuple(tX.shape)}.')
    if (vMean is None) != (vStd is None):
        raise ValueError('Give both vMean and vStd (the values of the Normalize transform) or neither.')
    if vMean is not None:
        tX = tX * torch.as_tensor(vStd).view(1, -1, 1, 1) + torch.as_tensor(vMean).view(1, -1, 1, 1)
    mImgs = tX.clamp(0, 1).permute(0, 2, 3, 1).numpy()
    if mImgs.shape[-1] == 1:
        mImgs = mImgs[..., 0]
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
                    cmap: str = 'gray', showColorbar: bool = False,
                    hF: Figure | SubFigure | None = None) -> Figure | SubFigure:
    """Show 2D maps (``N x H x W``, e.g. the channels of a convolution output), each with its own color scale.

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
    for ii, hA in enumerate(vHa):
        hIm = hA.imshow(mMaps[ii], cmap=cmap)
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


def PlotMeanStdBars(lNames: Sequence[str], vMean: ArrayLike, vStd: ArrayLike, ylabel: str = 'Accuracy',
                    title: str | None = None, vBaseline: float | None = None, hA: Axes | None = None) -> Axes:
    """Bar chart of a mean per configuration with ``+-`` one standard deviation (over seeds) as error bars.

    ``vBaseline`` draws a dashed horizontal line (e.g. the baseline's mean) to compare against.
    """
    vMean, vStd = _ToNumpy(vMean).astype(float), _ToNumpy(vStd).astype(float)
    if not len(lNames) == len(vMean) == len(vStd):
        raise ValueError(f'Got {len(lNames)} names, {len(vMean)} means and {len(vStd)} standard deviations.')
    if hA is None:
        _, hA = plt.subplots(figsize=(max(4.0, 1.1 * len(lNames)), 3.8), layout='constrained')
    vX = np.arange(len(lNames))
    hA.bar(vX, vMean, yerr=vStd, capsize=5, color='tab:blue', alpha=0.8, edgecolor='k')
    if vBaseline is not None:
        hA.axhline(vBaseline, color='k', ls='--', lw=1)
    hA.set_xticks(vX, lNames, rotation=30, ha='right')
    hA.set_ylabel(ylabel)
    vLow, vHigh = vMean - np.nan_to_num(vStd), vMean + np.nan_to_num(vStd)
    valPad = 0.15 * max(float(vHigh.max() - vLow.min()), 1e-3)
    hA.set_ylim(max(0.0, float(vLow.min()) - valPad), float(vHigh.max()) + valPad)  #<! Zoom on the differences
    hA.grid(axis='y', alpha=0.3)
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
    tX = torch.as_tensor(_ToNumpy(tX), dtype=torch.float32)
    mProb = _ToNumpy(mProb).astype(np.float64)
    if tX.ndim != 4:
        raise ValueError(f'tX must be N x C x H x W, got shape {tuple(tX.shape)}.')
    if mProb.ndim != 2 or mProb.shape[0] != tX.shape[0]:
        raise ValueError(f'mProb must be N x numClasses with one row per image: got {mProb.shape} for '
                         f'{tX.shape[0]} images.')
    if np.any(mProb < 0) or not np.allclose(mProb.sum(axis=1), 1, atol=1e-4):
        raise ValueError('mProb rows must be probabilities (non-negative, summing to 1): apply softmax to logits.')
    if lClasses is not None and len(lClasses) != mProb.shape[1]:
        raise ValueError(f'Got {len(lClasses)} class names for {mProb.shape[1]} probability columns.')
    if (vMean is None) != (vStd is None):
        raise ValueError('Give both vMean and vStd (the values of the Normalize transform) or neither.')
    if vMean is not None:
        tX = tX * torch.as_tensor(vStd).view(1, -1, 1, 1) + torch.as_tensor(vMean).view(1, -1, 1, 1)
    mImgs = tX.clamp(0, 1).permute(0, 2, 3, 1).numpy()
    mImgs = mImgs[..., 0] if mImgs.shape[-1] == 1 else mImgs
    vY = None if vY is None else _ToNumpy(vY).astype(np.int64)
    numImg, numClasses = mProb.shape
    numCols = max(1, min(numCols, numImg))
    numRows = int(np.ceil(numImg / numCols))
    lNames = list(lClasses) if lClasses is not None else [str(ii) for ii in range(numClasses)]
    if hF is None:
        hF = plt.figure(figsize=(5.2 * numCols, 0.22 * numClasses * numRows + 0.6 * numRows), layout='constrained')
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
        hABar.set_yticks(np.arange(numClasses), lNames, fontsize=7)
        hABar.invert_yaxis()  #<! Class 0 on top, as in the list of classes
        hABar.set_xlim(0, 1)
        hABar.tick_params(axis='x', labelsize=7)
        hABar.set_title(f'p = {mProb[ii, predIdx]:.2f} {lNames[predIdx]}', fontsize=8,
                        color='red' if isWrong else 'black')
    return hF
