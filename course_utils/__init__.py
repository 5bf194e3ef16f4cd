"""Helpers shared by the notebooks of the course "CNNs with PyTorch".

Every name a lesson uses is exported here, so ``from course_utils import TrainModel, MakeCifar10Loaders`` is all a
notebook needs. Where each lives:

- ``config``:        data root, cache folder, quick mode and scale, device, mixed precision by capability, workers,
                     Colab and network checks.
- ``data``:          CIFAR-10 and Fashion-MNIST loaders, the CIFAR-10 recipe, stratified subsets, statistics.
- ``fast_data``:     ``DeviceBatchLoader``: a whole image data set on the device, batched augmentation.
- ``training``:      ``TrainModel`` / ``TrainEpoch``, checkpoints, ``Predict``, mixed precision.
- ``models``:        the course's CNNs (LeNet-5, VGG-style, ResNet-9 and -20, MobileNet, ...), their blocks, FLOPs.
- ``loops``:         a learning-rate range test, TensorBoard scalars read back.
- ``metrics``:       ``AccuracyLogits``.
- ``plotting``:      every figure of the course (images, curves, confusion matrix, feature maps, matrices).
- ``convolution``:   convolution by loops and by im2col, to compare with PyTorch.
- ``attribution``:   saliency, SmoothGrad, Grad-CAM and occlusion maps (through Captum), sanity checks, deletion curves.
- ``statistics``:    the course's paired rule: per-unit differences with a t confidence interval, and its verdict.
- ``robustness``:    attacks (FGSM, PGD), corruptions and shifts, test-time augmentation, calibration.
- ``segmentation``:  ISBI 2012 membrane data, joint transforms, U-Net, Dice loss, the paper's weight map,
                     IoU / Dice / Rand scores, tiled inference.
- ``shapes``:        output-size formulas and a layer-by-layer shape table with receptive fields.
- ``visualization``: forward hooks, activations, filters, most activating images.
- ``files``:         atomic file writes (checkpoints, caches).
- ``progress``:      the progress bars (notebook widgets where ``ipywidgets`` imports, text elsewhere).
"""

from importlib.metadata import PackageNotFoundError, version

from .attribution import (CURVE_MODES, CascadingRandomization, CurveAuc, DeletionCurves, EdgeMaps, EvalMode,
                          GradCamMaps, MapRankCorrelation, OcclusionMaps, RandomMaps, SaliencyMaps)
from .config import (QUICK_MODE_NOTE, SCALES, CanReach, ChooseMixedPrecision, CorruptDataError, CpuHasNativeBf16, GetCacheDir,
                     GetDataRoot, GetDevice, GetNumWorkers, GetScale, IsColab, IsQuickMode, MissingDataError,
                     MixedPrecision, ModelDevice, SyncDevice)
from .convolution import Conv2DIm2Col, Conv2DLoops
from .data import (CIFAR10_CLASSES, FASHION_MNIST_CLASSES, ChannelMeanStd, Cifar10Folder, Cifar10Loaders,
                   Cifar10Transforms, LoadCifar10, LoadFashionMnist, MakeCifar10Loaders, StratifiedIndices,
                   StratifiedSplit, StratifiedSubset, SubsetByIndices, UInt8ImagesMeanStd)
from .fast_data import CropBatch, DeviceBatchLoader, FlipBatch, RandomCropBatch, RandomFlipBatch
from .files import WriteAtomically
from .loops import EndlessBatches, LearnRateRangeResult, LearningRateRangeTest, ReadTensorBoardScalars, ScalarSeries
from .metrics import AccuracyLogits
from .models import (BasicBlock, Bottleneck, BuildMobileNetV1, BuildResNet9, BuildVggCnn, CifarResNet, ConvBnRelu,
                     CountFlops, CountParameters, DepthwiseSeparableConv, InceptionBlock, LeNet5, LeNet5Modern,
                     Residual, ResNet18Cifar, ScaleLogits)
from .plotting import (GridAxes, PlotClassProbabilities, PlotConfusionMatrix, PlotFeatureMaps, PlotImageGrid,
                       PlotImages, PlotLabelsHistogram, PlotMatrix, PlotMnistImages, PlotTrainResults)
from .plotting import PlotFiltersToMaps, PlotGroupedConv, PlotKernelFlip, PlotSlidingWindow  # convolution diagrams
from .plotting import IntegerTicks, PlainLogTicks  # axes: whole-number ticks, plain numbers on log axes
from .plotting import PlotPairedDifferences  # the paired rule's intervals
from .plotting import PlotNormalizationAxes  # normalization layers: the four-cube figure
from .plotting import MapColors, PlotAttributionGrid, PlotImageMapOverlay, PlotMeanCurves, PlotStageCorrelations
from .robustness import (CORRUPTION_SEVERITIES, CORRUPTIONS, AccuracyUnderAttack, CalibrationBins, CorruptImages,
                         ExpectedCalibrationError, FgsmAttack, FitTemperature, PgdAttack, PixelBounds,
                         PlotReliabilityDiagram, PredictTta, ScaleByTemperature, ShiftImages, Standardize, TtaViews,
                         Unstandardize)
from .segmentation import (ISBI_CLASSES, PAPER_ELASTIC_STD, PAPER_TILE_SIZE, BalancedClassWeights, CeDiceLoss,
                           CoarseElasticTransform, DiceLoss, ElasticWindowSize, IoUScore, IsbiMembranes,
                           IsbiSplitIndices, IsbiTransforms, LoadIsbiMembranes, PaperElasticStd, PixelWeights,
                           PlotSegmentation, PredictTiled, RandError, RandomRot90, SegmentationScores, UNet,
                           UNetDoubleConv, UNetDown, UNetShapeTable, UNetUp, UNetWeightMap, WeightedCrossEntropy)
from .shapes import (ConvOutputSize, ConvTransposeOutputSize, ForwardShapes, LayerOutputShape, ModelShapeTable,
                     ToPair)
from .statistics import VERDICTS, PairedDifference, PairedResult, PairedTable, TableResults
from .speed import CudnnFlags, PrefetchDepth, TimeSteps
from .progress import HasWidgets
from .training import (AutocastContext, LoadCheckpoint, NNMode, Predict, SaveCheckpointAtomically, ToDevice,
                       TrainEpoch, TrainModel, TrainResult)
from .visualization import GetActivations, PlotFilters, RecordActivations, SelectLayers, TopActivatingImages

try:
    __version__ = version('course-utils')  #<! One source: the version in pyproject.toml
except PackageNotFoundError:  #<! Imported from a folder without installing (e.g. a copied package)
    __version__ = '0+unknown'

__all__ = [
    # attribution
    'CURVE_MODES', 'CascadingRandomization', 'CurveAuc', 'DeletionCurves', 'EdgeMaps', 'EvalMode', 'GradCamMaps',
    'MapRankCorrelation', 'OcclusionMaps', 'RandomMaps', 'SaliencyMaps',
    # config
    'QUICK_MODE_NOTE', 'SCALES', 'CanReach', 'ChooseMixedPrecision', 'CorruptDataError', 'CpuHasNativeBf16', 'GetCacheDir', 'GetDataRoot',
    'GetDevice', 'GetNumWorkers', 'GetScale', 'IsColab', 'IsQuickMode', 'MissingDataError', 'MixedPrecision',
    'ModelDevice', 'SyncDevice',
    # convolution
    'Conv2DIm2Col', 'Conv2DLoops',
    # data
    'CIFAR10_CLASSES', 'FASHION_MNIST_CLASSES', 'ChannelMeanStd', 'Cifar10Folder', 'Cifar10Loaders',
    'Cifar10Transforms', 'LoadCifar10', 'LoadFashionMnist', 'MakeCifar10Loaders', 'StratifiedIndices',
    'StratifiedSplit', 'StratifiedSubset', 'SubsetByIndices', 'UInt8ImagesMeanStd',
    # fast_data
    'CropBatch', 'DeviceBatchLoader', 'FlipBatch', 'RandomCropBatch', 'RandomFlipBatch',
    # files
    'WriteAtomically',
    # loops
    'EndlessBatches', 'LearnRateRangeResult', 'LearningRateRangeTest', 'ReadTensorBoardScalars', 'ScalarSeries',
    # metrics
    'AccuracyLogits',
    # models
    'BasicBlock', 'Bottleneck', 'BuildMobileNetV1', 'BuildResNet9', 'BuildVggCnn', 'CifarResNet', 'ConvBnRelu',
    'CountFlops', 'CountParameters', 'DepthwiseSeparableConv', 'InceptionBlock', 'LeNet5', 'LeNet5Modern', 'Residual',
    'ResNet18Cifar', 'ScaleLogits',
    # plotting
    'GridAxes', 'PlotClassProbabilities', 'PlotConfusionMatrix', 'PlotFeatureMaps', 'PlotImageGrid', 'PlotImages',
    'PlotLabelsHistogram', 'PlotMatrix', 'PlotMnistImages', 'PlotTrainResults',
    'PlotFiltersToMaps', 'PlotGroupedConv', 'PlotKernelFlip', 'PlotSlidingWindow',
    'IntegerTicks', 'PlainLogTicks', 'PlotPairedDifferences',
    'PlotNormalizationAxes',
    'MapColors', 'PlotAttributionGrid', 'PlotImageMapOverlay', 'PlotMeanCurves', 'PlotStageCorrelations',
    # robustness
    'CORRUPTION_SEVERITIES', 'CORRUPTIONS', 'AccuracyUnderAttack', 'CalibrationBins', 'CorruptImages',
    'ExpectedCalibrationError', 'FgsmAttack', 'FitTemperature', 'PgdAttack', 'PixelBounds', 'PlotReliabilityDiagram',
    'PredictTta', 'ScaleByTemperature', 'ShiftImages', 'Standardize', 'TtaViews', 'Unstandardize',
    # segmentation
    'ISBI_CLASSES', 'PAPER_ELASTIC_STD', 'PAPER_TILE_SIZE', 'BalancedClassWeights', 'CeDiceLoss',
    'CoarseElasticTransform', 'DiceLoss', 'ElasticWindowSize', 'IoUScore', 'IsbiMembranes', 'IsbiSplitIndices',
    'IsbiTransforms', 'LoadIsbiMembranes', 'PaperElasticStd', 'PixelWeights',
    'PlotSegmentation', 'PredictTiled', 'RandError', 'RandomRot90', 'SegmentationScores', 'UNet', 'UNetDoubleConv',
    'UNetDown', 'UNetShapeTable', 'UNetUp', 'UNetWeightMap', 'WeightedCrossEntropy',
    # shapes
    'ConvOutputSize', 'ConvTransposeOutputSize', 'ForwardShapes', 'LayerOutputShape', 'ModelShapeTable', 'ToPair',
    # statistics
    'VERDICTS', 'PairedDifference', 'PairedResult', 'PairedTable', 'TableResults',
    # speed
    'CudnnFlags', 'PrefetchDepth', 'TimeSteps',
    # training
    'AutocastContext', 'LoadCheckpoint', 'NNMode', 'Predict', 'SaveCheckpointAtomically', 'ToDevice', 'TrainEpoch',
    'TrainModel', 'TrainResult',
    # progress
    'HasWidgets',
    # visualization
    'GetActivations', 'PlotFilters', 'RecordActivations', 'SelectLayers', 'TopActivatingImages',
]
