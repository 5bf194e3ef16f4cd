"""Time to accuracy of the course's CIFAR-10 recipes against the recipes its sources teach, in one run.

Each recipe trains on the same machine, one after the other, from the same cached CIFAR-10 (the course's seeded
split: 45,000 training and 5,000 validation images). After every epoch the script records the validation accuracy
and the wall time since the recipe started (validation included, as lesson 09 counts it), then prints one table:
parameters, training FLOPs per image (``torch.utils.flop_counter.FlopCounterMode``: convolutions and matrix products,
forward and backward), training images per second, the time to 70%, 75% and 80% validation accuracy, and the ratio of
each time to the course's fastest recipe.

The recipes:

* ``fixel``: FixelCourses 0086, the seed this course grew from. Five 3x3 convolutions without padding
  (3-30-60-120-240-500), each with BatchNorm, ReLU and ``Dropout2d(0.2)``, max pools after the 2nd and the 5th,
  global average pooling, a linear layer; AdamW (lr 1e-3, betas (0.9, 0.99), weight decay 1e-3), batch 256, no
  augmentation, standardized with the training split's statistics. A constant learning rate: it trains until 80%.
* ``technion``: the Technion tutorial 06 ``CifarCNN``. Convolutions 32-64 / 128-128 / 256-256 with BatchNorm on the
  first of each pair and a max pool after each pair, ``Dropout2d(0.05)`` after the second pair, then FC
  4096-1024-512-10 with dropout 0.1;
  Adam at lr 1e-4, batch 128, random crop and flip. A constant learning rate: it trains until 80%.
* ``lesson04``: the course's lesson-04 recipe (``BuildVggCnn``, ``DataLoader`` with crop and flip, batch 128, AdamW
  with a one-cycle schedule peaking at 4e-3 over 12 epochs, weight decay 5e-4, label smoothing 0.1).
* ``lesson09``: the course's lesson-09 recipe at the CPU scale (the quarter-width ResNet-9, ``DeviceBatchLoader``,
  batch 256, AdamW with a one-cycle schedule peaking at 4e-3 over 9 epochs, weight decay 5e-4, label smoothing 0.1).

Both course recipes use the channels-last layout where it is measured faster, and lesson 09's recipe bfloat16 autocast
where the CPU computes it natively and it is measured faster (as the lessons decide them). Every run
stops at its time cap (``--cap-minutes``, checked after every batch; the partial epoch is then validated and
recorded). A recipe that did not reach an accuracy within the cap gives a lower bound (``>``) for its time and ratio.

    python benchmarks/bench_recipes.py --out benchmarks/results/cpu.md        # all four, 60 minutes each at most
    python benchmarks/bench_recipes.py --recipes lesson09 fixel --cap-minutes 20
    python benchmarks/bench_recipes.py --recipes fixel --train-per-class 10 --val-per-class 5 --batch-size 8 \\
        --max-epochs 1 --max-steps 2                                         # a smoke run
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchmetrics.classification import MulticlassAccuracy

from course_utils import (AutocastContext, BuildResNet9, BuildVggCnn, ChooseMixedPrecision, CountParameters,
                          MakeCifar10Loaders, NNMode, TrainEpoch)

LEVELS = (0.70, 0.75, 0.80)  #<! The accuracies whose times the table reports
COURSE_RECIPES = ('lesson04', 'lesson09')
SEED = 512  #<! The course's seed: the same split and statistics as the lessons


# ------------------------------------------------------------------------------------------------
# The seeds' networks
# ------------------------------------------------------------------------------------------------
def BuildFixelNet(numClasses: int = 10) -> nn.Sequential:
    """FixelCourses 0086: five unpadded 3x3 convolutions, each with BatchNorm, ReLU and Dropout2d(0.2)."""
    lLayers: list[nn.Module] = []
    lWidths = (3, 30, 60, 120, 240, 500)
    for layerIdx, (numIn, numOut) in enumerate(zip(lWidths[:-1], lWidths[1:])):
        lLayers += [nn.Conv2d(numIn, numOut, 3), nn.BatchNorm2d(numOut), nn.ReLU(), nn.Dropout2d(0.2)]
        if layerIdx in (1, 4):  #<! After the 2nd and the 5th convolution: 32 -> 30 -> 28 -> 14 -> ... -> 8 -> 4
            lLayers.append(nn.MaxPool2d(2))
    return nn.Sequential(*lLayers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(lWidths[-1], numClasses))


def BuildTechnionNet(numClasses: int = 10) -> nn.Sequential:
    """The Technion tutorial 06 CifarCNN: 3 pairs of padded 3x3 convolutions (BatchNorm on the first of each pair),
    a max pool after each pair, Dropout2d(0.05) after the second pair, then a 4096-1024-512-10 classifier with
    dropout 0.1 (before the first and the last linear layer)."""
    lLayers: list[nn.Module] = []
    numIn = 3
    for pairIdx, (numFirst, numSecond) in enumerate(((32, 64), (128, 128), (256, 256))):
        lLayers += [nn.Conv2d(numIn, numFirst, 3, padding=1), nn.BatchNorm2d(numFirst), nn.ReLU(),
                    nn.Conv2d(numFirst, numSecond, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        if pairIdx == 1:
            lLayers.append(nn.Dropout2d(0.05))  #<! After the second pair's pool, as the widely copied CifarCNN has it
        numIn = numSecond
    return nn.Sequential(*lLayers, nn.Flatten(),
                         nn.Dropout(0.1), nn.Linear(256 * 4 * 4, 1024), nn.ReLU(),
                         nn.Linear(1024, 512), nn.ReLU(), nn.Dropout(0.1), nn.Linear(512, numClasses))


# ------------------------------------------------------------------------------------------------
# The recipes
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Recipe:
    """One recipe: its network, data path and optimization. ``numEpoch``: a one-cycle schedule's length (``None``:
    a constant learning rate, trained until the highest level or the cap)."""

    name: str
    description: str
    hModel: Callable[[], nn.Module]
    batchSize: int
    augment: bool
    fastData: bool
    hOptimizer: Callable[[list[nn.Parameter]], torch.optim.Optimizer]
    labelSmoothing: float = 0.0
    numEpoch: int | None = None
    maxLr: float | None = None
    tryChannelsLast: bool = False
    tryMixedPrecision: bool = False  #<! Lesson 09 measures mixed precision and keeps it when it is faster


RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe('fixel', 'FixelCourses 0086: 5 unpadded convs + BN + Dropout2d, AdamW 1e-3 (0.9, 0.99) wd 1e-3, batch 256, '
           'no augmentation, constant lr', BuildFixelNet, 256, False, False,
           lambda lP: torch.optim.AdamW(lP, lr=1e-3, betas=(0.9, 0.99), weight_decay=1e-3)),
    Recipe('technion', 'Technion tutorial 06 CifarCNN: 6 convs + FC 4096-1024-512, Adam 1e-4, batch 128, crop + flip, '
           'constant lr', BuildTechnionNet, 128, True, False, lambda lP: torch.optim.Adam(lP, lr=1e-4)),
    Recipe('lesson04', 'Course lesson 04: BuildVggCnn, DataLoader crop + flip, batch 128, AdamW one-cycle 4e-3 wd 5e-4, '
           '12 epochs, label smoothing 0.1', BuildVggCnn, 128, True, False,
           lambda lP: torch.optim.AdamW(lP, lr=4e-3, weight_decay=5e-4), 0.1, 12, 4e-3, True),
    Recipe('lesson09', 'Course lesson 09 (cpu scale): ResNet-9 (16, 32, 64, 128), DeviceBatchLoader crop + flip, batch '
           '256, AdamW one-cycle 4e-3 wd 5e-4, 9 epochs, label smoothing 0.1', BuildResNet9, 256, True, True,
           lambda lP: torch.optim.AdamW(lP, lr=4e-3, weight_decay=5e-4), 0.1, 9, 4e-3, True, True),
)}


def TrainingFlopsPerImage(oModel: nn.Module, numImg: int = 2) -> float:
    """FLOPs of one training step per image (forward and backward), counted by ``FlopCounterMode`` on a CPU copy of
    the batch shape. The model is left in train mode, its gradients cleared."""
    oModel.train()
    tX = torch.randn(numImg, 3, 32, 32)
    with FlopCounterMode(display=False) as oCounter:
        oModel(tX).sum().backward()
    oModel.zero_grad(set_to_none=True)
    return oCounter.get_total_flops() / numImg


def _StepTime(oModel: nn.Module, tX: torch.Tensor, vY: torch.Tensor, numRep: int,
              autocastDtype: torch.dtype | None = None) -> float:
    lTimes = []
    for repIdx in range(numRep + 1):  #<! The first step warms up: not timed
        startTime = time.perf_counter()
        with AutocastContext(torch.device('cpu'), autocastDtype):
            valLoss = nn.functional.cross_entropy(oModel(tX), vY)
        valLoss.backward()
        lTimes.append(time.perf_counter() - startTime)
    oModel.zero_grad(set_to_none=True)
    return statistics.median(lTimes[1:])


def ChooseLayout(oRecipe: Recipe, batchSize: int, numRep: int = 3) -> tuple[bool, torch.dtype | None]:
    """Channels-last and mixed precision as the lessons decide them: channels-last only where it is clearly faster
    (> 5%, median of `numRep` steps, lessons 04 and 09); then, for lesson 09, the mixed precision that
    ``ChooseMixedPrecision`` allows on this CPU (native bfloat16 only), kept when it is faster (lesson 09's speed
    table keeps the fastest configuration)."""
    torch.manual_seed(SEED)
    tX, vY = torch.randn(batchSize, 3, 32, 32), torch.randint(0, 10, (batchSize,))
    if not oRecipe.tryChannelsLast:
        return False, None
    tXLast = tX.contiguous(memory_format=torch.channels_last)
    timeContiguous = _StepTime(oRecipe.hModel().train(), tX, vY, numRep)
    timeLast = _StepTime(oRecipe.hModel().train().to(memory_format=torch.channels_last), tXLast, vY, numRep)
    isChannelsLast = timeContiguous / timeLast > 1.05
    autocastDtype = ChooseMixedPrecision(torch.device('cpu')).autocastDtype if oRecipe.tryMixedPrecision else None
    if autocastDtype is not None:
        oModel = oRecipe.hModel().train()
        oModel = oModel.to(memory_format=torch.channels_last) if isChannelsLast else oModel
        timeMixed = _StepTime(oModel, tXLast if isChannelsLast else tX, vY, numRep, autocastDtype)
        autocastDtype = autocastDtype if timeMixed < min(timeContiguous, timeLast) else None
    return isChannelsLast, autocastDtype


class _UntilDeadline:
    """The batches of `dlData` until the clock passes `deadline` (the first batch always comes: an epoch trains at
    least one step) or `maxSteps` batches were given; counts what it gave."""

    def __init__(self, dlData, deadline: float, maxSteps: int | None) -> None:
        self.dlData, self.deadline, self.maxSteps = dlData, deadline, maxSteps
        self.isCut, self.numGiven = False, 0

    def __len__(self) -> int:
        return len(self.dlData) if self.maxSteps is None else min(len(self.dlData), self.maxSteps)

    def __iter__(self) -> Iterator:
        for stepIdx, batch in enumerate(self.dlData):
            if self.maxSteps is not None and stepIdx >= self.maxSteps:
                return
            if stepIdx > 0 and time.perf_counter() >= self.deadline:
                self.isCut = True
                return
            self.numGiven += 1
            yield batch


@dataclass
class RecipeResult:
    recipe: Recipe
    numParams: int
    flopsPerImage: float
    channelsLast: bool
    autocastDtype: torch.dtype | None = None
    lSeconds: list[float] = field(default_factory=list)
    lValAcc: list[float] = field(default_factory=list)
    numTrainImages: int = 0
    trainSeconds: float = 0.0
    isCapped: bool = False

    @property
    def imagesPerSecond(self) -> float:
        return self.numTrainImages / self.trainSeconds if self.trainSeconds > 0 else float('nan')

    def TimeTo(self, level: float) -> float | None:
        """Seconds to the first epoch at or above `level` (``None``: not reached)."""
        return next((valSec for valSec, valAcc in zip(self.lSeconds, self.lValAcc) if valAcc >= level), None)


def RunRecipe(oRecipe: Recipe, capSeconds: float, *, numTrainPerClass: int | None, numValPerClass: int,
              batchSize: int | None, maxEpochs: int | None, maxSteps: int | None, log: Callable[[str], None]
              ) -> RecipeResult:
    """Train one recipe from the course's seed, with the clock; see the module's docstring."""
    batchSize = batchSize or oRecipe.batchSize
    oData = MakeCifar10Loaders(batchSize, numValPerClass, numTrainPerClass, seed=SEED, augment=oRecipe.augment,
                               fastData=oRecipe.fastData, device='cpu')
    isChannelsLast, autocastDtype = ChooseLayout(oRecipe, batchSize)
    torch.manual_seed(SEED)
    oModel = oRecipe.hModel()
    flopsPerImage = TrainingFlopsPerImage(oModel)
    torch.manual_seed(SEED)
    oModel = oRecipe.hModel()  #<! Fresh weights: the FLOP count ran a step
    if isChannelsLast:
        oModel = oModel.to(memory_format=torch.channels_last)
    oOpt = oRecipe.hOptimizer(list(oModel.parameters()))
    numEpoch = oRecipe.numEpoch if oRecipe.numEpoch is not None else 10 ** 6
    numEpoch = min(numEpoch, maxEpochs) if maxEpochs is not None else numEpoch
    numSteps = len(oData.dlTrain) if maxSteps is None else min(len(oData.dlTrain), maxSteps)
    oSch = (torch.optim.lr_scheduler.OneCycleLR(oOpt, oRecipe.maxLr, total_steps=numEpoch * numSteps)
            if oRecipe.numEpoch is not None else None)
    hL = nn.CrossEntropyLoss(label_smoothing=oRecipe.labelSmoothing)
    hS = MulticlassAccuracy(num_classes=10, average='micro')
    oResult = RecipeResult(oRecipe, CountParameters(oModel), flopsPerImage, isChannelsLast, autocastDtype)
    dArgs = dict(showProgress=False, channelsLast=isChannelsLast, autocastDtype=autocastDtype)
    startTime = time.perf_counter()
    for epochIdx in range(numEpoch):
        dlTrain = _UntilDeadline(oData.dlTrain, startTime + capSeconds, maxSteps)
        epochStart = time.perf_counter()
        TrainEpoch(oModel, dlTrain, hL, hS, oOpt, oSch, NNMode.TRAIN, **dArgs)
        oResult.trainSeconds += time.perf_counter() - epochStart
        oResult.numTrainImages += batchSize * dlTrain.numGiven  #<! Full batches only (drop_last)
        _, valAcc = TrainEpoch(oModel, oData.dlVal, hL, hS, opMode=NNMode.INFERENCE, **dArgs)
        oResult.lSeconds.append(time.perf_counter() - startTime)
        oResult.lValAcc.append(float(valAcc))
        log(f'  {oRecipe.name} epoch {epochIdx + 1}{" (cut by the cap)" if dlTrain.isCut else ""}: val acc '
            f'{valAcc:.4f} at {oResult.lSeconds[-1] / 60:.1f} min')
        if dlTrain.isCut or oResult.lSeconds[-1] >= capSeconds:
            # Capped: a schedule left unfinished, or a constant-rate run stopped before the highest level
            oResult.isCapped = (dlTrain.isCut or epochIdx + 1 < numEpoch) and not (
                oRecipe.numEpoch is None and valAcc >= max(LEVELS))
            break
        if oRecipe.numEpoch is None and valAcc >= max(LEVELS):
            break  #<! A constant-rate recipe has nothing more to show once it reached the highest level
    return oResult


# ------------------------------------------------------------------------------------------------
# The report
# ------------------------------------------------------------------------------------------------
def CpuModel() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    cpuInfo = Path('/proc/cpuinfo')
    if cpuInfo.exists():
        for line in cpuInfo.read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    return platform.processor() or platform.machine()


def _FormatTime(valSec: float | None, oResult: RecipeResult) -> str:
    if valSec is not None:
        return f'{valSec / 60:.1f} min'
    if oResult.isCapped:
        return f'> {oResult.lSeconds[-1] / 60:.1f} min (cap)'
    return 'not reached'


def _FormatRatio(valSec: float | None, oResult: RecipeResult, fastestSec: float | None) -> str:
    if fastestSec is None:
        return 'n/a'  #<! No course recipe reached the level
    if valSec is not None:
        return f'{valSec / fastestSec:.2f}x'
    if oResult.isCapped:
        return f'> {oResult.lSeconds[-1] / fastestSec:.2f}x'  #<! A lower bound: it had not got there by the cap
    return 'never'


def ResultsTable(lResults: list[RecipeResult]) -> str:
    """The markdown table: one row per recipe, times to each level with the ratio to the course's fastest."""
    dFastest: dict[float, float | None] = {}
    for level in LEVELS:
        lCourse = [o.TimeTo(level) for o in lResults if o.recipe.name in COURSE_RECIPES]
        lCourse = [valSec for valSec in lCourse if valSec is not None]
        dFastest[level] = min(lCourse) if lCourse else None
    lHeader = ['Recipe', 'Parameters', 'Training MFLOPs / image', 'Images/s', 'Layout, precision', 'Epochs',
               'Best val acc'] + [f'Time to {level:.0%} (ratio)' for level in LEVELS]
    lLines = ['| ' + ' | '.join(lHeader) + ' |', '|' + '---|' * len(lHeader)]
    for oResult in lResults:
        lCells = [oResult.recipe.name, f'{oResult.numParams:,}', f'{oResult.flopsPerImage / 1e6:.0f}',
                  f'{oResult.imagesPerSecond:.0f}',
                  f'{"channels-last" if oResult.channelsLast else "contiguous"}, '
                  f'{str(oResult.autocastDtype).removeprefix("torch.") if oResult.autocastDtype else "float32"}',
                  f'{len(oResult.lValAcc)}' + (' (capped)' if oResult.isCapped else ''),
                  f'{max(oResult.lValAcc):.1%}']
        for level in LEVELS:
            valSec = oResult.TimeTo(level)
            lCells.append(f'{_FormatTime(valSec, oResult)} ({_FormatRatio(valSec, oResult, dFastest[level])})')
        lLines.append('| ' + ' | '.join(lCells) + ' |')
    return '\n'.join(lLines)


def EpochLog(oResult: RecipeResult) -> str:
    """One line per recipe: the validation accuracy and the minutes after every epoch."""
    lPoints = [f'{valAcc:.3f} @ {valSec / 60:.1f}' for valSec, valAcc in zip(oResult.lSeconds, oResult.lValAcc)]
    return f'- `{oResult.recipe.name}` ({oResult.recipe.description}): ' + ', '.join(lPoints)


def Report(lResults: list[RecipeResult], command: str, capMinutes: float, numTrainImages: int,
           numValImages: int) -> str:
    """The whole markdown report: the machine, the command, the table and every recipe's epochs."""
    lCourse = [name for name in COURSE_RECIPES if any(o.recipe.name == name for o in lResults)]
    return '\n'.join([
        '# CIFAR-10 recipes: time to validation accuracy, in one run',
        '',
        f'- Date: {datetime.date.today().isoformat()}',
        f'- CPU: {CpuModel()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch thread(s)',
        f'- torch {torch.__version__}, torchvision {torchvision.__version__}, Python {platform.python_version()}',
        f'- Command: `{command}`',
        f'- Data: the course\'s seeded split (seed {SEED}), {numTrainImages:,} training and {numValImages:,} '
        f'validation images; each recipe\'s time counts from its first step, validation included',
        f'- Time cap: {capMinutes:g} minutes per recipe; `>` marks a lower bound (the level was not reached by the cap)',
        f'- Ratio: the time over the fastest course recipe\'s ({", ".join(lCourse) or "none run"}) time to the same '
        f'level; one run of each recipe, so no spread',
        '',
        ResultsTable(lResults),
        '',
        '## Validation accuracy @ minutes, after every epoch',
        '',
        *[EpochLog(o) for o in lResults],
        '',
    ])


def main(lArgs: list[str] | None = None) -> str:
    oParser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    oParser.add_argument('--recipes', nargs='+', choices=list(RECIPES), default=list(RECIPES),
                         help='Recipes to run, in this order (default: all four)')
    oParser.add_argument('--cap-minutes', type=float, default=60.0, help='Time cap per recipe (default 60)')
    oParser.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s own choice)')
    oParser.add_argument('--out', type=Path, default=None, help='Also write the markdown report to this file')
    oParser.add_argument('--train-per-class', type=int, default=None, help='Smaller runs: training images per class')
    oParser.add_argument('--val-per-class', type=int, default=500, help='Validation images per class (default 500)')
    oParser.add_argument('--batch-size', type=int, default=None, help='Override every recipe\'s batch size')
    oParser.add_argument('--max-epochs', type=int, default=None, help='Override every recipe\'s number of epochs')
    oParser.add_argument('--max-steps', type=int, default=None, help='Training steps per epoch at most (smoke runs)')
    oArgs = oParser.parse_args(lArgs)
    if oArgs.cap_minutes <= 0:
        oParser.error(f'--cap-minutes must be positive, got {oArgs.cap_minutes}')
    if oArgs.threads is not None:
        torch.set_num_threads(oArgs.threads)
    command = 'python benchmarks/bench_recipes.py ' + shlex.join(lArgs if lArgs is not None else sys.argv[1:])
    lResults = []
    for name in oArgs.recipes:
        print(f'{name}: {RECIPES[name].description}', flush=True)
        lResults.append(RunRecipe(RECIPES[name], 60 * oArgs.cap_minutes, numTrainPerClass=oArgs.train_per_class,
                                  numValPerClass=oArgs.val_per_class, batchSize=oArgs.batch_size,
                                  maxEpochs=oArgs.max_epochs, maxSteps=oArgs.max_steps,
                                  log=lambda line: print(line, flush=True)))
    numTrain = 10 * (oArgs.train_per_class if oArgs.train_per_class is not None else 5000 - oArgs.val_per_class)
    report = Report(lResults, command.strip(), oArgs.cap_minutes, numTrain, 10 * oArgs.val_per_class)
    print(report)
    if oArgs.out is not None:
        oArgs.out.parent.mkdir(parents=True, exist_ok=True)
        oArgs.out.write_text(report)
        print(f'Written to {oArgs.out}')
    return report


if __name__ == '__main__':
    main()
