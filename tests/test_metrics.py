"""AccuracyLogits against torchmetrics (micro average: the plain accuracy)."""

from __future__ import annotations

import pytest
import torch
from torchmetrics.classification import MulticlassAccuracy

from course_utils import AccuracyLogits


@pytest.mark.parametrize('seed', range(5))
def test_accuracy_logits_equals_torchmetrics_micro(seed: int) -> None:
    oGen = torch.Generator().manual_seed(seed)
    mScore = torch.randn(257, 10, generator=oGen)
    vY = torch.randint(0, 10, (257,), generator=oGen)
    vY[:100] = mScore[:100].argmax(1)  #<! Make it well above chance
    oMetric = MulticlassAccuracy(num_classes=10, average='micro')
    assert AccuracyLogits(mScore, vY) == pytest.approx(oMetric(mScore, vY).item(), abs=1e-6)


def test_macro_average_is_not_accuracy_on_imbalanced_labels() -> None:
    # The torchmetrics default (average='macro') averages per-class recall: a different number
    vY = torch.tensor([0, 0, 0, 0, 1])
    mScore = torch.tensor([[1.0, 0.0]] * 5)  #<! Always predicts class 0
    assert AccuracyLogits(mScore, vY) == pytest.approx(0.8)
    assert MulticlassAccuracy(num_classes=2)(mScore, vY).item() == pytest.approx(0.5)


def test_accuracy_logits_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match='one label per row'):
        AccuracyLogits(torch.randn(4, 3), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match='N x numClasses'):
        AccuracyLogits(torch.randn(4), torch.zeros(4, dtype=torch.long))
