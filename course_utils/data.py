"""Data of the course, online (official downloads) and offline (local copies under the data root).

- CIFAR-10: ``LoadCifar10`` (official archive or class folders) and the course's recipe, written once:
  ``MakeCifar10Loaders`` (validation split off the training set, train-split statistics, crop / flip, loaders).
- Fashion-MNIST: ``LoadFashionMnist`` (torchvision's raw layout).
- Stratified subsets and splits, streaming channel statistics.

The CIFAR-10 data sets share the interface of ``torchvision.datasets.CIFAR10``:
``.data`` (uint8, N x 32 x 32 x 3), ``.targets`` (list of int), ``.classes``,
``.class_to_idx``, a settable ``.transform`` and ``ds[i] -> (transform(PIL image), label)``.
"""

from __future__ import annotations

import copy
import hashlib
import os
import struct
import urllib.error
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
import torchvision.transforms.v2 as TF
from torchvision.datasets import CIFAR10, FashionMNIST, VisionDataset

from .config import (DATA_DIR_ENV, CorruptDataError, GetCacheDir, GetDataRoot, GetDevice, GetNumWorkers,
                     MissingDataError)
from .fast_data import DeviceBatchLoader
from .files import WriteAtomically

CIFAR10_CLASSES: tuple[str, ...] = (
    'airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck',
)
FOLDER_LAYOUT_DIR = 'cifar-10-images'  #<! Class-folder copy: <root>/cifar-10-images/{train,test}/<class>/*.jpg
OFFICIAL_ARCHIVE_DIR = CIFAR10.base_folder  #<! 'cifar-10-batches-py', what torchvision extracts
IMAGE_SUFFIXES = frozenset({'.jpg', '.jpeg', '.png'})
IMAGE_SHAPE = (32, 32, 3)
_CACHE_FORMAT = 'v2'  #<! Bump when the cache layout or the image order changes, so old files are ignored
FOLDER_ORDER_SEED = 20091  #<! Fixes the class-mixed order of the folder copy (the same on every machine)


# ------------------------------------------------------------------------------------------------
# Class-folder source
# ------------------------------------------------------------------------------------------------
def _ScanSplit(splitDir: Path) -> tuple[list[str], list[int], str]:
    """List a class-folder split in a fixed, class-mixed order and fingerprint it.

    The folders group the images by class, while the official archive mixes the classes from its first image:
    code written for it (``Subset(ds, range(5000))``) would silently see one class here. So the listing, sorted by
    (class, file name), is shuffled by a permutation of fixed seed: the same order on every machine.
    Returns the image paths, their labels and a hash of names, sizes and modification times,
    which changes whenever any image file is added, removed or rewritten.
    """
    lClasses = sorted(oEntry.name for oEntry in os.scandir(splitDir) if oEntry.is_dir())
    if tuple(lClasses) != CIFAR10_CLASSES:
        raise ValueError(
            f'{splitDir} should hold exactly the 10 CIFAR-10 class folders {list(CIFAR10_CLASSES)}, '
            f'found {lClasses}. Fix the folder layout or point {DATA_DIR_ENV} to a complete copy.'
        )
    oHash = hashlib.sha1(f'{_CACHE_FORMAT}|{FOLDER_ORDER_SEED}|{splitDir.resolve()}'.encode())
    lFiles: list[str] = []
    lLabels: list[int] = []
    for clsIdx, clsName in enumerate(lClasses):
        # Strings and the stat of the scandir entry: ~3x faster than sorting Path objects
        lEntries = sorted((oEntry for oEntry in os.scandir(splitDir / clsName)
                           if oEntry.is_file() and os.path.splitext(oEntry.name)[1].lower() in IMAGE_SUFFIXES),
                          key=lambda oEntry: oEntry.name)
        if not lEntries:
            raise ValueError(f'The class folder {splitDir / clsName} holds no .jpg/.png images.')
        for oEntry in lEntries:
            oStat = oEntry.stat()
            oHash.update(f'{clsName}/{oEntry.name}|{oStat.st_size}|{oStat.st_mtime_ns}\n'.encode())
            lFiles.append(oEntry.path)
        lLabels.extend([clsIdx] * len(lEntries))
    # PCG64 with a fixed seed gives the same permutation on every platform and NumPy version
    vOrder = np.random.Generator(np.random.PCG64(FOLDER_ORDER_SEED)).permutation(len(lFiles))
    return [lFiles[ii] for ii in vOrder], [lLabels[ii] for ii in vOrder], oHash.hexdigest()


def _DecodeImage(filePath: str) -> np.ndarray:
    with Image.open(filePath) as oImg:
        mI = np.asarray(oImg.convert('RGB'))
    if mI.shape != IMAGE_SHAPE:
        raise ValueError(f'{filePath} has shape {mI.shape}, CIFAR-10 images must be {IMAGE_SHAPE}.')
    return mI


def LoadFolderArrays(splitDir: Path | str, cacheDir: Path | str | None = None) -> tuple[np.ndarray, list[int]]:
    """Decode a class-folder split into ``(mData uint8 N x 32 x 32 x 3, lTargets)``, cached on disk.

    The cache (a plain ``.npy`` of the pixels; the labels follow from the listing) is keyed by the
    files' names, sizes and modification times, so a changed folder is decoded again. Nothing is
    ever written into ``splitDir``.
    """
    splitDir = Path(splitDir)
    lFiles, lLabels, fingerprint = _ScanSplit(splitDir)
    cachePath = Path(cacheDir or GetCacheDir()) / f'cifar10-{splitDir.name}-{fingerprint[:20]}.npy'

    if cachePath.is_file():
        try:
            mData = np.load(cachePath)
            if mData.shape == (len(lFiles), *IMAGE_SHAPE) and mData.dtype == np.uint8:
                return mData, lLabels
        except (OSError, ValueError):
            pass  #<! A broken cache is rebuilt below; it holds nothing the images do not

    # Decoding is I/O and C code (libjpeg releases the GIL), so threads help even on 2 cores
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as oPool:
        mData = np.stack(list(oPool.map(_DecodeImage, lFiles, chunksize=256)))
    try:
        WriteAtomically(cachePath, lambda oFile: np.save(oFile, mData))
    except OSError as oErr:  #<! A read-only cache folder costs speed, never correctness
        warnings.warn(f'Could not write the cache {cachePath} ({oErr}); set COURSE_CACHE_DIR to a writable folder.',
                      stacklevel=2)
    return mData, lLabels


class Cifar10Folder(VisionDataset):
    """CIFAR-10 read from ``<root>/cifar-10-images/{train,test}/<class>/*.{jpg,png}``.

    Same interface as ``torchvision.datasets.CIFAR10``; labels follow the official order
    (the sorted class folder names: airplane=0, ..., truck=9). The images come in a fixed, class-mixed order
    (like the official archive's, not grouped by class), the same on every machine.
    """

    def __init__(self, root: Path | str, train: bool = True, transform: Callable | None = None,
                 target_transform: Callable | None = None, cacheDir: Path | str | None = None) -> None:
        super().__init__(str(root), transform=transform, target_transform=target_transform)
        self.train = train
        self.splitDir = Path(root) / FOLDER_LAYOUT_DIR / ('train' if train else 'test')
        self.data, self.targets = LoadFolderArrays(self.splitDir, cacheDir)
        self.classes = list(CIFAR10_CLASSES)
        self.class_to_idx = {clsName: clsIdx for clsIdx, clsName in enumerate(self.classes)}

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        oImg = Image.fromarray(self.data[index])
        target = self.targets[index]
        if self.transform is not None:
            oImg = self.transform(oImg)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return oImg, target

    def extra_repr(self) -> str:
        return f'Split: {"Train" if self.train else "Test"}\nSource: {self.splitDir}'


# ------------------------------------------------------------------------------------------------
# One entry point
# ------------------------------------------------------------------------------------------------
def _HasOfficialArchive(dataRoot: Path) -> bool:
    archiveDir = dataRoot / OFFICIAL_ARCHIVE_DIR
    return all((archiveDir / fileName).is_file() for fileName, _ in CIFAR10.train_list + CIFAR10.test_list)


def LoadCifar10(isTrain: bool = True, oTransform: Callable | None = None, dataRoot: Path | str | None = None,
                download: bool = True, oTargetTransform: Callable | None = None) -> Dataset:
    """Return the CIFAR-10 train or test split with the ``torchvision.datasets.CIFAR10`` interface.

    Sources, in order:
    1. The official archive already extracted under the data root (``cifar-10-batches-py``).
    2. The class-folder copy ``<root>/cifar-10-images/{train,test}/<class>/*.jpg`` (offline machines, CI).
    3. A download of the official archive into the data root when ``download=True`` (Colab, laptops).

    A local copy is preferred to a download, so offline machines never wait on the network and
    read-only shared data roots are never written to.

    Args:
        isTrain:          ``True`` for the 50,000 training images, ``False`` for the 10,000 test images.
        oTransform:       Transform applied to each PIL image (e.g. ``transforms.ToTensor()``).
        dataRoot:         Folder holding the data; default ``GetDataRoot()`` (``$COURSE_DATA_DIR``).
        download:         Allow downloading the official archive when no local copy exists.
        oTargetTransform: Transform applied to each label.
    """
    dataRoot = Path(dataRoot).expanduser() if dataRoot is not None else GetDataRoot()
    if _HasOfficialArchive(dataRoot):
        return CIFAR10(str(dataRoot), train=isTrain, transform=oTransform,
                       target_transform=oTargetTransform, download=False)
    if (dataRoot / FOLDER_LAYOUT_DIR / ('train' if isTrain else 'test')).is_dir():
        return Cifar10Folder(dataRoot, train=isTrain, transform=oTransform, target_transform=oTargetTransform)

    downloadNote = 'Downloading was not allowed (download=False).'
    if download:
        try:
            return CIFAR10(str(dataRoot), train=isTrain, transform=oTransform,
                           target_transform=oTargetTransform, download=True)
        except (urllib.error.URLError, OSError, RuntimeError) as oErr:
            downloadNote = f'Downloading the official archive failed: {type(oErr).__name__}: {oErr}'
    raise MissingDataError(
        f'CIFAR-10 was not found under the data root {dataRoot}.', downloadNote,
        f'LoadCifar10(..., download=True) fetches the official archive into {dataRoot / OFFICIAL_ARCHIVE_DIR}.',
        f'place the class-folder copy at {dataRoot / FOLDER_LAYOUT_DIR}/{{train,test}}/<class>/*.jpg.')


# ------------------------------------------------------------------------------------------------
# Fashion-MNIST
# ------------------------------------------------------------------------------------------------
FASHION_MNIST_DIR = FashionMNIST.__name__  #<! torchvision's layout: <root>/FashionMNIST/raw/*-ubyte
FASHION_MNIST_CLASSES: tuple[str, ...] = tuple(FashionMNIST.classes)


def _FashionMnistRawFiles(dataRoot: Path) -> list[Path]:
    # The uncompressed files torchvision reads (the download URLs without their `.gz`)
    rawDir = dataRoot / FASHION_MNIST_DIR / 'raw'
    return [rawDir / os.path.splitext(os.path.basename(fileName))[0] for fileName, _ in FashionMNIST.resources]


# The IDX files of Fashion-MNIST: magic number (0x0803 images, 0x0801 labels), then the sizes, then uint8 data
_IDX_MAGIC = {'images': 2051, 'labels': 2049}


def _CheckIdxFile(filePath: Path) -> None:
    """Raise ``CorruptDataError`` when a raw Fashion-MNIST file is not what torchvision can read: its magic number,
    its sizes (N x 28 x 28 images or N labels) and its length (the header plus the N items the header announces)."""
    kind = 'images' if 'images' in filePath.name else 'labels'
    numDims = 3 if kind == 'images' else 1
    sizeHeader = 4 * (1 + numDims)
    fix = (f'delete {filePath.name} and call LoadFashionMnist(..., download=True) to download it again, or copy the '
           f'official file anew (uncompressed) into {filePath.parent}')
    with open(filePath, 'rb') as oFile:
        rawHeader = oFile.read(sizeHeader)
    if len(rawHeader) < sizeHeader:
        raise CorruptDataError(filePath, f'only {len(rawHeader)} bytes, too short for an IDX header', fix)
    valMagic, *lDims = struct.unpack(f'>{1 + numDims}i', rawHeader)
    if valMagic != _IDX_MAGIC[kind]:
        raise CorruptDataError(filePath, f'bad magic number {valMagic} (an IDX {kind} file starts with '
                                         f'{_IDX_MAGIC[kind]}): not a Fashion-MNIST {kind} file, or still compressed', fix)
    if kind == 'images' and tuple(lDims[1:]) != (28, 28):
        raise CorruptDataError(filePath, f'images of {lDims[1]} x {lDims[2]} pixels, Fashion-MNIST\'s are 28 x 28', fix)
    sizeExpected = sizeHeader + int(np.prod(lDims))
    sizeGot = filePath.stat().st_size
    if sizeGot != sizeExpected:
        raise CorruptDataError(filePath, f'{sizeGot:,} bytes, but its header announces {lDims[0]:,} {kind}, '
                                         f'{sizeExpected:,} bytes (the file is '
                                         f'{"truncated" if sizeGot < sizeExpected else "longer than its header says"})',
                               fix)


def LoadFashionMnist(isTrain: bool = True, oTransform: Callable | None = None, dataRoot: Path | str | None = None,
                     download: bool = True, oTargetTransform: Callable | None = None) -> FashionMNIST:
    """Return the Fashion-MNIST train (60,000) or test (10,000) split as ``torchvision.datasets.FashionMNIST``.

    Reads ``<root>/FashionMNIST/raw/*-ubyte`` (torchvision's own layout) when the four files are there, and then
    never writes into the data root. Otherwise, with ``download=True``, torchvision downloads them into it
    (Colab, laptops). Without both, the error names the two ways to provide the data.
    ``ds[i] -> (transform(PIL image 28 x 28, mode L), label)``; ``.data`` is uint8 N x 28 x 28, ``.targets`` a tensor.
    A local file that is truncated or not an IDX file of the right size raises an error that names it.
    """
    dataRoot = Path(dataRoot).expanduser() if dataRoot is not None else GetDataRoot()
    dArgs = dict(train=isTrain, transform=oTransform, target_transform=oTargetTransform)
    if all(filePath.is_file() for filePath in _FashionMnistRawFiles(dataRoot)):
        for filePath in _FashionMnistRawFiles(dataRoot):
            _CheckIdxFile(filePath)
        return FashionMNIST(str(dataRoot), download=False, **dArgs)

    downloadNote = 'Downloading was not allowed (download=False).'
    if download:
        try:
            return FashionMNIST(str(dataRoot), download=True, **dArgs)
        except (urllib.error.URLError, OSError, RuntimeError) as oErr:
            downloadNote = f'Downloading failed: {type(oErr).__name__}: {oErr}'
    lMissing = [filePath.name for filePath in _FashionMnistRawFiles(dataRoot) if not filePath.is_file()]
    rawDir = dataRoot / FASHION_MNIST_DIR / 'raw'
    raise MissingDataError(
        f'Fashion-MNIST was not found under the data root {dataRoot} (missing: {", ".join(lMissing)}).', downloadNote,
        f'LoadFashionMnist(..., download=True) downloads the official files into {rawDir}.',
        f'copy the four official files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, '
        f't10k-labels-idx1-ubyte, uncompressed) into {rawDir}.')


# ------------------------------------------------------------------------------------------------
# Subsets
# ------------------------------------------------------------------------------------------------
def StratifiedIndices(vY: Sequence[int] | np.ndarray, numPerClass: int, seed: int = 0) -> np.ndarray:
    """Return sorted indices of ``numPerClass`` randomly chosen samples of every class (seeded)."""
    vY = np.asarray(vY)
    if numPerClass < 1:
        raise ValueError(f'numPerClass must be at least 1, got {numPerClass}.')
    oRng = np.random.default_rng(seed)
    lIdx = []
    for clsLabel in np.unique(vY):
        vClsIdx = np.flatnonzero(vY == clsLabel)
        if numPerClass > len(vClsIdx):
            raise ValueError(f'Class {clsLabel} has only {len(vClsIdx)} samples, {numPerClass} were asked for.')
        lIdx.append(oRng.choice(vClsIdx, size=numPerClass, replace=False))
    return np.sort(np.concatenate(lIdx))


def SubsetByIndices(dsData: Dataset, vIdx: Sequence[int] | np.ndarray) -> Dataset:
    """Return a copy of a CIFAR-style data set holding only ``vIdx`` (same class, same interface).

    Unlike ``torch.utils.data.Subset``, the result keeps ``.data``, ``.targets`` and its own
    settable ``.transform`` (the copy's transform can differ from the original's).
    """
    if not (hasattr(dsData, 'data') and hasattr(dsData, 'targets')):
        raise TypeError(f'{type(dsData).__name__} has no .data / .targets arrays; use torch.utils.data.Subset instead.')
    vIdx = np.asarray(vIdx, dtype=np.int64)
    dsSubset = copy.copy(dsData)
    dsSubset.data = dsData.data[vIdx]
    dsSubset.targets = [int(dsData.targets[ii]) for ii in vIdx]
    return dsSubset


def StratifiedSubset(dsData: Dataset, numPerClass: int, seed: int = 0) -> Dataset:
    """Return ``numPerClass`` random samples of every class of a CIFAR-style data set (seeded)."""
    return SubsetByIndices(dsData, StratifiedIndices(dsData.targets, numPerClass, seed))


def StratifiedSplit(dsData: Dataset, numValPerClass: int, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Split a CIFAR-style data set into ``(dsTrain, dsVal)`` with ``numValPerClass`` of every class in ``dsVal``."""
    vValIdx = StratifiedIndices(dsData.targets, numValPerClass, seed)
    vTrainIdx = np.setdiff1d(np.arange(len(dsData.targets)), vValIdx, assume_unique=True)
    return SubsetByIndices(dsData, vTrainIdx), SubsetByIndices(dsData, vValIdx)


# ------------------------------------------------------------------------------------------------
# Statistics
# ------------------------------------------------------------------------------------------------
def _AccumulateDtype(device: torch.device | str) -> torch.dtype:
    """The dtype ``ChannelMeanStd`` sums in on ``device``: float64, except on Apple MPS, which has no float64."""
    return torch.float32 if torch.device(device).type == 'mps' else torch.float64


def ChannelMeanStd(dlData: Iterable) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (population) standard deviation in one streaming pass over a loader (or any iterable).

    Uses Var[X] = E[X^2] - E[X]^2, accumulated in float64 so that 50,000 images lose no precision (float32 on
    Apple MPS, which has no float64). The sums stay on the batches' device: no host sync per batch.
    The loader yields ``tX`` (N x C x H x W) or ``(tX, vY)`` batches; returns two length-C tensors.
    """
    vSum = vSumSq = None
    numPixels = 0
    for batch in dlData:
        tX = batch[0] if isinstance(batch, (tuple, list)) else batch
        if tX.ndim != 4:
            raise ValueError(f'Expected batches of shape N x C x H x W, got {tuple(tX.shape)}.')
        tX = tX.to(_AccumulateDtype(tX.device))
        vBatchSum = tX.sum(dim=(0, 2, 3))
        vBatchSumSq = tX.square().sum(dim=(0, 2, 3))
        vSum = vBatchSum if vSum is None else vSum + vBatchSum
        vSumSq = vBatchSumSq if vSumSq is None else vSumSq + vBatchSumSq
        numPixels += tX.shape[0] * tX.shape[2] * tX.shape[3]
    if numPixels == 0:
        raise ValueError('The data loader yielded no samples.')
    vMean = vSum / numPixels
    vVar = (vSumSq / numPixels - vMean.square()).clamp_min(0)  #<! Rounding can make it -1e-17
    return vMean.float(), vVar.sqrt().float()


def UInt8ImagesMeanStd(mData: np.ndarray, batchSize: int = 5000) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of ``[0, 1]`` pixels of uint8 ``N x H x W x C`` images (``ChannelMeanStd``)."""
    tData = torch.from_numpy(np.asarray(mData))
    if tData.dtype != torch.uint8 or tData.ndim != 4:
        raise ValueError(f'Expected uint8 images N x H x W x C, got {tData.dtype} of shape {tuple(tData.shape)}.')
    # Batches as ToImage() + ToDtype(scale=True) would give them, without a float copy of the whole set
    return ChannelMeanStd(tData[ii:ii + batchSize].permute(0, 3, 1, 2).float() / 255
                          for ii in range(0, len(tData), batchSize))


# ------------------------------------------------------------------------------------------------
# The CIFAR-10 recipe of the course (taught step by step in the CIFAR-10 training lesson)
# ------------------------------------------------------------------------------------------------
def Cifar10Transforms(vMean: Sequence[float] | torch.Tensor, vStd: Sequence[float] | torch.Tensor,
                      augment: bool = True) -> tuple[TF.Compose, TF.Compose]:
    """Return ``(oTrainTransform, oEvalTransform)`` for PIL images: crop (padding 4) and flip, then standardize.

    With ``augment=False`` the training transform is the evaluation one (no crop, no flip).
    """
    oEvalTransform = TF.Compose([TF.ToImage(), TF.ToDtype(torch.float32, scale=True),
                                 TF.Normalize(mean=[float(v) for v in vMean], std=[float(v) for v in vStd])])
    if not augment:
        return oEvalTransform, oEvalTransform
    return TF.Compose([TF.RandomCrop(32, padding=4), TF.RandomHorizontalFlip(), oEvalTransform]), oEvalTransform


class Cifar10Loaders(NamedTuple):
    """What ``MakeCifar10Loaders`` returns: the loaders, the data sets behind them and the statistics used."""

    dlTrain: DataLoader | DeviceBatchLoader
    dlVal: DataLoader | DeviceBatchLoader
    dlTest: DataLoader | DeviceBatchLoader
    dsTrain: Dataset
    dsVal: Dataset
    dsTest: Dataset
    vMean: torch.Tensor
    vStd: torch.Tensor
    lClasses: list[str]


def MakeCifar10Loaders(batchSize: int = 128, numValPerClass: int = 500, numTrainPerClass: int | None = None, *,
                       seed: int = 0, augment: bool = True, fastData: bool = False,
                       device: torch.device | str | None = None, numWorkers: int | None = None,
                       channelsLast: bool = False, evalBatchSize: int | None = None,
                       dataRoot: Path | str | None = None) -> Cifar10Loaders:
    """The course's CIFAR-10 data recipe in one call.

    1. Split ``numValPerClass`` images of every class off the training set (stratified, seeded), then keep
       ``numTrainPerClass`` of every class of the rest (``None``: all of it).
    2. Standardize with the per-channel mean and std of the **training split** only.
    3. Train with random crop (padding 4) and horizontal flip when ``augment``; evaluate without augmentation.
    4. Loaders: ``DataLoader`` with ``GetNumWorkers(device)`` workers (``pin_memory`` on CUDA), or, with
       ``fastData=True``, ``DeviceBatchLoader`` (the whole set on ``device``, batched crop / flip).

    Args:
        batchSize:        Training batch size (the last, smaller batch is dropped).
        numValPerClass:   Validation images per class, taken from the 50,000 training images.
        numTrainPerClass: Training images per class (``None``: all that remain).
        seed:             Seed of the split, the subset, the shuffling and the augmentation.
        augment:          Crop and flip the training images.
        fastData:         Use ``DeviceBatchLoader`` instead of ``DataLoader``.
        device:           Where the model runs (default ``GetDevice()``): picks workers, pinning, the fast path's device.
        numWorkers:       ``DataLoader`` workers (default ``GetNumWorkers(device)``).
        channelsLast:     ``fastData`` only: yield channels-last batches.
        evalBatchSize:    Batch size of validation and test (default ``2 * batchSize``: no gradients, more fits).
        dataRoot:         Data root (default ``GetDataRoot()``).

    Returns:
        ``Cifar10Loaders(dlTrain, dlVal, dlTest, dsTrain, dsVal, dsTest, vMean, vStd, lClasses)``; the data sets
        carry the transforms the loaders use.
    """
    oDevice = torch.device(device) if device is not None else GetDevice()
    evalBatchSize = evalBatchSize or 2 * batchSize
    dsTrainAll = LoadCifar10(isTrain=True, dataRoot=dataRoot)
    dsTest = LoadCifar10(isTrain=False, dataRoot=dataRoot)
    dsTrain, dsVal = StratifiedSplit(dsTrainAll, numValPerClass, seed=seed)
    if numTrainPerClass is not None:
        dsTrain = StratifiedSubset(dsTrain, numTrainPerClass, seed=seed)
    vMean, vStd = UInt8ImagesMeanStd(dsTrain.data)
    lClasses = list(dsTrainAll.classes)

    if fastData:
        dArgs = dict(vMean=vMean, vStd=vStd, device=oDevice, channelsLast=channelsLast)
        dlTrain = DeviceBatchLoader.FromDataset(dsTrain, batchSize, shuffle=True, dropLast=True, seed=seed,
                                                cropPadding=4 if augment else 0, flipProb=0.5 if augment else 0.0,
                                                **dArgs)
        dlVal = DeviceBatchLoader.FromDataset(dsVal, evalBatchSize, **dArgs)
        dlTest = DeviceBatchLoader.FromDataset(dsTest, evalBatchSize, **dArgs)
        return Cifar10Loaders(dlTrain, dlVal, dlTest, dsTrain, dsVal, dsTest, vMean, vStd, lClasses)

    oTrainTransform, oEvalTransform = Cifar10Transforms(vMean, vStd, augment)
    dsTrain.transform, dsVal.transform, dsTest.transform = oTrainTransform, oEvalTransform, oEvalTransform
    numWorkers = GetNumWorkers(oDevice) if numWorkers is None else numWorkers
    dLoaderArgs = dict(num_workers=numWorkers, pin_memory=oDevice.type == 'cuda', persistent_workers=numWorkers > 0)
    dlTrain = DataLoader(dsTrain, batch_size=batchSize, shuffle=True, drop_last=True,
                         generator=torch.Generator().manual_seed(seed), **dLoaderArgs)
    dlVal = DataLoader(dsVal, batch_size=evalBatchSize, **dLoaderArgs)
    dlTest = DataLoader(dsTest, batch_size=evalBatchSize, **dLoaderArgs)
    return Cifar10Loaders(dlTrain, dlVal, dlTest, dsTrain, dsVal, dsTest, vMean, vStd, lClasses)
