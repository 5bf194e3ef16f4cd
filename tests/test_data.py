"""Data access: folder source interface, label order, cache, errors, subsets and streaming statistics."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.v2 as T
from conftest import NUM_PER_CLASS, ClassColor
from PIL import Image
from torch.utils.data import DataLoader

import course_utils.data as cuData
from course_utils import (
    ChannelMeanStd,
    GetDataRoot,
    IsQuickMode,
    LoadCifar10,
    StratifiedIndices,
    StratifiedSplit,
    StratifiedSubset,
)

TORCHVISION_CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer',
                               'dog', 'frog', 'horse', 'ship', 'truck']


def _TreeSnapshot(rootDir: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(rootDir)): (p.stat().st_size, p.stat().st_mtime_ns) for p in rootDir.rglob('*')}


# ------------------------------------------------------------------------------------------------
# Folder source
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('isTrain', [True, False])
def test_folder_source_has_the_torchvision_cifar10_interface(folderRoot: Path, isTrain: bool) -> None:
    dsData = LoadCifar10(isTrain, dataRoot=folderRoot, download=False)
    numImg = NUM_PER_CLASS['train' if isTrain else 'test'] * 10
    assert isinstance(dsData, cuData.Cifar10Folder)
    assert dsData.data.shape == (numImg, 32, 32, 3) and dsData.data.dtype == np.uint8
    assert isinstance(dsData.targets, list) and all(type(y) is int for y in dsData.targets)
    assert len(dsData) == numImg
    assert dsData.classes == TORCHVISION_CIFAR10_CLASSES
    assert dsData.class_to_idx == {name: idx for idx, name in enumerate(TORCHVISION_CIFAR10_CLASSES)}
    oImg, label = dsData[0]
    assert isinstance(oImg, Image.Image) and oImg.size == (32, 32) and isinstance(label, int)
    dsData.transform = T.Compose([T.ToImage(), T.ToDtype(torch.float32, scale=True)])
    tX, _ = dsData[0]
    assert tX.shape == (3, 32, 32) and tX.dtype == torch.float32 and float(tX.max()) <= 1.0


def test_folder_labels_follow_the_official_order(folderRoot: Path) -> None:
    dsData = LoadCifar10(True, dataRoot=folderRoot, download=False)
    for ii, label in enumerate(dsData.targets):
        assert tuple(dsData.data[ii, 5, 5]) == ClassColor(label)  #<! Pixels come from that class's folder
    assert dsData.class_to_idx['airplane'] == 0 and dsData.class_to_idx['truck'] == 9
    vCounts = np.bincount(dsData.targets, minlength=10)
    assert (vCounts == NUM_PER_CLASS['train']).all()
    # The order is a fixed permutation of the (class, file name) listing: the same on every machine
    numPerClass = NUM_PER_CLASS['train']
    vOrder = np.random.Generator(np.random.PCG64(cuData.FOLDER_ORDER_SEED)).permutation(10 * numPerClass)
    assert dsData.targets == [int(idx) // numPerClass for idx in vOrder]
    assert [int(dsData.data[ii, 0, 0, 0]) for ii in range(len(vOrder))] == [int(idx) % numPerClass for idx in vOrder]


def test_folder_order_mixes_the_classes_and_survives_the_cache(folderRoot: Path, isolatedCache: Path) -> None:
    dsFirst = LoadCifar10(True, dataRoot=folderRoot, download=False)   #<! Decodes, writes the cache
    dsSecond = LoadCifar10(True, dataRoot=folderRoot, download=False)  #<! Reads the cache
    assert dsFirst.targets == dsSecond.targets and np.array_equal(dsFirst.data, dsSecond.data)
    vTargets = np.asarray(dsFirst.targets)
    assert (vTargets[:-1] != vTargets[1:]).mean() > 0.5  #<! Not grouped by class


@pytest.mark.parametrize('isTrain', [True, False])
def test_first_100_images_of_the_real_copy_hold_every_class(sharedCifarRoot: Path, isTrain: bool) -> None:
    # Code written for the official archive takes "the first N images": it must not train on airplanes only
    dsData = LoadCifar10(isTrain, dataRoot=sharedCifarRoot, download=False)
    assert set(dsData.targets[:100]) == set(range(10))


def test_folder_source_never_writes_into_the_data_root(folderRoot: Path, isolatedCache: Path) -> None:
    tuBefore = _TreeSnapshot(folderRoot)
    LoadCifar10(True, dataRoot=folderRoot, download=True)
    LoadCifar10(False, dataRoot=folderRoot, download=True)
    assert _TreeSnapshot(folderRoot) == tuBefore
    assert len(list(isolatedCache.glob('*.npy'))) == 2


def test_cache_is_reused_without_decoding(folderRoot: Path, isolatedCache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dsFirst = LoadCifar10(True, dataRoot=folderRoot, download=False)
    lCacheFiles = list(isolatedCache.glob('cifar10-train-*.npy'))
    assert len(lCacheFiles) == 1

    def FailDecode(filePath: str) -> np.ndarray:
        raise AssertionError(f'{filePath} was decoded although the cache is valid')

    monkeypatch.setattr(cuData, '_DecodeImage', FailDecode)
    dsSecond = LoadCifar10(True, dataRoot=folderRoot, download=False)
    np.testing.assert_array_equal(dsSecond.data, dsFirst.data)
    assert dsSecond.targets == dsFirst.targets


def test_cache_is_rebuilt_when_an_image_changes(folderRoot: Path, isolatedCache: Path) -> None:
    LoadCifar10(True, dataRoot=folderRoot, download=False)
    imgPath = folderRoot / 'cifar-10-images' / 'train' / 'cat' / '0001.png'
    Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(imgPath)
    dsData = LoadCifar10(True, dataRoot=folderRoot, download=False)
    # Where the fixed class-mixed order put cat 0001 (index 1 of class 3 in the sorted listing)
    vOrder = np.random.Generator(np.random.PCG64(cuData.FOLDER_ORDER_SEED)).permutation(len(dsData))
    catIdx = int(np.flatnonzero(vOrder == 3 * NUM_PER_CLASS['train'] + 1)[0])
    assert dsData.data[catIdx].max() == 0  #<! The new pixels, not the cached ones
    assert len(list(isolatedCache.glob('cifar10-train-*.npy'))) == 2


def test_broken_cache_is_rebuilt(folderRoot: Path, isolatedCache: Path) -> None:
    dsFirst = LoadCifar10(True, dataRoot=folderRoot, download=False)
    (cacheFile,) = isolatedCache.glob('cifar10-train-*.npy')
    cacheFile.write_bytes(b'not a numpy file')
    dsSecond = LoadCifar10(True, dataRoot=folderRoot, download=False)
    np.testing.assert_array_equal(dsSecond.data, dsFirst.data)


def test_missing_data_gives_an_error_naming_both_ways(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as oErr:
        LoadCifar10(True, dataRoot=tmp_path / 'empty', download=False)
    message = str(oErr.value)
    assert 'download=True' in message and 'cifar-10-images' in message and 'COURSE_DATA_DIR' in message
    assert str(tmp_path / 'empty') in message


def test_incomplete_class_folders_are_rejected(folderRoot: Path) -> None:
    for imgPath in (folderRoot / 'cifar-10-images' / 'train' / 'truck').iterdir():
        imgPath.unlink()
    (folderRoot / 'cifar-10-images' / 'train' / 'truck').rmdir()
    with pytest.raises(ValueError, match='10 CIFAR-10 class folders'):
        LoadCifar10(True, dataRoot=folderRoot, download=False)


def test_wrong_image_size_is_rejected(folderRoot: Path) -> None:
    Image.fromarray(np.zeros((28, 28, 3), dtype=np.uint8)).save(folderRoot / 'cifar-10-images/train/dog/0000.png')
    with pytest.raises(ValueError, match='0000.png has shape'):
        LoadCifar10(True, dataRoot=folderRoot, download=False)


def test_real_cifar10_folder_copy(sharedCifarRoot: Path) -> None:
    dsTrain = LoadCifar10(True, dataRoot=sharedCifarRoot, download=False)
    dsTest = LoadCifar10(False, dataRoot=sharedCifarRoot, download=False)
    assert dsTrain.data.shape == (50_000, 32, 32, 3) and dsTest.data.shape == (10_000, 32, 32, 3)
    assert (np.bincount(dsTrain.targets) == 5_000).all() and (np.bincount(dsTest.targets) == 1_000).all()
    assert dsTrain.classes == TORCHVISION_CIFAR10_CLASSES


# ------------------------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------------------------
def test_data_root_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('COURSE_DATA_DIR', str(tmp_path))
    assert GetDataRoot() == tmp_path.resolve()
    monkeypatch.delenv('COURSE_DATA_DIR')
    assert GetDataRoot() == Path(cuData.__file__).resolve().parent.parent / 'datasets'


@pytest.mark.parametrize(('envValue', 'isQuick'), [('1', True), ('true', True), ('YES', True), ('0', False),
                                                   ('false', False), ('', False)])
def test_quick_mode_flag(monkeypatch: pytest.MonkeyPatch, envValue: str, isQuick: bool) -> None:
    monkeypatch.setenv('COURSE_QUICK', envValue)
    assert IsQuickMode() is isQuick


def test_quick_mode_rejects_unclear_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('COURSE_QUICK', 'maybe')
    with pytest.raises(ValueError, match='COURSE_QUICK'):
        IsQuickMode()


# ------------------------------------------------------------------------------------------------
# Subsets
# ------------------------------------------------------------------------------------------------
def test_stratified_indices_take_n_per_class_reproducibly() -> None:
    vY = np.repeat(np.arange(10), 50)[np.random.default_rng(1).permutation(500)]
    vIdx = StratifiedIndices(vY, 7, seed=3)
    assert len(vIdx) == 70 and len(np.unique(vIdx)) == 70
    assert (np.bincount(vY[vIdx], minlength=10) == 7).all()
    np.testing.assert_array_equal(vIdx, StratifiedIndices(vY, 7, seed=3))
    assert not np.array_equal(vIdx, StratifiedIndices(vY, 7, seed=4))


def test_stratified_indices_reject_too_many_per_class() -> None:
    with pytest.raises(ValueError, match='only 5 samples'):
        StratifiedIndices(np.repeat(np.arange(3), 5), 6)


def test_stratified_subset_and_split_keep_the_interface(folderRoot: Path) -> None:
    dsData = LoadCifar10(True, dataRoot=folderRoot, download=False)
    dsSub = StratifiedSubset(dsData, 2, seed=0)
    assert type(dsSub) is type(dsData) and dsSub.data.shape == (20, 32, 32, 3)
    assert np.bincount(dsSub.targets).tolist() == [2] * 10
    for ii, label in enumerate(dsSub.targets):
        assert tuple(dsSub.data[ii, 5, 5]) == ClassColor(label)  #<! Images and labels stay paired

    dsTrain, dsVal = StratifiedSplit(dsData, 2, seed=0)
    assert len(dsTrain) + len(dsVal) == len(dsData) and np.bincount(dsVal.targets).tolist() == [2] * 10
    lAll = sorted(map(bytes, np.concatenate([dsTrain.data, dsVal.data]).reshape(len(dsData), -1)))
    assert lAll == sorted(map(bytes, dsData.data.reshape(len(dsData), -1)))  #<! Disjoint and complete
    dsVal.transform = T.ToImage()
    assert dsTrain.transform is None  #<! Each part has its own transform


# ------------------------------------------------------------------------------------------------
# Streaming statistics
# ------------------------------------------------------------------------------------------------
def _NumpyChannelStats(mData: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mX = mData.astype(np.float64) / 255
    return mX.mean(axis=(0, 1, 2)), mX.std(axis=(0, 1, 2))


@pytest.mark.parametrize('batchSize', [1, 7, 64])
def test_channel_mean_std_matches_numpy(batchSize: int) -> None:
    mData = np.random.default_rng(0).integers(0, 256, size=(150, 8, 8, 3), dtype=np.uint8)
    mData[..., 1] //= 3  #<! Channels with different statistics
    tX = torch.from_numpy(mData).permute(0, 3, 1, 2).float() / 255
    vMean, vStd = ChannelMeanStd(DataLoader(tX, batch_size=batchSize))
    vMeanRef, vStdRef = _NumpyChannelStats(mData)
    np.testing.assert_allclose(vMean.numpy(), vMeanRef, rtol=1e-6)
    np.testing.assert_allclose(vStd.numpy(), vStdRef, rtol=1e-6)


def test_channel_mean_std_on_the_real_train_split(sharedCifarRoot: Path) -> None:
    dsTrain = LoadCifar10(True, oTransform=T.Compose([T.ToImage(), T.ToDtype(torch.float32, scale=True)]),
                          dataRoot=sharedCifarRoot, download=False)
    vMean, vStd = ChannelMeanStd(DataLoader(dsTrain, batch_size=1000))
    vMeanRef, vStdRef = _NumpyChannelStats(dsTrain.data)  #<! The full 50,000 x 32 x 32 x 3 array
    np.testing.assert_allclose(vMean.numpy(), vMeanRef, rtol=1e-5)
    np.testing.assert_allclose(vStd.numpy(), vStdRef, rtol=1e-5)


def test_channel_mean_std_rejects_an_empty_loader() -> None:
    with pytest.raises(ValueError, match='no samples'):
        ChannelMeanStd(DataLoader(torch.empty(0, 3, 4, 4), batch_size=4))


@pytest.mark.parametrize(('system', 'numCores', 'device', 'numWorkers'), [
    ('Windows', 16, 'cuda', 0), ('Darwin', 8, 'mps', 0), ('Linux', 2, 'cpu', 0), ('Linux', 16, 'cpu', 4),
    ('Linux', 2, 'cuda', 1), ('Linux', 16, 'cuda', 4)])
def test_num_workers_by_platform_and_device(monkeypatch: pytest.MonkeyPatch, system: str, numCores: int, device: str,
                                            numWorkers: int) -> None:
    import course_utils.config as cuConfig
    monkeypatch.setattr(cuConfig.platform, 'system', lambda: system)
    monkeypatch.setattr(cuConfig.os, 'cpu_count', lambda: numCores)
    assert cuConfig.GetNumWorkers(device) == numWorkers


# ------------------------------------------------------------------------------------------------
# Fashion-MNIST
# ------------------------------------------------------------------------------------------------
def _WriteIdx(filePath: Path, aData: np.ndarray) -> None:
    """An IDX file as the official release has it: magic (0, 0, uint8 type, dims), big-endian sizes, bytes."""
    header = bytes([0, 0, 0x08, aData.ndim]) + b''.join(int(n).to_bytes(4, 'big') for n in aData.shape)
    filePath.write_bytes(header + aData.astype(np.uint8).tobytes())


def MakeFashionMnistTree(dataRoot: Path, numTrain: int = 12, numTest: int = 5) -> Path:
    rawDir = dataRoot / cuData.FASHION_MNIST_DIR / 'raw'
    rawDir.mkdir(parents=True)
    for prefix, numImg in (('train', numTrain), ('t10k', numTest)):
        vY = np.arange(numImg) % 10
        tX = np.repeat(vY[:, None, None] * 20, 28 * 28, axis=1).reshape(numImg, 28, 28)  #<! Pixels encode labels
        _WriteIdx(rawDir / f'{prefix}-images-idx3-ubyte', tX)
        _WriteIdx(rawDir / f'{prefix}-labels-idx1-ubyte', vY)
    return dataRoot


@pytest.mark.parametrize(('isTrain', 'numImg'), [(True, 12), (False, 5)])
def test_fashion_mnist_reads_the_local_raw_files(tmp_path: Path, isTrain: bool, numImg: int,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    dataRoot = MakeFashionMnistTree(tmp_path / 'data')
    monkeypatch.setattr(cuData.FashionMNIST, 'download', lambda self: pytest.fail('a local copy must not download'))
    dsData = cuData.LoadFashionMnist(isTrain, dataRoot=dataRoot)
    assert len(dsData) == numImg and tuple(dsData.data.shape) == (numImg, 28, 28)
    assert dsData.classes == list(cuData.FASHION_MNIST_CLASSES) and dsData.classes[9] == 'Ankle boot'
    oImg, label = dsData[3]
    assert isinstance(oImg, Image.Image) and oImg.size == (28, 28) and label == 3
    assert np.asarray(oImg).max() == 60  #<! The pixels of image 3, read from the file


def test_fashion_mnist_never_writes_into_the_data_root(tmp_path: Path) -> None:
    dataRoot = MakeFashionMnistTree(tmp_path / 'data')
    tuBefore = _TreeSnapshot(dataRoot)
    cuData.LoadFashionMnist(True, oTransform=T.Compose([T.ToImage(), T.ToDtype(torch.float32, scale=True)]),
                            dataRoot=dataRoot)
    cuData.LoadFashionMnist(False, dataRoot=dataRoot)
    assert _TreeSnapshot(dataRoot) == tuBefore


@pytest.mark.parametrize(('fileName', 'hBreak', 'expected'), [
    ('train-images-idx3-ubyte', lambda b: b[:len(b) // 2], 'truncated'),
    ('t10k-labels-idx1-ubyte', lambda b: b + b'\x00', 'longer than its header says'),
    ('train-labels-idx1-ubyte', lambda b: b'\x1f\x8b' + b[2:], 'bad magic number'),  #<! A gzip file's first bytes
    ('t10k-images-idx3-ubyte', lambda b: b[:6], 'too short for an IDX header'),
])
def test_a_corrupt_fashion_mnist_file_is_named(tmp_path: Path, fileName: str, hBreak, expected: str) -> None:
    dataRoot = MakeFashionMnistTree(tmp_path / 'data')
    filePath = dataRoot / cuData.FASHION_MNIST_DIR / 'raw' / fileName
    filePath.write_bytes(hBreak(filePath.read_bytes()))
    with pytest.raises(ValueError) as oInfo:
        cuData.LoadFashionMnist(fileName.startswith('train'), dataRoot=dataRoot, download=False)
    message = str(oInfo.value)
    assert str(filePath) in message and expected in message
    assert 'download=True' in message and 'copy the official file anew' in message


def test_fashion_mnist_images_of_another_size_are_named(tmp_path: Path) -> None:
    dataRoot = tmp_path / 'data'
    MakeFashionMnistTree(dataRoot)
    _WriteIdx(dataRoot / cuData.FASHION_MNIST_DIR / 'raw' / 'train-images-idx3-ubyte', np.zeros((12, 32, 32)))
    with pytest.raises(ValueError, match='images of 32 x 32 pixels'):
        cuData.LoadFashionMnist(True, dataRoot=dataRoot, download=False)


def test_fashion_mnist_without_data_names_both_ways(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match='not allowed') as oErr:
        cuData.LoadFashionMnist(True, dataRoot=tmp_path, download=False)
    assert 'download=True' in str(oErr.value) and 'Offline' in str(oErr.value) and 'COURSE_DATA_DIR' in str(oErr.value)


def test_fashion_mnist_failed_download_names_both_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.error

    def NoNetwork(self) -> None:
        raise urllib.error.URLError('no network')

    monkeypatch.setattr(cuData.FashionMNIST, 'download', NoNetwork)
    with pytest.raises(FileNotFoundError, match='Downloading failed: URLError') as oErr:
        cuData.LoadFashionMnist(False, dataRoot=tmp_path, download=True)
    assert 't10k-images-idx3-ubyte' in str(oErr.value) and 'Offline' in str(oErr.value)


def test_real_fashion_mnist(monkeypatch: pytest.MonkeyPatch) -> None:
    dataRoot = Path(os.environ.get('COURSE_DATA_DIR', '/nonexistent'))
    if not (dataRoot / cuData.FASHION_MNIST_DIR / 'raw' / 'train-images-idx3-ubyte').is_file():
        pytest.skip('Real Fashion-MNIST not available: set COURSE_DATA_DIR to a folder with FashionMNIST/raw/.')
    dsTrain = cuData.LoadFashionMnist(True, dataRoot=dataRoot, download=False)
    dsTest = cuData.LoadFashionMnist(False, dataRoot=dataRoot, download=False)
    assert len(dsTrain) == 60_000 and len(dsTest) == 10_000
    assert (np.bincount(dsTest.targets.numpy(), minlength=10) == 1000).all()
    assert abs(float(dsTrain.data.float().mean() / 255) - 0.2860) < 1e-3  #<! The README's train pixel mean


# ------------------------------------------------------------------------------------------------
# The CIFAR-10 recipe
# ------------------------------------------------------------------------------------------------
def test_recipe_splits_and_standardizes_with_the_train_split(folderRoot: Path) -> None:
    oData = cuData.MakeCifar10Loaders(batchSize=4, numValPerClass=2, numTrainPerClass=3, seed=1, dataRoot=folderRoot,
                                      device='cpu', numWorkers=0)
    assert (len(oData.dsTrain), len(oData.dsVal), len(oData.dsTest)) == (30, 20, 20)
    assert oData.lClasses == TORCHVISION_CIFAR10_CLASSES
    assert (np.bincount(oData.dsTrain.targets, minlength=10) == 3).all()
    # The statistics are those of the training split's pixels, nothing else
    mX = oData.dsTrain.data.astype(np.float64) / 255
    torch.testing.assert_close(oData.vMean, torch.tensor(mX.mean(axis=(0, 1, 2)), dtype=torch.float32))
    torch.testing.assert_close(oData.vStd, torch.tensor(mX.std(axis=(0, 1, 2)), dtype=torch.float32))
    # Evaluation is deterministic and standardized; training drops the partial batch
    tX, vY = next(iter(oData.dlVal))
    vExpected = (torch.tensor(oData.dsVal.data[0, 5, 5] / 255, dtype=torch.float32) - oData.vMean) / oData.vStd
    torch.testing.assert_close(tX[0, :, 5, 5], vExpected)
    assert vY[0] == oData.dsVal.targets[0]
    assert len(oData.dlTrain) == 30 // 4 and all(len(vYb) == 4 for _, vYb in oData.dlTrain)


def test_recipe_is_reproducible_and_the_fast_path_agrees(folderRoot: Path) -> None:
    dArgs = dict(batchSize=5, numValPerClass=2, seed=3, dataRoot=folderRoot, device='cpu')
    oSlow = cuData.MakeCifar10Loaders(numWorkers=0, **dArgs)
    oFast = cuData.MakeCifar10Loaders(fastData=True, **dArgs)
    assert oSlow.dsTrain.targets == oFast.dsTrain.targets and oSlow.dsVal.targets == oFast.dsVal.targets
    tXSlow, vYSlow = next(iter(oSlow.dlTest))
    tXFast, vYFast = next(iter(oFast.dlTest))
    torch.testing.assert_close(tXFast, tXSlow)  #<! The same standardization on both paths
    assert torch.equal(vYFast, vYSlow)
    assert [vY.tolist() for _, vY in oSlow.dlTrain] == [vY.tolist() for _, vY in cuData.MakeCifar10Loaders(
        numWorkers=0, **dArgs).dlTrain]  #<! The seed fixes the shuffling


def test_recipe_without_augmentation_trains_on_the_eval_transform(folderRoot: Path) -> None:
    oData = cuData.MakeCifar10Loaders(batchSize=4, numValPerClass=2, augment=False, dataRoot=folderRoot,
                                      device='cpu', numWorkers=0)
    assert oData.dsTrain.transform is oData.dsVal.transform
