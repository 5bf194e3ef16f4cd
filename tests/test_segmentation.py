"""Segmentation: the ISBI membrane loader, joint transforms, the split, the U-Net's shapes, Dice loss, scores, tiling."""

from __future__ import annotations

import hashlib

import os
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.v2 as TF
from PIL import Image
from torchvision import tv_tensors

import course_utils.segmentation as cuSeg
from course_utils import (ISBI_CLASSES, BalancedClassWeights, CeDiceLoss, CoarseElasticTransform, DiceLoss, IoUScore,
                          IsbiSplitIndices, IsbiTransforms, LoadIsbiMembranes, ModelShapeTable, PaperElasticStd,
                          PixelWeights, PlotSegmentation, PredictTiled, RandError, RandomRot90, SegmentationScores,
                          UNet, UNetShapeTable, UNetWeightMap, WeightedCrossEntropy)

NUM_SLICES = cuSeg.ISBI_NUM_SLICES
SLICE_SIZE = 32  #<! The fake slices are small; the real ones are 512 x 512


def _FakeSlice(ii: int) -> tuple[np.ndarray, np.ndarray]:
    """A slice whose pixel (0, 0) encodes its number, and a label image (255 = cell, 0 = membrane)."""
    oRng = np.random.default_rng(ii)
    mImage = oRng.integers(0, 256, (SLICE_SIZE, SLICE_SIZE), dtype=np.uint8)
    mImage[0, 0] = ii
    mLabel = np.where(oRng.random((SLICE_SIZE, SLICE_SIZE)) < 0.25, 0, 255).astype(np.uint8)
    return mImage, mLabel


def MakeIsbiTree(dataRoot: Path) -> Path:
    """``<dataRoot>/isbi-2012-membranes/{train/image,train/label,test/image}/<n>.png``, as the real copy."""
    dataDir = dataRoot / cuSeg.ISBI_DIR
    for subDir in ('train/image', 'train/label', 'test/image'):
        (dataDir / subDir).mkdir(parents=True)
    for ii in range(NUM_SLICES):
        mImage, mLabel = _FakeSlice(ii)
        Image.fromarray(mImage).save(dataDir / 'train' / 'image' / f'{ii}.png')
        Image.fromarray(mLabel).save(dataDir / 'train' / 'label' / f'{ii}.png')
        Image.fromarray(255 - mImage).save(dataDir / 'test' / 'image' / f'{ii}.png')
    return dataRoot


@pytest.fixture
def isbiRoot(tmp_path: Path) -> Path:
    return MakeIsbiTree(tmp_path / 'data')


def _TreeSnapshot(rootDir: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(rootDir)): (p.stat().st_size, p.stat().st_mtime_ns) for p in rootDir.rglob('*')}


def _RealRoot() -> Path | None:
    envValue = os.environ.get('COURSE_DATA_DIR', '')
    if envValue and (Path(envValue) / cuSeg.ISBI_DIR / 'train' / 'label' / '0.png').is_file():
        return Path(envValue)
    return None


# ------------------------------------------------------------------------------------------------
# Loader
# ------------------------------------------------------------------------------------------------
def test_local_copy_gives_image_mask_pairs_with_class_indices(isbiRoot: Path) -> None:
    dsTrain = LoadIsbiMembranes('train', dataRoot=isbiRoot, download=False)
    assert len(dsTrain) == NUM_SLICES - 12 and dsTrain.classes == ['cell', 'membrane'] == list(ISBI_CLASSES)
    tImage, tMask = dsTrain[0]
    assert isinstance(tImage, tv_tensors.Image) and isinstance(tMask, tv_tensors.Mask)
    assert tImage.shape == (1, SLICE_SIZE, SLICE_SIZE) and tImage.dtype == torch.uint8
    assert tMask.shape == (SLICE_SIZE, SLICE_SIZE)
    assert set(torch.unique(dsTrain.tMasks).tolist()) == {0, 1}
    for ii, sliceIdx in enumerate(dsTrain.vSliceIdx):  #<! Each slice with its own mask: 0 (membrane) -> 1
        mImage, mLabel = _FakeSlice(int(sliceIdx))
        assert int(dsTrain.tImages[ii, 0, 0, 0]) == sliceIdx
        np.testing.assert_array_equal(dsTrain.tMasks[ii].numpy(), (mLabel == 0).astype(np.uint8))


def test_test_split_has_images_only(isbiRoot: Path) -> None:
    dsTest = LoadIsbiMembranes('test', dataRoot=isbiRoot, download=False)
    assert len(dsTest) == NUM_SLICES and dsTest.tMasks is None
    tImage = dsTest[3]
    assert isinstance(tImage, tv_tensors.Image) and int(tImage[0, 0, 0]) == 255 - 3


def test_loading_never_writes_into_the_data_root(isbiRoot: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def _NoNetwork(*args, **kwargs):
        raise AssertionError('A complete local copy must not trigger a download.')
    monkeypatch.setattr(cuSeg.urllib.request, 'urlopen', _NoNetwork)
    dBefore = _TreeSnapshot(isbiRoot)
    for split in cuSeg.ISBI_SPLITS:
        LoadIsbiMembranes(split, dataRoot=isbiRoot, download=True)
    assert _TreeSnapshot(isbiRoot) == dBefore


def test_missing_data_without_download_names_both_ways(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as oErr:
        LoadIsbiMembranes('train', dataRoot=tmp_path, download=False)
    message = str(oErr.value)
    assert 'download=False' in message and 'zhixuhao/unet' in message and 'COURSE_DATA_DIR' in message
    assert not any(tmp_path.iterdir())  #<! Nothing was created


def test_failed_download_names_both_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def _Offline(*args, **kwargs):
        raise urllib.error.URLError('no network')
    monkeypatch.setattr(cuSeg.urllib.request, 'urlopen', _Offline)
    with pytest.raises(FileNotFoundError, match='(?s)failed.*URLError.*download=True.*Offline'):
        LoadIsbiMembranes('val', dataRoot=tmp_path, download=True)


class _Response:
    """What urlopen returns, for the fake downloads: the bytes, as a context manager."""

    def __init__(self, rawBytes: bytes) -> None:
        self.rawBytes = rawBytes

    def read(self) -> bytes:
        return self.rawBytes

    def __enter__(self):
        return self

    def __exit__(self, *args) -> None:
        return None


def _LocalPath(fileUrl: str) -> str:
    """The local name of a file of the repository's data/membrane (at any ref): its test slices sit in test/."""
    relPath = fileUrl.split('/data/membrane/')[1]
    return relPath.replace('test/', 'test/image/') if relPath.startswith('test/') else relPath


def test_download_fetches_the_missing_files_with_the_repository_layout(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    sourceRoot = MakeIsbiTree(tmp_path / 'source') / cuSeg.ISBI_DIR
    lUrls = []

    def _FakeUrlOpen(fileUrl: str, timeout: float) -> _Response:
        lUrls.append(fileUrl)
        return _Response((sourceRoot / _LocalPath(fileUrl)).read_bytes())

    monkeypatch.setattr(cuSeg.urllib.request, 'urlopen', _FakeUrlOpen)
    monkeypatch.setattr(cuSeg, 'ISBI_SHA256', _Hashes(sourceRoot))  #<! The fake files' own hashes
    dsVal = LoadIsbiMembranes('val', dataRoot=tmp_path / 'new', download=True)
    assert len(lUrls) == 3 * NUM_SLICES and f'{cuSeg.ISBI_URL}/test/7.png' in lUrls  #<! The pinned ref served all
    assert len(dsVal) == 6 and not list((tmp_path / 'new').rglob('*.tmp'))
    assert f'/{cuSeg.ISBI_COMMIT}/' in lUrls[0], 'the download reads the pinned commit, not a moving branch'


def _Hashes(dataDir: Path) -> dict[str, str]:
    return {p.relative_to(dataDir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in dataDir.rglob('*.png')}


def test_a_changed_download_is_refused_and_never_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sourceRoot = MakeIsbiTree(tmp_path / 'source') / cuSeg.ISBI_DIR
    dHashes = _Hashes(sourceRoot)
    monkeypatch.setattr(cuSeg, 'ISBI_SHA256', dHashes)

    def _ChangedUrlOpen(fileUrl: str, timeout: float) -> _Response:
        localPath = _LocalPath(fileUrl)
        rawBytes = (sourceRoot / localPath).read_bytes()
        return _Response(rawBytes + b'\x00' if localPath == 'train/label/3.png' else rawBytes)  #<! One changed file

    monkeypatch.setattr(cuSeg.urllib.request, 'urlopen', _ChangedUrlOpen)
    with pytest.raises(FileNotFoundError) as oInfo:
        LoadIsbiMembranes('train', dataRoot=tmp_path / 'new', download=True)
    message = str(oInfo.value)
    assert 'train/label/3.png' in message and 'SHA-256' in message and dHashes['train/label/3.png'] in message
    assert 'download it again' in message
    assert not (tmp_path / 'new' / cuSeg.ISBI_DIR / 'train' / 'label' / '3.png').exists()


def test_the_master_branch_is_tried_when_the_pinned_commit_is_not_found(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    sourceRoot = MakeIsbiTree(tmp_path / 'source') / cuSeg.ISBI_DIR
    monkeypatch.setattr(cuSeg, 'ISBI_SHA256', _Hashes(sourceRoot))
    lUrls = []

    def _NoShortShaUrlOpen(fileUrl: str, timeout: float) -> _Response:
        lUrls.append(fileUrl)
        if f'/{cuSeg.ISBI_COMMIT}/' in fileUrl:
            raise urllib.error.HTTPError(fileUrl, 404, 'Not Found', {}, None)
        return _Response((sourceRoot / _LocalPath(fileUrl)).read_bytes())

    monkeypatch.setattr(cuSeg.urllib.request, 'urlopen', _NoShortShaUrlOpen)
    assert len(LoadIsbiMembranes('test', dataRoot=tmp_path / 'new', download=True)) == NUM_SLICES
    assert len(lUrls) == 2 * 3 * NUM_SLICES and sum('/master/' in url for url in lUrls) == 3 * NUM_SLICES


def test_pinned_hashes_cover_the_90_files_and_match_the_real_copy() -> None:
    assert len(cuSeg.ISBI_SHA256) == 3 * NUM_SLICES
    assert set(cuSeg.ISBI_SHA256) == {f'{sub}/{ii}.png' for sub in ('train/image', 'train/label', 'test/image')
                                      for ii in range(NUM_SLICES)}
    realRoot = _RealRoot()
    if realRoot is None:
        pytest.skip('The real ISBI copy is not available: set COURSE_DATA_DIR to a folder with isbi-2012-membranes/.')
    assert _Hashes(realRoot / cuSeg.ISBI_DIR) == cuSeg.ISBI_SHA256


def test_a_mask_of_another_size_is_named(isbiRoot: Path) -> None:
    maskPath = isbiRoot / cuSeg.ISBI_DIR / 'train' / 'label' / '0.png'
    Image.fromarray(np.zeros((SLICE_SIZE, SLICE_SIZE + 4), dtype=np.uint8)).save(maskPath)
    with pytest.raises(ValueError) as oInfo:
        LoadIsbiMembranes('labelled', dataRoot=isbiRoot)
    message = str(oInfo.value)
    assert str(maskPath) in message and f'{SLICE_SIZE} x {SLICE_SIZE + 4}' in message and 'download=True' in message


def test_every_mask_of_another_size_is_named_also_when_all_differ(isbiRoot: Path) -> None:
    for ii in range(NUM_SLICES):
        Image.fromarray(np.zeros((SLICE_SIZE // 2, SLICE_SIZE // 2), dtype=np.uint8)).save(
            isbiRoot / cuSeg.ISBI_DIR / 'train' / 'label' / f'{ii}.png')
    with pytest.raises(ValueError, match=r'label/0.png: 16 x 16 pixels where 32 x 32 are expected'):
        LoadIsbiMembranes('labelled', dataRoot=isbiRoot)


def test_a_truncated_slice_is_named(isbiRoot: Path) -> None:
    slicePath = isbiRoot / cuSeg.ISBI_DIR / 'test' / 'image' / '5.png'
    slicePath.write_bytes(slicePath.read_bytes()[:40])
    with pytest.raises(ValueError) as oInfo:
        LoadIsbiMembranes('test', dataRoot=isbiRoot)
    assert str(slicePath) in str(oInfo.value) and 'not a readable PNG image' in str(oInfo.value)


def test_bad_split_and_bad_numval_are_refused(isbiRoot: Path) -> None:
    with pytest.raises(ValueError, match='split must be one of'):
        LoadIsbiMembranes('validation', dataRoot=isbiRoot)
    with pytest.raises(ValueError, match='numVal'):
        LoadIsbiMembranes('val', dataRoot=isbiRoot, numVal=30)
    with pytest.raises(ValueError, match='numHeldOut=10'):
        LoadIsbiMembranes('val', dataRoot=isbiRoot, numVal=20, numHeldOut=10)  #<! Nothing left to train on


@pytest.mark.skipif(_RealRoot() is None, reason='Set COURSE_DATA_DIR to a folder with isbi-2012-membranes/.')
def test_real_copy_is_read_as_class_indices_without_writing() -> None:
    dataRoot = _RealRoot()
    dBefore = _TreeSnapshot(dataRoot / cuSeg.ISBI_DIR)
    dsAll = LoadIsbiMembranes('labelled', dataRoot=dataRoot, download=False)
    assert dsAll.tImages.shape == (NUM_SLICES, 1, 512, 512) and dsAll.tMasks.shape == (NUM_SLICES, 512, 512)
    assert set(torch.unique(dsAll.tMasks).tolist()) == {0, 1}
    assert 0.15 < float(dsAll.tMasks.float().mean()) < 0.30  #<! About 22% membrane (README: 78% cell)
    assert _TreeSnapshot(dataRoot / cuSeg.ISBI_DIR) == dBefore


# ------------------------------------------------------------------------------------------------
# Split
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(('numVal', 'numHeldOut'), [(1, 0), (6, 6), (10, 5), (5, 24)])
def test_split_is_three_contiguous_blocks_in_stack_order(numVal: int, numHeldOut: int) -> None:
    vTrain, vVal, vHeldOut = IsbiSplitIndices(numVal, numHeldOut)
    assert len(vVal) == numVal and len(vHeldOut) == numHeldOut
    assert [*vTrain, *vVal, *vHeldOut] == list(range(NUM_SLICES))  #<! Disjoint, complete, each part contiguous


def test_loaded_splits_follow_the_blocks(isbiRoot: Path) -> None:
    dSplits = {split: LoadIsbiMembranes(split, dataRoot=isbiRoot) for split in ('train', 'val', 'heldout', 'trainval',
                                                                               'labelled')}
    for split, vIdx in zip(('train', 'val', 'heldout'), IsbiSplitIndices(6, 6)):
        np.testing.assert_array_equal(dSplits[split].vSliceIdx, vIdx)
        assert dSplits[split].tImages[:, 0, 0, 0].tolist() == vIdx.tolist()  #<! The slice files themselves
    assert dSplits['trainval'].vSliceIdx.tolist() == list(range(NUM_SLICES - 6))
    assert dSplits['labelled'].vSliceIdx.tolist() == list(range(NUM_SLICES))


# ------------------------------------------------------------------------------------------------
# Joint transforms
# ------------------------------------------------------------------------------------------------
def _PairWithMaskFromImage(valH: int = 24, valW: int = 32) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
    """A pair whose mask is a function of the image (odd pixel values are membrane), so any geometric transform
    that moves both the same way keeps the relation; the image has distinct values, so the move is visible."""
    tImage = torch.arange(valH * valW, dtype=torch.int64).reshape(1, valH, valW) % 251
    return tv_tensors.Image(tImage.to(torch.uint8)), tv_tensors.Mask((tImage[0] % 2).to(torch.uint8))


@pytest.mark.parametrize('oTransform', [TF.RandomHorizontalFlip(1.0), TF.RandomVerticalFlip(1.0), RandomRot90(),
                                        TF.RandomRotation((90, 90)), TF.RandomCrop(16)],
                         ids=['hflip', 'vflip', 'rot90', 'rotation', 'crop'])
def test_geometric_transforms_move_image_and_mask_together(oTransform: TF.Transform) -> None:
    torch.manual_seed(1)
    tImage, tMask = _PairWithMaskFromImage(32, 32)
    for _ in range(4):  #<! Random transforms: several draws
        tImageOut, tMaskOut = oTransform(tImage, tMask)
        assert isinstance(tImageOut, tv_tensors.Image) and isinstance(tMaskOut, tv_tensors.Mask)
        torch.testing.assert_close(tMaskOut, (tImageOut[0] % 2).to(torch.uint8), check_stride=False)


def test_rot90_rotates_by_the_same_quarter_turns() -> None:
    tImage, tMask = _PairWithMaskFromImage()
    for seed in range(8):
        torch.manual_seed(seed)
        tImageOut, tMaskOut = RandomRot90()(tImage, tMask)
        numRot = next(k for k in range(4) if torch.equal(tImageOut, torch.rot90(tImage, k, dims=(-2, -1))))
        assert torch.equal(tMaskOut, torch.rot90(tMask, numRot, dims=(-2, -1)))


def test_elastic_warp_keeps_the_mask_labels_and_moves_it_with_the_image() -> None:
    torch.manual_seed(0)
    tImage = tv_tensors.Image(torch.zeros(1, 64, 64, dtype=torch.uint8))
    tImage[:, 20:44, 20:44] = 255
    tMask = tv_tensors.Mask((tImage[0] > 0).to(torch.uint8))
    tImageOut, tMaskOut = CoarseElasticTransform(3, 4.0)(tImage, tMask)
    assert set(torch.unique(tMaskOut).tolist()) <= {0, 1}
    assert not torch.equal(tMaskOut, tMask)  #<! It did warp
    vAgree = ((tImageOut[0] > 127) == (tMaskOut > 0)).float().mean()
    assert vAgree > 0.98  #<! Bilinear image vs nearest mask differ only along the square's edge


@pytest.mark.parametrize('tuSize', [(13, 17), (64, 48), (100, 100)])
def test_resizing_a_mask_never_creates_new_values(tuSize: tuple[int, int]) -> None:
    oRng = torch.Generator().manual_seed(0)
    tMask = tv_tensors.Mask(torch.randint(0, 2, (40, 40), generator=oRng, dtype=torch.uint8))
    tImage = tv_tensors.Image(torch.rand(1, 40, 40, generator=oRng))
    tImageOut, tMaskOut = TF.Resize(tuSize, antialias=True)(tImage, tMask)
    assert tMaskOut.shape == tuSize and tMaskOut.dtype == tMask.dtype
    assert set(torch.unique(tMaskOut).tolist()) <= {0, 1}
    tMask3 = tv_tensors.Mask(torch.randint(0, 3, (40, 40), generator=oRng))  #<! Three classes: no in-between 1
    assert set(torch.unique(TF.Resize(tuSize)(tMask3)).tolist()) <= {0, 1, 2}


def test_paper_elastic_std_keeps_the_paper_strain_over_the_warped_window() -> None:
    valPaper = 10 / (572 / 2)  #<! 10 pixels on a 3 x 3 grid over the paper's 572-pixel tile
    assert PaperElasticStd(572 - 2 * 30) == pytest.approx(10.0)  #<! The paper's own tile: its 10 pixels
    for cropSize in (96, 128, 256):
        valStd = PaperElasticStd(cropSize)
        windowSize = cuSeg.ElasticWindowSize(cropSize, valStd)
        assert windowSize == cropSize + 2 * int(np.ceil(3 * valStd))
        assert valStd / (windowSize / 2) == pytest.approx(valPaper)
    with pytest.raises(ValueError, match='elasticGrid'):
        PaperElasticStd(128, elasticGrid=1)
    oTrain, _ = IsbiTransforms(0.5, 0.25, cropSize=128)
    oElastic = next(o for o in oTrain.transforms if isinstance(o, CoarseElasticTransform))
    assert oElastic.displacementStd == pytest.approx(PaperElasticStd(128))


def test_gray_value_variation_changes_images_only() -> None:
    oTrain, _ = IsbiTransforms(0.0, 1.0, cropSize=None, elasticStd=0, grayJitter=0.5)
    oColor = next(o for o in oTrain.transforms if isinstance(o, TF.ColorJitter))
    torch.manual_seed(0)
    tImage = tv_tensors.Image(torch.randint(0, 256, (1, 16, 16), dtype=torch.uint8))
    tMask = tv_tensors.Mask(torch.randint(0, 2, (16, 16), dtype=torch.uint8))
    tImageOut, tMaskOut = oColor(tImage, tMask)
    assert not torch.equal(tImageOut, tImage) and torch.equal(tMaskOut, tMask)
    assert not any(isinstance(o, TF.ColorJitter) for o in IsbiTransforms(0.0, 1.0, grayJitter=0)[0].transforms)
    with pytest.raises(ValueError, match='grayJitter'):
        IsbiTransforms(0.0, 1.0, grayJitter=-0.1)


def test_isbi_transforms_give_float_images_and_int64_masks(isbiRoot: Path) -> None:
    dsTrain = LoadIsbiMembranes('train', dataRoot=isbiRoot)
    oTrainTransform, oEvalTransform = IsbiTransforms(0.5, 0.25, cropSize=16, elasticStd=2.0)
    dsTrain.transform = oTrainTransform
    tX, tY = dsTrain[0]
    assert tX.shape == (1, 16, 16) and tX.dtype == torch.float32 and tY.shape == (16, 16) and tY.dtype == torch.int64
    assert set(torch.unique(tY).tolist()) <= {0, 1}
    dsTrain.transform = oEvalTransform
    tX, tY = dsTrain[0]
    torch.testing.assert_close(tX, (dsTrain.tImages[0].float() / 255 - 0.5) / 0.25)
    assert torch.equal(tY, dsTrain.tMasks[0].long())


def test_weight_maps_travel_with_the_mask_and_stay_float(isbiRoot: Path) -> None:
    dsTrain = LoadIsbiMembranes('train', dataRoot=isbiRoot).WithWeightMaps()
    assert dsTrain.tWeights.shape == dsTrain.tMasks.shape and dsTrain.tWeights.dtype == torch.float32
    oTrainTransform, _ = IsbiTransforms(0.5, 0.25, cropSize=16, elasticStd=2.0)
    dsTrain.transform = oTrainTransform
    torch.manual_seed(3)
    tX, tY, tW = dsTrain[0]
    assert isinstance(tW, PixelWeights) and tW.dtype == torch.float32 and tW.shape == tY.shape == (16, 16)
    # The pixels are moved, never mixed: every weight of the crop is a weight of its slice, at a pixel of its class
    tW0, tY0 = dsTrain.tWeights[0], dsTrain.tMasks[0]
    for classIdx in (0, 1):
        assert set(tW[tY == classIdx].tolist()) <= set(tW0[tY0 == classIdx].tolist())
    with pytest.raises(ValueError, match='test split'):
        LoadIsbiMembranes('test', dataRoot=isbiRoot).WithWeightMaps()


# ------------------------------------------------------------------------------------------------
# U-Net
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(('numLevels', 'baseWidth', 'tuSize', 'upMode'), [
    (1, 4, (8, 8), 'transpose'), (2, 8, (32, 48), 'transpose'), (3, 4, (64, 64), 'bilinear'),
    (4, 4, (48, 80), 'transpose')])
def test_unet_output_has_the_input_size(numLevels: int, baseWidth: int, tuSize: tuple[int, int], upMode: str) -> None:
    oModel = UNet(numChnIn=1, numClasses=3, numLevels=numLevels, baseWidth=baseWidth, upMode=upMode).eval()
    with torch.no_grad():
        tZ = oModel(torch.randn(2, 1, *tuSize))
    assert tZ.shape == (2, 3, *tuSize)
    dfTable = UNetShapeTable(oModel, (1, *tuSize))
    assert dfTable['Output Shape'].iloc[-1] == (3, *tuSize)
    assert dfTable['Parameters'].sum() == sum(p.numel() for p in oModel.parameters())
    dfEncoder = ModelShapeTable(oModel.oEncoder, (1, *tuSize))  #<! The encoder is a Sequential
    bottleneckSize = tuple(s // 2 ** numLevels for s in tuSize)
    assert dfEncoder['Output Shape'].iloc[-1] == (baseWidth * 2 ** numLevels, *bottleneckSize)


def test_unet_refuses_sizes_it_cannot_halve_and_bad_options() -> None:
    with pytest.raises(ValueError, match='multiples of 8'):
        UNet(numLevels=3, baseWidth=4)(torch.randn(1, 1, 30, 32))
    with pytest.raises(ValueError, match='upMode'):
        UNet(upMode='nearest')
    with pytest.raises(ValueError, match='baseWidth'):
        UNet(baseWidth=3)


# ------------------------------------------------------------------------------------------------
# Loss and scores
# ------------------------------------------------------------------------------------------------
def test_dice_loss_of_a_perfect_prediction_is_about_zero() -> None:
    tY = torch.randint(0, 2, (3, 16, 16))
    tOneHot = torch.nn.functional.one_hot(tY, 2).permute(0, 3, 1, 2).float()
    assert float(DiceLoss(fromLogits=False)(tOneHot, tY)) == pytest.approx(0.0, abs=1e-6)
    assert float(DiceLoss()(40 * (2 * tOneHot - 1), tY)) == pytest.approx(0.0, abs=1e-6)  #<! Confident logits
    assert float(DiceLoss()(-40 * (2 * tOneHot - 1), tY)) > 0.99  #<! All wrong
    assert float(CeDiceLoss()(40 * (2 * tOneHot - 1), tY)) == pytest.approx(0.0, abs=1e-6)


def test_dice_loss_matches_the_formula() -> None:
    torch.manual_seed(0)
    tZ, tY = torch.randn(2, 2, 8, 8), torch.randint(0, 2, (2, 8, 8))
    tP = torch.softmax(tZ, 1)
    lDice = [(2 * (tP[:, c] * (tY == c)).sum() + 1) / (tP[:, c].sum() + (tY == c).sum() + 1) for c in range(2)]
    torch.testing.assert_close(DiceLoss()(tZ, tY), 1 - (lDice[0] + lDice[1]) / 2)
    torch.testing.assert_close(DiceLoss([1])(tZ, tY), 1 - lDice[1])
    with pytest.raises(ValueError, match='N x H x W'):
        DiceLoss()(tZ, tY[0])


def test_scores_of_the_all_cell_predictor_and_a_perfect_one() -> None:
    tY = torch.zeros(2, 10, 10, dtype=torch.long)
    tY[:, :, :3] = 1  #<! 30% membrane
    dAllCell = SegmentationScores(torch.zeros_like(tY), tY)
    assert dAllCell['IoU membrane'] == 0 and dAllCell['Pixel Accuracy'] == pytest.approx(0.7)
    assert dAllCell['IoU cell'] == pytest.approx(0.7) and dAllCell['Dice cell'] == pytest.approx(2 * 0.7 / 1.7)
    dPerfect = SegmentationScores(tY, tY)
    assert dPerfect['IoU membrane'] == dPerfect['Dice membrane'] == dPerfect['Mean IoU'] == 1.0
    tZ = torch.nn.functional.one_hot(tY, 2).permute(0, 3, 1, 2).float()
    assert float(IoUScore(1)(tZ, tY)) == 1.0 and float(IoUScore(1)(-tZ, tY)) == 0.0


def _WeightMapByBruteForce(mMask: np.ndarray, w0: float, sigma: float, vClassWeight: np.ndarray) -> np.ndarray:
    """The paper's formula, pixel by pixel: the distance to every pixel of every cell, the two smallest per cell."""
    from scipy import ndimage
    mLabel, numCells = ndimage.label(mMask == 0)
    mRows, mCols = np.indices(mMask.shape)
    mDist = np.stack([np.sqrt((mRows[..., None] - np.argwhere(mLabel == k)[:, 0]) ** 2 +
                              (mCols[..., None] - np.argwhere(mLabel == k)[:, 1]) ** 2).min(-1)
                      for k in range(1, numCells + 1)])
    mDist.sort(axis=0)
    mBorder = np.exp(-(mDist[0] + mDist[1]) ** 2 / (2 * sigma ** 2)) * (mLabel == 0)  #<! Outside the cells only
    return vClassWeight[mMask] + w0 * mBorder


def test_weight_map_matches_the_paper_formula() -> None:
    mMask = np.ones((24, 30), dtype=np.uint8)  #<! Membrane everywhere, then 4 cells
    mMask[2:10, 2:12] = mMask[2:10, 14:28] = mMask[13:22, 2:8] = mMask[12:22, 11:20] = 0
    vClassWeight = np.array([0.7, 2.0])
    mExpected = _WeightMapByBruteForce(mMask, 10.0, 3.0, vClassWeight)
    mGot = UNetWeightMap(torch.from_numpy(mMask), 10.0, 3.0, vClassWeight).numpy()
    np.testing.assert_allclose(mGot, mExpected, rtol=1e-5, atol=1e-5)
    # On the 2-pixel membrane between two cells, 1 and 2 pixels from them: w_c + w0 exp(-3^2 / (2 sigma^2))
    assert mGot[5, 13] == pytest.approx(2.0 + 10.0 * np.exp(-9 / 18))
    np.testing.assert_allclose(mGot[mMask == 0], 0.7, rtol=1e-6)  #<! A cell's own pixels: the class weight alone
    # Balanced class weights: both classes carry the same total weight
    vBalanced = BalancedClassWeights(torch.from_numpy(mMask))
    vCount = np.bincount(mMask.reshape(-1), minlength=2)
    assert vBalanced[0] * vCount[0] == pytest.approx(vBalanced[1] * vCount[1])
    with pytest.raises(ValueError, match='H x W'):
        UNetWeightMap(torch.zeros(2, 8, 8, dtype=torch.long))


def test_weighted_cross_entropy_is_a_weighted_mean_of_pixel_losses() -> None:
    torch.manual_seed(0)
    tZ, tY = torch.randn(2, 2, 6, 6), torch.randint(0, 2, (2, 6, 6))
    tCe = torch.nn.functional.cross_entropy(tZ, tY, reduction='none')
    torch.testing.assert_close(WeightedCrossEntropy()(tZ, tY, torch.ones(2, 6, 6)), tCe.mean())
    torch.testing.assert_close(WeightedCrossEntropy()(tZ, tY), tCe.mean())
    tW = torch.rand(2, 6, 6)
    torch.testing.assert_close(WeightedCrossEntropy()(tZ, tY, tW), (tW * tCe).sum() / tW.sum())
    tW = torch.zeros(2, 6, 6)
    tW[0, 1, 2] = 3.0  #<! All the weight on one pixel: its loss alone
    torch.testing.assert_close(WeightedCrossEntropy()(tZ, tY, tW), tCe[0, 1, 2])
    with pytest.raises(ValueError, match='pixel weights'):
        WeightedCrossEntropy()(tZ, tY, torch.ones(2, 6))


def _RandErrorByPairs(mPred: np.ndarray, mTrue: np.ndarray) -> float:
    """The foreground-restricted Rand error from its definition, over the pairs of distinct pixels of the truth's
    cells: a pair is in one truth cell and / or in one predicted cell; a predicted membrane pixel is a cell of its
    own."""
    from scipy import ndimage
    mTrueLabel = ndimage.label(mTrue == 0)[0].reshape(-1)
    mPredLabel = ndimage.label(mPred == 0)[0].reshape(-1)
    mPredLabel = np.where(mPredLabel == 0, -1 - np.arange(mPredLabel.size), mPredLabel)  #<! Membrane: singletons
    vKeep = mTrueLabel > 0
    vT, vP = mTrueLabel[vKeep], mPredLabel[vKeep]
    mDistinct = ~np.eye(len(vT), dtype=bool)
    mSameTrue, mSamePred = (vT[:, None] == vT[None, :]) & mDistinct, (vP[:, None] == vP[None, :]) & mDistinct
    valPrecision = (mSameTrue & mSamePred).sum() / mSamePred.sum()
    valRecall = (mSameTrue & mSamePred).sum() / mSameTrue.sum()
    return 1 - 2 * valPrecision * valRecall / (valPrecision + valRecall)


def test_rand_error_matches_its_definition_and_punishes_merges_and_splits() -> None:
    tY = torch.ones(1, 20, 20, dtype=torch.long)  #<! Two cells separated by a membrane at columns 9 and 10
    tY[0, :, :9] = tY[0, :, 11:] = 0
    assert RandError(tY, tY) == pytest.approx(0.0)
    tWide = tY.clone()
    tWide[0, :, 8] = 1  #<! A membrane one pixel wider: the same two cells, a little smaller
    tMerged = tY.clone()
    tMerged[0, 5:8, 9:11] = 0  #<! A gap in the membrane: one cell where two are
    tSplit = tY.clone()
    tSplit[0, 10, :9] = 1  #<! A false membrane across the left cell: two cells where one is
    for tPred in (tWide, tMerged, tSplit):
        assert RandError(tPred, tY) == pytest.approx(_RandErrorByPairs(tPred[0].numpy(), tY[0].numpy()))
    valWide, valMerged, valSplit = RandError(tWide, tY), RandError(tMerged, tY), RandError(tSplit, tY)
    assert 0 < valWide < min(valMerged, valSplit) / 2 and valMerged > 0.2 and valSplit > 0.1
    dScores = SegmentationScores(tMerged, tY, challengeScores=True)
    assert dScores['Rand Error'] == pytest.approx(valMerged)
    assert dScores['Pixel Error'] == pytest.approx(1 - dScores['Pixel Accuracy'])
    assert RandError(torch.cat([tY, tMerged]), torch.cat([tY, tY])) == pytest.approx(valMerged / 2)  #<! Slice mean
    with pytest.raises(ValueError, match='N x H x W'):
        RandError(tY[0], tY[0])


# ------------------------------------------------------------------------------------------------
# Inference and figure
# ------------------------------------------------------------------------------------------------
class _PixelModel(torch.nn.Module):
    """A per-pixel model (1 x 1 convolution): tiling must give exactly the untiled result."""

    sizeMultiple = 8

    def __init__(self) -> None:
        super().__init__()
        self.oConv = torch.nn.Conv2d(1, 2, 1)

    def forward(self, tX: torch.Tensor) -> torch.Tensor:
        assert tX.shape[-1] % 8 == 0 and tX.shape[-2] % 8 == 0
        return self.oConv(tX)


@pytest.mark.parametrize('tuSize', [(40, 40), (37, 53)])
def test_tiled_and_padded_inference_match_a_per_pixel_model(tuSize: tuple[int, int]) -> None:
    torch.manual_seed(0)
    oModel = _PixelModel()
    tX = torch.randn(2, 1, *tuSize)
    with torch.no_grad():
        tRef = oModel.oConv(tX)
    torch.testing.assert_close(PredictTiled(oModel, tX), tRef)
    torch.testing.assert_close(PredictTiled(oModel, tX, tileSize=16, tileMargin=4), tRef)
    with pytest.raises(ValueError, match='multiple of 8'):
        PredictTiled(oModel, tX, tileSize=16, tileMargin=3)


def test_tiled_unet_prediction_has_the_image_size_and_keeps_the_mode() -> None:
    oModel = UNet(numLevels=2, baseWidth=4).train()
    tZ = PredictTiled(oModel, torch.randn(1, 1, 50, 70), tileSize=24, tileMargin=4)
    assert tZ.shape == (1, 2, 50, 70) and oModel.training


def test_plot_segmentation_draws_one_row_per_image() -> None:
    tImages, tMasks = torch.rand(2, 1, 16, 16), torch.randint(0, 2, (2, 16, 16))
    hF = PlotSegmentation(tImages, tMasks, 1 - tMasks, lTitles=['a', 'b'])
    assert len(hF.axes) == 2 * 4
    hF = PlotSegmentation(tImages, None, tMasks)
    assert len(hF.axes) == 2 * 2
