"""Helpers shared by the notebooks of the course "CNNs with PyTorch".

The public names follow the course notation (``TrainModel``, ``AccuracyLogits``, ...);
``from course_utils import TrainModel`` is all a notebook needs.
"""

from .config import GetCacheDir, GetDataRoot, GetDevice, GetNumWorkers, IsQuickMode
from .data import (
    CIFAR10_CLASSES,
    ChannelMeanStd,
    Cifar10Folder,
    LoadCifar10,
    StratifiedIndices,
    StratifiedSplit,
    StratifiedSubset,
    SubsetByIndices,
)
from .metrics import AccuracyLogits
from .plotting import (
    PlotConfusionMatrix,
    PlotImageGrid,
    PlotLabelsHistogram,
    PlotMnistImages,
    PlotTrainResults,
)
from .training import LoadCheckpoint, NNMode, Predict, TrainEpoch, TrainModel

__version__ = '0.1.0'

__all__ = [
    'CIFAR10_CLASSES', 'AccuracyLogits', 'ChannelMeanStd', 'Cifar10Folder', 'GetCacheDir', 'GetDataRoot',
    'GetDevice', 'GetNumWorkers', 'IsQuickMode', 'LoadCheckpoint', 'LoadCifar10', 'NNMode',
    'PlotConfusionMatrix', 'PlotImageGrid', 'PlotLabelsHistogram', 'PlotMnistImages', 'PlotTrainResults', 'Predict',
    'StratifiedIndices', 'StratifiedSplit', 'StratifiedSubset', 'SubsetByIndices', 'TrainEpoch', 'TrainModel',
]
