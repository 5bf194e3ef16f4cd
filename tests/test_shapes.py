"""Shape arithmetic equals the real output shapes of torch.nn layers (property-based, with hypothesis)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from course_utils import (ConvOutputSize, ConvTransposeOutputSize, ForwardShapes, LayerOutputShape, ModelShapeTable,
                          ToPair)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _RealShapeOrError(oLayer: nn.Module, tuInShape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The real output shape (no batch dimension), or ``None`` when PyTorch rejects the combination."""
    try:
        with torch.no_grad():
            return tuple(oLayer(torch.zeros(1, *tuInShape)).shape[1:])
    except RuntimeError:
        return None


def _AssertMatches(oLayer: nn.Module, tuInShape: tuple[int, ...]) -> None:
    tuReal = _RealShapeOrError(oLayer, tuInShape)
    if tuReal is None or 0 in tuReal:
        with pytest.raises(ValueError, match=type(oLayer).__name__):
            LayerOutputShape(oLayer, tuInShape)
    else:
        assert LayerOutputShape(oLayer, tuInShape) == tuReal


@SETTINGS
@given(inSize=st.integers(1, 40), kernelSize=st.integers(1, 9), stride=st.integers(1, 4), padding=st.integers(0, 4),
       dilation=st.integers(1, 3), numChannels=st.integers(1, 3), widthDelta=st.integers(-3, 3))
def test_conv2d_shape(inSize: int, kernelSize: int, stride: int, padding: int, dilation: int, numChannels: int,
                      widthDelta: int) -> None:
    oLayer = nn.Conv2d(numChannels, 2, kernelSize, stride=stride, padding=padding, dilation=dilation)
    _AssertMatches(oLayer, (numChannels, inSize, max(1, inSize + widthDelta)))


@pytest.mark.filterwarnings('ignore:Using padding=.same. with even kernel')
@SETTINGS
@given(inSize=st.integers(1, 30), kernelSize=st.integers(1, 7), dilation=st.integers(1, 3),
       padding=st.sampled_from(['same', 'valid']))
def test_conv2d_string_padding_shape(inSize: int, kernelSize: int, dilation: int, padding: str) -> None:
    _AssertMatches(nn.Conv2d(1, 3, kernelSize, padding=padding, dilation=dilation), (1, inSize, inSize))


@SETTINGS
@given(inSize=st.integers(1, 40), kernelSize=st.integers(1, 6), stride=st.one_of(st.none(), st.integers(1, 4)),
       padding=st.integers(0, 3), dilation=st.integers(1, 3), ceilMode=st.booleans(), isMax=st.booleans())
def test_pooling_shape(inSize: int, kernelSize: int, stride: int | None, padding: int, dilation: int, ceilMode: bool,
                       isMax: bool) -> None:
    if isMax:
        oLayer = nn.MaxPool2d(kernelSize, stride, padding, dilation=dilation, ceil_mode=ceilMode)
    else:
        oLayer = nn.AvgPool2d(kernelSize, stride, padding, ceil_mode=ceilMode)
    _AssertMatches(oLayer, (2, inSize, inSize + 1))


@SETTINGS
@given(inSize=st.integers(1, 40), outSize=st.integers(1, 8), keepWidth=st.booleans(), isMax=st.booleans())
def test_adaptive_pooling_shape(inSize: int, outSize: int, keepWidth: bool, isMax: bool) -> None:
    tuOut = (outSize, None) if keepWidth else outSize
    oLayer = nn.AdaptiveMaxPool2d(tuOut) if isMax else nn.AdaptiveAvgPool2d(tuOut)
    _AssertMatches(oLayer, (3, inSize, inSize + 2))


@SETTINGS
@given(tuShape=st.lists(st.integers(1, 6), min_size=1, max_size=3).map(tuple), startDim=st.integers(1, 3),
       endDim=st.integers(-1, 3))
def test_flatten_shape(tuShape: tuple[int, ...], startDim: int, endDim: int) -> None:
    numDims = len(tuShape) + 1
    if startDim >= numDims or endDim >= numDims or (endDim % numDims) < startDim:
        return  #<! Combinations that nn.Flatten itself rejects
    _AssertMatches(nn.Flatten(startDim, endDim), tuShape)


def test_linear_shape_and_feature_mismatch() -> None:
    assert LayerOutputShape(nn.Linear(400, 120), (400,)) == (120,)
    with pytest.raises(ValueError, match='Linear.*expects 400 input features, got 256'):
        LayerOutputShape(nn.Linear(400, 120), (256,))


def test_conv_channel_mismatch_names_the_layer() -> None:
    with pytest.raises(ValueError, match='Conv2d.*expects 3 input channels, got 1'):
        LayerOutputShape(nn.Conv2d(3, 8, 3), (1, 28, 28))


def test_invalid_conv_names_the_layer_and_sizes() -> None:
    with pytest.raises(ValueError, match=r'Conv2d.*input of size \(4, 4\).*output of size \(0, 0\)'):
        LayerOutputShape(nn.Conv2d(1, 1, 5), (1, 4, 4))


def test_unknown_layer_is_reported() -> None:
    with pytest.raises(TypeError, match='LSTM'):
        LayerOutputShape(nn.LSTM(3, 3), (3, 8))


def test_formula_reduces_to_the_simple_one_without_dilation() -> None:
    for inSize, kernel, pad, stride in [(28, 5, 2, 1), (32, 3, 1, 2), (7, 3, 0, 2)]:
        assert ConvOutputSize(inSize, kernel, stride, pad) == (inSize - kernel + 2 * pad) // stride + 1


LENET5 = nn.Sequential(
    nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))

VGG_STACK = nn.Sequential(
    nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
    nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding='same'), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
    nn.Conv2d(64, 64, 3, stride=2, dilation=2, padding=2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(),
    nn.Linear(64, 10))


# LeNet-5 has a fixed input size (its Linear layer); the VGG stack takes any size (adaptive pooling)
@pytest.mark.parametrize(('oModel', 'inSize'), [(LENET5, 32), (VGG_STACK, 32), (VGG_STACK, 45)],
                         ids=['LeNet5-32', 'VGG-32', 'VGG-45'])
def test_shape_table_matches_the_forward_pass(oModel: nn.Sequential, inSize: int) -> None:
    dfTable = ModelShapeTable(oModel, (3, inSize, inSize))
    assert list(dfTable['Output Shape'][1:]) == ForwardShapes(oModel, (3, inSize, inSize))
    assert dfTable['Parameters'].sum() == sum(p.numel() for p in oModel.parameters())


def test_receptive_field_of_lenet5() -> None:
    dfTable = ModelShapeTable(LENET5, (3, 32, 32))
    # conv5: 5, pool2: 6, conv5 after a jump of 2: 6 + 4 * 2 = 14, pool2: 14 + 1 * 2 = 16
    assert dfTable['Receptive Field'].tolist()[:7] == [1, 5, 5, 6, 14, 14, 16]
    assert dfTable['Receptive Field'].isna().tolist()[7:] == [True] * 6


def test_forward_shapes_leaves_the_model_mode_alone() -> None:
    VGG_STACK.train()
    ForwardShapes(VGG_STACK, (3, 32, 32))
    assert VGG_STACK.training


@SETTINGS
@given(inSize=st.integers(1, 20), kernelSize=st.integers(1, 6), stride=st.integers(1, 4), padding=st.integers(0, 3),
       dilation=st.integers(1, 3), outPadSeed=st.integers(0, 10))
def test_conv_transpose2d_shape(inSize: int, kernelSize: int, stride: int, padding: int, dilation: int,
                                outPadSeed: int) -> None:
    outputPadding = outPadSeed % max(stride, dilation)  #<! PyTorch requires output_padding < max(stride, dilation)
    oLayer = nn.ConvTranspose2d(2, 3, kernelSize, stride=stride, padding=padding, output_padding=outputPadding,
                                dilation=dilation)
    _AssertMatches(oLayer, (2, inSize, inSize + 1))
    tuReal = _RealShapeOrError(oLayer, (2, inSize, inSize + 1))
    if tuReal is not None and 0 not in tuReal and outputPadding < stride:
        # The convolution with the same K, S, P, D maps the transposed output back to the input size
        assert ConvOutputSize(tuReal[1], kernelSize, stride, padding, dilation) == inSize


def test_conv_transpose_output_padding_is_checked() -> None:
    with pytest.raises(ValueError, match='outputPadding'):
        ConvTransposeOutputSize(8, 3, stride=2, padding=1, outputPadding=2)
    assert ConvTransposeOutputSize(8, 2, stride=2) == 16  #<! The U-Net's 2 x 2 up-convolution doubles the size


@pytest.mark.parametrize('badValue', [(1, 2, 3), 'x', (1.5, 2), -1])
def test_to_pair_rejects_what_is_not_a_pair_of_ints(badValue: object) -> None:
    with pytest.raises(ValueError, match='stride must be an int or a pair of ints >= 1'):
        ToPair(badValue, 'stride', 1)
    assert ToPair(3) == (3, 3) and ToPair((2, 5)) == (2, 5)
