"""The device-resident data path yields what DataLoader + transforms yield, and augments correctly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.v2 as TF
from torch.utils.data import DataLoader

from course_utils import LoadCifar10
from course_utils.fast_data import DeviceBatchLoader, RandomCropBatch, RandomFlipBatch

V_MEAN, V_STD = [0.49, 0.48, 0.45], [0.25, 0.24, 0.26]


def test_same_normalization_and_label_order_as_the_dataloader(folderRoot: Path) -> None:
    dsData = LoadCifar10(True, dataRoot=folderRoot, download=False)
    dsData.transform = TF.Compose([TF.ToImage(), TF.ToDtype(torch.float32, scale=True), TF.Normalize(V_MEAN, V_STD)])
    oFast = DeviceBatchLoader.FromDataset(dsData, 7, V_MEAN, V_STD)
    lRef = list(DataLoader(dsData, batch_size=7))
    assert len(oFast) == len(lRef) == 9  #<! 60 images: 8 full batches and one of 4
    for (tX, vY), (tXRef, vYRef) in zip(oFast, lRef):
        torch.testing.assert_close(tX, tXRef, atol=1e-5, rtol=1e-5)
        assert torch.equal(vY, vYRef)


def test_shuffle_visits_every_image_once_and_is_reproducible() -> None:
    mData = np.arange(50, dtype=np.uint8).repeat(3 * 2 * 2).reshape(50, 2, 2, 3)
    oLoader = DeviceBatchLoader(mData, np.arange(50), 8, [0, 0, 0], [1 / 255] * 3, shuffle=True, seed=3)
    lEpoch1 = torch.cat([vY for _, vY in oLoader])
    lEpoch2 = torch.cat([vY for _, vY in oLoader])
    assert sorted(lEpoch1.tolist()) == list(range(50)) and not torch.equal(lEpoch1, lEpoch2)
    for tX, vY in oLoader:  #<! Pixels and labels stay paired (pixel value == label here)
        assert torch.equal(tX[:, 0, 0, 0].long(), vY)
    oAgain = DeviceBatchLoader(mData, np.arange(50), 8, [0, 0, 0], [1 / 255] * 3, shuffle=True, seed=3)
    assert torch.equal(torch.cat([vY for _, vY in oAgain]), lEpoch1)
    assert len(DeviceBatchLoader(mData, np.arange(50), 8, [0] * 3, [1] * 3, dropLast=True)) == 6


def test_random_crop_takes_a_window_of_the_padded_image() -> None:
    oGen = torch.Generator().manual_seed(0)
    tX = torch.randint(1, 256, (16, 3, 10, 10), dtype=torch.uint8, generator=oGen)
    tCrop = RandomCropBatch(tX, 2, oGen)
    tPad = F.pad(tX, (2, 2, 2, 2))
    lOffsets = set()
    for ii in range(16):
        lMatches = [(dy, dx) for dy in range(5) for dx in range(5) if torch.equal(tCrop[ii], tPad[ii, :, dy:dy + 10, dx:dx + 10])]
        assert lMatches, f'crop {ii} is not a window of its padded image'
        lOffsets.add(lMatches[0])
    assert len(lOffsets) > 3  #<! Offsets differ between images


def test_random_flip_flips_some_images_only() -> None:
    oGen = torch.Generator().manual_seed(0)
    tX = torch.rand(64, 3, 4, 5)
    tOut = RandomFlipBatch(tX, 0.5, oGen)
    vFlipped = torch.tensor([torch.equal(tOut[ii], tX[ii].flip(2)) for ii in range(64)])
    vKept = torch.tensor([torch.equal(tOut[ii], tX[ii]) for ii in range(64)])
    assert bool((vFlipped | vKept).all()) and 15 < int(vFlipped.sum()) < 49


def test_channels_last_batches() -> None:
    oLoader = DeviceBatchLoader(np.zeros((4, 6, 6, 3), np.uint8), [0, 1, 2, 3], 2, V_MEAN, V_STD, channelsLast=True)
    tX, _ = next(iter(oLoader))
    assert tX.is_contiguous(memory_format=torch.channels_last)


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match='uint8 N x H x W x C'):
        DeviceBatchLoader(np.zeros((4, 6, 6, 3), np.float32), [0] * 4, 2, V_MEAN, V_STD)
    with pytest.raises(ValueError, match='3 labels for 4 images'):
        DeviceBatchLoader(np.zeros((4, 6, 6, 3), np.uint8), [0] * 3, 2, V_MEAN, V_STD)
