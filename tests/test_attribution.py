"""Attribution maps against what they must be on models whose answer is known, sanity checks, deletion curves."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

from course_utils import (BuildVggCnn, CascadingRandomization, CurveAuc, DeletionCurves, EdgeMaps, EvalMode,
                          GradCamMaps, MapColors, MapRankCorrelation, OcclusionMaps, PlotAttributionGrid,
                          PlotImageMapOverlay, PlotMeanCurves, PlotStageCorrelations, RandomMaps, SaliencyMaps)


def _LinearModel(seed: int = 0, numChn: int = 3, size: int = 8) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(numChn * size * size, 4))


def test_saliency_of_a_linear_model_is_its_weight_row() -> None:
    oModel = _LinearModel()
    tX, vY = torch.randn(5, 3, 8, 8), torch.tensor([0, 1, 2, 3, 1])
    tMaps = SaliencyMaps(oModel, tX, vY)
    tExpected = oModel[1].weight.detach()[vY].view(5, 3, 8, 8).abs().amax(dim=1)
    torch.testing.assert_close(tMaps, tExpected)
    # SmoothGrad of a linear model: the gradient does not depend on the input, so the noise changes nothing
    torch.testing.assert_close(SaliencyMaps(oModel, tX, vY, numSamples=4, noiseStd=0.5), tExpected)


def test_saliency_in_chunks_equals_one_pass() -> None:
    torch.manual_seed(0)
    oModel = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3))
    tX, vY = torch.randn(5, 3, 6, 6), torch.tensor([0, 2, 1, 1, 0])
    torch.testing.assert_close(SaliencyMaps(oModel, tX, vY, batchSize=2), SaliencyMaps(oModel, tX, vY))
    tSmooth = SaliencyMaps(oModel, tX, vY, numSamples=6, noiseStd=0.2, batchSize=4)  #<! Fewer images than samples
    assert tSmooth.shape == (5, 6, 6) and torch.isfinite(tSmooth).all()


def test_smoothgrad_averages_over_noisy_copies() -> None:
    torch.manual_seed(0)
    oModel = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3))
    tX, vY = torch.randn(2, 3, 6, 6), torch.tensor([0, 2])
    numSamples, noiseStd = 6, 0.3
    torch.manual_seed(7)
    tSmooth = SaliencyMaps(oModel, tX, vY, numSamples=numSamples, noiseStd=noiseStd)
    torch.manual_seed(7)  #<! Captum draws all the noise at once for the images repeated in place
    tRep = tX.repeat_interleave(numSamples, 0)
    tNoisy = (tRep + torch.randn_like(tRep) * noiseStd).requires_grad_()
    vScore = oModel(tNoisy).gather(1, vY.repeat_interleave(numSamples)[:, None]).sum()
    tGrad, = torch.autograd.grad(vScore, tNoisy)
    tExpected = tGrad.abs().view(2, numSamples, 3, 6, 6).mean(1).amax(1)
    torch.testing.assert_close(tSmooth, tExpected)
    assert not torch.allclose(tSmooth, SaliencyMaps(oModel, tX, vY))  #<! The noise does change a ReLU net's map


class _GapNet(nn.Module):
    """Features -> global average pooling -> linear: Grad-CAM's weights are the linear weights over H * W."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(5, 3)

    def forward(self, tX: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(tX).mean(dim=(2, 3)))


def test_grad_cam_equals_its_formula() -> None:
    torch.manual_seed(0)
    oModel = _GapNet().train()
    tX, vY = torch.randn(3, 3, 4, 4), torch.tensor([0, 1, 2])
    tCam = GradCamMaps(oModel, oModel.features, tX, vY)
    assert oModel.training, 'the mode must be restored'
    with torch.no_grad():
        tA = oModel.features(tX)
        mW = oModel.head.weight[vY] / 16  #<! d score / d A_k = w_k / (H W) at every pixel
        tExpected = torch.relu((mW[:, :, None, None] * tA).sum(1))
    torch.testing.assert_close(tCam, tExpected)  #<! Same size: the bilinear upsampling is the identity
    tBig = GradCamMaps(oModel, oModel.features, nn.functional.interpolate(tX, size=8), vY)
    assert tBig.shape == (3, 8, 8)
    assert not any(oLayer._forward_hooks or oLayer._backward_hooks for oLayer in oModel.modules())


def test_grad_cam_upsamples_the_last_map_of_the_course_model() -> None:
    torch.manual_seed(0)
    oModel = BuildVggCnn()
    tCam = GradCamMaps(oModel, oModel[15], torch.randn(2, 3, 32, 32), [3, 4])
    assert tCam.shape == (2, 32, 32) and (tCam >= 0).all()


def _OcclusionByLoops(oModel: nn.Module, tX: torch.Tensor, vY: torch.Tensor, patchSize: int, stride: int,
                      baseline: float) -> torch.Tensor:
    tSum, tCount = torch.zeros(len(tX), *tX.shape[-2:]), torch.zeros(*tX.shape[-2:])
    with torch.no_grad():
        vP0 = torch.softmax(oModel(tX), 1)[torch.arange(len(tX)), vY]
        for rr in range(0, tX.shape[-2] - patchSize + 1, stride):
            for cc in range(0, tX.shape[-1] - patchSize + 1, stride):
                tOcc = tX.clone()
                tOcc[..., rr:rr + patchSize, cc:cc + patchSize] = baseline
                vP = torch.softmax(oModel(tOcc), 1)[torch.arange(len(tX)), vY]
                tSum[:, rr:rr + patchSize, cc:cc + patchSize] += (vP0 - vP)[:, None, None]
                tCount[rr:rr + patchSize, cc:cc + patchSize] += 1
    return tSum / tCount


@pytest.mark.parametrize(('patchSize', 'stride', 'baseline'), [(4, 2, 0.0), (3, 1, -1.0), (8, 8, 0.5)])
def test_occlusion_equals_the_loops(patchSize: int, stride: int, baseline: float) -> None:
    torch.manual_seed(0)
    oModel = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, 3))
    tX, vY = torch.randn(2, 3, 8, 8), torch.tensor([1, 2])
    torch.testing.assert_close(OcclusionMaps(oModel, tX, vY, patchSize, stride, baseline),
                               _OcclusionByLoops(oModel, tX, vY, patchSize, stride, baseline))


def test_occlusion_refuses_patches_that_leave_pixels_uncovered() -> None:
    with pytest.raises(ValueError, match='uncovered'):
        OcclusionMaps(_LinearModel(), torch.randn(1, 3, 8, 8), [0], patchSize=3, stride=2)
    with pytest.raises(ValueError, match='patchSize'):
        OcclusionMaps(_LinearModel(), torch.randn(1, 3, 8, 8), [0], patchSize=9, stride=1)


def test_bad_batches_are_named() -> None:
    with pytest.raises(ValueError, match='N x C x H x W'):
        SaliencyMaps(_LinearModel(), torch.randn(3, 8, 8), [0])
    with pytest.raises(ValueError, match='one class index per image'):
        SaliencyMaps(_LinearModel(), torch.randn(2, 3, 8, 8), [0])


def test_eval_mode_is_restored_after_an_error() -> None:
    oModel = nn.Dropout().train()
    with pytest.raises(RuntimeError), EvalMode(oModel):
        assert not oModel.training
        raise RuntimeError('boom')
    assert oModel.training


def test_eval_mode_restores_each_sub_module() -> None:
    oModel = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Dropout()).train()
    oModel[1].eval()  #<! A frozen BatchNorm inside a training model
    with EvalMode(oModel):
        assert not any(oSub.training for oSub in oModel.modules())
    assert [oSub.training for oSub in oModel.modules()] == [True, True, False, True]


class _RegionNet(nn.Module):
    """Class 1's logit is the mean of a 2 x 2 corner: only those 4 pixels matter."""

    def forward(self, tX: torch.Tensor) -> torch.Tensor:
        valCorner = tX[:, :, :2, :2].mean(dim=(1, 2, 3))
        return torch.stack([torch.zeros_like(valCorner), 4 * valCorner], dim=1)


def test_deletion_and_insertion_curves() -> None:
    tX = torch.ones(2, 3, 4, 4)
    tTrue = torch.zeros(2, 4, 4)
    tTrue[:, :2, :2] = 1.0  #<! The map that ranks the corner first
    vY = torch.tensor([1, 1])
    oModel = _RegionNet()
    vFrac, mDel = DeletionCurves(oModel, tX, tTrue, vY, 'deletion', numSteps=4)
    torch.testing.assert_close(vFrac, torch.linspace(0, 1, 5))
    vP1, vP0 = torch.sigmoid(torch.tensor(4.0)), torch.tensor(0.5)
    torch.testing.assert_close(mDel[:, 0], vP1.expand(2))  #<! Nothing removed: the image's own probability
    torch.testing.assert_close(mDel[:, 1:], vP0.expand(2, 4))  #<! The corner goes first: at once down to 1/2
    _, mIns = DeletionCurves(oModel, tX, tTrue, vY, 'insertion', numSteps=4)
    torch.testing.assert_close(mIns[:, 0], vP0.expand(2))
    torch.testing.assert_close(mIns[:, 1:], vP1.expand(2, 4))
    # Ranked last, the corner is removed at the end: a worse (higher) deletion AUC than the true ranking
    _, mDelBad = DeletionCurves(oModel, tX, 1 - tTrue, vY, 'deletion', numSteps=4)
    assert (CurveAuc(vFrac, mDel) < CurveAuc(vFrac, mDelBad)).all()
    _, mRand = DeletionCurves(oModel, tX, RandomMaps(2, 4, 4, seed=1), vY, 'deletion', numSteps=4)
    assert (CurveAuc(vFrac, mDel) <= CurveAuc(vFrac, mRand) + 1e-6).all()
    np.testing.assert_allclose(CurveAuc(vFrac, torch.ones(1, 5)), [1.0])


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_ties_are_removed_in_a_random_order_not_raster_order(seed: int) -> None:
    tX, vY = torch.ones(1, 3, 4, 4), torch.tensor([1])
    tFlat = torch.zeros(1, 4, 4)  #<! Every pixel ties
    _, mDel = DeletionCurves(_RegionNet(), tX, tFlat, vY, 'deletion', numSteps=4, seed=seed)
    vOrder = torch.argsort(torch.rand(1, 16, generator=torch.Generator().manual_seed(seed)), dim=1)[0]
    setCorner = {0, 1, 4, 5}  #<! The 2 x 2 corner in raster indices
    for step in range(5):
        numLeft = 4 - len(setCorner & set(vOrder[:4 * step].tolist()))
        torch.testing.assert_close(mDel[0, step], torch.sigmoid(torch.tensor(float(numLeft))))
    _, mAgain = DeletionCurves(_RegionNet(), tX, tFlat, vY, 'deletion', numSteps=4, seed=seed)
    assert torch.equal(mDel, mAgain)


def test_deletion_curves_refuse_bad_input() -> None:
    tX = torch.ones(1, 3, 4, 4)
    with pytest.raises(ValueError, match='mode'):
        DeletionCurves(_RegionNet(), tX, torch.zeros(1, 4, 4), [1], 'erase')
    with pytest.raises(ValueError, match='N x H x W'):
        DeletionCurves(_RegionNet(), tX, torch.zeros(1, 3, 4, 4), [1])


def test_random_maps_in_blocks() -> None:
    tPix = RandomMaps(2, 8, 8, seed=0)
    assert tPix.shape == (2, 8, 8) and len(tPix.unique()) == 128
    tBlocks = RandomMaps(2, 8, 8, seed=0, blockSize=4)
    assert tBlocks.shape == (2, 8, 8) and len(tBlocks.unique()) == 8
    assert (tBlocks[:, :4, :4] == tBlocks[:, :1, :1]).all()  #<! One value per block
    assert torch.equal(RandomMaps(2, 8, 8, seed=3, blockSize=2), RandomMaps(2, 8, 8, seed=3, blockSize=2))
    with pytest.raises(ValueError, match='divisor'):
        RandomMaps(1, 8, 8, blockSize=3)


def test_cascading_randomization_goes_from_the_top_down() -> None:
    torch.manual_seed(0)
    oModel = BuildVggCnn(lWidths=(4, 8))
    with torch.no_grad():
        for oBn in (m for m in oModel.modules() if isinstance(m, nn.BatchNorm2d)):
            oBn.running_mean.fill_(0.3)
    dBefore = {k: v.clone() for k, v in oModel.state_dict().items()}
    vRng = torch.get_rng_state()
    lStages = [['11'], ['5', '6'], ['0', '1']]  #<! Linear, the last conv block, the first conv block
    lResults = list(CascadingRandomization(oModel, lStages, seed=3))
    assert torch.equal(torch.get_rng_state(), vRng), 'the caller\'s random stream must not move'
    assert [name for name, _ in lResults] == ['11', '5+6', '0+1']
    for name, tV in oModel.state_dict().items():
        assert torch.equal(tV, dBefore[name]), f'the original model changed: {name}'
    dChanged = {name: {k for k, v in oRand.state_dict().items() if not torch.equal(v, dBefore[k])}
                for name, oRand in lResults}
    assert dChanged['11'] == {'11.weight', '11.bias'}
    assert {'5.weight', '6.running_mean'} <= dChanged['5+6'] and '0.weight' not in dChanged['5+6']
    assert {'0.weight', '1.running_mean', '11.weight'} <= dChanged['0+1']
    assert all(not oRand.training for _, oRand in lResults)
    lAgain = list(CascadingRandomization(oModel, lStages, seed=3))
    assert torch.equal(lAgain[-1][1][0].weight, lResults[-1][1][0].weight), 'a seed gives the same draws'
    with pytest.raises(ValueError, match='no module named'):
        list(CascadingRandomization(oModel, [['99']]))


def test_rank_correlation() -> None:
    tA = torch.arange(16.0).view(1, 4, 4).repeat(3, 1, 1)
    tB = torch.stack([tA[0], -tA[0] + 15, torch.zeros(4, 4)])
    vRho = MapRankCorrelation(tA, tB)
    assert vRho[0] == pytest.approx(1.0) and vRho[1] == pytest.approx(-1.0) and np.isnan(vRho[2])
    assert MapRankCorrelation(tA[:1], -tA[:1])[0] == pytest.approx(1.0)  #<! Absolute values: the sign is ignored
    assert MapRankCorrelation(tA[:1], -tA[:1], useAbs=False)[0] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match='N x H x W'):
        MapRankCorrelation(tA, tA[:2])


def test_edge_maps_mark_edges_only() -> None:
    tX = torch.zeros(1, 3, 6, 6)
    tX[..., 3:] = 1.0
    tEdge = EdgeMaps(tX)
    assert tEdge.shape == (1, 6, 6)
    assert (tEdge[0, :, [2, 3]] > 0).all() and (tEdge[0, :, [0, 5]] == 0).all()


def test_attribution_figures() -> None:
    tX = torch.rand(2, 3, 8, 8)
    dMaps = {'A': torch.rand(2, 8, 8), 'B': torch.zeros(2, 8, 8)}
    hF = PlotAttributionGrid(tX, dMaps, lRowTitles=['x', 'y'])
    assert len(hF.axes) == 6 and hF.axes[1].get_title() == 'A'
    assert len(PlotAttributionGrid(tX, dMaps, showOverlay=False).axes) == 6
    with pytest.raises(ValueError, match='N x H x W'):
        PlotAttributionGrid(tX, {'A': torch.rand(2, 4, 4)})
    hF = PlotImageMapOverlay(tX[0], dMaps['A'][0], title='t')
    assert len(hF.axes) == 4  #<! Three panels and the colour bar
    hA = PlotMeanCurves(np.linspace(0, 1, 5), {'m': np.ones((3, 5))}, 'fraction', 'p')
    assert 'mean AUC 1.000' in hA.get_legend().get_texts()[0].get_text()
    hA = PlotStageCorrelations(['a', 'b'], {'m': np.array([[1.0, np.nan], [0.2, 0.1]])})
    assert len(hA.get_lines()) == 2  #<! The method's line and the zero line
    assert [t.get_text() for t in hA.get_xticklabels()] == ['Trained', 'a', 'b']
    hA = PlotStageCorrelations(['a', 'b'], {'m': np.array([[1.0, 0.5], [0.2, 0.1]])}, dFloor={'m': 0.1})
    assert len(hA.get_lines()) == 3  #<! And the floor
    hA = PlotMeanCurves(np.linspace(0, 1, 5), {'m': np.ones((3, 5)), 'r': np.zeros((3, 5))}, 'f', 'p', lReferences=['r'])
    assert hA.get_lines()[1].get_linestyle() == '--'
    plt.close('all')


def test_map_colors_put_zero_in_the_middle_of_a_signed_map() -> None:
    dSigned = MapColors(np.array([[-1.0, 0.5], [2.0, 0.0]]), clipPercentile=100)
    assert dSigned == {'cmap': 'RdBu_r', 'vmin': -2.0, 'vmax': 2.0}
    dPositive = MapColors(np.array([[0.0, 0.5], [2.0, 1.0]]), clipPercentile=100)
    assert dPositive == {'cmap': 'inferno', 'vmin': 0.0, 'vmax': 2.0}
    mOutlier = np.zeros(1000)
    mOutlier[:500] = 1.0
    mOutlier[0] = 100.0
    assert MapColors(mOutlier)['vmax'] == pytest.approx(1.0)  #<! One pixel does not set the scale
    assert MapColors(np.zeros((2, 2)))['vmax'] == 1.0
