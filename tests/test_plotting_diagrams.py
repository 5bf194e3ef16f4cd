"""The convolution diagrams draw what they claim: channels and maps, the flip, window coverage, group connections."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.signal import convolve2d
from torch import nn

from course_utils import PlotFiltersToMaps, PlotGroupedConv, PlotKernelFlip, PlotSlidingWindow


@pytest.fixture(autouse=True)
def closeFigures():
    yield
    plt.close('all')


def _CountGid(hA: plt.Axes, gid: str) -> int:
    return sum(oArtist.get_gid() == gid for oArtist in [*hA.patches, *hA.lines])


@pytest.mark.parametrize(('numChnIn', 'numFilters', 'kernelSize'), [(1, 1, 3), (3, 2, 3), (4, 5, 5)])
def test_filters_to_maps_draws_a_slice_per_channel_and_a_map_per_filter(numChnIn: int, numFilters: int,
                                                                        kernelSize: int) -> None:
    hA = PlotFiltersToMaps(numChnIn, numFilters, kernelSize)
    assert _CountGid(hA, 'input-channel') == numChnIn
    assert _CountGid(hA, 'filter-slice') == numFilters * numChnIn
    assert _CountGid(hA, 'output-map') == numFilters
    assert f'Conv2d({numChnIn}, {numFilters}' in hA.get_title()


def test_filters_to_maps_draws_into_given_axes_and_rejects_bad_sizes() -> None:
    _, hA = plt.subplots()
    assert PlotFiltersToMaps(hA=hA) is hA
    with pytest.raises(ValueError, match='numFilters'):
        PlotFiltersToMaps(3, 0)
    with pytest.raises(ValueError, match='readable'):
        PlotFiltersToMaps(64, 2)


def test_kernel_flip_panels_are_the_kernel_flipped() -> None:
    mK = np.arange(6.0).reshape(2, 3)
    hF = PlotKernelFlip(mK)
    vHa = [hA for hA in hF.axes if hA.images]
    assert len(vHa) == 3
    lTexts = [[oText.get_text().split('\n')[1] for oText in hA.texts] for hA in vHa]  #<! Values, in cell order
    for lValues, mExpected in zip(lTexts, [mK, mK[::-1], mK[::-1, ::-1]]):
        assert [float(s) for s in lValues] == list(mExpected.ravel())
    # The rotated panel is what makes PyTorch's cross-correlation a true convolution
    mI = np.random.default_rng(0).random((5, 6))
    mFlipped = np.array([float(s) for s in lTexts[2]]).reshape(mK.shape)
    tCorr = F.conv2d(torch.tensor(mI)[None, None], torch.tensor(mFlipped)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(tCorr, convolve2d(mI, mK, mode='valid'))
    with pytest.raises(ValueError, match='2D'):
        PlotKernelFlip(np.zeros((2, 3, 3)))


@pytest.mark.parametrize(('inSize', 'kernelSize', 'stride', 'padding', 'dilation'),
                         [(8, 3, 2, 0, 1), (7, 3, 2, 0, 1), (8, 3, 2, 1, 1), (9, 3, 1, 0, 2), (10, 3, 2, 0, 2),
                          (11, 4, 3, 1, 1)])
def test_sliding_window_coverage_is_what_a_convolution_reads(inSize: int, kernelSize: int, stride: int,
                                                             padding: int, dilation: int) -> None:
    hF, mCovered = PlotSlidingWindow(inSize, kernelSize, stride, padding, dilation)
    # A pixel is read iff the gradient of the output (all-ones kernel) reaches it
    tX = torch.zeros(1, 1, inSize, inSize, requires_grad=True)
    tW = torch.ones(1, 1, kernelSize, kernelSize)
    F.conv2d(tX, tW, stride=stride, padding=padding, dilation=dilation).sum().backward()
    mInner = mCovered[padding:padding + inSize, padding:padding + inSize]
    np.testing.assert_array_equal(mInner, tX.grad[0, 0].numpy() > 0)
    outSize = nn.Conv2d(1, 1, kernelSize, stride, padding, dilation)(tX).shape[-1]
    assert hF.axes[-1].images[0].get_array().shape == (outSize, outSize)
    assert f'= {outSize}' in hF.get_suptitle()


def test_sliding_window_marks_the_pixels_the_floor_drops() -> None:
    _, mCovered = PlotSlidingWindow(8, 3, 2)  #<! Windows start at 0, 2, 4: the last column is never read
    assert not mCovered[:, 7].any() and not mCovered[7, :].any()
    assert mCovered[:7, :7].all()
    with pytest.raises(ValueError, match='padded input'):
        PlotSlidingWindow(4, 3, dilation=3)
    with pytest.raises(ValueError, match='padding'):
        PlotSlidingWindow(8, 3, padding=-1)


@pytest.mark.parametrize(('numChnIn', 'numChnOut', 'groups'), [(8, 8, 1), (8, 16, 2), (6, 6, 6), (4, 8, 4)])
def test_grouped_conv_draws_one_line_per_kernel(numChnIn: int, numChnOut: int, groups: int) -> None:
    hA = PlotGroupedConv(numChnIn, numChnOut, groups)
    oConv = nn.Conv2d(numChnIn, numChnOut, 3, groups=groups)
    assert _CountGid(hA, 'connection') == oConv.weight.shape[0] * oConv.weight.shape[1]  #<! One k x k kernel each


def test_grouped_conv_rejects_groups_that_do_not_divide() -> None:
    with pytest.raises(ValueError, match='must divide'):
        PlotGroupedConv(6, 8, 4)
