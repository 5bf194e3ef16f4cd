"""TrainModel's overhead: images/s of TrainModel against a bare training loop, in one process.

Both train the same model (from the same initial weights) on the same random CIFAR-shaped batches with the same
optimizer; the bare loop computes the loss only, TrainModel also its score (micro accuracy), progress bar and
best-model bookkeeping. Runs alternate (bare, TrainModel, bare, ...) and the median of each is reported.

    python benchmarks/bench_train.py                         # resnet18, batch 256, CPU or the GPU
    python benchmarks/bench_train.py --model small --channels-last --autocast auto   # mixed precision by capability
    python benchmarks/bench_train.py --model small --steps 2 --repeats 1 --batch-size 32  # a smoke run

``--autocast auto`` asks ``ChooseMixedPrecision``: bfloat16 on CUDA compute capability >= 8.0 and on CPUs with
native bf16, float16 on older GPUs (a T4: ``torch.cuda.is_bf16_supported()`` says True there, counting emulation),
float32 elsewhere. float16 always trains with a ``GradScaler`` (both loops).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.classification import MulticlassAccuracy

from course_utils import AutocastContext, BuildVggCnn, ChooseMixedPrecision, GetDevice, SyncDevice, TrainModel

DTYPES = {'none': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}  #<! And 'auto': by the device's capability


def BuildModel(modelName: str) -> nn.Module:
    if modelName == 'resnet18':
        return torchvision.models.resnet18(num_classes=10)
    return BuildVggCnn()  #<! The small VGG-style CNN of the CIFAR-10 training lesson


def ToDevice(tX: torch.Tensor, oDevice: torch.device) -> torch.Tensor:
    """Copy a batch to the device, asynchronously only from pinned memory to CUDA: an asynchronous copy from pageable
    memory may read the batch after it was released (silently wrong batches on Apple MPS)."""
    return tX.to(oDevice, non_blocking=tX.is_pinned() and oDevice.type == 'cuda')


def BareLoop(oModel: nn.Module, dlTrain: DataLoader, dlVal: DataLoader, oOpt: torch.optim.Optimizer,
             oDevice: torch.device, channelsLast: bool, autocastDtype: torch.dtype | None) -> None:
    """The reference: what any training loop must do, and nothing more."""
    hL = nn.CrossEntropyLoss()
    oAutocast = AutocastContext(oDevice, autocastDtype)
    oScaler = torch.amp.GradScaler(oDevice.type) if autocastDtype == torch.float16 else None  #<! As TrainModel's
    oModel.train()
    for mX, vY in dlTrain:
        mX, vY = ToDevice(mX, oDevice), ToDevice(vY, oDevice)
        if channelsLast:
            mX = mX.contiguous(memory_format=torch.channels_last)
        with oAutocast:
            valLoss = hL(oModel(mX), vY)
        oOpt.zero_grad(set_to_none=True)
        if oScaler is not None:
            oScaler.scale(valLoss).backward()
            oScaler.step(oOpt)
            oScaler.update()
        else:
            valLoss.backward()
            oOpt.step()
    oModel.eval()
    tLossSum = torch.zeros((), device=oDevice)
    with torch.no_grad(), oAutocast:
        for mX, vY in dlVal:  #<! The same validation work as TrainModel's: the loss summed on the device
            tLossSum += hL(oModel(ToDevice(mX, oDevice)), ToDevice(vY, oDevice)).float()
    float(tLossSum)  #<! One read-back per pass, as TrainModel (no host sync per batch)


def main() -> None:
    oParser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    oParser.add_argument('--model', choices=['resnet18', 'small'], default='resnet18')
    oParser.add_argument('--batch-size', type=int, default=256)
    oParser.add_argument('--steps', type=int, default=20, help='optimizer steps per timed run')
    oParser.add_argument('--repeats', type=int, default=3, help='timed runs of each loop')
    oParser.add_argument('--channels-last', action='store_true')
    oParser.add_argument('--autocast', choices=[*DTYPES, 'auto'], default='none',
                         help='mixed precision; auto: by capability (ChooseMixedPrecision); fp16 uses a GradScaler')
    oParser.add_argument('--compile', action='store_true', help='torch.compile the model (slow to start)')
    oParser.add_argument('--no-progress', action='store_true', help='TrainModel without progress bars')
    oParser.add_argument('--device', default=None, help='cpu, cuda, mps (default: the best available)')
    oArgs = oParser.parse_args()

    oDevice = torch.device(oArgs.device) if oArgs.device else GetDevice()
    if oArgs.autocast == 'auto':
        oMixed = ChooseMixedPrecision(oDevice)
        autocastDtype = oMixed.autocastDtype
        print(f'Autocast auto: {oMixed.reason}')
    else:
        autocastDtype = DTYPES[oArgs.autocast]
    torch.manual_seed(0)
    numImg = oArgs.steps * oArgs.batch_size
    dsTrain = TensorDataset(torch.randn(numImg, 3, 32, 32), torch.randint(0, 10, (numImg,)))
    dsVal = TensorDataset(torch.randn(oArgs.batch_size, 3, 32, 32), torch.randint(0, 10, (oArgs.batch_size,)))
    dLoader = dict(batch_size=oArgs.batch_size, pin_memory=oDevice.type == 'cuda')
    dlTrain, dlVal = DataLoader(dsTrain, shuffle=True, **dLoader), DataLoader(dsVal, **dLoader)

    oInitModel = BuildModel(oArgs.model).to(oDevice)
    if oArgs.channels_last:
        oInitModel = oInitModel.to(memory_format=torch.channels_last)

    def NewModelAndOpt() -> tuple[nn.Module, torch.optim.Optimizer]:
        oModel = copy.deepcopy(oInitModel)
        if oArgs.compile:
            oModel = torch.compile(oModel)
        return oModel, torch.optim.AdamW(oModel.parameters(), lr=1e-3)

    def TimeBare() -> float:
        oModel, oOpt = NewModelAndOpt()
        SyncDevice(oDevice)
        startTime = time.perf_counter()
        BareLoop(oModel, dlTrain, dlVal, oOpt, oDevice, oArgs.channels_last, autocastDtype)
        SyncDevice(oDevice)
        return numImg / (time.perf_counter() - startTime)

    def TimeTrainModel() -> float:
        oModel, oOpt = NewModelAndOpt()
        hS = MulticlassAccuracy(num_classes=10, average='micro')
        SyncDevice(oDevice)
        startTime = time.perf_counter()
        TrainModel(oModel, dlTrain, dlVal, oOpt, 1, nn.CrossEntropyLoss(), hS, checkpointPath=None,
                   showProgress=not oArgs.no_progress, verbose=False, channelsLast=oArgs.channels_last,
                   autocastDtype=autocastDtype)
        SyncDevice(oDevice)
        return numImg / (time.perf_counter() - startTime)

    TimeBare(), TimeTrainModel()  #<! Warm-up: allocator, kernels selection, compilation
    lBare, lTrainModel = [], []
    for _ in range(oArgs.repeats):
        lBare.append(TimeBare())
        lTrainModel.append(TimeTrainModel())
    valBare, valTrainModel = statistics.median(lBare), statistics.median(lTrainModel)
    deviceName = torch.cuda.get_device_name() if oDevice.type == 'cuda' else f'{oDevice.type} ({torch.get_num_threads()} threads)'
    print(f'Device: {deviceName} | torch {torch.__version__} | model {oArgs.model} | batch {oArgs.batch_size} | '
          f'channels_last {oArgs.channels_last} | autocast {oArgs.autocast} ({autocastDtype}) | '
          f'compile {oArgs.compile}')
    print(f'Bare loop:  {valBare:8.1f} img/s  (runs: {", ".join(f"{v:.0f}" for v in lBare)})')
    print(f'TrainModel: {valTrainModel:8.1f} img/s  (runs: {", ".join(f"{v:.0f}" for v in lTrainModel)})')
    print(f'Ratio TrainModel / bare: {valTrainModel / valBare:.3f} (overhead {100 * (1 - valTrainModel / valBare):+.1f}%)')


if __name__ == '__main__':
    main()
