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


def CropBatch(tX: torch.Tensor, padding: int, vDy: torch.Tensor, vDx: torch.Tensor) -> torch.Tensor:
    """Crop every image of a batch (``N x C x H x W``) from its zero-padded version at the offsets ``vDy``, ``vDx``
    (one pair per image, in ``[0, 2 padding]``, on the batch's device); same size as the input.

    Rows, then columns, are picked with two ``gather`` calls (about 4x faster than one 4D advanced-indexing operation
    on a CPU). No value is read back to the host, so nothing waits for the device.
    """
    if padding == 0:
        return tX
    numImg, numChannels, numRows, numCols = tX.shape
    tPad = F.pad(tX, (padding, padding, padding, padding))
    tRows = (vDy[:, None] + torch.arange(numRows, device=tX.device)).view(numImg, 1, numRows, 1)
    tRowsCrop = torch.gather(tPad, 2, tRows.expand(numImg, numChannels, numRows, tPad.shape[3]))
    tCols = (vDx[:, None] + torch.arange(numCols, device=tX.device)).view(numImg, 1, 1, numCols)
    return torch.gather(tRowsCrop, 3, tCols.expand(numImg, numChannels, numRows, numCols))


def FlipBatch(tX: torch.Tensor, vFlip: torch.Tensor) -> torch.Tensor:
    """Flip horizontally the images of a batch where the boolean ``vFlip`` is set (returns a new tensor).

    ``torch.where`` computes both versions and picks per image: a boolean-mask index (``tX[vFlip]``) would call
    ``nonzero``, which makes the host wait for the device on every batch.
    """
    return torch.where(vFlip.view(-1, 1, 1, 1), tX.flip(3), tX)


def RandomCropBatch(tX: torch.Tensor, padding: int, oGen: torch.Generator) -> torch.Tensor:
    """Random crop of every image of a batch from its zero-padded version: ``CropBatch`` at offsets drawn from the CPU
    generator ``oGen`` (the same draws on every device)."""
    if padding == 0:
        return tX
    vDy = torch.randint(0, 2 * padding + 1, (tX.shape[0],), generator=oGen)
    vDx = torch.randint(0, 2 * padding + 1, (tX.shape[0],), generator=oGen)
    return CropBatch(tX, padding, vDy.to(tX.device), vDx.to(tX.device))


def RandomFlipBatch(tX: torch.Tensor, flipProb: float, oGen: torch.Generator) -> torch.Tensor:
    """Flip each image of a batch horizontally with probability ``flipProb`` (``FlipBatch`` with draws from the CPU
    generator ``oGen``; returns a new tensor)."""
    if flipProb == 0:
        return tX
    return FlipBatch(tX, (torch.rand(tX.shape[0], generator=oGen) < flipProb).to(tX.device))


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

    def Standardize(self, tX: torch.Tensor | None = None) -> torch.Tensor:
        """``(x / 255 - µ) / σ`` of uint8 images ``N x C x H x W`` on the loader's device, without augmentation
        (default: all the loader's images, e.g. to compute features of a whole labelled set at once)."""
        tX = self.tX if tX is None else tX
        return tX.float() * self.vScale + self.vShift

    def _EpochDraws(self) -> torch.Tensor:
        """The epoch's order, crop offsets and flips, drawn at once on the CPU generator (identical batches on every
        device) and moved in one copy: a ``4 x N`` int64 tensor on the device (order, dy, dx, flip)."""
        numImg = len(self.tX)
        vOrder = torch.randperm(numImg, generator=self.oGen) if self.shuffle else torch.arange(numImg)
        vDy = vDx = vFlip = torch.zeros(numImg, dtype=torch.long)
        if self.cropPadding > 0:
            vDy = torch.randint(0, 2 * self.cropPadding + 1, (numImg,), generator=self.oGen)
            vDx = torch.randint(0, 2 * self.cropPadding + 1, (numImg,), generator=self.oGen)
        if self.flipProb > 0:
            vFlip = (torch.rand(numImg, generator=self.oGen) < self.flipProb).long()
        return torch.stack((vOrder, vDy, vDx, vFlip)).to(self.device)  #<! One host-to-device copy per epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        mDraws = self._EpochDraws()
        for batchIdx in range(len(self)):
            mBatchDraws = mDraws[:, batchIdx * self.batchSize:(batchIdx + 1) * self.batchSize]
            vIdx = mBatchDraws[0]
            tBatch = self.tX[vIdx]
            if self.cropPadding > 0:
                tBatch = CropBatch(tBatch, self.cropPadding, mBatchDraws[1], mBatchDraws[2])
            if self.flipProb > 0:
                tBatch = FlipBatch(tBatch, mBatchDraws[3].bool())
            tBatch = self.Standardize(tBatch)
            if self.channelsLast:
                tBatch = tBatch.contiguous(memory_format=torch.channels_last)
            yield tBatch, self.vY[vIdx]
