"""The four-cube figure of the normalization layers: the right cells are shaded, bad input is refused."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

from course_utils import PlotNormalizationAxes
from course_utils.plotting import NORM_LAYER_NAMES, _NormSharedMask


@pytest.fixture(autouse=True)
def closeFigures():
    yield
    plt.close('all')


def test_one_titled_3d_axes_per_layer() -> None:
    hF = PlotNormalizationAxes(numGroups=3)
    assert [hA.name for hA in hF.axes] == ['3d'] * len(NORM_LAYER_NAMES)
    assert [hA.get_title() for hA in hF.axes] == ['BatchNorm', 'LayerNorm', 'InstanceNorm', 'GroupNorm (G = 3)']


@pytest.mark.parametrize(('normType', 'oLayer'), [
    ('BatchNorm', nn.BatchNorm2d(6)), ('LayerNorm', nn.GroupNorm(1, 6)),
    ('InstanceNorm', nn.InstanceNorm2d(6)), ('GroupNorm', nn.GroupNorm(2, 6)),
])
def test_the_shaded_cells_are_those_that_share_statistics_in_pytorch(normType: str, oLayer: nn.Module) -> None:
    # Perturb the value at (n=0, c=0, pixel 0): exactly the outputs normalized with it change
    tuShape = (5, 6, 4)
    tX = torch.randn(tuShape[0], tuShape[1], 2, 2, generator=torch.Generator().manual_seed(0))
    tXMoved = tX.clone()
    tXMoved[0, 0, 0, 0] += 3.0
    with torch.no_grad():
        tChanged = (oLayer.train()(tXMoved) - oLayer(tX)).abs().flatten(2) > 1e-6
    mExpected = _NormSharedMask(normType, tuShape, numGroups=2)
    assert (tChanged.numpy() == mExpected).all(), (
        f'{normType}: expected {mExpected.sum()} values to share the statistics of (0, 0, 0), '
        f'PyTorch changes {int(tChanged.sum())}')


def test_bad_input_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match='Unknown normalization .BatchNormm.'):
        PlotNormalizationAxes(['BatchNormm'])
    with pytest.raises(ValueError, match='numGroups must divide'):
        PlotNormalizationAxes(numGroups=4, tuShape=(4, 6, 4))
