"""course_utils.loops (learning-rate range test, TensorBoard scalars read back) and PlotClassProbabilities."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils import (AccuracyLogits, EndlessBatches, LearningRateRangeTest, PlotClassProbabilities, ReadTensorBoardScalars,
                          SyncDevice, TrainModel)


def _Problem(numSamples: int = 256, seed: int = 0) -> tuple[nn.Module, DataLoader]:
    """A linearly separable 3-class problem and a linear model: learnable in a few steps."""
    oGen = torch.Generator().manual_seed(seed)
    mX = torch.randn(numSamples, 4, generator=oGen)
    vY = mX[:, :3].argmax(dim=1)
    torch.manual_seed(seed)
    return nn.Linear(4, 3), DataLoader(TensorDataset(mX, vY), batch_size=32, shuffle=False)


# ------------------------------------------------------------------------------------------------
# LearningRateRangeTest
# ------------------------------------------------------------------------------------------------
def test_range_test_grows_the_rate_geometrically_and_restores_model_and_optimizer() -> None:
    oModel, dlTrain = _Problem()
    oOpt = torch.optim.SGD(oModel.parameters(), lr=0.05, momentum=0.9)
    dBefore = {k: v.clone() for k, v in oModel.state_dict().items()}
    oResult = LearningRateRangeTest(oModel, dlTrain, nn.CrossEntropyLoss(), oOpt, minLearnRate=1e-4,
                                    maxLearnRate=1e2, numSteps=20, divergeFactor=1e9)
    assert len(oResult.vLearnRate) == len(oResult.vLoss) == len(oResult.vSmoothLoss) == 20  #<! Loader cycled (8 batches)
    np.testing.assert_allclose(oResult.vLearnRate[[0, -1]], [1e-4, 1e2], rtol=1e-9)
    np.testing.assert_allclose(np.diff(np.log(oResult.vLearnRate)), np.log(1e6) / 19, rtol=1e-9)
    for key, tValue in oModel.state_dict().items():
        torch.testing.assert_close(tValue, dBefore[key], rtol=0, atol=0, msg=f'{key} changed')
    assert oOpt.param_groups[0]['lr'] == 0.05
    assert not oOpt.state  #<! No momentum buffers left behind


def test_range_test_first_smoothed_loss_is_the_first_loss_and_the_loss_falls_then_stops_on_divergence() -> None:
    oModel, dlTrain = _Problem()
    oOpt = torch.optim.SGD(oModel.parameters(), lr=0.1)
    oResult = LearningRateRangeTest(oModel, dlTrain, nn.CrossEntropyLoss(), oOpt, minLearnRate=1e-3,
                                    maxLearnRate=1e4, numSteps=200)
    assert oResult.vSmoothLoss[0] == pytest.approx(oResult.vLoss[0])  #<! Bias correction
    assert oResult.vSmoothLoss.min() < oResult.vSmoothLoss[0]
    assert len(oResult.vLoss) < 200, 'a learning rate of 1e4 must diverge and stop the test early'
    assert 1e-3 <= oResult.minLossLearnRate < 1e4


@pytest.mark.parametrize(('dArgs', 'message'), [
    (dict(minLearnRate=1.0, maxLearnRate=0.1), 'minLearnRate < maxLearnRate'),
    (dict(numSteps=1), 'numSteps'),
    (dict(smoothBeta=1.0), 'smoothBeta'),
])
def test_range_test_rejects_bad_arguments(dArgs: dict, message: str) -> None:
    oModel, dlTrain = _Problem()
    with pytest.raises(ValueError, match=message):
        LearningRateRangeTest(oModel, dlTrain, nn.CrossEntropyLoss(), torch.optim.SGD(oModel.parameters()), **dArgs)


def test_range_test_rejects_an_empty_loader() -> None:
    oModel, _ = _Problem()
    dlEmpty = DataLoader(TensorDataset(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)), batch_size=4)
    with pytest.raises(ValueError, match='no batches'):
        LearningRateRangeTest(oModel, dlEmpty, nn.CrossEntropyLoss(), torch.optim.SGD(oModel.parameters(), lr=0.1))


# ------------------------------------------------------------------------------------------------
# ReadTensorBoardScalars
# ------------------------------------------------------------------------------------------------
def test_scalars_logged_by_train_model_read_back_equal_its_history(tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    oModel, dlTrain = _Problem()
    oWriter = SummaryWriter(str(tmp_path / 'run'))
    oResult = TrainModel(oModel, dlTrain, dlTrain, torch.optim.SGD(oModel.parameters(), lr=0.1), 3,
                         nn.CrossEntropyLoss(), AccuracyLogits, oTBWriter=oWriter, checkpointPath=None,
                         showProgress=False, verbose=False)
    oWriter.close()
    dScalars = ReadTensorBoardScalars(tmp_path / 'run')
    assert set(dScalars) == {'Loss/Train', 'Loss/Validation', 'Score/Train', 'Score/Validation', 'Learning Rate'}
    for key, lHistory in [('Loss/Train', oResult.lTrainLoss), ('Loss/Validation', oResult.lValLoss),
                          ('Score/Train', oResult.lTrainScore), ('Score/Validation', oResult.lValScore),
                          ('Learning Rate', oResult.lLearnRate)]:
        np.testing.assert_array_equal(dScalars[key].vStep, [0, 1, 2])
        np.testing.assert_allclose(dScalars[key].vValue, lHistory, rtol=1e-6, err_msg=key)  #<! Stored as float32


def test_a_step_logged_twice_keeps_the_latest_value_and_subfolders_prefix_the_tag(tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    for valOffset in (0.0, 10.0):  #<! The same run written twice into one folder
        with SummaryWriter(str(tmp_path / 'run')) as oWriter:
            for stepIdx in range(3):
                oWriter.add_scalar('Acc', stepIdx + valOffset, stepIdx)
    with SummaryWriter(str(tmp_path / 'run' / 'extra')) as oWriter:
        oWriter.add_scalar('Acc', 7.0, 0)
    dScalars = ReadTensorBoardScalars(tmp_path / 'run')
    np.testing.assert_array_equal(dScalars['Acc'].vValue, [10.0, 11.0, 12.0])
    np.testing.assert_array_equal(dScalars['extra/Acc'].vValue, [7.0])


def test_reading_a_missing_or_empty_folder_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match='SummaryWriter'):
        ReadTensorBoardScalars(tmp_path / 'nothing')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='flushed'):
        ReadTensorBoardScalars(tmp_path / 'empty')


# ------------------------------------------------------------------------------------------------
# PlotClassProbabilities
# ------------------------------------------------------------------------------------------------
def test_probability_bars_mark_prediction_and_truth() -> None:
    tX = torch.rand(3, 1, 8, 8)
    mProb = torch.softmax(torch.tensor([[3.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]]), dim=1)
    hF = PlotClassProbabilities(tX, mProb, torch.tensor([0, 2, 2]), ['a', 'b', 'c'], numCols=2)
    lBarAxes = [hA for hA in hF.axes if hA.patches]
    assert len(lBarAxes) == 3
    vWidths = [oBar.get_width() for oBar in lBarAxes[1].patches]
    np.testing.assert_allclose(vWidths, mProb[1].numpy(), rtol=1e-6)
    assert lBarAxes[1].title.get_text().endswith('b') and lBarAxes[1].title.get_color() == 'red'  #<! Wrong: b, not c
    assert lBarAxes[0].title.get_color() == 'black'
    plt.close(hF)


@pytest.mark.parametrize(('mProb', 'lClasses', 'message'), [
    (torch.ones(2, 3), None, 'probabilities'),
    (torch.full((3, 3), 1 / 3), None, 'one row per image'),
    (torch.full((2, 3), 1 / 3), ['a', 'b'], '2 class names for 3'),
])
def test_probability_bars_reject_bad_input(mProb: torch.Tensor, lClasses: list | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PlotClassProbabilities(torch.rand(2, 1, 8, 8), mProb, lClasses=lClasses)


def test_endless_batches_start_a_new_pass_when_one_ends() -> None:
    dlData = DataLoader(TensorDataset(torch.arange(5.0)), batch_size=2, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    oBatches = EndlessBatches(dlData)
    lPasses = [torch.cat([next(oBatches)[0] for _ in range(3)]) for _ in range(3)]  #<! 3 batches make one pass
    for vPass in lPasses:
        assert sorted(vPass.tolist()) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert len({tuple(vPass.tolist()) for vPass in lPasses}) > 1, 'Expected a new shuffle in each pass'


def test_endless_batches_refuse_an_empty_loader() -> None:
    with pytest.raises(ValueError, match='no batches'):
        next(EndlessBatches(DataLoader(TensorDataset(torch.arange(3.0)), batch_size=4, drop_last=True)))


def test_sync_device_waits_on_the_device_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    lCalls = []
    monkeypatch.setattr(torch.cuda, 'synchronize', lambda device=None: lCalls.append(('cuda', device)))
    monkeypatch.setattr(torch.mps, 'synchronize', lambda: lCalls.append(('mps', None)))
    SyncDevice('cpu')
    assert lCalls == []
    SyncDevice(torch.device('cuda', 1))
    SyncDevice('mps')
    assert lCalls == [('cuda', torch.device('cuda', 1)), ('mps', None)]
