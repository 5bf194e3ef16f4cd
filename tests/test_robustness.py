"""course_utils.robustness: attacks, corruptions, shifts, test-time augmentation, calibration, seed ties."""

from __future__ import annotations


import numpy as np
import pytest
import torch
import matplotlib.pyplot as plt
import torch.nn.functional as F
from torch import nn

from course_utils import (CORRUPTION_SEVERITIES, CORRUPTIONS, AccuracyUnderAttack, CalibrationBins, CorruptImages,
                          ExpectedCalibrationError, FgsmAttack, FitTemperature, PgdAttack, PixelBounds, PredictTta,
                          ScaleByTemperature, ShiftImages, Standardize, TtaViews, Unstandardize)

V_MEAN = torch.tensor([0.49, 0.48, 0.45])
V_STD = torch.tensor([0.25, 0.24, 0.26])


def _Model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(32, 10)).eval()


def _Images(numImg: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Standardized images of valid pixels (including pixels at exactly 0 and 1) and labels."""
    oGen = torch.Generator().manual_seed(seed)
    tX01 = torch.rand(numImg, 3, 8, 8, generator=oGen)
    tX01[:, :, 0, 0], tX01[:, :, 0, 1] = 0.0, 1.0  #<! Pixels on the range's edges: the attack must not leave it
    return Standardize(tX01, V_MEAN, V_STD), torch.randint(0, 10, (numImg,), generator=oGen)


def _SmoothImages(numImg: int = 8, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Natural-looking pixel images in [0, 1]: upsampled noise (smooth regions and edges)."""
    oGen = torch.Generator().manual_seed(seed)
    tCoarse = torch.rand(numImg, 3, size // 4, size // 4, generator=oGen)
    return F.interpolate(tCoarse, size=(size, size), mode='bilinear', align_corners=False).clamp(0, 1)


# ------------------------------------------------------------------------------------------------
# Pixel space
# ------------------------------------------------------------------------------------------------
def test_standardize_round_trip_and_bounds() -> None:
    tX01 = _SmoothImages()
    torch.testing.assert_close(Unstandardize(Standardize(tX01, V_MEAN, V_STD), V_MEAN, V_STD), tX01)
    tLow, tHigh = PixelBounds(V_MEAN, V_STD)
    torch.testing.assert_close(tLow.flatten(), -V_MEAN / V_STD)
    torch.testing.assert_close(tHigh.flatten(), (1 - V_MEAN) / V_STD)
    with pytest.raises(ValueError, match='one value per channel'):
        Standardize(tX01, V_MEAN[:2], V_STD[:2])


# ------------------------------------------------------------------------------------------------
# Attacks
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('hAttack', [FgsmAttack, PgdAttack], ids=['FGSM', 'PGD'])
def test_attack_increases_the_loss(hAttack) -> None:
    oModel = _Model()
    tX, vY = _Images(64)
    tAdv = hAttack(oModel, tX, vY, 8 / 255, V_MEAN, V_STD)
    with torch.no_grad():
        valClean, valAdv = F.cross_entropy(oModel(tX), vY), F.cross_entropy(oModel(tAdv), vY)
    assert valAdv > valClean, f'{hAttack.__name__}: loss {valAdv:.4f} after the attack, {valClean:.4f} before'


@pytest.mark.parametrize('hAttack', [FgsmAttack, PgdAttack], ids=['FGSM', 'PGD'])
def test_epsilon_zero_changes_nothing(hAttack) -> None:
    tX, vY = _Images()
    assert torch.equal(hAttack(_Model(), tX, vY, 0.0, V_MEAN, V_STD), tX)


@pytest.mark.parametrize('epsilon', [1 / 255, 8 / 255, 0.3])
@pytest.mark.parametrize('dKwargs', [dict(hAttack=FgsmAttack), dict(hAttack=PgdAttack),
                                     dict(hAttack=PgdAttack, randomStart=True, stepSize=0.2)],
                         ids=['FGSM', 'PGD', 'PGD-random-start-big-steps'])
def test_perturbation_stays_in_the_eps_ball_and_the_pixel_range(epsilon: float, dKwargs: dict) -> None:
    dKwargs = dict(dKwargs)
    hAttack = dKwargs.pop('hAttack')
    tX, vY = _Images()
    tAdv = hAttack(_Model(), tX, vY, epsilon, V_MEAN, V_STD, **dKwargs)
    # In pixel units: |x_adv - x| <= eps and 0 <= x_adv <= 1 (float tolerance of the standardization round trip)
    tX01, tAdv01 = Unstandardize(tX, V_MEAN, V_STD), Unstandardize(tAdv, V_MEAN, V_STD)
    valMaxChange = float((tAdv01 - tX01).abs().max())
    assert valMaxChange <= epsilon + 1e-5, f'max |change| {valMaxChange:.6f} > eps {epsilon:.6f}'
    assert float(tAdv01.min()) >= -1e-5 and float(tAdv01.max()) <= 1 + 1e-5, \
        f'pixel range [{float(tAdv01.min()):.6f}, {float(tAdv01.max()):.6f}] leaves [0, 1]'
    # And in standardized units, the bounds themselves
    tLow, tHigh = PixelBounds(V_MEAN, V_STD)
    assert bool((tAdv >= tLow - 1e-5).all() and (tAdv <= tHigh + 1e-5).all())
    assert valMaxChange > 0.5 * epsilon, 'The attack did not perturb at all'


def test_fgsm_is_one_pgd_step_of_size_epsilon() -> None:
    oModel = _Model()
    tX, vY = _Images()
    torch.testing.assert_close(PgdAttack(oModel, tX, vY, 4 / 255, V_MEAN, V_STD, numSteps=1, stepSize=4 / 255),
                               FgsmAttack(oModel, tX, vY, 4 / 255, V_MEAN, V_STD))


def test_attack_leaves_parameter_gradients_and_mode_alone() -> None:
    oModel = _Model().train()
    tX, vY = _Images()
    AccuracyUnderAttack(oModel, tX, vY, PgdAttack, epsilon=2 / 255, vMean=V_MEAN, vStd=V_STD, numSteps=2)
    assert oModel.training, 'AccuracyUnderAttack must restore the model mode'
    assert all(p.grad is None for p in oModel.parameters())


def test_pgd_hurts_at_least_as_much_as_fgsm_on_a_linear_model() -> None:
    oModel = _Model(1)
    tX, vY = _Images(256, seed=1)
    with torch.no_grad():
        vY = oModel(tX).argmax(dim=1)  #<! Labels the model gets right: clean accuracy 1
    dArgs = dict(epsilon=4 / 255, vMean=V_MEAN, vStd=V_STD)
    valFgsm = AccuracyUnderAttack(oModel, tX, vY, FgsmAttack, **dArgs)
    valPgd = AccuracyUnderAttack(oModel, tX, vY, PgdAttack, numSteps=10, **dArgs)
    assert valPgd <= valFgsm < 1, f'accuracy PGD {valPgd:.3f}, FGSM {valFgsm:.3f}'


@pytest.mark.parametrize(('epsilon', 'message'), [(-0.1, '>= 0'), (8.0, 'pixel units')])
def test_bad_epsilon_is_refused(epsilon: float, message: str) -> None:
    tX, vY = _Images()
    with pytest.raises(ValueError, match=message):
        FgsmAttack(_Model(), tX, vY, epsilon, V_MEAN, V_STD)


# ------------------------------------------------------------------------------------------------
# Corruptions and shifts
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('corruption', CORRUPTIONS)
def test_corruption_grows_with_severity(corruption: str) -> None:
    tX01 = _SmoothImages(16)
    lMse = [float((CorruptImages(tX01, corruption, severity) - tX01).square().mean()) for severity in range(6)]
    assert lMse[0] == 0, 'Severity 0 is the clean image'
    assert all(a < b for a, b in zip(lMse, lMse[1:])), f'{corruption}: MSE by severity 0..5 = {np.round(lMse, 6)}'


@pytest.mark.parametrize('corruption', CORRUPTIONS)
def test_corruption_keeps_shape_range_and_is_reproducible(corruption: str) -> None:
    tX01 = _SmoothImages(4)
    tOut = CorruptImages(tX01, corruption, 5, seed=3)
    assert tOut.shape == tX01.shape and tOut.dtype == tX01.dtype
    assert float(tOut.min()) >= 0 and float(tOut.max()) <= 1
    torch.testing.assert_close(tOut, CorruptImages(tX01, corruption, 5, seed=3))


def test_corruption_refuses_bad_input() -> None:
    tX01 = _SmoothImages(2)
    with pytest.raises(ValueError, match='Unknown corruption'):
        CorruptImages(tX01, 'Fog', 1)
    with pytest.raises(ValueError, match='severity'):
        CorruptImages(tX01, 'JPEG', 6)
    with pytest.raises(ValueError, match='Unstandardize'):
        CorruptImages(Standardize(tX01, V_MEAN, V_STD), 'Contrast', 1)


def test_shift_moves_pixels_and_fills_the_border() -> None:
    tX = torch.arange(2 * 3 * 5 * 6, dtype=torch.float32).view(2, 3, 5, 6)
    tOut = ShiftImages(tX, 1, -2, fillValue=[-1.0, -2.0, -3.0])
    torch.testing.assert_close(tOut[:, :, 1:, :-2], tX[:, :, :-1, 2:])
    assert bool((tOut[:, 0, 0, :] == -1).all() and (tOut[:, 2, :, -2:] == -3).all())
    torch.testing.assert_close(ShiftImages(tX, 2, 3, circular=True), torch.roll(tX, (2, 3), (2, 3)))
    assert torch.equal(ShiftImages(tX, 0, 0), tX)


# ------------------------------------------------------------------------------------------------
# Test-time augmentation
# ------------------------------------------------------------------------------------------------
def test_tta_views_and_prediction() -> None:
    tX, vY = _Images(8)
    assert len(TtaViews(tX, useFlip=False)) == 1
    assert len(TtaViews(tX, useFlip=True)) == 2
    assert len(TtaViews(tX, useFlip=True, cropShift=2)) == 10
    oModel = _Model()
    mProb, vYOut = PredictTta(oModel, [(tX, vY)], useFlip=False)
    torch.testing.assert_close(mProb, oModel(tX).softmax(dim=1).detach())  #<! One view: plain prediction
    mProb, _ = PredictTta(oModel, [(tX, vY)], useFlip=True, cropShift=2)
    torch.testing.assert_close(mProb.sum(dim=1), torch.ones(8))
    assert torch.equal(vYOut, vY)


# ------------------------------------------------------------------------------------------------
# Calibration
# ------------------------------------------------------------------------------------------------
def test_temperature_one_is_the_identity() -> None:
    mLogits = torch.randn(20, 10)
    assert torch.equal(ScaleByTemperature(mLogits, 1.0), mLogits)
    with pytest.raises(ValueError, match='> 0'):
        ScaleByTemperature(mLogits, 0.0)


def _CalibratedToyCase() -> tuple[torch.Tensor, torch.Tensor]:
    """Two confidence levels, each right exactly as often as it claims: 0.8 -> 8 of 10, 0.6 -> 3 of 5."""
    mProb = torch.tensor([[0.8, 0.2]] * 10 + [[0.4, 0.6]] * 5)
    vY = torch.tensor([0] * 8 + [1] * 2 + [1] * 3 + [0] * 2)
    return mProb.log(), vY  #<! log-probabilities are logits whose softmax is mProb


def test_ece_of_a_perfectly_calibrated_case_is_zero() -> None:
    mLogits, vY = _CalibratedToyCase()
    assert ExpectedCalibrationError(mLogits, vY) == pytest.approx(0, abs=1e-6)
    dfBins = CalibrationBins(mLogits, vY).dropna()
    assert dfBins['Count'].sum() == 15
    np.testing.assert_allclose(dfBins['Accuracy'], dfBins['Confidence'], atol=1e-6)


def test_ece_of_an_overconfident_case() -> None:
    mLogits, vY = _CalibratedToyCase()
    # Always confident 0.8 but right 8 of 15 times: ECE = |0.8 - 8 / 15|
    mLogits = torch.tensor([[0.8, 0.2]] * 15).log()
    vY = torch.tensor([0] * 8 + [1] * 7)
    assert ExpectedCalibrationError(mLogits, vY) == pytest.approx(0.8 - 8 / 15, abs=1e-6)


def test_fit_temperature_recovers_a_known_temperature_and_never_raises_the_nll() -> None:
    oGen = torch.Generator().manual_seed(0)
    mLogits = 3 * torch.randn(4000, 10, generator=oGen)
    valTrueT = 2.0  #<! Labels drawn from softmax(logits / 2): the logits are over-confident by a factor 2
    vY = torch.multinomial((mLogits / valTrueT).softmax(dim=1), 1, generator=oGen).squeeze(1)
    valT = FitTemperature(mLogits, vY)
    assert valT == pytest.approx(valTrueT, rel=0.1)
    assert F.cross_entropy(mLogits / valT, vY) <= F.cross_entropy(mLogits, vY)


def test_blur_matches_skimage_as_cifar10c_uses_it() -> None:
    import skimage.filters
    tX01 = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for severity, valSigma in enumerate(CORRUPTION_SEVERITIES['Gaussian Blur'], start=1):
        tGot = CorruptImages(tX01, 'Gaussian Blur', severity)
        mExpected = np.stack([skimage.filters.gaussian(mImg, sigma=valSigma, channel_axis=-1)
                              for mImg in tX01.permute(0, 2, 3, 1).double().numpy()])
        np.testing.assert_allclose(tGot.permute(0, 2, 3, 1).numpy(), mExpected, atol=1e-5,
                                   err_msg=f'severity {severity} (sigma {valSigma})')


def test_contrast_pulls_each_channel_to_its_own_mean_and_keeps_colour() -> None:
    tX01 = torch.zeros(1, 3, 8, 8)
    tX01[:, 0] = torch.linspace(0.5, 1.0, 64).view(8, 8)  #<! A red image: green and blue are 0
    tOut = CorruptImages(tX01, 'Contrast', 5)
    assert float(tOut[:, 1:].abs().max()) == 0, 'Green and blue must stay 0 (no desaturation)'
    torch.testing.assert_close(tOut.mean(dim=(2, 3)), tX01.mean(dim=(2, 3)))
    valFactor = CORRUPTION_SEVERITIES['Contrast'][4]
    torch.testing.assert_close(tOut[:, 0].std(), valFactor * tX01[:, 0].std())


def test_reliability_diagram_draws_one_confidence_step_per_filled_bin() -> None:
    from course_utils import PlotReliabilityDiagram
    mLogits = torch.tensor([[4.0, 0.0], [0.0, 4.0], [1.0, 0.0], [0.0, 0.2]])
    vY = torch.tensor([0, 0, 0, 1])
    hA = PlotReliabilityDiagram(mLogits, vY, numBins=5)
    oSteps = hA.collections[0]
    assert len(oSteps.get_segments()) == 3  #<! Confidences 0.98 (2 images), 0.73 and 0.55: three bins
    assert all(oPatch.get_alpha() in (None, 1.0) for oPatch in hA.patches), 'Opaque bars only: no mixed colours'
    plt.close('all')
