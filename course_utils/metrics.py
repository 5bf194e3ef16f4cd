"""Scores that ``TrainModel`` accepts as ``hS(mScore, vY)``."""

from __future__ import annotations

import torch


def AccuracyLogits(mScore: torch.Tensor, vY: torch.Tensor) -> torch.Tensor:
    """Fraction of samples whose highest score (argmax over dim 1) is the true label, as a 0-dim float tensor.

    Works on logits or probabilities alike (argmax does not change under softmax). Equals
    ``torchmetrics`` ``MulticlassAccuracy(average='micro')``. It returns a tensor on the scores' device, as
    torchmetrics does: a Python float would need ``.item()``, which makes the host wait for the GPU on every batch
    of ``TrainEpoch``. Use ``float(AccuracyLogits(...))`` for a number to print or store.
    """
    if mScore.ndim != 2:
        raise ValueError(f'mScore must be N x numClasses, got shape {tuple(mScore.shape)}.')
    if vY.shape != mScore.shape[:1]:
        raise ValueError(f'vY must hold one label per row of mScore: got {tuple(vY.shape)} for {tuple(mScore.shape)}.')
    return (mScore.argmax(dim=1) == vY).float().mean()
