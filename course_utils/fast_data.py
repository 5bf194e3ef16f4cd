"""A fast data path: a whole image data set held as one uint8 tensor on the training device.

Batches are sliced from that tensor, augmented (random crop with padding, horizontal flip) and normalized per
batch on the device: no worker processes, no per-image PIL transforms. It replaces ``DataLoader`` plus
``transforms`` when the data set fits in the device's memory (CIFAR-10: 150 MB as uint8).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset


def RandomCropBatch(tX: torch.Tensor, padding: int, oGen: torch.Generator) -> torch.Tensor:
    """Random crop of every image of a batch (``N x C x H x W``) from its zero-padded version, same size as the input.

    One offset pair per image; rows, then columns, are picked with two ``gather`` calls (about 4x faster than one
    4D advanced-indexing operation on a CPU).
    """
    if padding == 0:
        return tX
    numImg, numChannels, numRows, numCols = tX.shape
    tPad = F.pad(tX, (padding, padding, padding, padding))
    vDy = torch.randint(0, 2 * padding + 1, (numImg,), generator=oGen).to(tX.device)
    vDx = torch.randint(0, 2 * padding + 1, (numImg,), generator=oGen).to(tX.device)
    tRows = (vDy[:, None] + torch.arange(numRows, device=tX.device)).view(numImg, 1, numRows, 1)
    tRowsCrop = torch.gather(tPad, 2, tRows.expand(numImg, numChannels, numRows, tPad.shape[3]))
    tCols = (vDx[:, None] + torch.arange(numCols, device=tX.device)).view(numImg, 1, 1, numCols)
    return torch.gather(tRowsCrop, 3, tCols.expand(numImg, numChannels, numRows, numCols))


def RandomFlipBatch(tX: torch.Tensor, flipProb: float, oGen: torch.Generator) -> torch.Tensor:
    """Flip each image of a batch horizontally with probability ``flipProb`` (returns a new tensor)."""
    if flipProb == 0:
        return tX
    vFlip = (torch.rand(tX.shape[0], generator=oGen) < flipProb).to(tX.device)
    tOut = tX.clone()
    tOut[vFlip] = tX[vFlip].flip(3)  #<! Only the chosen images are flipped and written
    return tOut


class DeviceBatchLoader:
    """Iterate over ``(tX, vY)`` batches of an image data set held on the device, like a ``DataLoader``.

    Args:
        mData:        Images, uint8, ``N x H x W x C`` (as ``CIFAR10.data``).
        vY:           Labels, length ``N``.
        batchSize:    Images per batch.
        vMean, vStd:  Per-channel statistics (of ``[0, 1]`` pixels) for the normalization ``(x - µ) / σ``.
        device:       Where the data lives and the batches are made (default: CPU).
        shuffle:      A new random order every epoch.
        dropLast:     Drop the last, smaller batch.
        cropPadding:  Random crop from the image padded by this many zeros (0: no crop).
        flipProb:     Probability of a horizontal flip (0: no flip).
        channelsLast: Yield batches in the channels-last memory layout.
        seed:         Seed of the shuffling and augmentation (reproducible epochs).
    """

    def __init__(self, mData: np.ndarray | torch.Tensor, vY: Sequence[int] | np.ndarray | torch.Tensor,
                 batchSize: int, vMean: Sequence[float] | torch.Tensor, vStd: Sequence[float] | torch.Tensor,
                 device: torch.device | str | None = None, shuffle: bool = False, dropLast: bool = False,
                 cropPadding: int = 0, flipProb: float = 0.0, channelsLast: bool = False, seed: int = 0) -> None:
        tData = torch.as_tensor(mData)
        if tData.dtype != torch.uint8 or tData.ndim != 4:
            raise ValueError(f'mData must be uint8 N x H x W x C, got {tData.dtype} of shape {tuple(tData.shape)}.')
        if len(vY) != len(tData):
            raise ValueError(f'Got {len(vY)} labels for {len(tData)} images.')
        if batchSize < 1 or cropPadding < 0 or not 0 <= flipProb <= 1:
            raise ValueError(f'Need batchSize >= 1, cropPadding >= 0 and 0 <= flipProb <= 1; got {batchSize}, '
                             f'{cropPadding}, {flipProb}.')
        self.device = torch.device(device) if device is not None else torch.device('cpu')
        self.tX = tData.permute(0, 3, 1, 2).contiguous().to(self.device)  #<! N x C x H x W, uint8
        self.vY = torch.as_tensor(np.asarray(vY), dtype=torch.long).to(self.device)
        vStd = torch.as_tensor(vStd, dtype=torch.float32)
        # (x / 255 - µ) / σ = x * scale + shift: one multiply-add per pixel
        self.vScale = (1 / (255 * vStd)).view(1, -1, 1, 1).to(self.device)
        self.vShift = (-torch.as_tensor(vMean, dtype=torch.float32) / vStd).view(1, -1, 1, 1).to(self.device)
        self.batchSize, self.shuffle, self.dropLast = batchSize, shuffle, dropLast
        self.cropPadding, self.flipProb, self.channelsLast = cropPadding, flipProb, channelsLast
        self.oGen = torch.Generator().manual_seed(seed)  #<! On the CPU: works for every device type

    @classmethod
    def FromDataset(cls, dsData: Dataset, batchSize: int, vMean: Sequence[float] | torch.Tensor,
                    vStd: Sequence[float] | torch.Tensor, **kwargs) -> DeviceBatchLoader:
        """Build from a CIFAR-style data set (``.data`` uint8 ``N x H x W x C`` and ``.targets``)."""
        if not (hasattr(dsData, 'data') and hasattr(dsData, 'targets')):
            raise TypeError(f'{type(dsData).__name__} has no .data / .targets arrays (use LoadCifar10).')
        return cls(dsData.data, dsData.targets, batchSize, vMean, vStd, **kwargs)

    def __len__(self) -> int:
        numImg = len(self.tX)
        return numImg // self.batchSize if self.dropLast else -(-numImg // self.batchSize)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        numImg = len(self.tX)
        vOrder = torch.randperm(numImg, generator=self.oGen) if self.shuffle else torch.arange(numImg)
        vOrder = vOrder.to(self.device)
        for batchIdx in range(len(self)):
            vIdx = vOrder[batchIdx * self.batchSize:(batchIdx + 1) * self.batchSize]
            tBatch = RandomCropBatch(self.tX[vIdx], self.cropPadding, self.oGen)
            tBatch = RandomFlipBatch(tBatch, self.flipProb, self.oGen)
            tBatch = tBatch.float() * self.vScale + self.vShift
            if self.channelsLast:
                tBatch = tBatch.contiguous(memory_format=torch.channels_last)
            yield tBatch, self.vY[vIdx]
