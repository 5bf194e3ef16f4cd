"""Plots return what they drew on, draw into given axes, and show the right data."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_utils import (
    PlotConfusionMatrix,
    PlotFeatureMaps,
    PlotImageGrid,
    PlotLabelsHistogram,
    PlotMatrix,
    PlotMnistImages,
    PlotTrainResults,
)


@pytest.fixture(autouse=True)
def closeFigures():
    yield
    plt.close('all')


def test_mnist_images_accepts_flattened_cifar_rows() -> None:
    mImgs = np.random.default_rng(0).integers(0, 256, size=(20, 32, 32, 3), dtype=np.uint8)
    vY = np.arange(20) % 10
    hF = PlotMnistImages(mImgs.reshape(20, -1), vY, 6, lClasses=[f'c{ii}' for ii in range(10)],
                         tuImgSize=(32, 32, 3), randomChoice=False)
    lAxes = [hA for hA in hF.axes if hA.images]
    assert len(lAxes) == 6
    np.testing.assert_array_equal(lAxes[2].images[0].get_array(), mImgs[2])
    assert lAxes[2].get_title() == 'c2'


def test_mnist_images_rejects_a_wrong_size() -> None:
    with pytest.raises(ValueError, match='tuImgSize'):
        PlotMnistImages(np.zeros((4, 100)), None, 2, tuImgSize=(28, 28))


def test_labels_histogram_counts_every_class_into_given_axes() -> None:
    _, hA = plt.subplots()
    hOut = PlotLabelsHistogram(np.array([0, 0, 2, 2, 2]), lClasses=['a', 'b', 'c'], hA=hA)
    assert hOut is hA
    assert [oBar.get_height() for oBar in hA.patches] == [2, 0, 3]


def test_train_results_draws_loss_score_and_learning_rate() -> None:
    hF = PlotTrainResults([1.0, 0.8, 0.7], [0.3, 0.5, 0.6], [1.1, 0.9, 0.95], [0.25, 0.45, 0.4],
                          lLearnRate=[1e-3] * 30)
    assert len(hF.axes) == 3
    np.testing.assert_allclose(hF.axes[1].lines[1].get_ydata(), [0.25, 0.45, 0.4])
    assert 'epoch 2' in hF.axes[0].get_legend_handles_labels()[1][-1]  #<! Best validation epoch marked


def test_confusion_matrix_counts_and_normalizes() -> None:
    vY = np.array([0, 0, 1, 1, 2, 2])
    vYPred = np.array([0, 1, 1, 1, 2, 0])
    _, mCounts = PlotConfusionMatrix(vY, vYPred, normalize=None)
    np.testing.assert_array_equal(mCounts, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    _, hA = plt.subplots()
    hOut, mRecall = PlotConfusionMatrix(torch.tensor(vY), torch.tensor(vYPred), ['a', 'b', 'c'], hA=hA)
    assert hOut is hA
    np.testing.assert_allclose(mRecall.sum(axis=1), 1.0)
    np.testing.assert_allclose(np.diag(mRecall), [0.5, 1.0, 0.5])


def test_image_grid_undoes_the_normalization() -> None:
    tImgs = torch.rand(4, 3, 8, 8)
    vMean, vStd = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
    tNorm = (tImgs - torch.tensor(vMean).view(1, 3, 1, 1)) / torch.tensor(vStd).view(1, 3, 1, 1)
    hF = PlotImageGrid(tNorm, vY=[0, 1, 2, 1], vYPred=[0, 1, 1, 1], lClasses=['a', 'b', 'c'],
                       vMean=vMean, vStd=vStd, numCols=2)
    lAxes = [hA for hA in hF.axes if hA.images]
    np.testing.assert_allclose(lAxes[3].images[0].get_array(), tImgs[3].permute(1, 2, 0).numpy(), atol=1e-6)
    assert lAxes[2].get_title() == 'c / b' and lAxes[2].title.get_color() == 'red'


def test_image_grid_needs_both_statistics() -> None:
    with pytest.raises(ValueError, match='vMean and vStd'):
        PlotImageGrid(torch.rand(2, 3, 4, 4), vMean=[0.5, 0.5, 0.5])


def test_feature_maps_keep_the_sign_of_each_map() -> None:
    tMaps = torch.stack([torch.linspace(-1, 1, 16).view(4, 4), torch.ones(4, 4) * 3])
    hF = PlotFeatureMaps(tMaps, ['signed', 'constant'], numCols=2)
    lAxes = [hA for hA in hF.axes if hA.images]
    assert lAxes[0].images[0].get_clim() == pytest.approx((-1.0, 1.0))
    assert lAxes[1].get_title() == 'constant'
    with pytest.raises(ValueError, match='2 maps'):
        PlotFeatureMaps(tMaps, ['only one'])


def test_matrix_writes_every_value() -> None:
    hA = PlotMatrix(np.array([[133, 75], [100, 101]]), title='Output')
    assert sorted(oText.get_text() for oText in hA.texts) == ['100', '101', '133', '75']


def test_paired_differences_colours_by_verdict_and_labels_each_row() -> None:
    from course_utils import PairedDifference, PlotPairedDifferences
    lResults = [PairedDifference([0.8, 0.82, 0.81], [0.7, 0.71, 0.72]),     #<! Consistently higher: better
                PairedDifference([0.7, 0.71, 0.72], [0.8, 0.82, 0.81]),     #<! worse
                PairedDifference([0.80, 0.70, 0.75], [0.75, 0.74, 0.76])]   #<! Interval holds 0: tie
    assert [o.verdict for o in lResults] == ['better', 'worse', 'tie']
    hA = PlotPairedDifferences(['a vs b', 'b vs a', 'c vs d'], lResults, xlabel='Accuracy')
    lLabels = [oText.get_text() for oText in hA.texts]
    assert lLabels == ['+0.100 (better)', '-0.100 (worse)', '+0.000 (tie)']
    assert [oText.get_color() for oText in hA.texts] == ['tab:green', 'tab:red', 'tab:gray']
    assert [oTick.get_text() for oTick in hA.get_yticklabels()] == ['a vs b', 'b vs a', 'c vs d']
    valLeft, valRight = hA.get_xlim()
    assert valLeft < min(o.low for o in lResults) and valRight > max(o.high for o in lResults)
    assert '3 paired differences' in hA.get_xlabel() and '95%' in hA.get_xlabel()
    with pytest.raises(ValueError, match='one name per comparison'):
        PlotPairedDifferences(['only one'], lResults)


def test_plain_log_ticks_replace_scientific_labels_and_integer_ticks_skip_halves() -> None:
    from course_utils import IntegerTicks, PlainLogTicks
    hF, hA = plt.subplots()
    hA.plot([1, 2], [2.0, 4.0])
    hA.set_yscale('log')
    hF.canvas.draw()
    assert any('times' in oText.get_text() for oText in hA.get_yticklabels(minor=True))  #<! matplotlib's 2x10^0
    PlainLogTicks(hA)
    IntegerTicks(hA)
    hF.canvas.draw()
    assert [oText.get_text() for oText in hA.get_yticklabels(minor=True)][:3] == ['2', '3', '4']
    assert all(float(v).is_integer() for v in hA.get_xticks())
    hF2, hA2 = plt.subplots()
    hA2.plot([1, 2], [0.01, 1.0])
    hA2.set_yscale('log')
    PlainLogTicks(hA2)
    hF2.canvas.draw()
    lMajor = [oText.get_text() for oText in hA2.get_yticklabels() if oText.get_text()]
    assert {'0.01', '0.1', '1'} <= set(lMajor) and not any('e' in label for label in lMajor), lMajor
    hA.set_xscale('linear')
    with pytest.raises(ValueError, match='not log'):
        PlainLogTicks(hA, 'x')


def test_train_results_learning_rate_axis_has_integer_epochs() -> None:
    hF = PlotTrainResults([1.0, 0.5], [0.5, 0.7], [1.1, 0.6], [0.4, 0.6], lLearnRate=[1e-3, 2e-3, 3e-3, 1e-3])
    for hA in hF.axes:
        assert all(float(v).is_integer() for v in hA.get_xticks()), hA.get_title()


def test_feature_maps_shared_scale_gives_constant_maps_their_own_colour() -> None:
    tMaps = torch.stack([torch.ones(4, 4), 2 * torch.ones(4, 4), torch.arange(16.0).view(4, 4) % 3])
    hF = PlotFeatureMaps(tMaps, sharedScale=True, showColorbar=True)
    lImages = [hA.images[0] for hA in hF.axes if hA.images]
    assert [oImg.get_clim() for oImg in lImages] == [(0.0, 2.0)] * 3
    hF2 = PlotFeatureMaps(tMaps)
    assert [hA.images[0].get_clim() for hA in hF2.axes if hA.images][2] == (0.0, 2.0)
