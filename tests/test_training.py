"""TrainModel / TrainEpoch: modes, averaging, best-model restore, schedulers, interrupts, checkpoints."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.classification import MulticlassAccuracy

from course_utils import AccuracyLogits, LoadCheckpoint, NNMode, Predict, TrainEpoch, TrainModel, TrainResult

NUM_CLASSES = 3


def _Loader(numSamples: int = 10, batchSize: int = 4, seed: int = 0, shuffle: bool = False) -> DataLoader:
    oGen = torch.Generator().manual_seed(seed)
    mX = torch.randn(numSamples, 5, generator=oGen)
    vY = (mX @ torch.randn(5, NUM_CLASSES, generator=oGen)).argmax(1)  #<! A learnable rule
    return DataLoader(TensorDataset(mX, vY), batch_size=batchSize, shuffle=shuffle, generator=oGen)


def _Model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.Dropout(0.2), nn.ReLU(), nn.Linear(8, NUM_CLASSES))


class ModeRecorder(nn.Module):
    """Wraps a model and records the train flag and the grad mode of every forward call."""

    def __init__(self, oModel: nn.Module) -> None:
        super().__init__()
        self.oModel = oModel
        self.lCalls: list[tuple[bool, bool]] = []

    def forward(self, mX: torch.Tensor) -> torch.Tensor:
        self.lCalls.append((self.training, torch.is_grad_enabled()))
        return self.oModel(mX)


def _Fit(oModel: nn.Module, numEpoch: int = 3, oSch=None, hS=AccuracyLogits, tmpPath: Path | None = None,
         dlTrain: DataLoader | None = None, dlVal: DataLoader | None = None, **kwargs):
    oOpt = kwargs.pop('oOpt', None) or torch.optim.SGD(oModel.parameters(), lr=0.1)
    return TrainModel(oModel, dlTrain or _Loader(12, 4), dlVal or _Loader(9, 4, seed=1), oOpt, numEpoch,
                      nn.CrossEntropyLoss(), hS, oSch,
                      checkpointPath=None if tmpPath is None else tmpPath / 'Best.pt', showProgress=False, **kwargs)


def test_train_and_eval_modes_hold_for_every_batch_of_every_epoch(tmp_path: Path) -> None:
    oRec = ModeRecorder(_Model())
    _Fit(oRec, numEpoch=3, tmpPath=tmp_path)
    # 3 train batches (train mode, gradients) then 3 validation batches (eval mode, no gradients), per epoch
    assert oRec.lCalls == ([(True, True)] * 3 + [(False, False)] * 3) * 3


def test_epoch_averages_weigh_a_partial_last_batch_by_its_size() -> None:
    oModel = _Model().eval()
    dlData = _Loader(10, 4)  #<! Batches of 4, 4, 2
    mX, vY = dlData.dataset.tensors
    with torch.no_grad():
        mZ = oModel(mX)
    valLoss, valScore = TrainEpoch(oModel, dlData, nn.CrossEntropyLoss(), AccuracyLogits,
                                   opMode=NNMode.INFERENCE, showProgress=False)
    assert valLoss == pytest.approx(nn.functional.cross_entropy(mZ, vY).item(), rel=1e-6)
    assert valScore == pytest.approx((mZ.argmax(1) == vY).double().mean().item(), rel=1e-12)


def test_items_after_the_target_go_to_the_loss_only() -> None:
    oModel = _Model().eval()
    oGen = torch.Generator().manual_seed(2)
    mX, vY = torch.randn(10, 5, generator=oGen), torch.randint(0, NUM_CLASSES, (10,), generator=oGen)
    vW = torch.rand(10, generator=oGen)
    lScoreArgs: list[int] = []

    def hWeightedCe(mZ: torch.Tensor, vY: torch.Tensor, vW: torch.Tensor) -> torch.Tensor:
        return (vW * nn.functional.cross_entropy(mZ, vY, reduction='none')).mean()

    def hScore(mZ: torch.Tensor, vY: torch.Tensor) -> torch.Tensor:  #<! A third argument would raise a TypeError
        lScoreArgs.append(2)
        return AccuracyLogits(mZ, vY)

    dlData = DataLoader(TensorDataset(mX, vY, vW), batch_size=5)
    valLoss, _ = TrainEpoch(oModel, dlData, hWeightedCe, hScore, opMode=NNMode.INFERENCE, showProgress=False)
    with torch.no_grad():
        valExpected = float(hWeightedCe(oModel(mX), vY, vW))  #<! Equal batches: the mean of the batch means
    assert valLoss == pytest.approx(valExpected, rel=1e-6) and lScoreArgs == [2, 2]
    oOpt = torch.optim.SGD(oModel.parameters(), lr=0.1)
    TrainEpoch(oModel, dlData, hWeightedCe, hScore, oOpt, showProgress=False)  #<! Training gets them too


def test_torchmetrics_score_equals_the_plain_function() -> None:
    oModel = _Model()
    dlData = _Loader(37, 8)
    tuFunc = TrainEpoch(oModel, dlData, nn.CrossEntropyLoss(), AccuracyLogits, opMode=NNMode.INFERENCE,
                        showProgress=False)
    hS = MulticlassAccuracy(num_classes=NUM_CLASSES, average='micro')
    tuMetric = TrainEpoch(oModel, dlData, nn.CrossEntropyLoss(), hS, opMode=NNMode.INFERENCE, showProgress=False)
    assert tuMetric == pytest.approx(tuFunc, rel=1e-6)


def test_training_epoch_needs_an_optimizer() -> None:
    with pytest.raises(ValueError, match='optimizer'):
        TrainEpoch(_Model(), _Loader(), nn.CrossEntropyLoss(), AccuracyLogits, opMode=NNMode.TRAIN)


def test_training_reduces_the_loss(tmp_path: Path) -> None:
    dlTrain = _Loader(64, 16, shuffle=True)
    _, lTrainLoss, *_ = _Fit(_Model(), numEpoch=15, tmpPath=tmp_path, dlTrain=dlTrain, dlVal=_Loader(64, 16))
    assert lTrainLoss[-1] < 0.7 * lTrainLoss[0]


class ScriptedValScore:
    """A score whose validation value per epoch is scripted; it snapshots the model's weights at each one."""

    def __init__(self, oModel: nn.Module, lValScores: list[float], numValBatches: int) -> None:
        self.oModel, self.lValScores, self.numValBatches = oModel, lValScores, numValBatches
        self.numValCalls = 0
        self.lWeights: list[dict[str, torch.Tensor]] = []

    def __call__(self, mZ: torch.Tensor, vY: torch.Tensor) -> float:
        if self.oModel.training:
            return 0.0
        epochIdx = self.numValCalls // self.numValBatches
        if self.numValCalls % self.numValBatches == 0:
            self.lWeights.append({k: v.clone() for k, v in self.oModel.state_dict().items()})
        self.numValCalls += 1
        return self.lValScores[epochIdx]


def _AssertSameWeights(dA: dict[str, torch.Tensor], dB: dict[str, torch.Tensor]) -> None:
    assert dA.keys() == dB.keys()
    for key in dA:
        torch.testing.assert_close(dA[key], dB[key], rtol=0, atol=0)


def test_best_model_is_restored_and_saved(tmp_path: Path) -> None:
    oModel = _Model()
    hS = ScriptedValScore(oModel, [0.2, 0.9, 0.5, 0.4], numValBatches=3)
    oModel, *_, lValScore, _ = _Fit(oModel, numEpoch=4, hS=hS, tmpPath=tmp_path)
    assert lValScore == pytest.approx([0.2, 0.9, 0.5, 0.4])
    _AssertSameWeights(oModel.state_dict(), hS.lWeights[1])  #<! Epoch 2's weights, not the last ones

    oFresh = _Model()
    dCheckpoint = LoadCheckpoint(oFresh, tmp_path / 'Best.pt')
    assert dCheckpoint['Epoch'] == 2 and dCheckpoint['Score'] == pytest.approx(0.9)
    _AssertSameWeights(oFresh.state_dict(), hS.lWeights[1])
    assert not list(tmp_path.glob('*.tmp'))  #<! Atomic writes leave no temporary files


def test_last_model_is_kept_when_asked(tmp_path: Path) -> None:
    oModel = _Model()
    hS = ScriptedValScore(oModel, [0.9, 0.1], numValBatches=3)
    oModel, *_ = _Fit(oModel, numEpoch=2, hS=hS, tmpPath=tmp_path, restoreBest=False)
    _AssertSameWeights(oModel.state_dict(), hS.lWeights[1])


def test_an_earlier_checkpoint_is_kept(tmp_path: Path) -> None:
    _Fit(_Model(), numEpoch=1, tmpPath=tmp_path)
    firstBytes = (tmp_path / 'Best.pt').read_bytes()
    _Fit(_Model(), numEpoch=1, tmpPath=tmp_path)
    assert (tmp_path / 'Best.prev.pt').read_bytes() == firstBytes


def test_result_is_named_and_unpacks_as_the_fixelcourses_tuple(tmp_path: Path) -> None:
    oModel = _Model()
    hS = ScriptedValScore(oModel, [0.3, 0.8, 0.6], numValBatches=3)
    oResult = _Fit(oModel, numEpoch=3, hS=hS, tmpPath=tmp_path)
    assert isinstance(oResult, TrainResult) and len(oResult) == 6
    oModelOut, lTrainLoss, lTrainScore, lValLoss, lValScore, lLearnRate = oResult  #<! The FixelCourses form
    assert oModelOut is oResult.oModel is oModel
    assert (lTrainLoss, lTrainScore, lValLoss, lValScore, lLearnRate) == (
        oResult.lTrainLoss, oResult.lTrainScore, oResult.lValLoss, oResult.lValScore, oResult.lLearnRate)
    assert len(oResult.lValLoss) == 3 and oResult.lLearnRate == pytest.approx([0.1] * 3)
    assert oResult.bestEpoch == 2 and oResult.bestValScore == pytest.approx(0.8)


def test_checkpoint_stores_the_run_options(tmp_path: Path) -> None:
    torch.manual_seed(123)
    oModel = _Model()
    oOpt = torch.optim.AdamW(oModel.parameters(), lr=3e-3, weight_decay=0.05)
    oSch = torch.optim.lr_scheduler.StepLR(oOpt, step_size=1)
    _Fit(oModel, numEpoch=2, oSch=oSch, tmpPath=tmp_path, oOpt=oOpt)
    dOptions = LoadCheckpoint(_Model(), tmp_path / 'Best.pt')['Options']
    assert dOptions['Epochs'] == 2 and dOptions['Optimizer'] == 'AdamW' and dOptions['Scheduler'] == 'StepLR'
    assert dOptions['LearnRate'] == pytest.approx(3e-3) and dOptions['WeightDecay'] == pytest.approx(0.05)
    assert dOptions['BatchSize'] == 4 and dOptions['Loss'] == 'CrossEntropyLoss' and dOptions['Autocast'] is None
    assert dOptions['Model'] == 'Sequential' and dOptions['Seed'] == torch.initial_seed()


def test_checkpoint_goes_to_the_checkpoints_folder_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  #<! A notebook's working folder
    oModel = _Model()
    TrainModel(oModel, _Loader(8, 4), _Loader(4, 4, seed=1), torch.optim.SGD(oModel.parameters(), lr=0.1), 1,
               nn.CrossEntropyLoss(), AccuracyLogits, showProgress=False, verbose=False)
    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob('*.pt')] == ['checkpoints/BestModel.pt']


def test_missing_checkpoint_gives_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match='TrainModel'):
        LoadCheckpoint(_Model(), tmp_path / 'Nothing.pt')


def test_epoch_scheduler_steps_once_per_epoch() -> None:
    oModel = _Model()
    oOpt = torch.optim.SGD(oModel.parameters(), lr=1.0)
    oSch = torch.optim.lr_scheduler.StepLR(oOpt, step_size=1, gamma=0.5)
    *_, lLearnRate = _Fit(oModel, numEpoch=4, oSch=oSch, oOpt=oOpt)
    assert lLearnRate == pytest.approx([1.0, 0.5, 0.25, 0.125])
    assert oOpt.param_groups[0]['lr'] == pytest.approx(0.0625)


def test_one_cycle_scheduler_steps_once_per_batch() -> None:
    oModel = _Model()
    oOpt = torch.optim.SGD(oModel.parameters(), lr=0.1)
    numEpoch, numBatches = 3, 3
    # OneCycleLR raises if stepped more than total_steps times: stepping per epoch would stop early instead
    oSch = torch.optim.lr_scheduler.OneCycleLR(oOpt, max_lr=0.5, total_steps=numEpoch * numBatches)
    *_, lLearnRate = _Fit(oModel, numEpoch=numEpoch, oSch=oSch, oOpt=oOpt)
    assert len(lLearnRate) == numEpoch * numBatches
    assert max(lLearnRate) == pytest.approx(0.5, rel=0.05)
    assert oSch.last_epoch == numEpoch * numBatches


def test_plateau_scheduler_steps_on_the_validation_loss() -> None:
    oModel = _Model()
    oOpt = torch.optim.SGD(oModel.parameters(), lr=0.1)
    # Any change below 10 counts as no improvement: every epoch after the first reduces the rate
    oSch = torch.optim.lr_scheduler.ReduceLROnPlateau(oOpt, patience=0, factor=0.5, threshold=10.0,
                                                      threshold_mode='abs')
    *_, lLearnRate = _Fit(oModel, numEpoch=3, oSch=oSch, oOpt=oOpt)
    assert lLearnRate == pytest.approx([0.1, 0.1, 0.05])
    assert oOpt.param_groups[0]['lr'] == pytest.approx(0.025)


class InterruptingLoss(nn.Module):
    """Cross entropy that raises KeyboardInterrupt (as Ctrl-C / Jupyter's stop button) at call `interruptAt`."""

    def __init__(self, interruptAt: int) -> None:
        super().__init__()
        self.numCalls, self.interruptAt = 0, interruptAt

    def forward(self, mZ: torch.Tensor, vY: torch.Tensor) -> torch.Tensor:
        self.numCalls += 1
        if self.numCalls == self.interruptAt:
            raise KeyboardInterrupt
        return nn.functional.cross_entropy(mZ, vY)


def test_keyboard_interrupt_returns_the_history_so_far(tmp_path: Path) -> None:
    oModel = _Model()
    hS = ScriptedValScore(oModel, [0.3, 0.6, 0.1], numValBatches=3)
    # 6 loss calls per epoch (3 train + 3 validation): call 14 is inside epoch 3's training
    oModel, lTrainLoss, lTrainScore, lValLoss, lValScore, lLearnRate = TrainModel(
        oModel, _Loader(12, 4), _Loader(9, 4, seed=1), torch.optim.SGD(oModel.parameters(), lr=0.1), 5,
        InterruptingLoss(14), hS, checkpointPath=tmp_path / 'Best.pt', showProgress=False)
    assert len(lTrainLoss) == len(lTrainScore) == len(lValLoss) == len(lLearnRate) == 2
    assert lValScore == pytest.approx([0.3, 0.6])
    _AssertSameWeights(oModel.state_dict(), hS.lWeights[1])  #<! Best of the completed epochs
    assert (tmp_path / 'Best.pt').is_file()


def test_rejects_zero_epochs() -> None:
    with pytest.raises(ValueError, match='numEpoch'):
        _Fit(_Model(), numEpoch=0)


def test_predict_returns_eval_mode_scores_for_every_sample() -> None:
    oRec = ModeRecorder(_Model())
    dlData = _Loader(10, 4)
    mScore, vY = Predict(oRec, dlData)
    assert mScore.shape == (10, NUM_CLASSES) and torch.equal(vY, dlData.dataset.tensors[1])
    assert set(oRec.lCalls) == {(False, False)}
    with torch.no_grad():
        torch.testing.assert_close(mScore, oRec.eval()(dlData.dataset.tensors[0]))


def test_quiet_training_prints_nothing(capsys: pytest.CaptureFixture) -> None:
    _Fit(_Model(), numEpoch=2, verbose=False)
    assert capsys.readouterr().out == ''


def _ConvModel() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(16, NUM_CLASSES))


def _ImageLoader(seed: int) -> DataLoader:
    oGen = torch.Generator().manual_seed(seed)
    tX = torch.randn(24, 3, 8, 8, generator=oGen)
    vY = (tX.mean(dim=(2, 3)) @ torch.randn(3, NUM_CLASSES, generator=oGen)).argmax(1)
    return DataLoader(TensorDataset(tX, vY), batch_size=8)


def _FitConv(**kwargs) -> tuple:
    oModel = _ConvModel()
    oOpt = torch.optim.AdamW(oModel.parameters(), lr=1e-2)
    return TrainModel(oModel, _ImageLoader(0), _ImageLoader(1), oOpt, 3, nn.CrossEntropyLoss(), AccuracyLogits,
                      checkpointPath=None, showProgress=False, verbose=False, **kwargs)


def test_channels_last_gives_the_same_results_in_float32() -> None:
    oRef, *lRef = _FitConv()
    oCl, *lCl = _FitConv(channelsLast=True)
    assert oCl[0].weight.is_contiguous(memory_format=torch.channels_last)
    for lA, lB in zip(lRef[:4], lCl[:4]):
        assert lB == pytest.approx(lA, rel=1e-4, abs=1e-5)


def test_bf16_autocast_trains_and_keeps_float32_weights() -> None:
    oRef, lTrainLossRef, *_ = _FitConv()
    oModel, lTrainLoss, *_ = _FitConv(autocastDtype=torch.bfloat16)
    assert all(p.dtype == torch.float32 for p in oModel.parameters())
    assert lTrainLoss == pytest.approx(lTrainLossRef, rel=0.05)  #<! bf16 has ~3 significant digits


def test_float16_autocast_uses_a_grad_scaler(monkeypatch: pytest.MonkeyPatch) -> None:
    lScalers = []
    RealScaler = torch.amp.GradScaler

    def RecordScaler(*args, **kwargs):
        lScalers.append(RealScaler(*args, **kwargs))
        return lScalers[-1]

    monkeypatch.setattr(torch.amp, 'GradScaler', RecordScaler)
    _, lTrainLoss, *_ = _FitConv(autocastDtype=torch.float16)
    # One enabled scaler for the whole run (its scale carries across epochs); disabled ones only pass through
    assert sum(oScaler.is_enabled() for oScaler in lScalers) == 1
    assert all(math.isfinite(valLoss) for valLoss in lTrainLoss)


def test_unsupported_autocast_dtype_is_rejected() -> None:
    with pytest.raises(ValueError, match='autocastDtype'):
        _FitConv(autocastDtype=torch.float64)


class CountingLoader:
    """A loader that counts how often an iterator over it is started."""

    def __init__(self, dlData: DataLoader) -> None:
        self.dlData, self.numIters = dlData, 0

    def __len__(self) -> int:
        return len(self.dlData)

    def __iter__(self):
        self.numIters += 1
        return iter(self.dlData)


@pytest.mark.parametrize('showProgress', [True, False])
def test_each_epoch_starts_one_iterator_per_loader(showProgress: bool) -> None:
    # A second iterator would start the workers twice and draw from a seeded loader's generator
    dlTrain, dlVal = CountingLoader(_Loader(8, 4)), CountingLoader(_Loader(4, 4, seed=1))
    oModel = _Model()
    TrainModel(oModel, dlTrain, dlVal, torch.optim.SGD(oModel.parameters(), lr=0.1), 3, nn.CrossEntropyLoss(),
               AccuracyLogits, checkpointPath=None, showProgress=showProgress, verbose=False)
    assert (dlTrain.numIters, dlVal.numIters) == (3, 3)


def test_a_seeded_loader_gives_the_batches_a_hand_loop_gets() -> None:
    def SeededLoader() -> DataLoader:
        return DataLoader(TensorDataset(torch.arange(12.0)[:, None].repeat(1, 5), torch.arange(12) % NUM_CLASSES),
                          batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(7))

    lSeen: list[list[int]] = []

    class RecordingModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.oLinear = nn.Linear(5, NUM_CLASSES)

        def forward(self, mX: torch.Tensor) -> torch.Tensor:
            if self.training:
                lSeen.append(mX[:, 0].long().tolist())
            return self.oLinear(mX)

    oModel = RecordingModel()
    TrainModel(oModel, SeededLoader(), _Loader(4, 4), torch.optim.SGD(oModel.parameters(), lr=0.1), 2,
               nn.CrossEntropyLoss(), AccuracyLogits, checkpointPath=None, showProgress=True, verbose=False)
    dlHand = SeededLoader()
    lExpected = [mX[:, 0].long().tolist() for _ in range(2) for mX, _ in dlHand]
    assert lSeen == lExpected
