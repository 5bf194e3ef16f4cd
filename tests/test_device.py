"""The device logic of the training path, tested on the CPU: host syncs counted per batch, batch copies, the mixed
precision choice under patched capabilities, the scale switch, and the ``meta`` device (no memory, no kernels)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.data import DataLoader, TensorDataset

from course_utils import (SCALES, AccuracyLogits, ChooseMixedPrecision, DeviceBatchLoader, GetScale, IsQuickMode,
                          NNMode, TrainEpoch, TrainModel)
from course_utils import config as cfg
from course_utils.training import ToDevice

SYNC_OPS = {'aten._local_scalar_dense.default', 'aten.nonzero.default', 'aten.nonzero_static.default'}
INDEX_OPS = {'aten.index.Tensor', 'aten.index_put_.default', 'aten.index_put.default', 'aten._index_put_impl_.default'}


def _Tensors(obj: Any) -> Iterator[torch.Tensor]:
    if torch.is_tensor(obj):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _Tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _Tensors(item)


class SyncCounter(TorchDispatchMode):
    """Counts the operations that make the host wait for the device: ``.item()`` (``_local_scalar_dense``),
    ``nonzero`` and boolean-mask indexing; also every cross-device copy with its ``non_blocking`` flag.

    ``Tensor.tolist`` reads a tensor without dispatching an operator, so it is counted by a patch (``PatchToList``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.numSync = 0
        self.lSyncOps: list[str] = []
        self.lCopies: list[tuple[str, str, bool]] = []  #<! (from, to, non_blocking)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = str(func)
        isBoolIndex = name in INDEX_OPS and any(t.dtype == torch.bool for t in _Tensors(args[1:2]))
        if name in SYNC_OPS or isBoolIndex:
            self.numSync += 1
            self.lSyncOps.append(name)
        out = func(*args, **kwargs)
        if name in {'aten._to_copy.default', 'aten.copy_.default'}:
            setIn = {t.device.type for t in _Tensors(args)}
            setOut = {t.device.type for t in _Tensors(out)}
            if setIn != setOut or len(setIn) > 1:
                srcDevice = args[1].device.type if name == 'aten.copy_.default' else args[0].device.type
                dstDevice = args[0].device.type if name == 'aten.copy_.default' else next(_Tensors(out)).device.type
                self.lCopies.append((srcDevice, dstDevice, bool(kwargs.get('non_blocking', False))))
        return out


@pytest.fixture
def oCounter(monkeypatch: pytest.MonkeyPatch) -> SyncCounter:
    """A sync counter that also counts ``Tensor.tolist`` (one read-back of a whole tensor), active in the test."""
    oMode = SyncCounter()
    hToList = torch.Tensor.tolist

    def CountedToList(tX: torch.Tensor):
        oMode.numSync += 1
        oMode.lSyncOps.append('Tensor.tolist')
        if tX.device.type == 'meta':  #<! No data on meta: the values do not matter, the count does
            return np.zeros(tX.shape).tolist()
        return hToList(tX)

    monkeypatch.setattr(torch.Tensor, 'tolist', CountedToList)
    return oMode


class PerBatch:
    """Wraps a loader and records the counter after every batch it yields: the differences are the syncs per batch."""

    def __init__(self, dlData: Any, oCounter: SyncCounter) -> None:
        self.dlData, self.oCounter = dlData, oCounter
        self.lMarks: list[int] = []
        self.lCopyMarks: list[int] = []

    def __len__(self) -> int:
        return len(self.dlData)

    def __iter__(self):
        for tBatch in self.dlData:
            self.lMarks.append(self.oCounter.numSync)
            self.lCopyMarks.append(len(self.oCounter.lCopies))
            yield tBatch

    def SyncsBetweenBatches(self) -> list[int]:
        return list(np.diff(self.lMarks))


def _Model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))


def _Images(numImg: int = 96) -> tuple[np.ndarray, np.ndarray]:
    oRng = np.random.default_rng(0)
    return oRng.integers(0, 256, (numImg, 12, 12, 3), dtype=np.uint8), oRng.integers(0, 10, numImg)


def _FastLoader(device: str = 'cpu', **kwargs) -> DeviceBatchLoader:
    mData, vY = _Images()
    return DeviceBatchLoader(mData, vY, 16, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), device=device, shuffle=True,
                             cropPadding=2, flipProb=0.5, seed=3, **kwargs)


# ------------------------------------------------------------------------------------------------------------------
# Host syncs per batch
# ------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('opMode', [NNMode.TRAIN, NNMode.INFERENCE])
def test_train_epoch_on_device_batches_never_syncs_per_batch(oCounter: SyncCounter, opMode: NNMode) -> None:
    oModel = _Model()
    oOpt = torch.optim.SGD(oModel.parameters(), lr=0.1, momentum=0.9)  #<! SGD keeps no CPU step counter (Adam does)
    dlData = PerBatch(_FastLoader(), oCounter)
    with oCounter:
        valLoss, valScore = TrainEpoch(oModel, dlData, nn.CrossEntropyLoss(), AccuracyLogits, oOpt, opMode=opMode,
                                       showProgress=False)
    assert len(dlData.lMarks) == 6
    assert dlData.SyncsBetweenBatches() == [0] * 5, f'host syncs per batch: {oCounter.lSyncOps}'
    assert oCounter.numSync - dlData.lMarks[-1] == 1, 'one read-back at the end of the epoch'
    assert 0 <= valScore <= 1 and valLoss > 0


def test_train_epoch_with_a_progress_bar_syncs_once_per_update(oCounter: SyncCounter) -> None:
    oModel = _Model()
    oOpt = torch.optim.SGD(oModel.parameters(), lr=0.1)
    mData, vY = _Images(192)
    dlData = PerBatch(DeviceBatchLoader(mData, vY, 16, (0.5,) * 3, (0.25,) * 3, shuffle=True, flipProb=0.5), oCounter)
    with oCounter:
        TrainEpoch(oModel, dlData, nn.CrossEntropyLoss(), AccuracyLogits, oOpt, showProgress=True, progressEvery=4)
    lPerBatch = dlData.SyncsBetweenBatches()  #<! Batch k's work is counted between marks k and k+1
    assert max(lPerBatch) <= 1, f'more than one sync for one bar update: {oCounter.lSyncOps}'
    assert sum(lPerBatch) == (len(dlData.lMarks) - 1) // 4, 'the bar syncs exactly once every progressEvery batches'


def test_segmentation_score_never_syncs(oCounter: SyncCounter) -> None:
    from course_utils import IoUScore
    tZ, tY = torch.randn(2, 2, 8, 8), torch.randint(0, 2, (2, 8, 8))
    with oCounter:
        IoUScore(1)(tZ, tY)
        IoUScore(1)(torch.zeros(2, 2, 8, 8), torch.zeros(2, 8, 8, dtype=torch.long))  #<! An empty union: no branch
    assert oCounter.numSync == 0, oCounter.lSyncOps


def test_fused_optimizer_lets_float16_scaling_skip_the_sync(oCounter: SyncCounter) -> None:
    # GradScaler.step reads found-inf back with .item() for a plain optimizer; a fused one takes it as a tensor
    oModel = _Model()
    oOpt = torch.optim.AdamW(oModel.parameters(), lr=1e-3, fused=True)
    oScaler = torch.amp.GradScaler('cpu')
    dlData = PerBatch(_FastLoader(), oCounter)
    with oCounter:
        TrainEpoch(oModel, dlData, nn.CrossEntropyLoss(), AccuracyLogits, oOpt, showProgress=False,
                   autocastDtype=torch.float16, oScaler=oScaler)
    assert dlData.SyncsBetweenBatches() == [0] * 5, oCounter.lSyncOps


def test_float16_training_without_a_scaler_is_refused() -> None:
    oModel = _Model()
    with pytest.raises(ValueError, match='GradScaler'):
        TrainEpoch(oModel, _FastLoader(), nn.CrossEntropyLoss(), AccuracyLogits,
                   torch.optim.SGD(oModel.parameters(), lr=0.1), autocastDtype=torch.float16, showProgress=False)
    with pytest.raises(ValueError, match='GradScaler'):  #<! A disabled scaler does not scale either
        TrainEpoch(oModel, _FastLoader(), nn.CrossEntropyLoss(), AccuracyLogits,
                   torch.optim.SGD(oModel.parameters(), lr=0.1), autocastDtype=torch.float16, showProgress=False,
                   oScaler=torch.amp.GradScaler('cpu', enabled=False))


def test_a_disabled_scaler_is_the_plain_step() -> None:
    # One code path: a disabled GradScaler passes the loss and the step through, so the weights match exactly
    lStates = []
    for oScaler in (None, torch.amp.GradScaler('cpu', enabled=False)):
        oModel = _Model()
        TrainEpoch(oModel, _FastLoader(), nn.CrossEntropyLoss(), AccuracyLogits,
                   torch.optim.SGD(oModel.parameters(), lr=0.1), showProgress=False, oScaler=oScaler)
        lStates.append(oModel.state_dict())
    for key in lStates[0]:
        torch.testing.assert_close(lStates[0][key], lStates[1][key], rtol=0, atol=0)


# ------------------------------------------------------------------------------------------------------------------
# Batch copies: non_blocking only for pinned CUDA copies; the meta device as a stand-in accelerator
# ------------------------------------------------------------------------------------------------------------------
class _FakeBatch:
    """A stand-in tensor that records how it was moved (no CUDA / MPS here)."""

    def __init__(self, isPinned: bool) -> None:
        self.device = torch.device('cpu')
        self.isPinned = isPinned
        self.dMoved: dict[str, Any] = {}

    def is_pinned(self) -> bool:
        return self.isPinned

    def to(self, device, non_blocking: bool = False):
        self.dMoved = {'device': torch.device(device).type, 'non_blocking': non_blocking}
        return self


@pytest.mark.parametrize('deviceType, isPinned, expected', [
    ('cuda', True, True),    #<! The one safe asynchronous copy
    ('cuda', False, False),  #<! Pageable memory: CUDA copies synchronously anyway
    ('mps', True, False),    #<! MPS may release the source before the queued copy reads it
    ('mps', False, False),
    ('meta', False, False),
])
def test_to_device_is_asynchronous_only_for_pinned_cuda_copies(deviceType: str, isPinned: bool,
                                                               expected: bool) -> None:
    oBatch = _FakeBatch(isPinned)
    ToDevice(oBatch, torch.device(deviceType))
    assert oBatch.dMoved == {'device': deviceType, 'non_blocking': expected}


def test_train_epoch_copies_unpinned_batches_synchronously(oCounter: SyncCounter) -> None:
    # A model on `meta` stands in for an accelerator: every CPU batch crosses devices, and no copy may be async
    oModel = _Model().to('meta')
    oOpt = torch.optim.SGD(oModel.parameters(), lr=0.1)
    dsData = TensorDataset(torch.randn(32, 3, 8, 8), torch.randint(0, 10, (32,)))
    with oCounter:
        TrainEpoch(oModel, DataLoader(dsData, batch_size=8), nn.CrossEntropyLoss(), AccuracyLogits, oOpt,
                   showProgress=False)
    lToMeta = [tuCopy for tuCopy in oCounter.lCopies if tuCopy[:2] == ('cpu', 'meta')]
    assert len(lToMeta) >= 8, 'images and labels of 4 batches'
    assert not any(isAsync for *_, isAsync in lToMeta), 'an unpinned copy was asynchronous'


def test_device_batch_loader_on_meta_copies_once_per_epoch(oCounter: SyncCounter) -> None:
    dlData = PerBatch(_FastLoader('meta', channelsLast=True), oCounter)
    with oCounter:
        lBatches = list(dlData)
    tX, vY = lBatches[0]
    assert tX.device.type == 'meta' and tX.shape == (16, 3, 12, 12) and tX.dtype == torch.float32
    assert tX.is_contiguous(memory_format=torch.channels_last) and vY.shape == (16,)
    assert dlData.lCopyMarks[0] == 1, f'one copy of the epoch draws before the first batch: {oCounter.lCopies}'
    assert list(np.diff(dlData.lCopyMarks)) == [0] * 5, f'a copy per batch: {oCounter.lCopies}'
    assert oCounter.numSync == 0, oCounter.lSyncOps


def test_train_epoch_runs_on_meta(oCounter: SyncCounter) -> None:
    # The whole training path on a device with no data: nothing in it needs a value on the host per batch
    oModel = _Model().to('meta')
    dlData = PerBatch(_FastLoader('meta'), oCounter)
    with oCounter:
        TrainEpoch(oModel, dlData, nn.CrossEntropyLoss(), AccuracyLogits,
                   torch.optim.SGD(oModel.parameters(), lr=0.1, momentum=0.9), showProgress=False)
    assert dlData.SyncsBetweenBatches() == [0] * 5


def test_device_batch_loader_draws_the_same_batches_on_every_device() -> None:
    # The epoch's random numbers come from the CPU generator: a meta loader makes exactly the draws a CPU one makes,
    # so a seeded run gets the same order, crops and flips on every device
    dlCpu, dlMeta = _FastLoader('cpu'), _FastLoader('meta')
    for _ in range(2):
        list(dlCpu), list(dlMeta)
        assert torch.equal(dlCpu.oGen.get_state(), dlMeta.oGen.get_state())
    lFirst, lSecond = list(_FastLoader('cpu')), list(_FastLoader('cpu'))
    assert all(torch.equal(tA, tB) for (tA, _), (tB, _) in zip(lFirst, lSecond))
    assert not torch.equal(lFirst[0][0], list(dlCpu)[0][0]), 'a new epoch draws new batches'


# ------------------------------------------------------------------------------------------------------------------
# Mixed precision by capability, never by emulation
# ------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('tuCapability, expected, useScaler', [
    ((7, 5), torch.float16, True),   #<! T4 (Colab's free GPU): is_bf16_supported() is True there, emulated
    ((7, 0), torch.float16, True),   #<! V100
    ((8, 0), torch.bfloat16, False),  #<! A100
    ((8, 9), torch.bfloat16, False),  #<! L4
    ((9, 0), torch.bfloat16, False),  #<! H100
])
def test_cuda_mixed_precision_follows_the_compute_capability(monkeypatch: pytest.MonkeyPatch, tuCapability,
                                                             expected, useScaler) -> None:
    monkeypatch.setattr(torch.cuda, 'get_device_capability', lambda device=None: tuCapability)
    monkeypatch.setattr(torch.cuda, 'is_bf16_supported', lambda *args, **kwargs: True)  #<! Must not be consulted
    oChoice = ChooseMixedPrecision('cuda')
    assert (oChoice.autocastDtype, oChoice.useGradScaler) == (expected, useScaler)
    assert f'{tuCapability[0]}.{tuCapability[1]}' in oChoice.reason


@pytest.mark.parametrize('capability, dFeatures, expected', [
    ('AVX2', {'avx2': True}, None),                                      #<! The course's CPU: bf16 emulated
    ('AVX512', {'avx512f': True, 'avx512_bf16': False, 'amx_bf16': False}, None),
    ('AVX512', {'avx512f': True, 'avx512_bf16': True}, torch.bfloat16),  #<! Cooper Lake, Zen 4
    ('AVX512', {'avx512f': True, 'amx_bf16': True}, torch.bfloat16),     #<! Sapphire Rapids
    ('DEFAULT', {'bf16': True}, torch.bfloat16),                          #<! ARM with BF16
])
def test_cpu_mixed_precision_only_with_native_bf16(monkeypatch: pytest.MonkeyPatch, capability, dFeatures,
                                                   expected) -> None:
    monkeypatch.setattr(torch.backends.cpu, 'get_cpu_capability', lambda: capability)
    monkeypatch.setattr(torch.cpu, 'get_capabilities', lambda: dFeatures, raising=False)
    oChoice = ChooseMixedPrecision('cpu')
    assert oChoice.autocastDtype == expected and not oChoice.useGradScaler


def test_mps_keeps_float32() -> None:
    assert ChooseMixedPrecision('mps').autocastDtype is None


def test_train_model_makes_a_scaler_for_float16(monkeypatch: pytest.MonkeyPatch) -> None:
    lScalers = []
    import course_utils.training as training
    hTrainEpoch = training.TrainEpoch

    def RecordingTrainEpoch(*args, **kwargs):
        lScalers.append(kwargs.get('oScaler'))
        return hTrainEpoch(*args, **kwargs)

    monkeypatch.setattr(training, 'TrainEpoch', RecordingTrainEpoch)
    oModel = _Model()
    TrainModel(oModel, _FastLoader(), _FastLoader(), torch.optim.AdamW(oModel.parameters(), fused=True), 1,
               nn.CrossEntropyLoss(), AccuracyLogits, autocastDtype=torch.float16, checkpointPath=None,
               showProgress=False, verbose=False)
    assert lScalers[0] is not None and lScalers[0].is_enabled()


# ------------------------------------------------------------------------------------------------------------------
# The scale switch
# ------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('dEnv, device, expected', [
    ({}, 'cpu', 'cpu'),
    ({}, 'cuda', 'accelerator'),
    ({}, 'mps', 'accelerator'),
    ({'COURSE_QUICK': '1'}, 'cuda', 'quick'),
    ({'COURSE_SCALE': 'cpu'}, 'cuda', 'cpu'),             #<! A small GPU runs the CPU-sized lesson
    ({'COURSE_SCALE': 'Accelerator'}, 'cpu', 'accelerator'),
    ({'COURSE_SCALE': 'quick'}, 'cuda', 'quick'),
    ({'COURSE_QUICK': '1', 'COURSE_SCALE': 'quick'}, 'cpu', 'quick'),
])
def test_scale_is_chosen_by_device_and_environment(monkeypatch: pytest.MonkeyPatch, dEnv, device, expected) -> None:
    monkeypatch.delenv('COURSE_QUICK', raising=False)
    monkeypatch.delenv('COURSE_SCALE', raising=False)
    for key, value in dEnv.items():
        monkeypatch.setenv(key, value)
    assert GetScale(device) == expected
    assert IsQuickMode() == (expected == 'quick')
    assert expected in SCALES


@pytest.mark.parametrize('dEnv, match', [
    ({'COURSE_SCALE': 'gpu'}, 'not understood'),
    ({'COURSE_QUICK': '1', 'COURSE_SCALE': 'cpu'}, 'unset one of them'),
    ({'COURSE_QUICK': 'maybe'}, 'not understood'),
])
def test_scale_refuses_what_it_does_not_understand(monkeypatch: pytest.MonkeyPatch, dEnv, match) -> None:
    monkeypatch.delenv('COURSE_QUICK', raising=False)
    monkeypatch.delenv('COURSE_SCALE', raising=False)
    for key, value in dEnv.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValueError, match=match):
        GetScale('cpu')


def test_scale_default_device_is_the_best_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv('COURSE_QUICK', raising=False)
    monkeypatch.delenv('COURSE_SCALE', raising=False)
    monkeypatch.setattr(cfg, 'GetDevice', lambda: torch.device('cuda'))
    assert GetScale() == 'accelerator'
