"""The course's reference CNNs: output shapes, and parameter / FLOP counts against the published figures."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils import (BasicBlock, Bottleneck, BuildMobileNetV1, BuildResNet9, BuildVggCnn, CifarResNet,
                          ConvBnRelu, CountFlops, CountParameters, DepthwiseSeparableConv, InceptionBlock, LeNet5,
                          LeNet5Modern, Residual, ResNet18Cifar, ScaleLogits)


def _OutShape(oModel: nn.Module, tuInShape: tuple[int, ...]) -> tuple[int, ...]:
    oModel.eval()
    with torch.no_grad():
        return tuple(oModel(torch.randn(tuInShape)).shape)


# ------------------------------------------------------------------------------------------------
# The existing builders
# ------------------------------------------------------------------------------------------------
def test_lenet5_has_the_published_61706_parameters() -> None:
    assert CountParameters(LeNet5()) == 61_706  #<! With the linear output layer instead of the RBF units
    assert _OutShape(LeNet5(), (2, 1, 32, 32)) == (2, 10)


def test_lenet5_input_padding_accepts_28x28_and_color() -> None:
    assert _OutShape(LeNet5(inputPadding=2), (3, 1, 28, 28)) == (3, 10)
    assert _OutShape(LeNet5(numChnIn=3), (2, 3, 32, 32)) == (2, 10)
    assert CountParameters(LeNet5(numChnIn=3)) - CountParameters(LeNet5()) == 2 * 6 * 5 * 5  #<! 2 more input channels
    assert _OutShape(LeNet5Modern(inputPadding=2), (2, 1, 28, 28)) == (2, 10)


def test_vgg_and_resnet9_output_shapes() -> None:
    assert _OutShape(BuildVggCnn(), (2, 3, 32, 32)) == (2, 10)
    assert _OutShape(BuildVggCnn(numClasses=4, lWidths=(8, 16)), (2, 3, 32, 32)) == (2, 4)
    assert _OutShape(BuildResNet9(), (2, 3, 32, 32)) == (2, 10)
    with pytest.raises(ValueError, match='lWidths'):
        BuildResNet9((8, 16, 32))
    with pytest.raises(ValueError, match='lWidths'):
        BuildVggCnn(lWidths=(8,))


def test_building_blocks() -> None:
    assert _OutShape(ConvBnRelu(3, 8, 5, stride=2), (1, 3, 32, 32)) == (1, 8, 16, 16)
    oRes = Residual(nn.Conv2d(4, 4, 3, padding=1))
    tX = torch.randn(2, 4, 8, 8)
    torch.testing.assert_close(oRes(tX), tX + oRes.oBlock(tX))
    torch.testing.assert_close(ScaleLogits(0.5)(tX), 0.5 * tX)


# ------------------------------------------------------------------------------------------------
# ResNet
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(('stride', 'numChnOut', 'tuOut'), [(1, 16, (2, 16, 8, 8)), (2, 32, (2, 32, 4, 4))])
def test_basic_block_shapes_and_projection(stride: int, numChnOut: int, tuOut: tuple[int, ...]) -> None:
    oBlock = BasicBlock(16, numChnOut, stride)
    assert _OutShape(oBlock, (2, 16, 8, 8)) == tuOut
    assert (oBlock.oShortcut is None) == (stride == 1)
    if oBlock.oShortcut is not None:  #<! Projection: 1x1 with the block's stride
        oConv = oBlock.oShortcut[0]
        assert oConv.kernel_size == (1, 1) and oConv.stride == (2, 2)


def test_basic_block_is_identity_plus_branch() -> None:
    oBlock = BasicBlock(8, 8).eval()
    tX = torch.randn(2, 8, 6, 6)
    tBranch = oBlock.oBn2(oBlock.oConv2(torch.relu(oBlock.oBn1(oBlock.oConv1(tX)))))
    torch.testing.assert_close(oBlock(tX), torch.relu(tX + tBranch))
    oPlain = BasicBlock(8, 8, residual=False).eval()
    oPlain.load_state_dict(oBlock.state_dict())  #<! Same layers, same names
    torch.testing.assert_close(oPlain(tX), torch.relu(tBranch))


def test_bottleneck_block() -> None:
    assert _OutShape(Bottleneck(64, 64), (1, 64, 8, 8)) == (1, 256, 8, 8)
    assert _OutShape(Bottleneck(256, 128, stride=2), (1, 256, 8, 8)) == (1, 512, 4, 4)
    # ResNet-50's first block (conv2_x): 64 -> 64 -> 64 -> 256 plus the projection 64 -> 256
    numWeights = sum(m.weight.numel() for m in Bottleneck(64, 64).modules() if isinstance(m, nn.Conv2d))
    assert numWeights == 64 * 64 + 64 * 64 * 9 + 64 * 256 + 64 * 256


def test_resnet20_parameters_match_the_paper() -> None:
    # He et al. (2015), table 6: ResNet-20 has 0.27 M parameters (option A shortcuts: no parameters)
    assert CountParameters(CifarResNet(20, projection=False)) == 269_722
    assert CountParameters(CifarResNet(20)) == pytest.approx(0.27e6, rel=0.02)  #<! With 1x1 projections
    assert CountParameters(CifarResNet(56, projection=False)) == pytest.approx(0.85e6, rel=0.01)
    assert CountParameters(CifarResNet(110, projection=False)) == pytest.approx(1.7e6, rel=0.02)
    assert CountFlops(CifarResNet(20)) / 2 == pytest.approx(41e6, rel=0.02)  #<! About 41 M multiply-adds


def test_plain_twin_has_the_same_layers_without_shortcuts() -> None:
    oPlain, oRes = CifarResNet(20, residual=False), CifarResNet(20, projection=False)
    assert CountParameters(oPlain) == CountParameters(oRes)
    numConv = sum(isinstance(m, nn.Conv2d) for m in oPlain.modules())
    assert numConv + 1 == 20  #<! 19 convolutions and the linear layer
    assert _OutShape(oPlain, (2, 3, 32, 32)) == (2, 10)
    assert all(oBlock.oShortcut is None for oBlock in oPlain.modules() if isinstance(oBlock, BasicBlock))


@pytest.mark.parametrize('depth', [7, 21, 2])
def test_resnet_depth_must_be_6n_plus_2(depth: int) -> None:
    with pytest.raises(ValueError, match='6n \\+ 2'):
        CifarResNet(depth)


def test_resnet18_cifar() -> None:
    oModel = ResNet18Cifar()
    assert CountParameters(oModel) == pytest.approx(11.17e6, rel=0.01)
    assert oModel.conv1.kernel_size == (3, 3) and oModel.conv1.stride == (1, 1)
    assert isinstance(oModel.maxpool, nn.Identity)
    assert _OutShape(oModel, (1, 3, 32, 32)) == (1, 10)
    assert CountFlops(oModel) / 2 == pytest.approx(0.56e9, rel=0.02)  #<! 0.56 G multiply-adds at 32 x 32


# ------------------------------------------------------------------------------------------------
# Inception and MobileNet
# ------------------------------------------------------------------------------------------------
def test_inception_3a() -> None:
    # GoogLeNet, table 1, inception (3a): 192 channels in, 64 + 128 + 32 + 32 = 256 out, 159 K parameters
    oBlock = InceptionBlock(192, 64, 96, 128, 16, 32, 32)
    assert _OutShape(oBlock, (1, 192, 28, 28)) == (1, 256, 28, 28)
    numWeights = sum(m.weight.numel() for m in oBlock.modules() if isinstance(m, nn.Conv2d))
    assert numWeights == 192 * 64 + 192 * 96 + 96 * 128 * 9 + 192 * 16 + 16 * 32 * 25 + 192 * 32
    assert numWeights == pytest.approx(159e3, rel=0.03)


def test_depthwise_separable_cost_ratio() -> None:
    numChnIn, numChnOut, kernelSize = 32, 64, 3
    oSep = DepthwiseSeparableConv(numChnIn, numChnOut, kernelSize=kernelSize)
    oStd = nn.Conv2d(numChnIn, numChnOut, kernelSize, padding=1, bias=False)
    assert oSep[0].groups == numChnIn
    assert _OutShape(oSep, (1, numChnIn, 16, 16)) == (1, numChnOut, 16, 16)
    valRatio = CountFlops(oSep, (1, numChnIn, 16, 16)) / CountFlops(oStd, (1, numChnIn, 16, 16))
    assert valRatio == pytest.approx(1 / numChnOut + 1 / kernelSize ** 2)


def test_mobilenet_v1_matches_the_paper() -> None:
    # Howard et al. (2017), table 8: 1.0 MobileNet-224 has 4.2 M parameters and 569 M multiply-adds
    oModel = BuildMobileNetV1(numClasses=1000, stemStride=2)
    assert CountParameters(oModel) == pytest.approx(4.2e6, rel=0.01)
    assert CountFlops(oModel, (1, 3, 224, 224)) / 2 == pytest.approx(569e6, rel=0.01)
    assert _OutShape(BuildMobileNetV1(), (2, 3, 32, 32)) == (2, 10)
    assert CountParameters(BuildMobileNetV1(widthMult=0.5)) < CountParameters(BuildMobileNetV1()) / 3
    with pytest.raises(ValueError, match='widthMult'):
        BuildMobileNetV1(widthMult=0)


def test_count_flops_of_a_linear_layer_and_keeps_the_mode() -> None:
    oModel = nn.Sequential(nn.Flatten(), nn.Linear(12, 5)).train()
    assert CountFlops(oModel, (1, 3, 2, 2)) == 2 * 12 * 5
    assert oModel.training
    with pytest.raises(ValueError, match='batch'):
        CountFlops(oModel, (12,))
