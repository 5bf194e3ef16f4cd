"""Helpers shared by the notebooks of the course "CNNs with PyTorch".

Every name a lesson uses is exported here, so ``from course_utils import TrainModel, MakeCifar10Loaders`` is all a
notebook needs. Where each lives:

- ``config``:        data root, cache folder, quick mode, device, workers, Colab and network checks.
- ``data``:          CIFAR-10 and Fashion-MNIST loaders, the CIFAR-10 recipe, stratified subsets, statistics.
- ``fast_data``:     ``DeviceBatchLoader``: a whole image data set on the device, batched augmentation.
- ``training``:      ``TrainModel`` / ``TrainEpoch``, checkpoints, ``Predict``, mixed precision.
- ``models``:        the course's CNNs (LeNet-5, the VGG-style net, ResNet-9, ...) and their blocks.
- ``metrics``:       ``AccuracyLogits``.
- ``plotting``:      every figure of the course (images, curves, confusion matrix, feature maps, matrices).
- ``convolution``:   convolution by loops and by im2col, to compare with PyTorch.
- ``robustness``:    attacks (FGSM, PGD), corruptions and shifts, test-time augmentation, calibration, seed ties.
- ``shapes``:        output-size formulas and a layer-by-layer shape table with receptive fields.
- ``visualization``: forward hooks, activations, filters, most activating images.
- ``files``:         atomic file writes (checkpoints, caches).
"""

from importlib.metadata import PackageNotFoundError, version

from .config import (CanReach, GetCacheDir, GetDataRoot, GetDevice, GetNumWorkers, IsColab, IsQuickMode,
                     ModelDevice)
from .convolution import Conv2DIm2Col, Conv2DLoops
from .data import (CIFAR10_CLASSES, FASHION_MNIST_CLASSES, ChannelMeanStd, Cifar10Folder, Cifar10Loaders,
                   Cifar10Transforms, LoadCifar10, LoadFashionMnist, MakeCifar10Loaders, StratifiedIndices,
                   StratifiedSplit, StratifiedSubset, SubsetByIndices, UInt8ImagesMeanStd)
from .fast_data import DeviceBatchLoader, RandomCropBatch, RandomFlipBatch
from .files import WriteAtomically
from .metrics import AccuracyLogits
from .models import (BuildResNet9, BuildVggCnn, ConvBnRelu, CountParameters, LeNet5, LeNet5Modern, Residual,
                     ScaleLogits)
from .plotting import (GridAxes, PlotConfusionMatrix, PlotFeatureMaps, PlotImageGrid, PlotImages,
                       PlotLabelsHistogram, PlotMatrix, PlotMnistImages, PlotTrainResults)
from .plotting import PlotMeanStdBars  # seeds: mean +- std
from .robustness import (CORRUPTION_SEVERITIES, CORRUPTIONS, AccuracyUnderAttack, CalibrationBins, CorruptImages,
                         ExpectedCalibrationError, FgsmAttack, FitTemperature, PgdAttack, PixelBounds,
                         PlotReliabilityDiagram, PredictTta, ScaleByTemperature, SeedSummary, ShiftImages,
                         Standardize, TieVerdicts, TtaViews, Unstandardize)
from .shapes import (ConvOutputSize, ConvTransposeOutputSize, ForwardShapes, LayerOutputShape, ModelShapeTable,
                     ToPair)
from .training import (AutocastContext, LoadCheckpoint, NNMode, Predict, SaveCheckpointAtomically, TrainEpoch,
                       TrainModel, TrainResult)
from .visualization import GetActivations, PlotFilters, RecordActivations, SelectLayers, TopActivatingImages

try:
    __version__ = version('course-utils')  #<! One source: the version in pyproject.toml
except PackageNotFoundError:  #<! Imported from a folder without installing (e.g. a copied package)
    __version__ = '0+unknown'

__all__ = [
    # config
    'CanReach', 'GetCacheDir', 'GetDataRoot', 'GetDevice', 'GetNumWorkers', 'IsColab', 'IsQuickMode', 'ModelDevice',
    # convolution
    'Conv2DIm2Col', 'Conv2DLoops',
    # data
    'CIFAR10_CLASSES', 'FASHION_MNIST_CLASSES', 'ChannelMeanStd', 'Cifar10Folder', 'Cifar10Loaders',
    'Cifar10Transforms', 'LoadCifar10', 'LoadFashionMnist', 'MakeCifar10Loaders', 'StratifiedIndices',
    'StratifiedSplit', 'StratifiedSubset', 'SubsetByIndices', 'UInt8ImagesMeanStd',
    # fast_data
    'DeviceBatchLoader', 'RandomCropBatch', 'RandomFlipBatch',
    # files
    'WriteAtomically',
    # metrics
    'AccuracyLogits',
    # models
    'BuildResNet9', 'BuildVggCnn', 'ConvBnRelu', 'CountParameters', 'LeNet5', 'LeNet5Modern', 'Residual',
    'ScaleLogits',
    # plotting
    'GridAxes', 'PlotConfusionMatrix', 'PlotFeatureMaps', 'PlotImageGrid', 'PlotImages', 'PlotLabelsHistogram',
    'PlotMatrix', 'PlotMnistImages', 'PlotTrainResults',
    'PlotMeanStdBars',
    # robustness
    'CORRUPTION_SEVERITIES', 'CORRUPTIONS', 'AccuracyUnderAttack', 'CalibrationBins', 'CorruptImages',
    'ExpectedCalibrationError', 'FgsmAttack', 'FitTemperature', 'PgdAttack', 'PixelBounds', 'PlotReliabilityDiagram',
    'PredictTta', 'ScaleByTemperature', 'SeedSummary', 'ShiftImages', 'Standardize', 'TieVerdicts', 'TtaViews',
    'Unstandardize',
    # shapes
    'ConvOutputSize', 'ConvTransposeOutputSize', 'ForwardShapes', 'LayerOutputShape', 'ModelShapeTable', 'ToPair',
    # training
    'AutocastContext', 'LoadCheckpoint', 'NNMode', 'Predict', 'SaveCheckpointAtomically', 'TrainEpoch', 'TrainModel',
    'TrainResult',
    # visualization
    'GetActivations', 'PlotFilters', 'RecordActivations', 'SelectLayers', 'TopActivatingImages',
]
