"""Latent device bugs of convolution, data, segmentation and visualization helpers, checked on the CPU and `meta`.

No GPU is needed: the `meta` device stands in for an accelerator (a CPU tensor mixed into meta work fails, and a
meta tensor copied to the CPU fails), and a ``TorchDispatchMode`` records the ATen calls that would be host syncs
or host <-> device copies on a GPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.data import DataLoader, TensorDataset
from torchvision import tv_tensors

import course_utils.data as cuData
from course_utils.convolution import Conv2DLoops
from course_utils.data import ChannelMeanStd
from course_utils.segmentation import CoarseElasticTransform, IoUScore
from course_utils.visualization import GetActivations, TopActivatingImages

aten = torch.ops.aten
COPY_OPS = (aten._to_copy.default, aten.copy_.default, aten.clone.default)


class RecordAten(TorchDispatchMode):
    """Record every ATen call (op packet, flat tensor inputs, flat tensor outputs) made inside the block."""

    def __init__(self) -> None:
        super().__init__()
        self.lCalls: list[tuple[Any, list[torch.Tensor], list[torch.Tensor]]] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        out = func(*args, **(kwargs or {}))
        lIn = [t for t in tree_flatten((args, kwargs or {}))[0] if isinstance(t, torch.Tensor)]
        lOut = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        self.lCalls.append((func, lIn, lOut))
        return out

    def Calls(self, *lOps: Any) -> list[tuple[Any, list[torch.Tensor], list[torch.Tensor]]]:
        return [call for call in self.lCalls if call[0] in lOps or call[0].overloadpacket in lOps]

    def NumHostSyncs(self) -> int:
        """Calls that wait for the device: a scalar read (``.item()``, ``bool(t)``), ``nonzero`` (its output size
        depends on the data) and indexing with a boolean mask (a ``nonzero`` inside)."""
        numSyncs = len(self.Calls(aten._local_scalar_dense, aten.nonzero, aten.is_nonzero, aten.item))
        for _, lIn, _ in self.Calls(aten.index, aten.index_put, aten.index_put_):
            numSyncs += any(t.dtype == torch.bool for t in lIn[1:])
        return numSyncs

    def CopiedBytes(self, toDevice: str | None = None) -> int:
        """Bytes written by copy ops (``to``, ``copy_``, ``clone``), optionally only those landing on ``toDevice``."""
        return sum(t.numel() * t.element_size() for _, _, lOut in self.Calls(*COPY_OPS) for t in lOut
                   if toDevice is None or t.device.type == toDevice)

    def CrossDeviceCopies(self) -> list[tuple[str, str, int]]:
        """``(from, to, bytes)`` of every copy whose input and output devices differ."""
        lCopies = []
        for _, lIn, lOut in self.Calls(*COPY_OPS):
            for tIn in lIn:
                for tOut in lOut:
                    if tIn.device != tOut.device:
                        lCopies.append((tIn.device.type, tOut.device.type, tOut.numel() * tOut.element_size()))
        return lCopies


def test_record_aten_sees_what_it_must_catch() -> None:
    # The recorder itself: each pattern the tests below forbid is seen when it happens
    tX = torch.tensor([0.0, 2.0, 0.0])
    for hOp in (lambda: bool(tX.sum() == 0), lambda: tX.sum().item(), lambda: tX[tX > 0], lambda: tX.nonzero()):
        with RecordAten() as oRec:
            hOp()
        assert oRec.NumHostSyncs() >= 1
    with RecordAten() as oRec:
        torch.where(tX.sum() == 0, 1.0, tX.sum())
    assert oRec.NumHostSyncs() == 0
    with RecordAten() as oRec:
        torch.zeros(4, device='meta').clone()  #<! Same device: not a crossing
        torch.zeros(4).to('meta')
    assert oRec.CrossDeviceCopies() == [('cpu', 'meta', 16)]


# ------------------------------------------------------------------------------------------------
# 1. Conv2DLoops
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('tuShape', [(2, 3, 6, 5), (3, 6, 5)])
def test_conv2d_loops_output_lives_on_the_input_device(tuShape: tuple[int, ...]) -> None:
    tX = torch.empty(tuShape, device='meta')
    tW, vB = torch.empty(4, 3, 3, 3, device='meta'), torch.empty(4, device='meta')
    with RecordAten() as oRec:
        tY = Conv2DLoops(tX, tW, vB, padding=1)
    assert tY.device.type == 'meta' and tY.shape == (*tuShape[:-3], 4, 6, 5)
    assert oRec.CrossDeviceCopies() == []
    assert all(t.device.type == 'meta' for _, _, lOut in oRec.lCalls for t in lOut)  #<! Nothing built on the CPU


def test_conv2d_loops_output_keeps_the_dtype() -> None:
    tX, tW = torch.randn(1, 2, 5, 5, dtype=torch.float64), torch.randn(3, 2, 3, 3, dtype=torch.float64)
    tY = Conv2DLoops(tX, tW)
    assert tY.dtype == torch.float64
    torch.testing.assert_close(tY, F.conv2d(tX, tW))


# ------------------------------------------------------------------------------------------------
# 2. ChannelMeanStd
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(('device', 'accDtype'), [('mps', torch.float32), (torch.device('mps'), torch.float32),
                                                  ('cuda', torch.float64), ('cuda:1', torch.float64),
                                                  ('cpu', torch.float64), (torch.device('meta'), torch.float64)])
def test_accumulation_dtype_has_no_float64_on_mps(device: torch.device | str, accDtype: torch.dtype) -> None:
    assert cuData._AccumulateDtype(device) == accDtype


def test_channel_mean_std_accumulates_in_the_dtype_of_the_batches_device(monkeypatch: pytest.MonkeyPatch) -> None:
    # Stand in for MPS with meta: the dtype picker says 'no float64 here'; then no float64 tensor may appear
    lAsked: list[torch.device] = []

    def _NoFloat64(device: torch.device | str) -> torch.dtype:
        lAsked.append(torch.device(device))
        return torch.float32

    monkeypatch.setattr(cuData, '_AccumulateDtype', _NoFloat64)
    lBatches = [torch.empty(4, 3, 5, 5, device='meta') for _ in range(3)]
    with RecordAten() as oRec:
        vMean, vStd = ChannelMeanStd(lBatches)
    assert lAsked and all(oDevice.type == 'meta' for oDevice in lAsked)
    assert not any(t.dtype == torch.float64 for _, _, lOut in oRec.lCalls for t in lOut)
    assert vMean.shape == vStd.shape == (3,) and vMean.device.type == 'meta'
    assert oRec.NumHostSyncs() == 0 and oRec.CrossDeviceCopies() == []


def test_channel_mean_std_on_the_cpu_matches_numpy_in_float64() -> None:
    oGen = torch.Generator().manual_seed(0)
    tX = torch.rand(50, 3, 8, 8, generator=oGen) * 0.01 + 1000.0  #<! Large mean, small spread: float32 would lose it
    vMean, vStd = ChannelMeanStd(DataLoader(TensorDataset(tX), batch_size=7))
    mX = tX.double().numpy()
    np.testing.assert_allclose(vMean.numpy(), mX.mean(axis=(0, 2, 3)), rtol=1e-7)
    np.testing.assert_allclose(vStd.numpy(), mX.std(axis=(0, 2, 3)), rtol=1e-4)
    assert vMean.dtype == vStd.dtype == torch.float32


# ------------------------------------------------------------------------------------------------
# 3. CoarseElasticTransform
# ------------------------------------------------------------------------------------------------
def test_elastic_field_is_built_on_the_image_device() -> None:
    oTransform = CoarseElasticTransform(gridSize=3, displacementStd=5.0)
    tImg = tv_tensors.Image(torch.empty(1, 40, 30, device='meta'))
    tMask = tv_tensors.Mask(torch.empty(40, 30, dtype=torch.int64, device='meta'))
    with RecordAten() as oRec:
        tImgOut, tMaskOut = oTransform(tImg, tMask)
    assert isinstance(tImgOut, tv_tensors.Image) and isinstance(tMaskOut, tv_tensors.Mask)
    assert tImgOut.device.type == tMaskOut.device.type == 'meta'
    assert tImgOut.shape == (1, 40, 30) and tMaskOut.shape == (40, 30)
    lFieldOps = oRec.Calls(aten.upsample_bicubic2d, aten.grid_sampler_2d)
    assert {call[0].overloadpacket for call in lFieldOps} == {aten.upsample_bicubic2d, aten.grid_sampler_2d}
    assert all(t.device.type == 'meta' for _, lIn, _ in lFieldOps for t in lIn)
    # Only the coarse draws (2 x 3 x 3 float32) and the two scale factors cross, never an H x W field
    lCopies = oRec.CrossDeviceCopies()
    assert all(src == 'cpu' and dst == 'meta' for src, dst, _ in lCopies)
    assert sum(numBytes for *_, numBytes in lCopies) <= 4 * (2 * 3 * 3 + 2)


def test_elastic_field_on_the_cpu_is_unchanged_and_seeded() -> None:
    oTransform = CoarseElasticTransform(gridSize=4, displacementStd=3.0)
    tImg = tv_tensors.Image(torch.rand(1, 20, 24))
    torch.manual_seed(5)
    tField = oTransform.make_params([tImg])['displacement']
    torch.manual_seed(5)  #<! The former construction, all on the CPU
    tCoarse = torch.randn(1, 2, 4, 4) * 3.0
    tRef = F.interpolate(tCoarse, size=(20, 24), mode='bicubic', align_corners=True)
    tRef = (tRef * torch.tensor([2 / 24, 2 / 20]).view(1, 2, 1, 1)).permute(0, 2, 3, 1)
    assert tField.device.type == 'cpu'
    torch.testing.assert_close(tField, tRef, rtol=0, atol=0)


# ------------------------------------------------------------------------------------------------
# 4. IoUScore
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('case', ['overlap', 'both_absent'])
def test_iou_score_makes_no_host_sync(case: str) -> None:
    oGen = torch.Generator().manual_seed(0)
    tZ = torch.randn(2, 2, 8, 8, generator=oGen)
    tY = torch.randint(0, 2, (2, 8, 8), generator=oGen)
    if case == 'both_absent':
        tZ[:, 0] += 100.0  #<! Every pixel predicted class 0
        tY.zero_()
    with RecordAten() as oRec:
        valIoU = IoUScore(classIdx=1)(tZ, tY)
    assert oRec.NumHostSyncs() == 0
    assert valIoU.ndim == 0 and valIoU.dtype == torch.float32
    vPred, vTrue = tZ.argmax(dim=1) == 1, tY == 1
    valExpected = 1.0 if case == 'both_absent' else (vPred & vTrue).sum().item() / (vPred | vTrue).sum().item()
    assert valIoU.item() == pytest.approx(valExpected)


def test_iou_score_stays_on_the_input_device() -> None:
    tZ = torch.empty(2, 3, 8, 8, device='meta')
    tY = torch.empty(2, 8, 8, dtype=torch.int64, device='meta')
    with RecordAten() as oRec:
        valIoU = IoUScore(classIdx=2)(tZ, tY)
    assert valIoU.device.type == 'meta' and valIoU.shape == ()
    assert oRec.CrossDeviceCopies() == []


# ------------------------------------------------------------------------------------------------
# 5. TopActivatingImages
# ------------------------------------------------------------------------------------------------
def _ConvModel() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 5, 3),
                         nn.Dropout(0.5))


def _Loader(numImages: int = 11, batchSize: int = 4) -> DataLoader:
    tX = torch.randn(numImages, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    return DataLoader(TensorDataset(tX, torch.zeros(numImages)), batch_size=batchSize)


@pytest.mark.parametrize('channelIdx', [0, 3])
def test_top_activating_images_matches_the_full_activations(channelIdx: int) -> None:
    oModel, dlData = _ConvModel(), _Loader()
    tX = torch.cat([mX for mX, _ in dlData])
    # The former way: whole activations of the layer (eval mode, on the CPU), then the channel's mean per image
    vScores = GetActivations(oModel, tX, lLayerNames=['3'])['3'][:, channelIdx].flatten(1).mean(dim=1)
    vTopRef, vIdxRef = torch.topk(vScores, 5)
    vIdx, vTop = TopActivatingImages(oModel, dlData, '3', channelIdx, numTop=5)
    assert vIdx.tolist() == vIdxRef.tolist()
    torch.testing.assert_close(vTop, vTopRef)
    assert vIdx.device.type == vTop.device.type == 'cpu'


def test_top_activating_images_restores_the_training_mode() -> None:
    oModel, dlData = _ConvModel(), _Loader()
    lModes: list[bool] = []
    oModel[1].register_forward_hook(lambda oLayer, tuIn, tOut: lModes.append(oLayer.training))
    oModel.train()
    TopActivatingImages(oModel, dlData, '3', 0, numTop=3)
    assert lModes and not any(lModes)  #<! Eval mode during the passes (BatchNorm's running statistics)
    assert oModel.training and all(oLayer.training for oLayer in oModel.modules())
    with pytest.raises(ValueError, match='5 channels'):
        TopActivatingImages(oModel, dlData, '3', channelIdx=7)
    assert oModel.training and all(oLayer.training for oLayer in oModel.modules())
    assert not oModel[3]._forward_hooks  #<! Its hook is removed, also after the error
    oModel.eval()
    TopActivatingImages(oModel, dlData, '3', 0, numTop=3)
    assert not oModel.training


def test_top_activating_images_copies_only_the_scores() -> None:
    oModel = _ConvModel()
    lBatches = list(_Loader(numImages=11, batchSize=4))  #<! Drawn before: a DataLoader reads its seed with .item()
    with RecordAten() as oRec:
        TopActivatingImages(oModel, lBatches, '3', 2, numTop=3)
    # The former recorder copied every batch's whole N x 5 x 6 x 6 activations (here 11 * 180 * 4 = 7,920 bytes)
    assert oRec.CopiedBytes() <= 11 * 8
    assert oRec.NumHostSyncs() == 0


def test_top_activating_images_scores_before_an_in_place_layer() -> None:
    oModel = nn.Sequential(nn.Conv2d(1, 1, 1, bias=False), nn.ReLU(inplace=True))
    with torch.no_grad():
        oModel[0].weight.fill_(-1.0)  #<! Every activation negative: the in-place ReLU would zero them
    tX = torch.tensor([0.3, 0.9, 0.1]).view(3, 1, 1, 1).expand(3, 1, 2, 2).clone()
    vIdx, vTop = TopActivatingImages(oModel, DataLoader(TensorDataset(tX), batch_size=2), '0', 0, numTop=2)
    assert vIdx.tolist() == [2, 0] and vTop.tolist() == pytest.approx([-0.1, -0.3])


def test_top_activating_images_refuses_an_empty_loader() -> None:
    with pytest.raises(ValueError, match='no batches'):
        TopActivatingImages(_ConvModel(), DataLoader(TensorDataset(torch.empty(0, 3, 8, 8))), '3', 0)
