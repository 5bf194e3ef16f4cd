"""Hand-written convolutions equal torch.nn.functional.conv2d, and reject bad input clearly."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from course_utils.convolution import Conv2DIm2Col, Conv2DLoops


def test_the_lesson_example() -> None:
    mX = torch.tensor([[12.0, 3, 19], [25, 10, 1], [9, 7, 17]])
    mK = torch.tensor([[1.0, 2], [3, 4]])
    mExpected = torch.tensor([[133.0, 75], [100, 101]])
    torch.testing.assert_close(Conv2DLoops(mX, mK), mExpected)
    torch.testing.assert_close(Conv2DIm2Col(mX, mK), mExpected)


@settings(max_examples=60, deadline=None)
@given(numBatch=st.integers(1, 2), numChnIn=st.integers(1, 3), numChnOut=st.integers(1, 4), inH=st.integers(1, 12),
       inW=st.integers(1, 12), kH=st.integers(1, 4), kW=st.integers(1, 4), stride=st.integers(1, 3),
       padding=st.integers(0, 2), dilation=st.integers(1, 2), useBias=st.booleans(), seed=st.integers(0, 1000))
def test_conv2d_implementations_equal_torch(numBatch: int, numChnIn: int, numChnOut: int, inH: int, inW: int, kH: int,
                                            kW: int, stride: int, padding: int, dilation: int, useBias: bool,
                                            seed: int) -> None:
    if dilation * (kH - 1) + 1 > inH + 2 * padding or dilation * (kW - 1) + 1 > inW + 2 * padding:
        return  #<! Invalid combinations are tested below
    oGen = torch.Generator().manual_seed(seed)
    tX = torch.randn(numBatch, numChnIn, inH, inW, generator=oGen)
    tW = torch.randn(numChnOut, numChnIn, kH, kW, generator=oGen)
    vB = torch.randn(numChnOut, generator=oGen) if useBias else None
    dArgs = dict(stride=stride, padding=padding, dilation=dilation)
    tRef = F.conv2d(tX, tW, vB, **dArgs)
    torch.testing.assert_close(Conv2DLoops(tX, tW, vB, **dArgs), tRef, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(Conv2DIm2Col(tX, tW, vB, **dArgs), tRef, atol=1e-5, rtol=1e-5)


def test_same_padding_and_single_image() -> None:
    tX, tW = torch.randn(3, 9, 7), torch.randn(2, 3, 3, 5)
    tRef = F.conv2d(tX[None], tW, padding='same')[0]
    torch.testing.assert_close(Conv2DLoops(tX, tW, padding='same'), tRef, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(Conv2DIm2Col(tX, tW, padding='same'), tRef, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('hConv', [Conv2DLoops, Conv2DIm2Col])
def test_bad_input_is_rejected_clearly(hConv) -> None:
    with pytest.raises(ValueError, match='C x H x W or N x C x H x W'):
        hConv(torch.randn(1, 1, 1, 5, 5), torch.randn(1, 1, 3, 3))
    with pytest.raises(ValueError, match='C_out x C_in x kH x kW'):
        hConv(torch.randn(3, 5, 5), torch.randn(3, 3, 3))
    with pytest.raises(ValueError, match='3 channels but the kernels expect 2'):
        hConv(torch.randn(3, 5, 5), torch.randn(4, 2, 3, 3))
    with pytest.raises(ValueError, match=r'kernel height \(4, dilated to 7\) is larger than the padded input'):
        hConv(torch.randn(1, 5, 5), torch.randn(1, 1, 4, 1), dilation=2)
    with pytest.raises(ValueError, match='one bias per filter'):
        hConv(torch.randn(1, 5, 5), torch.randn(2, 1, 3, 3), torch.randn(3))
    with pytest.raises(ValueError, match='stride'):
        hConv(torch.randn(1, 5, 5), torch.randn(2, 1, 3, 3), stride=0)
