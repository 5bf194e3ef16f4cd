"""Training loops: ``TrainEpoch`` runs one pass over a loader, ``TrainModel`` runs the whole fit.

``TrainModel`` has the call and the 6-tuple result of the FixelCourses ``DeepLearningPyTorch.TrainModel``,
so course code written for it runs unchanged with ``from course_utils import TrainModel``.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import time
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import CyclicLR, LRScheduler, OneCycleLR, ReduceLROnPlateau
from torch.utils.data import DataLoader
from .progress import tqdm

from .config import ModelDevice
from .files import WriteAtomically

# Schedulers whose schedule is defined in optimizer steps, not in epochs
PER_BATCH_SCHEDULERS: tuple[type, ...] = (OneCycleLR, CyclicLR)
CHECKPOINT_DIR = 'checkpoints'  #<! Next to the notebook (its working folder); git-ignored
BEST_MODEL_FILE = f'{CHECKPOINT_DIR}/BestModel.pt'


class NNMode(Enum):
    """What an epoch does: ``TRAIN`` updates the weights, ``INFERENCE`` only evaluates them."""

    TRAIN = 'train'
    INFERENCE = 'inference'


def _CurrentLearnRate(oOpt: Optimizer) -> float:
    return float(oOpt.param_groups[0]['lr'])


AUTOCAST_DTYPES = (torch.bfloat16, torch.float16)


def AutocastContext(oDevice: torch.device, autocastDtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``autocastDtype`` (bf16 or fp16) on the device's type; a no-op context for ``None``.

    Raises ``ValueError`` for any other dtype, before any work is done.
    """
    if autocastDtype is None:
        return contextlib.nullcontext()
    if autocastDtype not in AUTOCAST_DTYPES:
        raise ValueError(f'autocastDtype must be None, torch.bfloat16 or torch.float16, got {autocastDtype}.')
    return torch.autocast(device_type=oDevice.type, dtype=autocastDtype)


def ToDevice(tX: torch.Tensor, oDevice: torch.device) -> torch.Tensor:
    """Move a batch to ``oDevice``, asynchronously only for a pinned CPU tensor going to CUDA.

    An asynchronous copy from pageable memory is unsafe: on Apple MPS the source can be released before the queued
    copy reads it (silently wrong batches), and on CUDA it is synchronous anyway. A tensor already on the device is
    returned as is.
    """
    isAsync = oDevice.type == 'cuda' and tX.device.type == 'cpu' and tX.is_pinned()
    return tX.to(oDevice, non_blocking=isAsync)


def _NumBatches(dlData: Any) -> int | None:
    try:
        return len(dlData)
    except TypeError:  #<! An iterable without a length (e.g. a generator): the bar counts without a total
        return None


def TrainEpoch(oModel: nn.Module, dlData: DataLoader, hL: Callable, hS: Callable, oOpt: Optimizer | None = None,
               oSch: LRScheduler | None = None, opMode: NNMode = NNMode.TRAIN, *,
               lLearnRate: list[float] | None = None, showProgress: bool = True,
               progressEvery: int = 10, channelsLast: bool = False, autocastDtype: torch.dtype | None = None,
               oScaler: torch.amp.GradScaler | None = None) -> tuple[float, float]:
    """Run one epoch and return ``(loss, score)`` averaged over samples.

    Args:
        oModel:        The model; batches are moved to its device.
        dlData:        Loader of ``(mX, vY)`` batches, or ``(mX, vY, *extras)`` (e.g. pixel weights): the extras are
                       moved to the device and passed to the loss after ``vY``, not to the score.
        hL:            Loss ``hL(mZ, vY) -> scalar tensor`` (mean over the batch), ``hL(mZ, vY, *extras)`` with extras.
        hS:            Score ``hS(mZ, vY)``: a function returning a float/tensor or a torchmetrics metric.
        oOpt:          Optimizer; required for ``NNMode.TRAIN``.
        oSch:          A per-batch scheduler (e.g. ``OneCycleLR``) stepped after every optimizer step.
        opMode:        ``NNMode.TRAIN`` (train mode, gradients, updates) or ``NNMode.INFERENCE``
                       (eval mode, no gradients).
        lLearnRate:    If given, the learning rate of every optimizer step is appended to it.
        showProgress:  Show a tqdm bar with the running loss and score.
        progressEvery: Update the bar's loss / score every this many batches (each update syncs the device).
        channelsLast:  Move image batches to the channels-last memory layout (use with a channels-last model).
        autocastDtype: Mixed precision: run the forward pass and the loss under ``torch.autocast`` with this dtype
                       (``torch.bfloat16`` or ``torch.float16``); ``None`` keeps float32.
        oScaler:       A ``torch.amp.GradScaler`` for float16 training (scales the loss against underflow).

    A partial last batch weighs by its size, so the result is the exact per-sample mean.
    """
    isTrain = opMode is NNMode.TRAIN
    if isTrain and oOpt is None:
        raise ValueError('TrainEpoch in NNMode.TRAIN needs an optimizer (oOpt).')
    if isTrain and autocastDtype == torch.float16 and (oScaler is None or not oScaler.is_enabled()):
        raise ValueError('Training under float16 autocast needs a GradScaler: float16 gradients underflow to 0. Pass '
                         'oScaler=torch.amp.GradScaler(device.type), use torch.bfloat16, or call TrainModel, which '
                         'makes the scaler itself.')
    oDevice = ModelDevice(oModel)
    oAutocast = AutocastContext(oDevice, autocastDtype)
    # A disabled scaler passes through (scale() returns the loss, step() calls oOpt.step()): one code path for both
    oScaler = oScaler if oScaler is not None else torch.amp.GradScaler(oDevice.type, enabled=False)
    oModel.train(isTrain)  #<! BatchNorm / Dropout behave by mode: set it every epoch, for the whole epoch
    if hasattr(hS, 'reset'):
        hS.reset()  #<! torchmetrics metrics accumulate state across calls

    # Sums stay on the device: no host sync per batch (the bar syncs once every `progressEvery` batches).
    # float64 keeps 50,000 additions exact; Apple MPS has no float64, float32 there.
    accDtype = torch.float32 if oDevice.type == 'mps' else torch.float64
    vSums = torch.zeros(2, dtype=accDtype, device=oDevice)  #<! Loss and score sums, read back in one copy
    numSamples = 0
    # The bar counts batches but never wraps the loader: tqdm.auto's asyncio variant calls iter() on what it wraps,
    # which would start a second DataLoader iterator (its workers, and one draw of a seeded loader's generator)
    oBar = tqdm(total=_NumBatches(dlData), desc='Train' if isTrain else 'Valid', leave=False,
                disable=not showProgress, unit='batch', dynamic_ncols=True)
    for batchIdx, tuBatch in enumerate(dlData):
        mX, vY, *lExtra = tuBatch  #<! Items after the target (e.g. pixel weights) go to the loss only
        mX = ToDevice(mX, oDevice)
        vY = ToDevice(vY, oDevice)
        lExtra = [ToDevice(tExtra, oDevice) for tExtra in lExtra]
        if channelsLast and mX.ndim == 4:
            mX = mX.contiguous(memory_format=torch.channels_last)
        batchSize = mX.shape[0]  #<! A shape, known on the host: no sync
        if isTrain:
            with oAutocast:
                mZ = oModel(mX)
                valLoss = hL(mZ, vY, *lExtra)
            oOpt.zero_grad(set_to_none=True)
            oScaler.scale(valLoss).backward()
            oScaler.step(oOpt)  #<! An enabled scaler reads found-inf back unless the optimizer is fused
            oScaler.update()
            if oSch is not None:
                if lLearnRate is not None:
                    lLearnRate.append(_CurrentLearnRate(oOpt))
                oSch.step()
        else:
            with torch.no_grad(), oAutocast:
                mZ = oModel(mX)
                valLoss = hL(mZ, vY, *lExtra)
        with torch.no_grad():
            valScore = hS(mZ.detach().float(), vY)
            if not torch.is_tensor(valScore):  #<! A score function returning a Python float (it synced already)
                valScore = torch.tensor(valScore, dtype=accDtype)
            # Both sums in one in-place add (a Python float score is first made a tensor on the device)
            vSums += torch.stack((valLoss.detach().to(accDtype), valScore.detach().to(oDevice, accDtype))) * batchSize
        numSamples += batchSize
        oBar.update()
        if showProgress and (batchIdx + 1) % progressEvery == 0:
            valLossMean, valScoreMean = (vSums / numSamples).tolist()  #<! One sync for both numbers
            oBar.set_postfix(loss=f'{valLossMean:.4f}', score=f'{valScoreMean:.4f}', refresh=False)
    oBar.close()
    if numSamples == 0:
        raise ValueError('The data loader yielded no batches: check the data set and the batch size / drop_last.')
    valLossMean, valScoreMean = (vSums / numSamples).tolist()  #<! The epoch's one read-back
    return valLossMean, valScoreMean


def SaveCheckpointAtomically(dCheckpoint: dict[str, Any], checkpointPath: Path | str) -> None:
    """``torch.save`` through ``WriteAtomically``: an interrupted save never corrupts the checkpoint."""
    WriteAtomically(checkpointPath, lambda oFile: torch.save(dCheckpoint, oFile))


def LoadCheckpoint(oModel: nn.Module, checkpointPath: Path | str = BEST_MODEL_FILE, oOpt: Optimizer | None = None,
                   oSch: LRScheduler | None = None) -> dict[str, Any]:
    """Load a ``TrainModel`` checkpoint into the model (and optimizer / scheduler); return the checkpoint.

    Loaded with ``weights_only=True``: a checkpoint file cannot run code.
    """
    checkpointPath = Path(checkpointPath)
    if not checkpointPath.is_file():
        raise FileNotFoundError(f'No checkpoint at {checkpointPath.resolve()}: train with TrainModel(...) first, '
                                f'or pass the path of the file it saved (checkpointPath=...).')
    dCheckpoint = torch.load(checkpointPath, map_location=ModelDevice(oModel), weights_only=True)
    oModel.load_state_dict(dCheckpoint['Model'])
    if oOpt is not None and 'Optimizer' in dCheckpoint:
        oOpt.load_state_dict(dCheckpoint['Optimizer'])
    if oSch is not None and 'Scheduler' in dCheckpoint:
        oSch.load_state_dict(dCheckpoint['Scheduler'])
    return dCheckpoint


def _KeepPreviousCheckpoint(checkpointPath: Path) -> None:
    # A checkpoint from an earlier run is the user's work: move it aside before this run overwrites it
    if checkpointPath.is_file():
        backupPath = checkpointPath.with_name(checkpointPath.stem + '.prev' + checkpointPath.suffix)
        shutil.move(checkpointPath, backupPath)
        tqdm.write(f'Kept the previous checkpoint as {backupPath}')


class TrainResult(NamedTuple):
    """What ``TrainModel`` returns; it unpacks as the FixelCourses 6-tuple
    ``oModel, lTrainLoss, lTrainScore, lValLoss, lValScore, lLearnRate = TrainModel(...)``."""

    oModel: nn.Module
    lTrainLoss: list[float]
    lTrainScore: list[float]
    lValLoss: list[float]
    lValScore: list[float]
    lLearnRate: list[float]

    @property
    def bestEpoch(self) -> int:
        """The 1-based epoch of the best validation score (the model that was kept); 0 before any epoch."""
        return 1 + max(range(len(self.lValScore)), key=self.lValScore.__getitem__) if self.lValScore else 0

    @property
    def bestValScore(self) -> float:
        return max(self.lValScore) if self.lValScore else -math.inf


def _RunOptions(oModel: nn.Module, dlTrain: Any, oOpt: Optimizer, numEpoch: int, hL: Callable,
                oSch: Any, channelsLast: bool, autocastDtype: torch.dtype | None) -> dict[str, Any]:
    """The options of a run, stored in its checkpoint (as torchvision's references store ``args``)."""
    return {'Model': type(oModel).__name__, 'Epochs': numEpoch, 'Optimizer': type(oOpt).__name__,
            'LearnRate': _CurrentLearnRate(oOpt), 'WeightDecay': float(oOpt.param_groups[0].get('weight_decay', 0.0)),
            'Scheduler': type(oSch).__name__ if oSch is not None else None,
            'Loss': type(hL).__name__ if isinstance(hL, nn.Module) else getattr(hL, '__name__', repr(hL)),
            'BatchSize': getattr(dlTrain, 'batch_size', getattr(dlTrain, 'batchSize', None)),
            'ChannelsLast': channelsLast, 'Autocast': str(autocastDtype).removeprefix('torch.') if autocastDtype else None,
            'Seed': torch.initial_seed(), 'Torch': str(torch.__version__)}


def TrainModel(oModel: nn.Module, dlTrain: DataLoader, dlVal: DataLoader, oOpt: Optimizer, numEpoch: int,
               hL: Callable, hS: Callable, oSch: LRScheduler | ReduceLROnPlateau | None = None,
               oTBWriter: Any | None = None, *, schStepPerBatch: bool | None = None,
               checkpointPath: Path | str | None = BEST_MODEL_FILE, restoreBest: bool = True,
               showProgress: bool = True, verbose: bool = True, channelsLast: bool = False,
               autocastDtype: torch.dtype | None = None) -> TrainResult:
    """Train for ``numEpoch`` epochs, keep the best model by validation score, return it and the history.

    Args:
        oModel:          The model, already on its device (CPU, CUDA or MPS); batches follow it.
        dlTrain, dlVal:  Loaders of ``(mX, vY)`` batches for training and validation (or ``(mX, vY, *extras)``,
                         the extras passed to the loss only, as ``TrainEpoch`` says).
        oOpt:            Optimizer over ``oModel``'s parameters.
        numEpoch:        Number of epochs.
        hL:              Loss ``hL(mZ, vY) -> scalar tensor``.
        hS:              Score ``hS(mZ, vY)``, higher is better: a function (e.g. ``AccuracyLogits``) or a
                         torchmetrics metric (moved to the model's device here).
        oSch:            Optional scheduler. Per-batch schedulers (``OneCycleLR``, ``CyclicLR``) step after
                         every optimizer step, ``ReduceLROnPlateau`` steps on the validation loss, others
                         step once per epoch.
        oTBWriter:       Optional TensorBoard ``SummaryWriter``: loss, score and learning rate per epoch.
        schStepPerBatch: Override the per-batch / per-epoch choice for ``oSch``.
        checkpointPath:  Where the best model's checkpoint is saved (default ``checkpoints/BestModel.pt``, next to
                         the notebook; ``None``: keep it in memory only). An existing file there is first moved to
                         ``<name>.prev.pt``. The checkpoint holds the weights, optimizer and scheduler states, the
                         epoch, the score and the run's options (``'Options'``: epochs, optimizer, scheduler, batch
                         size, mixed precision, seed, ...).
        restoreBest:     Load the best weights into ``oModel`` before returning (else the last ones stay).
        showProgress:    Show tqdm progress bars.
        verbose:         Print one line per epoch (and the restore message).
        channelsLast:    Convert the model and the image batches to the channels-last memory layout (faster
                         convolutions on CPUs and tensor-core GPUs). Off by default.
        autocastDtype:   Mixed precision with ``torch.autocast``: ``torch.bfloat16`` or ``torch.float16`` (a
                         ``GradScaler`` is made here). Off (float32) by default. Choose it by capability with
                         ``ChooseMixedPrecision(device).autocastDtype``: bfloat16 on CUDA compute capability >= 8.0
                         and on CPUs with native bf16, float16 on older GPUs such as the T4 (where
                         ``torch.cuda.is_bf16_supported()`` says True, counting slow emulation), none on other CPUs
                         (emulated bf16 is 12-15x slower) and on MPS. With float16, a fused optimizer
                         (``AdamW(..., fused=True)``) lets the scaler skip its per-step host sync.

    Returns:
        ``TrainResult(oModel, lTrainLoss, lTrainScore, lValLoss, lValScore, lLearnRate)``, a named tuple that
        unpacks as the FixelCourses 6-tuple: one loss / score per completed epoch; the learning rate per epoch,
        or per optimizer step with a per-batch scheduler.

    Ctrl-C (``KeyboardInterrupt``) stops training cleanly and returns the history of the completed epochs.
    """
    if numEpoch < 1:
        raise ValueError(f'numEpoch must be at least 1, got {numEpoch}.')
    oDevice = ModelDevice(oModel)
    if isinstance(hS, nn.Module):
        hS.to(oDevice)  #<! torchmetrics states must live where the predictions are
    if schStepPerBatch is None:
        schStepPerBatch = isinstance(oSch, PER_BATCH_SCHEDULERS)
    AutocastContext(oDevice, autocastDtype)  #<! Rejects an unsupported dtype before any work
    if channelsLast:
        oModel.to(memory_format=torch.channels_last)
    # float16 has a narrow range: scale the loss so small gradients do not underflow (bfloat16 needs no scaling)
    oScaler = torch.amp.GradScaler(oDevice.type, enabled=autocastDtype == torch.float16)
    dFastArgs = dict(channelsLast=channelsLast, autocastDtype=autocastDtype)
    if checkpointPath is not None:
        checkpointPath = Path(checkpointPath)
        _KeepPreviousCheckpoint(checkpointPath)
        dRunOptions = _RunOptions(oModel, dlTrain, oOpt, numEpoch, hL, oSch, channelsLast, autocastDtype)

    lTrainLoss, lTrainScore, lValLoss, lValScore, lLearnRate = [], [], [], [], []
    savedNote = ', saved' if checkpointPath is not None else ''  #<! Say "saved" only when a file is written
    bestScore = -math.inf
    dBestState: dict[str, torch.Tensor] | None = None
    oEpochBar = tqdm(range(numEpoch), desc='Epochs', unit='epoch', disable=not showProgress, dynamic_ncols=True)
    try:
        for epochIdx in oEpochBar:
            startTime = time.perf_counter()
            epochLearnRate = _CurrentLearnRate(oOpt)
            trainLoss, trainScore = TrainEpoch(oModel, dlTrain, hL, hS, oOpt, oSch if schStepPerBatch else None,
                                               NNMode.TRAIN, lLearnRate=lLearnRate if schStepPerBatch else None,
                                               showProgress=showProgress, oScaler=oScaler, **dFastArgs)
            valLoss, valScore = TrainEpoch(oModel, dlVal, hL, hS, opMode=NNMode.INFERENCE, showProgress=showProgress,
                                           **dFastArgs)
            if not schStepPerBatch:
                lLearnRate.append(epochLearnRate)
                if isinstance(oSch, ReduceLROnPlateau):
                    oSch.step(valLoss)
                elif oSch is not None:
                    oSch.step()
            lTrainLoss.append(trainLoss)
            lTrainScore.append(trainScore)
            lValLoss.append(valLoss)
            lValScore.append(valScore)

            isBest = valScore > bestScore
            if isBest:
                bestScore = valScore
                dBestState = {k: v.detach().clone() for k, v in oModel.state_dict().items()}
                if checkpointPath is not None:
                    dCheckpoint = {'Model': dBestState, 'Optimizer': oOpt.state_dict(), 'Epoch': epochIdx + 1,
                                   'Score': valScore, 'Options': dRunOptions}
                    if oSch is not None:
                        dCheckpoint['Scheduler'] = oSch.state_dict()
                    SaveCheckpointAtomically(dCheckpoint, checkpointPath)
            if oTBWriter is not None:
                oTBWriter.add_scalars('Loss', {'Train': trainLoss, 'Validation': valLoss}, epochIdx)
                oTBWriter.add_scalars('Score', {'Train': trainScore, 'Validation': valScore}, epochIdx)
                oTBWriter.add_scalar('Learning Rate', epochLearnRate, epochIdx)

            epochTime = time.perf_counter() - startTime
            oEpochBar.set_postfix(valScore=f'{valScore:.4f}', best=f'{bestScore:.4f}', refresh=False)
            if verbose:
                tqdm.write(f'Epoch {epochIdx + 1:{len(str(numEpoch))}d}/{numEpoch} | '
                           f'Train loss {trainLoss:.4f} score {trainScore:.4f} | '
                           f'Val loss {valLoss:.4f} score {valScore:.4f} | '
                           f'LR {epochLearnRate:.3e} | {epochTime:5.1f} s' + (f' | best{savedNote}' if isBest else ''))
    except KeyboardInterrupt:
        tqdm.write(f'Training interrupted after {len(lValScore)} complete epoch(s); returning the history so far.')
    finally:
        oEpochBar.close()

    if restoreBest and dBestState is not None:
        oModel.load_state_dict(dBestState)
        if verbose:
            tqdm.write(f'Restored the best model (validation score {bestScore:.4f}).')
    return TrainResult(oModel, lTrainLoss, lTrainScore, lValLoss, lValScore, lLearnRate)


def Predict(oModel: nn.Module, dlData: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the model in eval mode over a loader; return ``(mScore, vY)`` on the CPU (scores and labels)."""
    oDevice = ModelDevice(oModel)
    oModel.eval()
    lScore, lY = [], []
    with torch.no_grad():
        for mX, vY in dlData:
            lScore.append(oModel(ToDevice(mX, oDevice)).cpu())
            lY.append(vY.cpu())  #<! Loaders that live on the device (DeviceBatchLoader) yield device labels
    return torch.cat(lScore), torch.cat(lY)
