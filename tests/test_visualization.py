"""Activation hooks, filter plots and the most activating images, on a tiny model."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils.visualization import (GetActivations, PlotFilters, RecordActivations, SelectLayers,
                                        TopActivatingImages)


def _TinyModel() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 2))


def _NumHooks(oModel: nn.Module) -> int:
    return sum(len(oLayer._forward_hooks) for oLayer in oModel.modules())


def test_records_the_outputs_of_the_chosen_layers_and_removes_its_hooks() -> None:
    oModel = _TinyModel().eval()
    tX = torch.randn(5, 3, 8, 8)
    with RecordActivations(oModel, layerTypes=(nn.Conv2d,), lLayerNames=['2']) as dActivations:
        assert _NumHooks(oModel) == 3
        with torch.no_grad():
            oModel(tX)
    assert _NumHooks(oModel) == 0
    assert set(dActivations) == {'0', '2', '4'}
    assert dActivations['0'].shape == (5, 4, 8, 8) and dActivations['4'].shape == (5, 6, 2, 2)
    with torch.no_grad():
        torch.testing.assert_close(dActivations['2'], oModel[:3](tX))


def test_hooks_are_removed_when_the_block_fails() -> None:
    oModel = _TinyModel()
    with pytest.raises(RuntimeError), RecordActivations(oModel, layerTypes=(nn.Conv2d, nn.ReLU)):
        oModel(torch.randn(2, 5, 8, 8))  #<! Wrong number of channels
    assert _NumHooks(oModel) == 0


def test_unknown_layer_names_are_reported() -> None:
    with pytest.raises(ValueError, match=r"no layer named \['conv9'\]"):
        SelectLayers(_TinyModel(), lLayerNames=['conv9'])
    with pytest.raises(ValueError, match='No layer'):
        SelectLayers(_TinyModel(), layerTypes=(nn.LSTM,))


def test_get_activations_runs_in_eval_mode_and_restores_the_mode() -> None:
    oModel = _TinyModel().train()
    tX = torch.randn(3, 3, 8, 8)
    dActivations = GetActivations(oModel, tX, lLayerNames=['1'])
    assert oModel.training
    oModel.eval()
    with torch.no_grad():
        torch.testing.assert_close(dActivations['1'], oModel[:2](tX))  #<! BatchNorm used its running statistics


def test_top_activating_images_finds_the_brightest() -> None:
    oModel = nn.Sequential(nn.Conv2d(1, 2, 1, bias=False))
    with torch.no_grad():
        oModel[0].weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))  #<! Channel 0: brightness, 1: darkness
    vBrightness = torch.tensor([0.3, 0.9, 0.1, 0.7, 0.5])
    tX = vBrightness.view(5, 1, 1, 1).expand(5, 1, 4, 4).clone()
    dlData = DataLoader(TensorDataset(tX, torch.zeros(5)), batch_size=2)
    vIdx, vTop = TopActivatingImages(oModel, dlData, '0', channelIdx=0, numTop=2)
    assert vIdx.tolist() == [1, 3] and vTop.tolist() == pytest.approx([0.9, 0.7])
    vIdx, _ = TopActivatingImages(oModel, dlData, '0', channelIdx=1, numTop=1)
    assert vIdx.tolist() == [2]
    with pytest.raises(ValueError, match='2 channels'):
        TopActivatingImages(oModel, dlData, '0', channelIdx=5)


def test_plot_filters_rgb_and_per_channel() -> None:
    oModel = _TinyModel()
    hF = PlotFilters(oModel[0].weight)
    lImages = [hA.images[0].get_array() for hA in hF.axes if hA.images]
    assert len(lImages) == 4 and lImages[0].shape == (3, 3, 3)
    assert all(np.isclose(mI.min(), 0) and np.isclose(mI.max(), 1) for mI in lImages)  #<! Standardized per filter
    hF = PlotFilters(oModel[4].weight[:2])
    assert sum(1 for hA in hF.axes if hA.images) == 2 * 4  #<! One gray image per (filter, input channel)
    with pytest.raises(ValueError, match='3 input channels'):
        PlotFilters(oModel[4].weight, asRgb=True)
    plt.close('all')


def test_recorded_activations_survive_in_place_layers() -> None:
    oModel = nn.Sequential(nn.Conv2d(1, 1, 1), nn.ReLU(inplace=True))
    nn.init.ones_(oModel[0].weight)
    nn.init.zeros_(oModel[0].bias)
    with RecordActivations(oModel, lLayerNames=['0'], toCpu=False) as dActivations, torch.no_grad():
        oModel(-torch.ones(1, 1, 2, 2) * 100)
    assert dActivations['0'].min() < 0  #<! The conv output before the in-place ReLU zeroed it
