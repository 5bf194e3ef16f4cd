"""Semantic segmentation: the ISBI 2012 membrane data, joint transforms, a U-Net, Dice loss, scores, inference.

- Data: ``LoadIsbiMembranes`` reads the 30 labelled + 30 unlabelled 512 x 512 electron-microscopy slices of the
  ISBI 2012 challenge (the data of the U-Net paper) and splits the labelled ones into contiguous train / validation /
  held-out blocks.
  Masks are **class indices**: ``0`` = cell (interior), ``1`` = membrane (``ISBI_CLASSES``), as
  ``torchvision.tv_tensors.Mask``, so ``torchvision.transforms.v2`` moves image and mask together (nearest-neighbour
  for the mask: no new label values).
- Transforms: ``RandomRot90`` (exact 90 degree rotations), ``CoarseElasticTransform`` (the paper's elastic
  deformation) and ``IsbiTransforms`` (crop, flips, rotations, elastic deformation, standardization).
- Model: ``UNet`` (Ronneberger, Fischer & Brox, 2015) built from ``UNetDoubleConv`` / ``UNetDown`` / ``UNetUp``
  blocks, with configurable depth and width and 'same' padding (output size = input size). ``UNetShapeTable``
  gives its shapes level by level.
- Loss and scores: ``DiceLoss``, ``CeDiceLoss``, the paper's weight map (``UNetWeightMap``, ``PixelWeights``,
  ``WeightedCrossEntropy``), ``IoUScore`` (a ``TrainModel`` score), ``SegmentationScores``, ``RandError``.
- Inference: ``PredictTiled`` (overlap-tile with mirrored borders, or one padded pass).
- Figure: ``PlotSegmentation`` (image / truth / prediction / error overlay).
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import torchvision.transforms.v2 as TF
from matplotlib.figure import Figure
from PIL import Image
from scipy import ndimage
from skimage.metrics import adapted_rand_error
from torch import nn
from torch.utils.data import Dataset
from torchmetrics.functional.classification import multiclass_f1_score, multiclass_jaccard_index
from torchvision import tv_tensors

from ._isbi_sha256 import ISBI_SHA256
from .config import CorruptDataError, GetDataRoot, MissingDataError, ModelDevice
from .files import WriteAtomically
from .models import ConvBnRelu
from .shapes import LayerOutputShape

# ------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------
ISBI_DIR = 'isbi-2012-membranes'  #<! <root>/isbi-2012-membranes/{train/image,train/label,test/image}/<n>.png
ISBI_CLASSES: tuple[str, ...] = ('cell', 'membrane')  #<! Class index 0 = cell interior, 1 = membrane
ISBI_NUM_SLICES = 30  #<! Labelled (train) slices; the test split has as many, without masks
ISBI_SIZE = 512  #<! Every slice and mask is 512 x 512
ISBI_COMMIT = 'b45af4d'  #<! The commit of zhixuhao/unet the course's copy comes from: a moving branch could change
ISBI_URL = f'https://raw.githubusercontent.com/zhixuhao/unet/{ISBI_COMMIT}/data/membrane'
ISBI_SPLITS = ('train', 'val', 'heldout', 'trainval', 'labelled', 'test')
# Local file -> file in the repository zhixuhao/unet (its test slices sit directly in test/)
_ISBI_REMOTE = {'train/image': 'train/image', 'train/label': 'train/label', 'test/image': 'test'}


def IsbiSplitIndices(numVal: int = 6, numHeldOut: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The train / validation / held-out split of the 30 labelled slices: ``(vTrainIdx, vValIdx, vHeldOutIdx)``.

    Contiguous blocks of the stack, in its order: training first, then ``numVal`` validation slices, then the last
    ``numHeldOut`` slices. The slices are serial sections of one volume, so neighbours look alike (the lesson
    measures it); in blocks, only the two slices at each boundary have a neighbour in another part, where a random
    split gives almost every validation slice a training neighbour. ``numHeldOut=0`` gives an empty held-out part.
    """
    if numVal < 1 or numHeldOut < 0 or numVal + numHeldOut > ISBI_NUM_SLICES - 1:
        raise ValueError(f'numVal >= 1 and numHeldOut >= 0 must leave at least one of the {ISBI_NUM_SLICES} labelled '
                         f'slices for training, got numVal={numVal} and numHeldOut={numHeldOut}.')
    numTrain = ISBI_NUM_SLICES - numVal - numHeldOut
    vIdx = np.arange(ISBI_NUM_SLICES)
    return vIdx[:numTrain], vIdx[numTrain:numTrain + numVal], vIdx[numTrain + numVal:]


def _IsbiFiles(dataDir: Path) -> list[Path]:
    return [dataDir / subDir / f'{ii}.png' for subDir in _ISBI_REMOTE for ii in range(ISBI_NUM_SLICES)]


def _DownloadIsbi(dataDir: Path, timeout: float = 30.0) -> None:
    """Fetch the missing PNG slices from the public repository zhixuhao/unet at ``ISBI_COMMIT`` (then, should GitHub
    not resolve that short commit, at ``master``): a file is written (atomically) only when its SHA-256 matches
    ``ISBI_SHA256``, so whichever ref served it, a changed or broken download never lands."""
    for filePath in _IsbiFiles(dataDir):
        if filePath.is_file():
            continue
        subDir = filePath.parent.relative_to(dataDir).as_posix()
        oLastErr: Exception | None = None
        for baseUrl in (ISBI_URL, ISBI_URL.replace(f'/{ISBI_COMMIT}/', '/master/')):
            fileUrl = f'{baseUrl}/{_ISBI_REMOTE[subDir]}/{filePath.name}'
            try:
                with urllib.request.urlopen(fileUrl, timeout=timeout) as oResponse:
                    rawBytes = oResponse.read()
                _CheckIsbiBytes(f'{subDir}/{filePath.name}', rawBytes, fileUrl)
            except (urllib.error.URLError, OSError, ValueError) as oErr:
                # A changed file is the more useful error to show than a missing ref
                oLastErr = oErr if oLastErr is None or isinstance(oErr, ValueError) else oLastErr
                continue
            WriteAtomically(filePath, lambda oFile: oFile.write(rawBytes))
            break
        else:
            raise oLastErr


def _CheckIsbiBytes(relName: str, rawBytes: bytes, source: str) -> None:
    """Refuse the bytes of one ISBI file (``'train/image/0.png'``...) whose SHA-256 differs from the pinned one."""
    if relName not in ISBI_SHA256:
        raise ValueError(f'{relName} is not a file of the ISBI 2012 data set (files: {{train/image,train/label,'
                         f'test/image}}/0.png ... 29.png).')
    valGot = hashlib.sha256(rawBytes).hexdigest()
    if valGot != ISBI_SHA256[relName]:
        raise CorruptDataError(source, f'SHA-256 {valGot}, expected {ISBI_SHA256[relName]} for {relName} (zhixuhao/unet '
                                       f'at commit {ISBI_COMMIT}): the file differs from the course\'s copy',
                               'download it again (a proxy or a network error may have changed it); if it still '
                               'differs, copy the file from the course\'s offline data set instead')


def _ReadSlices(fileDir: Path, vIdx: Sequence[int], tuShape: tuple[int, ...] | None = None) -> torch.Tensor:
    """Read PNG slices as a uint8 N x H x W tensor. A file that is not a readable image, or whose size differs from
    ``tuShape`` (default: the size most slices have), gets an error that names it."""
    lPaths = [fileDir / f'{ii}.png' for ii in vIdx]
    lSlices = []
    for filePath in lPaths:
        try:
            with Image.open(filePath) as oImg:
                lSlices.append(np.asarray(oImg.convert('L')))
        except (OSError, SyntaxError, ValueError) as oErr:  #<! PIL's errors for a truncated or non-image file
            raise CorruptDataError(filePath, f'not a readable PNG image ({type(oErr).__name__}: {oErr})',
                                   _IsbiFix(filePath)) from oErr
    lShapes = [mSlice.shape for mSlice in lSlices]
    tuShape = tuShape or max(set(lShapes), key=lShapes.count)
    for filePath, tuGot in zip(lPaths, lShapes):
        if tuGot != tuShape:
            raise CorruptDataError(filePath, f'{tuGot[0]} x {tuGot[1]} pixels where {tuShape[0]} x {tuShape[1]} are '
                                             f'expected (the image\'s size for a mask, the other slices\' size for a '
                                             f'slice; the real ones are {ISBI_SIZE} x {ISBI_SIZE})', _IsbiFix(filePath))
    return torch.from_numpy(np.stack(lSlices))


def _IsbiFix(filePath: Path) -> str:
    return (f'delete {filePath} and call LoadIsbiMembranes(..., download=True) to fetch it again, or copy it anew from '
            'the course\'s offline data set')


class IsbiMembranes(Dataset):
    """Slices of the ISBI 2012 membrane data set, held in memory (60 slices of 512 x 512 are 16 MB).

    ``ds[i]`` returns ``(tv_tensors.Image uint8 1 x H x W, tv_tensors.Mask uint8 H x W)`` with mask values
    ``0`` = cell and ``1`` = membrane; the test split (no public masks) returns the image alone.
    ``.transform`` (settable) is called as ``transform(image, mask)`` (or ``transform(image)`` for the test
    split), so ``torchvision.transforms.v2`` transforms move both together.

    Attributes: ``tImages`` (N x 1 x H x W uint8), ``tMasks`` (N x H x W uint8, ``None`` for the test split),
    ``vSliceIdx`` (the slice numbers, the file names), ``split``, ``classes``, ``tWeights`` (N x H x W float32 pixel
    weights, or ``None``). With weights (``WithWeightMaps``), ``ds[i]`` is ``(image, mask, PixelWeights)`` and the
    transform gets all three: the weights move with the mask.
    """

    def __init__(self, tImages: torch.Tensor, tMasks: torch.Tensor | None, vSliceIdx: np.ndarray, split: str,
                 transform: Callable | None = None, tWeights: torch.Tensor | None = None) -> None:
        self.tImages = tImages
        self.tMasks = tMasks
        self.vSliceIdx = vSliceIdx
        self.split = split
        self.transform = transform
        self.tWeights = tWeights
        self.classes = list(ISBI_CLASSES)

    def __len__(self) -> int:
        return len(self.tImages)

    def __getitem__(self, index: int) -> Any:
        tImage = tv_tensors.Image(self.tImages[index])
        if self.tMasks is None:
            return self.transform(tImage) if self.transform is not None else tImage
        tMask = tv_tensors.Mask(self.tMasks[index])
        if self.tWeights is not None:
            tWeight = PixelWeights(self.tWeights[index])
            return self.transform(tImage, tMask, tWeight) if self.transform is not None else (tImage, tMask, tWeight)
        if self.transform is not None:
            return self.transform(tImage, tMask)
        return tImage, tMask

    def WithWeightMaps(self, w0: float = 10.0, sigma: float = 5.0,
                       vClassWeight: Sequence[float] | None = None) -> IsbiMembranes:
        """The same slices (shared, not copied) with the U-Net paper's weight map of every mask (``UNetWeightMap``).

        ``vClassWeight`` defaults to the balanced weights of this split's own masks (``BalancedClassWeights``):
        compute them on the training split and pass them to the others. The transform is kept.
        """
        if self.tMasks is None:
            raise ValueError('The test split has no masks, so it has no weight maps.')
        vClassWeight = BalancedClassWeights(self.tMasks) if vClassWeight is None else vClassWeight
        tWeights = torch.stack([UNetWeightMap(tMask, w0, sigma, vClassWeight) for tMask in self.tMasks])
        return IsbiMembranes(self.tImages, self.tMasks, self.vSliceIdx, self.split, self.transform, tWeights)

    def __repr__(self) -> str:
        return (f'IsbiMembranes(split={self.split!r}, slices={len(self)}, size={tuple(self.tImages.shape[-2:])}, '
                f'classes={self.classes})')


def LoadIsbiMembranes(split: str = 'train', oTransform: Callable | None = None, dataRoot: Path | str | None = None,
                      download: bool = True, *, numVal: int = 6, numHeldOut: int = 6) -> IsbiMembranes:
    """Return a split of the ISBI 2012 EM membrane segmentation data (30 labelled 512 x 512 slices, 30 test slices).

    Reads ``<root>/isbi-2012-membranes/{train/image,train/label,test/image}/<n>.png`` (masks: 255 = cell,
    0 = membrane; converted here to class indices 0 = cell, 1 = membrane). When files are missing and
    ``download=True``, the missing PNG slices are fetched from the public repository zhixuhao/unet
    (``data/membrane``) into that folder; a data root that holds all files is never written to.

    Args:
        split:      ``'train'``, ``'val'`` (``numVal`` slices) and ``'heldout'`` (``numHeldOut`` slices): contiguous
                    blocks of the 30 labelled slices (``IsbiSplitIndices``); ``'trainval'`` (train + val),
                    ``'labelled'`` (all 30), or ``'test'`` (30 slices without masks).
        oTransform: Called as ``oTransform(image, mask)`` (``oTransform(image)`` for ``'test'``), e.g. a
                    ``torchvision.transforms.v2`` pipeline (``IsbiTransforms``).
        dataRoot:   Data root (default ``GetDataRoot()``, i.e. ``$COURSE_DATA_DIR``).
        download:   Allow fetching missing files.
        numVal:     Validation slices (choose the epoch, thresholds and settings on them).
        numHeldOut: Held-out slices (report on them once, after every choice is made).
    """
    if split not in ISBI_SPLITS:
        raise ValueError(f'split must be one of {ISBI_SPLITS}, got {split!r}.')
    vTrainIdx, vValIdx, vHeldOutIdx = IsbiSplitIndices(numVal, numHeldOut)  #<! Validates the sizes before any I/O
    dataRoot = Path(dataRoot).expanduser() if dataRoot is not None else GetDataRoot()
    dataDir = dataRoot / ISBI_DIR

    lMissing = [p for p in _IsbiFiles(dataDir) if not p.is_file()]
    if lMissing:
        downloadNote = 'Downloading was not allowed (download=False).'
        if download:
            try:
                _DownloadIsbi(dataDir)
                lMissing = []
            except (urllib.error.URLError, OSError, ValueError) as oErr:
                downloadNote = f'Downloading from {ISBI_URL} failed: {type(oErr).__name__}: {oErr}'
        if lMissing:
            raise MissingDataError(
                f'The ISBI 2012 membrane data is incomplete under {dataDir} ({len(lMissing)} of '
                f'{len(_IsbiFiles(dataDir))} files missing, e.g. {lMissing[0].relative_to(dataRoot)}).', downloadNote,
                f'LoadIsbiMembranes(..., download=True) fetches the PNG slices of the public repository '
                f'zhixuhao/unet (folder data/membrane) into {dataDir}.',
                f'copy them there as {{train/image,train/label,test/image}}/0.png ... 29.png (the repository keeps '
                f'the test slices directly in data/membrane/test/).', heldFolder=f'{ISBI_DIR}/')

    if split == 'test':
        vIdx = np.arange(ISBI_NUM_SLICES)
        return IsbiMembranes(_ReadSlices(dataDir / 'test' / 'image', vIdx)[:, None], None, vIdx, split, oTransform)
    vIdx = {'train': vTrainIdx, 'val': vValIdx, 'heldout': vHeldOutIdx,
            'trainval': np.concatenate([vTrainIdx, vValIdx]), 'labelled': np.arange(ISBI_NUM_SLICES)}[split]
    tImages = _ReadSlices(dataDir / 'train' / 'image', vIdx)[:, None]
    tLabels = _ReadSlices(dataDir / 'train' / 'label', vIdx, tuple(tImages.shape[-2:]))  #<! Each mask fits its image
    tMasks = (tLabels < 128).to(torch.uint8)  #<! 0 (dark) = membrane -> 1; 255 = cell -> 0
    return IsbiMembranes(tImages, tMasks, vIdx, split, oTransform)


# ------------------------------------------------------------------------------------------------
# The U-Net paper's weight map
# ------------------------------------------------------------------------------------------------
class PixelWeights(tv_tensors.Mask):
    """A float map of per-pixel loss weights that travels with its mask through ``torchvision.transforms.v2``.

    A ``tv_tensors.Mask`` to every geometric transform (cropped, flipped and warped with the mask, nearest-neighbour),
    but its own type to ``ToDtype``: ``IsbiTransforms`` turns masks into ``int64`` class indices and leaves these
    float.
    """


def BalancedClassWeights(tMasks: torch.Tensor, numClasses: int = len(ISBI_CLASSES)) -> torch.Tensor:
    """Class weights ``numPixels / (numClasses * numPixels_c)`` (scikit-learn's 'balanced'): every class then
    carries the same total weight. ``tMasks`` holds class indices; a class absent from them gets weight 0."""
    vCount = torch.bincount(tMasks.reshape(-1).long(), minlength=numClasses).double()
    return torch.where(vCount > 0, vCount.sum() / (numClasses * vCount.clamp(min=1)), 0.0).float()


def UNetWeightMap(tMask: torch.Tensor | np.ndarray, w0: float = 10.0, sigma: float = 5.0,
                  vClassWeight: Sequence[float] | torch.Tensor | None = None, cellClass: int = 0) -> torch.Tensor:
    """The U-Net paper's pixel weights (Ronneberger et al. 2015, eq. 2) of one mask ``H x W``, as float32 ``H x W``:

    ``w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x)) ** 2 / (2 sigma ** 2))`` on the pixels outside the cells,
    ``w(x) = w_c(x)`` on the cells' own pixels.

    ``w_c`` balances the class frequencies (``vClassWeight``, default ``BalancedClassWeights`` of this mask);
    ``d1`` and ``d2`` are the distances to the nearest and the second-nearest cell, the connected regions of
    ``cellClass`` (``scipy.ndimage.label``, 4-connected). The border term is large on a thin membrane between two
    cells: the borders the network must not miss. Inside a cell ``d1`` (to the border of the nearest cell, the
    paper's words) would be the distance to its own border, and the paper's weight maps (its Fig. 3d) are high
    on the separating borders only: the border term is kept to the pixels outside the cells, as common
    implementations do. The paper uses ``w0 = 10`` and ``sigma`` about 5 pixels.

    Each cell's distance transform (``scipy.ndimage.distance_transform_edt``) is computed in its bounding box
    grown by ``6 sigma``; a pixel farther than that from a cell treats it as infinitely far, which changes ``w`` by
    at most ``w0 * exp(-18)``, about 1.5e-8 ``w0``.
    """
    if tMask.ndim != 2:
        raise ValueError(f'Expected one mask H x W of class indices, got shape {tuple(tMask.shape)} (one call per '
                         f'mask).')
    mMask = tMask.numpy() if torch.is_tensor(tMask) else np.asarray(tMask)
    vClassWeight = torch.as_tensor(BalancedClassWeights(torch.as_tensor(mMask)) if vClassWeight is None
                                   else vClassWeight, dtype=torch.float64).numpy()
    if mMask.max() >= len(vClassWeight):
        raise ValueError(f'The mask holds class {int(mMask.max())} but vClassWeight has {len(vClassWeight)} entries.')
    mLabel, _ = ndimage.label(mMask == cellClass)
    mD1 = np.full(mMask.shape, np.inf)  #<! Distance to the nearest cell
    mD2 = np.full(mMask.shape, np.inf)  #<! ... and to the second-nearest one
    reachSize = int(np.ceil(6 * sigma))
    for cellIdx, tuBox in enumerate(ndimage.find_objects(mLabel), start=1):
        tuWin = tuple(slice(max(oSl.start - reachSize, 0), oSl.stop + reachSize) for oSl in tuBox)
        mDist = ndimage.distance_transform_edt(mLabel[tuWin] != cellIdx)  #<! 0 on the cell, its distance elsewhere
        mD1Win, mD2Win = mD1[tuWin], mD2[tuWin]  #<! Views: the updates below write into mD1 and mD2
        mD2Win[...] = np.where(mDist < mD1Win, mD1Win, np.minimum(mD2Win, mDist))
        mD1Win[...] = np.minimum(mD1Win, mDist)
    mBorder = np.where(mLabel == 0, np.exp(-(mD1 + mD2) ** 2 / (2 * sigma ** 2)), 0.0)  #<! exp(-inf) = 0: no 2nd cell
    return torch.from_numpy((vClassWeight[mMask] + w0 * mBorder).astype(np.float32))


class WeightedCrossEntropy(nn.Module):
    """Cross-entropy with a weight per pixel: ``sum(w * CE) / sum(w)``, a weighted mean (so its scale is that of
    the plain cross-entropy). Called as ``hL(tZ, tY, tW)`` with ``tW`` ``N x H x W`` (the third item of a batch of
    ``IsbiMembranes.WithWeightMaps``); without ``tW`` it is the plain cross-entropy."""

    def forward(self, tZ: torch.Tensor, tY: torch.Tensor, tW: torch.Tensor | None = None) -> torch.Tensor:
        _CheckLogitsAndMask(tZ, tY)
        tCe = F.cross_entropy(tZ.float(), tY.long(), reduction='none')
        if tW is None:
            return tCe.mean()
        if tW.shape != tY.shape:
            raise ValueError(f'Expected pixel weights of the mask\'s shape {tuple(tY.shape)}, got {tuple(tW.shape)}.')
        return (tW * tCe).sum() / tW.sum()


# ------------------------------------------------------------------------------------------------
# Joint transforms
# ------------------------------------------------------------------------------------------------
class RandomRot90(TF.Transform):
    """Rotate by a random multiple of 90 degrees (0, 90, 180 or 270), image and mask alike.

    Exact: pixels are permuted, nothing is interpolated and no corner needs filling (unlike ``RandomRotation``).
    With ``RandomHorizontalFlip`` it covers all 8 symmetries of the square.
    """

    _transformed_types = (torch.Tensor,)  #<! Images, masks (tv_tensors are tensors) and plain tensors

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return {'numRot': int(torch.randint(4, ()))}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, _GEOMETRY_TYPES):
            raise TypeError('RandomRot90 rotates images and masks only, not boxes or key points.')
        if params['numRot'] == 0:
            return inpt
        tOut = torch.rot90(inpt.as_subclass(torch.Tensor), params['numRot'], dims=(-2, -1))
        return tv_tensors.wrap(tOut, like=inpt) if isinstance(inpt, tv_tensors.TVTensor) else tOut


# Boxes and key points (torchvision >= 0.23 only) would need their coordinates rotated, not their pixels
_GEOMETRY_TYPES = tuple(getattr(tv_tensors, name) for name in ('BoundingBoxes', 'KeyPoints') if hasattr(tv_tensors, name))


class CoarseElasticTransform(TF.ElasticTransform):
    """``v2.ElasticTransform`` with the U-Net paper's displacement field: random vectors on a coarse
    ``gridSize x gridSize`` grid (Gaussian, ``displacementStd`` pixels), interpolated bicubically to every pixel.

    The warp itself is ``v2.ElasticTransform``'s (bilinear for images, nearest-neighbour for masks); only the field
    differs. torchvision's own field blurs per-pixel noise with a 41 x 41 kernel (``sigma=5``): about 100 ms per
    160 x 160 crop on one CPU core, while this one costs well under a millisecond.
    """

    def __init__(self, gridSize: int = 3, displacementStd: float = 10.0,
                 interpolation: Any = TF.InterpolationMode.BILINEAR,
                 fill: Any = 0) -> None:
        super().__init__(alpha=0.0, sigma=0.0, interpolation=interpolation, fill=fill)
        if gridSize < 2 or displacementStd < 0:
            raise ValueError(f'gridSize must be >= 2 and displacementStd >= 0, got {gridSize} and {displacementStd}.')
        self.gridSize = gridSize
        self.displacementStd = displacementStd

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        valH, valW = TF.query_size(flat_inputs)
        # The field is built where the image is (the warp runs there): only the 2 x g x g draws cross, not H x W x 2.
        # The draws stay on the CPU's global generator, so torch.manual_seed gives the same field on every device.
        oDevice = next((inpt.device for inpt in flat_inputs if isinstance(inpt, torch.Tensor) and inpt.ndim >= 2),
                       torch.device('cpu'))
        tCoarse = torch.randn(1, 2, self.gridSize, self.gridSize) * self.displacementStd  #<! Pixels (dx, dy)
        tField = F.interpolate(tCoarse.to(oDevice), size=(valH, valW), mode='bicubic', align_corners=True)
        # ElasticTransform's displacement is in grid_sample units: the image spans [-1, 1], so 1 pixel = 2 / size
        tField = tField * torch.tensor([2 / valW, 2 / valH], device=oDevice).view(1, 2, 1, 1)
        return {'displacement': tField.permute(0, 2, 3, 1)}  #<! 1 x H x W x 2


PAPER_TILE_SIZE = 572  #<! The U-Net paper's input tile, which its coarse 3 x 3 elastic grid is taken to span
PAPER_ELASTIC_STD = 10.0  #<! ... with displacements of std 10 pixels on that grid


def ElasticWindowSize(cropSize: int, elasticStd: float) -> int:
    """The window ``IsbiTransforms`` warps for a ``cropSize`` crop: ``3 * elasticStd`` pixels more on every side,
    cut off after the warp (the border it had to fill)."""
    return cropSize + 2 * int(np.ceil(3 * elasticStd))


def _PaperStdOver(windowSize: int, elasticGrid: int) -> float:
    """The std that gives a warp over ``windowSize`` pixels on an ``elasticGrid`` grid the paper's strain."""
    if windowSize < 1 or elasticGrid < 2:
        raise ValueError(f'cropSize must be >= 1 and elasticGrid >= 2, got {windowSize} and {elasticGrid}.')
    return PAPER_ELASTIC_STD / (PAPER_TILE_SIZE / 2) * windowSize / (elasticGrid - 1)


def PaperElasticStd(cropSize: int, elasticGrid: int = 3) -> float:
    """The displacement std that gives a ``cropSize`` crop the U-Net paper's elastic strain.

    The strain of the warp is the std over the grid spacing: the paper's ``10 / (572 / 2)``, taking its 3 x 3 grid
    to span its 572-pixel input tile (the paper says "a coarse 3 by 3 grid", not what it spans). The window
    warped is ``ElasticWindowSize(cropSize, std)``, which grows with the std: the std is its fixed point. The same
    10 pixels on a 188-pixel window would be about 3x the paper's strain.
    """
    valStd = _PaperStdOver(cropSize, elasticGrid)
    for _ in range(20):  #<! Converges in a few steps: the window grows by 6 std, the std by 6 std x the strain
        valStd = _PaperStdOver(ElasticWindowSize(cropSize, valStd), elasticGrid)
    return valStd


def IsbiTransforms(valMean: float, valStd: float, cropSize: int | None = 256, augment: bool = True,
                   elasticStd: float | None = None, elasticGrid: int = 3,
                   grayJitter: float = 0.1) -> tuple[TF.Compose, TF.Compose]:
    """Return ``(oTrainTransform, oEvalTransform)`` for ``(Image, Mask)`` pairs (or ``(Image, Mask, PixelWeights)``).

    Training: random crop of ``cropSize`` (``None``: the whole slice), random flip and 90 degree rotation, and, when
    ``elasticStd > 0``, the paper's elastic deformation (``CoarseElasticTransform``; the mask and the weights are
    warped with nearest-neighbour interpolation). ``elasticStd=None`` gives the paper's strain at this crop size
    (``PaperElasticStd``; for the whole slice, the paper's strain over its size). The crop is then taken
    ``3 * elasticStd`` pixels larger on every side (``ElasticWindowSize``) and cut back to ``cropSize`` after the
    deformation, so the filled border of the warp stays out of the batch. Then the paper's
    gray-value variation: a random brightness and contrast factor in ``[1 - grayJitter, 1 + grayJitter]``
    (``ColorJitter``; images only). Both: ``uint8`` -> ``float32`` in ``[0, 1]``, standardized by
    ``(valMean, valStd)`` (statistics of the training split); the mask becomes ``int64`` class indices (what
    ``CrossEntropyLoss`` expects), pixel weights stay float. Evaluation: the whole slice, no augmentation. With
    ``augment=False`` the training transform is the random crop alone.
    """
    oToFloat = TF.ToDtype({tv_tensors.Image: torch.float32, tv_tensors.Mask: torch.int64, 'others': None}, scale=True)
    oNormalize = TF.Normalize(mean=[float(valMean)], std=[float(valStd)])
    oEvalTransform = TF.Compose([oToFloat, oNormalize])
    lCrop = [TF.RandomCrop(cropSize)] if cropSize is not None else []
    if not augment:
        return TF.Compose([*lCrop, oEvalTransform]), oEvalTransform
    if grayJitter < 0:
        raise ValueError(f'grayJitter must be >= 0 (0: no gray-value variation), got {grayJitter}.')
    lGray = [TF.ColorJitter(brightness=grayJitter, contrast=grayJitter)] if grayJitter > 0 else []
    if elasticStd is None and cropSize is None:  #<! The whole slice is warped, with no grown window around it
        elasticStd = _PaperStdOver(ISBI_SIZE, elasticGrid)
    elif elasticStd is None:
        elasticStd = PaperElasticStd(cropSize, elasticGrid)
    if elasticStd <= 0:
        return TF.Compose([*lCrop, TF.RandomHorizontalFlip(), RandomRot90(), *lGray, oEvalTransform]), oEvalTransform
    lSteps: list[Callable] = [TF.RandomCrop(ElasticWindowSize(cropSize, elasticStd))] if cropSize is not None else []
    lSteps += [TF.RandomHorizontalFlip(), RandomRot90(), CoarseElasticTransform(elasticGrid, elasticStd)]
    lSteps += [TF.CenterCrop(cropSize)] if cropSize is not None else []
    return TF.Compose([*lSteps, *lGray, oEvalTransform]), oEvalTransform


# ------------------------------------------------------------------------------------------------
# U-Net
# ------------------------------------------------------------------------------------------------
def UNetDoubleConv(numChnIn: int, numChnOut: int) -> nn.Sequential:
    """The U-Net's basic block: two 3 x 3 ``ConvBnRelu`` ('same' padding, so the size is kept)."""
    return nn.Sequential(ConvBnRelu(numChnIn, numChnOut), ConvBnRelu(numChnOut, numChnOut))


def UNetDown(numChnIn: int, numChnOut: int) -> nn.Sequential:
    """One encoder step: ``MaxPool2d(2)`` (half the size) then ``UNetDoubleConv`` (more channels)."""
    return nn.Sequential(nn.MaxPool2d(2), UNetDoubleConv(numChnIn, numChnOut))


class UNetUp(nn.Module):
    """One decoder step: upsample x2 (halving the channels), concatenate the encoder's skip map, ``UNetDoubleConv``.

    ``upMode='transpose'``: ``ConvTranspose2d(kernel 2, stride 2)`` (the paper's "up-convolution"; kernel = stride,
    so the kernel windows tile the output: no uneven overlap. It is still not free of a pattern: each of the 4
    positions of a 2 x 2 output block has its own weights, so a constant input gives a 2 x 2 periodic output).
    ``upMode='bilinear'``: bilinear upsampling then a 1 x 1 convolution.
    """

    def __init__(self, numChnIn: int, numChnSkip: int, numChnOut: int, upMode: str = 'transpose') -> None:
        super().__init__()
        numChnUp = numChnIn // 2
        if upMode == 'transpose':
            self.oUp = nn.ConvTranspose2d(numChnIn, numChnUp, kernel_size=2, stride=2)
        elif upMode == 'bilinear':
            self.oUp = nn.Sequential(nn.Upsample(scale_factor=2, mode='bilinear', align_corners=False),
                                     nn.Conv2d(numChnIn, numChnUp, kernel_size=1))
        else:
            raise ValueError(f"upMode must be 'transpose' or 'bilinear', got {upMode!r}.")
        self.oConv = UNetDoubleConv(numChnUp + numChnSkip, numChnOut)

    def forward(self, tX: torch.Tensor, tSkip: torch.Tensor) -> torch.Tensor:
        return self.oConv(torch.cat([tSkip, self.oUp(tX)], dim=1))  #<! Channels: skip first, as in the paper


class UNet(nn.Module):
    """U-Net (Ronneberger, Fischer & Brox, 2015) with 'same' padding: the output has the input's height and width.

    ``numLevels`` poolings (the depth); the width doubles at every level: ``baseWidth * 2 ** level``. The paper's
    network is ``UNet(1, 2, numLevels=4, baseWidth=64)`` (with unpadded convolutions). The input height and width
    must be multiples of ``2 ** numLevels`` (``PredictTiled`` pads full images for it).

    Attributes: ``oEncoder`` (an ``nn.Sequential``: the stem, then one ``UNetDown`` per level; usable with
    ``ModelShapeTable``), ``oDecoder`` (``nn.ModuleList`` of ``UNetUp``), ``oHead`` (1 x 1 convolution to the class
    logits). The output is ``N x numClasses x H x W`` logits.
    """

    def __init__(self, numChnIn: int = 1, numClasses: int = 2, numLevels: int = 4, baseWidth: int = 16,
                 upMode: str = 'transpose') -> None:
        super().__init__()
        if numLevels < 1:
            raise ValueError(f'numLevels must be at least 1, got {numLevels}.')
        if baseWidth < 2 or baseWidth % 2:
            raise ValueError(f'baseWidth must be an even number >= 2 (upsampling halves the channels), got {baseWidth}.')
        lWidths = [baseWidth * 2 ** ii for ii in range(numLevels + 1)]
        self.numLevels = numLevels
        self.lWidths = lWidths
        self.oEncoder = nn.Sequential(UNetDoubleConv(numChnIn, lWidths[0]),
                                      *[UNetDown(lWidths[ii], lWidths[ii + 1]) for ii in range(numLevels)])
        self.oDecoder = nn.ModuleList([UNetUp(lWidths[ii + 1], lWidths[ii], lWidths[ii], upMode)
                                       for ii in reversed(range(numLevels))])
        self.oHead = nn.Conv2d(lWidths[0], numClasses, kernel_size=1)

    @property
    def sizeMultiple(self) -> int:
        """Input heights and widths must be multiples of this (``2 ** numLevels``)."""
        return 2 ** self.numLevels

    def forward(self, tX: torch.Tensor) -> torch.Tensor:
        if tX.shape[-2] % self.sizeMultiple or tX.shape[-1] % self.sizeMultiple:
            raise ValueError(f'UNet with {self.numLevels} levels needs a height and width that are multiples of '
                             f'{self.sizeMultiple}, got {tuple(tX.shape[-2:])}. Crop or pad the input (PredictTiled '
                             f'pads whole images).')
        lSkips = []
        for oBlock in self.oEncoder:
            tX = oBlock(tX)
            lSkips.append(tX)
        lSkips.pop()  #<! The bottleneck's output is the decoder's input, not a skip
        for oUp in self.oDecoder:
            tX = oUp(tX, lSkips.pop())
        return self.oHead(tX)


def UNetShapeTable(oUNet: UNet, tuInShape: Sequence[int]) -> pd.DataFrame:
    """Shapes of a ``UNet`` block by block (no batch dimension), by formula (``LayerOutputShape``), with parameters.

    ``ModelShapeTable`` walks an ``nn.Sequential``; a U-Net is not one (the decoder also takes the skip maps), so
    this table follows its forward pass: encoder blocks, then per decoder level the upsampling, the concatenation
    with the skip map and the double convolution, then the head.
    """
    tuShape = tuple(int(s) for s in tuInShape)
    lRows = [{'Block': 'Input', 'Output Shape': tuShape, 'Parameters': 0}]

    def _Params(oModule: nn.Module) -> int:
        return sum(p.numel() for p in oModule.parameters())

    lSkipShapes = []
    for blockIdx, oBlock in enumerate(oUNet.oEncoder):
        tuShape = LayerOutputShape(oBlock, tuShape)
        lSkipShapes.append(tuShape)
        lRows.append({'Block': 'Encoder stem' if blockIdx == 0 else f'Encoder down {blockIdx}',
                      'Output Shape': tuShape, 'Parameters': _Params(oBlock)})
    lSkipShapes.pop()
    for upIdx, oUp in enumerate(oUNet.oDecoder, start=1):
        if isinstance(oUp.oUp, nn.ConvTranspose2d):
            tuShape = LayerOutputShape(oUp.oUp, tuShape)
        else:  #<! Upsample x2 (no formula layer) then a 1 x 1 convolution
            tuShape = LayerOutputShape(oUp.oUp[1], (tuShape[0], 2 * tuShape[1], 2 * tuShape[2]))
        lRows.append({'Block': f'Decoder up {upIdx}: upsample', 'Output Shape': tuShape, 'Parameters': _Params(oUp.oUp)})
        tuSkip = lSkipShapes.pop()
        if tuSkip[1:] != tuShape[1:]:
            raise ValueError(f'Decoder level {upIdx}: the upsampled map {tuShape} does not match the skip map {tuSkip}; '
                             f'the input size must be a multiple of {oUNet.sizeMultiple}.')
        tuShape = (tuSkip[0] + tuShape[0], *tuShape[1:])
        lRows.append({'Block': f'Decoder up {upIdx}: concat skip', 'Output Shape': tuShape, 'Parameters': 0})
        tuShape = LayerOutputShape(oUp.oConv, tuShape)
        lRows.append({'Block': f'Decoder up {upIdx}: double conv', 'Output Shape': tuShape,
                      'Parameters': _Params(oUp.oConv)})
    tuShape = LayerOutputShape(oUNet.oHead, tuShape)
    lRows.append({'Block': 'Head (1 x 1 conv)', 'Output Shape': tuShape, 'Parameters': _Params(oUNet.oHead)})
    return pd.DataFrame(lRows)


# ------------------------------------------------------------------------------------------------
# Loss and scores
# ------------------------------------------------------------------------------------------------
def _CheckLogitsAndMask(tZ: torch.Tensor, tY: torch.Tensor) -> None:
    if tZ.ndim != 4 or tY.ndim != 3 or tZ.shape[0] != tY.shape[0] or tZ.shape[2:] != tY.shape[1:]:
        raise ValueError(f'Expected logits N x C x H x W and a mask N x H x W of class indices, got '
                         f'{tuple(tZ.shape)} and {tuple(tY.shape)}.')


class DiceLoss(nn.Module):
    """Soft Dice loss: ``1 - mean_c (2 sum(P_c Y_c) + s) / (sum(P_c) + sum(Y_c) + s)``.

    ``P_c`` is the softmax probability of class ``c`` (or the given probabilities with ``fromLogits=False``),
    ``Y_c`` the one-hot mask; the sums run over the whole batch (every pixel of every image), which is steadier
    than a per-image mean on crops with few membrane pixels. ``lClassIdx`` picks the classes averaged (default all);
    ``smooth`` keeps the ratio defined for a class absent from the batch. A perfect prediction gives 0.
    """

    def __init__(self, lClassIdx: Sequence[int] | None = None, smooth: float = 1.0, fromLogits: bool = True) -> None:
        super().__init__()
        self.lClassIdx = None if lClassIdx is None else list(lClassIdx)
        self.smooth = smooth
        self.fromLogits = fromLogits

    def forward(self, tZ: torch.Tensor, tY: torch.Tensor) -> torch.Tensor:
        _CheckLogitsAndMask(tZ, tY)
        tP = torch.softmax(tZ.float(), dim=1) if self.fromLogits else tZ.float()
        tOneHot = F.one_hot(tY.long(), tZ.shape[1]).permute(0, 3, 1, 2).to(tP.dtype)
        vInter = (tP * tOneHot).sum(dim=(0, 2, 3))
        vTotal = tP.sum(dim=(0, 2, 3)) + tOneHot.sum(dim=(0, 2, 3))
        vDice = (2 * vInter + self.smooth) / (vTotal + self.smooth)
        if self.lClassIdx is not None:
            vDice = vDice[self.lClassIdx]
        return 1 - vDice.mean()

    def extra_repr(self) -> str:
        return f'lClassIdx={self.lClassIdx}, smooth={self.smooth}, fromLogits={self.fromLogits}'


class CeDiceLoss(nn.Module):
    """``ceWeight * CrossEntropy + diceWeight * Dice``: cross-entropy gives every pixel a gradient, Dice weighs the
    minority class as much as the majority one (it is a ratio per class, not a sum over pixels)."""

    def __init__(self, ceWeight: float = 1.0, diceWeight: float = 1.0, vClassWeight: torch.Tensor | None = None,
                 lDiceClassIdx: Sequence[int] | None = None) -> None:
        super().__init__()
        self.ceWeight = ceWeight
        self.diceWeight = diceWeight
        self.oCe = nn.CrossEntropyLoss(weight=vClassWeight)
        self.oDice = DiceLoss(lDiceClassIdx)

    def forward(self, tZ: torch.Tensor, tY: torch.Tensor) -> torch.Tensor:
        return self.ceWeight * self.oCe(tZ, tY.long()) + self.diceWeight * self.oDice(tZ, tY)


class IoUScore:
    """The IoU (Jaccard index) of one class from logits and a mask: a score for ``TrainModel``.

    ``IoU = |pred & truth| / |pred | truth|`` over all pixels of the batch; a batch where the class appears in
    neither scores 1. ``TrainModel`` averages batch scores, which equals the global IoU when the validation loader
    has a single batch.
    """

    def __init__(self, classIdx: int = 1) -> None:
        self.classIdx = classIdx
        self.__name__ = f'IoU[{classIdx}]'

    def __call__(self, tZ: torch.Tensor, tY: torch.Tensor) -> torch.Tensor:
        _CheckLogitsAndMask(tZ, tY)
        tPred = tZ.argmax(dim=1) == self.classIdx
        tTrue = tY == self.classIdx
        numUnion = (tPred | tTrue).sum()
        # torch.where, not `if numUnion == 0`: a Python branch on a tensor is a host sync every batch on a GPU
        # (the 0 / 0 = nan of the other branch is computed and discarded)
        return torch.where(numUnion == 0, 1.0, (tPred & tTrue).sum() / numUnion)


def SegmentationScores(tYPred: torch.Tensor, tY: torch.Tensor, lClasses: Sequence[str] = ISBI_CLASSES,
                       challengeScores: bool = False) -> dict[str, float]:
    """Pixel accuracy, then IoU and Dice of every class (torchmetrics, global over all pixels) and their means.

    ``tYPred`` and ``tY`` hold class indices of the same shape (e.g. ``N x H x W``). Returns a flat dictionary
    (``'Pixel Accuracy'``, ``'IoU <class>'``, ``'Dice <class>'``, ``'Mean IoU'``, ``'Mean Dice'``): one row of a
    results table. A class absent from both prediction and truth scores 0 (torchmetrics' convention).
    ``challengeScores=True`` adds the ISBI 2012 challenge's ``'Pixel Error'`` (1 - pixel accuracy) and
    ``'Rand Error'`` (``RandError``; masks ``N x H x W``, class 0 the cells).
    """
    if tYPred.shape != tY.shape:
        raise ValueError(f'Prediction and truth must have the same shape, got {tuple(tYPred.shape)} and '
                         f'{tuple(tY.shape)}. Pass class indices (argmax over the class axis), not logits.')
    numClasses = len(lClasses)
    vPred, vTrue = tYPred.reshape(-1).long().cpu(), tY.reshape(-1).long().cpu()
    vIoU = multiclass_jaccard_index(vPred, vTrue, numClasses, average='none')
    vDice = multiclass_f1_score(vPred, vTrue, numClasses, average='none')  #<! F1 of pixel labels = Dice
    dScores = {'Pixel Accuracy': float((vPred == vTrue).float().mean())}
    dScores |= {f'IoU {name}': float(v) for name, v in zip(lClasses, vIoU)}
    dScores |= {f'Dice {name}': float(v) for name, v in zip(lClasses, vDice)}
    dScores |= {'Mean IoU': float(vIoU.mean()), 'Mean Dice': float(vDice.mean())}
    if challengeScores:
        dScores |= {'Pixel Error': 1 - dScores['Pixel Accuracy'], 'Rand Error': RandError(tYPred, tY)}
    return dScores


def RandError(tYPred: torch.Tensor, tY: torch.Tensor, cellClass: int = 0) -> float:
    """The foreground-restricted Rand error of the ISBI 2012 challenge, at one threshold, averaged over the slices.

    Per slice ``H x W`` (``tYPred`` / ``tY`` ``N x H x W`` class indices): the cells are the connected regions of
    ``cellClass`` (4-connected), each its own segment. ``skimage.metrics.adapted_rand_error`` gives 1 - the F-score
    of the Rand index's precision and recall: how often two pixels that share a cell in the truth share a segment in
    the prediction, and the other way round. The truth's membrane pixels are left out (its label 0, ignored). The
    prediction's membrane pixels each get a label of their own, so they split nothing but themselves: the
    foreground restriction of the challenge's Fiji script, where skimage's default would merge them all into one
    segment. The challenge took the best score over thresholds of the probability map; this scores the prediction
    as it is.
    """
    if tYPred.shape != tY.shape or tY.ndim != 3:
        raise ValueError(f'Expected a prediction and a truth N x H x W of class indices, got {tuple(tYPred.shape)} '
                         f'and {tuple(tY.shape)}.')
    lErrors = []
    for tPred, tTrue in zip(tYPred.cpu(), tY.cpu()):
        mTrueLabel, _ = ndimage.label(tTrue.numpy() == cellClass)
        mPredLabel, numCells = ndimage.label(tPred.numpy() == cellClass)
        mIsBorder = mPredLabel == 0
        mPredLabel[mIsBorder] = numCells + 1 + np.arange(int(mIsBorder.sum()))  #<! One segment per membrane pixel
        lErrors.append(adapted_rand_error(mTrueLabel, mPredLabel, ignore_labels=(0,))[0])
    return float(np.mean(lErrors))


# ------------------------------------------------------------------------------------------------
# Full-size inference
# ------------------------------------------------------------------------------------------------
def _PadTo(tX: torch.Tensor, tuPad: tuple[int, int, int, int]) -> torch.Tensor:
    # Mirror the borders (the U-Net paper's overlap-tile): the context beyond the edge looks like tissue, not black
    if max(tuPad) > min(tX.shape[-2:]) - 1:  #<! 'reflect' needs the pad to be smaller than the size
        return F.pad(tX, tuPad, mode='replicate')
    return F.pad(tX, tuPad, mode='reflect')


def PredictTiled(oModel: nn.Module, tX: torch.Tensor, tileSize: int | None = None, tileMargin: int = 32,
                 sizeMultiple: int | None = None, batchSize: int = 4) -> torch.Tensor:
    """Logits of full-size images ``N x C x H x W`` -> ``N x numClasses x H x W`` (on the CPU), in eval mode.

    - ``tileSize=None``: one pass per image, mirror-padded up to a multiple of ``sizeMultiple`` (default the
      model's ``sizeMultiple``, else 1) and cropped back.
    - ``tileSize``: overlap-tile. The image is mirror-padded by ``tileMargin`` on every side (and up to a multiple of
      ``tileSize``); windows of ``tileSize + 2 tileMargin`` are predicted and only their central ``tileSize`` block
      is kept, so every kept pixel had at least ``tileMargin`` pixels of context. Memory grows with the window,
      not with the image.
    """
    if tX.ndim != 4:
        raise ValueError(f'Expected images N x C x H x W, got shape {tuple(tX.shape)} (add a batch axis with [None]).')
    sizeMultiple = sizeMultiple or getattr(oModel, 'sizeMultiple', 1)
    oDevice = ModelDevice(oModel)
    wasTraining = oModel.training
    oModel.eval()
    numImg, _, valH, valW = tX.shape
    try:
        with torch.no_grad():
            if tileSize is None:
                padH, padW = -valH % sizeMultiple, -valW % sizeMultiple
                lOut = []
                for ii in range(0, numImg, batchSize):
                    tBatch = _PadTo(tX[ii:ii + batchSize].to(oDevice).float(),
                                    (padW // 2, padW - padW // 2, padH // 2, padH - padH // 2))
                    tZ = oModel(tBatch)
                    lOut.append(tZ[..., padH // 2:padH // 2 + valH, padW // 2:padW // 2 + valW].cpu())
                return torch.cat(lOut)

            windowSize = tileSize + 2 * tileMargin
            if tileSize < 1 or tileMargin < 0 or windowSize % sizeMultiple:
                raise ValueError(f'tileSize + 2 * tileMargin = {windowSize} must be a positive multiple of '
                                 f'{sizeMultiple} (the model halves the size that many times); got tileSize='
                                 f'{tileSize}, tileMargin={tileMargin}.')
            extraH, extraW = -valH % tileSize, -valW % tileSize
            tPadded = _PadTo(tX.float(), (tileMargin, tileMargin + extraW, tileMargin, tileMargin + extraH))
            lCorners = [(r, c) for r in range(0, valH + extraH, tileSize) for c in range(0, valW + extraW, tileSize)]
            tOut = None
            for imgIdx in range(numImg):
                for ii in range(0, len(lCorners), batchSize):
                    lBatch = lCorners[ii:ii + batchSize]
                    tTiles = torch.stack([tPadded[imgIdx, :, r:r + windowSize, c:c + windowSize] for r, c in lBatch])
                    tZ = oModel(tTiles.to(oDevice)).cpu()
                    if tOut is None:
                        tOut = torch.empty(numImg, tZ.shape[1], valH + extraH, valW + extraW)
                    for (r, c), tTile in zip(lBatch, tZ):
                        tOut[imgIdx, :, r:r + tileSize, c:c + tileSize] = \
                            tTile[:, tileMargin:tileMargin + tileSize, tileMargin:tileMargin + tileSize]
            return tOut[..., :valH, :valW]
    finally:
        oModel.train(wasTraining)


# ------------------------------------------------------------------------------------------------
# Figure
# ------------------------------------------------------------------------------------------------
def _ToImage2D(tX: torch.Tensor | np.ndarray) -> np.ndarray:
    mX = tX.detach().cpu().numpy() if torch.is_tensor(tX) else np.asarray(tX)
    return mX[0] if mX.ndim == 3 else mX


def PlotSegmentation(tImages: torch.Tensor, tMasks: torch.Tensor | None = None, tPreds: torch.Tensor | None = None,
                     lTitles: Sequence[str] | None = None, classIdx: int = 1, cellSize: float = 2.6,
                     hF: Figure | None = None) -> Figure:
    """One row per image: the image, the truth, the prediction, and the errors overlaid on the image.

    ``tImages`` N x (1 x) H x W, ``tMasks`` / ``tPreds`` N x H x W class indices (either may be ``None``: its column
    is left out; the error column needs both). Class ``classIdx`` (membrane) is drawn white on black. Errors: false
    positives red, false negatives blue. ``lTitles`` names the rows (e.g. the slice numbers).
    """
    numImg = len(tImages)
    lCols = ['Image'] + (['Truth'] if tMasks is not None else []) + (['Prediction'] if tPreds is not None else [])
    hasErrors = tMasks is not None and tPreds is not None
    lCols += ['Errors (FP red, FN blue)'] if hasErrors else []
    if hF is None:
        hF = plt.figure(figsize=(cellSize * len(lCols), cellSize * numImg + 0.3), layout='constrained')
    mHa = hF.subplots(numImg, len(lCols), squeeze=False)
    for ii in range(numImg):
        mI = _ToImage2D(tImages[ii]).astype(np.float64)
        mI = (mI - mI.min()) / max(mI.max() - mI.min(), 1e-12)  #<! Standardized or raw: shown in [0, 1]
        lPanels: list[np.ndarray] = [mI]
        if tMasks is not None:
            lPanels.append(_ToImage2D(tMasks[ii]) == classIdx)
        if tPreds is not None:
            lPanels.append(_ToImage2D(tPreds[ii]) == classIdx)
        if hasErrors:
            mTrue, mPred = lPanels[1], lPanels[2]
            mRgb = np.repeat(mI[..., None], 3, axis=2) * 0.7
            mRgb[mPred & ~mTrue] = (1.0, 0.15, 0.15)
            mRgb[~mPred & mTrue] = (0.2, 0.45, 1.0)
            lPanels.append(mRgb)
        for colIdx, (hA, mPanel) in enumerate(zip(mHa[ii], lPanels)):
            hA.imshow(mPanel, cmap='gray' if mPanel.ndim == 2 else None, interpolation='nearest',
                      vmin=0, vmax=1)
            hA.set_xticks([])
            hA.set_yticks([])
            if ii == 0:
                hA.set_title(lCols[colIdx], fontsize=10)
            if colIdx == 0 and lTitles is not None:
                hA.set_ylabel(lTitles[ii], fontsize=10)
    return hF
