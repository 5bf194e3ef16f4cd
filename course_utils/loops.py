"""Tools around the training loop: endless batches, a learning-rate range test and reading TensorBoard scalars back.

- ``EndlessBatches``: a loader's batches pass after pass, for loops counted in optimizer steps, not epochs.

- ``LearningRateRangeTest``: the loss while the learning rate grows exponentially, batch by batch (Smith, 2017,
  "Cyclical Learning Rates for Training Neural Networks", section 3.3); the model and optimizer are restored after.
- ``ReadTensorBoardScalars``: every scalar a ``SummaryWriter`` logged under a folder (``TrainModel(...,
  oTBWriter=...)`` included), as arrays, so a notebook can plot and check what it logged.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.optim import Optimizer

from .config import ModelDevice


# ------------------------------------------------------------------------------------------------
# Batches by steps
# ------------------------------------------------------------------------------------------------
def EndlessBatches(dlData: Iterable) -> Iterator:
    """The batches of ``dlData``, pass after pass (each pass a new iteration: a new order and new augmentation for
    a shuffling loader). Raises ``ValueError`` when a pass yields nothing, instead of looping forever."""
    while True:
        numBatches = 0
        for batch in dlData:
            numBatches += 1
            yield batch
        if numBatches == 0:
            raise ValueError('The data loader yielded no batches: check the data set and the batch size.')


# ------------------------------------------------------------------------------------------------
# Learning-rate range test
# ------------------------------------------------------------------------------------------------
class LearnRateRangeResult(NamedTuple):
    """What ``LearningRateRangeTest`` returns: one entry per optimizer step."""

    vLearnRate: np.ndarray   #<! The learning rate of each step
    vLoss: np.ndarray        #<! The loss of each step's batch (before the step)
    vSmoothLoss: np.ndarray  #<! Bias-corrected exponential moving average of ``vLoss``

    @property
    def minLossLearnRate(self) -> float:
        """The learning rate at the lowest smoothed loss (a common pick is about a tenth of it)."""
        return float(self.vLearnRate[int(np.argmin(self.vSmoothLoss))])


def LearningRateRangeTest(oModel: nn.Module, dlTrain: Iterable, hL: Callable, oOpt: Optimizer, *,
                          minLearnRate: float = 1e-6, maxLearnRate: float = 1.0, numSteps: int = 100,
                          smoothBeta: float = 0.9, divergeFactor: float = 4.0) -> LearnRateRangeResult:
    """Train for up to ``numSteps`` batches with the learning rate growing from ``minLearnRate`` to ``maxLearnRate``
    by the same factor every step; record the loss of each batch.

    Stops early when the smoothed loss exceeds ``divergeFactor`` times its minimum (the loss diverged). The loader
    is cycled if it has fewer than ``numSteps`` batches. The weights, the optimizer's state and its learning rates
    are restored afterwards: the test does not train the model.
    """
    if not 0 < minLearnRate < maxLearnRate:
        raise ValueError(f'Need 0 < minLearnRate < maxLearnRate, got {minLearnRate} and {maxLearnRate}.')
    if numSteps < 2:
        raise ValueError(f'numSteps must be at least 2, got {numSteps}.')
    if not 0 <= smoothBeta < 1:
        raise ValueError(f'smoothBeta must be in [0, 1), got {smoothBeta}.')
    dModelState = copy.deepcopy(oModel.state_dict())
    dOptState = copy.deepcopy(oOpt.state_dict())
    oDevice = ModelDevice(oModel)
    valFactor = (maxLearnRate / minLearnRate) ** (1 / (numSteps - 1))
    lLearnRate, lLoss, lSmooth = [], [], []
    valAvg, valBest = 0.0, math.inf
    wasTraining = oModel.training
    oModel.train()
    try:
        for stepIdx, (mX, vY) in zip(range(numSteps), EndlessBatches(dlTrain)):  #<! Cycles a short loader
            learnRate = minLearnRate * valFactor ** stepIdx
            for dGroup in oOpt.param_groups:
                dGroup['lr'] = learnRate
            mX, vY = mX.to(oDevice), vY.to(oDevice)
            valLoss = hL(oModel(mX), vY)
            oOpt.zero_grad(set_to_none=True)
            valLoss.backward()
            oOpt.step()
            lossItem = valLoss.item()
            valAvg = smoothBeta * valAvg + (1 - smoothBeta) * lossItem
            valSmooth = valAvg / (1 - smoothBeta ** (stepIdx + 1))  #<! Bias correction: the average starts at 0
            lLearnRate.append(learnRate)
            lLoss.append(lossItem)
            lSmooth.append(valSmooth)
            valBest = min(valBest, valSmooth)
            if not math.isfinite(valSmooth) or valSmooth > divergeFactor * valBest:
                break  #<! Diverged: the larger rates only blow up further
    finally:
        oModel.load_state_dict(dModelState)
        oOpt.load_state_dict(dOptState)  #<! Also restores each group's learning rate
        oModel.train(wasTraining)
    return LearnRateRangeResult(np.array(lLearnRate), np.array(lLoss), np.array(lSmooth))


# ------------------------------------------------------------------------------------------------
# TensorBoard
# ------------------------------------------------------------------------------------------------
class ScalarSeries(NamedTuple):
    """One logged scalar: its steps and values (sorted by step)."""

    vStep: np.ndarray
    vValue: np.ndarray


def ReadTensorBoardScalars(logDir: Path | str) -> dict[str, ScalarSeries]:
    """Read every scalar logged under ``logDir`` (its event files and those of its sub-folders).

    Keys are the tags: ``add_scalar('Learning Rate', ...)`` gives ``'Learning Rate'``; ``add_scalars('Loss',
    {'Train': ..., 'Validation': ...})`` (which writes one sub-folder per curve) gives ``'Loss/Train'`` and
    ``'Loss/Validation'``; other sub-folders prefix the tag with their path. A step logged twice (a run repeated
    into the same folder) keeps its latest value. Call ``oTBWriter.flush()`` (or ``close()``) before reading.
    """
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    logDir = Path(logDir)
    if not logDir.is_dir():
        raise FileNotFoundError(f'No TensorBoard log folder at {logDir.resolve()}: pass the folder given to '
                                f'SummaryWriter(log_dir=...).')
    lEventDirs = sorted({filePath.parent for filePath in logDir.rglob('events.out.tfevents.*')})
    if not lEventDirs:
        raise FileNotFoundError(f'No event files (events.out.tfevents.*) under {logDir.resolve()}: did the writer '
                                f'log anything, and was it flushed (oTBWriter.flush() or close())?')
    dScalars: dict[str, ScalarSeries] = {}
    for eventDir in lEventDirs:
        oAcc = EventAccumulator(str(eventDir), size_guidance={SCALARS: 0})  #<! 0: keep every value
        oAcc.Reload()
        relDir = eventDir.relative_to(logDir).as_posix()
        for tag in oAcc.Tags()[SCALARS]:
            if relDir == '.':
                key = tag
            elif eventDir.name.startswith(tag + '_'):  #<! add_scalars: <logDir>/<tag>_<name>/ holds tag <tag>
                parentDir = eventDir.parent.relative_to(logDir).as_posix()
                key = f'{tag}/{eventDir.name[len(tag) + 1:]}'
                key = key if parentDir == '.' else f'{parentDir}/{key}'
            else:
                key = f'{relDir}/{tag}'
            dLatest: dict[int, tuple[float, float]] = {}
            for oEvent in oAcc.Scalars(tag):
                if oEvent.step not in dLatest or oEvent.wall_time >= dLatest[oEvent.step][0]:
                    dLatest[oEvent.step] = (oEvent.wall_time, oEvent.value)
            vStep = np.array(sorted(dLatest), dtype=np.int64)
            dScalars[key] = ScalarSeries(vStep, np.array([dLatest[int(s)][1] for s in vStep], dtype=np.float64))
    return dScalars
