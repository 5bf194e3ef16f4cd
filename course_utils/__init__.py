"""Helpers shared by the notebooks of the course "CNNs with PyTorch".

The public names follow the course notation (``TrainModel``, ``AccuracyLogits``, ...);
``from course_utils import TrainModel`` is all a notebook needs.
"""

from .config import GetCacheDir, GetDataRoot, GetDevice, GetNumWorkers, IsQuickMode
from .convolution import Conv2DIm2Col, Conv2DLoops
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
    PlotFeatureMaps,
    PlotImageGrid,
    PlotLabelsHistogram,
    PlotMatrix,
    PlotMnistImages,
    PlotTrainResults,
)
from .shapes import ConvOutputSize, ForwardShapes, LayerOutputShape, ModelShapeTable
from .training import LoadCheckpoint, NNMode, Predict, TrainEpoch, TrainModel

__version__ = '0.1.0'

__all__ = [
    'CIFAR10_CLASSES', 'AccuracyLogits', 'ChannelMeanStd', 'Cifar10Folder', 'Conv2DIm2Col', 'Conv2DLoops',
    'ConvOutputSize', 'ForwardShapes', 'GetCacheDir', 'GetDataRoot', 'GetDevice', 'GetNumWorkers', 'IsQuickMode',
    'LayerOutputShape', 'LoadCheckpoint', 'LoadCifar10', 'ModelShapeTable', 'NNMode', 'PlotConfusionMatrix',
    'PlotFeatureMaps', 'PlotImageGrid', 'PlotLabelsHistogram', 'PlotMatrix', 'PlotMnistImages', 'PlotTrainResults',
    'Predict', 'StratifiedIndices', 'StratifiedSplit', 'StratifiedSubset', 'SubsetByIndices', 'TrainEpoch',
    'TrainModel',
]
